//! `reconcile`'s sweep. Longer than 500 lines because it gathers every kind of follow-up a
//! run does into one report: every unsettled invoice (and every credit BitPay may still take
//! back) re-checked by a pool of workers under one request rate, what earlier credits left
//! to book, the findings that newly need the admin, and retention. Decisions are the same
//! as a webhook's (`Settler`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::changes::{self, Selection};
use super::{Outcome, Settler};
use crate::context::Context;
use crate::domain::InvoiceId;
use crate::errors;
use crate::exit::ExitCode;
use crate::gateway::{self, Gateway, Key, Need};
use crate::recovery::{self, Creating};
use crate::refund::Followed;
use crate::server::PaymentServer;
use crate::splynx::SplynxClient;
use crate::store::{Finding, InvoiceRecord, Pruned, Settlement, Store};
use crate::{clock, lock, retention};

/// How a sweep runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepOptions {
    /// Decide and report; change nothing (no lock, key or file either).
    pub dry_run: bool,
    /// Also search BitPay's list of invoices from this day (needs a merchant token).
    pub since: Option<chrono::NaiveDate>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub checked: usize,
    pub credited: usize,
    pub pending: usize,
    pub expired: usize,
    #[serde(rename = "needs_review")]
    pub review: usize,
    pub reversed: usize,
    pub watched: usize,
    pub errors: usize,
    #[serde(skip)]
    temporary_errors: usize,
    /// Failures because the server refused our credentials (the metrics say so).
    #[serde(skip)]
    pub credentials_refused: usize,
    pub discovered: usize,
    /// Refunds read again (open at the server, or paid out and not booked yet).
    pub refunds_followed: usize,
    /// Refunds booked in Splynx as negative payments by this run.
    pub refunds_booked: usize,
    /// Refunds that failed or were cancelled (findings).
    pub refunds_ended: usize,
    /// Records the server's listing showed as last seen, with nothing to do, so not
    /// fetched (BTCPay).
    pub listed_unchanged: usize,
    /// Payment statement records and fee transactions still not booked (each is listed
    /// with why).
    pub bookings_waiting: usize,
}

impl Summary {
    /// Counts one record's failure (the sweep goes on; the worst decides the exit code)
    /// and says what it was.
    fn failed(&mut self, e: &anyhow::Error) -> String {
        self.errors += 1;
        match errors::failure_of(e) {
            ExitCode::Temporary => self.temporary_errors += 1,
            ExitCode::Config => self.credentials_refused += 1,
            _ => {}
        }
        errors::message(e)
    }
}

/// Spaces BitPay requests to at most `per_second` across all workers.
struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    fn new(per_second: u32) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("rate limit lock");
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        let now = Instant::now();
        if slot > now {
            thread::sleep(slot - now);
        }
    }
}

/// Something held for the admin, reported once.
#[derive(Debug, Clone, Serialize)]
pub struct FindingView {
    pub at: String,
    pub bitpay_invoice_id: Option<InvoiceId>,
    pub kind: String,
    pub summary: String,
}

impl From<&Finding> for FindingView {
    fn from(finding: &Finding) -> FindingView {
        FindingView {
            at: clock::datetime_of(finding.at),
            bitpay_invoice_id: finding.bitpay_id.clone().map(InvoiceId::from),
            kind: finding.kind.clone(),
            summary: finding.summary.clone(),
        }
    }
}

