//! Refunds asked for from Splynx: recorded before anything is sent, then what the server
//! says, then the negative payment that books them once.

use rusqlite::{params, OptionalExtension, Row};
use rust_decimal::Decimal;

use super::{Result, Store};
use crate::domain::{RefundRecord, RefundState};

const COLUMNS: &str = "id, invoice_id, guid, server_id, amount, currency, reason, state, \
    server_status, claim_link, requested_by, requested_at, updated_at, note, booking_sent_at, \
    splynx_payment_id";

fn refund_from(row: &Row<'_>) -> rusqlite::Result<RefundRecord> {
    let text = |i: usize| row.get::<_, String>(i);
    let amount: Decimal = text(4)?.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(4, "refund amount".into(), rusqlite::types::Type::Text)
    })?;
    let state = RefundState::parse(&text(7)?).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(7, "refund state".into(), rusqlite::types::Type::Text)
    })?;
    Ok(RefundRecord {
        id: row.get(0)?,
        invoice_id: row.get(1)?,
        guid: text(2)?,
        server_id: row.get(3)?,
        amount,
        currency: text(5)?,
        reason: row.get(6)?,
        state,
        server_status: row.get(8)?,
        claim_link: row.get(9)?,
        requested_by: text(10)?,
        requested_at: row.get(11)?,
        updated_at: row.get(12)?,
        note: row.get(13)?,
        booking_sent_at: row.get(14)?,
        splynx_payment_id: row.get(15)?,
    })
}

/// A refund to record before it is sent.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    pub invoice_id: i64,
    pub guid: &'a str,
    pub amount: Decimal,
    pub currency: &'a str,
    pub reason: Option<&'a str>,
    pub requested_by: &'a str,
}

impl Store {
    pub fn insert_refund(&self, new: &NewRefund<'_>, now: i64) -> Result<RefundRecord> {
        self.conn.execute(
            "INSERT INTO refunds (invoice_id, guid, amount, currency, reason, state,
                requested_by, requested_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'sending', ?6, ?7, ?7)",
            params![
                new.invoice_id,
                new.guid,
                new.amount.to_string(),
                new.currency,
                new.reason,
                new.requested_by,
                now
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        Ok(self.refund(id)?.expect("just inserted"))
    }

    pub fn refund(&self, id: i64) -> Result<Option<RefundRecord>> {
        self.refund_where("id = ?1", params![id])
    }

    pub fn refund_by_server_id(&self, server_id: &str) -> Result<Option<RefundRecord>> {
        self.refund_where("server_id = ?1", params![server_id])
    }

    fn refund_where(
        &self,
        condition: &str,
        values: impl rusqlite::Params,
    ) -> Result<Option<RefundRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM refunds WHERE {condition}"),
                values,
                refund_from,
            )
            .optional()?)
    }

    /// The server ids of the invoices refunds were asked for here.
    pub fn refunded_invoice_ids(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut statement = self.conn.prepare(
            "SELECT DISTINCT i.bitpay_id FROM refunds r JOIN invoices i ON i.id = r.invoice_id
             WHERE i.bitpay_id IS NOT NULL",
        )?;
        let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every refund of our invoice record `invoice_id`, oldest first.
    pub fn refunds_for(&self, invoice_id: i64) -> Result<Vec<RefundRecord>> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM refunds WHERE invoice_id = ?1 ORDER BY id"
        ))?;
        let rows = statement.query_map([invoice_id], refund_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What `reconcile` follows: refunds the server may still change, and paid-out ones
    /// not booked yet.
    pub fn refunds_to_follow(&self) -> Result<Vec<RefundRecord>> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM refunds
             WHERE state IN ('sending', 'requested', 'pending')
                OR (state = 'paid-out' AND splynx_payment_id IS NULL)
             ORDER BY id"
        ))?;
        let rows = statement.query_map([], refund_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The `limit` newest refunds, newest first.
    pub fn recent_refunds(&self, limit: u32) -> Result<Vec<RefundRecord>> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM refunds ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = statement.query_map([limit], refund_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many refunds are in each state.
    pub fn refund_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT state, count(*) FROM refunds GROUP BY state ORDER BY state")?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What the server said of it: its id (once known), its words, our state.
    pub fn update_refund(
        &self,
        id: i64,
        server_id: Option<&str>,
        server_status: &str,
        state: RefundState,
        claim_link: Option<&str>,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE refunds SET server_id = coalesce(?2, server_id), server_status = ?3,
                state = ?4, claim_link = coalesce(?5, claim_link), updated_at = ?6
             WHERE id = ?1",
            params![
                id,
                server_id,
                server_status,
                state.as_str(),
                claim_link,
                now
            ],
        )?;
        Ok(())
    }

    pub fn set_refund_note(&self, id: i64, note: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE refunds SET note = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, note, now],
        )?;
        Ok(())
    }

    pub fn mark_refund_booking_sent(&self, id: i64, at: Option<i64>) -> Result<()> {
        self.conn.execute(
            "UPDATE refunds SET booking_sent_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }

    pub fn mark_refund_booked(&self, id: i64, payment_id: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE refunds SET splynx_payment_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, payment_id, now],
        )?;
        Ok(())
    }

    /// A failed or cancelled refund, for the admin: reported once by `reconcile`.
    pub fn record_refund_finding(&self, invoice: &str, summary: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO findings (at, bitpay_id, kind, summary) VALUES (?1, ?2, 'refund', ?3)",
            params![now, invoice, summary],
        )?;
        Ok(())
    }
}
