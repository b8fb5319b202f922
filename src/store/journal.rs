//! The journal, findings, small settings, unknown invoice ids, and retention.

use rusqlite::{params, OptionalExtension};

use super::queries::*;
use super::records::*;
use super::{Result, Store};

impl Store {
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

    /// Findings no `reconcile` has reported yet, oldest first.
    pub fn unreported_findings(&self) -> Result<Vec<Finding>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, at, bitpay_id, kind, summary FROM findings
             WHERE reported_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
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

    /// Each wrong setting as a finding of kind "config", recorded once while it lasts (so
    /// `reconcile` reports it once); one that was fixed is forgotten, and reported again
    /// should it come back.
    pub fn record_config_problems(&self, messages: &[String], now: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        let known: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT summary FROM findings WHERE kind = 'config'")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for gone in known.iter().filter(|k| !messages.contains(k)) {
            self.conn.execute(
                "DELETE FROM findings WHERE kind = 'config' AND summary = ?1",
                [gone],
            )?;
        }
        for new in messages.iter().filter(|m| !known.contains(m)) {
            self.conn.execute(
                "INSERT INTO findings (at, kind, summary) VALUES (?1, 'config', ?2)",
                params![now, new],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks findings as reported (cron mailed them): they are never reported again, and
    /// only reported ones are pruned.
    pub fn mark_findings_reported(&self, findings: &[Finding], now: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for finding in findings {
            self.conn.execute(
                "UPDATE findings SET reported_at = ?2 WHERE id = ?1 AND reported_at IS NULL",
                params![finding.id, now],
            )?;
        }
        tx.commit()?;
        Ok(())
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

    /// Journal entry `id`.
    pub fn journal_entry(&self, id: i64) -> Result<Option<JournalEntry>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, at, bitpay_id, kind, summary, detail FROM journal WHERE id = ?1",
                [id],
                journal_from_row,
            )
            .optional()?)
    }

    /// The newest `limit` journal entries of one kind, newest first.
    pub fn recent_journal(&self, kind: &str, limit: u32) -> Result<Vec<JournalEntry>> {
        let mut stmt = self.conn.prepare(RECENT_JOURNAL)?;
        let rows = stmt.query_map(params![kind, limit], journal_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
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
    pub fn prune(&self, cutoff: i64, dry_run: bool, now: i64) -> Result<Pruned> {
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
            "SELECT count(*) FROM findings WHERE reported_at < ?1",
            [cutoff],
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
        self.conn
            .execute("DELETE FROM findings WHERE reported_at < ?1", [cutoff])?;
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
