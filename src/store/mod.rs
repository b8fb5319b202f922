//! The state store: one SQLite file in `data_dir` (WAL, busy timeout, foreign keys).

mod migrations;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use rust_decimal::Decimal;

use crate::bitpay::model::Invoice as BitPayInvoice;
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

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub environment: String,
    pub facade: String,
    pub token: Secret,
    pub approved: bool,
    pub pairing_code: Option<String>,
    pub pairing_expires_at: Option<i64>,
    pub label: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Invoice,
    Proforma,
    Refill,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Invoice => "invoice",
            DocKind::Proforma => "proforma",
            DocKind::Refill => "refill",
        }
    }
}

impl FromStr for DocKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<DocKind, String> {
        match s {
            "invoice" => Ok(DocKind::Invoice),
            "proforma" => Ok(DocKind::Proforma),
            "refill" => Ok(DocKind::Refill),
            other => Err(format!("unknown document kind {other}")),
        }
    }
}

/// Where a stored invoice stands on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Saved before `POST /invoices`; BitPay may or may not have it (recover by guid).
    Creating,
    /// Known to BitPay, not yet paid and confirmed.
    Open,
    /// A Splynx payment is about to be made; finish by looking it up first.
    Crediting,
    /// A payment POST was sent and its outcome is unknown (no reply, 5xx): only looked up
    /// until the grace period has passed, never sent again blindly.
    Sent,
    Credited,
    /// Expired, declined or underpaid at BitPay: nothing to credit.
    Expired,
    /// Needs the admin: mismatch, Splynx refused the payment, duplicates, paid late, ...
    Review,
    /// Invalid, declined or refunded at BitPay after we credited it: held for the admin.
    Reversed,
    /// A held record the admin has dealt with (`splynx-bitpay resolve`).
    Resolved,
}

impl Settlement {
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Creating => "creating",
            Settlement::Open => "open",
            Settlement::Crediting => "crediting",
            Settlement::Sent => "sent",
            Settlement::Credited => "credited",
            Settlement::Expired => "expired",
            Settlement::Review => "review",
            Settlement::Reversed => "reversed",
            Settlement::Resolved => "resolved",
        }
    }

    /// For people: what the state means.
    pub fn describe(self) -> &'static str {
        match self {
            Settlement::Creating => "being created at BitPay",
            Settlement::Open => "waiting for payment",
            Settlement::Crediting => "being credited in Splynx",
            Settlement::Sent => "payment sent to Splynx, outcome unknown",
            Settlement::Credited => "credited",
            Settlement::Expired => "expired, nothing to credit",
            Settlement::Review => "held for review",
            Settlement::Reversed => "reversed after credit",
            Settlement::Resolved => "resolved by the admin",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Settlement::Credited
                | Settlement::Expired
                | Settlement::Review
                | Settlement::Reversed
                | Settlement::Resolved
        )
    }

    /// Held until the admin resolves it.
    pub fn needs_admin(self) -> bool {
        matches!(self, Settlement::Review | Settlement::Reversed)
    }
}

impl FromStr for Settlement {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Settlement, String> {
        Ok(match s {
            "creating" => Settlement::Creating,
            "open" => Settlement::Open,
            "crediting" => Settlement::Crediting,
            "sent" => Settlement::Sent,
            "credited" => Settlement::Credited,
            "expired" => Settlement::Expired,
            "review" => Settlement::Review,
            "reversed" => Settlement::Reversed,
            "resolved" => Settlement::Resolved,
            other => return Err(format!("unknown settlement state {other}")),
        })
    }
}

