//! Settlement, shared by `handle-ipn` and `reconcile`: one pure decision over plain data, and
//! one executor that credits Splynx exactly once.

use std::time::Duration;

use anyhow::{Context as _, Result};
use rust_decimal::Decimal;
use serde_json::json;

use crate::bitpay::model::Invoice as BitPayInvoice;
use crate::bitpay::BitPayClient;
use crate::config::{Config, CreditOn};
use crate::money::format_amount;
use crate::splynx::{NewPayment, SplynxClient, SplynxError};
use crate::store::{DocKind, InvoiceRecord, Settlement, Store};
use crate::{clock, lock};

/// What we stored when the invoice was created.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<'a> {
    pub settlement: Settlement,
    pub order_id: &'a str,
    pub price: Decimal,
    pub currency: &'a str,
}

/// What a freshly fetched, signed `GET /invoices/{id}` said.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<'a> {
    pub status: &'a str,
    pub exception_status: Option<&'a str>,
    pub order_id: &'a str,
    pub price: Option<Decimal>,
    pub currency: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Credit,
    /// Not (yet) creditable; may still become so.
    Pending(String),
    /// Final without a credit.
    Expired(String),
    AlreadyCredited,
    /// Never credited automatically; the admin looks at it.
    Review(String),
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Credit => "credit",
            Decision::Pending(_) => "pending",
            Decision::Expired(_) => "expired",
            Decision::AlreadyCredited => "already credited",
            Decision::Review(_) => "review",
        }
    }
}

pub fn decide(stored: &Stored<'_>, fetched: &Fetched<'_>, credit_on: CreditOn) -> Decision {
    match stored.settlement {
        Settlement::Credited => return Decision::AlreadyCredited,
        // Held for the admin: automation never acts on it again.
        Settlement::Review => return Decision::Review("held for review".into()),
        _ => {}
    }
    let mut mismatches = Vec::new();
    if fetched.order_id != stored.order_id {
        mismatches.push(format!(
            "orderId {:?} (ours {:?})",
            fetched.order_id, stored.order_id
        ));
    }
    if fetched.price != Some(stored.price) {
        let shown = fetched.price.map_or("none".to_string(), |p| p.to_string());
        mismatches.push(format!("price {shown} (ours {})", stored.price));
    }
    if fetched.currency != stored.currency {
        mismatches.push(format!(
            "currency {:?} (ours {:?})",
            fetched.currency, stored.currency
        ));
    }
    if !mismatches.is_empty() {
        return Decision::Review(format!(
            "BitPay's invoice does not match ours: {}",
            mismatches.join(", ")
        ));
    }
    let underpaid = fetched.exception_status == Some("paidPartial");
    if stored.settlement == Settlement::Expired {
        return match fetched.status {
            "confirmed" | "complete" => Decision::Review(format!(
                "BitPay reports {} after the invoice was recorded as expired; check it before crediting",
                fetched.status
            )),
            _ => Decision::Expired("already expired".into()),
        };
    }
    match fetched.status {
        "complete" | "confirmed" if underpaid => Decision::Review(format!(
            "BitPay reports {} but underpaid (paidPartial); not credited",
            fetched.status
        )),
        "complete" => Decision::Credit,
        "confirmed" if credit_on == CreditOn::Confirmed => Decision::Credit,
        "confirmed" => {
            Decision::Pending("confirmed; waiting for complete (credit_on = \"complete\")".into())
        }
        "new" if underpaid => Decision::Pending("partially paid; waiting".into()),
        "new" => Decision::Pending("waiting for payment".into()),
        "paid" => Decision::Pending("paid; waiting for confirmations".into()),
        "invalid" => {
            Decision::Pending("invalid (not confirmed in time); may still complete".into())
        }
        "expired" | "declined" if underpaid => {
            Decision::Expired(format!("{}: underpaid, refunded by BitPay", fetched.status))
        }
        "expired" => Decision::Expired("expired unpaid".into()),
        "declined" => Decision::Expired("declined by BitPay".into()),
        other => Decision::Review(format!("unknown BitPay status {other:?}")),
    }
}

