//! `doctor`: checks the installation, one line per check, every failure with its fix.
//!
//! It runs before a `Context` is opened, because opening one would create the data
//! directory and the database, and a broken config is one of the things it reports.
//! Run as root while the data directory belongs to another user (the web server user),
//! it runs itself again as that user: files created by root in the data directory would
//! lock the web server out, and what matters is what that user can do.
//!
//! One file per job: `report` (the model and its rendering), `owner` (who owns what, and
//! re-running as the data directory's owner), `local` (config, files, key, database,
//! journal), `remote` (BitPay and Splynx probes), `webhook` (the public webhook URL).

mod btcpay;
mod local;
mod owner;
mod remote;
mod report;
mod webhook;

use std::path::Path;

use anyhow::Result;

use crate::config::{Config, ServerKind};
use crate::output::Output;

use local::*;
use owner::*;
use remote::*;
use webhook::*;

pub use report::{Check, Failed, Report, Status};

/// What `doctor` came to.
#[derive(Debug)]
pub enum Verdict {
    /// Run again as the data directory's owner, which exited with this status.
    RanAs(u8),
    /// Checked here: every failure, if any.
    Checked(std::result::Result<(), Failed>),
}

/// Every check, in the order they run (stable ids for `--json`).
pub const CHECKS: [&str; 22] = [
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
    "bitpay.refunds",
    "splynx.api",
    "splynx.customers",
    "splynx.invoices",
    "splynx.proformas",
    "splynx.payments",
    "splynx.payment_method",
    "splynx.statements",
    "splynx.fee",
    "webhook.last",
    "invoices.held",
    "webhook.url",
];

/// Who runs the add-on when the data directory does not say (Debian's web server user).
const WEB_USER: &str = "www-data";

pub fn run(config_path: &Path, output: Output) -> Result<Verdict> {
    let me = effective_uid();
    if me == Some(0) {
        if let Some(code) = rerun_as_data_owner(config_path, output)? {
            return Ok(Verdict::RanAs(code));
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
    output.show(&report.view(header, config_path, environment, &user));
    // The report's last line is the verdict: said once, not again on stderr.
    Ok(Verdict::Checked(report.verdict()))
}

/// The Splynx checks need a place for the nonce, the access token and the request locks;
/// without a usable data directory they get a private scratch directory and an in-memory
/// store, so a broken data directory does not hide a second problem at Splynx.
fn check_splynx_without_data_dir(report: &mut Report, config: &Config) {
    use std::os::unix::fs::DirBuilderExt;
    let scratch = std::env::temp_dir().join(format!("splynx-bitpay-doctor.{}", std::process::id()));
    let made = std::fs::DirBuilder::new().mode(0o700).create(&scratch);
    match (made, crate::store::Store::open_in_memory()) {
        (Ok(()), Ok(store)) => check_splynx(report, config, &store.locking_in(&scratch)),
        (made, _) => skip_splynx(
            report,
            &format!(
                "no scratch directory for the API checks ({})",
                made.err()
                    .map_or("in-memory store".into(), |e| e.to_string())
            ),
        ),
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

pub(super) fn check_everything(report: &mut Report, config: &Config, me: Option<u32>) {
    let usable_data_dir = check_data_dir(report, config, me);
    // Without a database yet the API checks' locks and tokens go to a scratch directory:
    // doctor creates nothing in the data directory.
    let has_database = config.database_path().exists();
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
    match config.server {
        ServerKind::BitPay => {
            check_bitpay(report, config, store.as_ref(), identity);
            match &store {
                Some(store) => check_refund_token(report, config, store),
                None => report.skip("bitpay.refunds", "needs the database"),
            }
        }
        ServerKind::Btcpay => btcpay::check_btcpay(report, config, store.as_ref()),
    }
    match store.as_ref().filter(|_| usable_data_dir && has_database) {
        Some(store) => check_splynx(report, config, store),
        None => check_splynx_without_data_dir(report, config),
    }
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