/// Re-checks and settles everything not final, books what waits, reports what is new.
pub fn sweep(ctx: &Context, options: &SweepOptions) -> Result<SweepReport> {
    let dry_run = options.dry_run;
    // A dry run only reads: it takes no lock and creates no key (nor the directory).
    let _only_one = if dry_run {
        None
    } else {
        Some(lock::acquire(
            &ctx.config.data_dir,
            "reconcile",
            "reconcile (another run is in progress)",
            Duration::ZERO,
        )?)
    };
    let started = clock::now_ms();
    let key = if dry_run {
        Key::MustExist
    } else {
        Key::CreateIfMissing
    };
    let Gateway { server, order_key } = gateway::open(ctx, Need::Invoices, key)?;
    let server = &*server;
    let mut summary = Summary::default();

    if let Some(since) = options.since {
        let since_ms = since
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();
        summary.discovered =
            recovery::discover(ctx, server, &ctx.splynx(), &order_key, since_ms, dry_run)?;
    }

    // Unsettled invoices, then credited ones the server may still take back.
    let mut records = to_check(&ctx.store)?;
    let mut unchanged = Vec::new();
    let mut discovering = options.since.is_some();
    if server.capabilities().lists_changes {
        match list_changes(ctx, server, &order_key, records, started, dry_run) {
            Ok(Listed {
                selection,
                discovered,
            }) => {
                summary.discovered += discovered;
                discovering = true;
                records = selection.fetch;
                unchanged = selection.unchanged;
            }
            Err(e) => {
                log::warn!(
                    "listing {} invoices failed, so every record is fetched: {e:#}",
                    server.name()
                );
                records = to_check(&ctx.store)?;
            }
        }
    }
    let total = records.len();
    let progress = options
        .progress
        .then(|| progress_bar(total as u64))
        .flatten();
    let limiter = RateLimit::new(ctx.config.reconcile.requests_per_second);
    let queue = Mutex::new(records.into_iter());
    let results = Mutex::new(Vec::new());
    let workers = ctx.config.reconcile.concurrency.min(total);
    let failures = AtomicUsize::new(0);
    let config = &ctx.config;
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let store = match Store::open(&config.data_dir) {
                    Ok(store) => store,
                    Err(e) => {
                        log::error!("reconcile worker cannot open the state store: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let splynx = SplynxClient::new(&config.splynx, &store);
                let settler = Settler::new(config, &store, server, &splynx, dry_run);
                loop {
                    let Some(record) = queue.lock().expect("queue lock").next() else {
                        break;
                    };
                    limiter.wait();
                    let result = check_one(&settler, &store, server, &record);
                    if let Some(bar) = &progress {
                        bar.inc(1);
                    }
                    results.lock().expect("results lock").push((record, result));
                }
            });
        }
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let mut items = Vec::new();
    let unchanged = unchanged.into_iter().map(|record| {
        summary.listed_unchanged += 1;
        let outcome = if record.settlement == Settlement::Credited {
            Outcome::AlreadyCredited
        } else {
            Outcome::Pending
        };
        (record, Ok(outcome))
    });
    let mut checked: Vec<_> = results.into_inner().expect("results lock");
    checked.extend(unchanged);
    for (record, result) in checked {
        summary.checked += 1;
        let name = record.bitpay_id.as_ref().map_or_else(
            || format!("guid {}", record.order.guid),
            ToString::to_string,
        );
        let (label, detail) = match result {
            Ok(Outcome::AlreadyCredited) if record.settlement == Settlement::Credited => {
                summary.watched += 1;
                ("still watched", String::new())
            }
            Ok(Outcome::Credited { .. }) | Ok(Outcome::AlreadyCredited) => {
                summary.credited += 1;
                ("credited", String::new())
            }
            Ok(Outcome::Reversed(note)) => {
                summary.reversed += 1;
                ("reversed after credit", note)
            }
            Ok(Outcome::Held(note)) => ("held for the admin", note),
            Ok(Outcome::Pending) => {
                summary.pending += 1;
                ("pending", String::new())
            }
            Ok(Outcome::Expired) => {
                summary.expired += 1;
                ("expired", String::new())
            }
            Ok(Outcome::Review(note)) => {
                summary.review += 1;
                ("needs review", note)
            }
            Err(e) => ("error", summary.failed(&e)),
        };
        items.push(Checked {
            bitpay_invoice_id: record.bitpay_id,
            result: label,
            detail,
            name,
        });
    }
    summary.errors += failures.into_inner();
    if !dry_run {
        book_open(ctx, server, started, &mut summary, &mut items)?;
        follow_refunds(ctx, server, &mut summary, &mut items)?;
    }
    let findings = if dry_run {
        Vec::new()
    } else {
        let problems: Vec<String> = ctx
            .config
            .every_problem()
            .into_iter()
            .map(|p| format!("{} (checkout is refused until it is fixed)", p.message))
            .collect();
        ctx.store
            .record_config_problems(&problems, clock::now_ms())?;
        new_findings(&ctx.store)?
    };
    let days = ctx.config.journal_retention_days;
    let pruned = if dry_run {
        None
    } else {
        retention::prune_if_due(&ctx.store, days, clock::now_ms())?
    };
    if let Some(p) = &pruned {
        log::info!("{}", retention::describe(p, days, false));
    }
    let needs_admin = if dry_run {
        summary.review + summary.reversed > 0
    } else {
        !findings.is_empty()
    };
    let exit_code = if needs_admin || summary.errors > summary.temporary_errors {
        ExitCode::Failure
    } else if summary.errors + summary.bookings_waiting > 0 {
        ExitCode::Temporary
    } else {
        ExitCode::Success
    };
    Ok(SweepReport {
        dry_run,
        summary,
        discovering: discovering.then(|| server.name()),
        pruned,
        needs_admin: findings.iter().map(FindingView::from).collect(),
        invoices: items,
        exit_code,
    })
}

