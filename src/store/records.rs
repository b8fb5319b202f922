//! The records the store keeps: tokens, invoices, journal entries, findings.

use std::str::FromStr;

use rusqlite::Row;
use rust_decimal::Decimal;

use crate::config::{CreditOn, StatementGrouping};
pub use crate::domain::{Origin, SettlementTerms};
pub use crate::fee::AppliedFee;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub environment: String,
    pub facade: String,
    pub token: Secret,
    pub approved: bool,
    pub pairing_code: Option<String>,
    pub pairing_expires_at: Option<i64>,
    pub label: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Invoice,
    Proforma,
    Refill,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Invoice => "invoice",
            DocKind::Proforma => "proforma",
            DocKind::Refill => "refill",
        }
    }
}

impl FromStr for DocKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<DocKind, String> {
        match s {
            "invoice" => Ok(DocKind::Invoice),
            "proforma" => Ok(DocKind::Proforma),
            "refill" => Ok(DocKind::Refill),
            other => Err(format!("unknown document kind {other}")),
        }
    }
}

/// Where a stored invoice stands on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Saved before `POST /invoices`; BitPay may or may not have it (recover by guid).
    Creating,
    /// Known to BitPay, not yet paid and confirmed.
    Open,
    /// A Splynx payment is about to be made; finish by looking it up first.
    Crediting,
    /// A payment POST was sent and its outcome is unknown (no reply, 5xx): only looked up
    /// until the grace period has passed, never sent again blindly.
    Sent,
    Credited,
    /// Expired, declined or underpaid at BitPay: nothing to credit.
    Expired,
    /// Needs the admin: mismatch, Splynx refused the payment, duplicates, paid late, ...
    Review,
    /// Invalid, declined or refunded at BitPay after we credited it: held for the admin.
    Reversed,
    /// A held record the admin has dealt with (`splynx-bitpay resolve`).
    Resolved,
}

impl Settlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Creating => "creating",
            Settlement::Open => "open",
            Settlement::Crediting => "crediting",
            Settlement::Sent => "sent",
            Settlement::Credited => "credited",
            Settlement::Expired => "expired",
            Settlement::Review => "review",
            Settlement::Reversed => "reversed",
            Settlement::Resolved => "resolved",
        }
    }

    /// For people: what the state means.
    pub fn describe(self) -> &'static str {
        match self {
            Settlement::Creating => "being created at BitPay",
            Settlement::Open => "waiting for payment",
            Settlement::Crediting => "being credited in Splynx",
            Settlement::Sent => "payment sent to Splynx, outcome unknown",
            Settlement::Credited => "credited",
            Settlement::Expired => "expired, nothing to credit",
            Settlement::Review => "held for review",
            Settlement::Reversed => "reversed after credit",
            Settlement::Resolved => "resolved by the admin",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Settlement::Credited
                | Settlement::Expired
                | Settlement::Review
                | Settlement::Reversed
                | Settlement::Resolved
        )
    }

    /// Held until the admin resolves it.
    pub fn needs_admin(self) -> bool {
        matches!(self, Settlement::Review | Settlement::Reversed)
    }
}

impl FromStr for Settlement {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Settlement, String> {
        Ok(match s {
            "creating" => Settlement::Creating,
            "open" => Settlement::Open,
            "crediting" => Settlement::Crediting,
            "sent" => Settlement::Sent,
            "credited" => Settlement::Credited,
            "expired" => Settlement::Expired,
            "review" => Settlement::Review,
            "reversed" => Settlement::Reversed,
            "resolved" => Settlement::Resolved,
            other => return Err(format!("unknown settlement state {other}")),
        })
    }
}

#[derive(Debug, Clone)]
pub struct InvoiceRecord {
    pub id: i64,
    /// What was asked of BitPay: saved before the request, never changed after.
    pub order: NewInvoice,
    pub bitpay_id: Option<String>,
    pub url: Option<String>,
    pub bitpay_status: String,
    pub exception_status: Option<String>,
    pub settlement: Settlement,
    pub note: Option<String>,
    pub expires_at: Option<i64>,
    pub splynx_payment_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When a payment POST was last sent (cleared when Splynx provably refused it).
    pub payment_sent_at: Option<i64>,
    pub payment_attempts: i64,
    pub credited_at: Option<i64>,
    /// Credited and re-checked by `reconcile` until BitPay says complete, or until then.
    pub watch_until: Option<i64>,
    /// Every Splynx payment found with this receipt number when there was more than one.
    pub duplicate_payment_ids: Vec<i64>,
    /// When BitPay was last asked about it.
    pub fetched_at: Option<i64>,
}

