//! `reconcile`: re-check every unsettled invoice (and, with `--since`, BitPay's list) and
//! settle what webhooks missed, through the same decision as `handle-ipn`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::bitpay::BitPayClient;
use crate::cli::ReconcileArgs;
use crate::context::Context;
use crate::errors;
use crate::exit::{self, Problem};
use crate::order_id::{self, OrderKey};
use crate::output::View;
use crate::settlement::{Outcome, Settler};
use crate::splynx::SplynxClient;
use crate::store::{Finding, InvoiceRecord, Pruned, Settlement, Store};
use crate::view::FindingView;
use crate::{clock, lock, pairing, retention};

/// Invoices stuck in "creating" this long without BitPay knowing their guid are dropped.
const ABANDON_CREATING_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Default, Serialize)]
struct Summary {
    checked: usize,
    credited: usize,
    pending: usize,
    expired: usize,
    #[serde(rename = "needs_review")]
    review: usize,
    reversed: usize,
    watched: usize,
    errors: usize,
    #[serde(skip)]
    temporary_errors: usize,
    discovered: usize,
    /// Payment statement records and fee transactions still not booked (each is listed
    /// with why).
    bookings_waiting: usize,
}

impl Summary {
    /// Counts one record's failure (the sweep goes on; the worst decides the exit code)
    /// and says what it was.
    fn failed(&mut self, e: &anyhow::Error) -> String {
        self.errors += 1;
        if errors::exit_code(e) == exit::TEMPORARY {
            self.temporary_errors += 1;
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

pub fn run(args: ReconcileArgs, ctx: &Context) -> Result<u8> {
    let since =
        match &args.since {
            Some(date) => Some(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(
                |_| Problem::BadInput(format!("--since {date:?} is not a date like 2026-11-01")),
            )?),
            None => None,
        };
    // A dry run only reads: it takes no lock and creates no key (nor the directory).
    let _only_one = if args.dry_run {
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
    let token = pairing::invoice_token(ctx, &ctx.bitpay(None))?;
    let identity = match ctx.existing_identity()? {
        Some(identity) => identity,
        None if args.dry_run => {
            return Err(Problem::Setup(format!(
                "the BitPay key {} is missing: pair again (`splynx-bitpay pair CODE`)",
                ctx.config.key_path().display()
            ))
            .into())
        }
        None => ctx.identity()?,
    };
    let order_key = OrderKey::of(&identity);
    let bitpay = ctx.bitpay(Some(identity));
    let mut summary = Summary::default();

    if let Some(since) = since {
        if token.facade != "merchant" {
            return Err(Problem::Setup(format!(
                "--since lists invoices at BitPay, which needs a merchant token; this add-on is paired with a {} token. Run `splynx-bitpay pair --request --facade merchant` and approve the code, or reconcile without --since",
                token.facade
            ))
            .into());
        }
        summary.discovered = discover(
            ctx,
            &bitpay,
            &ctx.splynx(),
            &order_key,
            token.token.expose(),
            since,
            args.dry_run,
        )?;
    }

    // Unsettled invoices, then credited ones BitPay may still take back.
    let mut records = ctx.store.unsettled_invoices()?;
    records.extend(ctx.store.watched_invoices(clock::now_ms())?);
    let total = records.len();
    let progress = progress_bar(ctx, total as u64);
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
                let splynx = SplynxClient::new(&config.splynx, &config.data_dir, &store);
                let settler = Settler {
                    config,
                    store: &store,
                    bitpay: &bitpay,
                    splynx: &splynx,
                    dry_run: args.dry_run,
                };
                loop {
                    let Some(record) = queue.lock().expect("queue lock").next() else {
                        break;
                    };
                    limiter.wait();
                    let result = check_one(&settler, &store, &bitpay, &record);
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
    for (record, result) in results.into_inner().expect("results lock") {
        summary.checked += 1;
        let name = record
            .bitpay_id
            .clone()
            .unwrap_or_else(|| format!("guid {}", record.order.guid));
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
    if !args.dry_run {
        book_open(ctx, &bitpay, started, &mut summary, &mut items)?;
    }
    let findings = if args.dry_run {
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
    let pruned = if args.dry_run {
        None
    } else {
        retention::prune_if_due(&ctx.store, days, clock::now_ms())?
    };
    if let Some(p) = &pruned {
        log::info!("{}", retention::describe(p, days, false));
    }
    let needs_admin = if args.dry_run {
        summary.review + summary.reversed > 0
    } else {
        !findings.is_empty()
    };
    let code = if needs_admin || summary.errors > summary.temporary_errors {
        exit::FAILURE
    } else if summary.errors + summary.bookings_waiting > 0 {
        exit::TEMPORARY
    } else {
        exit::SUCCESS
    };
    ctx.output.show(&Reconciled {
        dry_run: args.dry_run,
        summary,
        discovering: since.is_some(),
        pruned,
        needs_admin: findings.iter().map(FindingView::from).collect(),
        invoices: items,
    });
    Ok(code)
}

/// `reconcile`'s result.
#[derive(Debug, Serialize)]
struct Reconciled {
    dry_run: bool,
    #[serde(flatten)]
    summary: Summary,
    /// Whether BitPay's list was searched (`--since`).
    #[serde(skip)]
    discovering: bool,
    pruned: Option<Pruned>,
    needs_admin: Vec<FindingView>,
    invoices: Vec<Checked>,
}

/// What became of one invoice.
#[derive(Debug, Serialize)]
struct Checked {
    bitpay_invoice_id: Option<String>,
    result: &'static str,
    detail: String,
    /// The BitPay id, or the guid of one still being created.
    #[serde(skip)]
    name: String,
}

impl View for Reconciled {
    fn human(&self) -> String {
        let mut lines = Vec::new();
        for item in &self.invoices {
            // Held records are reported once below, as findings.
            let held =
                matches!(item.result, "needs review" | "reversed after credit") && !self.dry_run;
            if matches!(item.result, "pending" | "still watched") || held {
                continue;
            }
            let verb = if self.dry_run && item.result != "error" {
                format!("would be {}", item.result)
            } else {
                item.result.to_string()
            };
            lines.push(format!(
                "{}: {verb}{}",
                item.name,
                if item.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", item.detail)
                }
            ));
        }
        if !self.needs_admin.is_empty() {
            lines.push("Needs the admin (new since the last reconcile):".into());
            for f in &self.needs_admin {
                lines.push(format!(
                    "  {} {}: {}: {}",
                    f.at,
                    f.bitpay_invoice_id.as_deref().unwrap_or("-"),
                    f.kind,
                    f.summary
                ));
            }
        }
        let summary = &self.summary;
        lines.push(format!(
            "{}checked {}, credited {}, pending {}, expired {}, needs review {}, reversed after credit {}, still watched {}, errors {}{}{}",
            if self.dry_run {
                "dry run (nothing changed): "
            } else {
                ""
            },
            summary.checked,
            summary.credited,
            summary.pending,
            summary.expired,
            summary.review,
            summary.reversed,
            summary.watched,
            summary.errors,
            if self.discovering {
                format!(", discovered at BitPay {}", summary.discovered)
            } else {
                String::new()
            },
            if summary.bookings_waiting > 0 {
                format!(
                    ", bookings waiting (statement records, fees) {}",
                    summary.bookings_waiting
                )
            } else {
                String::new()
            }
        ));
        lines.join("\n")
    }
}
/// Books what earlier credits left open (a payment statement record or fee transaction
/// Splynx was down for, or refused). Bookings deferred during this run (`next_try_at` after `started`) wait for
/// the next one.
fn book_open(
    ctx: &Context,
    bitpay: &BitPayClient,
    started: i64,
    summary: &mut Summary,
    items: &mut Vec<Checked>,
) -> Result<()> {
    let splynx = ctx.splynx();
    let settler = Settler {
        config: &ctx.config,
        store: &ctx.store,
        bitpay,
        splynx: &splynx,
        dry_run: false,
    };
    for record in ctx.store.invoices_with_open_bookings(started)? {
        let name = record.bitpay_id.clone().unwrap_or_default();
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

/// Findings no run has reported yet, marked as reported now.
fn new_findings(store: &Store) -> Result<Vec<Finding>> {
    let findings = store.unreported_findings()?;
    store.mark_findings_reported(&findings, clock::now_ms())?;
    Ok(findings)
}

fn check_one(
    settler: &Settler<'_>,
    store: &Store,
    bitpay: &BitPayClient,
    record: &InvoiceRecord,
) -> Result<Outcome> {
    if record.settlement != Settlement::Creating {
        return settler.settle(record);
    }
    // A create whose answer never arrived: BitPay knows it by guid, or it never existed.
    let found = crate::recovery::recover_by_guid(
        store,
        bitpay,
        record,
        "recovered by guid during reconcile",
        !settler.dry_run,
    )
    .with_context(|| format!("recovering invoice guid {}", record.order.guid))?;
    let now = clock::now_ms();
    match found {
        Some(_) if settler.dry_run => Ok(Outcome::Pending),
        Some(_) => {
            let record = store
                .invoice(record.id)?
                .context("stored invoice vanished")?;
            settler.settle(&record)
        }
        None if now - record.created_at > ABANDON_CREATING_MS => {
            if !settler.dry_run {
                store.set_settlement(
                    record.id,
                    Settlement::Expired,
                    Some("never created at BitPay"),
                    now,
                )?;
            }
            Ok(Outcome::Expired)
        }
        None => Ok(Outcome::Pending),
    }
}

/// Lists BitPay invoices from `since` to today and rebuilds records for ours that are missing.
fn discover(
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

fn progress_bar(ctx: &Context, total: u64) -> Option<indicatif::ProgressBar> {
    if ctx.output.json || !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("reconcile {bar:40} {pos}/{len} {elapsed_precise}")
            .expect("static template"),
    );
    Some(bar)
}
