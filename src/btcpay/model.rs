//! BTCPay Server's Greenfield models. Lenient like BitPay's: unknown fields are ignored,
//! money may come as a string or a number, times are unix seconds.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::{de_opt_id, de_opt_money, de_text};

/// What our invoices carry in their metadata, so that a store-wide webhook or list can tell
/// them from other integrations' (with the order id's MAC, which proves it); our refunds'
/// pull payments carry it too.
pub const MARKER: &str = "splynx-bitpay";

/// `InvoiceData` as `GET`/`POST …/invoices` answer it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Invoice {
    #[serde(deserialize_with = "de_text")]
    pub id: String,
    #[serde(deserialize_with = "de_text")]
    pub store_id: String,
    #[serde(deserialize_with = "de_opt_money")]
    pub amount: Option<Decimal>,
    /// In the invoice's currency (2.1.2 and later).
    #[serde(deserialize_with = "de_opt_money")]
    pub paid_amount: Option<Decimal>,
    #[serde(deserialize_with = "de_text")]
    pub currency: String,
    /// `New`, `Processing`, `Settled`, `Expired`, `Invalid`.
    #[serde(deserialize_with = "de_text")]
    pub status: String,
    /// `None`, `PaidPartial`, `PaidOver`, `PaidLate`, `Marked`.
    #[serde(deserialize_with = "de_text")]
    pub additional_status: String,
    #[serde(deserialize_with = "de_text")]
    pub checkout_link: String,
    /// Unix seconds.
    #[serde(deserialize_with = "de_opt_id")]
    pub created_time: Option<i64>,
    /// Unix seconds.
    #[serde(deserialize_with = "de_opt_id")]
    pub expiration_time: Option<i64>,
    /// Our metadata, handed back verbatim (`orderId`, `posData`, our marker).
    pub metadata: serde_json::Value,
}

impl Invoice {
    /// `metadata.orderId`, as text.
    pub fn order_id(&self) -> String {
        match &self.metadata["orderId"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }
}

/// `GET /api/v1/api-keys/current`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyInfo {
    #[serde(deserialize_with = "de_text")]
    pub label: String,
    pub permissions: Vec<String>,
}

impl KeyInfo {
    /// Whether the key holds `permission` for `store` (`perm:STORE`, or `perm` for every
    /// store of its user, or `unrestricted`), itself or through a wider permission that
    /// includes it (reference §1.2).
    pub fn grants(&self, permission: &str, store: &str) -> bool {
        std::iter::once(permission)
            .chain(including(permission).iter().copied())
            .any(|wanted| {
                self.permissions.iter().any(|p| {
                    p == "unrestricted" || p == wanted || *p == format!("{wanted}:{store}")
                })
            })
    }
}

/// The wider permissions that include `permission` (BTCPay's policy table).
fn including(permission: &str) -> &'static [&'static str] {
    const SETTINGS: &str = "btcpay.store.canmodifystoresettings";
    match permission {
        "btcpay.store.canviewinvoices" => &[
            "btcpay.store.canmodifyinvoices",
            "btcpay.store.canviewstoresettings",
            SETTINGS,
        ],
        "btcpay.store.cancreateinvoice" => &["btcpay.store.canmodifyinvoices", SETTINGS],
        "btcpay.store.webhooks.canmodifywebhooks" | "btcpay.store.canviewstoresettings" => {
            &[SETTINGS]
        }
        "btcpay.store.cancreatenonapprovedpullpayments" => &[
            "btcpay.store.cancreatepullpayments",
            "btcpay.store.canmanagepullpayments",
            SETTINGS,
        ],
        "btcpay.store.canviewpullpayments" => &["btcpay.store.canmanagepullpayments", SETTINGS],
        _ => &[],
    }
}

/// What the add-on's key must be allowed, for the store it is scoped to.
pub const PERMISSIONS: [&str; 4] = [
    "btcpay.store.canviewinvoices",
    "btcpay.store.cancreateinvoice",
    "btcpay.store.webhooks.canmodifywebhooks",
    // `doctor` reads the store's default currency.
    "btcpay.store.canviewstoresettings",
];

/// What refunds need besides (asked for when connecting; without them everything but
/// refunds works, and `doctor` says so): making the refund's pull payment, and reading the
/// store's pull payments to find one whose answer was lost. A pull payment's payouts are
/// read by its id, which BTCPay lets anyone holding the claim link do.
pub const REFUND_PERMISSIONS: [&str; 2] = [
    "btcpay.store.cancreatenonapprovedpullpayments",
    "btcpay.store.canviewpullpayments",
];

/// `PullPaymentData`: what a refund makes (`POST …/invoices/{id}/refund`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PullPayment {
    #[serde(deserialize_with = "de_text")]
    pub id: String,
    #[serde(deserialize_with = "de_text")]
    pub name: String,
    #[serde(deserialize_with = "de_text")]
    pub description: String,
    #[serde(deserialize_with = "de_text")]
    pub currency: String,
    #[serde(deserialize_with = "de_opt_money")]
    pub amount: Option<Decimal>,
    /// Archived: no more claims (BTCPay's way of cancelling it).
    pub archived: bool,
    /// The claim link the customer opens.
    #[serde(deserialize_with = "de_text")]
    pub view_link: String,
}

/// `PayoutData`: one claim on a pull payment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Payout {
    #[serde(deserialize_with = "de_text")]
    pub id: String,
    /// In the pull payment's currency (2.x names it `originalAmount`; older, `amount`).
    #[serde(deserialize_with = "de_opt_money")]
    pub original_amount: Option<Decimal>,
    #[serde(deserialize_with = "de_opt_money")]
    pub amount: Option<Decimal>,
    /// `AwaitingApproval`, `AwaitingPayment`, `InProgress`, `Completed`, `Cancelled`.
    #[serde(deserialize_with = "de_text")]
    pub state: String,
}

impl Payout {
    /// What it pays, in the pull payment's currency.
    pub fn value(&self) -> Decimal {
        self.original_amount.or(self.amount).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoices_read_loosely() {
        let invoice: Invoice = serde_json::from_str(
            r#"{"id":"4cLstvvUwbmTRpdQ3nAPCG","storeId":"S","amount":"51.61","paidAmount":51.61,
                "currency":"USD","status":"Settled","additionalStatus":"PaidOver",
                "checkoutLink":"https://btcpay.example/i/4c","createdTime":1700562000,
                "expirationTime":"1700563800","metadata":{"orderId":"splynx-invoice-101-x"},
                "unknown":{"x":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(invoice.amount.unwrap().to_string(), "51.61");
        assert_eq!(invoice.paid_amount.unwrap().to_string(), "51.61");
        assert_eq!(invoice.expiration_time, Some(1700563800));
        assert_eq!(invoice.order_id(), "splynx-invoice-101-x");
    }

    #[test]
    fn a_key_grants_per_store_or_everywhere() {
        let key = KeyInfo {
            label: "splynx".into(),
            permissions: vec![
                "btcpay.store.canviewinvoices:S1".into(),
                "btcpay.store.cancreateinvoice".into(),
            ],
        };
        assert!(key.grants("btcpay.store.canviewinvoices", "S1"));
        assert!(!key.grants("btcpay.store.canviewinvoices", "S2"));
        assert!(key.grants("btcpay.store.cancreateinvoice", "S2"));
        assert!(!key.grants("btcpay.store.webhooks.canmodifywebhooks", "S1"));
    }
}
