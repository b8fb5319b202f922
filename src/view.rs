//! The pieces several outputs share: a stored invoice, a journal entry, a finding, the
//! result of settling one invoice. Each command's own result struct lives with the command
//! and is built from these; see [`crate::output::View`].

use serde::Serialize;

use crate::clock;
use crate::domain::InvoiceId;
use crate::money::format_amount;
use crate::output::View;
use crate::settlement::{join_ids, Outcome};
use crate::store::{InvoiceRecord, JournalEntry, Settlement};

/// A stored invoice as `show`, `status` and the admin page see it (no token).
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceView {
    pub bitpay_invoice_id: Option<InvoiceId>,
    /// Who made the invoice, for people: "BitPay" or "BTCPay Server".
    pub server: &'static str,
    pub document: &'static str,
    pub document_id: Option<i64>,
    pub document_number: Option<String>,
    pub customer_id: i64,
    pub price: String,
    pub currency: String,
    pub order_id: String,
    /// The payment server's words.
    pub bitpay_status: String,
    pub exception_status: Option<String>,
    /// The same, normalised (`open`, `paid-confirmed`, `final`, ...).
    pub status: &'static str,
    pub settlement: &'static str,
    pub settlement_text: &'static str,
    pub note: Option<String>,
    pub splynx_payment_id: Option<i64>,
    pub duplicate_payment_ids: Vec<i64>,
    pub payment_sent_at: Option<String>,
    pub payment_attempts: i64,
    pub credited_at: Option<String>,
    pub watch_until: Option<String>,
    pub url: Option<String>,
    pub created_at: String,
}

impl From<&InvoiceRecord> for InvoiceView {
    fn from(record: &InvoiceRecord) -> InvoiceView {
        InvoiceView {
            bitpay_invoice_id: record.bitpay_id.clone(),
            server: record.order.server_name(),
            document: record.order.doc_kind.as_str(),
            document_id: record.order.doc_id,
            document_number: record.order.doc_number.clone(),
            customer_id: record.order.customer_id,
            price: format_amount(record.order.price, &record.order.currency),
            currency: record.order.currency.clone(),
            order_id: record.order.order_id.clone(),
            bitpay_status: record.words.status.clone(),
            exception_status: record.words.exception.clone(),
            status: record.status.as_str(),
            settlement: record.settlement.as_str(),
            settlement_text: record.settlement.describe(),
            note: record.note.clone(),
            splynx_payment_id: record.splynx_payment_id,
            duplicate_payment_ids: record.duplicate_payment_ids.clone(),
            payment_sent_at: record.payment_sent_at.map(clock::datetime_of),
            payment_attempts: record.payment_attempts,
            credited_at: record.credited_at.map(clock::datetime_of),
            watch_until: record.watch_until.map(clock::datetime_of),
            url: record.url.clone(),
            created_at: clock::datetime_of(record.created_at),
        }
    }
}

impl InvoiceView {
    /// "(not created yet)" until BitPay gave the invoice an id.
    /// "invoice 202401000001 (id 101)", "balance top-up".
    fn document_text(&self) -> String {
        match (self.document_number.as_deref(), self.document_id) {
            (Some(number), Some(id)) => format!("{} {number} (id {id})", self.document),
            (None, Some(id)) => format!("{} id {id}", self.document),
            _ if self.document == "refill" => "balance top-up".to_string(),
            (Some(number), None) => format!("{} {number}", self.document),
            (None, None) => self.document.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        self.bitpay_invoice_id
            .as_deref()
            .unwrap_or("(not created yet)")
    }

    /// One line: id, document, amount and age (status's oldest unsettled invoice).
    pub fn line(&self) -> String {
        format!(
            "{} ({} {}, {} {}, since {})",
            self.bitpay_invoice_id
                .as_deref()
                .unwrap_or("(being created)"),
            self.document,
            self.document_number.as_deref().unwrap_or("-"),
            self.price,
            self.currency,
            self.created_at
        )
    }

    /// The block `show` prints, up to its journal.
    pub fn block(&self) -> String {
        let settlement_text = Some(self.settlement_text)
            .filter(|d| *d != self.settlement)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let duplicates = if self.duplicate_payment_ids.is_empty() {
            String::new()
        } else {
            format!(
                "\n  duplicate payments in Splynx: {}",
                join_ids(&self.duplicate_payment_ids)
            )
        };
        let in_flight = match (&self.payment_sent_at, &self.watch_until) {
            (Some(at), _) if self.settlement == Settlement::Sent.as_str() => format!(
                "\n  payment sent: {at} ({} attempt(s)), outcome unknown",
                self.payment_attempts
            ),
            (_, Some(until)) => {
                format!(
                    "\n  watched:    until {} says it is final, at most until {until}",
                    self.server
                )
            }
            _ => String::new(),
        };
        let server = self.server;
        // Labels line up at 12 columns ("settlement: ").
        let pad = " ".repeat(11usize.saturating_sub(server.len()).max(1));
        format!(
            "{server} invoice {}\n  document:   {} of customer {}\n  amount:     {} {}\n  order id:   {}\n  {server}:{pad}{}{}\n  settlement: {}{settlement_text}{}\n  Splynx payment: {}{duplicates}{in_flight}\n  created:    {}\n  url:        {}\n  journal:",
            self.name(),
            self.document_text(),
            self.customer_id,
            self.price,
            self.currency,
            self.order_id,
            self.bitpay_status,
            self.exception_status
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            self.settlement,
            self.note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default(),
            self.splynx_payment_id
                .map_or("none".into(), |p| p.to_string()),
            self.created_at,
            self.url.as_deref().unwrap_or("-"),
        )
    }
}

/// One journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct JournalView {
    pub at: String,
    pub kind: String,
    pub summary: String,
    pub detail: Option<String>,
}

