//! `replay`: "what would happen now" for one invoice. The decision is re-run from a fresh
//! fetch through the very `Settler` that `handle-ipn` and `reconcile` use: as a dry run
//! (nothing written, nothing sent), or with `--apply` for real, so an applied replay is
//! exactly once like any webhook. `steps` says in words what a decision leads to.

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::gateway::{self, Key, Need};
use crate::recovery::{self, Adoption};
use crate::server::PaymentServer;
use crate::settlement::{Decision, Settler};
use crate::store::{InvoiceRecord, Settlement};

/// What `replay` found and (with `--apply`) did.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub invoice_id: String,
    pub applied: bool,
    /// The stored webhook replayed, if one was named.
    pub webhook: Option<String>,
    /// What the server says now ("complete", "Settled (PaidLate)").
    pub server_says: Option<String>,
    pub settlement_before: Option<&'static str>,
    /// The decision's name (`Decision::label`), or "not ours" / "unknown".
    pub decision: String,
    pub steps: Vec<String>,
    /// What came of it (with `--apply`), or what would.
    pub outcome: String,
}

/// Replays invoice `id` (the server's id; checked by the caller with `is_invoice_id`).
pub fn invoice(ctx: &Context, id: &str, apply: bool, webhook: Option<String>) -> Result<Replayed> {
    let key = if apply {
        Key::CreateIfMissing
    } else {
        Key::MustExist
    };
    let gateway = gateway::open(ctx, Need::Reading, key)?;
    let server = &*gateway.server;
    let splynx = ctx.splynx();
    let mut replayed = Replayed {
        invoice_id: id.to_string(),
        applied: apply,
        webhook,
        server_says: None,
        settlement_before: None,
        decision: String::new(),
        steps: Vec::new(),
        outcome: String::new(),
    };
    let record = match ctx.store.invoice_by_bitpay_id(id)? {
        Some(record) => record,
        None if apply => {
            match recovery::adopt_by_id(ctx, server, &splynx, &gateway.order_key, id)? {
                Adoption::Adopted(record) => *record,
                Adoption::NotOurs(reason) => return Ok(not_ours(replayed, reason)),
            }
        }
        None => return unknown(server, &gateway.order_key, replayed),
    };
    replayed.settlement_before = Some(record.settlement.as_str());
    let settler = Settler::new(&ctx.config, &ctx.store, server, &splynx, !apply);
    let settled = settler.settle_explained(&record)?;
    replayed.server_says = Some(settled.fetched.words.to_string());
    replayed.decision = settled.decision.label().to_string();
    replayed.steps = steps(&record, &settled.decision, server.name());
    replayed.outcome = settled.outcome.label().to_string();
    Ok(replayed)
}

/// An id with no record here, without `--apply`: what the server says, and whether it is
/// ours (then `--apply` adopts it, as a webhook would).
fn unknown(
    server: &dyn PaymentServer,
    order_key: &crate::order_id::OrderKey,
    mut replayed: Replayed,
) -> Result<Replayed> {
    let Some((invoice, _)) = server.fetch_unknown(&replayed.invoice_id)? else {
        replayed.decision = "unknown".into();
        replayed.steps = vec![format!(
            "nothing: {} has no invoice {} for this add-on's credentials",
            server.name(),
            replayed.invoice_id
        )];
        replayed.outcome = "nothing to do".into();
        return Ok(replayed);
    };
    replayed.server_says = Some(invoice.words.to_string());
    if crate::order_id::verify(&invoice.order_id, order_key).is_none() {
        let reason = format!(
            "its order id {:?} was not written by this installation",
            invoice.order_id
        );
        return Ok(not_ours(replayed, reason));
    }
    replayed.decision = "adopt".into();
    replayed.steps = vec![
        "rebuild the lost local record from the invoice (its order id is ours)".into(),
        "then decide it like any webhook: run replay again with --apply".into(),
    ];
    replayed.outcome = "would be adopted".into();
    Ok(replayed)
}

fn not_ours(mut replayed: Replayed, reason: String) -> Replayed {
    replayed.decision = "not ours".into();
    replayed.steps = vec![format!("nothing: not an invoice of this add-on ({reason})")];
    replayed.outcome = "nothing to do".into();
    replayed
}

/// What `decision` leads to for `record`, in an admin's words.
pub fn steps(record: &InvoiceRecord, decision: &Decision, server: &str) -> Vec<String> {
    let id = record.bitpay_id.as_ref().map_or("?", |i| i.as_str());
    let order = &record.order;
    let interrupted = matches!(record.settlement, Settlement::Crediting | Settlement::Sent);
    match decision {
        Decision::Credit => {
            let mut steps = vec![format!(
                "look up Splynx payments with receipt number {id} for customer {}",
                order.customer_id
            )];
            if interrupted {
                steps.push(
                    "a payment was sent earlier with no answer: until the grace period ends, only look for it; after it, send it again".into(),
                );
            }
            steps.push(format!(
                "if there is none: create a Splynx payment of {} {} for customer {} ({}), dated today, receipt number {id}",
                crate::money::format_amount(order.price, &order.currency),
                order.currency,
                order.customer_id,
                order.document_label()
            ));
            steps.push(
                "if there is one: record it as the credit (nothing is sent); more than one: hold the invoice for the admin".into(),
            );
            steps.push("book its payment statement record (and the fee transaction, if any)".into());
            steps.push(format!(
                "watch it until {server} says it is final (a reversal is then held for the admin)"
            ));
            steps
        }
        Decision::Pending(why) => vec![format!("nothing yet: {why}")],
        Decision::Expired(why) => vec![format!("mark it expired, credit nothing: {why}")],
        Decision::AlreadyCredited { complete } => {
            let payment = record
                .splynx_payment_id
                .map_or("(unknown)".into(), |p| p.to_string());
            let mut steps = vec![format!(
                "nothing to credit: Splynx payment {payment} stands"
            )];
            if *complete && record.watch_until.is_some() {
                steps.push(format!(
                    "{server} says it is final: one last look for a second payment, then stop watching it"
                ));
            }
            steps.push("book what is still open after the credit (statement record, fee)".into());
            steps
        }
        Decision::Review(why) | Decision::PaidLate(why) => vec![
            format!("hold it for the admin, credit nothing: {why}"),
            "the admin decides on the admin page (Needs the admin) or with `splynx-bitpay resolve`".into(),
        ],
        Decision::Reversed(why) => vec![format!(
            "hold it for the admin as reversed after credit (the Splynx payment stays until the admin acts): {why}"
        )],
        Decision::Held(why) => vec![format!(
            "nothing: held for the admin earlier ({why}); resolve it on the admin page"
        )],
    }
}
