//! BitPay API models. Lenient on purpose: unknown fields are ignored, numbers may arrive as
//! strings, `exceptionStatus` is `false` or a string, and totals may exceed 64 bits.

use rust_decimal::Decimal;
use serde::de::Deserializer;
use serde::Deserialize;

use crate::money::{de_opt_id, de_opt_money, de_text};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Invoice {
    #[serde(deserialize_with = "de_text")]
    pub id: String,
    #[serde(deserialize_with = "de_text")]
    pub url: String,
    #[serde(deserialize_with = "de_text")]
    pub status: String,
    #[serde(deserialize_with = "de_opt_money")]
    pub price: Option<Decimal>,
    #[serde(deserialize_with = "de_text")]
    pub currency: String,
    #[serde(deserialize_with = "de_text")]
    pub order_id: String,
    #[serde(deserialize_with = "de_text")]
    pub pos_data: String,
    #[serde(deserialize_with = "de_text")]
    pub guid: String,
    #[serde(deserialize_with = "de_opt_id")]
    pub invoice_time: Option<i64>,
    #[serde(deserialize_with = "de_opt_id")]
    pub expiration_time: Option<i64>,
    #[serde(deserialize_with = "de_exception_status")]
    pub exception_status: Option<String>,
    #[serde(deserialize_with = "de_text")]
    pub transaction_currency: String,
    /// Smallest unit of the coin; may exceed 64 bits, so kept as JSON text.
    pub amount_paid: serde_json::Value,
    #[serde(deserialize_with = "de_text")]
    pub display_amount_paid: String,
    pub transactions: Vec<Transaction>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Transaction {
    #[serde(deserialize_with = "de_text")]
    pub txid: String,
    pub amount: serde_json::Value,
    pub confirmations: serde_json::Value,
}

impl Invoice {
    /// Coin and transaction ids, for the Splynx payment's fields.
    pub fn transaction_ids(&self) -> String {
        self.transactions
            .iter()
            .map(|t| t.txid.as_str())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `false`/`null` → `None`; a string → `Some`.
fn de_exception_status<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) if !s.is_empty() && s != "false" => Some(s),
        serde_json::Value::Bool(true) => Some("true".into()),
        _ => None,
    })
}

/// One token from `POST /tokens`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenGrant {
    #[serde(deserialize_with = "de_text")]
    pub token: String,
    #[serde(deserialize_with = "de_text")]
    pub facade: String,
    #[serde(deserialize_with = "de_text")]
    pub pairing_code: String,
    #[serde(deserialize_with = "de_opt_id")]
    pub pairing_expiration: Option<i64>,
    #[serde(deserialize_with = "de_opt_id")]
    pub date_created: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the webhook body is empty")]
    Empty,
    #[error("the webhook body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the webhook body is not JSON: {0}")]
    NotJson(String),
    #[error("the webhook body has no invoice id (expected `id` or `data.id`)")]
    NoInvoiceId,
    #[error("the webhook's invoice id {0:?} is not a BitPay invoice id")]
    BadInvoiceId(String),
}

pub const WEBHOOK_MAX_BYTES: usize = 64 * 1024;

/// What we take from a webhook: only the invoice id (and, for the journal, the event and the
/// status it claims). Everything else is untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub invoice_id: String,
    pub event: Option<String>,
    pub claimed_status: Option<String>,
}

