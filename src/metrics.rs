//! The add-on's state as Prometheus metrics: `metrics` prints them, and `reconcile` writes
//! them to `[metrics] textfile` for node exporter's textfile collector. Times are Unix
//! timestamps (`_timestamp_seconds`), never ages: Prometheus subtracts them from `time()`
//! itself, so a file that stopped being rewritten still tells the truth.
//!
//! `snapshot` reads the state store (and nothing remote: a scrape never waits for BitPay);
//! `render` is pure.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde::{Deserialize, Serialize};

use crate::audit::render::AuditSummary;
use crate::config::ServerKind;
use crate::context::Context;
use crate::store::{Store, StoreError};

/// What the last `reconcile` did (kept in the `meta` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRun {
    /// When it ended, Unix milliseconds.
    pub at_ms: i64,
    pub duration_ms: i64,
    /// Invoices it could not check or settle, plus one when the run itself failed.
    pub errors: u64,
    /// Its exit status (0: it finished).
    pub exit: u8,
    /// The server refused our credentials (for an invoice, or the whole run).
    pub credentials_refused: bool,
}

const LAST_RECONCILE: &str = "reconcile.last";
const LAST_RECONCILE_OK: &str = "reconcile.last_success";

impl ReconcileRun {
    /// Keeps this run (and, when it finished without errors, its time as the last success).
    pub fn record(&self, store: &Store) -> Result<(), StoreError> {
        let text = serde_json::to_string(self).expect("a run serializes");
        store.set_meta(LAST_RECONCILE, &text)?;
        if self.exit == 0 && self.errors == 0 {
            store.set_meta(LAST_RECONCILE_OK, &self.at_ms.to_string())?;
        }
        Ok(())
    }
}

/// Records the run and rewrites `[metrics] textfile`; a failure here is logged, never
/// the run's: the money was settled either way.
pub fn keep(ctx: &Context, run: &ReconcileRun) {
    if let Err(e) = run.record(&ctx.store) {
        log::warn!("could not record this reconcile for the metrics: {e}");
        return;
    }
    let Some(path) = &ctx.config.metrics_textfile else {
        return;
    };
    let written = snapshot(ctx).map(|s| render(&s)).and_then(|text| {
        write_textfile(path, &text).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    });
    if let Err(e) = written {
        log::warn!("metrics file not written: {}", crate::errors::message(&e));
    }
}

/// Everything the metrics say, read from the state store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Invoices by settlement state.
    pub invoices: Vec<(String, i64)>,
    pub refunds: Vec<(String, i64)>,
    /// Records held for the admin, by kind.
    pub held: Vec<(&'static str, i64)>,
    pub bookings_waiting: i64,
    pub findings_unreported: i64,
    pub oldest_unsettled_ms: Option<i64>,
    pub last_webhook_ms: Option<i64>,
    pub last_reconcile: Option<ReconcileRun>,
    pub last_reconcile_success_ms: Option<i64>,
    /// A credential is stored and the server did not refuse it at the last reconcile.
    pub credentials_valid: bool,
    pub last_audit: Option<AuditSummary>,
}

