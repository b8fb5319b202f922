//! The settlement decision: one pure function over plain data (what we stored, what the
//! payment server says now, normalised), shared by `handle-ipn` and `reconcile`, written
//! once for every server and unit-tested without I/O. Longer than 500 lines because its
//! tests sit with it: the whole decision table, and the same through a fake second server.

use rust_decimal::Decimal;

use crate::config::CreditOn;
use crate::domain::{InvoiceStatus, Settlement};
use crate::server::ServerInvoice;

/// What we stored when the invoice was created.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<'a> {
    pub settlement: Settlement,
    pub order_id: &'a str,
    pub price: Decimal,
    pub currency: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Credit,
    /// Not (yet) creditable; may still become so.
    Pending(String),
    /// Final without a credit.
    Expired(String),
    /// Credited before and BitPay still stands by it; `complete` ends the watch.
    AlreadyCredited {
        complete: bool,
    },
    /// Never credited automatically; the admin looks at it.
    Review(String),
    /// Paid after the invoice expired: held for the admin, never credited automatically.
    PaidLate(String),
    /// Invalid, declined or refunded after the credit: held for the admin.
    Reversed(String),
    /// Held or resolved earlier: automation does not act on it again.
    Held(String),
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Credit => "credit",
            Decision::Pending(_) => "pending",
            Decision::Expired(_) => "expired",
            Decision::AlreadyCredited { .. } => "already credited",
            Decision::Review(_) => "review",
            Decision::PaidLate(_) => "paid late",
            Decision::Reversed(_) => "reversed after credit",
            Decision::Held(_) => "held",
        }
    }

    pub(super) fn summary(&self) -> String {
        match self {
            Decision::Pending(r)
            | Decision::Expired(r)
            | Decision::Review(r)
            | Decision::PaidLate(r)
            | Decision::Reversed(r)
            | Decision::Held(r) => format!("{}: {r}", self.label()),
            Decision::AlreadyCredited { complete: true } => {
                "already credited; final at the server".into()
            }
            _ => self.label().to_string(),
        }
    }
}

/// What to do with an invoice, given what we stored and what `server` (its name, for
/// people) reports now.
pub fn decide(
    stored: &Stored<'_>,
    fetched: &ServerInvoice,
    server: &str,
    credit_on: CreditOn,
) -> Decision {
    match stored.settlement {
        Settlement::Credited => return after_credit(fetched, server),
        Settlement::Review | Settlement::Reversed | Settlement::Resolved => {
            return Decision::Held(format!(
                "{}; not acted on again",
                stored.settlement.describe()
            ))
        }
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
            "{server}'s invoice does not match ours: {}",
            mismatches.join(", ")
        ));
    }
    let words = &fetched.words;
    let exception = words.exception.as_deref().unwrap_or("underpaid");
    if fetched.status == InvoiceStatus::ExpiredPaidLate {
        return Decision::PaidLate(format!(
            "paid after the invoice expired ({exception}){}; not credited automatically: check the payment at {server} and, if you accept it, record it by hand in Splynx",
            fetched
                .paid_text()
                .map(|p| format!(", {server} reports {p} paid"))
                .unwrap_or_default()
        ));
    }
    if fetched.status == InvoiceStatus::MarkedFinal {
        return Decision::Review(format!(
            "{server} reports {words}: marked paid by hand there, with no proof that anything was paid; not credited automatically: check the payment at {server} and, if it was paid, record it by hand in Splynx"
        ));
    }
    if stored.settlement == Settlement::Expired {
        return if fetched.status.is_confirmed() {
            Decision::Review(format!(
                "{server} reports {} after the invoice was recorded as expired; check it before crediting",
                words.status
            ))
        } else {
            Decision::Expired("already expired".into())
        };
    }
    match fetched.status {
        status if status.is_confirmed() && fetched.underpaid => Decision::Review(format!(
            "{server} reports {} but underpaid ({exception}); not credited",
            words.status
        )),
        InvoiceStatus::Final => Decision::Credit,
        InvoiceStatus::PaidConfirmed if credit_on == CreditOn::Confirmed => Decision::Credit,
        InvoiceStatus::PaidConfirmed => {
            Decision::Pending("confirmed; waiting for complete (credit_on = \"complete\")".into())
        }
        InvoiceStatus::Open if fetched.underpaid => {
            Decision::Pending("partially paid; waiting".into())
        }
        InvoiceStatus::Open => Decision::Pending("waiting for payment".into()),
        InvoiceStatus::PaidUnconfirmed => {
            Decision::Pending("paid; waiting for confirmations".into())
        }
        InvoiceStatus::Invalid => {
            Decision::Pending("invalid (not confirmed in time); may still complete".into())
        }
        InvoiceStatus::Expired | InvoiceStatus::Reversed if fetched.underpaid => {
            Decision::Expired(format!("{}: underpaid, refunded by {server}", words.status))
        }
        InvoiceStatus::Expired => Decision::Expired("expired unpaid".into()),
        InvoiceStatus::Reversed => Decision::Expired(format!("{} by {server}", words.status)),
        InvoiceStatus::ExpiredPaidLate | InvoiceStatus::MarkedFinal | InvoiceStatus::Unknown => {
            Decision::Review(format!("unknown {server} status {:?}", words.status))
        }
    }
}