/// What a sweep did, and so what `reconcile` answers (it knows its exit code: something
/// newly needs the admin, or a record failed for good: failure; only temporary trouble or
/// bookings still waiting: temporary).
#[derive(Debug, Serialize)]
pub struct SweepReport {
    pub dry_run: bool,
    #[serde(flatten)]
    pub summary: Summary,
    /// The server whose list was searched (`--since`, or BTCPay's listing), if any.
    #[serde(skip)]
    pub discovering: Option<&'static str>,
    pub pruned: Option<Pruned>,
    pub needs_admin: Vec<FindingView>,
    pub invoices: Vec<Checked>,
    #[serde(skip)]
    pub exit_code: ExitCode,
}

/// What became of one invoice.
#[derive(Debug, Serialize)]
pub struct Checked {
    pub bitpay_invoice_id: Option<InvoiceId>,
    pub result: &'static str,
    pub detail: String,
    /// The BitPay id, or the guid of one still being created.
    #[serde(skip)]
    pub name: String,
}

/// Books what earlier credits left open (a payment statement record or fee transaction
/// Splynx was down for, or refused). Bookings deferred during this run (`next_try_at` after `started`) wait for
/// the next one.
fn book_open(
    ctx: &Context,
    server: &dyn PaymentServer,
    started: i64,
    summary: &mut Summary,
    items: &mut Vec<Checked>,
) -> Result<()> {
    let splynx = ctx.splynx();
    let settler = Settler::new(&ctx.config, &ctx.store, server, &splynx, false);
    for record in ctx.store.invoices_with_open_bookings(started)? {
        let name = record
            .bitpay_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        // One record's failure is counted like the settle loop's, never ends the sweep.
        let booked = match settler.book_open(&record) {
            Ok(booked) => booked,
            Err(e) => {
                let e = e.context(format!("booking after the credit of BitPay invoice {name}"));
                let detail = summary.failed(&e);
                log::error!("{detail}");
                items.push(Checked {
                    bitpay_invoice_id: record.bitpay_id.clone(),
                    result: "error",
                    detail,
                    name,
                });
                continue;
            }
        };
        summary.bookings_waiting += booked.waiting.len();
        let done = booked.done.into_iter().map(|note| ("booked", note));
        let waiting = booked
            .waiting
            .into_iter()
            .map(|note| ("booking waiting", note));
        for (result, detail) in done.chain(waiting) {
            items.push(Checked {
                bitpay_invoice_id: record.bitpay_id.clone(),
                result,
                detail,
                name: name.clone(),
            });
        }
    }
    Ok(())
}

