//! Checks of this machine: the config file and its permissions, the data directory, the
//! key, the database, the journal (last webhook, held payments).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bitpay::Identity;
use crate::clock;
use crate::config::{Config, ConfigError};
use crate::store::{Store, StoreError, MIGRATIONS};

use super::owner::{group_name, groups_of, owner_of, primary_group, user_name};
use super::report::Report;
use super::WEB_USER;

pub(super) fn check_config(report: &mut Report, path: &Path, me: Option<u32>) -> Option<Config> {
    let shown = path.display();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.fail(
                "config",
                format!("{shown} does not exist"),
                format!("install the package (it ships {shown}), or copy examples/config.toml there and edit it; or pass --config PATH"),
            );
            return None;
        }
        Err(e) => {
            report.fail(
                "config",
                format!("cannot reach {shown}: {e}"),
                format!("make {shown} and its directories readable by the web server user"),
            );
            return None;
        }
    };
    let config = match Config::inspect(path) {
        Ok(config) => {
            let problems = config.every_problem();
            if problems.is_empty() {
                report_sources(report, &config);
            } else {
                report.fail(
                    "config",
                    config.problems_error(problems).to_string(),
                    format!("correct each value where it is named (the config file {shown}, or in Splynx: Config → Integrations → Modules list → splynx_bitpay_addon); until then checkout is refused, payments already received are still credited"),
                );
            }
            // What settlement cannot run without is missing: nothing else can be checked.
            (!config.problems.iter().any(|p| p.critical)).then_some(config)
        }
        Err(ConfigError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            report.fail(
                "config",
                format!(
                    "{shown} is not readable by {}",
                    me.map(user_name).unwrap_or_else(|| "this user".into())
                ),
                format!("chgrp {WEB_USER} {shown} && chmod 640 {shown}"),
            );
            None
        }
        Err(e) => {
            report.fail(
                "config",
                e.to_string(),
                format!(
                    "edit {shown} (every key is described in splynx-bitpay.toml(5) and /usr/share/doc/splynx-bitpay/examples/config.toml)"
                ),
            );
            None
        }
    };
    check_config_permissions(report, path, &meta, config.as_ref());
    config
}

