//! Recovering what BitPay has and we did not record: a create whose answer never arrived
//! (found by our guid), and a lost local record (rebuilt only for invoices this
//! installation made: their order id's MAC verifies, never another integration's or a
//! forged one).

use anyhow::{Context as _, Result};

use crate::bitpay::model::Invoice as BitPayInvoice;
use crate::bitpay::BitPayClient;
use crate::clock;
use crate::context::Context;
use crate::money::format_amount;
use crate::order_id::{self, OrderKey, OrderRef};
use crate::pos_data::{self, PosData};
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::Store;
use crate::store::{DocKind, InvoiceRecord, NewInvoice, Settlement};

/// Asks BitPay for the invoice a `creating` record asked for (by its guid). When BitPay has
/// it, and `record_it`, the record learns its BitPay id; `how` says where it was found.
pub fn recover_by_guid(
    store: &Store,
    bitpay: &BitPayClient,
    record: &InvoiceRecord,
    how: &str,
    record_it: bool,
) -> Result<Option<BitPayInvoice>> {
    let found = bitpay.invoice_by_guid(&record.order.guid, record.order.token.expose())?;
    if let (Some(invoice), true) = (&found, record_it) {
        record_created(store, record, invoice, how)?;
    }
    Ok(found)
}

/// Invoices stuck in "creating" this long without BitPay knowing their guid are dropped.
const ABANDON_CREATING_MS: i64 = 60 * 60 * 1000;

/// What became of a create whose answer never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creating {
    /// BitPay has it (recorded, unless a dry run).
    Found,
    /// BitPay does not know it after an hour: it never existed (marked expired).
    Abandoned,
    /// Not at BitPay yet; asked again later.
    Unknown,
}

/// Looks a `creating` record up by guid, and gives it up after an hour unknown.
pub fn finish_creating(
    store: &Store,
    bitpay: &BitPayClient,
    record: &InvoiceRecord,
    dry_run: bool,
) -> Result<Creating> {
    let found = recover_by_guid(
        store,
        bitpay,
        record,
        "recovered by guid during reconcile",
        !dry_run,
    )
    .with_context(|| format!("recovering invoice guid {}", record.order.guid))?;
    let now = clock::now_ms();
    Ok(match found {
        Some(_) => Creating::Found,
        None if now - record.created_at > ABANDON_CREATING_MS => {
            if !dry_run {
                store.set_settlement(
                    record.id,
                    Settlement::Expired,
                    Some("never created at BitPay"),
                    now,
                )?;
            }
            Creating::Abandoned
        }
        None => Creating::Unknown,
    })
}

/// Lists BitPay invoices from `since` to today and rebuilds records for ours that are missing.
pub fn discover(
    ctx: &Context,
    bitpay: &BitPayClient,
    splynx: &SplynxClient<'_>,
    order_key: &OrderKey,
    token: &str,
    since: chrono::NaiveDate,
    dry_run: bool,
) -> Result<usize> {
    let start = since.format("%Y-%m-%d").to_string();
    let end = clock::date_of(clock::now_ms() + 24 * 3600 * 1000);
    let mut found = 0;
    let page = 100;
    for offset in (0..).step_by(page) {
        let invoices = bitpay
            .list_invoices(token, &start, &end, page, offset)
            .context("listing BitPay invoices")?;
        let count = invoices.len();
        for invoice in invoices {
            // Only invoices this installation made (their order id's MAC verifies).
            if order_id::verify(&invoice.order_id, order_key).is_none()
                || ctx.store.invoice_by_bitpay_id(&invoice.id)?.is_some()
            {
                continue;
            }
            found += 1;
            if dry_run {
                log::info!(
                    "would adopt BitPay invoice {} ({})",
                    invoice.id,
                    invoice.order_id
                );
                continue;
            }
            let _ = crate::recovery::adopt_by_id(ctx, bitpay, splynx, order_key, &invoice.id)?;
        }
        if count < page {
            break;
        }
    }
    Ok(found)
}

/// Records BitPay's answer for a `creating` record, with a journal line naming the document.
pub fn record_created(
    store: &Store,
    record: &InvoiceRecord,
    invoice: &BitPayInvoice,
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

/// What BitPay's answer about an invoice id we do not hold made of it.
pub enum Adoption {
    /// Ours: the local record, rebuilt or recovered.
    Adopted(Box<InvoiceRecord>),
    /// Not ours, and why (recorded in the journal).
    NotOurs(String),
}

/// An invoice id we have no record of: if BitPay, asked with our own tokens, has it with our
/// orderId format, rebuild the lost record.
pub fn adopt_by_id(
    ctx: &Context,
    bitpay: &BitPayClient,
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
    let mut tokens = ctx.store.tokens(ctx.environment())?;
    tokens.retain(|t| t.approved);
    tokens.sort_by_key(|t| t.facade != "merchant");
    let mut found = None;
    for token in &tokens {
        match bitpay.invoice(id, token.token.expose()) {
            Ok(invoice) => {
                found = Some((invoice, token));
                break;
            }
            Err(e) if e.is_temporary() => {
                return Err(e).context(format!("fetching unknown BitPay invoice {id}"))
            }
            Err(e) => log::info!("BitPay invoice {id} with the {} token: {e}", token.facade),
        }
    }
    let Some((invoice, token)) = found else {
        return ignore("unknown invoice (BitPay does not know it for our tokens)");
    };
    ctx.store.journal(
        Some(id),
        "fetch",
        &format!(
            "unknown locally; BitPay says {} with orderId {:?}",
            invoice.status, invoice.order_id
        ),
        None,
        clock::now_ms(),
    )?;
    if let Some(existing) = ctx.store.invoice_by_guid(&invoice.guid)? {
        // Our own attempt whose answer never arrived.
        let how = "recovered by guid: our own create whose answer never arrived";
        ctx.store
            .mark_created(&existing.order.guid, &invoice, how, clock::now_ms())?;
        return match ctx.store.invoice_by_bitpay_id(id)? {
            Some(record) => Ok(Adoption::Adopted(Box::new(record))),
            None => ignore("recovered by guid, but the record vanished"),
        };
    }
    let Some(OrderRef {
        kind,
        doc_id,
        refill_customer,
    }) = order_id::verify(&invoice.order_id, order_key)
    else {
        return ignore(&format!(
            "orderId {:?} was not made by this installation (no valid MAC): another integration's invoice on the same BitPay account, or a forged one; never adopted",
            invoice.order_id
        ));
    };
    let Some(price) = invoice.price else {
        return ignore("BitPay's invoice has no price");
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
    let pos_data = pos_data::read(&invoice.pos_data, price);
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
        let settings = ctx.config.for_partner(partner_id)?;
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
            environment: ctx.environment().to_string(),
            facade: token.facade.clone(),
            token: token.token.clone(),
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
