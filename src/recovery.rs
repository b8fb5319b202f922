//! Recovering what the payment server has and we did not record: a create whose answer
//! never arrived (found by our guid or order id), and a lost local record (rebuilt only for
//! invoices this installation made: their order id's MAC verifies, never another
//! integration's or a forged one).

use anyhow::{Context as _, Result};

use crate::clock;
use crate::context::Context;
use crate::money::format_amount;
use crate::order_id::{self, OrderKey, OrderRef};
use crate::pos_data::{self, PosData};
use crate::server::{PaymentServer, ServerInvoice};
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::Store;
use crate::store::{DocKind, InvoiceRecord, NewInvoice, Settlement};

/// Asks the server for the invoice a `creating` record asked for. When the server has it,
/// and `record_it`, the record learns its id; `when` says when it was found ("during
/// reconcile").
pub fn recover_created(
    store: &Store,
    server: &dyn PaymentServer,
    record: &InvoiceRecord,
    when: &str,
    record_it: bool,
) -> Result<Option<ServerInvoice>> {
    let found = server.find_created(&record.order)?;
    if let (Some(invoice), true) = (&found, record_it) {
        let how = format!("recovered by {} {when}", lookup_key(server));
        record_created(store, record, invoice, &how)?;
    }
    Ok(found)
}

/// What a create whose answer was lost is found by: BitPay hands our guid back, BTCPay
/// only our order id.
pub fn lookup_key(server: &dyn PaymentServer) -> &'static str {
    if server.capabilities().idempotent_create {
        "guid"
    } else {
        "order id"
    }
}

/// Invoices stuck in "creating" this long without the server knowing them are dropped.
const ABANDON_CREATING_MS: i64 = 60 * 60 * 1000;

/// What became of a create whose answer never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creating {
    /// The server has it (recorded, unless a dry run).
    Found,
    /// The server does not know it after an hour: it never existed (marked expired).
    Abandoned,
    /// Not at the server yet; asked again later.
    Unknown,
}

/// Looks a `creating` record up, and gives it up after an hour unknown.
pub fn finish_creating(
    store: &Store,
    server: &dyn PaymentServer,
    record: &InvoiceRecord,
    dry_run: bool,
) -> Result<Creating> {
    let found = recover_created(store, server, record, "during reconcile", !dry_run)
        .with_context(|| format!("recovering invoice guid {}", record.order.guid))?;
    let now = clock::now_ms();
    Ok(match found {
        Some(_) => Creating::Found,
        None if now - record.created_at > ABANDON_CREATING_MS => {
            if !dry_run {
                store.set_settlement(
                    record.id,
                    Settlement::Expired,
                    Some(&format!("never created at {}", server.name())),
                    now,
                )?;
            }
            Creating::Abandoned
        }
        None => Creating::Unknown,
    })
}

/// Lists the server's invoices from `since_ms` to now and rebuilds records for ours that
/// are missing.
pub fn discover(
    ctx: &Context,
    server: &dyn PaymentServer,
    splynx: &SplynxClient<'_>,
    order_key: &OrderKey,
    since_ms: i64,
    dry_run: bool,
) -> Result<usize> {
    let invoices = server
        .list_created(since_ms, clock::now_ms() + clock::DAY_MS)
        .with_context(|| format!("listing {} invoices", server.name()))?;
    adopt_missing(ctx, server, splynx, order_key, &invoices, dry_run)
}

/// Rebuilds the records of listed invoices that are ours (their order id's MAC verifies)
/// and that we hold no record of (a lost create answer, a restored database); how many.
pub fn adopt_missing(
    ctx: &Context,
    server: &dyn PaymentServer,
    splynx: &SplynxClient<'_>,
    order_key: &OrderKey,
    invoices: &[ServerInvoice],
    dry_run: bool,
) -> Result<usize> {
    let mut found = 0;
    for invoice in invoices {
        if order_id::verify(&invoice.order_id, order_key).is_none()
            || ctx.store.invoice_by_bitpay_id(&invoice.id)?.is_some()
        {
            continue;
        }
        found += 1;
        if dry_run {
            log::info!(
                "would adopt {} invoice {} ({})",
                server.name(),
                invoice.id,
                invoice.order_id
            );
            continue;
        }
        let _ = adopt_by_id(ctx, server, splynx, order_key, &invoice.id)?;
    }
    Ok(found)
}

/// Records the server's answer for a `creating` record, with a journal line naming the
/// document.
pub fn record_created(
    store: &Store,
    record: &InvoiceRecord,
    invoice: &ServerInvoice,
    how: &str,
) -> Result<(), crate::store::StoreError> {
    let summary = format!(
        "{how}: {} {} {} for customer {} ({}), token {}",
        record.order.doc_kind.as_str(),
        record.order.doc_number.as_deref().unwrap_or("-"),
        format_amount(record.order.price, &record.order.currency),
        record.order.customer_id,
        record.order.order_id,
        record.order.facade
    );
    store.mark_created(&record.order.guid, invoice, &summary, clock::now_ms())
}

