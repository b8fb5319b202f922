//! `audit`: the payment server's book and Splynx's side by side, for a period.
//! Longer than 500 lines because the period's edges, the vocabulary of differences and the
//! one comparison over both sides (invoices, then refunds) are read together.
//!
//! The pure part: given what each side holds (`Facts`), list every difference (`compare`).
//! Reading both books is `gather`; people's text and the accountant's CSV are `render`.
//!
//! Period edges: a period is whole days in Splynx's timezone (this server's: Splynx dates
//! are server-local), both ends included. A server invoice belongs to the period it was
//! *created* in; a Splynx payment to the date it carries. Each side's items in the period
//! are looked up on the other side wherever they fall, so an invoice made at 23:59 on the
//! last day and credited after midnight matches its payment (dated the next day) in both
//! periods' audits, and is a difference in neither.

pub mod gather;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, TimeZone};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::StatusWords;
use crate::domain::{DocKind, InvoiceStatus, RefundState};
use crate::server::{ServerInvoice, ServerRefund};

/// Whole local days, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// The month before the one `today` is in.
    pub fn month_before(today: NaiveDate) -> Period {
        let first = today.with_day(1).expect("every month has a first day");
        let to = first
            .pred_opt()
            .expect("dates before year 1 are not audited");
        Period {
            from: to.with_day(1).expect("every month has a first day"),
            to,
        }
    }

    /// Local midnight starting `from`, as Unix milliseconds.
    pub fn start_ms(&self) -> i64 {
        local_midnight_ms(self.from)
    }

    /// Local midnight after `to` (not included).
    pub fn end_ms(&self) -> i64 {
        local_midnight_ms(self.to.succ_opt().unwrap_or(self.to))
    }

    pub fn contains_ms(&self, ms: i64) -> bool {
        (self.start_ms()..self.end_ms()).contains(&ms)
    }

    /// Whether a Splynx date (`YYYY-MM-DD`) falls in the period.
    pub fn contains_date(&self, date: &str) -> bool {
        NaiveDate::parse_from_str(date.get(..10).unwrap_or(date), "%Y-%m-%d")
            .is_ok_and(|d| (self.from..=self.to).contains(&d))
    }
}

/// The first instant of `day` in this server's timezone (a midnight skipped by a DST change
/// is taken at the earliest time that exists).
fn local_midnight_ms(day: NaiveDate) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    let local = chrono::Local.from_local_datetime(&midnight);
    local
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| {
            let hour_later = midnight + chrono::Duration::hours(1);
            chrono::Local
                .from_local_datetime(&hour_later)
                .earliest()
                .map_or(0, |t| t.timestamp_millis())
        })
}

/// The Splynx document a payment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Document {
    Invoice(i64),
    Proforma(i64),
    /// A balance top-up: no document.
    Refill,
}

impl Document {
    pub fn of(kind: DocKind, id: Option<i64>) -> Document {
        match (kind, id) {
            (DocKind::Invoice, Some(id)) => Document::Invoice(id),
            (DocKind::Proforma, Some(id)) => Document::Proforma(id),
            _ => Document::Refill,
        }
    }

    /// What a Splynx payment is allocated to (`0` is none).
    pub fn of_payment(invoice_id: Option<i64>, request_id: Option<i64>) -> Document {
        match (invoice_id.filter(|&i| i > 0), request_id.filter(|&i| i > 0)) {
            (Some(id), _) => Document::Invoice(id),
            (None, Some(id)) => Document::Proforma(id),
            (None, None) => Document::Refill,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Document::Invoice(id) => format!("invoice {id}"),
            Document::Proforma(id) => format!("proforma {id}"),
            Document::Refill => "no document (top-up)".to_string(),
        }
    }
}

/// Whose an invoice of ours is, as we asked the server for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub customer_id: Option<i64>,
    pub document: Document,
}

/// An invoice at the server, as the audit keeps it (a year may hold 100,000).
#[derive(Debug, Clone, Default)]
pub struct AuditInvoice {
    pub id: String,
    pub status: InvoiceStatus,
    pub words: StatusWords,
    pub price: Option<Decimal>,
    pub currency: String,
    /// The server lists a refund for it.
    pub refunded: bool,
    /// `None`: not this add-on's (another integration on the same account).
    pub owner: Option<Owner>,
    /// Created in the period (else it was looked up for a payment of the period).
    pub in_period: bool,
    /// Why the add-on holds it, when it does (a paid-late invoice waits for the admin).
    pub held: Option<String>,
}

