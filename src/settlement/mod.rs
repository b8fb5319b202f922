//! Settlement, shared by `handle-ipn` and `reconcile`: one pure decision over plain data, and
//! one executor that credits Splynx exactly once.
//!
//! Exactly once rests on three rules. Splynx is looked up by receipt number before any
//! payment is made. A payment POST is recorded as sent before it goes out; when its outcome
//! is unknown (no reply, a dropped connection, a 5xx) later runs only look it up until
//! `splynx.payment_grace_seconds` has passed, and only then send it again. More than one
//! payment with our receipt number is never hidden: the record is held with every id.
//! Credited invoices are watched until BitPay says `complete`, so a reversal after the
//! credit (invalid, declined, refunded) is held for the admin too.
//!
//! Here: the decision (`decision`), and the executor's BitPay side (fetch, record, decide,
//! watch). The Splynx side, where a payment is made exactly once, is `payment`; what is
//! booked after the credit (the payment statement record), exactly once too, `booking`.

use std::time::Duration;

use anyhow::{Context as _, Result};

mod booking;
mod changes;
mod decision;
mod payment;
pub mod sweep;
pub mod webhook;

pub use booking::{statement_title, Booked};
pub use decision::{decide, Decision, Stored};

use crate::config::Config;
use crate::config::{CreditOn, StatementGrouping};
use crate::domain::InvoiceId;
use crate::money::format_amount;
use crate::server::{InvoiceStatus, PaymentServer, ServerInvoice};
use crate::splynx::{NewPayment, PaymentUnsettled as Waiting, SplynxClient, SplynxError};
use crate::store::{HoldKind, InvoiceRecord, Settlement, SettlementTerms, Store};
use crate::{clock, lock};

/// How long a credited invoice is re-checked at most, waiting for BitPay's `complete`
/// (BitPay completes within hours; a week keeps the watched set small).
pub const WATCH_MS: i64 = 7 * 24 * 3600 * 1000;

/// What settling one invoice did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Credited {
        payment_id: i64,
        adopted: bool,
    },
    AlreadyCredited,
    Pending,
    Expired,
    /// Held for the admin now (review, duplicates, paid late).
    Review(String),
    /// Taken back by BitPay after the credit; held for the admin now.
    Reversed(String),
    /// Held earlier; nothing done.
    Held(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Credited { .. } => "credited",
            Outcome::AlreadyCredited => "already credited",
            Outcome::Pending => "pending",
            Outcome::Expired => "expired",
            Outcome::Review(_) => "needs review",
            Outcome::Reversed(_) => "reversed after credit",
            Outcome::Held(_) => "held for the admin",
        }
    }
}

/// One invoice settled: what the server said, what was decided, and what came of it.
#[derive(Debug, Clone)]
pub struct Settled {
    pub fetched: ServerInvoice,
    pub decision: Decision,
    pub outcome: Outcome,
}

/// What Splynx holds for one BitPay invoice's receipt number.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Nothing,
    One(i64),
    Several(Vec<i64>),
}

/// Settles stored invoices against the payment server and Splynx.
pub struct Settler<'a> {
    config: &'a Config,
    store: &'a Store,
    server: &'a dyn PaymentServer,
    splynx: &'a SplynxClient<'a>,
    /// Decide and report, change nothing.
    dry_run: bool,
}

/// One invoice being settled: the stored record, the server's id for it, and what the
/// server said about it just now.
struct Check<'a> {
    record: &'a InvoiceRecord,
    id: &'a InvoiceId,
    fetched: &'a ServerInvoice,
}

impl<'a> Settler<'a> {
    pub fn new(
        config: &'a Config,
        store: &'a Store,
        server: &'a dyn PaymentServer,
        splynx: &'a SplynxClient<'a>,
        dry_run: bool,
    ) -> Settler<'a> {
        Settler {
            config,
            store,
            server,
            splynx,
            dry_run,
        }
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
}

