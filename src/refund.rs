//! Refunds from Splynx, exactly once (contract money rule 10). Longer than 500 lines because
//! the whole path of a refund (request, follow, book) shares one lock and one journal here.
//! A refund is recorded before
//! it is sent and sent once (an unknown outcome is looked up by its own key, never sent
//! again blindly); it is followed through webhooks and `reconcile`; once the server says
//! the money was paid out it is booked in Splynx as a negative payment, looked up by
//! receipt number first and marked sent before the POST, like a payment. A failed or
//! cancelled refund books nothing and is a finding for the admin.
//!
//! Every step on one invoice holds that invoice's lock (the one settlement takes), so a
//! webhook and `reconcile` never book the same refund twice.

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::domain::{check_refund, InvoiceRecord, RefundRecord, RefundRefusal, RefundState};
use crate::exit::{ExitCode, Failing};
use crate::gateway::{self, Key, Need};
use crate::money::format_amount;
use crate::server::{PaymentServer, RefundAsk, ServerRefund};
use crate::splynx::{NewPayment, SplynxClient, SplynxError};
use crate::store::{NewRefund, Store};
use crate::{clock, lock};

/// A request whose answer never came, not found at the server after this long: it never
/// reached it.
const ABANDON_SENDING_MS: i64 = 60 * 60 * 1000;

/// An amount or an invoice that may not be refunded: bad input.
impl Failing for RefundRefusal {
    fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}

