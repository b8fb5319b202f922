//! BitPay API models. Lenient on purpose: unknown fields are ignored, numbers may arrive as
//! strings, `exceptionStatus` is `false` or a string, and totals may exceed 64 bits.

use rust_decimal::Decimal;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::money::{de_opt_id, de_opt_money, de_text};
use crate::server::{is_invoice_id, webhook_json};
pub use crate::server::{WebhookError, WEBHOOK_MAX_BYTES};

/// The body of `POST /invoices`, with the fields the official SDKs send.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceRequest<'a> {
    pub token: &'a str,
    /// Exact: a JSON number written from the decimal (`money::json_number`).
    pub price: serde_json::Value,
    pub currency: &'a str,
    pub order_id: &'a str,
    pub item_desc: &'a str,
    /// JSON text BitPay hands back untouched: what the invoice pays, for people reading the
    /// BitPay dashboard.
    pub pos_data: String,
    #[serde(rename = "notificationURL")]
    pub notification_url: &'a str,
    #[serde(rename = "redirectURL")]
    pub redirect_url: String,
    pub transaction_speed: &'a str,
    pub full_notifications: bool,
    pub extended_notifications: bool,
    pub guid: &'a str,
    pub buyer: Buyer<'a>,
}

/// The body of `POST /refunds` (reference §14.3.2): the amount in the invoice's currency,
/// our guid as the idempotency key, BitPay e-mails the buyer for an address.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest<'a> {
    pub token: &'a str,
    pub invoice_id: &'a str,
    /// Exact: a JSON number written from the decimal (`money::json_number`).
    pub amount: serde_json::Value,
    pub currency: &'a str,
    pub preview: bool,
    pub immediate: bool,
    pub buyer_pays_refund_fee: bool,
    /// Ours, ≤ 100 characters, handed back on every answer.
    pub reference: &'a str,
    pub guid: &'a str,
}

/// A refund as BitPay answers it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Refund {
    #[serde(deserialize_with = "de_text")]
    pub id: String,
    #[serde(deserialize_with = "de_text")]
    pub invoice: String,
    #[serde(deserialize_with = "de_text")]
    pub guid: String,
    /// `preview`, `created`, `pending`, `success`, `failure`, `canceled` (or `cancelled`).
    #[serde(deserialize_with = "de_text")]
    pub status: String,
    #[serde(deserialize_with = "de_opt_money")]
    pub amount: Option<Decimal>,
    #[serde(deserialize_with = "de_text")]
    pub currency: String,
}

#[derive(Debug, Serialize)]
pub struct Buyer<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub notify: bool,
}

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
    /// Refunds requested for this invoice (BitPay has no "refunded" status).
    pub refund_info: serde_json::Value,
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
    /// True when BitPay lists a refund for this invoice.
    pub fn has_refund(&self) -> bool {
        match &self.refund_info {
            serde_json::Value::Array(list) => !list.is_empty(),
            serde_json::Value::Object(map) => !map.is_empty(),
            _ => false,
        }
    }

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

/// What we take from a webhook: only the invoice id (and, for the journal, the event and the
/// status it claims). Everything else is untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub invoice_id: String,
    pub event: Option<String>,
    pub claimed_status: Option<String>,
    /// The `exceptionStatus` it claims (`false` → None).
    pub claimed_exception: Option<String>,
    /// The refund id, when this is a refund webhook (codes 7001-7004, `data.invoice`).
    pub refund_id: Option<String>,
}

/// BitPay's refund webhooks carry 7xxx codes (`refund_created`, `refund_pending`, ...).
fn is_refund_event(event: Option<&serde_json::Value>) -> bool {
    let Some(event) = event else { return false };
    let code = event
        .get("code")
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()));
    let name = event.get("name").and_then(|n| n.as_str()).unwrap_or("");
    code.is_some_and(|c| (7000..8000).contains(&c)) || name.starts_with("refund")
}

fn id_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses both webhook formats: extended `{event, data: {id, ...}}` and the flat legacy one.
pub fn parse_webhook(body: &[u8]) -> Result<Webhook, WebhookError> {
    let value = webhook_json(body)?;
    let payload = match value.get("data") {
        Some(data) if data.is_object() => data,
        _ => &value,
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let event = text(value.get("event").and_then(|e| e.get("name")));
    if is_refund_event(value.get("event")) {
        // `data.id` is the refund's id; the invoice is `data.invoice`.
        let refund_id: String = id_text(payload.get("id"))
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        return match id_text(payload.get("invoice")) {
            Some(invoice) if is_invoice_id(&invoice) => Ok(Webhook {
                invoice_id: invoice,
                event,
                claimed_status: text(payload.get("status")),
                claimed_exception: None,
                refund_id: Some(refund_id),
            }),
            _ => Err(WebhookError::RefundWithoutInvoice(refund_id)),
        };
    }
    let Some(id) = id_text(payload.get("id")) else {
        return Err(WebhookError::NoInvoiceId);
    };
    if !is_invoice_id(&id) {
        return Err(WebhookError::BadInvoiceId(id.chars().take(80).collect()));
    }
    Ok(Webhook {
        invoice_id: id,
        event,
        claimed_status: text(payload.get("status")),
        claimed_exception: text(payload.get("exceptionStatus")).filter(|e| e != "false"),
        refund_id: None,
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
    fn refund_webhooks_name_the_invoice_in_data_invoice() {
        let refund = br#"{"event":{"code":7002,"name":"refund_pending"},"data":{"id":"Rf123","invoice":"Inv456","status":"pending","amount":10,"currency":"USD"}}"#;
        let parsed = parse_webhook(refund).unwrap();
        assert_eq!(parsed.invoice_id, "Inv456");
        assert_eq!(parsed.refund_id.as_deref(), Some("Rf123"));
        assert_eq!(parsed.event.as_deref(), Some("refund_pending"));
        let by_code = br#"{"event":{"code":"7003"},"data":{"id":"Rf1","invoice":"Inv9"}}"#;
        assert_eq!(parse_webhook(by_code).unwrap().invoice_id, "Inv9");
        let orphan = br#"{"event":{"code":7001,"name":"refund_created"},"data":{"id":"Rf1"}}"#;
        assert_eq!(
            parse_webhook(orphan),
            Err(WebhookError::RefundWithoutInvoice("Rf1".into()))
        );
        let invoice = parse_webhook(br#"{"event":{"code":1005},"data":{"id":"Abc"}}"#).unwrap();
        assert_eq!(invoice.refund_id, None);
    }

    #[test]
    fn refunds_and_amounts_paid_in_invoices() {
        let refunded: Invoice = serde_json::from_str(
            r#"{"refundInfo":[{"supportRequest":"Rf1","currency":"USD","amounts":{"BTC":0.001}}],"displayAmountPaid":"0.000871","transactionCurrency":"BTC"}"#,
        )
        .unwrap();
        assert!(refunded.has_refund());
        let paid =
            |invoice: &Invoice| crate::bitpay::server::normalise(invoice.clone()).paid_text();
        assert_eq!(paid(&refunded).as_deref(), Some("0.000871 BTC"));
        let plain: Invoice =
            serde_json::from_str(r#"{"refundInfo":[],"displayAmountPaid":"0"}"#).unwrap();
        assert!(!plain.has_refund());
        assert_eq!(paid(&plain), None);
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