/// A new invoice row, saved before BitPay is asked to create it.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub guid: String,
    pub environment: String,
    pub facade: String,
    pub token: Secret,
    pub doc_kind: DocKind,
    pub doc_id: Option<i64>,
    pub doc_number: Option<String>,
    pub customer_id: i64,
    pub price: Decimal,
    pub currency: String,
    pub order_id: String,
    /// The customer's Splynx partner (whose settings apply), when known.
    pub partner_id: Option<i64>,
    /// The service fee included in `price`, if any.
    pub fee: Option<AppliedFee>,
    /// Where the checkout started (`None`: before this was recorded, the portal).
    pub origin: Option<Origin>,
    /// What settlement needs (`None`: recorded before terms were stored).
    pub terms: Option<SettlementTerms>,
}

impl NewInvoice {
    /// The document's amount (or the top-up entered): the price without the fee.
    pub fn due(&self) -> Decimal {
        self.price - self.fee.map_or(Decimal::ZERO, |f| f.total())
    }

    /// Where the checkout started; the portal for records from before origins.
    pub fn origin(&self) -> Origin {
        self.origin.unwrap_or(Origin::Portal)
    }

    /// The Splynx invoice a payment for this links to.
    pub fn invoice_id(&self) -> Option<i64> {
        (self.doc_kind == DocKind::Invoice)
            .then_some(self.doc_id)
            .flatten()
    }

    /// "invoice #202401000001", "proforma #2024000001", "balance top-up".
    pub fn document_label(&self) -> String {
        match (self.doc_kind, &self.doc_number) {
            (DocKind::Refill, _) => "balance top-up".to_string(),
            (kind, Some(number)) => format!("{} #{number}", kind.as_str()),
            (kind, None) => kind.as_str().to_string(),
        }
    }

    /// The Splynx proforma invoice (`request_id`) a payment for this links to.
    pub fn request_id(&self) -> Option<i64> {
        (self.doc_kind == DocKind::Proforma)
            .then_some(self.doc_id)
            .flatten()
    }
}

#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub id: i64,
    pub at: i64,
    pub bitpay_id: Option<String>,
    pub kind: String,
    pub summary: String,
    pub detail: Option<String>,
}

pub(super) const INVOICE_COLUMNS: &str =
    "id, guid, bitpay_id, environment, facade, token, doc_kind, doc_id, \
    doc_number, customer_id, price, currency, order_id, url, bitpay_status, exception_status, \
    settlement, note, expires_at, splynx_payment_id, created_at, updated_at, payment_sent_at, \
    payment_attempts, credited_at, watch_until, duplicate_payment_ids, fetched_at, partner_id, \
    fee_percent, fee, fee_vat_percent, fee_vat, origin, payment_method_id, credit_on, statements, \
    fee_category, fee_message";

pub(super) fn journal_from_row(r: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        bitpay_id: r.get(2)?,
        kind: r.get(3)?,
        summary: r.get(4)?,
        detail: r.get(5)?,
    })
}

pub(super) fn invoice_from_row(row: &Row<'_>) -> rusqlite::Result<InvoiceRecord> {
    let text_error = |i: usize, message: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, message.into())
    };
    let kind: String = row.get(6)?;
    let price: String = row.get(10)?;
    let decimal = |i: usize| -> rusqlite::Result<Option<Decimal>> {
        row.get::<_, Option<String>>(i)?
            .map(|text| Decimal::from_str(&text).map_err(|e| text_error(i, e.to_string())))
            .transpose()
    };
    let fee = match (decimal(29)?, decimal(30)?, decimal(31)?, decimal(32)?) {
        (Some(percent), Some(fee), Some(vat_percent), Some(vat)) => Some(AppliedFee {
            percent,
            fee,
            vat_percent,
            vat,
        }),
        _ => None,
    };
    let settlement: String = row.get(16)?;
    let origin: Option<String> = row.get(33)?;
    let terms = match (
        row.get::<_, Option<i64>>(34)?,
        row.get::<_, Option<String>>(35)?,
        row.get::<_, Option<String>>(36)?,
        row.get::<_, Option<i64>>(37)?,
        row.get::<_, Option<String>>(38)?,
    ) {
        (Some(method), Some(credit_on), Some(statements), Some(category), Some(message)) => {
            Some(SettlementTerms {
                payment_method_id: method,
                credit_on: CreditOn::parse(&credit_on)
                    .ok_or_else(|| text_error(35, format!("unknown credit_on {credit_on}")))?,
                statements: StatementGrouping::parse(&statements)
                    .ok_or_else(|| text_error(36, format!("unknown grouping {statements}")))?,
                fee_category: category,
                fee_message: message,
            })
        }
        _ => None,
    };
    Ok(InvoiceRecord {
        id: row.get(0)?,
        order: NewInvoice {
            guid: row.get(1)?,
            environment: row.get(3)?,
            facade: row.get(4)?,
            token: Secret::new(row.get::<_, String>(5)?),
            doc_kind: kind.parse().map_err(|m| text_error(6, m))?,
            doc_id: row.get(7)?,
            doc_number: row.get(8)?,
            customer_id: row.get(9)?,
            price: Decimal::from_str(&price).map_err(|e| text_error(10, e.to_string()))?,
            currency: row.get(11)?,
            order_id: row.get(12)?,
            partner_id: row.get(28)?,
            fee,
            origin: origin.as_deref().and_then(Origin::parse),
            terms,
        },
        bitpay_id: row.get(2)?,
        url: row.get(13)?,
        bitpay_status: row.get(14)?,
        exception_status: row.get(15)?,
        settlement: settlement.parse().map_err(|m| text_error(16, m))?,
        note: row.get(17)?,
        expires_at: row.get(18)?,
        splynx_payment_id: row.get(19)?,
        created_at: row.get(20)?,
        updated_at: row.get(21)?,
        payment_sent_at: row.get(22)?,
        payment_attempts: row.get(23)?,
        credited_at: row.get(24)?,
        watch_until: row.get(25)?,
        duplicate_payment_ids: row
            .get::<_, Option<String>>(26)?
            .unwrap_or_default()
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
        fetched_at: row.get(27)?,
    })
}

