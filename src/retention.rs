//! Keeping the state store small for years: journal detail of settled payments, strangers'
//! bodies and reported findings older than `storage.journal_retention_days` are pruned, by
//! `splynx-bitpay prune` and by `reconcile` at most once a day.

use anyhow::Result;

use crate::store::{Pruned, Store};

/// When the last prune ran (ms).
const LAST_PRUNE: &str = "prune.last_run";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Prunes what is older than `days`.
pub fn prune(store: &Store, days: u32, dry_run: bool, now: i64) -> Result<Pruned> {
    let pruned = store.prune(now - i64::from(days) * DAY_MS, dry_run, now)?;
    if !dry_run {
        store.set_meta(LAST_PRUNE, &now.to_string())?;
    }
    Ok(pruned)
}

/// Prunes when the last prune is a day old or more (what `reconcile` calls).
pub fn prune_if_due(store: &Store, days: u32, now: i64) -> Result<Option<Pruned>> {
    let last: i64 = store
        .meta(LAST_PRUNE)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if now - last < DAY_MS {
        return Ok(None);
    }
    prune(store, days, false, now).map(Some)
}

/// One line for people.
pub fn describe(pruned: &Pruned, days: u32, dry_run: bool) -> String {
    format!(
        "{} journal detail older than {days} days: {} entries of {} settled payment(s) (one summary line each kept), {} entries naming no invoice of ours, {} reported finding(s); the BitPay ↔ Splynx mapping is kept",
        if dry_run { "would prune" } else { "pruned" },
        pruned.record_entries,
        pruned.records,
        pruned.stranger_entries,
        pruned.findings,
    )
}

/// When the last prune ran, for `status`.
pub fn last_run(store: &Store) -> Result<Option<i64>> {
    Ok(store.meta(LAST_PRUNE)?.and_then(|v| v.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_prunes_at_most_once_a_day() {
        let store = Store::open_in_memory().unwrap();
        let now = 400 * DAY_MS;
        assert!(prune_if_due(&store, 180, now).unwrap().is_some());
        assert!(prune_if_due(&store, 180, now + DAY_MS - 1)
            .unwrap()
            .is_none());
        assert!(prune_if_due(&store, 180, now + DAY_MS).unwrap().is_some());
        assert_eq!(last_run(&store).unwrap(), Some(now + DAY_MS));
        // A dry run changes nothing, the schedule included.
        prune(&store, 180, true, now + 5 * DAY_MS).unwrap();
        assert_eq!(last_run(&store).unwrap(), Some(now + DAY_MS));
    }
}
