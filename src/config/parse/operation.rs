//! How the add-on runs on the server: `[admin]`, `[storage]`, `[reconcile]`.

use std::path::PathBuf;

use super::raw::{RawAdmin, RawMetrics, RawReconcile, RawStorage};
use super::values::{is_role_identifier, is_user_name, quoted_prefix};
use super::{Bad, FALLBACK_DATA_DIR};
use crate::config::{ReconcileSettings, DEFAULT_PAIRING_ROLE};

/// The web server's user on Debian, as the package creates the data directory.
const DEFAULT_DATA_OWNER: &str = "www-data";

/// `[admin] pairing_roles` and `refund_roles`: Splynx role identifiers, matched exactly.
pub(super) fn admin_roles(raw: Option<RawAdmin>, bad: Bad<'_>) -> (Vec<String>, Vec<String>) {
    let (pairing, refund) = raw.map_or((None, None), |a| (a.pairing_roles, a.refund_roles));
    (
        roles(pairing, "admin.pairing_roles", bad),
        roles(refund, "admin.refund_roles", bad),
    )
}

fn roles(raw: Option<Vec<String>>, key: &'static str, bad: Bad<'_>) -> Vec<String> {
    let roles: Vec<String> = raw
        .unwrap_or_else(|| vec![DEFAULT_PAIRING_ROLE.to_string()])
        .iter()
        .map(|r| r.trim().to_string())
        .collect();
    if let Some(odd) = roles.iter().find(|r| !is_role_identifier(r)) {
        bad(
            key,
            format!(
                "\"{}\" is not a Splynx role identifier: roles are matched exactly by their identifier, lower case with dashes (\"super-administrator\", \"administrator\", or a custom role's identifier as Administration → Roles shows it)",
                quoted_prefix(odd)
            ),
        );
        return vec![DEFAULT_PAIRING_ROLE.to_string()];
    }
    if roles.is_empty() {
        bad(
            key,
            format!("list at least one Splynx administrator role, e.g. [\"{DEFAULT_PAIRING_ROLE}\"]; empty names are not roles"),
        );
        return vec![DEFAULT_PAIRING_ROLE.to_string()];
    }
    roles
}

/// `[storage]`: where the state lives, who owns it, how long the journal's detail is kept.
pub(super) struct Storage {
    pub(super) data_dir: PathBuf,
    pub(super) owner: String,
    pub(super) journal_retention_days: u32,
}

pub(super) fn storage(raw: RawStorage, bad: Bad<'_>) -> Storage {
    let mut journal_retention_days = raw.journal_retention_days.unwrap_or(180);
    if !(7..=3650).contains(&journal_retention_days) {
        bad(
            "storage.journal_retention_days",
            format!("must be between 7 and 3650 days, got {journal_retention_days}"),
        );
        journal_retention_days = 180;
    }
    let data_dir = match raw.data_dir {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => {
            bad(
                "storage.data_dir",
                format!("\"{}\" must be an absolute path", dir.display()),
            );
            PathBuf::from(FALLBACK_DATA_DIR)
        }
        None => {
            bad(
                "storage.data_dir",
                format!("is not set: the directory for the key and the state, e.g. \"{FALLBACK_DATA_DIR}\""),
            );
            PathBuf::from(FALLBACK_DATA_DIR)
        }
    };
    let mut owner = raw.owner.unwrap_or_else(|| DEFAULT_DATA_OWNER.to_string());
    if !is_user_name(&owner) {
        bad(
            "storage.owner",
            format!("\"{}\" is not a user name (the user php-fpm runs the add-on's pages as, e.g. \"{DEFAULT_DATA_OWNER}\")", quoted_prefix(&owner)),
        );
        owner = DEFAULT_DATA_OWNER.to_string();
    }
    Storage {
        data_dir,
        owner,
        journal_retention_days,
    }
}

/// `[metrics] textfile`: where `reconcile` writes the metrics for node exporter's textfile
/// collector (off when unset). It reads only `*.prom` files; the file is replaced whole.
pub(super) fn metrics_textfile(raw: Option<RawMetrics>, bad: Bad<'_>) -> Option<PathBuf> {
    let path = raw?.textfile?;
    let problem = if !path.is_absolute() {
        "must be an absolute path"
    } else if path.extension().is_none_or(|e| e != "prom") {
        "must end in .prom (node exporter's textfile collector reads only *.prom files)"
    } else {
        return Some(path);
    };
    bad(
        "metrics.textfile",
        format!(
            "\"{}\" {problem}, e.g. \"/var/lib/prometheus/node-exporter/splynx_bitpay.prom\"",
            quoted_prefix(&path.display().to_string())
        ),
    );
    None
}

pub(super) fn reconcile(raw: Option<RawReconcile>, bad: Bad<'_>) -> ReconcileSettings {
    let reconcile = raw.unwrap_or_default();
    let mut concurrency = reconcile.concurrency.unwrap_or(8);
    if !(1..=64).contains(&concurrency) {
        bad(
            "reconcile.concurrency",
            format!("must be between 1 and 64, got {concurrency}"),
        );
        concurrency = 8;
    }
    let mut requests_per_second = reconcile.requests_per_second.unwrap_or(400);
    if requests_per_second == 0 {
        bad("reconcile.requests_per_second", "must be at least 1".into());
        requests_per_second = 400;
    }
    ReconcileSettings {
        concurrency,
        requests_per_second,
    }
}
