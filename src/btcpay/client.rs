//! BTCPay Server's Greenfield API client: `Authorization: token <key>`, JSON in and out,
//! errors by what they mean (reference §1 and §9). Nothing is signed.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::model::{Invoice, KeyInfo, Payout, PullPayment};
use crate::exit::{ExitCode, Failing};
use crate::http::{self, Method, Transport};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum BtcpayError {
    #[error("BTCPay Server at {url} is unreachable: {message}")]
    Transport { url: String, message: String },
    /// 5xx, 408, 429: BTCPay itself retries on these; so do we, later.
    #[error("BTCPay Server answered HTTP {status} (temporary; try again later): {message}")]
    Unavailable { status: u16, message: String },
    #[error("BTCPay Server refused the API key (HTTP 401: {message}): connect again")]
    Unauthorized { message: String },
    /// 403: a missing permission, or an invoice of another store, or one that does not
    /// exist (BTCPay answers 403, not 404, for an unknown invoice id).
    #[error("BTCPay Server refused the request (HTTP 403{}): {message}", permission.as_deref().map(|p| format!(", missing permission {p}")).unwrap_or_default())]
    Forbidden {
        permission: Option<String>,
        message: String,
    },
    #[error("BTCPay Server rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("BTCPay Server's reply to {url} could not be read: {message}")]
    Decode { url: String, message: String },
}

impl BtcpayError {
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            BtcpayError::Transport { .. } | BtcpayError::Unavailable { .. }
        )
    }

    /// BTCPay's own words.
    pub fn message(&self) -> &str {
        match self {
            BtcpayError::Transport { message, .. }
            | BtcpayError::Unavailable { message, .. }
            | BtcpayError::Unauthorized { message }
            | BtcpayError::Forbidden { message, .. }
            | BtcpayError::Rejected { message, .. }
            | BtcpayError::Decode { message, .. } => message,
        }
    }
}

impl Failing for BtcpayError {
    fn exit_code(&self) -> ExitCode {
        match self {
            _ if self.is_temporary() => ExitCode::Temporary,
            BtcpayError::Unauthorized { .. } => ExitCode::Config,
            BtcpayError::Forbidden {
                permission: Some(_),
                ..
            } => ExitCode::Config,
            _ => ExitCode::Failure,
        }
    }
}

pub type Result<T> = std::result::Result<T, BtcpayError>;

/// Invoices listed per request: without `take` BTCPay answers every match at once.
pub const PAGE: usize = 100;

pub struct BtcpayClient {
    http: Arc<dyn Transport>,
    /// No trailing slash.
    base: String,
    api_key: Secret,
    store_id: String,
}

