//! Reads both books for `audit`: the server's invoices created in the period (one paged
//! listing) beside Splynx's payments dated in it with our payment methods (paged, at the
//! same time), then looks up only what one side has and the other's listing did not show.
//! Nothing is written anywhere.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};

use super::{AuditInvoice, Booked, Document, Facts, Owner, Period};
use crate::context::Context;
use crate::order_id::{self, OrderKey};
use crate::server::{is_invoice_id, PaymentServer, ServerError, ServerInvoice};
use crate::splynx::model::Payment;
use crate::splynx::SplynxClient;

/// Splynx payments read per request.
pub const SPLYNX_PAGE: usize = 1000;

pub fn read(
    ctx: &Context,
    server: &dyn PaymentServer,
    order_key: &OrderKey,
    period: Period,
) -> Result<Facts> {
    let splynx = ctx.splynx();
    let methods = payment_methods(ctx);
    let (listed, booked) = std::thread::scope(|scope| {
        let listing = scope.spawn(|| server.list_created(period.start_ms(), period.end_ms()));
        let booked = splynx_payments(&splynx, &methods, period);
        let listed = listing.join().expect("the listing thread does not panic");
        (listed, booked)
    });
    let listed = listed.with_context(|| format!("listing the {} invoices", server.name()))?;
    let booked = booked?;
    let mut invoices: BTreeMap<String, AuditInvoice> = BTreeMap::new();
    for invoice in listed {
        let in_period = invoice.created_at.is_none_or(|at| period.contains_ms(at));
        let audited = audit_invoice(ctx, order_key, invoice, in_period)?;
        invoices.insert(audited.invoice.id.clone(), audited);
    }
    let mut payments: Vec<Booked> = booked.into_iter().map(|p| booked_of(p, true)).collect();

    // Splynx payments of the period whose invoice the listing did not show (made before
    // the period): the invoice, and every payment with its receipt number (a second one
    // may be dated in another period).
    let receipts: BTreeSet<String> = payments
        .iter()
        .filter(|p| !p.amount.is_some_and(|a| a.is_sign_negative()))
        .map(|p| p.receipt.clone())
        .filter(|r| !invoices.contains_key(r) && is_invoice_id(r))
        .collect();
    for receipt in receipts {
        if let Some(invoice) = fetch(ctx, server, &receipt)? {
            let audited = audit_invoice(ctx, order_key, invoice, false)?;
            payments.extend(by_receipt(&splynx, &receipt)?);
            invoices.insert(receipt, audited);
        }
    }
    // Invoices of the period paid at the server whose payment is dated outside it.
    let shown: BTreeSet<&str> = payments.iter().map(|p| p.receipt.as_str()).collect();
    let unshown: Vec<String> = invoices
        .values()
        .filter(|i| i.in_period && i.owner.is_some() && super::is_paid(i.invoice.status))
        .map(|i| i.invoice.id.clone())
        .filter(|id| !shown.contains(id.as_str()))
        .collect();
    for id in unshown {
        payments.extend(by_receipt(&splynx, &id)?);
    }

    // Refunds of the paid invoices of ours: those the server flags, and those we asked for.
    let mut refundable: Vec<ServerInvoice> = Vec::new();
    for audited in invoices.values() {
        if audited.owner.is_none() || !super::is_paid(audited.invoice.status) {
            continue;
        }
        let mut invoice = audited.invoice.clone();
        if !invoice.refunded {
            invoice.refunded = match ctx.store.invoice_by_bitpay_id(&invoice.id)? {
                Some(record) => !ctx.store.refunds_for(record.id)?.is_empty(),
                None => false,
            };
        }
        refundable.push(invoice);
    }
    let (mut refunds, mut refunds_unread) = match server.refunds_among(&refundable) {
        Ok(found) => (found, None),
        Err(ServerError::Temporary(e)) => {
            return Err(ServerError::Temporary(e)).context("reading the refunds")
        }
        Err(e) => (
            Vec::new(),
            Some(crate::errors::message(&anyhow::Error::from(e))),
        ),
    };
    // Refunds booked in the period that the listing above did not find.
    let known: BTreeSet<String> = refunds.iter().map(|r| r.id.clone()).collect();
    let booked_refunds: BTreeSet<String> = payments
        .iter()
        .filter(|p| p.in_period && p.amount.is_some_and(|a| a.is_sign_negative()))
        .map(|p| p.receipt.clone())
        .filter(|r| !known.contains(r) && is_invoice_id(r))
        .collect();
    if refunds_unread.is_none() {
        for id in booked_refunds {
            match server.fetch_refund(&id) {
                Ok(refund) => refunds.push(refund),
                Err(ServerError::NotFound(_)) => {}
                Err(ServerError::Temporary(e)) => {
                    return Err(ServerError::Temporary(e))
                        .with_context(|| format!("reading refund {id}"))
                }
                Err(e) => {
                    refunds_unread = Some(crate::errors::message(&anyhow::Error::from(e)));
                    break;
                }
            }
        }
    }
    // Refunds paid out whose booking is dated outside the period.
    let shown: BTreeSet<String> = payments.iter().map(|p| p.receipt.clone()).collect();
    for refund in &refunds {
        if refund.state == crate::domain::RefundState::PaidOut && !shown.contains(&refund.id) {
            payments.extend(by_receipt(&splynx, &refund.id)?);
        }
    }
    Ok(Facts {
        period,
        invoices: invoices.into_values().collect(),
        payments,
        refunds,
        refunds_unread,
    })
}

