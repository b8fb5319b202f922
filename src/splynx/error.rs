//! What can go wrong talking to Splynx, and what each failure means: whether a payment
//! may have been applied anyway, which exit code it is, which permission is missing.

use crate::http::Method;
use serde::de::DeserializeOwned;

use super::state::StateError;

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
    State(#[from] StateError),
}

impl crate::exit::Failing for SplynxError {
    fn exit_code(&self) -> crate::exit::ExitCode {
        use crate::exit::ExitCode;
        match self.cause() {
            _ if self.is_temporary() => ExitCode::Temporary,
            SplynxError::Unauthorized { .. } | SplynxError::Forbidden { .. } => ExitCode::Config,
            SplynxError::InvalidSash { .. } => ExitCode::BadInput,
            _ => ExitCode::Failure,
        }
    }
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
    pub(super) fn before_sending(self) -> SplynxError {
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

    pub fn is_temporary(&self) -> bool {
        match self {
            SplynxError::BeforeSending(inner) => inner.is_temporary(),
            SplynxError::Transport { .. } | SplynxError::Unavailable { .. } => true,
            SplynxError::State(e) => e.temporary,
            _ => false,
        }
    }
}

/// A payment whose outcome Splynx has not told: it may still commit one whose reply never
/// came, so the credit waits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentUnsettled {
    #[error("the Splynx payment for {server} invoice {invoice} was sent at {sent_at} and its outcome is unknown; it is only looked up, not sent again, until {until} (splynx.payment_grace_seconds)")]
    InGrace {
        server: &'static str,
        invoice: String,
        sent_at: String,
        until: String,
    },
    #[error("the Splynx payment for {server} invoice {invoice} may or may not have been made; later runs look it up and send it again only after {until}")]
    OutcomeUnknown {
        server: &'static str,
        invoice: String,
        until: String,
    },
}

impl crate::exit::Failing for PaymentUnsettled {
    /// The webhook's sender and cron try again.
    fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::Temporary
    }
}

pub type Result<T> = std::result::Result<T, SplynxError>;

pub(super) fn decode<T: DeserializeOwned>(path: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| SplynxError::Decode {
        path: path.to_string(),
        message: e.to_string(),
    })
}

pub(super) fn classify(
    status: u16,
    text: String,
    method: &Method,
    path: &str,
    what: &str,
) -> Result<String> {
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
