//! After the credit: what Splynx's own payment add-ons also record, booked exactly once
//! like the payment: the payment statement record ("BitPay 12/2026", one per payment,
//! status processed) and the service fee's debit transaction. Each is looked up by the
//! BitPay invoice id before it is created, marked sent before the POST, and while a POST's
//! outcome is unknown only looked up until the grace period has passed. Nothing here undoes
//! or delays the credit: a booking that cannot be made now (no permission, Splynx down)
//! waits in the store and `reconcile` retries it.

use anyhow::{Context as _, Result};
use chrono::NaiveDateTime;

use super::*;
use crate::config::StatementGrouping;
use crate::splynx::{NewStatementRecord, NewTransaction, SharedState};
use crate::store::{Booking, BookingKind, BookingState};

/// How long a booking Splynx refused (no permission, invalid data) waits before the next
/// try: long enough not to fill the journal, short enough that a fixed permission shows
/// within the hour.
const REFUSED_RETRY_MS: i64 = 3600 * 1000;

/// The payment statement a credit at `credited` (server-local time) through `server`
/// ("BitPay") is recorded in.
pub fn statement_title(
    server: &str,
    grouping: StatementGrouping,
    credited: NaiveDateTime,
) -> Option<String> {
    match grouping {
        StatementGrouping::Month => Some(format!("{server} {}", credited.format("%m/%Y"))),
        StatementGrouping::Day => Some(format!("{server} {}", credited.format("%d/%m/%Y"))),
        StatementGrouping::Off => None,
    }
}

/// What bookings the credit of `record` adds, with statements grouped by `statements`.
pub(super) fn bookings_for(
    statements: StatementGrouping,
    record: &InvoiceRecord,
) -> Vec<BookingKind> {
    let mut kinds = Vec::new();
    if statements != StatementGrouping::Off {
        kinds.push(BookingKind::Statement);
    }
    if record.order.fee.is_some() {
        kinds.push(BookingKind::Fee);
    }
    kinds
}

/// The fee transaction's `comment`, which it is looked up by ("BitPay invoice X").
fn fee_key(record: &InvoiceRecord, bitpay_id: &str) -> String {
    format!("{} invoice {bitpay_id}", record.order.server_name())
}

/// What booking an invoice's open items came to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Booked {
    /// What each booking made now is.
    pub done: Vec<String>,
    /// Why each booking not done yet waits.
    pub waiting: Vec<String>,
}

/// One attempt's result for one booking.
enum Step {
    Done(String),
    Waiting(String),
}

