//! Splynx API v2 client with `Splynx-EA` signature authentication.
//!
//! Splynx keys may check that every nonce is greater than the last one seen. Many processes
//! (webhooks, portal clicks, cron) share one key, so each request takes the next nonce from
//! the state store and holds a cross-process lock until its reply arrives: requests reach
//! Splynx in nonce order.

use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use std::sync::Arc;

use crate::http::{Method, Transport};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use url::form_urlencoded;

use super::model::{Administrator, Customer, FinanceDocument, Payment, PaymentMethod};
use crate::config::{SplynxAuth, SplynxSettings};
use crate::lock;
use crate::secret::Secret;

use crate::{clock, http};

#[derive(Debug, thiserror::Error)]
pub enum SplynxError {
    #[error("Splynx API at {url} is unreachable: {message}")]
    Transport {
        url: String,
        message: String,
        /// The request may have been processed (see [`http::TransportError`]).
        may_have_arrived: bool,
    },
    #[error("Splynx API answered HTTP {status} (temporary; try again later): {message}")]
    Unavailable { status: u16, message: String },
    #[error("Splynx refused the API key (HTTP 401: {message}); check splynx.api_key and splynx.api_secret, and that the key is enabled in Administration → API keys")]
    Unauthorized { message: String },
    #[error("the Splynx API key may not {action} ({message}); grant it in Administration → API keys → Permissions → {permission}")]
    Forbidden {
        permission: String,
        action: String,
        message: String,
    },
    #[error("Splynx has no {what}")]
    NotFound { what: String },
    #[error("Splynx does not know this administrator session (sash): {message}; open the page again from the Splynx admin panel")]
    InvalidSash { message: String },
    #[error("Splynx rejected the data (HTTP 422): {message}")]
    Validation { message: String, body: String },
    #[error("Splynx API error (HTTP {status}): {message}")]
    Api { status: u16, message: String },
    #[error("Splynx API reply to {path} could not be read: {message}")]
    Decode { path: String, message: String },
    /// Failed before the request was sent (e.g. while getting an access token).
    #[error(transparent)]
    BeforeSending(Box<SplynxError>),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl SplynxError {
    /// For a request that changes data: true when this error does not prove Splynx left
    /// it undone (no reply, a dropped connection, a 5xx, an unreadable 2xx).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            SplynxError::Transport {
                may_have_arrived, ..
            } => *may_have_arrived,
            SplynxError::Unavailable { .. } | SplynxError::Decode { .. } => true,
            _ => false,
        }
    }

    /// The same error, marked as one that happened before the request itself was sent
    /// (while getting an access token, say).
    fn before_sending(self) -> SplynxError {
        match self {
            SplynxError::BeforeSending(_) => self,
            other => SplynxError::BeforeSending(Box::new(other)),
        }
    }

    /// The error itself, without the "before sending" mark.
    pub fn cause(&self) -> &SplynxError {
        match self {
            SplynxError::BeforeSending(inner) => inner.cause(),
            other => other,
        }
    }

    pub fn exit_code(&self) -> u8 {
        use crate::exit::{BAD_INPUT, CONFIG, FAILURE, TEMPORARY};
        match self.cause() {
            _ if self.is_temporary() => TEMPORARY,
            SplynxError::Unauthorized { .. } | SplynxError::Forbidden { .. } => CONFIG,
            SplynxError::InvalidSash { .. } => BAD_INPUT,

            _ => FAILURE,
        }
    }

    pub fn is_temporary(&self) -> bool {
        match self {
            SplynxError::BeforeSending(inner) => inner.is_temporary(),
            SplynxError::Transport { .. } | SplynxError::Unavailable { .. } => true,
            SplynxError::Lock(lock::LockError::Busy { .. }) => true,
            SplynxError::State(e) => e.temporary,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, SplynxError>;

/// Where the client keeps what many processes share: the last nonce per API key and the
/// access token (the state store implements it; the client knows nothing of SQLite).
pub trait SharedState {
    /// The next nonce for `api_key`: greater than every one before, and at least `floor`.
    fn next_nonce(&self, api_key: &str, floor: i64) -> std::result::Result<i64, StateError>;
    /// The shared access token of `owner` and its expiry (unix seconds).
    fn access_token(&self, owner: &str) -> std::result::Result<Option<(Secret, i64)>, StateError>;
    fn save_access_token(
        &self,
        owner: &str,
        token: &Secret,
        expires_at: i64,
    ) -> std::result::Result<(), StateError>;
}

/// The shared state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StateError {
    pub message: String,
    /// Busy or out of room: the next run succeeds.
    pub temporary: bool,
}

/// Borrows the state store it keeps the nonce counter and the shared access token in:
/// one SQLite connection per process (or per reconcile worker).
pub struct SplynxClient<'a> {
    http: Arc<dyn Transport>,
    api_url: String,
    api_key: String,
    api_secret: Secret,
    data_dir: std::path::PathBuf,
    lock_wait: Duration,
    auth: SplynxAuth,
    state: &'a dyn SharedState,
    /// The access token this process uses, and its expiry (unix seconds).
    token: Mutex<Option<(Secret, i64)>>,
}

