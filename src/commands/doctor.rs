//! `doctor`: checks the installation, one line per check, every failure with its fix.
//!
//! It runs before a `Context` is opened, because opening one would create the data
//! directory and the database, and a broken config is one of the things it reports.
//! Run as root while the data directory belongs to another user (the web server user),
//! it runs itself again as that user: files created by root in the data directory would
//! lock the web server out, and what matters is what that user can do.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::bitpay::{BitPayClient, Identity};
use crate::clock;
use crate::config::{Config, ConfigError, CreditOn, Environment};
use crate::exit::{Problem, SUCCESS};
use crate::output::Output;
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::{Store, StoreError, MIGRATIONS};

/// Every check, in the order they run (stable ids for `--json`).
pub const CHECKS: [&str; 19] = [
    "config",
    "config.permissions",
    "data_dir",
    "key",
    "database",
    "bitpay.environment",
    "bitpay.confirmations",
    "bitpay.currency",
    "bitpay.reachable",
    "bitpay.token",
    "splynx.api",
    "splynx.customers",
    "splynx.invoices",
    "splynx.proformas",
    "splynx.payments",
    "splynx.payment_method",
    "webhook.last",
    "invoices.held",
    "webhook.url",
];

/// Who runs the add-on when the data directory does not say (Debian's web server user).
const WEB_USER: &str = "www-data";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
    /// A failure that goes away by itself (a service is unreachable), not a setup problem.
    pub temporary: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn push(&mut self, id: &'static str, status: Status, message: String, fix: Option<String>) {
        self.checks.push(Check {
            id,
            status,
            message,
            fix,
            temporary: false,
        });
    }

    fn ok(&mut self, id: &'static str, message: impl Into<String>) {
        self.push(id, Status::Ok, message.into(), None);
    }

    fn warn(&mut self, id: &'static str, message: impl Into<String>, fix: Option<String>) {
        self.push(id, Status::Warn, message.into(), fix);
    }

    fn fail(&mut self, id: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(id, Status::Fail, message.into(), Some(fix.into()));
    }

    fn fail_temporary(
        &mut self,
        id: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.fail(id, message, fix);
        if let Some(last) = self.checks.last_mut() {
            last.temporary = true;
        }
    }

    fn skip(&mut self, id: &'static str, why: impl Into<String>) {
        self.push(id, Status::Skip, why.into(), None);
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The lines people read: one per check, the fix on the same line.
    pub fn human(&self, header: &str) -> String {
        let mut lines = vec![header.to_string()];
        for c in &self.checks {
            let mut line = format!("{}  {:<22} {}", c.status.tag(), c.id, c.message);
            if let Some(fix) = &c.fix {
                line.push_str(" → fix: ");
                line.push_str(fix);
            }
            lines.push(line);
        }
        let (failed, warned) = (self.count(Status::Fail), self.count(Status::Warn));
        let warnings = match warned {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            n => format!(", {n} warnings"),
        };
        lines.push(if failed == 0 {
            format!("All checks passed{warnings}.")
        } else {
            format!(
                "{failed} of {} checks failed{warnings}: apply the fixes above, then run `splynx-bitpay doctor` again.",
                self.checks.len()
            )
        });
        lines.join("\n")
    }

    pub fn json(&self, config: &Path, environment: Option<&str>, user: &str) -> serde_json::Value {
        json!({
            "ok": self.count(Status::Fail) == 0,
            "config": config.display().to_string(),
            "environment": environment,
            "user": user,
            "summary": {
                "ok": self.count(Status::Ok),
                "warn": self.count(Status::Warn),
                "fail": self.count(Status::Fail),
                "skip": self.count(Status::Skip),
            },
            "checks": self.checks.iter().map(|c| json!({
                "id": c.id,
                "status": c.status.as_str(),
                "message": c.message,
                "fix": c.fix,
            })).collect::<Vec<_>>(),
        })
    }

    /// `Ok` when nothing failed; else the verdict that decides the exit code.
    pub fn verdict(&self) -> std::result::Result<(), Problem> {
        let failed: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = failed.iter().map(|c| c.id).collect();
        let message = format!(
            "{} of {} checks failed ({})",
            failed.len(),
            self.checks.len(),
            ids.join(", ")
        );
        Err(if failed.iter().all(|c| c.temporary) {
            Problem::Temporary(message)
        } else {
            Problem::Setup(message)
        })
    }
}