impl Settler<'_> {
    /// Books what the credit of a stored invoice left open, under its lock (`reconcile`'s
    /// sweep).
    pub fn book_open(&self, record: &InvoiceRecord) -> Result<Booked> {
        let _lock = self.lock_invoice(record.bitpay_id.as_deref().unwrap_or_default())?;
        self.book(record.id)
    }

    /// Books what is open for a credited invoice (the caller holds its lock).
    pub(super) fn book(&self, invoice_id: i64) -> Result<Booked> {
        let mut booked = Booked::default();
        if self.dry_run {
            return Ok(booked);
        }
        let record = self
            .store
            .invoice(invoice_id)?
            .context("stored invoice vanished")?;
        let (Some(bitpay_id), Some(payment_id)) = (&record.bitpay_id, record.splynx_payment_id)
        else {
            return Ok(booked);
        };
        for booking in self.store.bookings(invoice_id)? {
            // Statements turned off after the credit: its record is no longer wanted.
            let unwanted = booking.kind == BookingKind::Statement
                && self.config.statements == StatementGrouping::Off;
            if booking.state == BookingState::Done || unwanted {
                continue;
            }
            match self.book_one(&record, bitpay_id, payment_id, &booking)? {
                Step::Done(note) => booked.done.push(note),
                Step::Waiting(note) => {
                    log::warn!("{bitpay_id}: {note}");
                    booked.waiting.push(note);
                }
            }
        }
        Ok(booked)
    }

    fn book_one(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        payment_id: i64,
        booking: &Booking,
    ) -> Result<Step> {
        let kind = booking.kind;
        let what = kind.describe();
        let now = clock::now_ms();
        let found = match self.look_up(kind, record, bitpay_id) {
            Ok(ids) => ids,
            Err(e) => return self.defer(record, bitpay_id, kind, &e, false, "look it up"),
        };
        if let Some(&first) = found.first() {
            let note = match found.len() {
                1 => format!("{what} {first} found in Splynx"),
                n => format!(
                    "{n} {what}s carry BitPay invoice {bitpay_id} ({}); {first} is kept as this payment's, delete the others in Splynx",
                    join_ids(&found)
                ),
            };
            return self.booking_done(record, bitpay_id, kind, first, &note);
        }
        if let (BookingState::Sent, Some(sent_at)) = (booking.state, booking.sent_at) {
            let until = sent_at + self.config.splynx.payment_grace.as_millis() as i64;
            if now < until {
                let note = format!(
                    "the {what} sent at {} has not appeared in Splynx yet; it is only looked up, not sent again, until {}",
                    clock::datetime_of(sent_at),
                    clock::datetime_of(until)
                );
                self.store
                    .defer_booking(record.id, kind, false, &note, now, now)?;
                return Ok(Step::Waiting(note));
            }
        }
        match kind {
            BookingKind::Statement => self.send_statement_record(record, bitpay_id, payment_id),
            BookingKind::Fee => self.send_fee_transaction(record, bitpay_id),
        }
    }

    /// What Splynx holds for this booking already, lowest id first.
    fn look_up(
        &self,
        kind: BookingKind,
        record: &InvoiceRecord,
        bitpay_id: &str,
    ) -> std::result::Result<Vec<i64>, SplynxError> {
        let mut ids: Vec<i64> = match kind {
            BookingKind::Statement => self
                .splynx
                .statement_records_by_key(bitpay_id)?
                .into_iter()
                .filter(|r| r.additional_1 == bitpay_id)
                .map(|r| r.id)
                .collect(),
            BookingKind::Fee => {
                let key = fee_key(record, bitpay_id);
                self.splynx
                    .transactions_by_comment(record.order.customer_id, &key)?
                    .into_iter()
                    .filter(|t| t.comment == key && t.customer_id == record.order.customer_id)
                    .map(|t| t.id)
                    .collect()
            }
        };
        ids.sort_unstable();
        Ok(ids)
    }

    fn send_statement_record(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        payment_id: i64,
    ) -> Result<Step> {
        let kind = BookingKind::Statement;
        let now = clock::now_ms();
        let credited = clock::local_datetime_of(record.credited_at.unwrap_or(now));
        let title = statement_title(
            record.order.server_name(),
            self.statements(record),
            credited,
        )
        .context("payment statements are off")?;
        // A statement Splynx no longer has (deleted there) is looked up again, once.
        for attempt in 0..2 {
            let statement = match self.statement_id(&title) {
                Ok(Some(id)) => id,
                Ok(None) => {
                    let note = format!(
                        "the payment is credited; payment statement \"{title}\" was asked of Splynx without an answer and has not appeared yet: it is only looked up, not created again, until the grace period (splynx.payment_grace_seconds) has passed"
                    );
                    let now = clock::now_ms();
                    self.store
                        .defer_booking(record.id, kind, true, &note, now, now)?;
                    return Ok(Step::Waiting(note));
                }
                Err(e) => {
                    return self.defer(record, bitpay_id, kind, &e, true, "find its statement")
                }
            };
            let body = NewStatementRecord {
                bank_statements_process_id: statement,
                datetime: credited.format("%Y-%m-%d %H:%M:%S").to_string(),
                payment_date: credited.format("%Y-%m-%d").to_string(),
                amount: format_amount(record.order.price, &record.order.currency),
                status: "processed",
                customer_id: record.order.customer_id,
                invoice_id: record.order.invoice_id(),
                request_id: record.order.request_id(),
                payment_id,
                pairing_1: record.order.customer_id.to_string(),
                pairing_2: record.order.doc_number.clone().unwrap_or_default(),
                additional_1: bitpay_id.to_string(),
                comment: "BitPay".into(),
            };
            let sending =
                format!("POST admin/finance/bank-statements-records (statement \"{title}\")");
            self.mark_booking_sent(record, bitpay_id, kind, &body, &sending)?;
            match self.splynx.create_statement_record(&body) {
                Ok(id) => {
                    let note = format!("recorded in payment statement \"{title}\" as record {id}");
                    return self.booking_done(record, bitpay_id, kind, id, &note);
                }
                Err(SplynxError::Validation { body, .. })
                    if attempt == 0 && body.contains("bank_statements_process_id") =>
                {
                    self.store.forget_statement(&title)?;
                }
                Err(e) => {
                    return self.defer(record, bitpay_id, kind, &e, !e.outcome_unknown(), "add it")
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    /// The fee with its VAT as a debit transaction in the fee category of the customer's
    /// partner, dated the day of the credit.
    fn send_fee_transaction(&self, record: &InvoiceRecord, bitpay_id: &str) -> Result<Step> {
        let kind = BookingKind::Fee;
        let fee = record
            .order
            .fee
            .context("this payment has no service fee")?;
        let terms = self.terms(record)?;
        let currency = &record.order.currency;
        let credited = clock::local_datetime_of(record.credited_at.unwrap_or_else(clock::now_ms));
        let document = record.order.document_label();
        let body = NewTransaction {
            kind: "debit",
            customer_id: record.order.customer_id,
            quantity: "1".into(),
            price: format_amount(fee.fee, currency),
            tax_percent: fee.vat_percent.normalize().to_string(),
            date: credited.format("%Y-%m-%d").to_string(),
            category: terms.fee_category,
            description: format!(
                "{} ({}%), {document}",
                terms.fee_message,
                fee.percent.normalize()
            ),
            comment: fee_key(record, bitpay_id),
        };
        self.mark_booking_sent(
            record,
            bitpay_id,
            kind,
            &body,
            "POST admin/finance/transactions",
        )?;
        match self.splynx.create_transaction(&body) {
            Ok(id) => {
                let note = format!(
                    "service fee {} + VAT {} {currency} charged as transaction {id}",
                    format_amount(fee.fee, currency),
                    format_amount(fee.vat, currency)
                );
                self.booking_done(record, bitpay_id, kind, id, &note)
            }
            Err(e) => self.defer(record, bitpay_id, kind, &e, !e.outcome_unknown(), "add it"),
        }
    }

    /// The Splynx id of the payment statement titled `title`: remembered, else looked up,
    /// else created, under one lock for all processes so a statement is created once.
    /// Like a payment, a create whose outcome is unknown is only looked up until the grace
    /// period has passed (`None` meanwhile), never sent again blindly.
    fn statement_id(&self, title: &str) -> std::result::Result<Option<i64>, SplynxError> {
        let store_error = |e: crate::store::StoreError| SplynxError::State(e.into());
        if let Some(id) = self.store.statement_id(title).map_err(store_error)? {
            return Ok(Some(id));
        }
        let _lock = SharedState::hold(
            self.store,
            "payment-statements",
            "the payment statement lock",
            self.config.splynx.timeout * 3 + Duration::from_secs(5),
        )?;
        if let Some(id) = self.store.statement_id(title).map_err(store_error)? {
            return Ok(Some(id));
        }
        let existing = self
            .splynx
            .statements_by_title(title)?
            .into_iter()
            .filter(|s| s.title == title)
            .map(|s| s.id)
            .min();
        let id = match existing {
            Some(id) => id,
            None => {
                let now = clock::now_ms();
                let sent = self
                    .store
                    .statement_create_sent(title)
                    .map_err(store_error)?;
                let grace = self.config.splynx.payment_grace.as_millis() as i64;
                if sent.is_some_and(|at| now < at + grace) {
                    return Ok(None);
                }
                self.store
                    .mark_statement_create_sent(title, now)
                    .map_err(store_error)?;
                let id = match self.splynx.create_statement(title) {
                    Ok(id) => id,
                    Err(e) => {
                        if !e.outcome_unknown() {
                            self.store
                                .forget_statement_create(title)
                                .map_err(store_error)?;
                        }
                        return Err(e);
                    }
                };
                log::info!("created payment statement \"{title}\" ({id}) in Splynx");
                id
            }
        };
        self.store
            .remember_statement(title, id)
            .map_err(store_error)?;
        Ok(Some(id))
    }

    fn mark_booking_sent(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        kind: BookingKind,
        body: &impl serde::Serialize,
        sending: &str,
    ) -> Result<()> {
        let now = clock::now_ms();
        let tx = self.store.begin()?;
        self.store.mark_booking_sent(record.id, kind, now)?;
        self.store.journal(
            Some(bitpay_id),
            "splynx",
            &format!("{sending}: sending"),
            Some(&serde_json::to_string(body).unwrap_or_default()),
            now,
        )?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(())
    }

    fn booking_done(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        kind: BookingKind,
        splynx_id: i64,
        note: &str,
    ) -> Result<Step> {
        let now = clock::now_ms();
        let tx = self.store.begin()?;
        self.store
            .mark_booking_done(record.id, kind, splynx_id, note, now)?;
        self.store
            .journal(Some(bitpay_id), "booking", note, None, now)?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(Step::Done(note.to_string()))
    }

    /// Not booked this time: journaled, and tried again by `reconcile` (after an hour when
    /// Splynx refused it, since that needs the admin first). `not_applied`: nothing can
    /// have been created, so the next try may send it again.
    fn defer(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        kind: BookingKind,
        e: &SplynxError,
        not_applied: bool,
        action: &str,
    ) -> Result<Step> {
        let now = clock::now_ms();
        let refused = matches!(
            e.cause(),
            SplynxError::Forbidden { .. }
                | SplynxError::Validation { .. }
                | SplynxError::Unauthorized { .. }
        );
        let next_try = if refused { now + REFUSED_RETRY_MS } else { now };
        let note = format!(
            "the payment is credited, but its {} is not booked yet: could not {action}: {e}; `splynx-bitpay reconcile` tries again{}",
            kind.describe(),
            if refused {
                format!(" from {}", clock::datetime_of(next_try))
            } else {
                String::new()
            }
        );
        let tx = self.store.begin()?;
        self.store
            .defer_booking(record.id, kind, not_applied, &note, next_try, now)?;
        self.store
            .journal(Some(bitpay_id), "booking", &note, None, now)?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(Step::Waiting(note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn statements_group_by_the_credits_local_month_or_day() {
        let last_minute = at(2026, 11, 30, 23, 59);
        let first_minute = at(2026, 12, 1, 0, 0);
        let month = StatementGrouping::Month;
        let day = StatementGrouping::Day;
        assert_eq!(
            statement_title("BitPay", month, last_minute).as_deref(),
            Some("BitPay 11/2026")
        );
        assert_eq!(
            statement_title("BitPay", month, first_minute).as_deref(),
            Some("BitPay 12/2026")
        );
        assert_eq!(
            statement_title("BitPay", day, last_minute).as_deref(),
            Some("BitPay 30/11/2026")
        );
        assert_eq!(
            statement_title("BitPay", day, at(2027, 1, 1, 0, 0)).as_deref(),
            Some("BitPay 01/01/2027")
        );
        assert_eq!(
            statement_title("BitPay", StatementGrouping::Off, first_minute),
            None
        );
    }
}