impl From<&JournalEntry> for JournalView {
    fn from(entry: &JournalEntry) -> JournalView {
        JournalView {
            at: clock::datetime_of(entry.at),
            kind: entry.kind.clone(),
            summary: entry.summary.clone(),
            detail: entry.detail.clone(),
        }
    }
}

impl JournalView {
    /// An indented line of `show`'s journal.
    pub fn line(&self) -> String {
        format!("    {}  {:<9} {}", self.at, self.kind, self.summary)
    }
}

/// What became of one invoice that was settled (`handle-ipn`).
#[derive(Debug, Clone, Serialize)]
pub struct SettledView {
    pub bitpay_invoice_id: String,
    pub result: &'static str,
    pub splynx_payment_id: Option<i64>,
    #[serde(skip)]
    human: String,
}

impl SettledView {
    pub fn new(bitpay_id: &str, outcome: &Outcome) -> SettledView {
        let human = match outcome {
            Outcome::Credited {
                payment_id,
                adopted,
            } => format!(
                "{bitpay_id}: credited (Splynx payment {payment_id}{})",
                if *adopted { ", found in Splynx" } else { "" }
            ),
            Outcome::Review(note) => format!("{bitpay_id}: needs review: {note}"),
            Outcome::Reversed(note) => format!("{bitpay_id}: reversed after credit: {note}"),
            Outcome::Held(note) => format!("{bitpay_id}: held for the admin: {note}"),
            other => format!("{bitpay_id}: {}", other.label()),
        };
        SettledView {
            bitpay_invoice_id: bitpay_id.to_string(),
            result: outcome.label(),
            splynx_payment_id: match outcome {
                Outcome::Credited { payment_id, .. } => Some(*payment_id),
                _ => None,
            },
            human,
        }
    }
}

impl View for SettledView {
    fn human(&self) -> String {
        self.human.clone()
    }
}

/// A webhook answered without settling: ignored, or already checked seconds ago.
#[derive(Debug, Clone, Serialize)]
pub struct AnsweredView {
    pub bitpay_invoice_id: Option<String>,
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<&'static str>,
    #[serde(skip)]
    pub human: String,
}

impl View for AnsweredView {
    fn human(&self) -> String {
        self.human.clone()
    }
}

/// A failed command with `--json`: the pages read the reason here, not from stderr.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    pub error: String,
    pub exit: u8,
    pub kind: &'static str,
}

impl View for ErrorView {
    /// Nothing: people read the error line on stderr.
    fn human(&self) -> String {
        String::new()
    }
}

/// `create-invoice --check`'s result: what the customer would pay.
#[derive(Debug, Serialize)]
pub struct Payable {
    pub document: &'static str,
    pub document_id: Option<i64>,
    pub number: Option<String>,
    pub description: String,
    /// The total the customer pays: `amount` plus the fee and its VAT.
    pub price: String,
    /// The document's amount due (or the top-up entered).
    pub amount: String,
    /// The service fee, when one applies.
    pub fee: Option<FeeView>,
    pub currency: String,
}

/// The service fee on the pay window.
#[derive(Debug, Serialize)]
pub struct FeeView {
    pub label: String,
    pub percent: String,
    pub fee: String,
    pub vat_percent: String,
    pub vat: String,
}

impl View for Payable {
    fn human(&self) -> String {
        let parts = match &self.fee {
            Some(f) => format!(
                " ({} + {} {}% {} + VAT {}% {})",
                self.amount, f.label, f.percent, f.fee, f.vat_percent, f.vat
            ),
            None => String::new(),
        };
        format!(
            "{}: {} {}{parts}",
            self.description, self.price, self.currency
        )
    }
}

/// `create-invoice`'s result: the BitPay invoice to send the customer to.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The payment server's invoice id, whichever server.
    pub invoice_id: InvoiceId,
    /// `bitpay` or `btcpay`.
    pub server: &'static str,
    /// The same id, for BitPay invoices only (what earlier versions printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitpay_invoice_id: Option<InvoiceId>,
    pub url: String,
    pub price: String,
    pub currency: String,
    pub status: String,
    pub reused: bool,
}

impl View for Created {
    /// The URL alone, for scripts that redirect to it.
    fn human(&self) -> String {
        self.url.clone()
    }
}
