//! `prune`: drop old journal detail now (reconcile also does it once a day).

use anyhow::Result;

use crate::cli::PruneArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::retention;

pub fn run(args: PruneArgs, ctx: &Context) -> Result<u8> {
    let days = match args.older_than {
        Some(days) if days == 0 || days > 36_500 => {
            return Err(Problem::BadInput(format!(
                "--older-than {days}: give a number of days from 1 to 36500"
            ))
            .into())
        }
        Some(days) => days,
        None => ctx.config.journal_retention_days,
    };
    let before = ctx.store.journal_count()?;
    let pruned = retention::prune(&ctx.store, days, args.dry_run, clock::now_ms())?;
    let after = ctx.store.journal_count()?;
    let mut json = retention::json(&pruned);
    json["dry_run"] = args.dry_run.into();
    json["days"] = days.into();
    json["journal_entries_before"] = before.into();
    json["journal_entries_after"] = after.into();
    ctx.output.emit(
        &format!(
            "{}\njournal entries: {before} before, {after} now",
            retention::describe(&pruned, days, args.dry_run)
        ),
        &json,
    );
    Ok(SUCCESS)
}