impl BtcpayClient {
    pub fn new(
        base: &str,
        api_key: Secret,
        store_id: &str,
        http: Arc<dyn Transport>,
    ) -> BtcpayClient {
        BtcpayClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            api_key,
            store_id: store_id.to_string(),
        }
    }

    /// The configured server and store, with `key`.
    pub fn configured(config: &crate::config::Config, key: Secret) -> BtcpayClient {
        BtcpayClient::new(
            &config.btcpay.url,
            key,
            &config.btcpay.store_id,
            http::transport(config.bitpay.timeout),
        )
    }

    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// `POST /api/v1/stores/{store}/invoices`. Never retried: BTCPay has no idempotent
    /// create, so a lost answer is looked up by order id (`invoices_by_order_id`).
    pub fn create_invoice(&self, body: &serde_json::Value) -> Result<Invoice> {
        let path = format!("/api/v1/stores/{}/invoices", self.store_id);
        self.call(Method::POST, &path, &[], Some(body))
    }

    /// The store-scoped route, which every 2.x server has (the store-less one is 2.4+).
    pub fn invoice(&self, id: &str) -> Result<Invoice> {
        let path = format!("/api/v1/stores/{}/invoices/{id}", self.store_id);
        self.call(Method::GET, &path, &[], None)
    }

    /// The store's invoices with `metadata.orderId` = `order_id` (exact; newest first).
    pub fn invoices_by_order_id(&self, order_id: &str) -> Result<Vec<Invoice>> {
        let take = PAGE.to_string();
        self.list(&[("orderId", order_id), ("take", take.as_str())])
    }

    /// One page of the store's invoices created from `start` to `end` (unix seconds, both
    /// included), newest first.
    pub fn invoices_created(&self, start: i64, end: i64, skip: usize) -> Result<Vec<Invoice>> {
        let (start, end) = (start.to_string(), end.to_string());
        let (skip, take) = (skip.to_string(), PAGE.to_string());
        self.list(&[
            ("startDate", start.as_str()),
            ("endDate", end.as_str()),
            ("skip", skip.as_str()),
            ("take", take.as_str()),
        ])
    }

    fn list(&self, query: &[(&str, &str)]) -> Result<Vec<Invoice>> {
        let path = format!("/api/v1/stores/{}/invoices", self.store_id);
        self.call(Method::GET, &path, query, None)
    }

    /// `POST /api/v1/stores/{store}/invoices/{id}/refund`: a pull payment. Never retried:
    /// each call makes another, so a lost answer is looked up (`pull_payments`).
    pub fn refund_invoice(&self, id: &str, body: &serde_json::Value) -> Result<PullPayment> {
        let path = format!("/api/v1/stores/{}/invoices/{id}/refund", self.store_id);
        self.call(Method::POST, &path, &[], Some(body))
    }

    /// The store's pull payments, archived ones too (`canviewpullpayments`).
    pub fn pull_payments(&self) -> Result<Vec<PullPayment>> {
        let path = format!("/api/v1/stores/{}/pull-payments", self.store_id);
        self.call(Method::GET, &path, &[("includeArchived", "true")], None)
    }

    pub fn pull_payment(&self, id: &str) -> Result<PullPayment> {
        self.call(
            Method::GET,
            &format!("/api/v1/pull-payments/{id}"),
            &[],
            None,
        )
    }

    /// Every payout claimed on pull payment `id`, cancelled ones too.
    pub fn payouts(&self, id: &str) -> Result<Vec<Payout>> {
        let path = format!("/api/v1/pull-payments/{id}/payouts");
        self.call(Method::GET, &path, &[("includeCancelled", "true")], None)
    }

    /// The store's webhooks (`id`, `url`, `enabled`; never the secret).
    pub fn webhooks(&self) -> Result<Vec<serde_json::Value>> {
        let path = format!("/api/v1/stores/{}/webhooks", self.store_id);
        self.call(Method::GET, &path, &[], None)
    }

    /// Registers a webhook; BTCPay generates its secret and shows it only in this answer.
    pub fn create_webhook(&self, body: &serde_json::Value) -> Result<serde_json::Value> {
        let path = format!("/api/v1/stores/{}/webhooks", self.store_id);
        self.call(Method::POST, &path, &[], Some(body))
    }

    pub fn delete_webhook(&self, id: &str) -> Result<()> {
        let path = format!("/api/v1/stores/{}/webhooks/{id}", self.store_id);
        self.call::<serde_json::Value>(Method::DELETE, &path, &[], None)
            .map(|_| ())
    }

    /// The store itself (`name`, `defaultCurrency`; needs `canviewstoresettings`).
    pub fn store(&self) -> Result<serde_json::Value> {
        let path = format!("/api/v1/stores/{}", self.store_id);
        self.call(Method::GET, &path, &[], None)
    }

    /// A webhook's last `count` deliveries, newest first (`status`, `httpCode`,
    /// `errorMessage`, `timestamp`).
    pub fn deliveries(&self, webhook_id: &str, count: usize) -> Result<Vec<serde_json::Value>> {
        let path = format!(
            "/api/v1/stores/{}/webhooks/{webhook_id}/deliveries",
            self.store_id
        );
        let count = count.to_string();
        self.call(Method::GET, &path, &[("count", count.as_str())], None)
    }

    /// `GET /api/v1/server/info`: its version (any valid key may ask).
    pub fn server_info(&self) -> Result<serde_json::Value> {
        self.call(Method::GET, "/api/v1/server/info", &[], None)
    }

    /// `DELETE /api/v1/api-keys/current`: the key revokes itself (disconnecting).
    pub fn revoke_current_key(&self) -> Result<()> {
        self.call::<serde_json::Value>(Method::DELETE, "/api/v1/api-keys/current", &[], None)
            .map(|_| ())
    }

    /// `GET /api/v1/api-keys/current`: whether the key works, and what it may do.
    pub fn current_key(&self) -> Result<KeyInfo> {
        self.call(Method::GET, "/api/v1/api-keys/current", &[], None)
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let url = http::with_query(format!("{}{path}", self.base), query);
        let request = http::Request {
            method,
            url: url.clone(),
            headers: vec![
                ("Authorization", format!("token {}", self.api_key.expose())),
                ("Content-Type", "application/json".to_string()),
                ("Accept", "application/json".to_string()),
                ("User-Agent", http::USER_AGENT.to_string()),
            ],
            body: body.map(|b| serde_json::to_vec(b).expect("JSON values serialize")),
        };
        log::debug!("BTCPay {} {url}", request.method);
        let reply = self
            .http
            .send(request)
            .map_err(|e| BtcpayError::Transport {
                url: url.clone(),
                message: e.message,
            })?;
        let text = classify(reply.status, &reply.body)?;
        // A DELETE answers 200 with an empty body.
        let text = if text.trim().is_empty() { "null" } else { text };
        serde_json::from_str(text).map_err(|e| BtcpayError::Decode {
            url,
            message: e.to_string(),
        })
    }
}

