//! Signed BitPay API client (reference sections 2-4 and 7), with its unit tests (signing,
//! retries, error shapes over canned replies). Longer than 500 lines because those tests
//! sit at its end.

use crate::exit::{ExitCode, Failing};
use std::thread;
use std::time::Duration;

use std::sync::Arc;

use crate::http::{Method, Transport};
use serde::de::DeserializeOwned;

use super::identity::Identity;
use super::model::{Invoice, InvoiceRequest, Refund, RefundRequest, TokenGrant};
use crate::config::BitPaySettings;
use crate::http;
// Tokens in query strings never reach logs or error messages.
use crate::secret::redact_token_query as redact_token;

#[derive(Debug, thiserror::Error)]
pub enum BitPayError {
    #[error("BitPay at {url} is unreachable: {message}")]
    Transport { url: String, message: String },
    #[error("BitPay answered HTTP {status} (temporary; try again later): {message}")]
    Unavailable { status: u16, message: String },
    #[error("BitPay refused the request (HTTP {status}{}): {message}", code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default())]
    Api {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("BitPay's reply to {url} could not be read: {message}")]
    Decode { url: String, message: String },
}

impl BitPayError {
    pub fn message(&self) -> &str {
        match self {
            BitPayError::Transport { message, .. }
            | BitPayError::Unavailable { message, .. }
            | BitPayError::Api { message, .. }
            | BitPayError::Decode { message, .. } => message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        match self {
            BitPayError::Api {
                status,
                code,
                message,
            } => {
                *status == 404
                    || code
                        .as_deref()
                        .is_some_and(|c| c.ends_with("0101") || c.ends_with("0001"))
                    || message.to_ascii_lowercase().contains("not found")
            }
            _ => false,
        }
    }

    /// Identity or token problems: the admin must pair (again).
    pub fn is_authorization(&self) -> bool {
        match self {
            BitPayError::Api {
                status, message, ..
            } => {
                let m = message.to_ascii_lowercase();
                matches!(status, 401 | 403)
                    || m.contains("unauthorized sin")
                    || m.contains("token is disabled")
                    || m.contains("invalid signature")
                    || m.contains("invalid token")
                    || m.contains("facade")
            }
            _ => false,
        }
    }

    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            BitPayError::Transport { .. } | BitPayError::Unavailable { .. }
        )
    }
}

impl Failing for BitPayError {
    fn exit_code(&self) -> ExitCode {
        if self.is_temporary() {
            ExitCode::Temporary
        } else if self.is_authorization() {
            ExitCode::Config
        } else {
            ExitCode::Failure
        }
    }
}

pub type Result<T> = std::result::Result<T, BitPayError>;

pub struct BitPayClient {
    http: Arc<dyn Transport>,
    base: String,
    identity: Option<Identity>,
    retry_pause: Duration,
}

impl BitPayClient {
    pub fn new(settings: &BitPaySettings, identity: Option<Identity>) -> BitPayClient {
        BitPayClient::with_transport(settings, identity, http::transport(settings.timeout))
    }