impl AuditInvoice {
    /// What the audit keeps of a server's invoice (whose it is is found later).
    pub fn of(invoice: &ServerInvoice, in_period: bool) -> AuditInvoice {
        AuditInvoice {
            id: invoice.id.clone(),
            status: invoice.status,
            words: invoice.words.clone(),
            price: invoice.price,
            currency: invoice.currency.clone(),
            refunded: invoice.refunded,
            owner: None,
            in_period,
            held: None,
        }
    }
}

/// A Splynx payment (a refund is a negative one).
#[derive(Debug, Clone)]
pub struct Booked {
    pub id: i64,
    pub customer_id: i64,
    pub receipt: String,
    pub amount: Option<Decimal>,
    pub date: String,
    pub document: Document,
    /// Dated in the period with our payment method (else looked up by receipt number).
    pub in_period: bool,
}

impl Booked {
    pub fn is_refund(&self) -> bool {
        self.amount.is_some_and(|a| a < Decimal::ZERO)
    }
}

/// What both books hold for the period.
#[derive(Debug, Clone)]
pub struct Facts {
    pub period: Period,
    pub invoices: Vec<AuditInvoice>,
    pub payments: Vec<Booked>,
    pub refunds: Vec<ServerRefund>,
    /// Why refunds could not be read, when they could not.
    pub refunds_unread: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Paid at the server, no Splynx payment.
    MissingInSplynx,
    /// A Splynx payment with our method and no paid invoice of ours behind it.
    NotPaidAtServer,
    AmountDiffers,
    CustomerDiffers,
    DocumentDiffers,
    /// More than one Splynx payment for one invoice (or refund).
    Duplicate,
    /// Paid out at the server, not booked in Splynx.
    RefundNotBooked,
    /// A negative Splynx payment with no refund paid out behind it.
    RefundNotAtServer,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MissingInSplynx => "missing_in_splynx",
            Kind::NotPaidAtServer => "not_paid_at_server",
            Kind::AmountDiffers => "amount_differs",
            Kind::CustomerDiffers => "customer_differs",
            Kind::DocumentDiffers => "document_differs",
            Kind::Duplicate => "duplicate",
            Kind::RefundNotBooked => "refund_not_booked",
            Kind::RefundNotAtServer => "refund_not_at_server",
        }
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::MissingInSplynx => "paid at the server, not in Splynx",
            Kind::NotPaidAtServer => "in Splynx, not paid at the server",
            Kind::AmountDiffers => "amount differs",
            Kind::CustomerDiffers => "customer differs",
            Kind::DocumentDiffers => "document differs",
            Kind::Duplicate => "more than one Splynx payment",
            Kind::RefundNotBooked => "refunded at the server, not booked",
            Kind::RefundNotAtServer => "refund in Splynx, not paid out at the server",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub kind: Kind,
    /// The kind, for people.
    pub description: &'static str,
    /// The server's invoice id.
    pub invoice_id: String,
    pub refund_id: Option<String>,
    pub splynx_payment_ids: Vec<i64>,
    pub customer_id: Option<i64>,
    pub server_amount: Option<Decimal>,
    pub splynx_amount: Option<Decimal>,
    pub currency: String,
    pub detail: String,
}

/// What the period holds, by side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Our invoices created in the period and paid at the server.
    pub paid_at_server: usize,
    /// Their prices, by currency.
    pub paid_amounts: BTreeMap<String, Decimal>,
    /// Splynx payments (refunds not included) dated in the period with our method.
    pub splynx_payments: usize,
    pub splynx_amounts: BTreeMap<String, Decimal>,
    /// Invoices with exactly one matching Splynx payment.
    pub matched: usize,
    /// Invoices on the same account that are not ours: counted, not compared.
    pub foreign: usize,
    /// Ours, paid but not confirmed yet: not credited yet, not a difference.
    pub awaiting_confirmation: usize,
    pub refunds_paid_out: usize,
    pub refunds_booked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    pub from: String,
    pub to: String,
    pub differences: Vec<Difference>,
    pub totals: Totals,
    /// What could not be compared, and why.
    pub notes: Vec<String>,
}

/// Paid at the server: the money arrived (a paid-late invoice too: its coins are there).
fn is_paid(status: InvoiceStatus) -> bool {
    matches!(
        status,
        InvoiceStatus::PaidConfirmed | InvoiceStatus::Final | InvoiceStatus::ExpiredPaidLate
    )
}

