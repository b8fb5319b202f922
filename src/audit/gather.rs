//! Reads both books for `audit`: the server's invoices created in the period (one paged
//! listing, each invoice cut down to what the audit needs as its page arrives) beside
//! Splynx's payments dated in it with our payment methods (paged, at the same time), then
//! looks up only what one side has and the other's listing did not show. Nothing is
//! written anywhere.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};

use super::{is_paid, AuditInvoice, Booked, Document, Facts, Owner, Period};
use crate::context::Context;
use crate::domain::RefundState;
use crate::order_id::{self, OrderKey};
use crate::server::{is_invoice_id, PaymentServer, ServerError, ServerInvoice};
use crate::splynx::model::Payment;
use crate::splynx::SplynxClient;

/// Splynx payments read per request.
pub const SPLYNX_PAGE: usize = 1000;

/// A listed invoice, and what tells whose it is when we hold no record of it.
struct Listed {
    audited: AuditInvoice,
    order_id: String,
    /// The customer its posData names.
    customer: Option<i64>,
}

impl Listed {
    fn of(invoice: &ServerInvoice, in_period: bool) -> Listed {
        Listed {
            audited: AuditInvoice::of(invoice, in_period),
            order_id: invoice.order_id.clone(),
            customer: crate::pos_data::read(&invoice.metadata, invoice.price.unwrap_or_default())
                .customer_id,
        }
    }
}

pub fn read(
    ctx: &Context,
    server: &dyn PaymentServer,
    order_key: &OrderKey,
    period: Period,
) -> Result<Facts> {
    let splynx = ctx.splynx();
    let methods = payment_methods(ctx);
    let started = std::time::Instant::now();
    let (listed, booked) = std::thread::scope(|scope| {
        let listing = scope.spawn(|| {
            let mut listed = Vec::new();
            server
                .for_each_created(period.start_ms(), period.end_ms(), &mut |invoice| {
                    let in_period = invoice.created_at.is_none_or(|at| period.contains_ms(at));
                    listed.push(Listed::of(&invoice, in_period));
                })
                .map(|()| listed)
        });
        let booked = splynx_payments(&splynx, &methods, period);
        let listed = listing.join().expect("the listing thread does not panic");
        (listed, booked)
    });
    let listed = listed.with_context(|| format!("listing the {} invoices", server.name()))?;
    log::info!(
        "audit: {} listed {} invoices in {:.1?}",
        server.name(),
        listed.len(),
        started.elapsed()
    );
    let mut invoices: BTreeMap<String, AuditInvoice> = BTreeMap::new();
    for listed in listed {
        let audited = owned(ctx, order_key, listed)?;
        invoices.insert(audited.id.clone(), audited);
    }
    let mut payments: Vec<Booked> = booked?.into_iter().map(|p| booked_of(p, true)).collect();
    log::info!(
        "audit: {} Splynx payments read; whose each invoice is found by {:.1?}",
        payments.len(),
        started.elapsed()
    );

    // Splynx payments of the period whose invoice the listing did not show (made before
    // the period): the invoice, and every payment with its receipt number (a second one
    // may be dated in another period).
    let receipts: BTreeSet<String> = payments
        .iter()
        .filter(|p| !p.is_refund())
        .map(|p| p.receipt.clone())
        .filter(|r| !invoices.contains_key(r) && is_invoice_id(r))
        .collect();
    for receipt in receipts {
        if let Some(invoice) = fetch(ctx, server, &receipt)? {
            let audited = owned(ctx, order_key, Listed::of(&invoice, false))?;
            payments.extend(by_receipt(&splynx, &receipt)?);
            invoices.insert(receipt, audited);
        }
    }
    // Invoices of the period paid at the server whose payment is dated outside it.
    let shown: BTreeSet<&str> = payments.iter().map(|p| p.receipt.as_str()).collect();
    let unshown: Vec<String> = invoices
        .values()
        .filter(|i| i.in_period && i.owner.is_some() && is_paid(i.status))
        .filter(|i| !shown.contains(i.id.as_str()))
        .map(|i| i.id.clone())
        .collect();
    for id in unshown {
        payments.extend(by_receipt(&splynx, &id)?);
    }

    let (refunds, refunds_unread) = refunds(ctx, server, &invoices, &payments)?;
    // Refunds paid out whose booking is dated outside the period.
    let shown: BTreeSet<&str> = payments.iter().map(|p| p.receipt.as_str()).collect();
    let unbooked: Vec<String> = refunds
        .iter()
        .filter(|r| r.state == RefundState::PaidOut && !shown.contains(r.id.as_str()))
        .map(|r| r.id.clone())
        .collect();
    for id in unbooked {
        payments.extend(by_receipt(&splynx, &id)?);
    }
    log::info!("audit: both books read in {:.1?}", started.elapsed());
    Ok(Facts {
        period,
        invoices: invoices.into_values().collect(),
        payments,
        refunds,
        refunds_unread,
    })
}

/// The refunds of the paid invoices of ours (those the server flags, and those asked for
/// here), and of the negative Splynx payments of the period; why they could not be read,
/// if they could not (a temporary failure fails the audit).
fn refunds(
    ctx: &Context,
    server: &dyn PaymentServer,
    invoices: &BTreeMap<String, AuditInvoice>,
    payments: &[Booked],
) -> Result<(Vec<crate::server::ServerRefund>, Option<String>)> {
    let asked_here = ctx.store.refunded_invoice_ids()?;
    let paid: Vec<(&str, bool)> = invoices
        .values()
        .filter(|i| i.owner.is_some() && is_paid(i.status))
        .map(|i| (i.id.as_str(), i.refunded || asked_here.contains(&i.id)))
        .collect();
    let unread = |e: ServerError| -> Result<Option<String>> {
        match e {
            ServerError::Temporary(e) => {
                Err(ServerError::Temporary(e)).context("reading the refunds")
            }
            e => Ok(Some(crate::errors::message(&anyhow::Error::from(e)))),
        }
    };
    let mut refunds = match server.refunds_among(&paid) {
        Ok(found) => found,
        Err(e) => return Ok((Vec::new(), unread(e)?)),
    };
    let known: BTreeSet<String> = refunds.iter().map(|r| r.id.clone()).collect();
    let booked: BTreeSet<&str> = payments
        .iter()
        .filter(|p| p.in_period && p.is_refund())
        .map(|p| p.receipt.as_str())
        .filter(|r| !known.contains(*r) && is_invoice_id(r))
        .collect();
    for id in booked {
        match server.fetch_refund(id) {
            Ok(refund) => refunds.push(refund),
            Err(ServerError::NotFound(_)) => {}
            Err(e) => return Ok((refunds, unread(e)?)),
        }
    }
    Ok((refunds, None))
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
fn owned(ctx: &Context, order_key: &OrderKey, listed: Listed) -> Result<AuditInvoice> {
    let Listed {
        mut audited,
        order_id,
        customer,
    } = listed;
    match ctx.store.invoice_by_bitpay_id(&audited.id)? {
        Some(record) => {
            audited.owner = Some(Owner {
                customer_id: Some(record.order.customer_id),
                document: Document::of(record.order.doc_kind, record.order.doc_id),
            });
            audited.held = record.settlement.needs_admin().then(|| {
                record
                    .note
                    .unwrap_or_else(|| record.settlement.describe().into())
            });
        }
        None => {
            audited.owner = order_id::verify(&order_id, order_key).map(|order| Owner {
                customer_id: order.refill_customer.or(customer),
                document: Document::of(order.kind, order.doc_id),
            });
        }
    }
    Ok(audited)
}
