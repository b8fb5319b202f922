//! The audit for people (text) and for the accountant (CSV, one row per difference).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Audit, Difference};
use crate::output::View;
use crate::store::{Store, StoreError};

/// `audit`'s result, and what `--record` keeps of it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub server: &'static str,
    /// When it ran (UTC).
    pub at: String,
    #[serde(flatten)]
    pub audit: Audit,
}

/// What `--record` keeps: the summary the page and `metrics` show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditSummary {
    pub from: String,
    pub to: String,
    pub server: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub differences: usize,
    /// Differences by kind (`Kind::as_str`).
    pub by_kind: BTreeMap<String, usize>,
    pub paid_at_server: usize,
    pub splynx_payments: usize,
    pub matched: usize,
    pub notes: Vec<String>,
    /// The first differences, for the page (all of them: `audit`).
    pub shown: Vec<Shown>,
}

/// A difference as the summary keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Shown {
    pub kind: String,
    pub description: String,
    pub invoice_id: String,
    pub refund_id: Option<String>,
    pub splynx_payment_ids: Vec<i64>,
    pub detail: String,
}

impl From<&Difference> for Shown {
    fn from(d: &Difference) -> Shown {
        Shown {
            kind: d.kind.as_str().into(),
            description: d.description.into(),
            invoice_id: d.invoice_id.clone(),
            refund_id: d.refund_id.clone(),
            splynx_payment_ids: d.splynx_payment_ids.clone(),
            detail: d.detail.clone(),
        }
    }
}

/// How many differences the summary keeps for the page.
const SHOWN: usize = 50;

/// Where `--record` keeps the last audit's summary (the `meta` table).
const LAST_AUDIT: &str = "audit.last";

impl AuditSummary {
    /// The last audit `--record` kept, if any.
    pub fn recorded(store: &Store) -> Result<Option<AuditSummary>, StoreError> {
        Ok(store
            .meta(LAST_AUDIT)?
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    pub fn record(&self, store: &Store) -> Result<(), StoreError> {
        let text = serde_json::to_string(self).expect("a summary serializes");
        store.set_meta(LAST_AUDIT, &text)
    }

    pub fn of(view: &AuditView, at_ms: i64) -> AuditSummary {
        let mut by_kind = BTreeMap::new();
        for d in &view.audit.differences {
            *by_kind.entry(d.kind.as_str().to_string()).or_insert(0) += 1;
        }
        let totals = &view.audit.totals;
        AuditSummary {
            from: view.audit.from.clone(),
            to: view.audit.to.clone(),
            server: view.server.to_string(),
            at_ms,
            differences: view.audit.differences.len(),
            by_kind,
            paid_at_server: totals.paid_at_server,
            splynx_payments: totals.splynx_payments,
            matched: totals.matched,
            notes: view.audit.notes.clone(),
            shown: view
                .audit
                .differences
                .iter()
                .take(SHOWN)
                .map(Shown::from)
                .collect(),
        }
    }
}

fn amounts(by_currency: &BTreeMap<String, Decimal>) -> String {
    let parts: Vec<String> = by_currency
        .iter()
        .map(|(currency, amount)| {
            let currency = if currency.is_empty() {
                "(currency unknown)"
            } else {
                currency
            };
            format!("{amount} {currency}")
        })
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

impl View for AuditView {
    fn human(&self) -> String {
        let audit = &self.audit;
        let totals = &audit.totals;
        let mut lines = vec![
            format!(
                "Audit of {} to {} ({} against Splynx; days in this server's timezone, both included)",
                audit.from, audit.to, self.server
            ),
            format!(
                "Paid at {}: {} invoice(s) of ours, {}",
                self.server,
                totals.paid_at_server,
                amounts(&totals.paid_amounts)
            ),
            format!(
                "In Splynx:  {} payment(s) with the add-on's payment method, {}",
                totals.splynx_payments,
                amounts(&totals.splynx_amounts)
            ),
            format!(
                "Matched {}; refunds paid out {}, booked {}; awaiting confirmation {}; other integrations' invoices {} (not compared)",
                totals.matched,
                totals.refunds_paid_out,
                totals.refunds_booked,
                totals.awaiting_confirmation,
                totals.foreign
            ),
        ];
        if audit.differences.is_empty() {
            lines.push("No differences: every payment appears once on both sides.".into());
        } else {
            lines.push(format!("Differences: {}", audit.differences.len()));
            for d in &audit.differences {
                lines.push(format!("  {}: {}", d.kind.describe(), d.detail));
            }
        }
        for note in &audit.notes {
            lines.push(format!("Note: {note}"));
        }
        lines.join("\n")
    }
}

/// The CSV columns, in order.
const COLUMNS: [&str; 12] = [
    "period_from",
    "period_to",
    "kind",
    "description",
    "server_invoice_id",
    "refund_id",
    "splynx_payment_ids",
    "customer_id",
    "currency",
    "server_amount",
    "splynx_amount",
    "detail",
];

/// Text as a spreadsheet cell: one a spreadsheet would run as a formula (Splynx receipt
/// numbers are typed by people) is kept as text with a leading apostrophe.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// RFC 4180, one row per difference under a header row.
pub fn csv(audit: &Audit) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let row = |d: &Difference| -> [String; 12] {
        let text = |amount: Option<Decimal>| amount.map(|a| a.to_string()).unwrap_or_default();
        [
            audit.from.clone(),
            audit.to.clone(),
            d.kind.as_str().into(),
            d.kind.describe().into(),
            cell(&d.invoice_id),
            cell(d.refund_id.as_deref().unwrap_or_default()),
            d.splynx_payment_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(";"),
            d.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            d.currency.clone(),
            text(d.server_amount),
            text(d.splynx_amount),
            cell(&d.detail),
        ]
    };
    writer
        .write_record(COLUMNS)
        .expect("writing to memory cannot fail");
    for d in &audit.differences {
        writer
            .write_record(row(d))
            .expect("writing to memory cannot fail");
    }
    String::from_utf8(writer.into_inner().expect("writing to memory cannot fail"))
        .expect("the rows are text")
}