/// Every difference between the two books.
pub fn compare(facts: &Facts) -> Audit {
    let by_id: BTreeMap<&str, &AuditInvoice> =
        facts.invoices.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut payments_of: BTreeMap<&str, Vec<&Booked>> = BTreeMap::new();
    let mut refund_bookings: BTreeMap<&str, Vec<&Booked>> = BTreeMap::new();
    for p in &facts.payments {
        let side = if p.is_refund() {
            &mut refund_bookings
        } else {
            &mut payments_of
        };
        let list = side.entry(p.receipt.as_str()).or_default();
        if !list.iter().any(|q| q.id == p.id) {
            list.push(p);
        }
    }
    let mut totals = Totals::default();
    let mut differences = Vec::new();
    let mut compared: BTreeSet<&str> = BTreeSet::new();
    for invoice in facts.invoices.iter().filter(|i| i.in_period) {
        match invoice.owner {
            None => totals.foreign += 1,
            Some(_) if is_paid(invoice.status) => {
                totals.paid_at_server += 1;
                *totals
                    .paid_amounts
                    .entry(invoice.currency.clone())
                    .or_default() += invoice.price.unwrap_or_default();
                compared.insert(&invoice.id);
            }
            Some(_) if invoice.status == InvoiceStatus::PaidUnconfirmed => {
                totals.awaiting_confirmation += 1
            }
            Some(_) => {}
        }
    }
    for p in facts
        .payments
        .iter()
        .filter(|p| p.in_period && !p.is_refund())
    {
        totals.splynx_payments += 1;
        let currency = by_id
            .get(p.receipt.as_str())
            .map(|i| i.currency.clone())
            .unwrap_or_default();
        *totals.splynx_amounts.entry(currency).or_default() += p.amount.unwrap_or_default();
        compared.insert(&p.receipt);
    }
    for id in compared {
        let payments = payments_of.get(id).map(Vec::as_slice).unwrap_or_default();
        let found = compare_invoice(id, by_id.get(id).copied(), payments, &mut differences);
        totals.matched += usize::from(found);
    }
    compare_refunds(
        facts,
        &by_id,
        &refund_bookings,
        &mut totals,
        &mut differences,
    );
    differences.sort_by(|a, b| (a.kind, &a.invoice_id).cmp(&(b.kind, &b.invoice_id)));
    Audit {
        from: facts.period.from.to_string(),
        to: facts.period.to.to_string(),
        differences,
        totals,
        notes: facts
            .refunds_unread
            .iter()
            .map(|why| format!("refunds not compared: {why}"))
            .collect(),
    }
}

/// One invoice id against its Splynx payments; true when they match exactly once.
fn compare_invoice(
    id: &str,
    audited: Option<&AuditInvoice>,
    payments: &[&Booked],
    differences: &mut Vec<Difference>,
) -> bool {
    let ids: Vec<i64> = payments.iter().map(|p| p.id).collect();
    let mut difference = |kind: Kind, detail: String| {
        differences.push(Difference {
            kind,
            description: kind.describe(),
            invoice_id: id.to_string(),
            refund_id: None,
            splynx_payment_ids: ids.clone(),
            customer_id: payments
                .first()
                .map(|p| p.customer_id)
                .or(audited.and_then(|a| a.owner).and_then(|o| o.customer_id)),
            server_amount: audited.and_then(|a| a.price),
            splynx_amount: payments.first().and_then(|p| p.amount),
            currency: audited.map(|a| a.currency.clone()).unwrap_or_default(),
            detail,
        })
    };
    let Some(audited) = audited else {
        difference(
            Kind::NotPaidAtServer,
            format!("the server has no invoice {id} (for our credentials)"),
        );
        return false;
    };
    let Some(owner) = audited.owner else {
        difference(
            Kind::NotPaidAtServer,
            format!("invoice {id} was not made by this add-on (another integration on the same account)"),
        );
        return false;
    };
    if !is_paid(audited.status) {
        difference(
            Kind::NotPaidAtServer,
            format!(
                "invoice {id} is {} at the server ({})",
                audited.status.as_str(),
                audited.words
            ),
        );
        return false;
    }
    let [payment] = payments else {
        if payments.is_empty() {
            let held = audited
                .held
                .as_deref()
                .map(|why| format!("; the add-on holds it for the admin: {why}"))
                .unwrap_or_default();
            difference(
                Kind::MissingInSplynx,
                format!("no Splynx payment has receipt number {id}{held}"),
            );
        } else {
            difference(
                Kind::Duplicate,
                format!(
                    "{} Splynx payments have receipt number {id}",
                    payments.len()
                ),
            );
        }
        return false;
    };
    let mut matched = true;
    if payment.amount != audited.price {
        matched = false;
        difference(
            Kind::AmountDiffers,
            format!(
                "Splynx payment {} is {}, the invoice {} {}",
                payment.id,
                payment
                    .amount
                    .map_or("(no amount)".into(), |a| a.to_string()),
                audited.price.map_or("(no price)".into(), |a| a.to_string()),
                audited.currency
            ),
        );
    }
    if let Some(customer) = owner.customer_id.filter(|&c| c != payment.customer_id) {
        matched = false;
        difference(
            Kind::CustomerDiffers,
            format!(
                "Splynx payment {} is customer {}'s; the invoice was made for customer {customer}",
                payment.id, payment.customer_id
            ),
        );
    }
    if owner.document != payment.document {
        matched = false;
        difference(
            Kind::DocumentDiffers,
            format!(
                "Splynx payment {} pays {}; the invoice was made for {}",
                payment.id,
                payment.document.describe(),
                owner.document.describe()
            ),
        );
    }
    matched
}

