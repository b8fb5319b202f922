//! `status`: pairing, invoice counts, last webhook, oldest unsettled invoice.
//! Longer than a command's 150 lines because its result has a dozen sections (pairing,
//! pending codes, counts, held, bookings, recent payments and webhooks, store size), each
//! gathered from one store query and rendered for people here.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use crate::admin::{self, CallerView};
use crate::cli::StatusArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::output::View;
use crate::pairing::{self, TokenView};
use crate::store::JournalEntry;
use crate::view::InvoiceView;

/// How many recent webhooks and unsettled invoices `status` lists.
const WEBHOOKS_SHOWN: u32 = 10;
const UNSETTLED_SHOWN: u32 = 25;
const HELD_SHOWN: u32 = 25;
const PAIRING_CHANGES_SHOWN: u32 = 5;
const PAYMENTS_SHOWN: u32 = 10;
const REFUNDS_SHOWN: u32 = 25;

pub fn run(args: StatusArgs, ctx: &Context) -> Result<u8> {
    // At the admin page: who is looking, and whether they may see pending pairing codes.
    let caller = admin::identify(ctx, &args.admin)?;
    // The terminal sees everything; the admin page only with a sash of an allowed role.
    let shows_codes = match &caller {
        Some(caller) => caller.may_pair,
        None => !args.admin.from_page,
    };
    // BitPay's tokens of its environment, or what connecting to BTCPay stored.
    let env = ctx.config.invoice_environment();
    let identity = ctx.existing_identity()?;
    let sin = identity.as_ref().map(|i| i.sin());
    let mut tokens = ctx.store.tokens(env)?;
    let mut approval_check = None;
    if identity.is_some() && tokens.iter().any(|t| !t.approved) {
        let client = ctx.bitpay(identity);
        if let Err(e) = pairing::refresh_pending(ctx, &client, &mut tokens) {
            approval_check = Some(format!(
                "could not ask BitPay about pending approvals: {}",
                crate::errors::message(&e)
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
    let payments = ctx.store.recently_credited(PAYMENTS_SHOWN)?;
    let database_bytes: u64 = ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(ctx.config.data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let oldest_journal = ctx.store.oldest_journal_time()?;
    let last_prune = crate::retention::last_run(&ctx.store)?;
    let held_counts = ctx.store.held_counts()?;
    let (open_bookings, booking_note) = ctx.store.open_bookings()?;
    let approve_url = ctx.dashboard_tokens_url();
    let status = Status {
        environment: env.to_string(),
        api_url: match ctx.config.server {
            crate::config::ServerKind::BitPay => ctx.config.bitpay.api_url.clone(),
            crate::config::ServerKind::Btcpay => ctx.config.btcpay.url.clone(),
        },
        sin,
        paired: paired.iter().map(|f| f.to_string()).collect(),
        tokens: tokens.iter().map(TokenView::from).collect(),
        pending_approvals: pending
            .iter()
            .map(|t| PendingApproval {
                facade: t.facade.clone(),
                pairing_code: t.pairing_code.clone().filter(|_| shows_codes),
                approve_url: approve_url.clone(),
                pairing_expires_at: t.pairing_expires_at.map(clock::datetime_of),
            })
            .collect(),
        shows_codes,
        approval_check_error: approval_check,
        invoices: counts.into_iter().collect(),
        refunds: ctx.store.refund_counts()?.into_iter().collect(),
        last_webhook_at: last_webhook.map(clock::datetime_of),
        oldest_unsettled: oldest.as_ref().map(InvoiceView::from),
        unsettled: unsettled.iter().map(InvoiceView::from).collect(),
        needs_admin: NeedsAdmin {
            review: held_counts.review,
            reversed_after_credit: held_counts.reversed,
            duplicates: held_counts.duplicates,
            payment_outcome_unknown: held_counts.sent,
        },
        bookings_waiting: BookingsWaiting {
            count: open_bookings,
            oldest_note: booking_note,
        },
        administrator: caller
            .as_ref()
            .map(|c| CallerView::new(c, &ctx.config.pairing_roles)),
        pairing_refusal: caller.as_ref().filter(|c| !c.may_pair).map(|c| {
            admin::refusal(
                &ctx.config.pairing_roles,
                &c.admin,
                ctx.config.server.name(),
            )
        }),
        refund_refusal: caller
            .as_ref()
            .filter(|c| !c.may_refund)
            .map(|c| admin::refund_refusal(&ctx.config.refund_roles, &c.admin).to_string()),
        pairing_changes: pairing_changes.iter().map(Dated::from).collect(),
        database_bytes,
        oldest_journal_at: oldest_journal.map(clock::datetime_of),
        last_pruned_at: last_prune.map(clock::datetime_of),
        held: held.iter().map(InvoiceView::from).collect(),
        recent_webhooks: webhooks.iter().map(Dated::from).collect(),
        refundable: crate::refund::refundable_amounts(&ctx.store, &payments)?,
        recent_payments: payments.iter().map(InvoiceView::from).collect(),
        recent_refunds: crate::refund::recent_views(&ctx.store, REFUNDS_SHOWN)?,
        last_audit: crate::audit::render::AuditSummary::recorded(&ctx.store)?,
        health: crate::metrics::snapshot(ctx)?.health(),
    };
    ctx.output.show(&status);
    Ok(SUCCESS)
}

/// `status`'s result.
#[derive(Debug, Serialize)]
struct Status {
    environment: String,
    api_url: String,
    sin: Option<String>,
    paired: Vec<String>,
    tokens: Vec<TokenView>,
    pending_approvals: Vec<PendingApproval>,
    /// Whether the caller may see pending pairing codes.
    #[serde(skip)]
    shows_codes: bool,
    approval_check_error: Option<String>,
    /// How many invoices are in each settlement state.
    invoices: BTreeMap<String, i64>,
    /// How many refunds are in each state.
    refunds: BTreeMap<String, i64>,
    last_webhook_at: Option<String>,
    oldest_unsettled: Option<InvoiceView>,
    unsettled: Vec<InvoiceView>,
    needs_admin: NeedsAdmin,
    /// Payment statement records and fee transactions not booked yet (credits stand;
    /// reconcile retries).
    bookings_waiting: BookingsWaiting,
    administrator: Option<CallerView>,
    pairing_refusal: Option<String>,
    /// Why the administrator at the page may not refund, if they may not.
    refund_refusal: Option<String>,
    pairing_changes: Vec<Dated>,
    database_bytes: u64,
    oldest_journal_at: Option<String>,
    last_pruned_at: Option<String>,
    held: Vec<InvoiceView>,
    recent_webhooks: Vec<Dated>,
    /// Credited invoices, newest credit first (whatever happened to them since).
    recent_payments: Vec<InvoiceView>,
    /// What may still be refunded of each recent payment, by invoice id (none: nothing).
    refundable: BTreeMap<String, String>,
    /// The newest refunds, newest first.
    recent_refunds: Vec<crate::refund::RefundView>,
    /// What the last recorded audit found (`audit --record`).
    last_audit: Option<crate::audit::render::AuditSummary>,
    /// What `metrics` says, for pollers that read JSON (Zabbix).
    health: crate::metrics::Health,
}

#[derive(Debug, Serialize)]
struct PendingApproval {
    facade: String,
    /// `None` for administrators who may not pair.
    pairing_code: Option<String>,
    approve_url: String,
    pairing_expires_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct NeedsAdmin {
    review: i64,
    reversed_after_credit: i64,
    duplicates: i64,
    payment_outcome_unknown: i64,
}

#[derive(Debug, Serialize)]
struct BookingsWaiting {
    count: i64,
    oldest_note: Option<String>,
}

/// A journal line with its time (pairing changes, webhooks).
#[derive(Debug, Serialize)]
struct Dated {
    /// The journal entry's number (`replay --webhook N`).
    id: i64,
    at: String,
    bitpay_invoice_id: Option<String>,
    summary: String,
}

impl From<&JournalEntry> for Dated {
    fn from(entry: &JournalEntry) -> Dated {
        Dated {
            id: entry.id,
            at: clock::datetime_of(entry.at),
            bitpay_invoice_id: entry.bitpay_id.clone(),
            summary: entry.summary.clone(),
        }
    }
}

impl View for Status {
    fn human(&self) -> String {
        let mut human = vec![
            format!("Environment:       {} ({})", self.environment, self.api_url),
            format!(
                "Identity (SIN):    {}",
                self.sin
                    .as_deref()
                    .unwrap_or("none yet (created by `pair`)")
            ),
            format!(
                "Paired facades:    {}",
                if self.paired.is_empty() {
                    "none".to_string()
                } else {
                    self.paired.join(", ")
                }
            ),
        ];
        for t in &self.tokens {
            human.push(format!(
                "  {:<9} token {}{}",
                t.facade,
                t.token,
                if t.approved { "" } else { " (pending)" }
            ));
        }
        for p in &self.pending_approvals {
            human.push(format!(
                "Pending approval:  {} code {} — approve at {}{}",
                p.facade,
                match (&p.pairing_code, self.shows_codes) {
                    (_, false) => "(hidden)",
                    (code, true) => code.as_deref().unwrap_or("?"),
                },
                p.approve_url,
                p.pairing_expires_at
                    .as_deref()
                    .map(|e| format!(" before {e}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(note) = &self.approval_check_error {
            human.push(format!("Note:              {note}"));
        }
        let count_text: Vec<String> = self
            .invoices
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
        if !self.refunds.is_empty() {
            let refunds: Vec<String> = self
                .refunds
                .iter()
                .map(|(state, n)| format!("{state} {n}"))
                .collect();
            human.push(format!("Refunds:           {}", refunds.join(", ")));
        }
        human.push(format!(
            "Last webhook:      {}",
            self.last_webhook_at.as_deref().unwrap_or("never")
        ));
        if let Some(o) = &self.oldest_unsettled {
            human.push(format!("Oldest unsettled:  {}", o.line()));
        }
        human.push(format!(
            "State store:       {:.1} MiB, oldest journal entry {}, last pruned {}",
            self.database_bytes as f64 / 1024.0 / 1024.0,
            self.oldest_journal_at.as_deref().unwrap_or("none"),
            self.last_pruned_at.as_deref().unwrap_or("never")
        ));
        let held = &self.needs_admin;
        if held.review + held.reversed_after_credit + held.payment_outcome_unknown > 0 {
            human.push(format!(
                "Needs the admin:   reversed after credit {}, held for review {} (duplicate payments {}), payment outcome unknown {}",
                held.reversed_after_credit, held.review, held.duplicates, held.payment_outcome_unknown
            ));
            for o in &self.held {
                human.push(format!(
                    "  {}  {}  {}",
                    o.bitpay_invoice_id.as_deref().unwrap_or("-"),
                    o.settlement_text,
                    o.note.as_deref().unwrap_or("")
                ));
            }
        }
        if self.bookings_waiting.count > 0 {
            human.push(format!(
                "Not booked yet:    {} payment statement record(s) or fee transaction(s); {}",
                self.bookings_waiting.count,
                self.bookings_waiting
                    .oldest_note
                    .as_deref()
                    .unwrap_or("reconcile books them")
            ));
        }
        if !self.pairing_changes.is_empty() {
            human.push("Pairing changes:".into());
            for p in &self.pairing_changes {
                human.push(format!("  {}  {}", p.at, p.summary));
            }
        }
        if !self.recent_payments.is_empty() {
            human.push("Recent payments:".into());
            for p in self.recent_payments.iter().take(5) {
                human.push(format!(
                    "  {}  {}  {} {}  {} {}  Splynx payment {}",
                    p.credited_at.as_deref().unwrap_or("-"),
                    p.name(),
                    p.document,
                    p.document_number.as_deref().unwrap_or("-"),
                    p.price,
                    p.currency,
                    p.splynx_payment_id
                        .map_or_else(|| "-".to_string(), |id| id.to_string())
                ));
            }
        }
        if let Some(audit) = &self.last_audit {
            human.push(format!(
                "Last audit:        {} to {}: {} difference(s), run {}",
                audit.from,
                audit.to,
                audit.differences,
                clock::datetime_of(audit.at_ms)
            ));
        }
        if !self.recent_webhooks.is_empty() {
            human.push("Recent webhooks:".into());
            for w in self.recent_webhooks.iter().take(5) {
                human.push(format!(
                    "  {}  #{}  {}  {}",
                    w.at,
                    w.id,
                    w.bitpay_invoice_id.as_deref().unwrap_or("-"),
                    w.summary
                ));
            }
        }
        human.join("\n")
    }
}
