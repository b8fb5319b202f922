//! `reconcile`: re-check every unsettled invoice (and, with `--since`, BitPay's list) and
//! settle what webhooks missed, through the same decision as `handle-ipn`. The sweep is
//! `settlement::sweep`; this parses the arguments and renders its report.

use std::io::IsTerminal;

use anyhow::Result;

use crate::cli::ReconcileArgs;
use crate::context::Context;
use crate::exit::Problem;
use crate::metrics::ReconcileRun;
use crate::output::View;
use crate::settlement::sweep::{sweep, SweepOptions, SweepReport};

pub fn run(args: ReconcileArgs, ctx: &Context) -> Result<u8> {
    let since =
        match &args.since {
            Some(date) => Some(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(
                |_| Problem::BadInput(format!("--since {date:?} is not a date like 2026-11-01")),
            )?),
            None => None,
        };
    let options = SweepOptions {
        dry_run: args.dry_run,
        since,
        progress: !ctx.output.json && std::io::stderr().is_terminal(),
    };
    let started = crate::clock::now_ms();
    let swept = sweep(ctx, &options);
    if !options.dry_run {
        let (errors, exit, credentials_refused) = match &swept {
            Ok(report) => (
                report.summary.errors as u64,
                report.exit_code.code(),
                report.summary.credentials_refused > 0,
            ),
            Err(e) => (
                1,
                crate::errors::exit_code(e),
                crate::errors::failure_of(e) == crate::exit::ExitCode::Config,
            ),
        };
        let now = crate::clock::now_ms();
        let run = ReconcileRun {
            at_ms: now,
            duration_ms: now - started,
            errors,
            exit,
            credentials_refused,
        };
        crate::metrics::keep(ctx, &run);
    }
    let report = swept?;
    ctx.output.show(&report);
    Ok(report.exit_code.code())
}

impl View for SweepReport {
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
            match self.discovering {
                Some(server) if summary.listed_unchanged > 0 => format!(
                    ", discovered at {server} {}, unchanged in its list (not fetched) {}",
                    summary.discovered, summary.listed_unchanged
                ),
                Some(server) => format!(", discovered at {server} {}", summary.discovered),
                None => String::new(),
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
