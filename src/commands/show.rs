//! `show ID`: one BitPay invoice (or every invoice of a Splynx document number) with its
//! journal.

use anyhow::Result;
use serde::Serialize;

use crate::cli::ShowArgs;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::output::View;
use crate::portal::{self, CustomerView};
use crate::store::InvoiceRecord;
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
        invoices.push(ShownInvoice {
            invoice: record.into(),
            customer_view: portal::customer_view(record),
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
    customer_view: CustomerView,
    journal: Vec<JournalView>,
}

impl View for Shown {
    fn human(&self) -> String {
        let mut lines = Vec::new();
        for shown in &self.invoices {
            lines.push(shown.invoice.block());
            lines.extend(shown.journal.iter().map(JournalView::line));
        }
        if self.invoices.is_empty() {
            lines.push(format!("No stored invoice {}; journal:", self.id));
            lines.extend(self.journal.iter().map(JournalView::line));
        }
        lines.join("\n")
    }
}