pub fn snapshot(ctx: &Context) -> anyhow::Result<Snapshot> {
    let store = &ctx.store;
    let held = store.held_counts()?;
    let last_reconcile: Option<ReconcileRun> = store
        .meta(LAST_RECONCILE)?
        .and_then(|text| serde_json::from_str(&text).ok());
    let stored = match ctx.config.server {
        ServerKind::BitPay => store
            .tokens(ctx.config.invoice_environment())?
            .iter()
            .any(|t| t.approved),
        ServerKind::Btcpay => {
            ctx.config.btcpay.api_key.is_some()
                || crate::gateway::stored_btcpay(ctx, crate::gateway::API_KEY)?.is_some()
        }
    };
    let refused = last_reconcile.is_some_and(|r| r.credentials_refused);
    Ok(Snapshot {
        invoices: store.settlement_counts()?,
        refunds: store.refund_counts()?,
        held: vec![
            ("review", held.review),
            ("reversed_after_credit", held.reversed),
            ("duplicates", held.duplicates),
            ("payment_outcome_unknown", held.sent),
        ],
        bookings_waiting: store.open_bookings()?.0,
        findings_unreported: store.unreported_findings()?.len() as i64,
        oldest_unsettled_ms: store.oldest_unsettled(1)?.first().map(|r| r.created_at),
        last_webhook_ms: store.last_webhook_time()?,
        last_reconcile,
        last_reconcile_success_ms: store
            .meta(LAST_RECONCILE_OK)?
            .and_then(|text| text.parse().ok()),
        credentials_valid: stored && !refused,
        last_audit: AuditSummary::recorded(store)?,
    })
}

/// The same state for `status --json` (Zabbix and other pollers): times as Unix seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub credentials_valid: bool,
    pub held_records: std::collections::BTreeMap<&'static str, i64>,
    pub bookings_waiting: i64,
    pub findings_unreported: i64,
    pub oldest_unsettled_invoice_created_timestamp: Option<i64>,
    pub last_webhook_timestamp: Option<i64>,
    pub reconcile_last_run_timestamp: Option<i64>,
    pub reconcile_last_success_timestamp: Option<i64>,
    pub reconcile_duration_seconds: Option<f64>,
    pub reconcile_errors: Option<u64>,
    pub reconcile_exit_status: Option<u8>,
    pub audit_differences: Option<usize>,
}

impl Snapshot {
    pub fn health(&self) -> Health {
        let seconds = |ms: Option<i64>| ms.map(|ms| ms.div_euclid(1000));
        let run = self.last_reconcile;
        Health {
            credentials_valid: self.credentials_valid,
            held_records: self.held.iter().copied().collect(),
            bookings_waiting: self.bookings_waiting,
            findings_unreported: self.findings_unreported,
            oldest_unsettled_invoice_created_timestamp: seconds(self.oldest_unsettled_ms),
            last_webhook_timestamp: seconds(self.last_webhook_ms),
            reconcile_last_run_timestamp: seconds(run.map(|r| r.at_ms)),
            reconcile_last_success_timestamp: seconds(self.last_reconcile_success_ms),
            reconcile_duration_seconds: run.map(|r| r.duration_ms as f64 / 1000.0),
            reconcile_errors: run.map(|r| r.errors),
            reconcile_exit_status: run.map(|r| r.exit),
            audit_differences: self.last_audit.as_ref().map(|a| a.differences),
        }
    }
}

type Labels = Vec<(String, String)>;