/// The payment methods payments of ours carry: the default's and every partner's.
fn payment_methods(ctx: &Context) -> Vec<i64> {
    let mut methods: BTreeSet<i64> = BTreeSet::from([ctx.config.splynx.payment_method_id]);
    for partner in ctx.config.partners_with_settings() {
        methods.insert(
            ctx.config
                .for_partner(Some(partner))
                .splynx
                .payment_method_id,
        );
    }
    methods.into_iter().collect()
}

/// Every payment of `methods` dated in the period, page by page.
fn splynx_payments(
    splynx: &SplynxClient<'_>,
    methods: &[i64],
    period: Period,
) -> Result<Vec<Payment>> {
    let (from, to) = (period.from.to_string(), period.to.to_string());
    let mut all = Vec::new();
    for &method in methods {
        for offset in (0..).step_by(SPLYNX_PAGE) {
            let page = splynx
                .payments_dated(method, (&from, &to), SPLYNX_PAGE, offset)
                .with_context(|| format!("listing the Splynx payments of method {method}"))?;
            let short = page.len() < SPLYNX_PAGE;
            all.extend(page);
            if short {
                break;
            }
        }
    }
    Ok(all)
}

fn by_receipt(splynx: &SplynxClient<'_>, receipt: &str) -> Result<Vec<Booked>> {
    Ok(splynx
        .payments_with_receipt(receipt)
        .with_context(|| format!("looking up Splynx payments with receipt number {receipt}"))?
        .into_iter()
        .filter(|p| p.receipt_number == receipt)
        .map(|p| booked_of(p, false))
        .collect())
}

fn booked_of(payment: Payment, in_period: bool) -> Booked {
    Booked {
        id: payment.id,
        customer_id: payment.customer_id,
        document: Document::of_payment(payment.invoice_id, payment.request_id),
        receipt: payment.receipt_number,
        amount: payment.amount,
        date: payment.date,
        in_period,
    }
}

/// One invoice the listing did not show; `None` when the server has none by that id.
fn fetch(ctx: &Context, server: &dyn PaymentServer, id: &str) -> Result<Option<ServerInvoice>> {
    let fetched = match ctx.store.invoice_by_bitpay_id(id)? {
        Some(record) => server.fetch(id, &record.order).map(Some),
        None => server
            .fetch_unknown(id)
            .map(|found| found.map(|(invoice, _)| invoice)),
    };
    match fetched {
        Ok(invoice) => Ok(invoice),
        Err(ServerError::NotFound(_)) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("fetching invoice {id}")),
    }
}

/// Whose the invoice is: our record's order when we hold one, else what its order id (if
/// its MAC verifies) and posData say; `None` for another integration's.
fn audit_invoice(
    ctx: &Context,
    order_key: &OrderKey,
    invoice: ServerInvoice,
    in_period: bool,
) -> Result<AuditInvoice> {
    let (owner, held) = match ctx.store.invoice_by_bitpay_id(&invoice.id)? {
        Some(record) => (
            Some(Owner {
                customer_id: Some(record.order.customer_id),
                document: Document::of(record.order.doc_kind, record.order.doc_id),
            }),
            record.settlement.needs_admin().then(|| {
                record
                    .note
                    .unwrap_or_else(|| record.settlement.describe().into())
            }),
        ),
        None => (
            order_id::verify(&invoice.order_id, order_key).map(|order| Owner {
                customer_id: order.refill_customer.or_else(|| {
                    crate::pos_data::read(&invoice.metadata, invoice.price.unwrap_or_default())
                        .customer_id
                }),
                document: Document::of(order.kind, order.doc_id),
            }),
            None,
        ),
    };
    Ok(AuditInvoice {
        invoice,
        owner,
        in_period,
        held,
    })
}
