//! The records the store keeps (tokens, journal entries, findings) and how rows become
//! them; the invoice and its states are the domain's (`crate::domain`).

use std::str::FromStr;

use rusqlite::Row;
use rust_decimal::Decimal;

use crate::config::{CreditOn, StatementGrouping};
pub use crate::domain::{
    DocKind, HoldKind, InvoiceRecord, NewInvoice, Origin, Settlement, SettlementTerms,
};
use crate::domain::{InvoiceId, InvoiceStatus, StatusWords};
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
    doc_number, customer_id, price, currency, order_id, url, bitpay_status, exception_status, status, \
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

/// An `invoices` row (selected with `INVOICE_COLUMNS`), read by column name.
pub(super) fn invoice_from_row(row: &Row<'_>) -> rusqlite::Result<InvoiceRecord> {
    let invalid = |column: &str, message: String| {
        let index = row.as_ref().column_index(column).unwrap_or_default();
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("{column}: {message}").into(),
        )
    };
    let decimal = |column: &str| -> rusqlite::Result<Option<Decimal>> {
        row.get::<_, Option<String>>(column)?
            .map(|text| Decimal::from_str(&text).map_err(|e| invalid(column, e.to_string())))
            .transpose()
    };
    let fee = match (
        decimal("fee_percent")?,
        decimal("fee")?,
        decimal("fee_vat_percent")?,
        decimal("fee_vat")?,
    ) {
        (Some(percent), Some(fee), Some(vat_percent), Some(vat)) => Some(AppliedFee {
            percent,
            fee,
            vat_percent,
            vat,
        }),
        _ => None,
    };
    let terms = match (
        row.get::<_, Option<i64>>("payment_method_id")?,
        row.get::<_, Option<String>>("credit_on")?,
        row.get::<_, Option<String>>("statements")?,
        row.get::<_, Option<i64>>("fee_category")?,
        row.get::<_, Option<String>>("fee_message")?,
    ) {
        (Some(method), Some(credit_on), Some(statements), Some(category), Some(message)) => {
            Some(SettlementTerms {
                payment_method_id: method,
                credit_on: CreditOn::parse(&credit_on)
                    .ok_or_else(|| invalid("credit_on", format!("unknown value {credit_on}")))?,
                statements: StatementGrouping::parse(&statements)
                    .ok_or_else(|| invalid("statements", format!("unknown value {statements}")))?,
                fee_category: category,
                fee_message: message,
            })
        }
        _ => None,
    };
    let kind: String = row.get("doc_kind")?;
    let price: String = row.get("price")?;
    let settlement: String = row.get("settlement")?;
    let origin: Option<String> = row.get("origin")?;
    Ok(InvoiceRecord {
        id: row.get("id")?,
        order: NewInvoice {
            guid: row.get("guid")?,
            environment: row.get("environment")?,
            facade: row.get("facade")?,
            token: Secret::new(row.get::<_, String>("token")?),
            doc_kind: kind.parse().map_err(|m| invalid("doc_kind", m))?,
            doc_id: row.get("doc_id")?,
            doc_number: row.get("doc_number")?,
            customer_id: row.get("customer_id")?,
            price: Decimal::from_str(&price).map_err(|e| invalid("price", e.to_string()))?,
            currency: row.get("currency")?,
            order_id: row.get("order_id")?,
            partner_id: row.get("partner_id")?,
            fee,
            origin: origin.as_deref().and_then(Origin::parse),
            terms,
        },
        bitpay_id: row
            .get::<_, Option<String>>("bitpay_id")?
            .map(InvoiceId::from),
        url: row.get("url")?,
        words: StatusWords {
            status: row.get("bitpay_status")?,
            exception: row.get("exception_status")?,
        },
        status: InvoiceStatus::parse(&row.get::<_, String>("status")?),
        settlement: settlement.parse().map_err(|m| invalid("settlement", m))?,
        note: row.get("note")?,
        expires_at: row.get("expires_at")?,
        splynx_payment_id: row.get("splynx_payment_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        payment_sent_at: row.get("payment_sent_at")?,
        payment_attempts: row.get("payment_attempts")?,
        credited_at: row.get("credited_at")?,
        watch_until: row.get("watch_until")?,
        duplicate_payment_ids: row
            .get::<_, Option<String>>("duplicate_payment_ids")?
            .unwrap_or_default()
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
        fetched_at: row.get("fetched_at")?,
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