/// A gauge family with one label.
fn family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (String, i64)>,
) {
    let family = Family::<Labels, Gauge>::default();
    for (value, n) in values {
        family
            .get_or_create(&vec![(label.to_string(), value)])
            .set(n);
    }
    registry.register(name, help, family);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge = Gauge::<i64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// A Unix time in seconds (`name` gets `_timestamp_seconds`); absent when it never happened.
fn timestamp(registry: &mut Registry, name: &str, help: &str, ms: Option<i64>) {
    if let Some(ms) = ms {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(ms as f64 / 1000.0);
        registry.register_with_unit(format!("{name}_timestamp"), help, Unit::Seconds, gauge);
    }
}

/// The Prometheus text exposition of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut registry = Registry::with_prefix("splynx_bitpay");
    let r = &mut registry;
    family(
        r,
        "invoices",
        "Invoices by settlement state",
        "state",
        snapshot.invoices.iter().cloned(),
    );
    family(
        r,
        "refunds",
        "Refunds by state",
        "state",
        snapshot.refunds.iter().cloned(),
    );
    family(
        r,
        "held_records",
        "Records held for the admin, by kind (resolve them on the admin page)",
        "kind",
        snapshot.held.iter().map(|(k, n)| (k.to_string(), *n)),
    );
    gauge(
        r,
        "bookings_waiting",
        "Payment statement records and fee transactions not booked yet",
        snapshot.bookings_waiting,
    );
    gauge(
        r,
        "findings_unreported",
        "Findings no reconcile has reported yet",
        snapshot.findings_unreported,
    );
    gauge(
        r,
        "credentials_valid",
        "1 when the payment server's credential is stored and the last reconcile was not refused (credentials or configuration)",
        i64::from(snapshot.credentials_valid),
    );
    timestamp(
        r,
        "oldest_unsettled_invoice_created",
        "When the oldest unsettled invoice was created",
        snapshot.oldest_unsettled_ms,
    );
    timestamp(
        r,
        "last_webhook",
        "When the last webhook arrived",
        snapshot.last_webhook_ms,
    );
    timestamp(
        r,
        "reconcile_last_success",
        "When the last reconcile finished without errors",
        snapshot.last_reconcile_success_ms,
    );
    if let Some(run) = snapshot.last_reconcile {
        timestamp(
            r,
            "reconcile_last_run",
            "When the last reconcile ended",
            Some(run.at_ms),
        );
        let duration = Gauge::<f64, AtomicU64>::default();
        duration.set(run.duration_ms as f64 / 1000.0);
        r.register_with_unit(
            "reconcile_duration",
            "How long the last reconcile took",
            Unit::Seconds,
            duration,
        );
        gauge(
            r,
            "reconcile_errors",
            "Errors of the last reconcile (invoices it could not settle, plus one when it failed)",
            run.errors as i64,
        );
        gauge(
            r,
            "reconcile_exit_status",
            "Exit status of the last reconcile (0 finished, 75 temporary, 78 configuration or credentials)",
            i64::from(run.exit),
        );
    }
    if let Some(audit) = &snapshot.last_audit {
        timestamp(
            r,
            "audit_last_run",
            "When the last recorded audit ran",
            Some(audit.at_ms),
        );
        gauge(
            r,
            "audit_differences",
            "Differences the last recorded audit found",
            audit.differences as i64,
        );
        family(
            r,
            "audit_differences_by_kind",
            "Differences the last recorded audit found, by kind",
            "kind",
            audit.by_kind.iter().map(|(k, n)| (k.clone(), *n as i64)),
        );
    }
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

/// Replaces `path` with `text` whole: written beside it, flushed, then renamed over it, so
/// the collector never reads half a file.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".splynx_bitpay.")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_named_labelled_and_times_are_timestamps() {
        let snapshot = Snapshot {
            invoices: vec![("credited".into(), 3), ("open".into(), 1)],
            held: vec![("review", 1), ("duplicates", 0)],
            last_webhook_ms: Some(1_764_000_000_500),
            last_reconcile: Some(ReconcileRun {
                at_ms: 1_764_000_100_000,
                duration_ms: 1500,
                errors: 2,
                exit: 75,
                credentials_refused: false,
            }),
            credentials_valid: true,
            ..Snapshot::default()
        };
        let text = render(&snapshot);
        for line in [
            "splynx_bitpay_invoices{state=\"credited\"} 3",
            "splynx_bitpay_invoices{state=\"open\"} 1",
            "splynx_bitpay_held_records{kind=\"review\"} 1",
            "splynx_bitpay_last_webhook_timestamp_seconds 1764000000.5",
            "splynx_bitpay_reconcile_duration_seconds 1.5",
            "splynx_bitpay_reconcile_errors 2",
            "splynx_bitpay_reconcile_exit_status 75",
            "splynx_bitpay_credentials_valid 1",
            "# TYPE splynx_bitpay_invoices gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        // Never happened: no sample at all (not a zero that reads as 1970).
        assert!(!text.contains("reconcile_last_success"), "{text}");
        assert!(!text.contains("audit"), "{text}");
    }
}
