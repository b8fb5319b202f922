//! `reconcile`: re-check every unsettled invoice (and, with `--since`, BitPay's list) and
//! settle what webhooks missed, through the same decision as `handle-ipn`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::bitpay::BitPayClient;
use crate::cli::ReconcileArgs;
use crate::context::Context;
use crate::exit::{self, Problem};
use crate::settlement::{parse_order_id, Outcome, Settler};
use crate::splynx::SplynxClient;
use crate::store::{InvoiceRecord, Settlement, Store};
use crate::{clock, lock, pairing};

/// Invoices stuck in "creating" this long without BitPay knowing their guid are dropped.
const ABANDON_CREATING_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Default)]
struct Summary {
    checked: usize,
    credited: usize,
    pending: usize,
    expired: usize,
    review: usize,
    errors: usize,
    temporary_errors: usize,
    discovered: usize,
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
    let _only_one = lock::acquire(
        &ctx.config.data_dir,
        "reconcile",
        "reconcile (another run is in progress)",
        Duration::ZERO,
    )?;
    let identity = ctx.identity()?;
    let bitpay = ctx.bitpay(Some(identity));
    let token = pairing::invoice_token(ctx, &bitpay)?;
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
            token.token.expose(),
            since,
            args.dry_run,
        )?;
    }

    let records = ctx.store.unsettled_invoices()?;
    let total = records.len();
    let progress = progress_bar(ctx, total as u64);
    let limiter = RateLimit::new(ctx.config.reconcile.requests_per_second);
    let queue = Mutex::new(records.into_iter());
    let results = Mutex::new(Vec::new());
    let workers = ctx.config.reconcile.concurrency.min(total.max(1));
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

    let mut lines = Vec::new();
    let mut items = Vec::new();
    for (record, result) in results.into_inner().expect("results lock") {
        summary.checked += 1;
        let name = record
            .bitpay_id
            .clone()
            .unwrap_or_else(|| format!("guid {}", record.guid));
        let (label, detail) = match result {
            Ok(Outcome::Credited { .. }) | Ok(Outcome::AlreadyCredited) => {
                summary.credited += 1;
                ("credited", String::new())
            }
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
            Err(e) => {
                summary.errors += 1;
                if exit::exit_code(&e) == exit::TEMPORARY {
                    summary.temporary_errors += 1;
                }
                ("error", format!("{e:#}"))
            }
        };
        if label != "pending" {
            let verb = if args.dry_run && label != "error" {
                format!("would be {label}")
            } else {
                label.to_string()
            };
            lines.push(format!(
                "{name}: {verb}{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ));
        }
        items.push(
            json!({"bitpay_invoice_id": record.bitpay_id, "result": label, "detail": detail}),
        );
    }
    summary.errors += failures.into_inner();

    let headline = format!(
        "{}checked {}, credited {}, pending {}, expired {}, needs review {}, errors {}{}",
        if args.dry_run {
            "dry run (nothing changed): "
        } else {
            ""
        },
        summary.checked,
        summary.credited,
        summary.pending,
        summary.expired,
        summary.review,
        summary.errors,
        if since.is_some() {
            format!(", discovered at BitPay {}", summary.discovered)
        } else {
            String::new()
        }
    );
    lines.push(headline);
    ctx.output.emit(
        &lines.join("\n"),
        &json!({
            "dry_run": args.dry_run,
            "checked": summary.checked,
            "credited": summary.credited,
            "pending": summary.pending,
            "expired": summary.expired,
            "needs_review": summary.review,
            "errors": summary.errors,
            "discovered": summary.discovered,
            "invoices": items,
        }),
    );
    Ok(
        if summary.review > 0 || summary.errors > summary.temporary_errors {
            exit::FAILURE
        } else if summary.errors > 0 {
            exit::TEMPORARY
        } else {
            exit::SUCCESS
        },
    )
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
    let found = bitpay
        .invoice_by_guid(&record.guid, record.token.expose())
        .with_context(|| format!("recovering invoice guid {}", record.guid))?;
    let now = clock::now_ms();
    match found {
        Some(invoice) => {
            if settler.dry_run {
                return Ok(Outcome::Pending);
            }
            store.mark_created(
                &record.guid,
                &invoice,
                "recovered by guid during reconcile",
                now,
            )?;
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
            if parse_order_id(&invoice.order_id).is_none()
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
            super::handle_ipn::adopt_by_id(ctx, bitpay, splynx, &invoice.id)?;
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