#[derive(Debug, Clone)]
pub struct InvoiceRecord {
    pub id: i64,
    pub guid: String,
    pub bitpay_id: Option<String>,
    pub environment: String,
    pub facade: String,
    pub token: Secret,
    pub doc_kind: DocKind,
    pub doc_id: Option<i64>,
    pub doc_number: Option<String>,
    pub customer_id: i64,
    pub price: Decimal,
    pub currency: String,
    pub order_id: String,
    pub url: Option<String>,
    pub bitpay_status: String,
    pub exception_status: Option<String>,
    pub settlement: Settlement,
    pub note: Option<String>,
    pub expires_at: Option<i64>,
    pub splynx_payment_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When a payment POST was last sent (cleared when Splynx provably refused it).
    pub payment_sent_at: Option<i64>,
    pub payment_attempts: i64,
    pub credited_at: Option<i64>,
    /// Credited and re-checked by `reconcile` until BitPay says complete, or until then.
    pub watch_until: Option<i64>,
    /// Every Splynx payment found with this receipt number when there was more than one.
    pub duplicate_payment_ids: Vec<i64>,
    /// When BitPay was last asked about it.
    pub fetched_at: Option<i64>,
}

/// A new invoice row, saved before BitPay is asked to create it.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub guid: String,
    pub environment: String,
    pub facade: String,
    pub token: Secret,
    pub doc_kind: DocKind,
    pub doc_id: Option<i64>,
    pub doc_number: Option<String>,
    pub customer_id: i64,
    pub price: Decimal,
    pub currency: String,
    pub order_id: String,
}

#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub id: i64,
    pub at: i64,
    pub bitpay_id: Option<String>,
    pub kind: String,
    pub summary: String,
    pub detail: Option<String>,
}

// The queries every webhook, click, `status`, `show` and the admin page run: named here so
// `query_plans` can show that each is served by an index (see the large-store benchmark).
const BY_BITPAY_ID: &str = "bitpay_id = ?1";
const UNSETTLED_FOR_DOCUMENT: &str = "doc_kind = ?1 AND doc_id IS ?2 AND customer_id = ?3
     AND settlement IN ('creating', 'open', 'crediting', 'sent') ORDER BY id DESC";
const UNSETTLED: &str = "settlement IN ('creating', 'open', 'crediting', 'sent') ORDER BY id";
const OLDEST_UNSETTLED: &str =
    "settlement IN ('creating', 'open', 'crediting', 'sent') ORDER BY id LIMIT ?1";
// `+settlement`: the (small) partial watch index, not the (large) credited rows of the
// settlement index.
const WATCHED: &str = "watch_until > ?1 AND +settlement = 'credited' ORDER BY watch_until";
const HELD: &str = "settlement IN ('review', 'reversed') ORDER BY updated_at DESC LIMIT ?1";
const DUPLICATE_COUNT: &str =
    "SELECT count(*) FROM invoices WHERE settlement IN ('review', 'reversed')
     AND duplicate_payment_ids IS NOT NULL";
// Kept by triggers (migration 8); states nothing is in are left out.
const SETTLEMENT_COUNTS: &str =
    "SELECT settlement, n FROM settlement_counts WHERE n > 0 ORDER BY settlement";
const JOURNAL_FOR: &str = "SELECT id, at, bitpay_id, kind, summary, detail FROM journal
     WHERE bitpay_id = ?1 ORDER BY id";
const RECENT_JOURNAL: &str = "SELECT id, at, bitpay_id, kind, summary, detail FROM journal
     WHERE kind = ?1 ORDER BY id DESC LIMIT ?2";
// Newest first along the (kind, at) index: the first webhook naming an invoice ends it.
const LAST_WEBHOOK: &str = "SELECT at FROM journal WHERE kind = 'webhook' AND bitpay_id IS NOT NULL
     ORDER BY at DESC LIMIT 1";
// The first row is the oldest: ids grow with time (pruning keeps the order).
const OLDEST_JOURNAL: &str = "SELECT at FROM journal ORDER BY id LIMIT 1";
const UNKNOWN_LOOKUP: &str =
    "SELECT at, answer FROM unknown_lookups WHERE bitpay_id = ?1 AND at >= ?2";