/// A reply as its body, or the error its status and body say (reference §9).
fn classify(status: u16, body: &str) -> Result<&str> {
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let message = match &parsed {
        // 422: `[{"path": "Amount", "message": "…"}]`.
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                format!(
                    "{}: {}",
                    i["path"].as_str().unwrap_or("?"),
                    i["message"].as_str().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| body.chars().take(200).collect()),
    };
    Err(match status {
        401 => BtcpayError::Unauthorized { message },
        403 => BtcpayError::Forbidden {
            permission: parsed["missingPermission"]
                .as_str()
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            message,
        },
        408 | 429 | 500..=599 => BtcpayError::Unavailable { status, message },
        _ => BtcpayError::Rejected { status, message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::canned::Canned;
    use crate::http::Reply;

    fn client(canned: Arc<Canned>) -> BtcpayClient {
        BtcpayClient::new(
            "https://btcpay.example/",
            Secret::new("0123abcd"),
            "Store1",
            canned,
        )
    }

    #[test]
    fn requests_carry_the_token_and_the_store() {
        let canned = Canned::new(vec![Ok(Reply::new(
            200,
            r#"{"id":"Inv1","status":"New","additionalStatus":"None","amount":"5.00"}"#,
        ))]);
        let invoice = client(canned.clone()).invoice("Inv1").unwrap();
        assert_eq!(invoice.status, "New");
        let sent = &canned.requests()[0];
        assert_eq!(
            sent.url,
            "https://btcpay.example/api/v1/stores/Store1/invoices/Inv1"
        );
        assert_eq!(sent.header("Authorization"), Some("token 0123abcd"));
    }

    #[test]
    fn errors_say_what_they_mean() {
        let canned = Canned::new(vec![
            Ok(Reply::new(
                401,
                r#"{"code":"unauthenticated","message":"ApiKey authentication failed: Unknown API Key"}"#,
            )),
            Ok(Reply::new(
                403,
                r#"{"code":"missing-permission","message":"Insufficient API Permissions.","missingPermission":"btcpay.store.cancreateinvoice"}"#,
            )),
            Ok(Reply::new(
                422,
                r#"[{"path":"Amount","message":"The amount should be 0 or more."}]"#,
            )),
            Ok(Reply::new(503, "Service Unavailable")),
        ]);
        let client = client(canned);
        let unknown = client.current_key().unwrap_err();
        assert!(matches!(unknown, BtcpayError::Unauthorized { .. }));
        assert_eq!(unknown.exit_code(), ExitCode::Config);
        let missing = client.invoice("X").unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("btcpay.store.cancreateinvoice"),
            "{missing}"
        );
        let rejected = client.create_invoice(&serde_json::json!({})).unwrap_err();
        assert!(
            rejected
                .to_string()
                .contains("Amount: The amount should be 0 or more."),
            "{rejected}"
        );
        assert!(client.invoice("X").unwrap_err().is_temporary());
    }

    #[test]
    fn lists_are_paged() {
        let canned = Canned::new(vec![Ok(Reply::new(200, "[]"))]);
        client(canned.clone())
            .invoices_created(1700000000, 1800000000, 200)
            .unwrap();
        let url = &canned.requests()[0].url;
        assert!(
            url.ends_with("/invoices?startDate=1700000000&endDate=1800000000&skip=200&take=100"),
            "{url}"
        );
    }
}
