//! Bookings: what is recorded in Splynx after a credit (the payment statement record, the
//! fee transaction),
//! tracked like the payment itself so each is made exactly once; and the payment
//! statements' Splynx ids by title.

use rusqlite::{params, OptionalExtension, Row};

use super::records::INVOICE_COLUMNS;
use super::{InvoiceRecord, Result, Store};

/// What is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingKind {
    /// A record in the payment statement of the credit's month or day.
    Statement,
    /// The service fee's debit transaction.
    Fee,
}

impl BookingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingKind::Statement => "statement",
            BookingKind::Fee => "fee",
        }
    }

    /// What it is in Splynx, in an admin's words.
    pub fn describe(self) -> &'static str {
        match self {
            BookingKind::Statement => "payment statement record",
            BookingKind::Fee => "fee transaction",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<BookingKind> {
        match text {
            "statement" => Ok(BookingKind::Statement),
            "fee" => Ok(BookingKind::Fee),
            other => Err(rusqlite::Error::InvalidColumnType(
                1,
                format!("booking kind {other:?}"),
                rusqlite::types::Type::Text,
            )),
        }
    }
}

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingState {
    /// Not sent yet, or provably not applied.
    Pending,
    /// A POST went out whose outcome is unknown: looked up, sent again only after the grace.
    Sent,
    Done,
}

#[derive(Debug, Clone)]
pub struct Booking {
    pub invoice_id: i64,
    pub kind: BookingKind,
    pub state: BookingState,
    pub splynx_id: Option<i64>,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub next_try_at: i64,
    pub note: Option<String>,
}

fn booking_from_row(row: &Row<'_>) -> rusqlite::Result<Booking> {
    let state: String = row.get(2)?;
    Ok(Booking {
        invoice_id: row.get(0)?,
        kind: BookingKind::parse(&row.get::<_, String>(1)?)?,
        state: match state.as_str() {
            "pending" => BookingState::Pending,
            "sent" => BookingState::Sent,
            _ => BookingState::Done,
        },
        splynx_id: row.get(3)?,
        sent_at: row.get(4)?,
        attempts: row.get(5)?,
        next_try_at: row.get(6)?,
        note: row.get(7)?,
    })
}

impl Store {
    /// Adds what a credit books (call it in the credit's transaction). Kept when present.
    pub fn add_bookings(&self, invoice_id: i64, kinds: &[BookingKind], now: i64) -> Result<()> {
        for kind in kinds {
            self.conn.execute(
                "INSERT OR IGNORE INTO bookings (invoice_id, kind, state, next_try_at, updated_at)
                 VALUES (?1, ?2, 'pending', ?3, ?3)",
                params![invoice_id, kind.as_str(), now],
            )?;
        }
        Ok(())
    }

    pub fn bookings(&self, invoice_id: i64) -> Result<Vec<Booking>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT invoice_id, kind, state, splynx_id, sent_at, attempts, next_try_at, note
             FROM bookings WHERE invoice_id = ?1 ORDER BY kind",
        )?;
        let rows = stmt.query_map([invoice_id], booking_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Invoices with a booking not done and due to be tried at `now`.
    pub fn invoices_with_open_bookings(&self, now: i64) -> Result<Vec<InvoiceRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE id IN
                 (SELECT invoice_id FROM bookings WHERE state != 'done' AND next_try_at <= ?1)
             ORDER BY id"
        ))?;
        let rows = stmt.query_map([now], super::records::invoice_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Bookings not done yet, and the oldest's note (for `status`).
    pub fn open_bookings(&self) -> Result<(i64, Option<String>)> {
        Ok(self.conn.query_row(
            "SELECT count(*), (SELECT note FROM bookings WHERE state != 'done' AND note IS NOT NULL
                               ORDER BY updated_at LIMIT 1)
             FROM bookings WHERE state != 'done'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Recorded before the POST goes out.
    pub fn mark_booking_sent(&self, invoice_id: i64, kind: BookingKind, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE bookings SET state = 'sent', sent_at = ?3, attempts = attempts + 1,
                 updated_at = ?3 WHERE invoice_id = ?1 AND kind = ?2",
            params![invoice_id, kind.as_str(), now],
        )?;
        Ok(())
    }

    pub fn mark_booking_done(
        &self,
        invoice_id: i64,
        kind: BookingKind,
        splynx_id: i64,
        note: &str,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE bookings SET state = 'done', splynx_id = ?3, note = ?4, updated_at = ?5
             WHERE invoice_id = ?1 AND kind = ?2",
            params![invoice_id, kind.as_str(), splynx_id, note, now],
        )?;
        Ok(())
    }

    /// Not done this time: tried again from `next_try_at`. `not_applied`: Splynx provably
    /// did not apply a POST (it refused it, or it never left), so it may be sent again.
    pub fn defer_booking(
        &self,
        invoice_id: i64,
        kind: BookingKind,
        not_applied: bool,
        note: &str,
        next_try_at: i64,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE bookings SET
                 state = CASE WHEN ?3 THEN 'pending' ELSE state END,
                 note = ?4, next_try_at = ?5, updated_at = ?6
             WHERE invoice_id = ?1 AND kind = ?2 AND state != 'done'",
            params![
                invoice_id,
                kind.as_str(),
                not_applied,
                note,
                next_try_at,
                now
            ],
        )?;
        Ok(())
    }

    // ---- payment statements ----

    pub fn statement_id(&self, title: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT splynx_id FROM statements WHERE title = ?1",
                [title],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn remember_statement(&self, title: &str, splynx_id: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        self.conn.execute(
            "INSERT INTO statements (title, splynx_id) VALUES (?1, ?2)
             ON CONFLICT (title) DO UPDATE SET splynx_id = excluded.splynx_id",
            params![title, splynx_id],
        )?;
        self.conn
            .execute("DELETE FROM statement_creates WHERE title = ?1", [title])?;
        tx.commit()?;
        Ok(())
    }

    /// When a POST creating the statement `title` was last sent with its outcome unknown.
    pub fn statement_create_sent(&self, title: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sent_at FROM statement_creates WHERE title = ?1",
                [title],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Recorded before the POST that creates the statement `title` leaves.
    pub fn mark_statement_create_sent(&self, title: &str, at: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO statement_creates (title, sent_at) VALUES (?1, ?2)
             ON CONFLICT (title) DO UPDATE SET sent_at = excluded.sent_at",
            params![title, at],
        )?;
        Ok(())
    }

    /// Splynx provably did not create it: the next run may send it again at once.
    pub fn forget_statement_create(&self, title: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM statement_creates WHERE title = ?1", [title])?;
        Ok(())
    }

    /// Splynx no longer knows the statement (deleted there): look it up again next time.
    pub fn forget_statement(&self, title: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM statements WHERE title = ?1", [title])?;
        Ok(())
    }
}
