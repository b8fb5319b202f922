//! `audit`: the payment server's book and Splynx's side by side for a period; exit 1 when
//! they differ. Reads only; `--record` keeps the summary for the page and `metrics`.

use anyhow::Result;
use chrono::NaiveDate;

use crate::audit::render::{self, AuditSummary, AuditView};
use crate::audit::{self, Period};
use crate::cli::AuditArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::gateway::{self, Key, Need};

pub fn run(args: AuditArgs, ctx: &Context) -> Result<u8> {
    if let Some(caller) = crate::admin::identify(ctx, &args.admin)? {
        if !caller.may_refund {
            let refusal = crate::admin::audit_refusal(&ctx.config.refund_roles, &caller.admin);
            return Err(refusal.into());
        }
    }
    let period = period_of(&args)?;
    let gateway = gateway::open(ctx, Need::Reading, Key::MustExist)?;
    let facts = audit::gather::read(ctx, gateway.server.as_ref(), &gateway.order_key, period)?;
    let now = clock::now_ms();
    let view = AuditView {
        server: gateway.server.name(),
        at: clock::datetime_of(now),
        audit: audit::compare(&facts),
    };
    if args.record {
        AuditSummary::of(&view, now).record(&ctx.store)?;
    }
    if args.csv {
        ctx.output.text(&render::csv(&view.audit));
    } else {
        ctx.output.show(&view);
    }
    Ok(if view.audit.differences.is_empty() {
        SUCCESS
    } else {
        1
    })
}

/// `--from`/`--to`, or last month when both are left out.
fn period_of(args: &AuditArgs) -> Result<Period, Problem> {
    let date = |flag: &str, text: &str| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            Problem::BadInput(format!("{flag} {text:?} is not a date like 2026-11-01"))
        })
    };
    match (&args.from, &args.to) {
        (None, None) => Ok(Period::month_before(chrono::Local::now().date_naive())),
        (Some(from), Some(to)) => {
            let period = Period {
                from: date("--from", from)?,
                to: date("--to", to)?,
            };
            if period.to < period.from {
                return Err(Problem::BadInput(format!(
                    "--to {to} is before --from {from}"
                )));
            }
            if (period.to - period.from).num_days() > 366 {
                return Err(Problem::BadInput(format!(
                    "{from} to {to} is more than a year: audit a year or less at a time"
                )));
            }
            Ok(period)
        }
        _ => Err(Problem::BadInput(
            "give both --from and --to, or neither (last month)".into(),
        )),
    }
}
