//! Invoices: saved before BitPay is asked, moved through their settlement states.

use rusqlite::{params, OptionalExtension};

use crate::server::ServerInvoice;

use super::queries::*;
use super::records::*;
use super::{Result, Store, StoreError};

impl Store {
    // ---- invoices ----

    pub fn insert_invoice(&self, new: &NewInvoice, now: i64) -> Result<InvoiceRecord> {
        self.conn.execute(
            "INSERT INTO invoices (guid, environment, facade, token, doc_kind, doc_id, doc_number,
                 customer_id, price, currency, order_id, partner_id, bitpay_status, settlement,
                 created_at, updated_at, fee_percent, fee, fee_vat_percent, fee_vat, origin,
                 payment_method_id, credit_on, statements, fee_category, fee_message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?13, 'unknown', 'creating',
                 ?12, ?12, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
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
                now,
                new.partner_id,
                new.fee.map(|f| f.percent.to_string()),
                new.fee.map(|f| f.fee.to_string()),
                new.fee.map(|f| f.vat_percent.to_string()),
                new.fee.map(|f| f.vat.to_string()),
                new.origin.map(Origin::as_str),
                new.terms.as_ref().map(|t| t.payment_method_id),
                new.terms.as_ref().map(|t| t.credit_on.as_str()),
                new.terms.as_ref().map(|t| t.statements.as_str()),
                new.terms.as_ref().map(|t| t.fee_category),
                new.terms.as_ref().map(|t| t.fee_message.as_str())
            ],
        )?;
        self.invoice_by_guid(&new.guid)?
            .ok_or_else(|| StoreError::Sql(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Records what the server answered for a `creating` row, and journals `how` it was
    /// learned.
    pub fn mark_created(
        &self,
        guid: &str,
        invoice: &ServerInvoice,
        how: &str,
        now: i64,
    ) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        self.update_created(guid, invoice, how, now)?;
        tx.commit()?;
        Ok(())
    }

    pub(super) fn update_created(
        &self,
        guid: &str,
        invoice: &ServerInvoice,
        how: &str,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET bitpay_id = ?2, url = ?3, bitpay_status = ?4,
                 exception_status = ?5, status = ?6, expires_at = ?7,
                 settlement = CASE settlement WHEN 'creating' THEN 'open' ELSE settlement END,
                 updated_at = ?8
             WHERE guid = ?1",
            params![
                guid,
                invoice.id,
                invoice.url,
                invoice.words.status,
                invoice.words.exception,
                invoice.status.as_str(),
                invoice.expires_at,
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

    pub(super) fn invoice_where(
        &self,
        condition: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<InvoiceRecord>> {
        let sql = format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE {condition}");
        // Cached: `audit` and `reconcile` ask this once per invoice, tens of thousands of times.
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([value], invoice_from_row)
            .optional()?)
    }

    pub fn invoice_by_guid(&self, guid: &str) -> Result<Option<InvoiceRecord>> {
        self.invoice_where("guid = ?1", &guid)
    }

    pub fn invoice_by_bitpay_id(&self, bitpay_id: &str) -> Result<Option<InvoiceRecord>> {
        self.invoice_where(BY_BITPAY_ID, &bitpay_id)
    }

    /// The invoice credited as Splynx payment `payment_id`.
    pub fn invoice_by_splynx_payment(&self, payment_id: i64) -> Result<Option<InvoiceRecord>> {
        self.invoice_where("splynx_payment_id = ?1", &payment_id)
    }

    pub fn invoice_by_order_id(&self, order_id: &str) -> Result<Option<InvoiceRecord>> {
        self.invoice_where("order_id = ?1", &order_id)
    }

    pub(super) fn invoices_where(
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
    /// The `limit` invoices credited last, newest first (the admin page's recent payments).
    pub fn recently_credited(&self, limit: u32) -> Result<Vec<InvoiceRecord>> {
        self.invoices_where(RECENTLY_CREDITED, &[&limit])
    }

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
        invoice: &ServerInvoice,
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

    /// Records the status the payment server last reported.
    pub fn update_status(&self, id: i64, invoice: &ServerInvoice, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE invoices SET bitpay_status = ?2, exception_status = ?3, status = ?4,
                 expires_at = coalesce(?5, expires_at), updated_at = ?6, fetched_at = ?6
             WHERE id = ?1",
            params![
                id,
                invoice.words.status,
                invoice.words.exception,
                invoice.status.as_str(),
                invoice.expires_at,
                now
            ],
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
                params![now, record.bitpay_id.as_deref(), kind.as_str(), note],
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

    /// Counts of what `status` and `doctor` flag for the admin.
    pub fn held_counts(&self) -> Result<HeldCounts> {
        let counts = self.settlement_counts()?;
        let count = |state: Settlement| {
            counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n)
        };
        Ok(HeldCounts {
            review: count(Settlement::Review),
            reversed: count(Settlement::Reversed),
            duplicates: self.duplicate_count()?,
            sent: count(Settlement::Sent),
        })
    }
}