const INVOICE_COLUMNS: &str = "id, guid, bitpay_id, environment, facade, token, doc_kind, doc_id, \
    doc_number, customer_id, price, currency, order_id, url, bitpay_status, exception_status, \
    settlement, note, expires_at, splynx_payment_id, created_at, updated_at, payment_sent_at, \
    payment_attempts, credited_at, watch_until, duplicate_payment_ids, fetched_at";

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

fn journal_from_row(r: &Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        bitpay_id: r.get(2)?,
        kind: r.get(3)?,
        summary: r.get(4)?,
        detail: r.get(5)?,
    })
}

fn invoice_from_row(row: &Row<'_>) -> rusqlite::Result<InvoiceRecord> {
    let text_error = |i: usize, message: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, message.into())
    };
    let kind: String = row.get(6)?;
    let price: String = row.get(10)?;
    let settlement: String = row.get(16)?;
    Ok(InvoiceRecord {
        id: row.get(0)?,
        guid: row.get(1)?,
        bitpay_id: row.get(2)?,
        environment: row.get(3)?,
        facade: row.get(4)?,
        token: Secret::new(row.get::<_, String>(5)?),
        doc_kind: kind.parse().map_err(|m| text_error(6, m))?,
        doc_id: row.get(7)?,
        doc_number: row.get(8)?,
        customer_id: row.get(9)?,
        price: Decimal::from_str(&price).map_err(|e| text_error(10, e.to_string()))?,
        currency: row.get(11)?,
        order_id: row.get(12)?,
        url: row.get(13)?,
        bitpay_status: row.get(14)?,
        exception_status: row.get(15)?,
        settlement: settlement.parse().map_err(|m| text_error(16, m))?,
        note: row.get(17)?,
        expires_at: row.get(18)?,
        splynx_payment_id: row.get(19)?,
        created_at: row.get(20)?,
        updated_at: row.get(21)?,
        payment_sent_at: row.get(22)?,
        payment_attempts: row.get(23)?,
        credited_at: row.get(24)?,
        watch_until: row.get(25)?,
        duplicate_payment_ids: row
            .get::<_, Option<String>>(26)?
            .unwrap_or_default()
            .split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect(),
        fetched_at: row.get(27)?,
    })
}

/// What a prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Settled records whose old detail went (each keeps one summary line).
    pub records: i64,
    pub record_entries: i64,
    /// Entries naming no invoice of ours (rejected bodies, strangers' ids).
    pub stranger_entries: i64,
    /// Reported findings.
    pub findings: i64,
}

/// Something that needs the admin, recorded once when it is found; `reconcile` reports
/// each one once (cron mails it).
#[derive(Debug, Clone)]
pub struct Finding {
    pub id: i64,
    pub at: i64,
    pub bitpay_id: Option<String>,
    pub kind: String,
    pub summary: String,
}

