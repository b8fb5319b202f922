//! `prune`: drop old journal detail now (reconcile also does it once a day).

use anyhow::Result;
use serde::Serialize;

use crate::cli::PruneArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::output::View;
use crate::retention;
use crate::store::Pruned;

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
    ctx.output.show(&PruneView {
        pruned,
        dry_run: args.dry_run,
        days,
        journal_entries_before: before,
        journal_entries_after: after,
    });
    Ok(SUCCESS)
}

/// `prune`'s result.
#[derive(Debug, Serialize)]
struct PruneView {
    #[serde(flatten)]
    pruned: Pruned,
    dry_run: bool,
    days: u32,
    journal_entries_before: i64,
    journal_entries_after: i64,
}

impl View for PruneView {
    fn human(&self) -> String {
        format!(
            "{}\njournal entries: {} before, {} now",
            retention::describe(&self.pruned, self.days, self.dry_run),
            self.journal_entries_before,
            self.journal_entries_after
        )
    }
}
