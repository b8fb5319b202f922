//! `status`: pairing, invoice counts, last webhook, oldest unsettled invoice.

use anyhow::Result;
use serde_json::json;

use crate::admin;
use crate::cli::StatusArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::pairing;
use crate::store::InvoiceRecord;

/// How many recent webhooks and unsettled invoices `status` lists.
const WEBHOOKS_SHOWN: u32 = 10;
const UNSETTLED_SHOWN: u32 = 25;
const HELD_SHOWN: u32 = 25;
const PAIRING_CHANGES_SHOWN: u32 = 5;

fn invoice_json(o: &InvoiceRecord) -> serde_json::Value {
    json!({
        "bitpay_invoice_id": o.bitpay_id,
        "document": o.doc_kind.as_str(),
        "document_number": o.doc_number,
        "customer_id": o.customer_id,
        "price": crate::money::format_amount(o.price, &o.currency),
        "currency": o.currency,
        "bitpay_status": o.bitpay_status,
        "settlement": o.settlement.as_str(),
        "settlement_text": o.settlement.describe(),
        "note": o.note,
        "splynx_payment_id": o.splynx_payment_id,
        "duplicate_payment_ids": o.duplicate_payment_ids,
        "created_at": clock::datetime_of(o.created_at),
    })
}

pub fn run(args: StatusArgs, ctx: &Context) -> Result<u8> {
    // At the admin page: who is looking, and whether they may see pending pairing codes.
    let caller = admin::identify(ctx, &args.admin)?;
    let shows_codes = caller.as_ref().is_none_or(|c| c.may_pair);
    let env = ctx.environment();
    let identity = ctx.existing_identity()?;
    let sin = identity.as_ref().map(|i| i.sin());
    let mut tokens = ctx.store.tokens(env)?;
    let mut approval_check = None;
    if identity.is_some() && tokens.iter().any(|t| !t.approved) {
        let client = ctx.bitpay(identity);
        if let Err(e) = pairing::refresh_pending(ctx, &client, &mut tokens) {
            approval_check = Some(format!(
                "could not ask BitPay about pending approvals: {e:#}"
            ));
        }
    }
    let paired: Vec<&str> = tokens
        .iter()
        .filter(|t| t.approved)
        .map(|t| t.facade.as_str())
        .collect();
    let pending: Vec<_> = tokens.iter().filter(|t| !t.approved).collect();
    let counts = ctx.store.settlement_counts()?;
    let last_webhook = ctx.store.last_webhook_time()?;
    let unsettled = ctx.store.oldest_unsettled(UNSETTLED_SHOWN)?;
    let oldest = unsettled.first().cloned();
    let webhooks = ctx.store.recent_journal("webhook", WEBHOOKS_SHOWN)?;
    let pairing_changes = ctx.store.recent_journal("pairing", PAIRING_CHANGES_SHOWN)?;
    let held = ctx.store.held_invoices(HELD_SHOWN)?;
    let database_bytes: u64 = ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(ctx.config.data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let oldest_journal = ctx.store.oldest_journal_time()?;
    let last_prune = crate::retention::last_run(&ctx.store)?;
    let held_counts = ctx.store.held_counts()?;
    let needs_admin = json!({
        "review": held_counts.review,
        "reversed_after_credit": held_counts.reversed,
        "duplicates": held_counts.duplicates,
        "payment_outcome_unknown": held_counts.sent,
    });

    let mut human = vec![
        format!("Environment:       {env} ({})", ctx.config.bitpay.api_url),
        format!(
            "Identity (SIN):    {}",
            sin.as_deref().unwrap_or("none yet (created by `pair`)")
        ),
        format!(
            "Paired facades:    {}",
            if paired.is_empty() {
                "none".to_string()
            } else {
                paired.join(", ")
            }
        ),
    ];
    for t in &tokens {
        human.push(format!(
            "  {:<9} token {}{}",
            t.facade,
            t.token.masked(),
            if t.approved { "" } else { " (pending)" }
        ));
    }
    for t in &pending {
        human.push(format!(
            "Pending approval:  {} code {} — approve at {}{}",
            t.facade,
            if shows_codes {
                t.pairing_code.as_deref().unwrap_or("?")
            } else {
                "(hidden)"
            },
            ctx.dashboard_tokens_url(),
            t.pairing_expires_at
                .map(|e| format!(" before {}", clock::datetime_of(e)))
                .unwrap_or_default()
        ));
    }
    if let Some(note) = &approval_check {
        human.push(format!("Note:              {note}"));
    }
    let count_text: Vec<String> = counts
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    human.push(format!(
        "Invoices:          {}",
        if count_text.is_empty() {
            "none yet".into()
        } else {
            count_text.join(", ")
        }
    ));
    human.push(format!(
        "Last webhook:      {}",
        last_webhook
            .map(clock::datetime_of)
            .unwrap_or_else(|| "never".into())
    ));
    if let Some(o) = &oldest {
        human.push(format!(
            "Oldest unsettled:  {} ({} {}, {} {}, since {})",
            o.bitpay_id.as_deref().unwrap_or("(being created)"),
            o.doc_kind.as_str(),
            o.doc_number.as_deref().unwrap_or("-"),
            crate::money::format_amount(o.price, &o.currency),
            o.currency,
            clock::datetime_of(o.created_at)
        ));
    }
    human.push(format!(
        "State store:       {:.1} MiB, oldest journal entry {}, last pruned {}",
        database_bytes as f64 / 1024.0 / 1024.0,
        oldest_journal
            .map(clock::datetime_of)
            .unwrap_or_else(|| "none".into()),
        last_prune
            .map(clock::datetime_of)
            .unwrap_or_else(|| "never".into())
    ));
    if held_counts.any() {
        human.push(format!(
            "Needs the admin:   reversed after credit {}, held for review {} (duplicate payments {}), payment outcome unknown {}",
            held_counts.reversed,
            held_counts.review,
            held_counts.duplicates,
            held_counts.sent
        ));
        for o in &held {
            human.push(format!(
                "  {}  {}  {}",
                o.bitpay_id.as_deref().unwrap_or("-"),
                o.settlement.describe(),
                o.note.as_deref().unwrap_or("")
            ));
        }
    }
    if !pairing_changes.is_empty() {
        human.push("Pairing changes:".into());
        for p in &pairing_changes {
            human.push(format!("  {}  {}", clock::datetime_of(p.at), p.summary));
        }
    }
    if !webhooks.is_empty() {
        human.push("Recent webhooks:".into());
        for w in webhooks.iter().take(5) {
            human.push(format!(
                "  {}  {}  {}",
                clock::datetime_of(w.at),
                w.bitpay_id.as_deref().unwrap_or("-"),
                w.summary
            ));
        }
    }

    let json = json!({
        "environment": env,
        "api_url": ctx.config.bitpay.api_url,
        "sin": sin,
        "paired": paired,
        "tokens": tokens.iter().map(pairing::describe).collect::<Vec<_>>(),
        "pending_approvals": pending.iter().map(|t| json!({
            "facade": t.facade,
            "pairing_code": if shows_codes { t.pairing_code.clone() } else { None },
            "approve_url": ctx.dashboard_tokens_url(),
            "pairing_expires_at": t.pairing_expires_at,
        })).collect::<Vec<_>>(),
        "approval_check_error": approval_check,
        "invoices": counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "last_webhook_at": last_webhook.map(clock::datetime_of),
        "oldest_unsettled": oldest.as_ref().map(invoice_json),
        "unsettled": unsettled.iter().map(invoice_json).collect::<Vec<_>>(),
        "needs_admin": needs_admin,
        "administrator": caller.as_ref().map(|c| c.json(&ctx.config.pairing_roles)),
        "pairing_refusal": caller
            .as_ref()
            .filter(|c| !c.may_pair)
            .map(|c| admin::refusal(&ctx.config.pairing_roles, &c.admin)),
        "pairing_changes": pairing_changes.iter().map(|p| json!({
            "at": clock::datetime_of(p.at),
            "summary": p.summary,
        })).collect::<Vec<_>>(),
        "database_bytes": database_bytes,
        "oldest_journal_at": oldest_journal.map(clock::datetime_of),
        "last_pruned_at": last_prune.map(clock::datetime_of),
        "held": held.iter().map(invoice_json).collect::<Vec<_>>(),
        "recent_webhooks": webhooks.iter().map(|w| json!({
            "at": clock::datetime_of(w.at),
            "bitpay_invoice_id": w.bitpay_id,
            "summary": w.summary,
        })).collect::<Vec<_>>(),
    });
    ctx.output.emit(&human.join("\n"), &json);
    Ok(SUCCESS)
}