    /// A client that sends through `http` (tests give it canned replies).
    pub fn with_transport(
        settings: &BitPaySettings,
        identity: Option<Identity>,
        http: Arc<dyn Transport>,
    ) -> BitPayClient {
        BitPayClient {
            http,
            base: settings.api_url.clone(),
            identity,
            retry_pause: Duration::from_millis(250),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Client-initiated pairing: an inactive token and the code the merchant approves.
    pub fn request_token(&self, sin: &str, facade: &str, label: &str) -> Result<TokenGrant> {
        let body = serde_json::json!({"id": sin, "facade": facade, "label": label});
        self.first_token(self.send(Method::POST, "/tokens", None, Some(&body), false)?)
    }

    /// Server-initiated pairing with a code from the BitPay dashboard.
    pub fn claim_pairing_code(&self, sin: &str, code: &str, label: &str) -> Result<TokenGrant> {
        let body = serde_json::json!({"id": sin, "pairingCode": code, "label": label});
        self.first_token(self.send(Method::POST, "/tokens", None, Some(&body), false)?)
    }

    fn first_token(&self, data: serde_json::Value) -> Result<TokenGrant> {
        let first = data
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(data);
        decode(&format!("{}/tokens", self.base), first)
    }

    /// `GET /tokens` (signed): the facades whose tokens are active for our identity.
    pub fn active_tokens(&self) -> Result<Vec<(String, String)>> {
        let data = self.send(Method::GET, "/tokens", None, None, true)?;
        let mut tokens = Vec::new();
        for entry in data.as_array().into_iter().flatten() {
            for (facade, token) in entry.as_object().into_iter().flatten() {
                if let Some(token) = token.as_str() {
                    tokens.push((facade.clone(), token.to_string()));
                }
            }
        }
        Ok(tokens)
    }

    /// `POST /invoices` with the exact body bytes that are signed. Never retried here:
    /// recovery after a timeout goes through [`BitPayClient::invoice_by_guid`].
    pub fn create_invoice(&self, request: &InvoiceRequest) -> Result<Invoice> {
        let body = serde_json::to_value(request).expect("an invoice request serializes");
        let data = self.send(Method::POST, "/invoices", None, Some(&body), true)?;
        decode(&format!("{}/invoices", self.base), data)
    }

    pub fn invoice(&self, id: &str, token: &str) -> Result<Invoice> {
        let path = format!("/invoices/{id}");
        let data = self.get_with_retry(&path, &[("token", token)])?;
        decode(&format!("{}{path}", self.base), data)
    }

    /// `None` when BitPay has no invoice with that guid.
    pub fn invoice_by_guid(&self, guid: &str, token: &str) -> Result<Option<Invoice>> {
        let path = format!("/invoices/guid/{guid}");
        match self.get_with_retry(&path, &[("token", token)]) {
            Ok(data) => decode(&format!("{}{path}", self.base), data).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /invoices?dateStart&dateEnd` (merchant facade only).
    pub fn list_invoices(
        &self,
        token: &str,
        date_start: &str,
        date_end: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Invoice>> {
        let (limit, offset) = (limit.to_string(), offset.to_string());
        let query = [
            ("token", token),
            ("dateStart", date_start),
            ("dateEnd", date_end),
            ("limit", limit.as_str()),
            ("offset", offset.as_str()),
        ];
        let data = self.get_with_retry("/invoices", &query)?;
        decode(&format!("{}/invoices", self.base), data)
    }

    /// `POST /refunds` (merchant facade). Never retried here: a lost answer is looked up
    /// with [`BitPayClient::refund_by_guid`].
    pub fn create_refund(&self, request: &RefundRequest) -> Result<Refund> {
        let body = serde_json::to_value(request).expect("a refund request serializes");
        let data = self.send(Method::POST, "/refunds", None, Some(&body), true)?;
        decode(&format!("{}/refunds", self.base), data)
    }

    pub fn refund(&self, id: &str, token: &str) -> Result<Refund> {
        let path = format!("/refunds/{id}");
        let data = self.get_with_retry(&path, &[("token", token)])?;
        decode(&format!("{}{path}", self.base), data)
    }

    /// `GET /refunds?invoiceId=`: every refund of the invoice, made here or in the dashboard.
    pub fn refunds_of_invoice(&self, invoice_id: &str, token: &str) -> Result<Vec<Refund>> {
        let data =
            self.get_with_retry("/refunds", &[("invoiceId", invoice_id), ("token", token)])?;
        decode(&format!("{}/refunds", self.base), data)
    }

    /// `None` when BitPay has no refund with that guid.
    pub fn refund_by_guid(&self, guid: &str, token: &str) -> Result<Option<Refund>> {
        let path = format!("/refunds/guid/{guid}");
        match self.get_with_retry(&path, &[("token", token)]) {
            Ok(data) => decode(&format!("{}{path}", self.base), data).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /refunds/{id}`: BitPay answers the refund, `canceled`.
    pub fn cancel_refund(&self, id: &str, token: &str) -> Result<Refund> {
        let path = format!("/refunds/{id}");
        let data = self.send(Method::DELETE, &path, Some(&[("token", token)]), None, true)?;
        decode(&format!("{}{path}", self.base), data)
    }

    /// GETs are idempotent: retry twice on 429/5xx with a growing pause.
    fn get_with_retry(&self, path: &str, query: &[(&str, &str)]) -> Result<serde_json::Value> {
        let mut pause = self.retry_pause;
        for _ in 0..2 {
            match self.send(Method::GET, path, Some(query), None, true) {
                Err(BitPayError::Unavailable { .. }) => {
                    thread::sleep(pause);
                    pause *= 4;
                }
                other => return other,
            }
        }
        self.send(Method::GET, path, Some(query), None, true)
    }

    /// Sends one request and returns the `data` of the reply. The URL string built here is
    /// both what is signed and what is sent; the body is serialized once.
    fn send(
        &self,
        method: Method,
        path: &str,
        query: Option<&[(&str, &str)]>,
        body: Option<&serde_json::Value>,
        signed: bool,
    ) -> Result<serde_json::Value> {
        // The URL built here is both what is signed and what is sent.
        let url = http::with_query(format!("{}{path}", self.base), query.unwrap_or_default());
        let body_bytes = body.map(|b| serde_json::to_vec(b).expect("JSON values serialize"));
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("Accept", "application/json".to_string()),
            ("X-Accept-Version", "2.0.0".to_string()),
            ("x-bitpay-plugin-info", http::USER_AGENT.to_string()),
        ];
        if signed {
            if let Some(identity) = &self.identity {
                let mut message = url.clone().into_bytes();
                message.extend_from_slice(body_bytes.as_deref().unwrap_or_default());
                headers.push(("X-Identity", identity.public_key_hex()));
                headers.push(("X-Signature", identity.sign(&message)));
            }
        }
        log::debug!("BitPay {method} {}", redact_token(&url));
        let request = http::Request {
            method,
            url: url.clone(),
            headers,
            body: body_bytes,
        };
        let http::Reply {
            status, body: text, ..
        } = self
            .http
            .send(request)
            .map_err(|e| BitPayError::Transport {
                url: redact_token(&url),
                message: e.message,
            })?;
        log::debug!("BitPay HTTP {status}, {} bytes", text.len());
        classify(status, &text, &redact_token(&url))
    }
}

/// Raw access for `doctor`'s probe.
impl BitPayClient {
    /// An unsigned `GET path`.
    pub fn get_unsigned(&self, path: &str) -> Result<serde_json::Value> {
        self.send(Method::GET, path, None, None, false)
    }
}

fn decode<T: DeserializeOwned>(url: &str, data: serde_json::Value) -> Result<T> {
    serde_json::from_value(data).map_err(|e| BitPayError::Decode {
        url: url.to_string(),
        message: e.to_string(),
    })
}

/// Turns a reply into its `data` or a typed error, checking all three error shapes even on
/// 2xx (reference section 7).
fn classify(status: u16, text: &str, url: &str) -> Result<serde_json::Value> {
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let error_message = json.as_ref().and_then(error_message);
    if (200..300).contains(&status) && error_message.is_none() {
        let json = json.ok_or_else(|| BitPayError::Decode {
            url: url.to_string(),
            message: format!("not JSON: {}", snippet(text)),
        })?;
        return Ok(match json {
            serde_json::Value::Object(mut map) if map.contains_key("data") => {
                map.remove("data").unwrap_or_default()
            }
            other => other,
        });
    }
    let message = error_message.unwrap_or_else(|| {
        if text.trim().is_empty() {
            "(empty reply)".to_string()
        } else {
            snippet(text)
        }
    });
    if status == 429 || status >= 500 && !is_definitive_500(&message) {
        return Err(BitPayError::Unavailable { status, message });
    }
    let code = json.as_ref().and_then(|j| j.get("code")).and_then(|c| {
        c.as_str()
            .map(str::to_string)
            .or_else(|| c.as_i64().map(|n| n.to_string()))
    });
    Err(BitPayError::Api {
        status,
        code,
        message,
    })
}

/// BitPay answers some definitive refusals with HTTP 500 (pairing failures).
fn is_definitive_500(message: &str) -> bool {
    message.contains("Unable to create token") || message.contains("Unauthorized sin")
}

fn error_message(json: &serde_json::Value) -> Option<String> {
    if let Some(errors) = json.get("errors").and_then(|e| e.as_array()) {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let text = e.get("error").and_then(|m| m.as_str()).unwrap_or("error");
                match e.get("param").and_then(|p| p.as_str()) {
                    Some(param) => format!("{text} ({param})"),
                    None => text.to_string(),
                }
            })
            .collect();
        return Some(parts.join("; "));
    }
    match json.get("error") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => Some(
            o.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| serde_json::Value::Object(o.clone()).to_string()),
        ),
        Some(serde_json::Value::Null) | None => (json.get("status").and_then(|s| s.as_str())
            == Some("error"))
        .then(|| "unspecified error".to_string()),
        Some(other) => Some(other.to_string()),
    }
}