/// Refunds paid out at the server against negative Splynx payments (receipt number: the
/// refund's id).
fn compare_refunds(
    facts: &Facts,
    by_id: &BTreeMap<&str, &AuditInvoice>,
    bookings: &BTreeMap<&str, Vec<&Booked>>,
    totals: &mut Totals,
    differences: &mut Vec<Difference>,
) {
    let refunds: BTreeMap<&str, &ServerRefund> =
        facts.refunds.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut push = |kind: Kind, refund: Option<&ServerRefund>, booked: &[&Booked], detail| {
        let invoice = refund.map(|r| r.invoice_id.clone()).unwrap_or_default();
        differences.push(Difference {
            kind,
            description: kind.describe(),
            customer_id: booked.first().map(|b| b.customer_id).or_else(|| {
                by_id
                    .get(invoice.as_str())
                    .and_then(|i| i.owner)
                    .and_then(|o| o.customer_id)
            }),
            invoice_id: invoice,
            refund_id: refund
                .map(|r| r.id.clone())
                .or_else(|| booked.first().map(|b| b.receipt.clone())),
            splynx_payment_ids: booked.iter().map(|b| b.id).collect(),
            server_amount: refund.and_then(|r| r.amount),
            splynx_amount: booked.first().and_then(|b| b.amount),
            currency: refund.map(|r| r.currency.clone()).unwrap_or_default(),
            detail,
        })
    };
    for refund in facts.refunds.iter() {
        let booked = bookings
            .get(refund.id.as_str())
            .cloned()
            .unwrap_or_default();
        if refund.state != RefundState::PaidOut {
            if !booked.is_empty() {
                push(
                    Kind::RefundNotAtServer,
                    Some(refund),
                    &booked,
                    format!(
                        "refund {} is {} at the server ({}), yet booked in Splynx",
                        refund.id,
                        refund.state.as_str(),
                        refund.words
                    ),
                );
            }
            continue;
        }
        totals.refunds_paid_out += 1;
        match booked.as_slice() {
            [] => push(
                Kind::RefundNotBooked,
                Some(refund),
                &booked,
                format!(
                    "refund {} of invoice {} was paid out; no negative Splynx payment has receipt number {}",
                    refund.id, refund.invoice_id, refund.id
                ),
            ),
            [one] => {
                totals.refunds_booked += 1;
                let invoice_currency = by_id
                    .get(refund.invoice_id.as_str())
                    .map(|i| i.currency.as_str());
                let comparable = invoice_currency.is_none_or(|c| c == refund.currency);
                if comparable && one.amount != refund.amount.map(|a| -a) {
                    push(
                        Kind::AmountDiffers,
                        Some(refund),
                        &booked,
                        format!(
                            "refund {} is {} {}; Splynx payment {} books {}",
                            refund.id,
                            refund.amount.unwrap_or_default(),
                            refund.currency,
                            one.id,
                            one.amount.unwrap_or_default()
                        ),
                    );
                }
            }
            many => push(
                Kind::Duplicate,
                Some(refund),
                &booked,
                format!(
                    "{} negative Splynx payments have receipt number {}",
                    many.len(),
                    refund.id
                ),
            ),
        }
    }
    for (receipt, booked) in bookings {
        if refunds.contains_key(receipt) || !booked.iter().any(|b| b.in_period) {
            continue;
        }
        push(
            Kind::RefundNotAtServer,
            None,
            booked,
            format!("the server has no refund {receipt}, yet Splynx books one"),
        );
    }
}

#[cfg(test)]
mod tests;
