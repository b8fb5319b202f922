//! The settlement decision: one pure function over plain data (what we stored, what BitPay
//! says now), shared by `handle-ipn` and `reconcile`, unit-tested without I/O.

use rust_decimal::Decimal;

use crate::config::CreditOn;
use crate::domain::Settlement;

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
    /// BitPay lists a refund for the invoice.
    pub refunded: bool,
    /// What was paid ("0.000871 BTC"), for people.
    pub paid: Option<&'a str>,
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
                "already credited; BitPay says complete".into()
            }
            _ => self.label().to_string(),
        }
    }
}

pub fn decide(stored: &Stored<'_>, fetched: &Fetched<'_>, credit_on: CreditOn) -> Decision {
    match stored.settlement {
        Settlement::Credited => return after_credit(fetched),
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
            "BitPay's invoice does not match ours: {}",
            mismatches.join(", ")
        ));
    }
    let underpaid = fetched.exception_status == Some("paidPartial");
    let paid_late = fetched.status == "expired" && fetched.exception_status == Some("paidLate");
    if paid_late {
        return Decision::PaidLate(format!(
            "paid after the invoice expired (paidLate){}; not credited automatically: check the payment at BitPay and, if you accept it, record it by hand in Splynx",
            fetched
                .paid
                .map(|p| format!(", BitPay reports {p} paid"))
                .unwrap_or_default()
        ));
    }
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

/// A credited invoice: BitPay may still take it back.
fn after_credit(fetched: &Fetched<'_>) -> Decision {
    if fetched.refunded {
        return Decision::Reversed(format!(
            "BitPay lists a refund for this invoice (status {}) after it was credited",
            fetched.status
        ));
    }
    match fetched.status {
        "complete" => Decision::AlreadyCredited { complete: true },
        "confirmed" | "paid" => Decision::AlreadyCredited { complete: false },
        "invalid" => Decision::Reversed(
            "BitPay marked the invoice invalid after it was credited: the payment was not confirmed in time (double-spent or dropped)".into(),
        ),
        "declined" => Decision::Reversed(
            "BitPay declined the invoice after it was credited (refunded, or never confirmed)"
                .into(),
        ),
        other => Decision::Reversed(format!(
            "BitPay now reports {other:?} for an invoice that was credited"
        )),
    }
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
            refunded: false,
            paid: None,
        }
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
        late.paid = Some("0.000871 BTC");
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
}