/// A payment to create (`POST admin/finance/payments`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewPayment {
    pub customer_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i64>,
    pub payment_type: i64,
    pub receipt_number: String,
    pub date: String,
    pub amount: String,
    pub comment: String,
    pub field_1: String,
    pub field_2: String,
    pub field_3: String,
}

/// `UPPER(hex(HMAC-SHA256(secret, nonce ‖ key)))`.
pub fn signature(nonce: i64, api_key: &str, api_secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(api_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(nonce.to_string().as_bytes());
    mac.update(api_key.as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

impl<'a> SplynxClient<'a> {
    pub fn new(
        settings: &SplynxSettings,
        data_dir: &std::path::Path,
        state: &'a dyn SharedState,
    ) -> SplynxClient<'a> {
        SplynxClient::with_transport(settings, data_dir, state, http::transport(settings.timeout))
    }

    /// A client that sends through `http` (tests give it canned replies).
    pub fn with_transport(
        settings: &SplynxSettings,
        data_dir: &std::path::Path,
        state: &'a dyn SharedState,
        http: Arc<dyn Transport>,
    ) -> SplynxClient<'a> {
        SplynxClient {
            http,
            api_url: settings.api_url.clone(),
            api_key: settings.api_key.clone(),
            api_secret: settings.api_secret.clone(),
            data_dir: data_dir.to_path_buf(),
            lock_wait: settings.timeout * 2 + Duration::from_secs(5),
            auth: settings.auth,
            state,
            token: Mutex::new(None),
        }
    }

    /// The administrator whose session hash (`sash`) an add-on admin page received: Splynx
    /// answers as that administrator and names them in `SpL-Administrator-*` headers.
    pub fn administrator(&self, sash: &str) -> Result<Administrator> {
        let reply = self
            .request(
                Method::GET,
                "admin/api/check",
                &[("sash", sash)],
                None,
                "administrator session",
            )
            .map_err(|e| match e {
                SplynxError::Unauthorized { message } | SplynxError::Forbidden { message, .. }
                    if message.to_ascii_lowercase().contains("sash") =>
                {
                    SplynxError::InvalidSash { message }
                }
                other => other,
            })?;
        let id = reply
            .header("SpL-Administrator-Id")
            .and_then(|v| v.trim().parse().ok())
            .filter(|id: &i64| *id > 0);
        let role = reply
            .header("SpL-Administrator-Role")
            .map(str::trim)
            .filter(|r| !r.is_empty());
        match (id, role) {
            (Some(id), Some(role)) => Ok(Administrator {
                id,
                role: role.to_string(),
                partner_id: reply
                    .header("SpL-Administrator-Partner")
                    .and_then(|v| v.trim().parse().ok()),
            }),
            _ => Err(SplynxError::InvalidSash {
                message: "Splynx named no administrator for it (no SpL-Administrator-Id and -Role headers)".into(),
            }),
        }
    }

    pub fn check(&self) -> Result<serde_json::Value> {
        self.get_json("admin/api/check", &[], "API check")
    }

    pub fn customer(&self, id: i64) -> Result<Customer> {
        self.get_json(
            &format!("admin/customers/customer/{id}"),
            &[],
            &format!("customer {id}"),
        )
    }

    pub fn invoice(&self, id: i64) -> Result<FinanceDocument> {
        self.get_json(
            &format!("admin/finance/invoices/{id}"),
            &[],
            &format!("invoice with id {id}"),
        )
    }

    pub fn invoices_by_number(&self, number: &str) -> Result<Vec<FinanceDocument>> {
        self.get_json(
            "admin/finance/invoices",
            &[("main_attributes[number]", number)],
            "invoice list",
        )
    }

    pub fn proforma(&self, id: i64) -> Result<FinanceDocument> {
        self.get_json(
            &format!("admin/finance/proforma-invoices/{id}"),
            &[],
            &format!("proforma invoice with id {id}"),
        )
    }

    pub fn proformas_by_number(&self, number: &str) -> Result<Vec<FinanceDocument>> {
        self.get_json(
            "admin/finance/proforma-invoices",
            &[("main_attributes[number]", number)],
            "proforma invoice list",
        )
    }

    pub fn payment_methods(&self) -> Result<Vec<PaymentMethod>> {
        self.get_json("admin/finance/payment-methods", &[], "payment method list")
    }

    /// Payments whose receipt number is `receipt` (for one customer).
    pub fn payments_by_receipt(&self, receipt: &str, customer_id: i64) -> Result<Vec<Payment>> {
        let customer = customer_id.to_string();
        self.get_json(
            "admin/finance/payments",
            &[
                ("main_attributes[receipt_number]", receipt),
                ("main_attributes[customer_id]", &customer),
            ],
            "payment list",
        )
    }

    /// Creates a payment; returns its id.
    pub fn create_payment(&self, payment: &NewPayment) -> Result<i64> {
        let body = serde_json::to_value(payment).expect("payments serialize");
        let reply = self.request(
            Method::POST,
            "admin/finance/payments",
            &[],
            Some(&body),
            "payment",
        )?;
        let reply = reply.body;
        let value: serde_json::Value = decode("admin/finance/payments", &reply)?;
        value
            .get("id")
            .and_then(|id| {
                id.as_i64()
                    .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| SplynxError::Decode {
                path: "admin/finance/payments".into(),
                message: format!("no payment id in {reply}"),
            })
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<T> {
        let reply = self.request(Method::GET, path, query, None, what)?;
        decode(path, &reply.body)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<http::Reply> {
        let mut url = format!("{}{path}", self.api_url);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON values serialize"));
        let send =
            |authorization: &str| self.exchange(&method, &url, authorization, body.as_deref());
        let reply = match self.auth {
            SplynxAuth::Signature => {
                // Held until the reply is in: the next nonce is only used after this one
                // arrived, so Splynx sees nonces in order even from many processes.
                let _turn = lock::acquire(
                    &self.data_dir,
                    "splynx-api",
                    "the Splynx API request lock",
                    self.lock_wait,
                )?;
                send(&self.signature_header()?)?
            }
            SplynxAuth::AccessToken => {
                let token = self
                    .access_token(None)
                    .map_err(SplynxError::before_sending)?;
                let reply = send(&token_header(&token))?;
                if reply.status == 401 {
                    // Expired, revoked or banned: one fresh token, one more try.
                    let fresh = self
                        .access_token(Some(&token))
                        .map_err(SplynxError::before_sending)?;
                    send(&token_header(&fresh))?
                } else {
                    reply
                }
            }
        };
        let http::Reply {
            status,
            headers,
            body,
        } = reply;
        let body = classify(status, body, &method, path, what)?;
        Ok(http::Reply {
            status,
            headers,
            body,
        })
    }

    fn exchange(
        &self,
        method: &Method,
        url: &str,
        authorization: &str,
        body: Option<&[u8]>,
    ) -> Result<http::Reply> {
        let mut headers = vec![("Accept", "application/json".to_string())];
        if !authorization.is_empty() {
            headers.push(("Authorization", authorization.to_string()));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json".to_string()));
        }
        log::debug!("Splynx {method} {url}");
        let request = http::Request {
            method: method.clone(),
            url: url.to_string(),
            headers,
            body: body.map(<[u8]>::to_vec),
        };
        let reply = self
            .http
            .send(request)
            .map_err(|e| SplynxError::Transport {
                url: url.to_string(),
                message: e.message,
                may_have_arrived: e.may_have_arrived,
            })?;
        log::debug!("Splynx HTTP {}, {} bytes", reply.status, reply.body.len());
        Ok(reply)
    }

    /// `key`, the next nonce and their signature, as `Authorization` wants them.
    fn signature_auth(&self) -> Result<(i64, String)> {
        let nonce = self.state.next_nonce(&self.api_key, clock::now_ms() / 10)?;
        Ok((
            nonce,
            signature(nonce, &self.api_key, self.api_secret.expose()),
        ))
    }

    fn signature_header(&self) -> Result<String> {
        let (nonce, signature) = self.signature_auth()?;
        Ok(format!(
            "Splynx-EA (key={}&nonce={nonce}&signature={signature})",
            self.api_key
        ))
    }

    /// A valid access token shared by every process: from memory, else from the state
    /// store, else a new one (`POST admin/auth/tokens`, signed with a nonce) under a lock.
    /// `rejected` is a token Splynx just refused: it is never handed out again.
    fn access_token(&self, rejected: Option<&Secret>) -> Result<Secret> {
        let usable = |token: &Secret, expires_at: i64| {
            expires_at - clock::now_ms() / 1000 > TOKEN_MARGIN_SECONDS && Some(token) != rejected
        };
        if let Some((token, expires_at)) = self.token.lock().expect("token cache lock").clone() {
            if usable(&token, expires_at) {
                return Ok(token);
            }
        }
        let stored = |client: &SplynxClient<'_>| -> Result<Option<(Secret, i64)>> {
            Ok(client
                .state
                .access_token(&client.token_owner())?
                .filter(|(t, e)| usable(t, *e)))
        };
        let fresh = match stored(self)? {
            Some(found) => found,
            None => {
                let _only_one = lock::acquire(
                    &self.data_dir,
                    "splynx-auth",
                    "the Splynx access token renewal",
                    self.lock_wait,
                )?;
                match stored(self)? {
                    Some(renewed_meanwhile) => renewed_meanwhile,
                    None => {
                        let created = self.create_access_token()?;
                        self.state
                            .save_access_token(&self.token_owner(), &created.0, created.1)?;
                        created
                    }
                }
            }
        };
        *self.token.lock().expect("token cache lock") = Some(fresh.clone());
        Ok(fresh.0)
    }

    /// Whose token a stored one is: the key and a fingerprint of the secret, so a changed
    /// secret is used (and checked) at once instead of when the old token expires.
    fn token_owner(&self) -> String {
        let fingerprint = Sha256::digest(self.api_secret.expose().as_bytes());
        format!("{}:{}", self.api_key, hex::encode(&fingerprint[..8]))
    }

    fn create_access_token(&self) -> Result<(Secret, i64)> {
        let (nonce, signature) = self.signature_auth()?;
        let body = serde_json::json!({"auth_type": "api_key", "key": self.api_key, "nonce": nonce, "signature": signature});
        let url = format!("{}admin/auth/tokens", self.api_url);
        let body = serde_json::to_vec(&body).expect("JSON values serialize");
        let reply = self.exchange(&Method::POST, &url, "", Some(&body))?;
        let text = classify(
            reply.status,
            reply.body,
            &Method::POST,
            "admin/auth/tokens",
            "access token",
        )?;
        let reply: serde_json::Value = decode("admin/auth/tokens", &text)?;
        let token = reply["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SplynxError::Decode {
                path: "admin/auth/tokens".into(),
                message: "no access_token in the reply".into(),
            })?;
        let expires_at = crate::money::id_from_json(&reply["access_token_expiration"])
            .unwrap_or(clock::now_ms() / 1000 + 1800);
        log::info!(
            "new Splynx access token, valid until {}",
            clock::datetime_of(expires_at * 1000)
        );
        Ok((Secret::new(token), expires_at))
    }
}

/// A token this close to expiry is renewed first, so no request carries a dying one.
const TOKEN_MARGIN_SECONDS: i64 = 120;

fn token_header(token: &Secret) -> String {
    format!("Splynx-EA (access_token={})", token.expose())
}

fn decode<T: DeserializeOwned>(path: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| SplynxError::Decode {
        path: path.to_string(),
        message: e.to_string(),
    })
}

fn classify(status: u16, text: String, method: &Method, path: &str, what: &str) -> Result<String> {
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let message = error_message(&text);
    Err(match status {
        401 => SplynxError::Unauthorized { message },
        403 => {
            let (permission, action) = permission_for(method, path);
            SplynxError::Forbidden {
                permission,
                action,
                message,
            }
        }
        404 => SplynxError::NotFound {
            what: what.to_string(),
        },
        422 => {
            log::warn!("Splynx rejected {method} {path} with 422: {text}");
            SplynxError::Validation {
                message,
                body: text,
            }
        }
        429 | 500.. => SplynxError::Unavailable { status, message },
        _ => SplynxError::Api { status, message },
    })
}

/// `{"error":{"message",...}}`, a 422 list `[{"field","message"}]`, or the raw text.
fn error_message(text: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.trim().chars().take(200).collect();
    };
    if let Some(message) = json.pointer("/error/message").and_then(|m| m.as_str()) {
        return message.to_string();
    }
    if let Some(items) = json.as_array() {
        let parts: Vec<String> = items
            .iter()
            .filter_map(|i| {
                let message = i.get("message")?.as_str()?;
                Some(match i.get("field").and_then(|f| f.as_str()) {
                    Some(field) => format!("{field}: {message}"),
                    None => message.to_string(),
                })
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    json.to_string().chars().take(200).collect()
}

/// The permission screen entry and action an API path needs, for 403 messages.
fn permission_for(method: &Method, path: &str) -> (String, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resource = segments.get(2).copied().unwrap_or(path);
    let permission = match (segments.get(1).copied(), resource) {
        (Some("customers"), _) => "Customers → Customer".to_string(),
        (Some("finance"), "invoices") => "Finance → Invoices".to_string(),
        (Some("finance"), "proforma-invoices") => "Finance → Proforma invoices".to_string(),
        (Some("finance"), "payments") => "Finance → Payments".to_string(),
        (Some("finance"), "payment-methods") => "Finance → Payment methods".to_string(),
        (Some(module), resource) => format!("{module} → {resource}"),
        (None, resource) => resource.to_string(),
    };
    let has_id = segments.len() > 3;
    let verb = match *method {
        Method::POST => "add",
        Method::PUT => "update",
        Method::DELETE => "delete",
        _ if has_id => "view",
        _ => "index",
    };
    let action = format!("{verb} {}", resource.replace('-', " "));
    (format!("{permission} ({verb})"), action)
}

/// Raw API access for `doctor`'s probes: any path, the reply as JSON.
impl SplynxClient<'_> {
    pub fn get_value(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<serde_json::Value> {
        self.get_json(path, query, what)
    }

    /// `POST path` with `body`; Splynx's 422 is `SplynxError::Validation`.
    pub fn post_value(&self, path: &str, body: &serde_json::Value, what: &str) -> Result<u16> {
        self.request(Method::POST, path, &[], Some(body), what)
            .map(|reply| reply.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::canned::Canned;
    use crate::http::Reply;

    /// The shared state of one process, in memory.
    #[derive(Default)]
    struct Memory {
        nonce: Mutex<i64>,
        token: Mutex<Option<(Secret, i64)>>,
    }

    impl SharedState for Memory {
        fn next_nonce(&self, _: &str, floor: i64) -> std::result::Result<i64, StateError> {
            let mut last = self.nonce.lock().unwrap();
            *last = (*last + 1).max(floor);
            Ok(*last)
        }
        fn access_token(&self, _: &str) -> std::result::Result<Option<(Secret, i64)>, StateError> {
            Ok(self.token.lock().unwrap().clone())
        }
        fn save_access_token(
            &self,
            _: &str,
            token: &Secret,
            expires_at: i64,
        ) -> std::result::Result<(), StateError> {
            *self.token.lock().unwrap() = Some((token.clone(), expires_at));
            Ok(())
        }
    }

    fn settings(auth: &str) -> SplynxSettings {
        crate::config::Config::parse(
            std::path::Path::new("/x.toml"),
            &format!("[splynx]\nurl = \"https://s.example\"\napi_key = \"key1\"\napi_secret = \"secret1\"\npayment_method_id = 7\nauth = \"{auth}\"\n[bitpay]\nenvironment = \"test\"\ncurrency = \"USD\"\n[storage]\ndata_dir = \"/d\"\n"),
        )
        .unwrap()
        .splynx
    }

    #[test]
    fn signature_auth_signs_every_request_with_a_growing_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let canned = Canned::new(vec![
            Ok(Reply::new(200, r#"{"status":"ok"}"#)),
            Ok(Reply::new(200, r#"{"status":"ok"}"#)),
        ]);
        let state = Memory::default();
        let client = SplynxClient::with_transport(
            &settings("signature"),
            dir.path(),
            &state,
            canned.clone(),
        );
        client.check().unwrap();
        client.check().unwrap();
        let nonces: Vec<i64> = canned
            .requests()
            .iter()
            .map(|r| {
                let header = r.header("Authorization").unwrap();
                let inner = header
                    .strip_prefix("Splynx-EA (")
                    .and_then(|h| h.strip_suffix(')'))
                    .unwrap();
                let fields: std::collections::HashMap<String, String> =
                    form_urlencoded::parse(inner.as_bytes())
                        .into_owned()
                        .collect();
                let nonce: i64 = fields["nonce"].parse().unwrap();
                assert_eq!(fields["key"], "key1");
                assert_eq!(fields["signature"], signature(nonce, "key1", "secret1"));
                nonce
            })
            .collect();
        assert!(nonces[1] > nonces[0], "{nonces:?}");
        assert_eq!(
            canned.requests()[0].url,
            "https://s.example/api/2.0/admin/api/check"
        );
    }

    #[test]
    fn an_access_token_is_shared_and_renewed_once_after_a_401() {
        let dir = tempfile::tempdir().unwrap();
        let far = clock::now_ms() / 1000 + 3600;
        let token = |t: &str| {
            Ok(Reply::new(
                201,
                &format!(r#"{{"access_token":"{t}","access_token_expiration":{far}}}"#),
            ))
        };
        let canned = Canned::new(vec![
            token("T1"),
            Ok(Reply::new(200, "{}")),
            Ok(Reply::new(401, r#"{"error":{"message":"Token expired"}}"#)),
            token("T2"),
            Ok(Reply::new(200, "{}")),
        ]);
        let state = Memory::default();
        let client = SplynxClient::with_transport(
            &settings("access_token"),
            dir.path(),
            &state,
            canned.clone(),
        );
        client.check().unwrap();
        client.check().unwrap();
        let sent = canned.requests();
        let paths: Vec<&str> = sent.iter().map(|r| r.url.as_str()).collect();
        assert!(
            paths[0].ends_with("admin/auth/tokens") && paths[3].ends_with("admin/auth/tokens"),
            "{paths:?}"
        );
        assert_eq!(
            sent[1].header("Authorization"),
            Some("Splynx-EA (access_token=T1)")
        );
        assert_eq!(
            sent[4].header("Authorization"),
            Some("Splynx-EA (access_token=T2)")
        );
        assert_eq!(
            state.token.lock().unwrap().as_ref().unwrap().0.expose(),
            "T2"
        );
    }

    #[test]
    fn signature_is_upper_hex_hmac_of_nonce_then_key() {
        // Same as: printf '%s%s' 100 key | openssl dgst -sha256 -hmac secret
        let sig = signature(100, "key", "secret");
        assert_eq!(sig.len(), 64);
        assert_eq!(sig, sig.to_uppercase());
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"100key");
        assert_eq!(sig, hex::encode_upper(mac.finalize().into_bytes()));
    }

    /// Only a reply or a connection never made proves a payment POST was not applied.
    #[test]
    fn which_failures_leave_a_payment_outcome_unknown() {
        let reply = |status: u16, body: &str| {
            classify(
                status,
                body.into(),
                &Method::POST,
                "admin/finance/payments",
                "payment",
            )
            .unwrap_err()
        };
        let transport = |may_have_arrived| SplynxError::Transport {
            url: "u".into(),
            message: "m".into(),
            may_have_arrived,
        };
        assert!(
            transport(true).outcome_unknown(),
            "timeout or dropped after sending"
        );
        assert!(!transport(false).outcome_unknown(), "never connected");
        assert!(reply(503, "busy").outcome_unknown());
        assert!(reply(500, "{}").outcome_unknown());
        assert!(reply(504, "<html>gateway</html>").outcome_unknown());
        assert!(!reply(422, r#"[{"field":"amount","message":"bad"}]"#).outcome_unknown());
        assert!(!reply(401, "{}").outcome_unknown());
        assert!(!reply(403, "{}").outcome_unknown());
        assert!(!reply(400, "{}").outcome_unknown());
        assert!(SplynxError::Decode {
            path: "p".into(),
            message: "no id".into()
        }
        .outcome_unknown());
        // Failing to get an access token happens before the payment is sent: still
        // temporary (exit 75), but nothing may have been made.
        let before = transport(true).before_sending();
        assert!(!before.outcome_unknown());
        assert!(before.is_temporary());
        let refused = SplynxError::Unauthorized {
            message: "m".into(),
        }
        .before_sending();
        assert!(matches!(refused.cause(), SplynxError::Unauthorized { .. }));
    }

    #[test]
    fn errors_name_the_missing_permission() {
        let err = classify(
            403,
            r#"{"error":{"message":"Permission denied","code":403,"internal_code":"FORBIDDEN"}}"#
                .into(),
            &Method::POST,
            "admin/finance/payments",
            "payment",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("Finance → Payments (add)"), "{text}");
        let view = classify(
            403,
            "{}".into(),
            &Method::GET,
            "admin/customers/customer/4",
            "customer 4",
        )
        .unwrap_err();
        assert!(
            view.to_string().contains("Customers → Customer (view)"),
            "{view}"
        );
        let unprocessable = classify(
            422,
            r#"[{"field":"amount","message":"Amount must be greater than 0"}]"#.into(),
            &Method::POST,
            "admin/finance/payments",
            "payment",
        )
        .unwrap_err();
        assert!(unprocessable
            .to_string()
            .contains("amount: Amount must be greater than 0"));
        assert!(classify(503, "busy".into(), &Method::GET, "x", "x")
            .unwrap_err()
            .is_temporary());
        assert!(matches!(
            classify(404, "{}".into(), &Method::GET, "x", "customer 9").unwrap_err(),
            SplynxError::NotFound { .. }
        ));
    }
}
