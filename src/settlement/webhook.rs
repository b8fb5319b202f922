//! A webhook answered: the body is only a trigger. It is journaled (whole for invoices we
//! hold, bounded for strangers'), its signature checked and noted, an exact duplicate
//! seconds later answered from the last fetch, an unknown id asked about at BitPay once per
//! window (and adopted when it is ours), and everything else settled from a fresh fetch.

use anyhow::Result;

use super::{Outcome, Settler};
use crate::clock;
use crate::context::Context;
use crate::gateway::{self, Key, Need, NotConnected};
use crate::recovery::{self, Adoption};
use crate::server::{SignatureCheck, WebhookError, WebhookHeaders, WebhookNotice};
use crate::store::{InvoiceRecord, Settlement};

/// What answering one webhook came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAnswer {
    /// Nothing to do: not an invoice of ours, asked about recently, or a refund notice
    /// naming no invoice.
    Ignored {
        invoice: Option<String>,
        why: String,
    },
    /// An exact duplicate seconds after a fetch that left nothing to do.
    AlreadyChecked {
        invoice: String,
        settlement: Settlement,
        answer: String,
    },
    /// Fetched and settled.
    Settled { invoice: String, outcome: Outcome },
    /// A refund of ours, read again (and booked, if the money was paid out).
    Refund {
        invoice: String,
        refund: String,
        followed: String,
    },
}

/// An invoice id we do not hold is asked about at BitPay at most once in this window: a
/// stranger replaying ids costs one signed request per id, not one per POST.
const UNKNOWN_LOOKUP_WINDOW_MS: i64 = 10 * 60 * 1000;
/// A webhook that claims exactly what BitPay said this recently is answered from that.
const FRESH_FETCH_MS: i64 = 10 * 1000;
/// How much of a body we do not keep whole is journaled.
const JOURNALED_PREFIX_BYTES: usize = 1024;

/// Size, SHA-256 and the first KiB: enough to recognise a body, bounded whatever it is.
fn bounded_record(body: &[u8]) -> String {
    use sha2::Digest;
    let prefix = &body[..body.len().min(JOURNALED_PREFIX_BYTES)];
    format!(
        "{} bytes, sha256 {}; first {} bytes: {}",
        body.len(),
        hex::encode(sha2::Sha256::digest(body)),
        prefix.len(),
        String::from_utf8_lossy(prefix)
    )
}

/// The answer for a duplicate webhook that claims exactly what the server said seconds ago
/// (status and exception), when that left nothing to do (never while a credit is due or in
/// flight: that path keeps its exit codes and its re-checks).
fn fresh_answer(
    record: &InvoiceRecord,
    webhook: &WebhookNotice,
    server: &str,
    now: i64,
) -> Option<String> {
    let fetched_at = record.fetched_at?;
    let nothing_to_do = record.settlement.is_final()
        || (record.settlement == Settlement::Open && !record.status.is_confirmed());
    let same_claim = webhook.claimed.as_ref() == Some(&record.words);
    (nothing_to_do
        && same_claim
        && webhook.refund_id.is_none()
        && now - fetched_at < FRESH_FETCH_MS)
        .then(|| {
            format!(
                "{server} said {} {} s ago; {}",
                record.words.status,
                (now - fetched_at) / 1000,
                record.settlement.describe()
            )
        })
}

