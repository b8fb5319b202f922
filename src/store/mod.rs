//! The state store: one SQLite file in `data_dir` (WAL, busy timeout, foreign keys).
//!
//! This file opens and migrates it; one file per job beside it: `records` (what it
//! keeps), `tokens` (BitPay tokens, the Splynx nonce and access token), `invoices` (their
//! settlement states), `journal` (journal, findings, settings, unknown ids, retention),
//! `queries` (the hot queries and their plans), `migrations` (the schema).

mod invoices;
mod journal;
mod migrations;
mod queries;
mod records;
mod tokens;

pub use records::*;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};

use crate::secret::Secret;
use crate::splynx::StateError;

pub use migrations::MIGRATIONS;

/// `meta` key: the last finding a reconcile run reported (each is mailed once).
pub const REPORTED_FINDING: &str = "reconcile.reported_finding";
use migrations::SCRUB_MIGRATION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}{}", storage_hint(source))]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("state database {path} has schema version {found}, newer than this program knows ({known}); upgrade splynx-bitpay")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
}

impl StoreError {
    /// True for "database is locked/busy" (another process held the write lock too long).
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => e.sqlite_error_code(),
            _ => None,
        }
    }

    /// Busy or out of room: retry later; a newer schema or an unreadable file: the admin.
    pub fn exit_code(&self) -> u8 {
        match self {
            e if e.is_busy() || e.is_storage_unavailable() => crate::exit::TEMPORARY,
            StoreError::TooNew { .. } | StoreError::Open { .. } => crate::exit::CONFIG,
            _ => crate::exit::FAILURE,
        }
    }

    /// True when the disk is full or the data directory is read-only: temporary, the admin
    /// fixes it and the next run finishes the job.
    pub fn is_storage_unavailable(&self) -> bool {
        if let StoreError::DataDir { .. } = self {
            return true;
        }
        matches!(
            self.sqlite_code(),
            Some(
                rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::ReadOnly
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::CannotOpen
            )
        )
    }
}

/// Points the admin at the disk when SQLite cannot write.
fn storage_hint(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(
            rusqlite::ErrorCode::DiskFull
            | rusqlite::ErrorCode::ReadOnly
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::SystemIoFailure,
        ) => " (is the data directory full or read-only? check `df` and its mount; the next run finishes the job)",
        Some(rusqlite::ErrorCode::NotADatabase) => {
            " (this file is not a splynx-bitpay database: restore it from a backup, or move it away to start empty)"
        }
        _ => "",
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    conn: Connection,
}

/// SQLite's busy handler. Writers here hold the lock for well under a millisecond, so poll
/// often (0.1 to 3.2 ms) rather than SQLite's default 1 to 100 ms back-off, which makes a
/// storm of webhook processes wait far longer than the writer needs; give up after ~15 s.
fn wait_for_writer(attempt: i32) -> bool {
    if attempt > 4800 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(100 << attempt.clamp(0, 5)));
    true
}

/// The Splynx client's shared nonce counter and access token live here.
impl crate::splynx::SharedState for Store {
    fn next_nonce(&self, api_key: &str, floor: i64) -> std::result::Result<i64, StateError> {
        Store::next_nonce(self, api_key, floor).map_err(StateError::from)
    }

    fn access_token(&self, owner: &str) -> std::result::Result<Option<(Secret, i64)>, StateError> {
        self.splynx_token(owner).map_err(StateError::from)
    }

    fn save_access_token(
        &self,
        owner: &str,
        token: &Secret,
        expires_at: i64,
    ) -> std::result::Result<(), StateError> {
        self.save_splynx_token(owner, token, expires_at)
            .map_err(StateError::from)
    }
}

impl From<StoreError> for StateError {
    fn from(e: StoreError) -> StateError {
        StateError {
            temporary: e.is_busy() || e.is_storage_unavailable(),
            message: e.to_string(),
        }
    }
}

