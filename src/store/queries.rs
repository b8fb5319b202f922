//! The hot queries, named so their plans can be shown and checked.

use super::records::*;
use super::{Result, Store};

// The queries every webhook, click, `status`, `show` and the admin page run: named here so
// `query_plans` can show that each is served by an index (see the large-store benchmark).
pub(super) const BY_BITPAY_ID: &str = "bitpay_id = ?1";
pub(super) const UNSETTLED_FOR_DOCUMENT: &str =
    "doc_kind = ?1 AND doc_id IS ?2 AND customer_id = ?3
     AND settlement IN ('creating', 'open', 'crediting', 'sent') ORDER BY id DESC";
pub(super) const UNSETTLED: &str =
    "settlement IN ('creating', 'open', 'crediting', 'sent') ORDER BY id";
pub(super) const OLDEST_UNSETTLED: &str =
    "settlement IN ('creating', 'open', 'crediting', 'sent') ORDER BY id LIMIT ?1";
// `+settlement`: the (small) partial watch index, not the (large) credited rows of the
// settlement index.
pub(super) const WATCHED: &str =
    "watch_until > ?1 AND +settlement = 'credited' ORDER BY watch_until";
pub(super) const HELD: &str =
    "settlement IN ('review', 'reversed') ORDER BY updated_at DESC LIMIT ?1";
pub(super) const RECENTLY_CREDITED: &str =
    "credited_at IS NOT NULL ORDER BY credited_at DESC LIMIT ?1";
pub(super) const DUPLICATE_COUNT: &str =
    "SELECT count(*) FROM invoices WHERE settlement IN ('review', 'reversed')
     AND duplicate_payment_ids IS NOT NULL";
// Kept by triggers (migration 8); states nothing is in are left out.
pub(super) const SETTLEMENT_COUNTS: &str =
    "SELECT settlement, n FROM settlement_counts WHERE n > 0 ORDER BY settlement";
pub(super) const JOURNAL_FOR: &str = "SELECT id, at, bitpay_id, kind, summary, detail FROM journal
     WHERE bitpay_id = ?1 ORDER BY id";
pub(super) const RECENT_JOURNAL: &str =
    "SELECT id, at, bitpay_id, kind, summary, detail FROM journal
     WHERE kind = ?1 ORDER BY id DESC LIMIT ?2";
// Newest first along the (kind, at) index: the first webhook naming an invoice ends it.
pub(super) const LAST_WEBHOOK: &str =
    "SELECT at FROM journal WHERE kind = 'webhook' AND bitpay_id IS NOT NULL
     ORDER BY at DESC LIMIT 1";
// The first row is the oldest: ids grow with time (pruning keeps the order).
pub(super) const OLDEST_JOURNAL: &str = "SELECT at FROM journal ORDER BY id LIMIT 1";
pub(super) const UNKNOWN_LOOKUP: &str =
    "SELECT at, answer FROM unknown_lookups WHERE bitpay_id = ?1 AND at >= ?2";

impl Store {
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
            ("recently credited invoices", invoices(RECENTLY_CREDITED)),
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
}
