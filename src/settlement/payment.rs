//! The Splynx side of settling: finish an interrupted credit, look the payment up by
//! receipt number, send it once (recorded as sent first), respect the grace period while
//! an outcome is unknown, and hold duplicates with every id.

use anyhow::{Context as _, Result};

use super::*;

impl Settler<'_> {
    /// A run that died, or gave up waiting for Splynx, while crediting: Splynx decides
    /// before anything else is done.
    pub(super) fn finish_interrupted(
        &self,
        check: &Check<'_>,
        decision: Decision,
    ) -> Result<Outcome> {
        let Check {
            record,
            id: bitpay_id,
            ..
        } = *check;
        match self.look_up_payments(record, bitpay_id)? {
            Found::One(payment_id) => {
                if !self.dry_run {
                    self.finish_credit(check, payment_id, true)?;
                }
                return Ok(Outcome::Credited {
                    payment_id,
                    adopted: true,
                });
            }
            Found::Several(ids) => return self.hold_duplicates(record, bitpay_id, &ids),
            Found::Nothing => {}
        }
        self.refuse_while_in_grace(record, bitpay_id)?;
        self.record_check(check, &decision)?;
        if decision == Decision::Credit {
            return if self.dry_run {
                Ok(Outcome::Credited {
                    payment_id: 0,
                    adopted: false,
                })
            } else {
                self.send_payment(check)
            };
        }
        // No payment in Splynx and nothing to credit: back to where BitPay says it is.
        if !self.dry_run {
            self.store.set_settlement(
                record.id,
                Settlement::Open,
                Some("no payment in Splynx"),
                clock::now_ms(),
            )?;
        }
        self.apply(check, decision)
    }

    /// A payment sent less than `payment_grace` ago may still be committed by Splynx:
    /// until then it is only looked up (exit 75: BitPay and cron try again).
    fn refuse_while_in_grace(&self, record: &InvoiceRecord, bitpay_id: &str) -> Result<()> {
        let Some(sent_at) = record.payment_sent_at else {
            return Ok(());
        };
        let until = sent_at + self.config.splynx.payment_grace.as_millis() as i64;
        if record.settlement != Settlement::Sent || clock::now_ms() >= until {
            return Ok(());
        }
        let waiting = Waiting::InGrace {
            server: self.server.name(),
            invoice: bitpay_id.to_string(),
            sent_at: clock::datetime_of(sent_at),
            until: clock::datetime_of(until),
        };
        self.journal(bitpay_id, "decision", &format!("waiting: {waiting}"), None)?;
        Err(waiting.into())
    }

    /// Exactly once: mark "crediting", look the payment up in Splynx, create it only if
    /// absent, record its id.
    pub(super) fn credit(&self, check: &Check<'_>) -> Result<Outcome> {
        let Check {
            record,
            id: bitpay_id,
            ..
        } = *check;
        self.store
            .set_settlement(record.id, Settlement::Crediting, None, clock::now_ms())?;
        match self.look_up_payments(record, bitpay_id)? {
            Found::One(payment_id) => {
                self.finish_credit(check, payment_id, true)?;
                Ok(Outcome::Credited {
                    payment_id,
                    adopted: true,
                })
            }
            Found::Several(ids) => self.hold_duplicates(record, bitpay_id, &ids),
            Found::Nothing => self.send_payment(check),
        }
    }

    /// Records the POST as sent, then sends it. Only a reply that proves Splynx did not
    /// apply it (a refusal, or a connection never made) makes it safe to send again soon.
    fn send_payment(&self, check: &Check<'_>) -> Result<Outcome> {
        let Check {
            record,
            id: bitpay_id,
            ..
        } = *check;
        let payment = self.payment_for(check)?;
        let request = serde_json::to_string(&payment).unwrap_or_default();
        let now = clock::now_ms();
        {
            let tx = self.store.begin()?;
            if let Some(sent_at) = record.payment_sent_at {
                self.store.journal(
                    Some(bitpay_id),
                    "decision",
                    &format!(
                        "the payment sent at {} has not appeared in Splynx within the grace period ({} s): sending it again",
                        clock::datetime_of(sent_at),
                        self.config.splynx.payment_grace.as_secs()
                    ),
                    None,
                    now,
                )?;
            }
            self.store.mark_payment_sent(record.id, now)?;
            self.store.journal(
                Some(bitpay_id),
                "splynx",
                "POST admin/finance/payments: sending",
                Some(&request),
                now,
            )?;
            tx.commit().map_err(crate::store::StoreError::from)?;
        }
        match self.splynx.create_payment(&payment) {
            Ok(payment_id) => {
                self.journal(
                    bitpay_id,
                    "splynx",
                    &format!("POST admin/finance/payments → 201, payment {payment_id}"),
                    None,
                )?;
                let sent = InvoiceRecord {
                    payment_attempts: record.payment_attempts + 1,
                    ..record.clone()
                };
                let check = Check {
                    record: &sent,
                    ..*check
                };
                self.finish_credit(&check, payment_id, false)?;
                Ok(Outcome::Credited {
                    payment_id,
                    adopted: false,
                })
            }
            Err(SplynxError::Validation { message, body }) => {
                let note = format!("Splynx refused the payment (HTTP 422): {message}");
                self.journal(
                    bitpay_id,
                    "splynx",
                    &format!("POST admin/finance/payments → 422: {message}"),
                    Some(&format!("response {body}")),
                )?;
                self.store
                    .mark_payment_not_sent(record.id, clock::now_ms())?;
                self.hold(record, HoldKind::Review, &note, &[])?;
                Ok(Outcome::Review(note))
            }
            Err(e) if e.outcome_unknown() => {
                let until = now + self.config.splynx.payment_grace.as_millis() as i64;
                self.journal(
                    bitpay_id,
                    "splynx",
                    &format!(
                        "POST admin/finance/payments: outcome unknown ({e}); looked up, not sent again, until {}",
                        clock::datetime_of(until)
                    ),
                    None,
                )?;
                Err(anyhow::Error::new(e).context(Waiting::OutcomeUnknown {
                    server: self.server.name(),
                    invoice: bitpay_id.to_string(),
                    until: clock::datetime_of(until),
                }))
            }
            Err(e) => {
                // Provably not applied: the next run looks it up and sends it again.
                self.journal(
                    bitpay_id,
                    "splynx",
                    &format!("POST admin/finance/payments failed, not applied: {e}"),
                    None,
                )?;
                self.store
                    .mark_payment_not_sent(record.id, clock::now_ms())?;
                Err(e).context(format!(
                    "creating the Splynx payment for BitPay invoice {bitpay_id}"
                ))
            }
        }
    }

    /// Splynx's payments with our receipt number (for this customer).
    pub(super) fn look_up_payments(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
    ) -> Result<Found> {
        let mut ids: Vec<i64> = self
            .splynx
            .payments_by_receipt(bitpay_id, record.order.customer_id)
            .with_context(|| {
                format!("looking up the Splynx payment for BitPay invoice {bitpay_id}")
            })?
            .into_iter()
            .filter(|p| p.receipt_number == bitpay_id && p.customer_id == record.order.customer_id)
            .map(|p| p.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let (summary, found) = match ids.as_slice() {
            [] => ("none".to_string(), Found::Nothing),
            [one] => (format!("found payment {one}"), Found::One(*one)),
            several => (
                format!("found {} payments: {}", several.len(), join_ids(several)),
                Found::Several(ids.clone()),
            ),
        };
        self.journal(
            bitpay_id,
            "splynx",
            &format!("GET admin/finance/payments?receipt_number → {summary}"),
            None,
        )?;
        Ok(found)
    }

    pub(super) fn hold_duplicates(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        ids: &[i64],
    ) -> Result<Outcome> {
        let note = format!(
            "{} Splynx payments carry receipt number {bitpay_id} (payments {}): one BitPay payment is credited more than once. Nothing was deleted: keep one, delete the others in Splynx (Finance → Payments), then mark it resolved on the admin page (Config → Integrations → Bitpay) or with `splynx-bitpay resolve {bitpay_id}`",
            ids.len(),
            join_ids(ids)
        );
        self.hold(record, HoldKind::Duplicate, &note, ids)?;
        Ok(Outcome::Review(note))
    }

    pub(super) fn hold(
        &self,
        record: &InvoiceRecord,
        kind: HoldKind,
        note: &str,
        ids: &[i64],
    ) -> Result<()> {
        if !self.dry_run {
            let newly = self.store.hold(record, kind, note, ids, clock::now_ms())?;
            if newly {
                log::warn!(
                    "{}: {}: {note}",
                    record.bitpay_id.as_deref().unwrap_or("?"),
                    kind.as_str()
                );
            }
        }
        Ok(())
    }

    fn finish_credit(&self, check: &Check<'_>, payment_id: i64, adopted: bool) -> Result<()> {
        let Check {
            record,
            id: bitpay_id,
            fetched,
        } = *check;
        let note = format!(
            "credited {} {} as Splynx payment {payment_id}{}",
            format_amount(record.order.price, &record.order.currency),
            record.order.currency,
            if adopted { " (found in Splynx)" } else { "" }
        );
        // Watched until BitPay says complete; a payment sent more than once is watched
        // even then, so a late duplicate is still seen.
        let now = clock::now_ms();
        let watch = (fetched.status != InvoiceStatus::Final || record.payment_attempts > 1)
            .then_some(now + WATCH_MS);
        let tx = self.store.begin()?;
        self.store
            .mark_credited(record.id, payment_id, &note, watch, now)?;
        // In the credit's transaction: a crash right after still books them.
        self.store.add_bookings(
            record.id,
            &booking::bookings_for(self.statements(record), record),
            now,
        )?;
        self.store
            .journal(Some(bitpay_id), "decision", &note, None, now)?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(())
    }

    fn payment_for(&self, check: &Check<'_>) -> Result<NewPayment> {
        let Check {
            record,
            id: bitpay_id,
            fetched,
        } = *check;
        // The payment method of the customer's partner, as the checkout decided.
        let payment_method = self.terms(record)?.payment_method_id;
        let coin = if fetched.coin.is_empty() {
            "crypto".to_string()
        } else {
            fetched.coin.clone()
        };
        let paid = if fetched.amount_paid.is_empty() {
            coin.clone()
        } else {
            format!("{} {coin}", fetched.amount_paid)
        };
        let mut transactions = fetched.transaction_ids.clone();
        transactions.truncate(500);
        let document = record.order.document_label();
        Ok(NewPayment {
            customer_id: record.order.customer_id,
            invoice_id: record.order.invoice_id(),
            request_id: record.order.request_id(),
            payment_type: payment_method,
            receipt_number: bitpay_id.to_string(),
            date: clock::local_date(),
            amount: format_amount(record.order.price, &record.order.currency),
            comment: format!(
                "{} invoice {bitpay_id} ({coin}), {document}",
                self.server.name()
            ),
            field_1: bitpay_id.to_string(),
            field_2: paid,
            field_3: transactions,
        })
    }
}
