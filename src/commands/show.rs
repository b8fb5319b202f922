//! `show ID`: one BitPay invoice (or every invoice of a Splynx document number) with its
//! journal. Longer than a command's 150 lines because it resolves three kinds of id
//! (BitPay id, order id, document number) and renders the journal, bookings and refunds
//! for people.

use anyhow::Result;
use serde::Serialize;

use crate::cli::ShowArgs;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::money::format_amount;
use crate::output::View;
use crate::portal::{self, CustomerView};
use crate::store::{BookingState, InvoiceRecord};
use crate::view::{InvoiceView, JournalView};

pub fn run(args: ShowArgs, ctx: &Context) -> Result<u8> {
    let id = args.id.trim();
    let mut records: Vec<InvoiceRecord> = Vec::new();
    if let Some(r) = ctx.store.invoice_by_bitpay_id(id)? {
        records.push(r);
    } else if let Some(r) = ctx.store.invoice_by_order_id(id)? {
        records.push(r);
    } else {
        records = ctx.store.invoices_by_document_number(id)?;
    }
    let journal_only = if records.is_empty() {
        ctx.store.journal_for(id)?
    } else {
        Vec::new()
    };
    if let Some(customer) = args.customer {
        // The result page's view: only the customer's own payments, and no journal of
        // ids they do not own.
        records.retain(|r| r.order.customer_id == customer);
        if records.is_empty() {
            return Err(Problem::NotFound(format!(
                "no payment {id:?} of customer {customer} is known here"
            ))
            .into());
        }
    }
    let journal_only = if args.customer.is_some() {
        Vec::new()
    } else {
        journal_only
    };
    if records.is_empty() && journal_only.is_empty() {
        return Err(Problem::NotFound(format!(
            "no BitPay invoice, order or Splynx document number {id:?} is known here"
        ))
        .into());
    }
    let mut invoices = Vec::new();
    for record in &records {
        let journal = match &record.bitpay_id {
            Some(bitpay_id) => ctx.store.journal_for(bitpay_id)?,
            None => Vec::new(),
        };
        let currency = &record.order.currency;
        invoices.push(ShownInvoice {
            invoice: record.into(),
            fee: record.order.fee.map(|f| FeeShown {
                amount: format_amount(record.order.price - f.total(), currency),
                percent: f.percent.normalize().to_string(),
                fee: format_amount(f.fee, currency),
                vat_percent: f.vat_percent.normalize().to_string(),
                vat: format_amount(f.vat, currency),
            }),
            bookings: ctx
                .store
                .bookings(record.id)?
                .iter()
                .map(|b| BookingShown {
                    what: b.kind.describe(),
                    state: match b.state {
                        BookingState::Pending => "waiting",
                        BookingState::Sent => "sent, outcome unknown",
                        BookingState::Done => "done",
                    },
                    splynx_id: b.splynx_id,
                    note: b.note.clone(),
                })
                .collect(),
            // Refunds are the admin's business, not the result page's.
            refunds: if args.customer.is_some() {
                Vec::new()
            } else {
                crate::refund::views_for(&ctx.store, record)?
            },
            customer_view: portal::customer_view(record, record.order.server_name()),
            journal: journal.iter().map(JournalView::from).collect(),
        });
    }
    ctx.output.show(&Shown {
        id: id.to_string(),
        invoices,
        journal: journal_only.iter().map(JournalView::from).collect(),
    });
    Ok(SUCCESS)
}

/// `show`'s result: the invoices found, or the journal of an id without one.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(skip)]
    id: String,
    invoices: Vec<ShownInvoice>,
    journal: Vec<JournalView>,
}

#[derive(Debug, Serialize)]
struct ShownInvoice {
    #[serde(flatten)]
    invoice: InvoiceView,
    /// The service fee included in the price.
    fee: Option<FeeShown>,
    /// What was booked in Splynx after the credit.
    bookings: Vec<BookingShown>,
    /// Refunds asked for from Splynx.
    refunds: Vec<crate::refund::RefundView>,
    customer_view: CustomerView,
    journal: Vec<JournalView>,
}

#[derive(Debug, Serialize)]
struct FeeShown {
    /// The document's amount (or the top-up entered).
    amount: String,
    percent: String,
    fee: String,
    vat_percent: String,
    vat: String,
}

#[derive(Debug, Serialize)]
struct BookingShown {
    what: &'static str,
    state: &'static str,
    splynx_id: Option<i64>,
    note: Option<String>,
}

impl View for Shown {
    fn human(&self) -> String {
        let mut lines = Vec::new();
        for shown in &self.invoices {
            let block = shown.invoice.block();
            let (head, journal) = block
                .rsplit_once('\n')
                .unwrap_or((block.as_str(), "  journal:"));
            lines.push(head.to_string());
            if let Some(f) = &shown.fee {
                lines.push(format!(
                    "  fee:        {} + fee {} % {} + VAT {} % {}",
                    f.amount, f.percent, f.fee, f.vat_percent, f.vat
                ));
            }
            for b in &shown.bookings {
                lines.push(format!(
                    "  booked:     {} {}: {}{}",
                    b.what,
                    b.splynx_id.map_or("-".into(), |id| id.to_string()),
                    b.state,
                    b.note
                        .as_deref()
                        .filter(|_| b.state != "done")
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                ));
            }
            for r in &shown.refunds {
                lines.push(format!(
                    "  refund:     {} {} {}: {}, asked by {} at {}{}",
                    r.id,
                    r.amount,
                    r.currency,
                    r.state_text,
                    r.requested_by,
                    r.requested_at,
                    r.splynx_payment_id
                        .map(|p| format!(", booked as Splynx payment {p}"))
                        .unwrap_or_default()
                ));
                if let Some(link) = r.claim_link.as_deref().filter(|_| r.state.is_open()) {
                    lines.push(format!("              claimed by the customer at {link}"));
                }
            }
            lines.push(journal.to_string());
            lines.extend(shown.journal.iter().map(JournalView::line));
        }
        if self.invoices.is_empty() {
            lines.push(format!("No stored invoice {}; journal:", self.id));
            lines.extend(self.journal.iter().map(JournalView::line));
        }
        lines.join("\n")
    }
}