/// The config is valid; says where its values came from, and warns when the Modules list
/// overrides a value the config file sets too (two places for one setting).
fn report_sources(report: &mut Report, config: &Config) {
    let shown = config.path.display();
    let valid = format!(
        "{shown}: valid (Splynx {}, BitPay {})",
        config.splynx.url, config.bitpay.api_url
    );
    let Some(file) = config.modules_list_file() else {
        report.ok("config", valid);
        return;
    };
    let from_list: Vec<&str> = config
        .sources
        .iter()
        .filter(|(_, source)| source.is_modules_list())
        .map(|(key, _)| key.as_str())
        .collect();
    let partners = config.partners_with_settings();
    let read = format!(
        "{valid}; Modules list settings {}: {}{}",
        file.display(),
        if from_list.is_empty() {
            "none set".to_string()
        } else {
            from_list.join(", ")
        },
        if partners.is_empty() {
            String::new()
        } else {
            format!(
                "; Partners settings for partner {}",
                partners
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    if config.overridden_toml.is_empty() {
        report.ok("config", read);
    } else {
        report.warn(
            "config",
            format!(
                "{read}; the Modules list overrides what {shown} sets for {}",
                config.overridden_toml.join(", ")
            ),
            Some(format!(
                "keep each setting in one place: clear the field in Splynx (Config → Integrations → Modules list → splynx_bitpay_addon) or remove the key from {shown}; `splynx-bitpay config` shows where every value comes from"
            )),
        );
    }
}

pub(super) fn check_config_permissions(
    report: &mut Report,
    path: &Path,
    meta: &fs::Metadata,
    config: Option<&Config>,
) {
    let shown = path.display();
    let mode = meta.permissions().mode() & 0o7777;
    let owners = format!("{}:{}", user_name(meta.uid()), group_name(meta.gid()));
    if mode & 0o007 != 0 {
        report.fail(
            "config.permissions",
            format!("{shown} is open to every user (mode {mode:04o}, {owners}) and holds the Splynx API secret"),
            format!("chmod 640 {shown}"),
        );
        return;
    }
    // The web server user (the data directory's owner) must be able to read it.
    if let Some(owner) = config.and_then(|c| fs::metadata(&c.data_dir).ok()) {
        let uid = owner.uid();
        let readable = uid == 0
            || uid == meta.uid() && mode & 0o400 != 0
            || groups_of(uid).contains(&meta.gid()) && mode & 0o040 != 0;
        if !readable {
            let user = user_name(uid);
            let group = primary_group(uid)
                .map(group_name)
                .unwrap_or_else(|| user.clone());
            report.fail(
                "config.permissions",
                format!("{shown} (mode {mode:04o}, {owners}) is not readable by {user}, who runs the add-on"),
                format!("chgrp {group} {shown} && chmod 640 {shown}"),
            );
            return;
        }
    }
    report.ok(
        "config.permissions",
        format!("mode {mode:04o}, {owners}: not readable by other users"),
    );
}

/// True when the data directory exists and this process owns it, so opening the
/// database (which may create files) is safe.
pub(super) fn check_data_dir(report: &mut Report, config: &Config, me: Option<u32>) -> bool {
    let dir = &config.data_dir;
    let shown = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            report.fail(
                "data_dir",
                format!("{shown} is not a directory"),
                format!(
                    "move it away, then: install -d -m 0700 -o {WEB_USER} -g {WEB_USER} {shown}"
                ),
            );
            return false;
        }
        Err(e) => {
            report.fail(
                "data_dir",
                format!("{shown}: {e}"),
                format!("install -d -m 0700 -o {WEB_USER} -g {WEB_USER} {shown} (or set storage.data_dir in {})", config.path.display()),
            );
            return false;
        }
    };
    let owner = user_name(meta.uid());
    if me.is_some_and(|me| me != meta.uid()) {
        report.fail(
            "data_dir",
            format!(
                "{shown} belongs to {owner}, but doctor runs as {}",
                me.map(user_name).unwrap_or_default()
            ),
            format!("run it as the owner: sudo -u {owner} splynx-bitpay doctor"),
        );
        return false;
    }
    let mode = meta.permissions().mode() & 0o7777;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    // E.g. created by `pair` run as root: the pages (php-fpm's user) cannot open it.
    let owned_by_the_pages = owner == config.data_owner;
    if !owned_by_the_pages {
        let wanted = &config.data_owner;
        if uzers::get_user_by_name(wanted).is_none() {
            problems.push(format!(
                "{shown} belongs to {owner}, and there is no user {wanted} (storage.owner) on this machine"
            ));
            fixes.push(format!(
                "set storage.owner in {} to the user php-fpm runs Splynx as",
                config.path.display()
            ));
        } else {
            problems.push(format!(
                "{shown} belongs to {owner}, but the add-on's pages run as {wanted} (storage.owner), who cannot use it"
            ));
            fixes.push(format!("chown -R {wanted}: {shown}"));
        }
    }
    if mode & 0o077 != 0 {
        problems.push(format!("{shown} is open to other users (mode {mode:04o})"));
        fixes.push(format!("chmod 700 {shown}"));
    }
    // (After the chown to storage.owner above there are none.)
    let strangers = if owned_by_the_pages {
        foreign_files(dir, meta.uid())
    } else {
        Vec::new()
    };
    if !strangers.is_empty() {
        problems.push(format!(
            "{} belong(s) to another user than {owner}, who then cannot use them",
            strangers.join(", ")
        ));
        fixes.push(format!(
            "chown -R {owner}:{} {shown}",
            primary_group(meta.uid())
                .map(group_name)
                .unwrap_or_else(|| owner.clone())
        ));
    }
    if problems.is_empty() {
        report.ok(
            "data_dir",
            format!("{shown}: mode {mode:04o}, owner {owner}"),
        );
    } else {
        report.fail("data_dir", problems.join("; "), fixes.join(" && "));
    }
    true
}

/// Files in the data directory (and its `locks/`) owned by someone else than `uid`.
pub(super) fn foreign_files(dir: &Path, uid: u32) -> Vec<String> {
    let mut found = Vec::new();
    let mut visit = |dir: &Path| -> Vec<PathBuf> {
        let mut subdirs = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.uid() != uid {
                found.push(entry.path().display().to_string());
            }
            if meta.is_dir() {
                subdirs.push(entry.path());
            }
        }
        subdirs
    };
    for sub in visit(dir) {
        visit(&sub);
    }
    found.sort();
    found
}