impl Store {
    /// Opens (creating if needed) `state.db` in `data_dir` and applies pending migrations.
    pub fn open(data_dir: &Path) -> Result<Store> {
        if !data_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|source| StoreError::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                })?;
        }
        let path = data_dir.join("state.db");
        let shown = path.display().to_string();
        let open_error = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_error)?;
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
        Store::configure(conn, &shown)
    }

    pub fn open_in_memory() -> Result<Store> {
        Store::configure(Connection::open_in_memory()?, ":memory:")
    }

    fn configure(mut conn: Connection, shown: &str) -> Result<Store> {
        let open_error = |source| StoreError::Open {
            path: shown.to_string(),
            source,
        };
        conn.busy_handler(Some(wait_for_writer))
            .map_err(open_error)?;
        // A file that is not SQLite fails here, with SQLite's "file is not a database".
        // WAL is persistent: switching needs a write lock, so only the first open does it.
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(open_error)?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        migrate(&mut conn, shown)?;
        Ok(Store { conn })
    }

    /// A write transaction over several calls; rolled back unless committed.
    pub fn begin(&self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self.conn.unchecked_transaction()?)
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// Replaces every stored token value, and every `token=` query value, in journal text with
/// "(redacted)".
fn scrub_journal_secrets(conn: &Connection) -> Result<()> {
    let mut known: Vec<String> = conn
        .prepare("SELECT token FROM tokens UNION SELECT token FROM invoices")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    known.retain(|t| t.len() >= 8);
    let mut rows = conn.prepare(
        "SELECT id, summary, detail FROM journal
         WHERE instr(summary, 'token=') > 0 OR instr(detail, 'token=') > 0",
    )?;
    let mut found: Vec<(i64, String, Option<String>)> = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for token in &known {
        let mut with_token = conn.prepare(
            "SELECT id, summary, detail FROM journal
             WHERE instr(summary, ?1) > 0 OR instr(detail, ?1) > 0",
        )?;
        found.extend(
            with_token
                .query_map([token], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
    }
    let scrub = |text: &str| {
        let mut text = crate::secret::redact_token_query(text);
        for token in &known {
            text = text.replace(token.as_str(), "(redacted)");
        }
        text
    };
    for (id, summary, detail) in found {
        conn.execute(
            "UPDATE journal SET summary = ?2, detail = ?3 WHERE id = ?1",
            params![id, scrub(&summary), detail.as_deref().map(scrub)],
        )?;
    }
    Ok(())
}

fn migrate(conn: &mut Connection, shown: &str) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let too_new = |found| StoreError::TooNew {
        path: shown.to_string(),
        found,
        known,
    };
    // The common case, an up-to-date schema, needs no write lock: many processes open the
    // store at once and must not queue behind each other here.
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == known {
        return Ok(());
    }
    if current > known {
        return Err(too_new(current));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > known {
        return Err(too_new(version));
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        if done + 1 == SCRUB_MIGRATION {
            scrub_journal_secrets(&tx)?;
        }
    }
    if version < known {
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitpay::model::Invoice as BitPayInvoice;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    #[test]
    fn migrate_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(store);
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(again.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn refuses_a_newer_schema_and_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.conn.pragma_update(None, "user_version", 999).unwrap();
        drop(store);
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("newer than this program knows"), "{err}");

        let other = tempfile::tempdir().unwrap();
        fs::write(
            other.path().join("state.db"),
            b"this is not sqlite at all, just text....",
        )
        .unwrap();
        let err = Store::open(other.path()).err().unwrap().to_string();
        assert!(err.contains("state.db"), "{err}");
    }

    #[test]
    fn nonces_only_increase() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.next_nonce("k", 100).unwrap(), 100);
        assert_eq!(store.next_nonce("k", 100).unwrap(), 101);
        assert_eq!(
            store.next_nonce("k", 50).unwrap(),
            102,
            "clock went backwards"
        );
        assert_eq!(store.next_nonce("k", 500).unwrap(), 500);
        assert_eq!(store.next_nonce("other", 7).unwrap(), 7);
    }

    fn new_invoice(guid: &str) -> NewInvoice {
        NewInvoice {
            guid: guid.into(),
            environment: "test".into(),
            facade: "pos".into(),
            token: Secret::new("t"),
            doc_kind: DocKind::Invoice,
            doc_id: Some(1),
            doc_number: Some("N1".into()),
            customer_id: 5,
            price: Decimal::from_str("51.61").unwrap(),
            currency: "USD".into(),
            order_id: format!("o-{guid}"),
        }
    }

    #[test]
    fn a_hold_is_recorded_as_a_finding_once() {
        let store = Store::open_in_memory().unwrap();
        let record = store.insert_invoice(&new_invoice("g1"), 1).unwrap();
        store
            .mark_credited(record.id, 9, "paid", Some(100), 2)
            .unwrap();
        let record = store.invoice(record.id).unwrap().unwrap();
        assert!(store
            .hold(&record, HoldKind::Reversed, "invalid", &[], 3)
            .unwrap());
        assert!(!store
            .hold(&record, HoldKind::Reversed, "invalid again", &[], 4)
            .unwrap());
        let held = store.invoice(record.id).unwrap().unwrap();
        assert_eq!(held.settlement, Settlement::Reversed);
        assert_eq!(held.splynx_payment_id, Some(9), "the payment id stays");
        assert_eq!(held.watch_until, None);
        assert_eq!(store.findings_after(0).unwrap().len(), 1);
        // Duplicates on another record: the ids are kept.
        let other = store.insert_invoice(&new_invoice("g2"), 5).unwrap();
        assert!(store
            .hold(&other, HoldKind::Duplicate, "two", &[7, 8], 6)
            .unwrap());
        let other = store.invoice(other.id).unwrap().unwrap();
        assert_eq!(other.duplicate_payment_ids, vec![7, 8]);
        assert_eq!(store.duplicate_count().unwrap(), 1);
        let findings = store.findings_after(1).unwrap();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].kind, "duplicate");
        // Resolved: never held again, never moved by automation.
        assert!(store.resolve(other.id, "done", 7).unwrap());
        assert!(!store.hold(&other, HoldKind::Review, "x", &[], 8).unwrap());
        assert!(!store
            .set_settlement(other.id, Settlement::Expired, None, 9)
            .unwrap());
        assert!(!store.resolve(other.id, "again", 10).unwrap());
    }

    #[test]
    fn migration_5_keeps_rows_and_watches_recent_credits() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..4] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 4).unwrap();
        tx.commit().unwrap();
        for (id, settlement, status) in [
            (1, "credited", "confirmed"),
            (2, "credited", "complete"),
            (3, "open", "new"),
        ] {
            conn.execute(
                "INSERT INTO invoices (id, guid, bitpay_id, environment, facade, token, doc_kind,
                     customer_id, price, currency, order_id, bitpay_status, settlement,
                     splynx_payment_id, created_at, updated_at)
                 VALUES (?1, 'g' || ?1, 'B' || ?1, 'test', 'pos', 't', 'invoice', 5, '1.00',
                     'USD', 'o' || ?1, ?3, ?2, 9, 1000, 2000)",
                params![id, settlement, status],
            )
            .unwrap();
        }
        migrate(&mut conn, "test").unwrap();
        let store = Store { conn };
        let watched = store.invoice(1).unwrap().unwrap();
        assert_eq!(watched.settlement, Settlement::Credited);
        assert_eq!(watched.watch_until, Some(2000 + 7 * 86_400_000));
        assert_eq!(watched.credited_at, Some(2000));
        assert_eq!(store.invoice(2).unwrap().unwrap().watch_until, None);
        assert_eq!(
            store.invoice(3).unwrap().unwrap().settlement,
            Settlement::Open
        );
        assert_eq!(store.watched_invoices(3000).unwrap().len(), 1);
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn migration_6_scrubs_tokens_from_journal_text() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for sql in &MIGRATIONS[..5] {
            tx.execute_batch(sql).unwrap();
        }
        tx.pragma_update(None, "user_version", 5).unwrap();
        tx.commit().unwrap();
        conn.execute(
            "INSERT INTO tokens (environment, facade, token, approved, created_at)
             VALUES ('test', 'pos', 'PosTokenValue12345', 1, 1)",
            [],
        )
        .unwrap();
        for (summary, detail) in [
            (
                "fetch failed: error sending request for url (https://bitpay.com/invoices/X?token=PosTokenValue12345): connection closed",
                None,
            ),
            (
                "fetch failed: error for url (https://bitpay.com/invoices?token=GoneToken999&dateStart=x)",
                Some("PosTokenValue12345 again"),
            ),
            ("received (invoice_confirmed); signature valid", None),
        ] {
            conn.execute(
                "INSERT INTO journal (at, kind, summary, detail) VALUES (1, 'fetch', ?1, ?2)",
                params![summary, detail],
            )
            .unwrap();
        }
        migrate(&mut conn, "test").unwrap();
        let mut stmt = conn
            .prepare("SELECT summary, detail FROM journal ORDER BY id")
            .unwrap();
        let rows: Vec<(String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|row| row.unwrap())
            .collect();
        let all = format!("{rows:?}");
        assert!(!all.contains("PosTokenValue12345"), "{all}");
        assert!(!all.contains("GoneToken999"), "{all}");
        assert!(rows[0].0.contains("token=(redacted)"), "{all}");
        assert!(rows[1].0.contains("token=(redacted)&dateStart=x"), "{all}");
        assert_eq!(rows[2].0, "received (invoice_confirmed); signature valid");
    }

    #[test]
    fn hot_queries_are_served_by_indexes() {
        let store = Store::open_in_memory().unwrap();
        for (name, plan) in store.query_plans().unwrap() {
            let text = plan.join("; ");
            assert!(!text.is_empty(), "{name}: no plan");
            // The oldest entry is the first row in rowid order: a scan that stops at once.
            assert!(
                name == "oldest journal entry" || !text.contains("SCAN journal"),
                "{name} scans the whole journal: {text}"
            );
            // A temporary B-tree sorts what the index found; only fine for a few rows.
            let few_rows = matches!(
                name,
                "oldest unsettled invoices" | "held invoices" | "unsettled invoices"
            );
            assert!(
                few_rows || !text.contains("TEMP B-TREE"),
                "{name} sorts: {text}"
            );
        }
    }

    #[test]
    fn counts_by_state_follow_every_change() {
        let store = Store::open_in_memory().unwrap();
        let a = store.insert_invoice(&new_invoice("a"), 1).unwrap();
        let b = store.insert_invoice(&new_invoice("b"), 1).unwrap();
        store
            .set_settlement(a.id, Settlement::Open, None, 2)
            .unwrap();
        store.mark_credited(a.id, 9, "paid", None, 3).unwrap();
        store
            .set_settlement(b.id, Settlement::Expired, None, 3)
            .unwrap();
        store.insert_invoice(&new_invoice("c"), 4).unwrap();
        store.delete_creating("c").unwrap();
        let counted: Vec<(String, i64)> = store
            .conn
            .prepare(
                "SELECT settlement, count(*) FROM invoices GROUP BY settlement ORDER BY settlement",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(store.settlement_counts().unwrap(), counted);
        assert_eq!(
            counted,
            vec![("credited".to_string(), 1), ("expired".to_string(), 1)]
        );
    }

    #[test]
    fn credited_is_never_undone() {
        let store = Store::open_in_memory().unwrap();
        let record = store.insert_invoice(&new_invoice("g1"), 1).unwrap();
        assert_eq!(record.settlement, Settlement::Creating);
        store
            .mark_created(
                "g1",
                &BitPayInvoice {
                    id: "B1".into(),
                    url: "u".into(),
                    status: "new".into(),
                    expiration_time: Some(10),
                    ..Default::default()
                },
                "created",
                2,
            )
            .unwrap();
        store.mark_credited(record.id, 9, "paid", None, 3).unwrap();
        assert!(!store
            .set_settlement(record.id, Settlement::Expired, None, 4)
            .unwrap());
        let stored = store.invoice_by_bitpay_id("B1").unwrap().unwrap();
        assert_eq!(stored.settlement, Settlement::Credited);
        assert_eq!(stored.order.price.to_string(), "51.61");
        assert_eq!(stored.splynx_payment_id, Some(9));
    }
}
