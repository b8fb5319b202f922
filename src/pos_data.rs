//! posData: what an invoice pays, written into the payment server's invoice at checkout
//! and read back when a lost local record is rebuilt from it. Written and read here only.
//! The JSON keeps the shape invoices already carry: `customer_id`, `document`,
//! `document_id`, `number`, `fee` (exact decimal strings), `origin`, `terms`.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::{AppliedFee, NewInvoice, Origin, SettlementTerms};

/// What posData says, each part only when it is there and consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosData {
    pub customer_id: Option<i64>,
    /// The service fee in the price.
    pub fee: Option<AppliedFee>,
    /// Where the checkout started.
    pub origin: Option<Origin>,
    /// The settlement terms the checkout decided.
    pub terms: Option<SettlementTerms>,
}

#[derive(Serialize)]
struct Written<'a> {
    customer_id: i64,
    document: &'static str,
    document_id: Option<i64>,
    number: Option<&'a str>,
    /// So a record rebuilt from the server still books the fee.
    #[serde(skip_serializing_if = "Option::is_none")]
    fee: Option<WrittenFee>,
    /// So a record rebuilt from the server is settled as the checkout decided, not by
    /// today's settings.
    origin: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    terms: Option<serde_json::Value>,
}

/// The fee as exact decimal strings.
#[derive(Serialize)]
struct WrittenFee {
    percent: String,
    fee: String,
    vat_percent: String,
    vat: String,
}

/// posData for the invoice `order` asks for.
pub fn write(order: &NewInvoice) -> String {
    let written = Written {
        customer_id: order.customer_id,
        document: order.doc_kind.as_str(),
        document_id: order.doc_id,
        number: order.doc_number.as_deref(),
        fee: order.fee.map(|f| WrittenFee {
            percent: f.percent.to_string(),
            fee: f.fee.to_string(),
            vat_percent: f.vat_percent.to_string(),
            vat: f.vat.to_string(),
        }),
        origin: order.origin().as_str(),
        terms: order.terms.as_ref().map(SettlementTerms::to_json),
    };
    serde_json::to_string(&written).expect("posData serializes")
}

/// What posData on an invoice of `price` says; anything malformed or inconsistent reads as
/// absent.
pub fn read(text: &str, price: Decimal) -> PosData {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return PosData::default();
    };
    PosData {
        customer_id: value.get("customer_id").and_then(|c| c.as_i64()),
        fee: fee_of(&value, price),
        origin: value
            .get("origin")
            .and_then(|o| o.as_str())
            .and_then(Origin::parse),
        terms: value.get("terms").and_then(SettlementTerms::from_json),
    }
}

/// The fee, when it is consistent with the price (positive, less than the price); else
/// none: the payment is then credited whole.
fn fee_of(value: &serde_json::Value, price: Decimal) -> Option<AppliedFee> {
    let fee = value.get("fee")?;
    let part = |key: &str| -> Option<Decimal> {
        fee.get(key)?
            .as_str()?
            .parse::<Decimal>()
            .ok()
            .filter(|d| *d >= Decimal::ZERO)
    };
    let applied = AppliedFee {
        percent: part("percent")?,
        fee: part("fee")?,
        vat_percent: part("vat_percent")?,
        vat: part("vat")?,
    };
    (applied.fee > Decimal::ZERO && applied.total() < price).then_some(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{InvoiceRecord, Settlement};

    #[test]
    fn what_is_written_is_read_back() {
        let mut order = InvoiceRecord::example(1, Settlement::Open, "new").order;
        order.price = "52.85".parse().unwrap();
        order.fee = Some(AppliedFee {
            percent: "2".parse().unwrap(),
            fee: "1.03".parse().unwrap(),
            vat_percent: "20".parse().unwrap(),
            vat: "0.21".parse().unwrap(),
        });
        order.origin = Some(Origin::DirectLink);
        let read = read(&write(&order), order.price);
        assert_eq!(
            read,
            PosData {
                customer_id: Some(order.customer_id),
                fee: order.fee,
                origin: order.origin,
                terms: order.terms.clone(),
            }
        );
        // Written before origins and terms were: read as absent.
        let old = r#"{"customer_id":42,"document":"invoice","document_id":101,"number":"1"}"#;
        assert_eq!(
            read_back(old),
            PosData {
                customer_id: Some(42),
                ..PosData::default()
            }
        );
    }

    fn read_back(text: &str) -> PosData {
        read(text, Decimal::from(100))
    }

    #[test]
    fn a_rebuilt_record_keeps_the_fee_only_when_it_fits_the_price() {
        let price: Decimal = "52.85".parse().unwrap();
        let pos = r#"{"customer_id":42,"fee":{"percent":"2","fee":"1.03","vat_percent":"20","vat":"0.21"}}"#;
        let fee = read(pos, price).fee.unwrap();
        assert_eq!(
            (fee.fee.to_string(), fee.vat.to_string()),
            ("1.03".into(), "0.21".into())
        );
        for bad in [
            r#"{"customer_id":42}"#,
            "not json",
            r#"{"fee":{"percent":"2","fee":"60","vat_percent":"0","vat":"0"}}"#,
            r#"{"fee":{"percent":"2","fee":"-1","vat_percent":"0","vat":"0"}}"#,
            r#"{"fee":{"percent":"2","fee":"0","vat_percent":"0","vat":"0"}}"#,
            r#"{"fee":{"percent":"2","fee":1.03,"vat_percent":"0","vat":"0"}}"#,
        ] {
            assert_eq!(read(bad, price).fee, None, "{bad}");
        }
    }
}