/// Answers one webhook body (at most `WEBHOOK_MAX_BYTES`) with its signature headers. A
/// body that is not a webhook, or (where the server signs with a secret of ours) one whose
/// signature is missing or forged, is journaled bounded and refused (bad input).
pub fn answer(ctx: &Context, body: &[u8], headers: &WebhookHeaders) -> Result<WebhookAnswer> {
    let now = clock::now_ms();
    let format = gateway::webhooks(ctx)?;
    let signature = format.signature(headers);
    // A body kept bounded in the journal, with what was done with it.
    let note = |what: &str| -> Result<()> {
        ctx.store
            .journal(None, "webhook", what, Some(&bounded_record(body)), now)?;
        Ok(())
    };
    if format.signature_required() {
        let refused = match format.check_signature(body, signature, None) {
            SignatureCheck::Valid => None,
            SignatureCheck::NotChecked => return Err(NotConnected(format.name()).into()),
            SignatureCheck::Absent => Some(WebhookError::Unsigned(format.name())),
            SignatureCheck::Invalid => Some(WebhookError::Forged(format.name())),
        };
        if let Some(e) = refused {
            note(&format!("rejected: {e}"))?;
            return Err(e.into());
        }
    }
    let webhook = match format.parse_webhook(body) {
        Ok(webhook) => webhook,
        Err(e @ WebhookError::RefundWithoutInvoice(_)) => {
            // Not bad input: the server would retry it for an hour and nothing would change.
            note(&format!("ignored: {e}"))?;
            return Ok(WebhookAnswer::Ignored {
                invoice: None,
                why: e.to_string(),
            });
        }
        Err(e) => {
            note(&format!("rejected: {e}"))?;
            return Err(e.into());
        }
    };
    let mut webhook = webhook;
    if webhook.invoice_id.is_empty() {
        // A notice about a refund alone (BTCPay's payouts): its invoice is the refund's.
        let refund = match &webhook.refund_id {
            Some(refund_id) => ctx.store.refund_by_server_id(refund_id)?,
            None => None,
        };
        let invoice = match refund {
            Some(refund) => ctx.store.invoice(refund.invoice_id)?,
            None => None,
        };
        match invoice.and_then(|i| i.bitpay_id) {
            Some(id) => webhook.invoice_id = id.to_string(),
            None => {
                let why = format!(
                    "{} of a refund this add-on did not ask for",
                    webhook.event.as_deref().unwrap_or("a notice")
                );
                note(&format!("ignored: {why}"))?;
                return Ok(WebhookAnswer::Ignored { invoice: None, why });
            }
        }
    }
    let id = webhook.invoice_id.clone();
    let record = ctx.store.invoice_by_bitpay_id(&id)?;
    let verdict = format.check_signature(body, signature, record.as_ref().map(|r| &r.order));
    let claimed = format!(
        "{}{}{}",
        webhook.event.as_deref().unwrap_or("legacy format"),
        webhook
            .refund_id
            .as_deref()
            .map(|r| format!(", refund {r}; re-checking the invoice"))
            .unwrap_or_default(),
        webhook
            .claimed
            .as_ref()
            .map(|s| format!(", claims {}", s.status))
            .unwrap_or_default()
    );
    // Whole bodies only for invoices we hold; a stranger's is kept bounded.
    let detail = match &record {
        Some(_) => String::from_utf8_lossy(body).into_owned(),
        None => bounded_record(body),
    };
    ctx.store.journal(
        Some(&id),
        "webhook",
        &format!("received ({claimed}); {}", verdict.describe()),
        Some(&detail),
        now,
    )?;
    if verdict == SignatureCheck::Invalid {
        log::warn!("webhook for {id}: the signature does not match the body");
    }
    let ignored = |why: String| {
        Ok(WebhookAnswer::Ignored {
            invoice: Some(id.clone()),
            why,
        })
    };
    match &record {
        Some(r) => {
            if let Some(answer) = fresh_answer(r, &webhook, format.name(), now) {
                return Ok(WebhookAnswer::AlreadyChecked {
                    invoice: id,
                    settlement: r.settlement,
                    answer,
                });
            }
        }
        None => {
            if let Some((at, answer)) = ctx
                .store
                .unknown_lookup(&id, now - UNKNOWN_LOOKUP_WINDOW_MS)?
            {
                return ignored(format!(
                    "asked {} at {}: {answer}",
                    format.name(),
                    clock::datetime_of(at)
                ));
            }
        }
    }

    let gateway = gateway::open(ctx, Need::Reading, Key::CreateIfMissing)?;
    let server = &*gateway.server;
    let splynx = ctx.splynx();
    // A refund of ours: the refund is what changed (the body is a trigger, never evidence).
    let ours = match &webhook.refund_id {
        Some(refund_id) => ctx.store.refund_by_server_id(refund_id)?,
        None => None,
    };
    if let Some(refund) = ours.filter(|r| Some(r.invoice_id) == record.as_ref().map(|i| i.id)) {
        let followed = crate::refund::follow(ctx, server, &splynx, &refund)?;
        return Ok(WebhookAnswer::Refund {
            invoice: id,
            refund: refund.name().to_string(),
            followed: followed.describe(),
        });
    }
    let record = match record {
        Some(record) => record,
        None => match recovery::adopt_by_id(ctx, server, &splynx, &gateway.order_key, &id)? {
            Adoption::Adopted(record) => *record,
            Adoption::NotOurs(reason) => {
                let now = clock::now_ms();
                ctx.store.remember_unknown_lookup(
                    &id,
                    &reason,
                    now,
                    now - UNKNOWN_LOOKUP_WINDOW_MS,
                )?;
                return ignored(format!("not an invoice of this add-on: {reason}"));
            }
        },
    };
    let settler = Settler::new(&ctx.config, &ctx.store, server, &splynx, false);
    let outcome = settler.settle(&record)?;
    Ok(WebhookAnswer::Settled {
        invoice: id,
        outcome,
    })
}