/// What is held for the admin, and payments whose outcome is not known yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldCounts {
    pub review: i64,
    pub reversed: i64,
    pub duplicates: i64,
    pub sent: i64,
}

impl HeldCounts {
    pub fn any(&self) -> bool {
        self.review + self.reversed + self.sent > 0
    }
}

/// What a prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Settled records whose old detail went (each keeps one summary line).
    #[serde(rename = "settled_payments")]
    pub records: i64,
    #[serde(rename = "settled_entries")]
    pub record_entries: i64,
    /// Entries naming no invoice of ours (rejected bodies, strangers' ids).
    pub stranger_entries: i64,
    /// Reported findings.
    pub findings: i64,
}

/// Something that needs the admin, recorded once when it is found; `reconcile` reports
/// each one once (cron mails it).
#[derive(Debug, Clone)]
pub struct Finding {
    pub id: i64,
    pub at: i64,
    pub bitpay_id: Option<String>,
    pub kind: String,
    pub summary: String,
}

/// Why a record is held for the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// Mismatch, Splynx refused the payment, unknown status, underpaid but confirmed, ...
    Review,
    /// More than one Splynx payment carries this invoice's receipt number.
    Duplicate,
    /// Paid after the invoice expired.
    PaidLate,
    /// Invalid, declined or refunded after the credit.
    Reversed,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Review => "review",
            HoldKind::Duplicate => "duplicate",
            HoldKind::PaidLate => "paid late",
            HoldKind::Reversed => "reversed after credit",
        }
    }

    pub(super) fn settlement(self) -> Settlement {
        match self {
            HoldKind::Reversed => Settlement::Reversed,
            _ => Settlement::Review,
        }
    }
}

#[cfg(test)]
impl InvoiceRecord {
    /// A stored invoice for unit tests: Splynx invoice 101 (number 202401000001) of
    /// customer 42, 51.61 USD.
    pub fn example(id: i64, settlement: Settlement, bitpay_status: &str) -> InvoiceRecord {
        InvoiceRecord {
            id,
            order: NewInvoice {
                guid: format!("g{id}"),
                environment: "test".into(),
                facade: "pos".into(),
                token: Secret::new("t"),
                doc_kind: DocKind::Invoice,
                doc_id: Some(101),
                doc_number: Some("202401000001".into()),
                customer_id: 42,
                price: Decimal::new(5161, 2),
                currency: "USD".into(),
                order_id: format!("o{id}"),
                partner_id: None,
                fee: None,
                origin: Some(Origin::Portal),
                terms: Some(SettlementTerms {
                    payment_method_id: 7,
                    credit_on: CreditOn::Confirmed,
                    statements: StatementGrouping::Month,
                    fee_category: 5,
                    fee_message: "BitPay fee".into(),
                }),
            },
            bitpay_id: Some(format!("B{id}")),
            url: None,
            bitpay_status: bitpay_status.into(),
            exception_status: None,
            settlement,
            note: None,
            expires_at: None,
            splynx_payment_id: None,
            created_at: 0,
            updated_at: 0,
            payment_sent_at: None,
            payment_attempts: 0,
            credited_at: None,
            watch_until: None,
            duplicate_payment_ids: Vec::new(),
            fetched_at: None,
        }
    }
}