/// What settling one invoice did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Credited { payment_id: i64, adopted: bool },
    AlreadyCredited,
    Pending,
    Expired,
    Review(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Credited { .. } => "credited",
            Outcome::AlreadyCredited => "already credited",
            Outcome::Pending => "pending",
            Outcome::Expired => "expired",
            Outcome::Review(_) => "needs review",
        }
    }
}

/// Settles stored invoices against BitPay and Splynx.
pub struct Settler<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub bitpay: &'a BitPayClient,
    pub splynx: &'a SplynxClient<'a>,
    /// Decide and report, change nothing.
    pub dry_run: bool,
}

impl Settler<'_> {
    fn journal(
        &self,
        bitpay_id: &str,
        kind: &str,
        summary: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        if !self.dry_run {
            self.store
                .journal(Some(bitpay_id), kind, summary, detail, clock::now_ms())?;
        }
        Ok(())
    }

    /// Fetches the invoice (signed, with the token that created it) and settles it, under
    /// the invoice's lock.
    pub fn settle(&self, record: &InvoiceRecord) -> Result<Outcome> {
        let bitpay_id = record
            .bitpay_id
            .clone()
            .context("invoice has no BitPay id yet")?;
        let wait =
            self.config.bitpay.timeout + self.config.splynx.timeout * 3 + Duration::from_secs(5);
        let _lock = lock::acquire(
            &self.config.data_dir,
            &lock::bucket_name("invoice", &bitpay_id),
            "this invoice's settlement",
            wait,
        )?;
        // Another process may have settled it while we waited.
        let record = self
            .store
            .invoice(record.id)?
            .context("stored invoice vanished")?;
        if record.settlement == Settlement::Credited {
            self.journal(
                &bitpay_id,
                "decision",
                "already credited; nothing to do",
                None,
            )?;
            return Ok(Outcome::AlreadyCredited);
        }
        let fetched = match self.bitpay.invoice(&bitpay_id, record.token.expose()) {
            Ok(fetched) => fetched,
            Err(e) => {
                self.journal(&bitpay_id, "fetch", &format!("fetch failed: {e}"), None)?;
                return Err(e).context(format!("fetching BitPay invoice {bitpay_id}"));
            }
        };
        let fetch_summary = format!(
            "BitPay says {}{}, price {} {}",
            fetched.status,
            fetched
                .exception_status
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            fetched.price.map_or("?".into(), |p| p.to_string()),
            fetched.currency
        );
        let decision = decide(
            &Stored {
                settlement: record.settlement,
                order_id: &record.order_id,
                price: record.price,
                currency: &record.currency,
            },
            &Fetched {
                status: &fetched.status,
                exception_status: fetched.exception_status.as_deref(),
                order_id: &fetched.order_id,
                price: fetched.price,
                currency: &fetched.currency,
            },
            self.config.bitpay.credit_on,
        );
        let reason = match &decision {
            Decision::Pending(r) | Decision::Expired(r) | Decision::Review(r) => format!(": {r}"),
            _ => String::new(),
        };
        let decision_summary = format!("{}{reason}", decision.label());
        // A run that died while crediting may have made the payment: Splynx decides
        // before anything else is recorded.
        let interrupted = record.settlement == Settlement::Crediting;
        // One transaction for what this check learned and decided: few, short writes keep
        // many concurrent webhooks and reconcile workers from queueing on the database.
        if !self.dry_run {
            let now = clock::now_ms();
            let tx = self.store.begin()?;
            self.store
                .journal(Some(&bitpay_id), "fetch", &fetch_summary, None, now)?;
            self.store.update_bitpay_status(
                record.id,
                &fetched.status,
                fetched.exception_status.as_deref(),
                fetched.expiration_time,
                now,
            )?;
            if !interrupted {
                self.store
                    .journal(Some(&bitpay_id), "decision", &decision_summary, None, now)?;
                match &decision {
                    Decision::Expired(note) if record.settlement != Settlement::Expired => {
                        self.store.set_settlement(
                            record.id,
                            Settlement::Expired,
                            Some(note),
                            now,
                        )?;
                    }
                    Decision::Review(note) if record.settlement != Settlement::Review => {
                        self.store.set_settlement(
                            record.id,
                            Settlement::Review,
                            Some(note),
                            now,
                        )?;
                    }
                    _ => {}
                }
            }
            tx.commit().map_err(crate::store::StoreError::from)?;
        }
        if interrupted {
            if let Some(payment_id) = self.existing_payment(&record, &bitpay_id)? {
                if !self.dry_run {
                    self.finish_credit(&record, &bitpay_id, payment_id, true)?;
                }
                return Ok(Outcome::Credited {
                    payment_id,
                    adopted: true,
                });
            }
            self.journal(&bitpay_id, "decision", &decision_summary, None)?;
            let settled = match &decision {
                Decision::Expired(note) => Some((Settlement::Expired, note)),
                Decision::Review(note) => Some((Settlement::Review, note)),
                _ => None,
            };
            if let (Some((state, note)), false) = (settled, self.dry_run) {
                self.store
                    .set_settlement(record.id, state, Some(note), clock::now_ms())?;
            }
        }
        match decision {
            Decision::AlreadyCredited => Ok(Outcome::AlreadyCredited),
            Decision::Pending(_) => Ok(Outcome::Pending),
            Decision::Expired(_) => Ok(Outcome::Expired),
            Decision::Review(note) => Ok(Outcome::Review(note)),
            Decision::Credit if self.dry_run => Ok(Outcome::Credited {
                payment_id: 0,
                adopted: false,
            }),
            Decision::Credit => self.credit(&record, &bitpay_id, &fetched),
        }
    }

    /// Exactly once: mark "crediting", look the payment up in Splynx, create it only if
    /// absent, record its id.
    fn credit(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        fetched: &BitPayInvoice,
    ) -> Result<Outcome> {
        self.store
            .set_settlement(record.id, Settlement::Crediting, None, clock::now_ms())?;
        if let Some(payment_id) = self.existing_payment(record, bitpay_id)? {
            self.finish_credit(record, bitpay_id, payment_id, true)?;
            return Ok(Outcome::Credited {
                payment_id,
                adopted: true,
            });
        }
        let payment = self.payment_for(record, bitpay_id, fetched);
        let request = serde_json::to_string(&payment).unwrap_or_default();
        match self.splynx.create_payment(&payment) {
            Ok(payment_id) => {
                self.journal(
                    bitpay_id,
                    "splynx",
                    &format!("POST admin/finance/payments → 201, payment {payment_id}"),
                    Some(&request),
                )?;
                self.finish_credit(record, bitpay_id, payment_id, false)?;
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
                    Some(&format!("request {request}\nresponse {body}")),
                )?;
                self.store.set_settlement(
                    record.id,
                    Settlement::Review,
                    Some(&note),
                    clock::now_ms(),
                )?;
                Ok(Outcome::Review(note))
            }
            Err(e) => {
                // Stays "crediting": the next run looks the payment up before trying again.
                self.journal(
                    bitpay_id,
                    "splynx",
                    &format!("POST admin/finance/payments failed: {e}"),
                    Some(&request),
                )?;
                Err(e).context(format!(
                    "creating the Splynx payment for BitPay invoice {bitpay_id}"
                ))
            }
        }
    }

    fn existing_payment(&self, record: &InvoiceRecord, bitpay_id: &str) -> Result<Option<i64>> {
        let found = self
            .splynx
            .payments_by_receipt(bitpay_id, record.customer_id)
            .with_context(|| {
                format!("looking up the Splynx payment for BitPay invoice {bitpay_id}")
            })?;
        let found = found
            .into_iter()
            .find(|p| p.receipt_number == bitpay_id && p.customer_id == record.customer_id);
        self.journal(
            bitpay_id,
            "splynx",
            &match &found {
                Some(p) => format!(
                    "GET admin/finance/payments?receipt_number → found payment {}",
                    p.id
                ),
                None => "GET admin/finance/payments?receipt_number → none".to_string(),
            },
            None,
        )?;
        Ok(found.map(|p| p.id))
    }

    fn finish_credit(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        payment_id: i64,
        adopted: bool,
    ) -> Result<()> {
        let note = format!(
            "credited {} {} as Splynx payment {payment_id}{}",
            format_amount(record.price, &record.currency),
            record.currency,
            if adopted { " (found in Splynx)" } else { "" }
        );
        self.store
            .mark_credited(record.id, payment_id, &note, clock::now_ms())?;
        self.journal(bitpay_id, "decision", &note, None)
    }

    fn payment_for(
        &self,
        record: &InvoiceRecord,
        bitpay_id: &str,
        fetched: &BitPayInvoice,
    ) -> NewPayment {
        let coin = if fetched.transaction_currency.is_empty() {
            "crypto".to_string()
        } else {
            fetched.transaction_currency.clone()
        };
        let paid = if fetched.display_amount_paid.is_empty() {
            coin.clone()
        } else {
            format!("{} {coin}", fetched.display_amount_paid)
        };
        let mut transactions = fetched.transaction_ids();
        transactions.truncate(500);
        let document = match (record.doc_kind, &record.doc_number) {
            (DocKind::Refill, _) => "balance top-up".to_string(),
            (kind, Some(number)) => format!("{} #{number}", kind.as_str()),
            (kind, None) => kind.as_str().to_string(),
        };
        NewPayment {
            customer_id: record.customer_id,
            invoice_id: (record.doc_kind == DocKind::Invoice)
                .then_some(record.doc_id)
                .flatten(),
            request_id: (record.doc_kind == DocKind::Proforma)
                .then_some(record.doc_id)
                .flatten(),
            payment_type: self.config.splynx.payment_method_id,
            receipt_number: bitpay_id.to_string(),
            date: clock::local_date(),
            amount: format_amount(record.price, &record.currency),
            comment: format!("BitPay invoice {bitpay_id} ({coin}), {document}"),
            field_1: bitpay_id.to_string(),
            field_2: paid,
            field_3: transactions,
        }
    }
}