/// Reads every refund the server may still change, and books what was paid out.
fn follow_refunds(
    ctx: &Context,
    server: &dyn PaymentServer,
    summary: &mut Summary,
    items: &mut Vec<Checked>,
) -> Result<()> {
    let splynx = ctx.splynx();
    for refund in ctx.store.refunds_to_follow()? {
        summary.refunds_followed += 1;
        let (result, detail) = match crate::refund::follow(ctx, server, &splynx, &refund) {
            Ok(Followed::Unchanged) => continue,
            Ok(followed @ Followed::Booked(_)) => {
                summary.refunds_booked += 1;
                ("refund booked", followed.describe())
            }
            Ok(followed) => {
                summary.refunds_ended += 1;
                ("refund ended", followed.describe())
            }
            Err(e) => (
                "error",
                summary.failed(&e.context(format!("refund {}", refund.name()))),
            ),
        };
        items.push(Checked {
            bitpay_invoice_id: None,
            result,
            detail,
            name: format!("refund {}", refund.name()),
        });
    }
    Ok(())
}

/// Findings no run has reported yet, marked as reported now.
fn new_findings(store: &Store) -> Result<Vec<Finding>> {
    let findings = store.unreported_findings()?;
    store.mark_findings_reported(&findings, clock::now_ms())?;
    Ok(findings)
}

/// Every record a sweep checks: unsettled ones, then credited ones still watched.
fn to_check(store: &Store) -> Result<Vec<InvoiceRecord>> {
    let mut records = store.unsettled_invoices()?;
    records.extend(store.watched_invoices(clock::now_ms())?);
    Ok(records)
}

/// What one listing of the server's recent invoices told.
struct Listed {
    selection: Selection,
    discovered: usize,
}

/// Lists the server's invoices since the oldest record to check (or the last listing),
/// adopts ours that have no record, and splits the records by what the listing shows.
fn list_changes(
    ctx: &Context,
    server: &dyn PaymentServer,
    order_key: &crate::order_id::OrderKey,
    records: Vec<InvoiceRecord>,
    started: i64,
    dry_run: bool,
) -> Result<Listed> {
    let last = ctx
        .store
        .meta(LAST_LISTED)?
        .and_then(|text| text.parse().ok());
    let since = changes::window_start(&records, last, started);
    let listed = server.list_created(since, clock::now_ms() + clock::DAY_MS)?;
    log::info!(
        "{} listed {} invoices created since {}",
        server.name(),
        listed.len(),
        clock::datetime_of(since)
    );
    let discovered =
        recovery::adopt_missing(ctx, server, &ctx.splynx(), order_key, &listed, dry_run)?;
    // Adopted records are decided like every other.
    let records = if discovered > 0 && !dry_run {
        to_check(&ctx.store)?
    } else {
        records
    };
    if !dry_run {
        ctx.store.set_meta(LAST_LISTED, &started.to_string())?;
    }
    Ok(Listed {
        selection: changes::select(records, &listed),
        discovered,
    })
}

/// When `reconcile` last listed the server's invoices (Unix milliseconds).
const LAST_LISTED: &str = "reconcile.last_listed";

fn check_one(
    settler: &Settler<'_>,
    store: &Store,
    server: &dyn PaymentServer,
    record: &InvoiceRecord,
) -> Result<Outcome> {
    if record.settlement != Settlement::Creating {
        return settler.settle(record);
    }
    // A create whose answer never arrived: the server knows it, or it never existed.
    match recovery::finish_creating(store, server, record, settler.dry_run())? {
        Creating::Found if settler.dry_run() => Ok(Outcome::Pending),
        Creating::Found => {
            let record = store
                .invoice(record.id)?
                .context("stored invoice vanished")?;
            settler.settle(&record)
        }
        Creating::Abandoned => Ok(Outcome::Expired),
        Creating::Unknown => Ok(Outcome::Pending),
    }
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if total == 0 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("reconcile {bar:40} {pos}/{len} {elapsed_precise}")
            .expect("static template"),
    );
    Some(bar)
}