/// What the server's answer about an invoice id we do not hold made of it.
pub enum Adoption {
    /// Ours: the local record, rebuilt or recovered.
    Adopted(Box<InvoiceRecord>),
    /// Not ours, and why (recorded in the journal).
    NotOurs(String),
}

/// An invoice id we have no record of: if the server, asked with our own credentials, has
/// it with our orderId format, rebuild the lost record.
pub fn adopt_by_id(
    ctx: &Context,
    server: &dyn PaymentServer,
    splynx: &SplynxClient<'_>,
    order_key: &OrderKey,
    id: &str,
) -> Result<Adoption> {
    let ignore = |reason: &str| -> Result<Adoption> {
        ctx.store.journal(
            Some(id),
            "decision",
            &format!("ignored: {reason}"),
            None,
            clock::now_ms(),
        )?;
        Ok(Adoption::NotOurs(reason.to_string()))
    };
    let name = server.name();
    let found = server
        .fetch_unknown(id)
        .with_context(|| format!("fetching unknown {name} invoice {id}"))?;
    let Some((invoice, credential)) = found else {
        return ignore(&format!(
            "unknown invoice ({name} does not know it for our credentials)"
        ));
    };
    ctx.store.journal(
        Some(id),
        "fetch",
        &format!(
            "unknown locally; {name} says {} with orderId {:?}",
            invoice.words.status, invoice.order_id
        ),
        None,
        clock::now_ms(),
    )?;
    // A server that hands our guid back is matched by it; one that does not, by order id.
    let existing = match invoice.guid.as_str() {
        "" => ctx.store.invoice_by_order_id(&invoice.order_id)?,
        guid => ctx.store.invoice_by_guid(guid)?,
    };
    if let Some(existing) = existing {
        // Our own attempt whose answer never arrived.
        let how = &format!(
            "recovered by {}: our own create whose answer never arrived",
            lookup_key(server)
        );
        ctx.store
            .mark_created(&existing.order.guid, &invoice, how, clock::now_ms())?;
        return match ctx.store.invoice_by_bitpay_id(id)? {
            Some(record) => Ok(Adoption::Adopted(Box::new(record))),
            None => ignore("recovered, but the record vanished"),
        };
    }
    let Some(OrderRef {
        kind,
        doc_id,
        refill_customer,
    }) = order_id::verify(&invoice.order_id, order_key)
    else {
        return ignore(&format!(
            "orderId {:?} was not made by this installation (no valid MAC): another integration's invoice on the same {name} account, or a forged one; never adopted",
            invoice.order_id
        ));
    };
    let Some(price) = invoice.price else {
        return ignore(&format!("{name}'s invoice has no price"));
    };
    let not_found = |e: SplynxError| -> Result<Option<(i64, String)>> {
        match e {
            SplynxError::NotFound { .. } => Ok(None),
            other => Err(other.into()),
        }
    };
    let owner = match (kind, doc_id) {
        (DocKind::Invoice, Some(doc)) => splynx
            .invoice(doc)
            .map(|i| Some((i.customer_id, i.number)))
            .or_else(not_found)?,
        (DocKind::Proforma, Some(doc)) => splynx
            .proforma(doc)
            .map(|p| Some((p.customer_id, p.number)))
            .or_else(not_found)?,
        _ => refill_customer.map(|c| (c, String::new())),
    };
    let Some((customer_id, number)) = owner else {
        return ignore("the Splynx document it names does not exist");
    };
    let pos_data = pos_data::read(&invoice.metadata, price);
    if pos_data.customer_id.is_some_and(|c| c != customer_id) {
        return ignore("posData names another customer than the document's");
    }
    // The currency is the customer's partner's (Modules-list Partners settings).
    let partner_id = match splynx.customer(customer_id) {
        Ok(customer) => customer.partner_id,
        Err(SplynxError::NotFound { .. }) => {
            return ignore("its customer does not exist in Splynx")
        }
        Err(e) => return Err(e.into()),
    };
    let PosData {
        fee, origin, terms, ..
    } = pos_data;
    // Rebuilt as its checkout decided; one from before terms were stored is checked
    // against today's settings of the partner.
    if terms.is_none() {
        let settings = ctx.config.for_partner(partner_id);
        if invoice.currency != settings.bitpay.currency {
            return ignore(&format!(
                "currency {} is not the configured {}",
                invoice.currency, settings.bitpay.currency
            ));
        }
    }
    let guid = if invoice.guid.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        invoice.guid.clone()
    };
    let record = ctx.store.adopt_invoice(
        &NewInvoice {
            guid,
            environment: ctx.config.invoice_environment().to_string(),
            facade: credential.label,
            token: credential.secret,
            doc_kind: kind,
            doc_id,
            doc_number: (!number.is_empty()).then_some(number),
            customer_id,
            price,
            currency: invoice.currency.clone(),
            order_id: invoice.order_id.clone(),
            partner_id,
            fee,
            origin,
            terms,
        },
        &invoice,
        clock::now_ms(),
    )?;
    Ok(Adoption::Adopted(Box::new(record)))
}