/// Parses our own orderId format back into the document it names.
pub fn parse_order_id(order_id: &str) -> Option<(DocKind, Option<i64>, Option<i64>)> {
    let rest = order_id.strip_prefix("splynx-")?;
    let (kind, rest) = rest.split_once('-')?;
    let (target, suffix) = rest.rsplit_once('-')?;
    if suffix.len() != 8 || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match kind {
        "invoice" | "proforma" => {
            let id = target.parse().ok().filter(|i: &i64| *i > 0)?;
            Some((kind.parse().ok()?, Some(id), None))
        }
        "refill" => {
            let customer = target
                .strip_prefix('c')?
                .parse()
                .ok()
                .filter(|i: &i64| *i > 0)?;
            Some((DocKind::Refill, None, Some(customer)))
        }
        _ => None,
    }
}

/// A summary of an outcome for people and for `--json`.
pub fn describe(bitpay_id: &str, outcome: &Outcome) -> (String, serde_json::Value) {
    let human = match outcome {
        Outcome::Credited {
            payment_id,
            adopted,
        } => format!(
            "{bitpay_id}: credited (Splynx payment {payment_id}{})",
            if *adopted { ", found in Splynx" } else { "" }
        ),
        Outcome::Review(note) => format!("{bitpay_id}: needs review: {note}"),
        other => format!("{bitpay_id}: {}", other.label()),
    };
    let payment_id = match outcome {
        Outcome::Credited { payment_id, .. } => Some(*payment_id),
        _ => None,
    };
    (
        human,
        json!({"bitpay_invoice_id": bitpay_id, "result": outcome.label(), "splynx_payment_id": payment_id}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn stored(settlement: Settlement) -> Stored<'static> {
        Stored {
            settlement,
            order_id: "splynx-invoice-101-3f9a2c1d",
            price: Decimal::from_str("51.61").unwrap(),
            currency: "USD",
        }
    }

    fn fetched(status: &'static str, exception: Option<&'static str>) -> Fetched<'static> {
        Fetched {
            status,
            exception_status: exception,
            order_id: "splynx-invoice-101-3f9a2c1d",
            price: Some(Decimal::from_str("51.6100").unwrap()),
            currency: "USD",
        }
    }

    #[test]
    fn decision_table() {
        use CreditOn::{Complete, Confirmed};
        use Decision::*;
        let open = stored(Settlement::Open);
        let cases: &[(&str, Option<&str>, CreditOn, &str)] = &[
            ("new", None, Confirmed, "pending"),
            ("paid", None, Confirmed, "pending"),
            ("invalid", None, Confirmed, "pending"),
            ("confirmed", None, Confirmed, "credit"),
            ("complete", None, Confirmed, "credit"),
            ("confirmed", None, Complete, "pending"),
            ("complete", None, Complete, "credit"),
            ("confirmed", Some("paidOver"), Confirmed, "credit"),
            ("complete", Some("paidPartial"), Confirmed, "review"),
            ("new", Some("paidPartial"), Confirmed, "pending"),
            ("expired", None, Confirmed, "expired"),
            ("expired", Some("paidPartial"), Confirmed, "expired"),
            ("declined", None, Confirmed, "expired"),
            ("refunded?", None, Confirmed, "review"),
        ];
        for (status, exception, credit_on, want) in cases {
            let got = decide(&open, &fetched(status, *exception), *credit_on);
            assert_eq!(got.label(), *want, "{status} {exception:?} {credit_on:?}");
        }
        let underpaid = decide(&open, &fetched("expired", Some("paidPartial")), Confirmed);
        assert_eq!(
            underpaid,
            Expired("expired: underpaid, refunded by BitPay".into())
        );
        // Held or final records are not acted on again.
        assert_eq!(
            decide(
                &stored(Settlement::Review),
                &fetched("complete", None),
                Confirmed
            )
            .label(),
            "review"
        );
        assert_eq!(
            decide(
                &stored(Settlement::Expired),
                &fetched("expired", None),
                Confirmed
            )
            .label(),
            "expired"
        );
        assert_eq!(
            decide(
                &stored(Settlement::Expired),
                &fetched("complete", None),
                Confirmed
            )
            .label(),
            "review"
        );
        // Never regress a credited record, whatever BitPay says later.
        for status in ["expired", "declined", "new", "complete"] {
            assert_eq!(
                decide(
                    &stored(Settlement::Credited),
                    &fetched(status, None),
                    Confirmed
                ),
                AlreadyCredited
            );
        }
    }

    #[test]
    fn mismatches_go_to_review_and_are_never_credited() {
        let open = stored(Settlement::Open);
        let mut cheap = fetched("complete", None);
        cheap.price = Some(Decimal::from_str("0.01").unwrap());
        assert!(
            matches!(decide(&open, &cheap, CreditOn::Confirmed), Decision::Review(r) if r.contains("price"))
        );
        let mut other = fetched("complete", None);
        other.order_id = "someone-else";
        assert!(
            matches!(decide(&open, &other, CreditOn::Confirmed), Decision::Review(r) if r.contains("orderId"))
        );
        let mut euros = fetched("confirmed", None);
        euros.currency = "EUR";
        assert!(
            matches!(decide(&open, &euros, CreditOn::Confirmed), Decision::Review(r) if r.contains("currency"))
        );
        let mut missing = fetched("complete", None);
        missing.price = None;
        assert_eq!(
            decide(&open, &missing, CreditOn::Confirmed).label(),
            "review"
        );
    }

    #[test]
    fn order_ids_parse_back() {
        assert_eq!(
            parse_order_id("splynx-invoice-101-3f9a2c1d"),
            Some((DocKind::Invoice, Some(101), None))
        );
        assert_eq!(
            parse_order_id("splynx-proforma-7-3f9a2c1d"),
            Some((DocKind::Proforma, Some(7), None))
        );
        assert_eq!(
            parse_order_id("splynx-refill-c42-3f9a2c1d"),
            Some((DocKind::Refill, None, Some(42)))
        );
        for bad in [
            "order-1001",
            "splynx-invoice-x-3f9a2c1d",
            "splynx-invoice-101-zz",
            "splynx-other-1-3f9a2c1d",
            "",
        ] {
            assert_eq!(parse_order_id(bad), None, "{bad}");
        }
    }
}
