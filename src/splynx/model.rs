//! Splynx API v2 models, lenient like the real server: ids and money as numbers or strings,
//! booleans as "0"/"1", unknown fields ignored.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::{de_id, de_money, de_opt_id, de_opt_money, de_text};

/// The Splynx administrator an add-on admin page was opened by, as Splynx names them in
/// its `SpL-Administrator-*` answer headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administrator {
    pub id: i64,
    pub role: String,
    pub partner_id: Option<i64>,
    /// Their login and name in Administration → Administrators, when Splynx tells.
    pub login: Option<String>,
    pub name: Option<String>,
}

impl Administrator {
    /// "ada (Ada Lovelace)", "ada", or "administrator 7" when Splynx named no login.
    pub fn label(&self) -> String {
        match (&self.login, &self.name) {
            (Some(login), Some(name)) if name != login => format!("{login} ({name})"),
            (Some(login), _) => login.clone(),
            (None, _) => format!("administrator {}", self.id),
        }
    }
}

/// A row of `admin/administration/administrators`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct AdministratorRow {
    #[serde(default, deserialize_with = "de_text")]
    pub login: String,
    #[serde(default, deserialize_with = "de_text")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub name: String,
    #[serde(default, deserialize_with = "de_text")]
    pub email: String,
    #[serde(default, deserialize_with = "de_text")]
    pub billing_email: String,
    #[serde(default, deserialize_with = "de_opt_id")]
    pub partner_id: Option<i64>,
    #[serde(default, deserialize_with = "de_text")]
    pub status: String,
}

impl Customer {
    /// The address BitPay should use for refunds.
    pub fn contact_email(&self) -> &str {
        if self.billing_email.contains('@') {
            &self.billing_email
        } else {
            &self.email
        }
    }
}

/// An invoice or a proforma invoice: Splynx sends both in this shape (a proforma has no
/// `due`).
#[derive(Debug, Clone, Deserialize)]
pub struct FinanceDocument {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub number: String,
    #[serde(deserialize_with = "de_id")]
    pub customer_id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub status: String,
    #[serde(deserialize_with = "de_money")]
    pub total: Decimal,
    #[serde(default, deserialize_with = "de_opt_money")]
    pub due: Option<Decimal>,
}

impl FinanceDocument {
    /// What is left to pay: `due` when Splynx sends it, else the total.
    pub fn amount_due(&self) -> Decimal {
        self.due.unwrap_or(self.total)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentMethod {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub name: String,
    #[serde(default, deserialize_with = "de_text")]
    pub is_active: String,
}

impl PaymentMethod {
    pub fn active(&self) -> bool {
        !matches!(self.is_active.as_str(), "0" | "false")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(deserialize_with = "de_id")]
    pub customer_id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub receipt_number: String,
    #[serde(default, deserialize_with = "de_opt_money")]
    pub amount: Option<Decimal>,
    /// `YYYY-MM-DD`, Splynx's (the server's) local date.
    #[serde(default, deserialize_with = "de_text")]
    pub date: String,
    #[serde(default, deserialize_with = "de_opt_id")]
    pub payment_type: Option<i64>,
    /// The invoice it pays (absent or 0: none).
    #[serde(default, deserialize_with = "de_opt_id")]
    pub invoice_id: Option<i64>,
    /// The proforma invoice it pays (absent or 0: none).
    #[serde(default, deserialize_with = "de_opt_id")]
    pub request_id: Option<i64>,
    /// Ours: the server's invoice id.
    #[serde(default, deserialize_with = "de_text")]
    pub field_1: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Statement {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatementRecord {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub additional_1: String,
    #[serde(default, deserialize_with = "de_opt_id")]
    pub payment_id: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    #[serde(deserialize_with = "de_id")]
    pub id: i64,
    #[serde(deserialize_with = "de_id")]
    pub customer_id: i64,
    #[serde(default, deserialize_with = "de_text")]
    pub comment: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_typed_json_as_old_splynx_sends_it() {
        let invoice: FinanceDocument = serde_json::from_str(
            r#"{"id":"101","number":202401000001,"customer_id":"42","status":"not_paid","total":"51.6100","due":"51.6100","items":[]}"#,
        )
        .unwrap();
        assert_eq!(invoice.id, 101);
        assert_eq!(invoice.number, "202401000001");
        assert_eq!(invoice.amount_due().to_string(), "51.6100");
        let proforma: FinanceDocument = serde_json::from_str(
            r#"{"id":201,"number":"2024000001","customer_id":42,"status":"not_paid","total":20}"#,
        )
        .unwrap();
        assert_eq!(proforma.amount_due().to_string(), "20");
        let method: PaymentMethod =
            serde_json::from_str(r#"{"id":"7","name":"BitPay","is_active":"0"}"#).unwrap();
        assert!(!method.active());
        let customer: Customer =
            serde_json::from_str(r#"{"id":42,"name":"Ada","email":"a@x","partner_id":"1"}"#)
                .unwrap();
        assert_eq!(customer.partner_id, Some(1));
        assert_eq!(customer.contact_email(), "a@x");
    }
}