/// Why a record is held for the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// Mismatch, Splynx refused the payment, unknown status, underpaid but confirmed, ...
    Review,
    /// More than one Splynx payment carries this invoice's receipt number.
    Duplicate,
    /// Paid after the invoice expired.
    PaidLate,
    /// Invalid, declined or refunded after the credit.
    Reversed,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Review => "review",
            HoldKind::Duplicate => "duplicate",
            HoldKind::PaidLate => "paid late",
            HoldKind::Reversed => "reversed after credit",
        }
    }

    fn settlement(self) -> Settlement {
        match self {
            HoldKind::Reversed => Settlement::Reversed,
            _ => Settlement::Review,
        }
    }
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

    // ---- tokens ----

    pub fn save_token(&self, token: &TokenRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tokens (environment, facade, token, approved, pairing_code,
                 pairing_expires_at, label, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (environment, facade) DO UPDATE SET token = excluded.token,
                 approved = excluded.approved, pairing_code = excluded.pairing_code,
                 pairing_expires_at = excluded.pairing_expires_at, label = excluded.label,
                 created_at = excluded.created_at",
            params![
                token.environment,
                token.facade,
                token.token.expose(),
                token.approved,
                token.pairing_code,
                token.pairing_expires_at,
                token.label,
                token.created_at
            ],
        )?;
        Ok(())
    }

    pub fn tokens(&self, environment: &str) -> Result<Vec<TokenRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT environment, facade, token, approved, pairing_code, pairing_expires_at,
                    label, created_at
             FROM tokens WHERE environment = ?1 ORDER BY facade",
        )?;
        let rows = stmt.query_map([environment], |r| {
            Ok(TokenRecord {
                environment: r.get(0)?,
                facade: r.get(1)?,
                token: Secret::new(r.get::<_, String>(2)?),
                approved: r.get(3)?,
                pairing_code: r.get(4)?,
                pairing_expires_at: r.get(5)?,
                label: r.get(6)?,
                created_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_token_approved(&self, environment: &str, facade: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE tokens SET approved = 1 WHERE environment = ?1 AND facade = ?2",
            params![environment, facade],
        )?;
        Ok(())
    }

    pub fn delete_tokens(&self, environment: &str) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE environment = ?1", [environment])?)
    }

    // ---- Splynx nonce ----

    /// The next Splynx nonce for `api_key`: greater than every nonce handed out before,
    /// and at least `floor` (the clock in centiseconds). One statement, so concurrent
    /// processes never get the same value.
    pub fn next_nonce(&self, api_key: &str, floor: i64) -> Result<i64> {
        Ok(self.conn.query_row(
            "INSERT INTO splynx_nonce (api_key, last) VALUES (?1, ?2)
             ON CONFLICT (api_key) DO UPDATE SET last = max(last + 1, excluded.last)
             RETURNING last",
            params![api_key, floor],
            |r| r.get(0),
        )?)
    }

    /// The shared Splynx access token for `api_key` and its expiry (unix seconds).
    pub fn splynx_token(&self, api_key: &str) -> Result<Option<(Secret, i64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT token, expires_at FROM splynx_token WHERE api_key = ?1",
                [api_key],
                |r| Ok((Secret::new(r.get::<_, String>(0)?), r.get(1)?)),
            )
            .optional()?)
    }

    pub fn save_splynx_token(&self, api_key: &str, token: &Secret, expires_at: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO splynx_token (api_key, token, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (api_key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at",
            params![api_key, token.expose(), expires_at],
        )?;
        Ok(())
    }

    // ---- invoices ----

    pub fn insert_invoice(&self, new: &NewInvoice, now: i64) -> Result<InvoiceRecord> {
        self.conn.execute(
            "INSERT INTO invoices (guid, environment, facade, token, doc_kind, doc_id, doc_number,
                 customer_id, price, currency, order_id, bitpay_status, settlement, created_at,
                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'unknown', 'creating', ?12, ?12)",
            params![
                new.guid,
                new.environment,
                new.facade,
                new.token.expose(),
                new.doc_kind.as_str(),
                new.doc_id,
                new.doc_number,
                new.customer_id,
                new.price.to_string(),
                new.currency,
                new.order_id,
                now
            ],
        )?;
        self.invoice_by_guid(&new.guid)?
            .ok_or_else(|| StoreError::Sql(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Records what BitPay answered for a `creating` row, and journals `how` it was learned.
    pub fn mark_created(
        &self,
        guid: &str,
        invoice: &BitPayInvoice,
        how: &str,
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        self.update_created(guid, invoice, how, now)?;
        tx.commit()?;
        Ok(())
    }

    fn update_created(
        &self,
        guid: &str,
        invoice: &BitPayInvoice,
        how: &str,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET bitpay_id = ?2, url = ?3, bitpay_status = ?4, expires_at = ?5,
                 settlement = CASE settlement WHEN 'creating' THEN 'open' ELSE settlement END,
                 updated_at = ?6
             WHERE guid = ?1",
            params![
                guid,
                invoice.id,
                invoice.url,
                invoice.status,
                invoice.expiration_time,
                now
            ],
        )?;
        self.journal(Some(&invoice.id), "create", how, None, now)
    }

    pub fn delete_creating(&self, guid: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM invoices WHERE guid = ?1 AND settlement = 'creating'",
            [guid],
        )?;
        Ok(())
    }

    fn invoice_where(
        &self,
        condition: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<InvoiceRecord>> {
        let sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE {condition}");
        Ok(self
            .conn
            .query_row(&sql, [value], invoice_from_row)
            .optional()?)
    }

    pub fn invoice_by_guid(&self, guid: &str) -> Result<Option<InvoiceRecord>> {
        self.invoice_where("guid = ?1", &guid)
    }

    pub fn invoice_by_bitpay_id(&self, bitpay_id: &str) -> Result<Option<InvoiceRecord>> {
        self.invoice_where(BY_BITPAY_ID, &bitpay_id)
    }

    pub fn invoice_by_order_id(&self, order_id: &str) -> Result<Option<InvoiceRecord>> {
        self.invoice_where("order_id = ?1", &order_id)
    }

    fn invoices_where(
        &self,
        condition: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<InvoiceRecord>> {
        let sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE {condition}");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(values, invoice_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The unsettled stored invoices for one Splynx document (or one customer's refills),
    /// newest first.
    pub fn unsettled_for_document(
        &self,
        kind: DocKind,
        doc_id: Option<i64>,
        customer_id: i64,
    ) -> Result<Vec<InvoiceRecord>> {
        // Final records never matter for a new checkout, and a customer's refills pile up.
        self.invoices_where(
            UNSETTLED_FOR_DOCUMENT,
            &[&kind.as_str(), &doc_id, &customer_id],
        )
    }

    /// Invoices that are not final (creating, open, crediting, sent), oldest first.
    pub fn unsettled_invoices(&self) -> Result<Vec<InvoiceRecord>> {
        self.invoices_where(UNSETTLED, &[])
    }

    /// Credited invoices still watched (BitPay may yet reverse them), oldest first.
    pub fn watched_invoices(&self, now: i64) -> Result<Vec<InvoiceRecord>> {
        self.invoices_where(WATCHED, &[&now])
    }

    /// Records held for the admin (review, reversed after credit), newest first.
    pub fn held_invoices(&self, limit: u32) -> Result<Vec<InvoiceRecord>> {
        self.invoices_where(HELD, &[&limit])
    }

    /// How many held records have more than one Splynx payment.
    pub fn duplicate_count(&self) -> Result<i64> {
        Ok(self.conn.query_row(DUPLICATE_COUNT, [], |r| r.get(0))?)
    }

    pub fn invoices_by_document_number(&self, number: &str) -> Result<Vec<InvoiceRecord>> {
        self.invoices_where("doc_number = ?1 ORDER BY id", &[&number])
    }

    /// Inserts an invoice BitPay confirmed as ours but we had no record of (lost state).
    pub fn adopt_invoice(
        &self,
        new: &NewInvoice,
        invoice: &BitPayInvoice,
        now: i64,
    ) -> Result<InvoiceRecord> {
        let tx = self.conn.unchecked_transaction()?;
        self.insert_invoice(new, now)?;
        self.update_created(
            &new.guid,
            invoice,
            "adopted: BitPay confirmed it is ours; local record rebuilt",
            now,
        )?;
        tx.commit()?;
        self.invoice_by_bitpay_id(&invoice.id)?
            .ok_or_else(|| StoreError::Sql(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Records the last status BitPay reported.
    pub fn update_bitpay_status(
        &self,
        id: i64,
        status: &str,
        exception: Option<&str>,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET bitpay_status = ?2, exception_status = ?3,
                 expires_at = coalesce(?4, expires_at), updated_at = ?5, fetched_at = ?5
             WHERE id = ?1",
            params![id, status, exception, expires_at, now],
        )?;
        Ok(())
    }

    /// Moves the settlement state, never away from `credited` (a credit is never undone)
    /// nor from what the admin holds or resolved; holding goes through [`Store::hold`].
    pub fn set_settlement(
        &self,
        id: i64,
        settlement: Settlement,
        note: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let changed = self.conn.execute(
            "UPDATE invoices SET settlement = ?2, note = coalesce(?3, note), updated_at = ?4
             WHERE id = ?1 AND settlement NOT IN ('credited', 'reversed', 'resolved')",
            params![id, settlement.as_str(), note, now],
        )?;
        Ok(changed == 1)
    }

    /// Credited as `splynx_payment_id`; watched until `watch_until` (None: already final).
    pub fn mark_credited(
        &self,
        id: i64,
        splynx_payment_id: i64,
        note: &str,
        watch_until: Option<i64>,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET settlement = 'credited', splynx_payment_id = ?2, note = ?3,
                 credited_at = ?4, watch_until = ?5, updated_at = ?4 WHERE id = ?1",
            params![id, splynx_payment_id, note, now, watch_until],
        )?;
        Ok(())
    }

    /// Recorded before a payment POST: from now on its outcome is unknown until a reply
    /// or a look-up says otherwise.
    pub fn mark_payment_sent(&self, id: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET settlement = 'sent', payment_sent_at = ?2,
                 payment_attempts = payment_attempts + 1, updated_at = ?2
             WHERE id = ?1 AND settlement IN ('crediting', 'sent')",
            params![id, now],
        )?;
        Ok(())
    }

    /// Splynx provably did not apply the payment POST (refused it, or it never left).
    pub fn mark_payment_not_sent(&self, id: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET settlement = 'crediting', payment_sent_at = NULL,
                 updated_at = ?2 WHERE id = ?1 AND settlement = 'sent'",
            params![id, now],
        )?;
        Ok(())
    }

    /// BitPay says the credited invoice is final (complete): no more watching.
    pub fn end_watch(&self, id: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET watch_until = NULL, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Holds a record for the admin (also a credited one: a reversal or a duplicate), and
    /// records the finding once: false when it was already held this way.
    pub fn hold(
        &self,
        record: &InvoiceRecord,
        kind: HoldKind,
        note: &str,
        duplicate_payment_ids: &[i64],
        now: i64,
    ) -> Result<bool> {
        let settlement = kind.settlement();
        let duplicates = (!duplicate_payment_ids.is_empty()).then(|| {
            duplicate_payment_ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        let tx = self.conn.unchecked_transaction()?;
        let changed = self.conn.execute(
            "UPDATE invoices SET settlement = ?2, note = ?3, watch_until = NULL,
                 duplicate_payment_ids = coalesce(?4, duplicate_payment_ids), updated_at = ?5
             WHERE id = ?1 AND settlement NOT IN (?2, 'resolved')",
            params![record.id, settlement.as_str(), note, duplicates, now],
        )?;
        if changed == 1 {
            self.conn.execute(
                "INSERT INTO findings (at, bitpay_id, kind, summary) VALUES (?1, ?2, ?3, ?4)",
                params![now, record.bitpay_id, kind.as_str(), note],
            )?;
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    /// The admin closes a held record. False when it is not held.
    pub fn resolve(&self, id: i64, note: &str, now: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE invoices SET settlement = 'resolved', note = ?2, updated_at = ?3
             WHERE id = ?1 AND settlement IN ('review', 'reversed')",
            params![id, note, now],
        )? == 1)
    }

    // ---- invoice ids we do not hold ----

    /// What BitPay said about an invoice id we do not hold, if asked since `since`.
    pub fn unknown_lookup(&self, bitpay_id: &str, since: i64) -> Result<Option<(i64, String)>> {
        Ok(self
            .conn
            .query_row(UNKNOWN_LOOKUP, params![bitpay_id, since], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// Remembers the answer, and forgets answers older than `forget_before`: the table
    /// holds one window's worth of ids at most.
    pub fn remember_unknown_lookup(
        &self,
        bitpay_id: &str,
        answer: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        self.conn
            .execute("DELETE FROM unknown_lookups WHERE at < ?1", [forget_before])?;
        self.conn.execute(
            "INSERT INTO unknown_lookups (bitpay_id, at, answer) VALUES (?1, ?2, ?3)
             ON CONFLICT (bitpay_id) DO UPDATE SET at = excluded.at, answer = excluded.answer",
            params![bitpay_id, now, answer],
        )?;
        tx.commit()?;
        Ok(())
    }

    // ---- findings ----

    /// Findings recorded after finding `after_id`, oldest first.
    pub fn findings_after(&self, after_id: i64) -> Result<Vec<Finding>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, bitpay_id, kind, summary FROM findings WHERE id > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([after_id], |r| {
            Ok(Finding {
                id: r.get(0)?,
                at: r.get(1)?,
                bitpay_id: r.get(2)?,
                kind: r.get(3)?,
                summary: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- small settings the program keeps for itself ----

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn invoice(&self, id: i64) -> Result<Option<InvoiceRecord>> {
        self.invoice_where("id = ?1", &id)
    }

    pub fn settlement_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare(SETTLEMENT_COUNTS)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The `limit` oldest unsettled invoices.
    pub fn oldest_unsettled(&self, limit: u32) -> Result<Vec<InvoiceRecord>> {
        self.invoices_where(OLDEST_UNSETTLED, &[&limit])
    }

    // ---- journal ----

    pub fn journal(
        &self,
        bitpay_id: Option<&str>,
        kind: &str,
        summary: &str,
        detail: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO journal (at, bitpay_id, kind, summary, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now, bitpay_id, kind, summary, detail],
        )?;
        Ok(())
    }

    pub fn journal_for(&self, bitpay_id: &str) -> Result<Vec<JournalEntry>> {
        let mut stmt = self.conn.prepare(JOURNAL_FOR)?;
        let rows = stmt.query_map([bitpay_id], journal_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` journal entries of one kind, newest first.
    pub fn recent_journal(&self, kind: &str, limit: u32) -> Result<Vec<JournalEntry>> {
        let mut stmt = self.conn.prepare(RECENT_JOURNAL)?;
        let rows = stmt.query_map(params![kind, limit], journal_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// `EXPLAIN QUERY PLAN` of every hot query, by name: what the large-store benchmark
    /// prints and a test checks (no full scan of the journal, no sort of a large set).
    pub fn query_plans(&self) -> Result<Vec<(&'static str, Vec<String>)>> {
        let invoices =
            |condition: &str| format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE {condition}");
        let queries = [
            ("invoice by BitPay id", invoices(BY_BITPAY_ID)),
            (
                "unsettled invoices of a document",
                invoices(UNSETTLED_FOR_DOCUMENT),
            ),
            ("unsettled invoices", invoices(UNSETTLED)),
            ("oldest unsettled invoices", invoices(OLDEST_UNSETTLED)),
            ("watched credits", invoices(WATCHED)),
            ("held invoices", invoices(HELD)),
            ("duplicate count", DUPLICATE_COUNT.to_string()),
            ("counts by state", SETTLEMENT_COUNTS.to_string()),
            ("journal of an invoice", JOURNAL_FOR.to_string()),
            ("recent journal of a kind", RECENT_JOURNAL.to_string()),
            ("last webhook", LAST_WEBHOOK.to_string()),
            ("oldest journal entry", OLDEST_JOURNAL.to_string()),
            ("unknown invoice id", UNKNOWN_LOOKUP.to_string()),
        ];
        let mut plans = Vec::new();
        for (name, sql) in queries {
            let mut stmt = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let unbound = stmt.parameter_count();
            let rows = stmt.query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, unbound)),
                |r| r.get::<_, String>(3),
            )?;
            plans.push((name, rows.collect::<rusqlite::Result<_>>()?));
        }
        Ok(plans)
    }

    // ---- retention ----

    pub fn journal_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))?)
    }

    /// The oldest journal entry's time.
    pub fn oldest_journal_time(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(OLDEST_JOURNAL, [], |r| r.get(0))
            .optional()?)
    }

    /// Drops journal detail older than `cutoff`: for settled records (credited and no
    /// longer watched, expired, resolved) all but one summary line each; bodies that named
    /// no invoice of ours; reported findings. Held and unsettled records keep everything;
    /// the invoices table (the BitPay ↔ Splynx mapping) is never touched. Works in batches
    /// so webhooks are never blocked for long. With `dry_run`, only counts.
    pub fn prune(
        &self,
        cutoff: i64,
        reported_finding: i64,
        dry_run: bool,
        now: i64,
    ) -> Result<Pruned> {
        const SETTLED: &str = "(settlement IN ('expired', 'resolved')
             OR (settlement = 'credited' AND watch_until IS NULL))";
        let mut pruned = Pruned::default();
        let records: Vec<(String, String, Option<String>, i64)> = {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT i.bitpay_id, i.settlement, i.note, count(*) FROM invoices i
                 JOIN journal j ON j.bitpay_id = i.bitpay_id
                 WHERE {SETTLED} AND j.at < ?1 AND j.kind != 'pruned'
                 GROUP BY i.bitpay_id"
            ))?;
            let rows = stmt.query_map([cutoff], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        pruned.records = records.len() as i64;
        pruned.record_entries = records.iter().map(|r| r.3).sum();
        // Pairing changes are the audit trail of who chose the BitPay account: kept.
        let strangers = "at < ?1 AND kind NOT IN ('pruned', 'pairing') AND (bitpay_id IS NULL
             OR NOT EXISTS (SELECT 1 FROM invoices i WHERE i.bitpay_id = journal.bitpay_id))";
        pruned.stranger_entries = self.conn.query_row(
            &format!("SELECT count(*) FROM journal WHERE {strangers}"),
            [cutoff],
            |r| r.get(0),
        )?;
        pruned.findings = self.conn.query_row(
            "SELECT count(*) FROM findings WHERE at < ?1 AND id <= ?2",
            params![cutoff, reported_finding],
            |r| r.get(0),
        )?;
        if dry_run {
            return Ok(pruned);
        }
        for chunk in records.chunks(500) {
            let tx = self.conn.unchecked_transaction()?;
            for (bitpay_id, settlement, note, count) in chunk {
                self.conn.execute(
                    "DELETE FROM journal WHERE bitpay_id = ?1 AND at < ?2 AND kind != 'pruned'",
                    params![bitpay_id, cutoff],
                )?;
                self.conn.execute(
                    "INSERT INTO journal (at, bitpay_id, kind, summary) VALUES (?1, ?2, 'pruned', ?3)",
                    params![
                        now,
                        bitpay_id,
                        format!(
                            "{count} journal entries older than {} pruned; {settlement}{}",
                            crate::clock::datetime_of(cutoff),
                            note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
                        )
                    ],
                )?;
            }
            tx.commit()?;
        }
        loop {
            let deleted = self.conn.execute(
                &format!(
                    "DELETE FROM journal WHERE id IN
                     (SELECT id FROM journal WHERE {strangers} LIMIT 5000)"
                ),
                [cutoff],
            )?;
            if deleted == 0 {
                break;
            }
        }
        self.conn.execute(
            "DELETE FROM findings WHERE at < ?1 AND id <= ?2",
            params![cutoff, reported_finding],
        )?;
        Ok(pruned)
    }

    /// When the last webhook for a BitPay invoice arrived (probes and unparseable bodies,
    /// which name no invoice, do not count).
    pub fn last_webhook_time(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(LAST_WEBHOOK, [], |r| r.get(0))
            .optional()?)
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
        assert_eq!(stored.price.to_string(), "51.61");
        assert_eq!(stored.splynx_payment_id, Some(9));
    }
}