/// Parses both webhook formats: extended `{event, data: {id, ...}}` and the flat legacy one.
pub fn parse_webhook(body: &[u8]) -> Result<Webhook, WebhookError> {
    if body.len() > WEBHOOK_MAX_BYTES {
        return Err(WebhookError::TooLarge(WEBHOOK_MAX_BYTES));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WebhookError::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let payload = match value.get("data") {
        Some(data) if data.is_object() => data,
        _ => &value,
    };
    let id = match payload.get("id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(WebhookError::NoInvoiceId),
    };
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WebhookError::BadInvoiceId(id.chars().take(80).collect()));
    }
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    Ok(Webhook {
        invoice_id: id,
        event: text(value.get("event").and_then(|e| e.get("name"))),
        claimed_status: text(payload.get("status")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_and_loose_types() {
        let extended = br#"{"event":{"code":1005,"name":"invoice_confirmed"},"data":{"id":"Abc123","status":"confirmed","price":"19537.1","paymentTotals":{"PAX":76700000000000000000},"exceptionStatus":false}}"#;
        let parsed = parse_webhook(extended).unwrap();
        assert_eq!(parsed.invoice_id, "Abc123");
        assert_eq!(parsed.event.as_deref(), Some("invoice_confirmed"));
        let legacy = br#"{"id":"Hpqc62dfE1ZjzeeH4kEycF","status":"paid","price":10,"amountPaid":"1025900","exceptionStatus":"paidOver"}"#;
        assert_eq!(
            parse_webhook(legacy).unwrap().invoice_id,
            "Hpqc62dfE1ZjzeeH4kEycF"
        );
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(parse_webhook(b"  "), Err(WebhookError::Empty));
        assert!(matches!(
            parse_webhook(b"{nope"),
            Err(WebhookError::NotJson(_))
        ));
        assert_eq!(
            parse_webhook(br#"{"data":{"status":"paid"}}"#),
            Err(WebhookError::NoInvoiceId)
        );
        assert_eq!(parse_webhook(b"[1,2]"), Err(WebhookError::NoInvoiceId));
        assert!(matches!(
            parse_webhook(br#"{"id":"../etc"}"#),
            Err(WebhookError::BadInvoiceId(_))
        ));
        let big = vec![b' '; WEBHOOK_MAX_BYTES + 1];
        assert_eq!(
            parse_webhook(&big),
            Err(WebhookError::TooLarge(WEBHOOK_MAX_BYTES))
        );
    }

    #[test]
    fn invoice_tolerates_real_payloads() {
        let json = r#"{"id":"X","status":"paid","price":"76.70","currency":"USD","exceptionStatus":false,
            "orderId":12345,"amountPaid":76700000000000000000,"invoiceTime":"1678714659517",
            "transactions":[{"txid":"t1","amount":1,"confirmations":"2"}],"unknownField":{"x":1}}"#;
        let invoice: Invoice = serde_json::from_str(json).unwrap();
        assert_eq!(invoice.price.unwrap().to_string(), "76.70");
        assert_eq!(invoice.order_id, "12345");
        assert_eq!(invoice.exception_status, None);
        assert_eq!(invoice.invoice_time, Some(1678714659517));
        assert_eq!(invoice.transaction_ids(), "t1");
        let over: Invoice = serde_json::from_str(r#"{"exceptionStatus":"paidOver"}"#).unwrap();
        assert_eq!(over.exception_status.as_deref(), Some("paidOver"));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            #[test]
            fn any_bytes_parse_or_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = parse_webhook(&body);
            }

            #[test]
            fn any_json_parses_or_fails_cleanly(text in "[\\[\\]{}:,\"a-z0-9 .eE+-]{0,400}") {
                let _ = parse_webhook(text.as_bytes());
            }

            #[test]
            fn both_formats_yield_exactly_the_id(
                id in "[A-Za-z0-9]{1,64}",
                status in "[a-z]{0,12}",
                price in prop_oneof![Just(json_number("10.5")), Just(serde_json::json!("19537.1")), Just(serde_json::json!(null))],
                exception in prop_oneof![Just(serde_json::json!(false)), Just(serde_json::json!("paidOver"))],
            ) {
                let data = serde_json::json!({"id": id, "status": status, "price": price, "exceptionStatus": exception,
                                              "paymentTotals": {"PAX": json_number("76700000000000000000")}});
                let extended = serde_json::json!({"event": {"code": 1005, "name": "invoice_confirmed"}, "data": data});
                for body in [data.to_string(), extended.to_string()] {
                    let parsed = parse_webhook(body.as_bytes()).unwrap();
                    prop_assert_eq!(&parsed.invoice_id, &id);
                }
            }
        }

        fn json_number(text: &str) -> serde_json::Value {
            serde_json::from_str(text).unwrap()
        }
    }
}