pub fn run(config_path: &Path, output: Output) -> Result<u8> {
    let me = effective_uid();
    if me == Some(0) {
        if let Some(code) = rerun_as_data_owner(config_path, output)? {
            return Ok(code);
        }
    }
    let mut report = Report::default();
    let config = check_config(&mut report, config_path, me);
    let environment = config.as_ref().map(|c| c.bitpay.environment.as_str());
    let user = me.map(user_name).unwrap_or_else(|| "unknown".into());
    if let Some(config) = &config {
        check_everything(&mut report, config, me);
    } else {
        for id in &CHECKS[2..] {
            report.skip(id, "needs a readable, valid config file");
        }
    }
    let header = format!(
        "splynx-bitpay doctor: {} ({}), running as {user}",
        config_path.display(),
        environment
            .map(|e| format!("BitPay environment {e}"))
            .unwrap_or_else(|| "no usable config".into())
    );
    output.emit(
        &report.human(&header),
        &report.json(config_path, environment, &user),
    );
    report.verdict()?;
    Ok(SUCCESS)
}

/// As root, with a data directory that belongs to someone else: run the checks as that
/// user (like `sudo -u www-data splynx-bitpay doctor`) and pass on their exit code.
/// `None` when there is no such user to become (then the checks run here).
fn rerun_as_data_owner(config_path: &Path, output: Output) -> Result<Option<u8>> {
    let Ok(config) = Config::load(config_path) else {
        return Ok(None);
    };
    let Ok(meta) = fs::metadata(&config.data_dir) else {
        return Ok(None);
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let gid = account(meta.uid()).map(|a| a.gid).unwrap_or(meta.gid());
    let exe = std::env::current_exe().context("finding this program to run it again")?;
    let config_path = std::path::absolute(config_path).unwrap_or(config_path.to_path_buf());
    let mut command = std::process::Command::new(exe);
    command.arg("--config").arg(&config_path);
    if output.json {
        command.arg("--json");
    }
    let status = command
        .arg("doctor")
        .uid(meta.uid())
        .gid(gid)
        .current_dir("/")
        .status();
    match status {
        Ok(status) => Ok(Some(status.code().unwrap_or(1).clamp(0, 255) as u8)),
        Err(e) => {
            // Checked here instead; `data_dir` then says to run as the owner.
            log::warn!(
                "cannot run the checks as {} (the owner of {}): {e}",
                user_name(meta.uid()),
                config.data_dir.display()
            );
            Ok(None)
        }
    }
}

fn check_config(report: &mut Report, path: &Path, me: Option<u32>) -> Option<Config> {
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
    let config = match Config::load(path) {
        Ok(config) => {
            report.ok(
                "config",
                format!(
                    "{shown}: valid (Splynx {}, BitPay {})",
                    config.splynx.url, config.bitpay.api_url
                ),
            );
            Some(config)
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

fn check_config_permissions(
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
            let group = account(uid)
                .map(|a| group_name(a.gid))
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

fn check_everything(report: &mut Report, config: &Config, me: Option<u32>) {
    let usable_data_dir = check_data_dir(report, config, me);
    let identity = if usable_data_dir {
        check_key(report, config)
    } else {
        report.skip("key", "needs a usable data directory");
        None
    };
    let store = if usable_data_dir {
        check_database(report, config)
    } else {
        report.skip("database", "needs a usable data directory");
        None
    };
    check_bitpay(report, config, store.as_ref(), identity);
    check_splynx(report, config, store.as_ref().filter(|_| usable_data_dir));
    match &store {
        Some(store) => {
            check_last_webhook(report, store);
            check_held(report, store);
        }
        None => {
            report.skip("webhook.last", "needs the database");
            report.skip("invoices.held", "needs the database");
        }
    }
    check_webhook_url(report, config);
}

/// True when the data directory exists and this process owns it, so opening the
/// database (which may create files) is safe.
fn check_data_dir(report: &mut Report, config: &Config, me: Option<u32>) -> bool {
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
    if mode & 0o077 != 0 {
        problems.push(format!("{shown} is open to other users (mode {mode:04o})"));
        fixes.push(format!("chmod 700 {shown}"));
    }
    let strangers = foreign_files(dir, meta.uid());
    if !strangers.is_empty() {
        problems.push(format!(
            "{} belong(s) to another user than {owner}, who then cannot use them",
            strangers.join(", ")
        ));
        fixes.push(format!(
            "chown -R {owner}:{} {shown}",
            account(meta.uid())
                .map(|a| group_name(a.gid))
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
fn foreign_files(dir: &Path, uid: u32) -> Vec<String> {
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

fn check_key(report: &mut Report, config: &Config) -> Option<Identity> {
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

fn check_database(report: &mut Report, config: &Config) -> Option<Store> {
    let path = config.database_path();
    let shown = path.display();
    let existed = path.exists();
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
            format!(
                "{shown}: integrity ok, schema version {version} (current){}",
                if existed { "" } else { ", created empty" }
            ),
        );
    }
    Some(store)
}

fn check_bitpay(
    report: &mut Report,
    config: &Config,
    store: Option<&Store>,
    identity: Option<Identity>,
) {
    let settings = &config.bitpay;
    let env = settings.environment;
    let host = url::Url::parse(&settings.api_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let mismatch = match env {
        Environment::Production => host == "test.bitpay.com",
        Environment::Test => host == "bitpay.com" || host == "www.bitpay.com",
    };
    if mismatch {
        report.fail(
            "bitpay.environment",
            format!(
                "environment = \"{}\" but api_url = {} is the other environment",
                env.as_str(),
                settings.api_url
            ),
            format!(
                "remove bitpay.api_url from {} (the environment sets it) or make them agree",
                config.path.display()
            ),
        );
    } else {
        report.ok(
            "bitpay.environment",
            format!("{} ({})", env.as_str(), settings.api_url),
        );
    }

    check_confirmations(report, settings);
    // Splynx's API has no system-currency field (reference §2.5): the admin compares.
    report.warn(
        "bitpay.currency",
        format!(
            "BitPay invoices are in {}; Splynx's API does not report its system currency, so they cannot be compared here",
            settings.currency
        ),
        Some(format!(
            "check by hand that Config → Main → Localization → Finance format → Currency in Splynx is {} (payments are recorded in it); otherwise set bitpay.currency in {}",
            settings.currency,
            config.path.display()
        )),
    );

    let client = BitPayClient::new(settings, None);
    if let Err(e) = client.probe() {
        report.fail_temporary(
            "bitpay.reachable",
            e.to_string(),
            format!(
                "check that this server reaches {} (DNS, firewall, outgoing HTTPS proxy); `bitpay.api_url` overrides the address",
                settings.api_url
            ),
        );
        report.skip("bitpay.token", "needs BitPay to be reachable");
        return;
    }
    report.ok("bitpay.reachable", format!("{} answers", settings.api_url));

    let Some(store) = store else {
        report.skip("bitpay.token", "needs the database");
        return;
    };
    let Some(identity) = identity else {
        report.skip("bitpay.token", "needs the BitPay key (see `key`)");
        return;
    };
    check_token(report, config, store, identity);
}

fn check_confirmations(report: &mut Report, settings: &crate::config::BitPaySettings) {
    let credit_on = match settings.credit_on {
        CreditOn::Confirmed => "confirmed",
        CreditOn::Complete => "complete",
    };
    if settings.allow_zero_confirmation {
        report.warn(
            "bitpay.confirmations",
            format!(
                "transaction_speed = \"{}\", credit_on = \"{credit_on}\" with allow_zero_confirmation = true: customers are credited before any block includes their payment, so a double-spend is credited and later shows as \"reversed after credit\"",
                settings.transaction_speed
            ),
            Some("use transaction_speed = \"medium\" (one confirmation) or credit_on = \"complete\", and remove allow_zero_confirmation".into()),
        );
    } else {
        report.ok(
            "bitpay.confirmations",
            format!(
                "transaction_speed = \"{}\", credit on {credit_on}",
                settings.transaction_speed
            ),
        );
    }
}

/// Records held for the admin, and payments whose outcome is not known yet.
fn check_held(report: &mut Report, store: &Store) {
    let counts = match store.settlement_counts() {
        Ok(counts) => counts,
        Err(e) => return report.fail("invoices.held", e.to_string(), "see the `database` check"),
    };
    let count = |state: &str| {
        counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n)
    };
    let (review, reversed, sent) = (count("review"), count("reversed"), count("sent"));
    let duplicates = store.duplicate_count().unwrap_or(0);
    if review + reversed + sent == 0 {
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

fn check_token(report: &mut Report, config: &Config, store: &Store, identity: Identity) {
    let env = config.bitpay.environment.as_str();
    let other = match config.bitpay.environment {
        Environment::Test => "production",
        Environment::Production => "test",
    };
    let owner = owner_of(&config.data_dir);
    let dashboard = format!("{}/dashboard/merchant/api-tokens", config.bitpay.api_url);
    let pair_fix = format!(
        "pair with a code from the {env} BitPay dashboard ({dashboard}): sudo -u {owner} splynx-bitpay pair CODE"
    );
    let tokens = match store.tokens(env) {
        Ok(tokens) => tokens,
        Err(e) => {
            report.fail("bitpay.token", e.to_string(), "see the `database` check");
            return;
        }
    };
    if tokens.is_empty() {
        let elsewhere = store.tokens(other).unwrap_or_default();
        if elsewhere.is_empty() {
            report.fail(
                "bitpay.token",
                format!("not paired yet (no token for the {env} environment)"),
                pair_fix,
            );
        } else {
            report.fail(
                "bitpay.token",
                format!("the token was paired on {other} but environment = {env}: it does not work there"),
                format!(
                    "{pair_fix}; or, if {other} is right, set bitpay.environment = \"{other}\" in {}",
                    config.path.display()
                ),
            );
        }
        return;
    }
    let sin = identity.sin();
    let client = BitPayClient::new(&config.bitpay, Some(identity));
    let active = match client.active_tokens() {
        Ok(active) => active,
        Err(e) if e.is_authorization() => Vec::new(),
        Err(e) => {
            let temporary = e.is_temporary();
            report.fail(
                "bitpay.token",
                format!("cannot list the tokens: {e}"),
                "run doctor again later; if it persists, check `bitpay.reachable`",
            );
            if let Some(last) = report.checks.last_mut() {
                last.temporary = temporary;
            }
            return;
        }
    };
    let is_active = |facade: &str, token: &str| {
        active
            .iter()
            .any(|(f, t)| f == facade && t.as_str() == token)
    };
    let live: Vec<&str> = tokens
        .iter()
        .filter(|t| is_active(&t.facade, t.token.expose()))
        .map(|t| t.facade.as_str())
        .collect();
    if !live.is_empty() {
        report.ok(
            "bitpay.token",
            format!(
                "{} token active at BitPay ({env}, SIN {sin})",
                live.join(", ")
            ),
        );
        return;
    }
    if let Some(pending) = tokens.iter().find(|t| !t.approved) {
        report.fail(
            "bitpay.token",
            format!(
                "the {} token is waiting for approval (pairing code {})",
                pending.facade,
                pending.pairing_code.as_deref().unwrap_or("?")
            ),
            format!("approve the code at {dashboard}, or {pair_fix}"),
        );
        return;
    }
    let facades: Vec<&str> = tokens.iter().map(|t| t.facade.as_str()).collect();
    report.fail(
        "bitpay.token",
        format!(
            "BitPay at {} ({env}) does not accept the stored {} token for SIN {sin}: it was revoked, or it belongs to the {other} environment",
            config.bitpay.api_url,
            facades.join(", ")
        ),
        format!("`splynx-bitpay unpair`, then {pair_fix}"),
    );
}

fn check_splynx(report: &mut Report, config: &Config, store: Option<&Store>) {
    let ids = || {
        CHECKS
            .iter()
            .copied()
            .filter(|id| id.starts_with("splynx."))
    };
    let Some(store) = store else {
        for id in ids() {
            report.skip(id, "needs a usable data directory and database");
        }
        return;
    };
    let client = SplynxClient::new(&config.splynx, &config.data_dir, store);
    let api = &config.splynx.api_url;
    let key_fix = || {
        format!(
            "check splynx.api_key and splynx.api_secret in {}; the key must be enabled in Administration → API keys, with this server's IP in its allowed list",
            config.path.display()
        )
    };
    match client.check() {
        Ok(_) => report.ok("splynx.api", format!("{api}: API key accepted")),
        Err(e) => {
            match e.cause() {
                SplynxError::Unauthorized { .. } => {
                    report.fail("splynx.api", e.to_string(), key_fix())
                }
                e if e.is_temporary() => report.fail_temporary(
                    "splynx.api",
                    e.to_string(),
                    format!(
                        "check that this server reaches {api} (splynx.api_url, DNS, firewall); run doctor again when Splynx is up"
                    ),
                ),
                _ => report.fail(
                    "splynx.api",
                    e.to_string(),
                    format!("check splynx.url / splynx.api_url in {}", config.path.display()),
                ),
            }
            for id in ids().skip(1) {
                report.skip(id, "needs the Splynx API");
            }
            return;
        }
    }

    let grant = |what: &str| {
        format!("in Splynx, Administration → API keys → this key → Permissions: allow {what}")
    };
    let readable = [
        (
            "splynx.customers",
            "admin/customers/customer",
            "customers",
            "Customers → Customer (index, view)",
        ),
        (
            "splynx.invoices",
            "admin/finance/invoices",
            "invoices",
            "Finance → Invoices (index, view)",
        ),
        (
            "splynx.proformas",
            "admin/finance/proforma-invoices",
            "proforma invoices",
            "Finance → Proforma invoices (index, view)",
        ),
    ];
    for (id, path, what, permission) in readable {
        let result = client
            .probe_list(path, what)
            .map_err(|e| (format!("list {what}"), e))
            .and_then(|first| {
                let row_id = first.as_ref().and_then(|row| row.get("id")).and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                });
                match row_id {
                    Some(row_id) => client
                        .probe_view(path, row_id, what)
                        .map(|_| true)
                        .map_err(|e| (format!("read {what}"), e)),
                    None => Ok(false),
                }
            });
        match result {
            Ok(true) => report.ok(id, format!("may list and read {what}")),
            Ok(false) => report.ok(id, format!("may list {what} (none yet to read)")),
            Err((action, e)) => {
                splynx_failure(report, id, &action, e, &grant(permission), &key_fix())
            }
        }
    }

    let payments = client
        .probe_list("admin/finance/payments", "payments")
        .map_err(|e| ("list payments".to_string(), e))
        .and_then(|_| {
            client
                .probe_payment_add()
                .map_err(|e| ("add payments".to_string(), e))
        });
    match payments {
        Ok(422) => report.ok(
            "splynx.payments",
            "may list and add payments (probed with an empty payment, which Splynx refused as invalid)",
        ),
        Ok(status) => report.warn(
            "splynx.payments",
            format!("Splynx answered HTTP {status} to an empty payment instead of refusing it"),
            Some("look for an empty payment in Splynx (Finance → Payments) and delete it".into()),
        ),
        Err((action, e)) => splynx_failure(
            report,
            "splynx.payments",
            &action,
            e,
            &grant("Finance → Payments (index, add)"),
            &key_fix(),
        ),
    }

    let wanted = config.splynx.payment_method_id;
    match client.payment_methods() {
        Ok(methods) => match methods.iter().find(|m| m.id == wanted) {
            Some(m) if m.active() => report.ok(
                "splynx.payment_method",
                format!(
                    "payment method {wanted} \"{}\" exists and is active",
                    m.name
                ),
            ),
            Some(m) => report.fail(
                "splynx.payment_method",
                format!("payment method {wanted} \"{}\" is disabled", m.name),
                "enable it in Splynx: Config → Finance → Payment methods",
            ),
            None => {
                let known: Vec<String> = methods
                    .iter()
                    .filter(|m| m.active())
                    .map(|m| format!("{} \"{}\"", m.id, m.name))
                    .collect();
                report.fail(
                    "splynx.payment_method",
                    format!(
                        "payment method {wanted} does not exist (active ones: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                    format!(
                        "create a \"BitPay\" method in Config → Finance → Payment methods, then set splynx.payment_method_id to its id in {}",
                        config.path.display()
                    ),
                );
            }
        },
        Err(e) => splynx_failure(
            report,
            "splynx.payment_method",
            "list payment methods",
            e,
            &grant("Finance → Payment methods (index)"),
            &key_fix(),
        ),
    }
}

/// `action` is what the probe tried ("list customers"), for a 403's message.
fn splynx_failure(
    report: &mut Report,
    id: &'static str,
    action: &str,
    e: SplynxError,
    grant: &str,
    key_fix: &str,
) {
    match e.cause() {
        SplynxError::Forbidden { message, .. } => report.fail(
            id,
            format!("the API key may not {action} (Splynx: {message})"),
            grant,
        ),
        SplynxError::Unauthorized { .. } => report.fail(id, e.to_string(), key_fix),
        e if e.is_temporary() => {
            report.fail_temporary(id, e.to_string(), "run doctor again when Splynx answers")
        }
        _ => report.fail(id, format!("cannot {action}: {e}"), grant),
    }
}

fn check_last_webhook(report: &mut Report, store: &Store) {
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

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// BitPay must reach `notification_url`: the IPN endpoint answers 400 to an empty POST.
fn check_webhook_url(report: &mut Report, config: &Config) {
    let url = &config.bitpay.notification_url;
    let production = config.bitpay.environment == Environment::Production;
    let https = url.starts_with("https://");
    let nginx_fix = "install the nginx snippet (/etc/nginx/sites-available/splynx-bitpay.addons, included by the Splynx vhost) and the link /var/www/splynx/web/bitpay, then reload nginx";
    let http = crate::http::client(config.bitpay.timeout);
    let reply = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(Vec::new())
        .send();
    let response = match reply {
        Ok(response) => response,
        Err(e) => {
            report.fail(
                "webhook.url",
                format!("POST {url}: {}", describe_transport(&e)),
                format!("BitPay must reach this URL from the internet: check DNS, the firewall (port 443) and the HTTPS certificate; {nginx_fix}; or set bitpay.notification_url in {}. (This check runs on this server: if it cannot reach its own public name, try from outside: curl -X POST {url})", config.path.display()),
            );
            return;
        }
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match status {
        400 if !https && production => report.fail(
            "webhook.url",
            format!("{url} answers, but BitPay only sends webhooks to HTTPS URLs"),
            format!("serve Splynx over HTTPS and set bitpay.notification_url (or splynx.url) to the https:// address in {}", config.path.display()),
        ),
        400 if !https => report.warn(
            "webhook.url",
            format!("{url} answers 400 to an empty POST (the IPN endpoint is up), but it is not HTTPS"),
            Some("BitPay requires HTTPS for webhooks: use an https:// URL before going to production".into()),
        ),
        400 => report.ok(
            "webhook.url",
            format!("{url} answers 400 to an empty POST: the IPN endpoint is up"),
        ),
        300..=399 => report.fail(
            "webhook.url",
            format!(
                "{url} redirects (HTTP {status}{}); BitPay does not follow redirects",
                location.map(|l| format!(" to {l}")).unwrap_or_default()
            ),
            format!("set bitpay.notification_url in {} to the final URL", config.path.display()),
        ),
        404 => report.fail(
            "webhook.url",
            format!("{url} answers 404: the add-on is not served there"),
            nginx_fix,
        ),
        500..=599 => report.fail(
            "webhook.url",
            format!("{url} answers HTTP {status} to an empty POST (expected 400)"),
            "the IPN shim reached but failed: check the PHP-FPM and nginx error logs, and that the web server user can run /usr/bin/splynx-bitpay with this config (sudo -u www-data splynx-bitpay status)",
        ),
        _ => report.fail(
            "webhook.url",
            format!("{url} answers HTTP {status} to an empty POST, not 400: something else than the IPN endpoint answers there"),
            format!("{nginx_fix}; or set bitpay.notification_url in {}", config.path.display()),
        ),
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no reply before the timeout".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    }
}

// ---- users and groups, from /proc and /etc (no libc needed) ----

#[derive(Debug, Clone)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

/// This process's effective user id.
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn account(uid: u32) -> Option<Account> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let account = Account {
            name: fields.first()?.to_string(),
            uid: fields.get(2)?.parse().ok()?,
            gid: fields.get(3)?.parse().ok()?,
        };
        (account.uid == uid).then_some(account)
    })
}

fn user_name(uid: u32) -> String {
    account(uid)
        .map(|a| a.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn owner_of(dir: &Path) -> String {
    fs::metadata(dir)
        .ok()
        .filter(|m| m.uid() != 0)
        .map(|m| user_name(m.uid()))
        .unwrap_or_else(|| WEB_USER.to_string())
}

fn group_name(gid: u32) -> String {
    fs::read_to_string("/etc/group")
        .ok()
        .and_then(|groups| {
            groups.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2)?.parse::<u32>().ok()? == gid).then(|| fields[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("gid {gid}"))
}

/// The primary group of `uid` and the groups that list it as a member.
fn groups_of(uid: u32) -> Vec<u32> {
    let Some(account) = account(uid) else {
        return Vec::new();
    };
    let mut gids = vec![account.gid];
    if let Ok(groups) = fs::read_to_string("/etc/group") {
        for line in groups.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            let member = fields
                .get(3)
                .is_some_and(|m| m.split(',').any(|n| n == account.name));
            if let (true, Some(Ok(gid))) = (member, fields.get(2).map(|g| g.parse())) {
                gids.push(gid);
            }
        }
    }
    gids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_follows_the_worst_failure() {
        let mut report = Report::default();
        report.ok("a", "fine");
        report.warn("b", "hmm", None);
        assert!(report.verdict().is_ok());
        report.fail_temporary("c", "down", "wait");
        assert!(matches!(report.verdict(), Err(Problem::Temporary(_))));
        report.fail("d", "broken", "fix it");
        let Err(Problem::Setup(message)) = report.verdict() else {
            panic!("a setup failure wins");
        };
        assert_eq!(message, "2 of 4 checks failed (c, d)");
    }

    #[test]
    fn one_line_per_check_with_its_fix() {
        let mut report = Report::default();
        report.ok("config", "valid");
        report.fail("key", "missing", "pair");
        let text = report.human("header");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].starts_with("FAIL  key") && lines[2].ends_with("→ fix: pair"));
        assert!(lines[3].starts_with("1 of 2 checks failed"));
        let json = report.json(Path::new("/c"), Some("test"), "root");
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["fix"], "pair");
        assert_eq!(json["summary"]["fail"], 1);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
    }
}