impl Settler<'_> {
    fn journal(
        &self,
        bitpay_id: &str,
        kind: &str,
        summary: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        if !self.dry_run {
            self.store
                .journal(Some(bitpay_id), kind, summary, detail, clock::now_ms())?;
        }
        Ok(())
    }

    /// Fetches the invoice (signed, with the token that created it) and settles it, under
    /// the invoice's lock.
    pub fn settle(&self, record: &InvoiceRecord) -> Result<Outcome> {
        self.settle_explained(record).map(|settled| settled.outcome)
    }

    /// `settle`, saying what the server said and what was decided (`replay`).
    pub fn settle_explained(&self, record: &InvoiceRecord) -> Result<Settled> {
        let bitpay_id = record
            .bitpay_id
            .clone()
            .context("invoice has no BitPay id yet")?;
        // An invoice is settled by the server that made it: after the admin switched
        // servers, the other one's open invoices are left for them (and reported).
        let made_with = record.order.server();
        if made_with != self.config.server {
            anyhow::bail!(
                "invoice {bitpay_id} was made with {}, but this add-on now uses {}: switch [server] kind back until it is settled, or settle it by hand",
                made_with.as_str(),
                self.config.server.as_str()
            );
        }
        let _lock = self.lock_invoice(&bitpay_id)?;
        // Another process may have settled it while we waited.
        let record = self
            .store
            .invoice(record.id)?
            .context("stored invoice vanished")?;
        let settled = self.settle_locked(&record, &bitpay_id)?;
        if matches!(
            settled.outcome,
            Outcome::Credited { .. } | Outcome::AlreadyCredited
        ) {
            // The payment stands whatever happens here: what is not booked now waits for
            // reconcile.
            if let Err(e) = self.book(record.id) {
                log::warn!("{bitpay_id}: booking after the credit failed: {e:#}");
            }
        }
        Ok(settled)
    }

    /// What settlement needs for `record`: the terms its checkout stored. A record from
    /// before terms were stored gets today's settings of the customer's partner.
    fn terms(&self, record: &InvoiceRecord) -> Result<SettlementTerms> {
        Ok(record.order.terms_or(self.config)?)
    }

    fn credit_on(&self, record: &InvoiceRecord) -> CreditOn {
        record
            .order
            .terms
            .as_ref()
            .map_or(self.config.bitpay.credit_on, |t| t.credit_on)
    }

    fn statements(&self, record: &InvoiceRecord) -> StatementGrouping {
        record
            .order
            .terms
            .as_ref()
            .map_or(self.config.statements, |t| t.statements)
    }

    /// The invoice's lock: one process at a time settles it or books after its credit.
    fn lock_invoice(&self, bitpay_id: &str) -> Result<lock::Lock> {
        let wait =
            self.config.bitpay.timeout + self.config.splynx.timeout * 3 + Duration::from_secs(5);
        Ok(lock::acquire(
            &self.config.data_dir,
            &lock::bucket_name("invoice", bitpay_id),
            "this invoice's settlement",
            wait,
        )?)
    }

    fn settle_locked(&self, record: &InvoiceRecord, bitpay_id: &InvoiceId) -> Result<Settled> {
        let mut fetched = self.fetch(record, bitpay_id)?;
        // A refund this add-on asked for is a refund, not a reversal.
        if fetched.refunded
            && self
                .store
                .refunds_for(record.id)?
                .iter()
                .any(|r| r.state != crate::domain::RefundState::Failed)
        {
            fetched.refunded = false;
        }
        let decision = decide(
            &Stored {
                settlement: record.settlement,
                order_id: &record.order.order_id,
                price: record.order.price,
                currency: &record.order.currency,
            },
            &fetched,
            self.server.name(),
            self.credit_on(record),
        );
        let check = Check {
            record,
            id: bitpay_id,
            fetched: &fetched,
        };
        let outcome = if matches!(record.settlement, Settlement::Crediting | Settlement::Sent) {
            self.finish_interrupted(&check, decision.clone())?
        } else {
            self.record_check(&check, &decision)?;
            self.apply(&check, decision.clone())?
        };
        Ok(Settled {
            fetched,
            decision,
            outcome,
        })
    }

    fn fetch(&self, record: &InvoiceRecord, bitpay_id: &str) -> Result<ServerInvoice> {
        self.server.fetch(bitpay_id, &record.order).or_else(|e| {
            self.journal(bitpay_id, "fetch", &format!("fetch failed: {e}"), None)?;
            Err(e).context(format!(
                "fetching {} invoice {bitpay_id}",
                self.server.name()
            ))
        })
    }

    /// One transaction for what this check learned and decided: few, short writes keep
    /// many concurrent webhooks and reconcile workers from queueing on the database. A
    /// watched credit, or an open invoice, that the server still reports unchanged is not
    /// journaled again.
    fn record_check(&self, check: &Check<'_>, decision: &Decision) -> Result<()> {
        let Check {
            record,
            id,
            fetched,
        } = check;
        let unchanged = fetched.words == record.words;
        if self.dry_run || (unchanged && *decision == Decision::AlreadyCredited { complete: false })
        {
            return Ok(());
        }
        let now = clock::now_ms();
        // An open invoice the server still reports as it did at the last check: the journal
        // already says so; only when it was asked is noted (a sweep of 10,000 open invoices
        // would otherwise add 20,000 lines that say nothing new).
        if unchanged && record.fetched_at.is_some() && matches!(decision, Decision::Pending(_)) {
            self.store.update_status(record.id, fetched, now)?;
            return Ok(());
        }
        let fetch_summary = format!(
            "{} says {}, price {} {}{}",
            self.server.name(),
            fetched.words,
            fetched.price.map_or("?".into(), |p| p.to_string()),
            fetched.currency,
            if fetched.refunded {
                ", refund listed"
            } else {
                ""
            }
        );
        let tx = self.store.begin()?;
        self.store
            .journal(Some(id), "fetch", &fetch_summary, None, now)?;
        self.store.update_status(record.id, fetched, now)?;
        self.store
            .journal(Some(id), "decision", &decision.summary(), None, now)?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(())
    }

    /// Carries a decision out (in a dry run: only says what it would be).
    fn apply(&self, check: &Check<'_>, decision: Decision) -> Result<Outcome> {
        let Check {
            record,
            id: bitpay_id,
            ..
        } = *check;
        let now = clock::now_ms();
        let outcome = match decision {
            Decision::Credit if self.dry_run => Outcome::Credited {
                payment_id: 0,
                adopted: false,
            },
            Decision::Credit => return self.credit(check),
            Decision::Pending(_) => Outcome::Pending,
            Decision::Expired(note) => {
                if !self.dry_run && record.settlement != Settlement::Expired {
                    self.store
                        .set_settlement(record.id, Settlement::Expired, Some(&note), now)?;
                }
                Outcome::Expired
            }
            Decision::Review(note) => {
                self.hold(record, HoldKind::Review, &note, &[])?;
                Outcome::Review(note)
            }
            Decision::PaidLate(note) => {
                self.hold(record, HoldKind::PaidLate, &note, &[])?;
                Outcome::Review(note)
            }
            Decision::Reversed(reason) => {
                let note = format!(
                    "{reason}. Splynx payment {} stays until you act: check the invoice at {}, delete or keep the payment in Splynx, then mark it resolved on the admin page (Config → Integrations → Bitpay) or with `splynx-bitpay resolve {bitpay_id}`",
                    record
                        .splynx_payment_id
                        .map_or("(unknown)".into(), |p| p.to_string()),
                    self.server.name()
                );
                self.hold(record, HoldKind::Reversed, &note, &[])?;
                Outcome::Reversed(note)
            }
            Decision::AlreadyCredited { complete: true } if record.watch_until.is_some() => {
                return self.end_watch(record, bitpay_id)
            }
            Decision::AlreadyCredited { .. } => Outcome::AlreadyCredited,
            Decision::Held(note) => Outcome::Held(note),
        };
        Ok(outcome)
    }

    /// BitPay says complete: one last look in Splynx (a payment sent again after the grace
    /// period, or one added by hand, shows up now), then the watch ends.
    fn end_watch(&self, record: &InvoiceRecord, bitpay_id: &str) -> Result<Outcome> {
        let now = clock::now_ms();
        let grace_ends = record.payment_sent_at.map_or(0, |at| {
            at + self.config.splynx.payment_grace.as_millis() as i64
        });
        if record.payment_attempts > 1 && now < grace_ends {
            // Sent more than once: the earlier POST may still commit. Look again later.
            return Ok(Outcome::AlreadyCredited);
        }
        match self.look_up_payments(record, bitpay_id)? {
            Found::Several(ids) => self.hold_duplicates(record, bitpay_id, &ids),
            _ => {
                if !self.dry_run {
                    self.store.end_watch(record.id, now)?;
                }
                Ok(Outcome::AlreadyCredited)
            }
        }
    }
}

/// "12, 13": payment ids for people.
pub fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
