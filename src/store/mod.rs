//! The state store: one SQLite file in `data_dir` (WAL, busy timeout, foreign keys).
//!
//! This file opens and migrates it; one file per job beside it: `records` (what it
//! keeps), `tokens` (BitPay tokens, the Splynx nonce and access token), `invoices` (their
//! settlement states), `journal` (journal, findings, settings, unknown ids, retention),
//! `queries` (the hot queries and their plans), `migrations` (the schema).

mod bookings;
mod invoices;
mod journal;
mod migrations;
mod queries;
mod records;
mod refunds;
mod tokens;

pub use bookings::{Booking, BookingKind, BookingState};
pub use records::*;
pub use refunds::NewRefund;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, TransactionBehavior};

use crate::secret::Secret;
use crate::splynx::StateError;

pub use migrations::MIGRATIONS;

/// Bytes a checkpointed WAL is truncated to (16 MiB).
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;
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

impl crate::exit::Failing for StoreError {
    /// Busy or out of room: retry later; a newer schema or an unreadable file: the admin.
    fn exit_code(&self) -> crate::exit::ExitCode {
        use crate::exit::ExitCode;
        match self {
            e if e.is_busy() || e.is_storage_unavailable() => ExitCode::Temporary,
            StoreError::TooNew { .. } | StoreError::Open { .. } => ExitCode::Config,
            _ => ExitCode::Failure,
        }
    }
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
    /// Where the cross-process locks of those sharing this store live (`None`: an
    /// in-memory store, which no other process shares).
    locks_dir: Option<PathBuf>,
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

    fn hold(
        &self,
        name: &str,
        what: &str,
        wait: Duration,
    ) -> std::result::Result<crate::splynx::Held, StateError> {
        let Some(dir) = &self.locks_dir else {
            return Ok(Box::new(()));
        };
        match crate::lock::acquire(dir, name, what, wait) {
            Ok(held) => Ok(Box::new(held)),
            Err(e) => Err(StateError {
                temporary: matches!(e, crate::lock::LockError::Busy { .. }),
                message: e.to_string(),
            }),
        }
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
        Ok(Store::configure(conn, &shown)?.locking_in(data_dir))
    }

    /// The same store, its processes' locks kept in `dir`.
    pub fn locking_in(self, dir: &Path) -> Store {
        Store {
            locks_dir: Some(dir.to_path_buf()),
            ..self
        }
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
        // Durability: WAL with synchronous=NORMAL never syncs a commit. A one-shot command
        // also does not checkpoint when it exits (copying its pages into the database and
        // syncing it twice, then deleting the WAL that the next process creates and syncs
        // again): SQLite's automatic checkpoint (every 1,000 pages) and the OS write-back do
        // that. A power loss can roll the store back by the last seconds of commits, never
        // corrupt it; every path recovers from that (a payment is looked up in Splynx before
        // one is made, a lost invoice record is rebuilt from BitPay by guid or order id).
        // What an admin does by hand is made durable at once (`make_durable`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(open_error)?;
        // A WAL that grew during a long reconcile is cut back after its checkpoint.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        migrate(&mut conn, shown)?;
        Ok(Store {
            conn,
            locks_dir: None,
        })
    }

    /// Checkpoints the WAL now, syncing it and the database: what was committed survives a
    /// power loss (for what an admin does by hand: pairing, resolving).
    pub fn make_durable(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
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
mod tests;