/// Why a refund operation cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no invoice of this add-on is {0:?} (give the server's invoice id or the Splynx payment id)")]
    UnknownInvoice(String),
    #[error("no refund {0:?} was asked for from this add-on")]
    UnknownRefund(String),
    #[error("invoice {id} was made with {made_with}, but this add-on now uses {now}: switch [server] kind back to refund it")]
    OtherServer {
        id: String,
        made_with: &'static str,
        now: &'static str,
    },
    #[error("refund {0} can no longer be cancelled: it is {1}")]
    NotCancellable(String, &'static str),
    #[error(
        "{server} lists no refund of invoice {id} made outside this add-on: nothing to record"
    )]
    NothingElsewhere { server: &'static str, id: String },
    #[error("invoice {0} was never credited in Splynx: there is no payment to take a refund from")]
    NeverCredited(String),
    #[error("{server} refund {refund} is in {currency}, not the invoice's {invoice_currency}: record it in Splynx by hand")]
    OtherCurrency {
        server: &'static str,
        refund: String,
        currency: String,
        invoice_currency: String,
    },
    #[error("a {server} refund is cancelled in {server} itself: archive pull payment {id} on its Pull Payments page; reconcile then records it cancelled")]
    CancelledAtServer { server: &'static str, id: String },
    #[error("the refund request for {id} was sent to {server} but no answer came ({cause}): it is looked up by its key (`reconcile` does it), never sent again")]
    OutcomeUnknown {
        id: String,
        server: &'static str,
        cause: String,
    },
}

impl Failing for RefundError {
    fn exit_code(&self) -> ExitCode {
        match self {
            RefundError::OutcomeUnknown { .. } => ExitCode::Temporary,
            RefundError::OtherServer { .. } => ExitCode::Config,
            _ => ExitCode::BadInput,
        }
    }
}

/// A refund as `refund`, `show` and the admin page show it.
#[derive(Debug, Clone, Serialize)]
pub struct RefundView {
    /// The server's refund id, or our key until it answered.
    pub id: String,
    pub invoice_id: String,
    pub server: &'static str,
    pub amount: String,
    pub currency: String,
    pub state: RefundState,
    pub state_text: &'static str,
    pub server_status: Option<String>,
    pub claim_link: Option<String>,
    pub reason: Option<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub splynx_payment_id: Option<i64>,
    pub note: Option<String>,
}

impl RefundView {
    pub fn of(refund: &RefundRecord, invoice: &InvoiceRecord) -> RefundView {
        RefundView {
            id: refund.name().to_string(),
            invoice_id: invoice
                .bitpay_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            server: invoice.order.server_name(),
            amount: format_amount(refund.amount, &refund.currency),
            currency: refund.currency.clone(),
            state: refund.state,
            state_text: refund.state.describe(),
            server_status: refund.server_status.clone(),
            claim_link: refund.claim_link.clone(),
            reason: refund.reason.clone(),
            requested_by: refund.requested_by.clone(),
            requested_at: clock::datetime_of(refund.requested_at),
            splynx_payment_id: refund.splynx_payment_id,
            note: refund.note.clone(),
        }
    }
}

/// The invoice `id` names: the server's invoice id, or the Splynx payment id of its credit.
fn find_invoice(store: &Store, id: &str) -> Result<InvoiceRecord> {
    if let Some(record) = store.invoice_by_bitpay_id(id)? {
        return Ok(record);
    }
    if let Ok(payment) = id.parse::<i64>() {
        if let Some(record) = store.invoice_by_splynx_payment(payment)? {
            return Ok(record);
        }
    }
    Err(RefundError::UnknownInvoice(id.chars().take(80).collect()).into())
}

/// The invoice's lock, as settlement takes it.
fn lock_invoice(ctx: &Context, server_id: &str) -> Result<lock::Lock> {
    let config = &ctx.config;
    let wait = config.bitpay.timeout + config.splynx.timeout * 3 + Duration::from_secs(5);
    Ok(lock::acquire(
        &config.data_dir,
        &lock::bucket_name("invoice", server_id),
        "this invoice's settlement",
        wait,
    )?)
}

/// Asks the server for a refund of invoice `id`: `amount` (everything still refundable
/// when `None`), recorded first, sent once.
pub fn request(
    ctx: &Context,
    id: &str,
    amount: Option<&str>,
    reason: Option<&str>,
    requested_by: &str,
) -> Result<RefundView> {
    let record = find_invoice(&ctx.store, id)?;
    let server_id = record.bitpay_id.clone().context("the invoice has no id")?;
    let made_with = record.order.server();
    if made_with != ctx.config.server {
        return Err(RefundError::OtherServer {
            id: server_id.to_string(),
            made_with: made_with.name(),
            now: ctx.config.server.name(),
        }
        .into());
    }
    let gateway = gateway::open(ctx, Need::Reading, Key::MustExist)?;
    let server = &*gateway.server;
    let guid = uuid::Uuid::new_v4().to_string();
    let _lock = lock_invoice(ctx, &server_id)?;
    let record = ctx
        .store
        .invoice(record.id)?
        .context("stored invoice vanished")?;
    let fetched = server
        .fetch(&server_id, &record.order)
        .with_context(|| format!("fetching {} invoice {server_id}", server.name()))?;
    let refunds = ctx.store.refunds_for(record.id)?;
    // The server's refunds of the invoice: one made in its dashboard means this invoice is
    // refunded from there (recorded with `refund --record`). Asking needs the refund
    // credentials (BitPay's merchant facade), so nothing is recorded without them.
    let at_server = server
        .refunds_of(&server_id)
        .with_context(|| format!("asking {} for a refund", server.name()))?;
    let elsewhere =
        crate::domain::made_elsewhere(&at_server, &refunds, |r| (r.id.as_str(), r.key.as_deref()));
    let refunded_elsewhere = elsewhere.iter().any(|r| r.state.holds_amount())
        || (fetched.refunded && refunds.iter().all(|r| r.state == RefundState::Failed));
    let amount = check_refund(
        &record,
        fetched.status,
        &fetched.words.to_string(),
        refunded_elsewhere,
        &refunds,
        amount,
    )?;
    let ask = RefundAsk {
        invoice_id: &server_id,
        order: &record.order,
        amount,
        currency: &record.order.currency,
        key: &guid,
        reason,
    };
    let now = clock::now_ms();
    let stored = {
        let tx = ctx.store.begin()?;
        let stored = ctx.store.insert_refund(
            &NewRefund {
                invoice_id: record.id,
                guid: &guid,
                amount,
                currency: &record.order.currency,
                reason,
                requested_by,
            },
            now,
        )?;
        ctx.store.journal(
            Some(&server_id),
            "refund",
            &format!(
                "refund of {} {} asked for by {requested_by}{}: sending (key {guid})",
                format_amount(amount, &record.order.currency),
                record.order.currency,
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            None,
            now,
        )?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        ctx.store.make_durable()?;
        stored
    };
    match server.request_refund(&ask) {
        Ok(answer) => record_answer(&ctx.store, &record, &stored, &answer, "created")?,
        Err(e) if e.is_temporary() => {
            // The request may have reached the server: look for it, never send it again.
            let found = server.find_refund(&ask).ok().flatten();
            match found {
                Some(answer) => record_answer(
                    &ctx.store,
                    &record,
                    &stored,
                    &answer,
                    "found by its key after an unanswered request",
                )?,
                None => {
                    ctx.store.journal(
                        Some(&server_id),
                        "refund",
                        &format!("no answer ({e}); looked up by its key later, never sent again"),
                        None,
                        clock::now_ms(),
                    )?;
                    return Err(RefundError::OutcomeUnknown {
                        id: server_id.to_string(),
                        server: server.name(),
                        cause: e.to_string(),
                    }
                    .into());
                }
            }
        }
        Err(e) => {
            // Refused: nothing was made; the amount is free again.
            let note = format!("{} refused it: {e}", server.name());
            ctx.store.update_refund(
                stored.id,
                None,
                "refused",
                RefundState::Failed,
                None,
                clock::now_ms(),
            )?;
            ctx.store
                .set_refund_note(stored.id, &note, clock::now_ms())?;
            ctx.store
                .journal(Some(&server_id), "refund", &note, None, clock::now_ms())?;
            return Err(e).context(format!("asking {} for a refund", server.name()));
        }
    }
    let stored = ctx
        .store
        .refund(stored.id)?
        .context("stored refund vanished")?;
    Ok(RefundView::of(&stored, &record))
}

/// Keeps the server's word on stored refund `id`: its id, words, state and claim link.
fn store_answer(store: &Store, id: i64, answer: &ServerRefund, now: i64) -> Result<()> {
    store.update_refund(
        id,
        Some(&answer.id),
        &answer.words,
        answer.state,
        answer.claim_link.as_deref(),
        now,
    )?;
    Ok(())
}

/// Records what the server said of a refund, and journals a change of state.
fn record_answer(
    store: &Store,
    record: &InvoiceRecord,
    refund: &RefundRecord,
    answer: &ServerRefund,
    how: &str,
) -> Result<()> {
    let now = clock::now_ms();
    let changed = refund.state != answer.state || refund.server_id.as_deref() != Some(&answer.id);
    store_answer(store, refund.id, answer, now)?;
    if changed {
        store.journal(
            record.bitpay_id.as_deref(),
            "refund",
            &format!(
                "refund {} {how}: {} says {} ({})",
                answer.id,
                record.order.server_name(),
                answer.words,
                answer.state.describe()
            ),
            None,
            now,
        )?;
    }
    if changed && matches!(answer.state, RefundState::Failed | RefundState::Cancelled) {
        store.record_refund_finding(
            record.bitpay_id.as_deref().unwrap_or_default(),
            &format!(
                "refund {} of {} {} {}: nothing is booked in Splynx",
                answer.id,
                format_amount(refund.amount, &refund.currency),
                refund.currency,
                answer.state.describe()
            ),
            now,
        )?;
    }
    Ok(())
}

/// Cancels refund `id` (the server's refund id) while the server allows it.
pub fn cancel(ctx: &Context, id: &str, who: &str) -> Result<RefundView> {
    let refund = ctx
        .store
        .refund_by_server_id(id)?
        .ok_or_else(|| RefundError::UnknownRefund(id.chars().take(80).collect()))?;
    let record = ctx
        .store
        .invoice(refund.invoice_id)?
        .context("the refund's invoice vanished")?;
    if !matches!(refund.state, RefundState::Requested | RefundState::Pending) {
        return Err(RefundError::NotCancellable(id.to_string(), refund.state.describe()).into());
    }
    let gateway = gateway::open(ctx, Need::Reading, Key::MustExist)?;
    let server = &*gateway.server;
    if !server.capabilities().cancels_refunds {
        return Err(RefundError::CancelledAtServer {
            server: server.name(),
            id: id.to_string(),
        }
        .into());
    }
    let server_id = record.bitpay_id.clone().context("the invoice has no id")?;
    let _lock = lock_invoice(ctx, &server_id)?;
    let answer = server
        .cancel_refund(id)
        .with_context(|| format!("cancelling refund {id} at {}", server.name()))?;
    ctx.store.journal(
        Some(&server_id),
        "refund",
        &format!("refund {id}: cancelled by {who}"),
        None,
        clock::now_ms(),
    )?;
    record_answer(&ctx.store, &record, &refund, &answer, "cancelled")?;
    let refund = ctx
        .store
        .refund(refund.id)?
        .context("stored refund vanished")?;
    Ok(RefundView::of(&refund, &record))
}

/// Records the refunds of invoice `id` the server made outside this add-on (its
/// dashboard), after the admin confirmed it: each becomes a refund of ours, named by the
/// server's refund id, followed and booked in Splynx once paid out, exactly like ours.
/// Never done automatically.
pub fn record_elsewhere(ctx: &Context, id: &str, who: &str) -> Result<Vec<RefundView>> {
    let record = find_invoice(&ctx.store, id)?;
    let server_id = record.bitpay_id.clone().context("the invoice has no id")?;
    if record.order.server() != ctx.config.server {
        return Err(RefundError::OtherServer {
            id: server_id.to_string(),
            made_with: record.order.server().name(),
            now: ctx.config.server.name(),
        }
        .into());
    }
    if record.splynx_payment_id.is_none() {
        return Err(RefundError::NeverCredited(server_id.to_string()).into());
    }
    let gateway = gateway::open(ctx, Need::Reading, Key::MustExist)?;
    let server = &*gateway.server;
    let recorded = {
        let _lock = lock_invoice(ctx, &server_id)?;
        let at_server = server
            .refunds_of(&server_id)
            .with_context(|| format!("reading {}'s refunds of {server_id}", server.name()))?;
        let ours = ctx.store.refunds_for(record.id)?;
        let elsewhere: Vec<&ServerRefund> =
            crate::domain::made_elsewhere(&at_server, &ours, |r| (r.id.as_str(), r.key.as_deref()))
                .into_iter()
                .filter(|r| r.state.holds_amount())
                .collect();
        if elsewhere.is_empty() {
            return Err(RefundError::NothingElsewhere {
                server: server.name(),
                id: server_id.to_string(),
            }
            .into());
        }
        if let Some(other) = elsewhere
            .iter()
            .find(|r| !r.currency.eq_ignore_ascii_case(&record.order.currency))
        {
            return Err(RefundError::OtherCurrency {
                server: server.name(),
                refund: other.id.clone(),
                currency: other.currency.clone(),
                invoice_currency: record.order.currency.clone(),
            }
            .into());
        }
        let requested_by = format!("the {} dashboard; recorded by {who}", server.name());
        let reason = format!("refunded in the {} dashboard", server.name());
        let now = clock::now_ms();
        let tx = ctx.store.begin()?;
        let mut recorded = Vec::new();
        for refund in elsewhere {
            let stored = ctx.store.insert_refund(
                &NewRefund {
                    invoice_id: record.id,
                    guid: &format!("{}-{}", server.name(), refund.id),
                    amount: refund.amount.unwrap_or_default(),
                    currency: &record.order.currency,
                    reason: Some(&reason),
                    requested_by: &requested_by,
                },
                now,
            )?;
            store_answer(&ctx.store, stored.id, refund, now)?;
            ctx.store.journal(
                Some(&server_id),
                "refund",
                &format!(
                    "refund {} of {} {} made in the {} dashboard recorded by {who}: {} ({})",
                    refund.id,
                    format_amount(stored.amount, &stored.currency),
                    stored.currency,
                    server.name(),
                    refund.words,
                    refund.state.describe()
                ),
                None,
                now,
            )?;
            recorded.push(stored.id);
        }
        tx.commit().map_err(crate::store::StoreError::from)?;
        ctx.store.make_durable()?;
        recorded
    };
    // Booked now when it was paid out already; otherwise webhooks and reconcile do it.
    let splynx = ctx.splynx();
    let mut views = Vec::new();
    for refund_id in recorded {
        let refund = ctx
            .store
            .refund(refund_id)?
            .context("stored refund vanished")?;
        if let Err(e) = follow(ctx, server, &splynx, &refund) {
            log::warn!("refund {}: {e:#}; reconcile books it", refund.name());
        }
        let refund = ctx
            .store
            .refund(refund_id)?
            .context("stored refund vanished")?;
        views.push(RefundView::of(&refund, &record));
    }
    Ok(views)
}

/// What following one refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Nothing new (still with the server, or already booked).
    Unchanged,
    /// Booked now as this negative payment (found in Splynx, or made).
    Booked(i64),
    /// Failed or cancelled now (a finding).
    Ended(RefundState),
    /// Given up: the request never reached the server.
    Abandoned,
}

impl Followed {
    /// For the webhook's answer: "re-read, nothing new", "booked as Splynx payment 7".
    pub fn describe(&self) -> String {
        match self {
            Followed::Unchanged => "re-read: nothing new to book".into(),
            Followed::Booked(id) => format!("paid out: booked as Splynx payment {id}"),
            Followed::Ended(state) => format!("{}: nothing booked", state.describe()),
            Followed::Abandoned => "never reached the server: nothing booked".into(),
        }
    }
}

/// Reads a refund again and does what its state asks: records it, and books it once the
/// money was paid out. Takes the invoice's lock.
pub fn follow(
    ctx: &Context,
    server: &dyn PaymentServer,
    splynx: &SplynxClient<'_>,
    refund: &RefundRecord,
) -> Result<Followed> {
    let record = ctx
        .store
        .invoice(refund.invoice_id)?
        .context("the refund's invoice vanished")?;
    let server_id = record.bitpay_id.clone().context("the invoice has no id")?;
    let _lock = lock_invoice(ctx, &server_id)?;
    let refund = ctx
        .store
        .refund(refund.id)?
        .context("stored refund vanished")?;
    let before = refund.state;
    if refund.state.is_open() {
        let answer = match &refund.server_id {
            Some(id) => Some(server.fetch_refund(id)?),
            None => {
                let ask = RefundAsk {
                    invoice_id: &server_id,
                    order: &record.order,
                    amount: refund.amount,
                    currency: &refund.currency,
                    key: &refund.guid,
                    reason: refund.reason.as_deref(),
                };
                server.find_refund(&ask)?
            }
        };
        match answer {
            Some(answer) => record_answer(&ctx.store, &record, &refund, &answer, "re-read")?,
            None if clock::now_ms() - refund.requested_at > ABANDON_SENDING_MS => {
                let note = format!(
                    "the request never reached {}: nothing was refunded",
                    server.name()
                );
                let now = clock::now_ms();
                ctx.store.update_refund(
                    refund.id,
                    None,
                    "never created",
                    RefundState::Failed,
                    None,
                    now,
                )?;
                ctx.store.set_refund_note(refund.id, &note, now)?;
                ctx.store
                    .journal(Some(&server_id), "refund", &note, None, now)?;
                ctx.store.record_refund_finding(
                    &server_id,
                    &format!("refund request {}: {note}", refund.guid),
                    now,
                )?;
                return Ok(Followed::Abandoned);
            }
            None => return Ok(Followed::Unchanged),
        }
    }
    let refund = ctx
        .store
        .refund(refund.id)?
        .context("stored refund vanished")?;
    if refund.needs_booking() {
        return book(ctx, splynx, &record, &refund).map(Followed::Booked);
    }
    Ok(match refund.state {
        state if state != before && !state.holds_amount() => Followed::Ended(state),
        _ => Followed::Unchanged,
    })
}

/// The refund as a negative payment in Splynx, exactly once: looked up by receipt number
/// (the refund's id) first; the POST is recorded as sent before it goes out, and while its
/// outcome is unknown it is only looked up, for the grace period, like a payment.
fn book(
    ctx: &Context,
    splynx: &SplynxClient<'_>,
    record: &InvoiceRecord,
    refund: &RefundRecord,
) -> Result<i64> {
    let receipt = refund
        .server_id
        .clone()
        .context("a paid-out refund has an id")?;
    let server_id = record.bitpay_id.clone().context("the invoice has no id")?;
    let customer = record.order.customer_id;
    let mut found: Vec<i64> = splynx
        .payments_by_receipt(&receipt, customer)
        .with_context(|| format!("looking up the Splynx booking of refund {receipt}"))?
        .into_iter()
        .filter(|p| p.receipt_number == receipt && p.customer_id == customer)
        .map(|p| p.id)
        .collect();
    found.sort_unstable();
    found.dedup();
    let now = clock::now_ms();
    if let Some(first) = found.first().copied() {
        let tx = ctx.store.begin()?;
        ctx.store.mark_refund_booked(refund.id, first, now)?;
        ctx.store.journal(
            Some(&server_id),
            "refund",
            &format!("refund {receipt}: negative payment {first} found in Splynx"),
            None,
            now,
        )?;
        if found.len() > 1 {
            ctx.store.record_refund_finding(
                &server_id,
                &format!(
                    "{} Splynx payments carry receipt number {receipt} (payments {}): the refund is booked more than once; keep one",
                    found.len(),
                    found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
                now,
            )?;
        }
        tx.commit().map_err(crate::store::StoreError::from)?;
        return Ok(first);
    }
    if let Some(sent_at) = refund.booking_sent_at {
        let until = sent_at + ctx.config.splynx.payment_grace.as_millis() as i64;
        if now < until {
            anyhow::bail!(RefundError::OutcomeUnknown {
                id: receipt,
                server: "Splynx",
                cause: format!(
                    "the negative payment sent at {} has not appeared yet; looked up until {}",
                    clock::datetime_of(sent_at),
                    clock::datetime_of(until)
                ),
            });
        }
    }
    let terms = record.order.terms_or(&ctx.config)?;
    let payment = NewPayment {
        customer_id: customer,
        // Not allocated to the document: it was paid, and stays paid; the refund lowers
        // the customer's balance (the admin re-opens the document if that is meant).
        invoice_id: None,
        request_id: None,
        payment_type: terms.payment_method_id,
        receipt_number: receipt.clone(),
        date: clock::local_date(),
        amount: format_amount(-refund.amount, &refund.currency),
        comment: format!(
            "Refund {receipt} of {} invoice {server_id}{}",
            record.order.server_name(),
            record
                .splynx_payment_id
                .map(|p| format!(" (Splynx payment {p})"))
                .unwrap_or_default()
        ),
        field_1: server_id.to_string(),
        field_2: record
            .splynx_payment_id
            .map(|p| p.to_string())
            .unwrap_or_default(),
        field_3: refund.reason.clone().unwrap_or_default(),
    };
    {
        let tx = ctx.store.begin()?;
        ctx.store.mark_refund_booking_sent(refund.id, Some(now))?;
        ctx.store.journal(
            Some(&server_id),
            "splynx",
            &format!("POST admin/finance/payments (refund {receipt}): sending"),
            Some(&serde_json::to_string(&payment).unwrap_or_default()),
            now,
        )?;
        tx.commit().map_err(crate::store::StoreError::from)?;
    }
    match splynx.create_payment(&payment) {
        Ok(payment_id) => {
            let now = clock::now_ms();
            let tx = ctx.store.begin()?;
            ctx.store.mark_refund_booked(refund.id, payment_id, now)?;
            ctx.store.journal(
                Some(&server_id),
                "refund",
                &format!(
                    "refund {receipt} booked in Splynx as negative payment {payment_id} ({} {})",
                    format_amount(-refund.amount, &refund.currency),
                    refund.currency
                ),
                None,
                now,
            )?;
            tx.commit().map_err(crate::store::StoreError::from)?;
            Ok(payment_id)
        }
        Err(e) if e.outcome_unknown() => Err(RefundError::OutcomeUnknown {
            id: receipt,
            server: "Splynx",
            cause: e.to_string(),
        }
        .into()),
        Err(e) => {
            // Provably not applied: the next run looks it up and sends it again.
            ctx.store.mark_refund_booking_sent(refund.id, None)?;
            if let SplynxError::Validation { message, .. } = &e {
                ctx.store.set_refund_note(
                    refund.id,
                    &format!("Splynx refused the negative payment: {message}"),
                    clock::now_ms(),
                )?;
            }
            Err(e).context(format!("booking refund {receipt} in Splynx"))
        }
    }
}

/// Every refund of `record`, for `show`.
pub fn views_for(store: &Store, record: &InvoiceRecord) -> Result<Vec<RefundView>> {
    Ok(store
        .refunds_for(record.id)?
        .iter()
        .map(|r| RefundView::of(r, record))
        .collect())
}

/// The `limit` newest refunds, newest first, for `status` and the admin page.
pub fn recent_views(store: &Store, limit: u32) -> Result<Vec<RefundView>> {
    let mut views = Vec::new();
    for refund in store.recent_refunds(limit)? {
        if let Some(record) = store.invoice(refund.invoice_id)? {
            views.push(RefundView::of(&refund, &record));
        }
    }
    Ok(views)
}

/// What may still be refunded of each credited record in `records` (by the server's
/// invoice id, in the currency's decimals): the admin page's prefilled amounts. The
/// server's word is checked again when a refund is asked for.
pub fn refundable_amounts(
    store: &Store,
    records: &[InvoiceRecord],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut amounts = std::collections::BTreeMap::new();
    for record in records {
        let Some(id) = record.bitpay_id.as_ref() else {
            continue;
        };
        // What the rules refuse before asking the server: not credited, or a BitPay
        // direct-link invoice (no e-mail to ask the payer for an address).
        let direct_at_bitpay = record.order.server() == crate::config::ServerKind::BitPay
            && record.order.origin() == crate::domain::Origin::DirectLink;
        if record.settlement != crate::domain::Settlement::Credited || direct_at_bitpay {
            continue;
        }
        let (left, _) = crate::domain::refundable_left(record, &store.refunds_for(record.id)?);
        if left > rust_decimal::Decimal::ZERO {
            amounts.insert(id.to_string(), format_amount(left, &record.order.currency));
        }
    }
    Ok(amounts)
}