/// A credited invoice: the server may still take it back.
fn after_credit(fetched: &ServerInvoice, server: &str) -> Decision {
    let words = &fetched.words;
    if fetched.refunded {
        return Decision::Reversed(format!(
            "{server} lists a refund for this invoice (status {}) after it was credited, made outside this add-on (to book it as a negative payment: \"Record the refund in Splynx\" on the admin page, or `splynx-bitpay refund ID --record`)",
            words.status
        ));
    }
    match fetched.status {
        InvoiceStatus::Final => Decision::AlreadyCredited { complete: true },
        InvoiceStatus::PaidConfirmed | InvoiceStatus::PaidUnconfirmed => {
            Decision::AlreadyCredited { complete: false }
        }
        InvoiceStatus::Invalid => Decision::Reversed(format!(
            "{server} marked the invoice invalid after it was credited: the payment was not confirmed in time (double-spent or dropped)"
        )),
        InvoiceStatus::Reversed => Decision::Reversed(format!(
            "{server} declined the invoice after it was credited (refunded, or never confirmed)"
        )),
        _ => Decision::Reversed(format!(
            "{server} now reports {:?} for an invoice that was credited",
            words.status
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StatusWords;
    use std::str::FromStr;

    fn stored(settlement: Settlement) -> Stored<'static> {
        Stored {
            settlement,
            order_id: "splynx-invoice-101-3f9a2c1d",
            price: Decimal::from_str("51.61").unwrap(),
            currency: "USD",
        }
    }

    /// BitPay's invoice in these words, as the BitPay server normalises it.
    fn fetched(status: &str, exception: Option<&str>) -> ServerInvoice {
        ServerInvoice {
            status: crate::bitpay::server::status_of(status, exception),
            underpaid: exception == Some("paidPartial"),
            words: StatusWords {
                status: status.into(),
                exception: exception.map(str::to_string),
            },
            order_id: "splynx-invoice-101-3f9a2c1d".into(),
            price: Some(Decimal::from_str("51.6100").unwrap()),
            currency: "USD".into(),
            ..ServerInvoice::default()
        }
    }

    fn decide(stored: &Stored<'_>, fetched: &ServerInvoice, credit_on: CreditOn) -> Decision {
        super::decide(stored, fetched, "BitPay", credit_on)
    }

    #[test]
    fn decision_table() {
        use CreditOn::{Complete, Confirmed};
        use Settlement::{Credited, Expired, Open, Resolved, Reversed, Review};
        // (stored state, BitPay status, exceptionStatus, refund listed, credit_on, decision)
        type Case = (
            Settlement,
            &'static str,
            Option<&'static str>,
            bool,
            CreditOn,
            &'static str,
        );
        let cases: &[Case] = &[
            (Open, "new", None, false, Confirmed, "pending"),
            (Open, "paid", None, false, Confirmed, "pending"),
            (Open, "invalid", None, false, Confirmed, "pending"),
            (Open, "confirmed", None, false, Confirmed, "credit"),
            (Open, "complete", None, false, Confirmed, "credit"),
            (Open, "confirmed", None, false, Complete, "pending"),
            (Open, "complete", None, false, Complete, "credit"),
            (
                Open,
                "confirmed",
                Some("paidOver"),
                false,
                Confirmed,
                "credit",
            ),
            (
                Open,
                "complete",
                Some("paidPartial"),
                false,
                Confirmed,
                "review",
            ),
            (
                Open,
                "new",
                Some("paidPartial"),
                false,
                Confirmed,
                "pending",
            ),
            (Open, "expired", None, false, Confirmed, "expired"),
            (
                Open,
                "expired",
                Some("paidPartial"),
                false,
                Confirmed,
                "expired",
            ),
            (
                Open,
                "expired",
                Some("paidLate"),
                false,
                Confirmed,
                "paid late",
            ),
            (Open, "declined", None, false, Confirmed, "expired"),
            (Open, "refunded?", None, false, Confirmed, "review"),
            // A refund of an invoice we never credited takes nothing back.
            (
                Open,
                "expired",
                Some("paidPartial"),
                true,
                Confirmed,
                "expired",
            ),
            // Expired records: a late confirmation or payment is held, never credited.
            (Expired, "expired", None, false, Confirmed, "expired"),
            (Expired, "complete", None, false, Confirmed, "review"),
            (
                Expired,
                "expired",
                Some("paidLate"),
                false,
                Confirmed,
                "paid late",
            ),
            // Credited: watched until complete; anything that takes it back is a reversal.
            (
                Credited,
                "confirmed",
                None,
                false,
                Confirmed,
                "already credited",
            ),
            (Credited, "paid", None, false, Confirmed, "already credited"),
            (
                Credited,
                "complete",
                None,
                false,
                Confirmed,
                "already credited",
            ),
            (
                Credited,
                "invalid",
                None,
                false,
                Confirmed,
                "reversed after credit",
            ),
            (
                Credited,
                "declined",
                None,
                false,
                Confirmed,
                "reversed after credit",
            ),
            (
                Credited,
                "expired",
                None,
                false,
                Confirmed,
                "reversed after credit",
            ),
            (
                Credited,
                "new",
                None,
                false,
                Confirmed,
                "reversed after credit",
            ),
            (
                Credited,
                "complete",
                None,
                true,
                Confirmed,
                "reversed after credit",
            ),
            (
                Credited,
                "declined",
                None,
                true,
                Complete,
                "reversed after credit",
            ),
            // Held or resolved records are never acted on again.
            (Review, "complete", None, false, Confirmed, "held"),
            (Reversed, "complete", None, false, Confirmed, "held"),
            (Resolved, "invalid", None, true, Confirmed, "held"),
        ];
        for (settlement, status, exception, refunded, credit_on, want) in cases {
            let mut f = fetched(status, *exception);
            f.refunded = *refunded;
            let got = decide(&stored(*settlement), &f, *credit_on);
            assert_eq!(
                got.label(),
                *want,
                "{settlement:?} {status} {exception:?} refund={refunded} {credit_on:?}: {got:?}"
            );
        }
        let open = stored(Open);
        assert_eq!(
            decide(&open, &fetched("expired", Some("paidPartial")), Confirmed),
            Decision::Expired("expired: underpaid, refunded by BitPay".into())
        );
        assert_eq!(
            decide(&stored(Credited), &fetched("complete", None), Confirmed),
            Decision::AlreadyCredited { complete: true }
        );
        assert_eq!(
            decide(&stored(Credited), &fetched("confirmed", None), Confirmed),
            Decision::AlreadyCredited { complete: false }
        );
    }

    #[test]
    fn paid_late_says_what_was_paid_and_is_never_credited() {
        let mut late = fetched("expired", Some("paidLate"));
        late.amount_paid = "0.000871".into();
        late.coin = "BTC".into();
        let Decision::PaidLate(note) =
            decide(&stored(Settlement::Open), &late, CreditOn::Confirmed)
        else {
            panic!("not held as paid late");
        };
        assert!(
            note.contains("0.000871 BTC") && note.contains("not credited"),
            "{note}"
        );
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
        other.order_id = "someone-else".into();
        assert!(
            matches!(decide(&open, &other, CreditOn::Confirmed), Decision::Review(r) if r.contains("orderId"))
        );
        let mut euros = fetched("confirmed", None);
        euros.currency = "EUR".into();
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

    /// A second server with its own words (BTCPay's, say): the same table decides for it,
    /// through the seam, without a line of it knowing that server.
    mod another_server {
        use super::*;
        use crate::domain::NewInvoice;
        use crate::server::{
            Capabilities, CreateDetails, Credential, PaymentServer, ServerError, ServerResult,
            SignatureCheck, WebhookError, WebhookFormat, WebhookHeaders, WebhookNotice,
        };

        struct FakeServer {
            invoices: Vec<ServerInvoice>,
        }

        fn refused<T>(what: &str) -> ServerResult<T> {
            Err(ServerError::Refused {
                words: format!("no {what}"),
                cause: anyhow::anyhow!("the fake server has no {what}"),
            })
        }

        struct FakeWebhooks;

        impl WebhookFormat for FakeWebhooks {
            fn name(&self) -> &'static str {
                "Fake"
            }

            fn signature<'h>(&self, headers: &'h WebhookHeaders) -> Option<&'h str> {
                headers.x_signature.as_deref()
            }

            fn parse_webhook(&self, _body: &[u8]) -> Result<WebhookNotice, WebhookError> {
                Err(WebhookError::NoInvoiceId)
            }

            fn check_signature(
                &self,
                _body: &[u8],
                _header: Option<&str>,
                _order: Option<&NewInvoice>,
            ) -> SignatureCheck {
                SignatureCheck::Invalid
            }
        }

        impl PaymentServer for FakeServer {
            fn webhooks(&self) -> &dyn WebhookFormat {
                &FakeWebhooks
            }

            fn capabilities(&self) -> Capabilities {
                Capabilities {
                    listing: false,
                    lists_changes: false,
                    refunds: false,
                    cancels_refunds: false,
                    idempotent_create: false,
                }
            }

            fn credential(&self) -> ServerResult<Credential> {
                refused("credential")
            }

            fn create(
                &self,
                _order: &NewInvoice,
                _details: &CreateDetails<'_>,
            ) -> ServerResult<ServerInvoice> {
                refused("create")
            }

            fn fetch(&self, id: &str, _order: &NewInvoice) -> ServerResult<ServerInvoice> {
                match self.invoices.iter().find(|i| i.id == id) {
                    Some(invoice) => Ok(invoice.clone()),
                    None => Err(ServerError::NotFound(anyhow::anyhow!("no invoice {id}"))),
                }
            }

            fn find_created(&self, _order: &NewInvoice) -> ServerResult<Option<ServerInvoice>> {
                Ok(None)
            }

            fn fetch_unknown(
                &self,
                _id: &str,
            ) -> ServerResult<Option<(ServerInvoice, Credential)>> {
                Ok(None)
            }

            fn for_each_created(
                &self,
                _from_ms: i64,
                _until_ms: i64,
                _each: &mut dyn FnMut(ServerInvoice),
            ) -> ServerResult<()> {
                refused("list")
            }
        }

        fn invoice(
            id: &str,
            words: (&str, Option<&str>),
            status: InvoiceStatus,
            underpaid: bool,
        ) -> ServerInvoice {
            ServerInvoice {
                id: id.into(),
                status,
                underpaid,
                words: StatusWords {
                    status: words.0.into(),
                    exception: words.1.map(str::to_string),
                },
                ..fetched("new", None)
            }
        }

        #[test]
        fn the_table_decides_for_any_server() {
            use InvoiceStatus::*;
            let server = FakeServer {
                invoices: vec![
                    invoice("new", ("New", None), Open, false),
                    invoice("processing", ("Processing", None), PaidUnconfirmed, false),
                    invoice("settled", ("Settled", None), Final, false),
                    invoice("partial", ("Settled", Some("PaidPartial")), Final, true),
                    invoice(
                        "late",
                        ("Expired", Some("PaidLate")),
                        ExpiredPaidLate,
                        false,
                    ),
                    invoice("expired", ("Expired", None), Expired, false),
                    invoice("invalid", ("Invalid", None), Invalid, false),
                    invoice("odd", ("Weird", None), Unknown, false),
                    invoice("marked", ("Settled", Some("Marked")), MarkedFinal, false),
                ],
            };
            let order = crate::domain::InvoiceRecord::example(1, Settlement::Open, "new").order;
            let cases = [
                (Settlement::Open, "new", "pending"),
                (Settlement::Open, "processing", "pending"),
                (Settlement::Open, "settled", "credit"),
                (Settlement::Open, "partial", "review"),
                (Settlement::Open, "late", "paid late"),
                (Settlement::Open, "expired", "expired"),
                (Settlement::Open, "invalid", "pending"),
                (Settlement::Open, "odd", "review"),
                // Marked paid by hand: an admin's word, never money.
                (Settlement::Open, "marked", "review"),
                (Settlement::Expired, "marked", "review"),
                (Settlement::Credited, "marked", "reversed after credit"),
                (Settlement::Credited, "settled", "already credited"),
                (Settlement::Credited, "invalid", "reversed after credit"),
                (Settlement::Expired, "settled", "review"),
            ];
            for (settlement, id, want) in cases {
                let fetched = server.fetch(id, &order).unwrap();
                let got = super::super::decide(
                    &stored(settlement),
                    &fetched,
                    server.name(),
                    CreditOn::Confirmed,
                );
                assert_eq!(got.label(), want, "{settlement:?} {id}: {got:?}");
            }
            let late = server.fetch("late", &order).unwrap();
            let Decision::PaidLate(note) = super::super::decide(
                &stored(Settlement::Open),
                &late,
                server.name(),
                CreditOn::Confirmed,
            ) else {
                panic!("not held as paid late");
            };
            assert!(
                note.contains("(PaidLate)") && note.contains("at Fake") && !note.contains("BitPay"),
                "{note}"
            );
            assert!(server.fetch("missing", &order).unwrap_err().is_not_found());
        }
    }
}