fn snippet(text: &str) -> String {
    let trimmed: String = text.trim().chars().take(200).collect();
    if trimmed.len() < text.trim().len() {
        format!("{trimmed}…")
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::canned::Canned;
    use crate::http::{Reply, TransportError};

    fn settings() -> BitPaySettings {
        crate::config::Config::parse(
            std::path::Path::new("/x.toml"),
            "[splynx]\nurl = \"https://s.example\"\napi_key = \"k\"\napi_secret = \"s\"\npayment_method_id = 7\n[bitpay]\nenvironment = \"test\"\napi_url = \"https://bitpay.example\"\ncurrency = \"USD\"\n[storage]\ndata_dir = \"/d\"\n",
        )
        .unwrap()
        .bitpay
    }

    #[test]
    fn requests_are_signed_over_url_and_body() {
        let identity = Identity::from_secret_bytes(&[7; 32]).unwrap();
        let public = identity.public_key_hex();
        let canned = Canned::new(vec![Ok(Reply::new(
            200,
            r#"{"facade":"pos/invoice","data":{"id":"Inv1","status":"new","price":"51.61","currency":"USD"}}"#,
        ))]);
        let client = BitPayClient::with_transport(&settings(), Some(identity), canned.clone());
        let invoice = client.invoice("Inv1", "TokenValue").unwrap();
        assert_eq!(invoice.id, "Inv1");
        let sent = &canned.requests()[0];
        assert_eq!(
            sent.url,
            "https://bitpay.example/invoices/Inv1?token=TokenValue"
        );
        assert_eq!(sent.header("X-Identity"), Some(public.as_str()));
        assert_eq!(sent.header("X-Accept-Version"), Some("2.0.0"));
        let signature = sent.header("X-Signature").unwrap();
        assert!(crate::bitpay::identity::verify(
            &public,
            sent.url.as_bytes(),
            signature
        ));
        assert!(!crate::bitpay::identity::verify(
            &public,
            b"https://bitpay.example/other",
            signature
        ));
    }

    #[test]
    fn replies_are_classified_and_never_name_the_token() {
        let identity = Identity::from_secret_bytes(&[7; 32]).unwrap();
        let canned = Canned::new(vec![
            Ok(Reply::new(503, "<html>busy</html>")),
            Ok(Reply::new(502, "")),
            Ok(Reply::new(503, "")),
            Ok(Reply::new(401, r#"{"error":"Unauthorized sin"}"#)),
            Err(TransportError {
                message: "connection closed".into(),
                may_have_arrived: true,
            }),
        ]);
        let mut client = BitPayClient::with_transport(&settings(), Some(identity), canned.clone());
        client.retry_pause = Duration::ZERO;
        // GETs are tried three times on 5xx, then reported as temporary.
        let busy = client.invoice("Inv1", "SecretToken").unwrap_err();
        assert!(busy.is_temporary(), "{busy}");
        assert_eq!(canned.requests().len(), 3);
        let refused = client.invoice("Inv1", "SecretToken").unwrap_err();
        assert!(refused.is_authorization(), "{refused}");
        assert_eq!(refused.exit_code(), ExitCode::Config);
        let dropped = client.invoice("Inv1", "SecretToken").unwrap_err();
        assert!(dropped.is_temporary());
        for e in [busy, refused, dropped] {
            assert!(!e.to_string().contains("SecretToken"), "{e}");
        }
    }

    #[test]
    fn all_three_error_shapes_keep_the_message() {
        let coded = classify(400, r#"{"status":"error","code":"010207","data":null,"error":"Invalid invoice state for refund"}"#, "u").unwrap_err();
        assert!(
            matches!(&coded, BitPayError::Api { code: Some(c), message, .. } if c == "010207" && message == "Invalid invoice state for refund")
        );
        let plain = classify(401, r#"{"error":"Invalid signature"}"#, "u").unwrap_err();
        assert_eq!(plain.message(), "Invalid signature");
        assert!(plain.is_authorization());
        let list = classify(400, r#"{"errors":[{"error":"Missing required parameter.","param":"price"},{"error":"Missing required parameter.","param":"currency"}]}"#, "u").unwrap_err();
        assert_eq!(
            list.message(),
            "Missing required parameter. (price); Missing required parameter. (currency)"
        );
        let in_200 = classify(
            200,
            r#"{"status":"error","error":"Token is disabled"}"#,
            "u",
        )
        .unwrap_err();
        assert!(in_200.is_authorization());
    }

    #[test]
    fn pairing_500s_are_definitive_other_5xx_temporary() {
        let pairing = classify(500, r#"{"error":"Unable to create token"}"#, "u").unwrap_err();
        assert!(matches!(pairing, BitPayError::Api { status: 500, .. }));
        let outage = classify(503, "<html>down</html>", "u").unwrap_err();
        assert!(outage.is_temporary());
        assert!(classify(429, "", "u").unwrap_err().is_temporary());
    }

    #[test]
    fn unwraps_data_and_redacts_tokens() {
        assert_eq!(
            classify(200, r#"{"facade":"pos/invoice","data":{"id":"x"}}"#, "u").unwrap()["id"],
            "x"
        );
        assert_eq!(
            redact_token("https://b/invoices/1?token=SECRET&x=1"),
            "https://b/invoices/1?token=(redacted)&x=1"
        );
        assert_eq!(
            redact_token("https://b/invoices?token=SECRET"),
            "https://b/invoices?token=(redacted)"
        );
    }
}