pub(super) fn check_key(report: &mut Report, config: &Config) -> Option<Identity> {
    let path = config.key_path();
    let shown = path.display();
    let pair_fix = format!(
        "pair with a code from the BitPay dashboard (Payment Tools → API Tokens): sudo -u {} splynx-bitpay pair CODE",
        owner_of(&config.data_dir)
    );
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.fail(
                "key",
                format!("no BitPay key yet ({shown}): not paired yet"),
                pair_fix,
            );
            return None;
        }
        Err(e) => {
            report.fail("key", format!("{shown}: {e}"), pair_fix);
            return None;
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        report.fail(
            "key",
            format!("{shown} is readable by other users (mode {mode:04o}); it is refused"),
            format!("chmod 600 {shown}"),
        );
        return None;
    }
    match Identity::load_existing(&path) {
        Ok(Some(identity)) => {
            report.ok(
                "key",
                format!("{shown}: mode {mode:04o}, SIN {}", identity.sin()),
            );
            Some(identity)
        }
        Ok(None) => {
            report.fail("key", format!("no BitPay key yet ({shown})"), pair_fix);
            None
        }
        Err(e) => {
            report.fail(
                "key",
                e.to_string(),
                format!("move {shown} away, then {pair_fix}"),
            );
            None
        }
    }
}

pub(super) fn check_database(report: &mut Report, config: &Config) -> Option<Store> {
    let path = config.database_path();
    let shown = path.display();
    if !path.exists() {
        // Looking creates nothing: the first pairing or payment creates it.
        report.ok(
            "database",
            format!("{shown}: none yet (the first pairing creates it)"),
        );
        return Store::open_in_memory().ok();
    }
    let store = match Store::open(&config.data_dir) {
        Ok(store) => store,
        Err(e) => {
            let fix = match &e {
                StoreError::TooNew { .. } => {
                    "install the newer splynx-bitpay that wrote it (apt-get install splynx-bitpay)"
                        .to_string()
                }
                e if e.is_busy() => "another splynx-bitpay process holds the database; run doctor again in a minute".to_string(),
                _ => format!(
                    "stop the web server's use of the add-on, move {shown} away and restore it from a backup (payments already in Splynx are safe: `reconcile` adopts them)"
                ),
            };
            report.fail("database", e.to_string(), fix);
            return None;
        }
    };
    let integrity = store
        .integrity_check()
        .unwrap_or_else(|e| format!("integrity check failed: {e}"));
    let version = store.schema_version().unwrap_or(-1);
    let known = MIGRATIONS.len() as i64;
    if integrity != "ok" {
        report.fail(
            "database",
            format!("{shown} is damaged: {integrity}"),
            format!("restore {shown} from a backup, or rebuild it with: sqlite3 {shown} .recover | sqlite3 {shown}.recovered"),
        );
    } else if version != known {
        report.fail(
            "database",
            format!("{shown} has schema version {version}, this program expects {known}"),
            "install the matching splynx-bitpay version (apt-get install splynx-bitpay)",
        );
    } else {
        report.ok(
            "database",
            format!("{shown}: integrity ok, schema version {version} (current)"),
        );
    }
    Some(store)
}

/// Records held for the admin, and payments whose outcome is not known yet.
pub(super) fn check_held(report: &mut Report, store: &Store) {
    let held = match store.held_counts() {
        Ok(held) => held,
        Err(e) => return report.fail("invoices.held", e.to_string(), "see the `database` check"),
    };
    let (review, reversed, sent, duplicates) =
        (held.review, held.reversed, held.sent, held.duplicates);
    if !held.any() {
        return report.ok("invoices.held", "nothing is held for the admin");
    }
    let mut parts = Vec::new();
    if reversed > 0 {
        parts.push(format!("{reversed} reversed after credit"));
    }
    if review > 0 {
        parts.push(format!(
            "{review} held for review{}",
            if duplicates > 0 {
                format!(" ({duplicates} with duplicate Splynx payments)")
            } else {
                String::new()
            }
        ));
    }
    if sent > 0 {
        parts.push(format!(
            "{sent} Splynx payment(s) sent with an unknown outcome (reconcile settles them)"
        ));
    }
    report.warn(
        "invoices.held",
        parts.join(", "),
        Some("`splynx-bitpay status` lists them; `splynx-bitpay show ID` tells each story; after acting in Splynx, `splynx-bitpay resolve ID`".into()),
    );
}

pub(super) fn check_last_webhook(report: &mut Report, store: &Store) {
    match store.last_webhook_time() {
        Ok(Some(at)) => {
            let ago = Duration::from_millis((clock::now_ms() - at).max(0) as u64);
            report.ok(
                "webhook.last",
                format!("last webhook arrived {} ({} ago)", clock::datetime_of(at), human_duration(ago)),
            );
        }
        Ok(None) => report.warn(
            "webhook.last",
            "no webhook has arrived yet",
            Some("normal before the first payment; after one, check `webhook.url` and the BitPay invoice's notification URL".into()),
        ),
        Err(e) => report.fail("webhook.last", e.to_string(), "see the `database` check"),
    }
}

pub(super) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
    }
}
