//! `handle-ipn`: one BitPay webhook on stdin. The body is only a trigger: the invoice is
//! re-fetched, signed, and settled from what BitPay says now.

use std::io::Read;

use anyhow::{Context as _, Result};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::bitpay::model::{parse_webhook, WEBHOOK_MAX_BYTES};
use crate::bitpay::BitPayClient;
use crate::cli::HandleIpnArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::settlement::{self, parse_order_id, Settler};
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::{DocKind, InvoiceRecord, NewInvoice};

/// `base64(HMAC-SHA256(key = token, msg = raw body))`, compared in constant time.
pub fn signature_matches(body: &[u8], token: &str, header: &str) -> bool {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    expected.as_bytes().ct_eq(header.trim().as_bytes()).into()
}

pub fn run(args: HandleIpnArgs, ctx: &Context, stdin: &mut dyn Read) -> Result<u8> {
    let mut body = Vec::new();
    stdin
        .take(WEBHOOK_MAX_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .context("reading the webhook body from stdin")?;
    let now = clock::now_ms();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let webhook = match parse_webhook(&body) {
        Ok(webhook) => webhook,
        Err(e) => {
            ctx.store
                .journal(None, "webhook", &format!("rejected: {e}"), Some(&raw), now)?;
            return Err(Problem::BadInput(e.to_string()).into());
        }
    };
    let id = webhook.invoice_id.clone();
    let record = ctx.store.invoice_by_bitpay_id(&id)?;
    let verdict = match (&args.signature, &record) {
        (None, _) => "no signature header".to_string(),
        (Some(_), None) => "signature not checked (unknown invoice)".to_string(),
        (Some(sig), Some(r)) if signature_matches(&body, r.token.expose(), sig) => {
            "signature valid".to_string()
        }
        (Some(_), Some(_)) => {
            "SIGNATURE INVALID (decision still made from the fetched invoice)".to_string()
        }
    };
    let claimed = format!(
        "{}{}",
        webhook.event.as_deref().unwrap_or("legacy format"),
        webhook
            .claimed_status
            .as_deref()
            .map(|s| format!(", claims {s}"))
            .unwrap_or_default()
    );
    ctx.store.journal(
        Some(&id),
        "webhook",
        &format!("received ({claimed}); {verdict}"),
        Some(&raw),
        now,
    )?;
    if verdict.starts_with("SIGNATURE INVALID") {
        log::warn!("webhook for {id}: x-signature does not match the body");
    }

    let bitpay = ctx.bitpay(Some(ctx.identity()?));
    let splynx = ctx.splynx();
    let record = match record {
        Some(record) => record,
        None => match adopt_by_id(ctx, &bitpay, &splynx, &id)? {
            Some(record) => record,
            None => {
                ctx.output.emit(
                    &format!("{id}: ignored (not an invoice of this add-on)"),
                    &json!({"bitpay_invoice_id": id, "result": "ignored"}),
                );
                return Ok(SUCCESS);
            }
        },
    };
    let settler = Settler {
        config: &ctx.config,
        store: &ctx.store,
        bitpay: &bitpay,
        splynx: &splynx,
        dry_run: false,
    };
    let outcome = settler.settle(&record)?;
    let (human, json) = settlement::describe(&id, &outcome);
    ctx.output.emit(&human, &json);
    Ok(SUCCESS)
}

/// An invoice id we have no record of: if BitPay, asked with our own tokens, has it with our
/// orderId format, rebuild the lost record. `None` means "not ours" (recorded, ignored).
pub(crate) fn adopt_by_id(
    ctx: &Context,
    bitpay: &BitPayClient,
    splynx: &SplynxClient<'_>,
    id: &str,
) -> Result<Option<InvoiceRecord>> {
    let ignore = |reason: &str| -> Result<Option<InvoiceRecord>> {
        ctx.store.journal(
            Some(id),
            "decision",
            &format!("ignored: {reason}"),
            None,
            clock::now_ms(),
        )?;
        Ok(None)
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
            .mark_created(&existing.guid, &invoice, how, clock::now_ms())?;
        return Ok(ctx.store.invoice_by_bitpay_id(id)?);
    }
    let Some((kind, doc_id, refill_customer)) = parse_order_id(&invoice.order_id) else {
        return ignore(&format!("orderId {:?} is not ours", invoice.order_id));
    };
    if invoice.currency != ctx.config.bitpay.currency {
        return ignore(&format!(
            "currency {} is not the configured {}",
            invoice.currency, ctx.config.bitpay.currency
        ));
    }
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
    let pos_customer = serde_json::from_str::<serde_json::Value>(&invoice.pos_data)
        .ok()
        .and_then(|p| p.get("customer_id").and_then(|c| c.as_i64()));
    if pos_customer.is_some_and(|c| c != customer_id) {
        return ignore("posData names another customer than the document's");
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
        },
        &invoice,
        clock::now_ms(),
    )?;
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_hmac_vector() {
        // The official WooCommerce plugin's fixture: 1306 bytes, LF, no trailing newline.
        let body = include_str!("../../tests/data/bitpay_paid_ipn_webhook.json");
        assert_eq!(body.len(), 1306);
        assert!(signature_matches(
            body.as_bytes(),
            "my_secret_key",
            "G3AN1yIRVFPahcmKXK0qg9UksH9WlK3Llvvs7APZOzc="
        ));
        let with_newline = format!("{body}\n");
        assert!(signature_matches(
            with_newline.as_bytes(),
            "my_secret_key",
            "zH/aVTJ4mEzYuMlzNwsuNM6mnh/xfHgY9Hzizv5ENpY="
        ));
        assert!(!signature_matches(
            body.as_bytes(),
            "other_key",
            "G3AN1yIRVFPahcmKXK0qg9UksH9WlK3Llvvs7APZOzc="
        ));
        assert!(!signature_matches(body.as_bytes(), "my_secret_key", ""));
    }
}
