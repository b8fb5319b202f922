//! `show ID`: one BitPay invoice (or every invoice of a Splynx document number) with its
//! journal.

use anyhow::Result;
use serde_json::json;

use crate::cli::ShowArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::money::format_amount;
use crate::store::{InvoiceRecord, Settlement};

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
        records.retain(|r| r.customer_id == customer);
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
    let mut human = Vec::new();
    let mut json_invoices = Vec::new();
    for record in &records {
        let bitpay_id = record.bitpay_id.clone().unwrap_or_default();
        let entries = if bitpay_id.is_empty() {
            Vec::new()
        } else {
            ctx.store.journal_for(&bitpay_id)?
        };
        human.push(format!(
            "BitPay invoice {}\n  document:   {} {} (id {}) of customer {}\n  amount:     {} {}\n  order id:   {}\n  BitPay:     {}{}\n  settlement: {}{}{}\n  Splynx payment: {}{}{}\n  created:    {}\n  url:        {}\n  journal:",
            if bitpay_id.is_empty() { "(not created yet)" } else { &bitpay_id },
            record.doc_kind.as_str(),
            record.doc_number.as_deref().unwrap_or("-"),
            record.doc_id.map_or("-".into(), |d| d.to_string()),
            record.customer_id,
            format_amount(record.price, &record.currency),
            record.currency,
            record.order_id,
            record.bitpay_status,
            record.exception_status.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(),
            record.settlement.as_str(),
            Some(record.settlement.describe())
                .filter(|d| *d != record.settlement.as_str())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            record.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default(),
            record.splynx_payment_id.map_or("none".into(), |p| p.to_string()),
            if record.duplicate_payment_ids.is_empty() {
                String::new()
            } else {
                format!(
                    "\n  duplicate payments in Splynx: {}",
                    crate::settlement::join_ids(&record.duplicate_payment_ids)
                )
            },
            match (record.payment_sent_at, record.watch_until) {
                (Some(at), _) if record.settlement == Settlement::Sent => format!(
                    "\n  payment sent: {} ({} attempt(s)), outcome unknown",
                    clock::datetime_of(at),
                    record.payment_attempts
                ),
                (_, Some(until)) => format!(
                    "\n  watched:    until BitPay says complete, at most until {}",
                    clock::datetime_of(until)
                ),
                _ => String::new(),
            },
            clock::datetime_of(record.created_at),
            record.url.as_deref().unwrap_or("-"),
        ));
        for entry in &entries {
            human.push(format!(
                "    {}  {:<9} {}",
                clock::datetime_of(entry.at),
                entry.kind,
                entry.summary
            ));
        }
        json_invoices.push(json!({
            "bitpay_invoice_id": record.bitpay_id,
            "document": record.doc_kind.as_str(),
            "document_id": record.doc_id,
            "document_number": record.doc_number,
            "customer_id": record.customer_id,
            "price": format_amount(record.price, &record.currency),
            "currency": record.currency,
            "order_id": record.order_id,
            "bitpay_status": record.bitpay_status,
            "exception_status": record.exception_status,
            "settlement": record.settlement.as_str(),
            "note": record.note,
            "splynx_payment_id": record.splynx_payment_id,
            "duplicate_payment_ids": record.duplicate_payment_ids,
            "payment_sent_at": record.payment_sent_at.map(clock::datetime_of),
            "payment_attempts": record.payment_attempts,
            "credited_at": record.credited_at.map(clock::datetime_of),
            "watch_until": record.watch_until.map(clock::datetime_of),
            "url": record.url,
            "customer_view": crate::portal::customer_view(record),
            "created_at": clock::datetime_of(record.created_at),
            "journal": entries.iter().map(journal_json).collect::<Vec<_>>(),
        }));
    }
    if records.is_empty() {
        human.push(format!("No stored invoice {id}; journal:"));
        for entry in &journal_only {
            human.push(format!(
                "    {}  {:<9} {}",
                clock::datetime_of(entry.at),
                entry.kind,
                entry.summary
            ));
        }
    }
    ctx.output.emit(
        &human.join("\n"),
        &json!({"invoices": json_invoices, "journal": journal_only.iter().map(journal_json).collect::<Vec<_>>()}),
    );
    Ok(SUCCESS)
}

fn journal_json(entry: &crate::store::JournalEntry) -> serde_json::Value {
    json!({"at": clock::datetime_of(entry.at), "kind": entry.kind, "summary": entry.summary, "detail": entry.detail})
}
