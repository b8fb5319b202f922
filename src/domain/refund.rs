//! Refunds asked for from Splynx: their states, and the pure rules of what may be refunded
//! (contract money rule 10). No I/O.

use rust_decimal::Decimal;

use super::{InvoiceRecord, InvoiceStatus, Origin, Settlement};
use crate::config::ServerKind;
use crate::money::{currency_decimals, format_amount};

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefundState {
    /// Recorded, and sent (or about to be) without an answer yet: looked up by its own key,
    /// never sent again blindly.
    Sending,
    /// The server has it; the payer has not been paid yet.
    Requested,
    /// The payer gave an address; the payout is under way.
    Pending,
    /// The money left: booked in Splynx as a negative payment.
    PaidOut,
    Failed,
    Cancelled,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Sending => "sending",
            RefundState::Requested => "requested",
            RefundState::Pending => "pending",
            RefundState::PaidOut => "paid-out",
            RefundState::Failed => "failed",
            RefundState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<RefundState> {
        [
            RefundState::Sending,
            RefundState::Requested,
            RefundState::Pending,
            RefundState::PaidOut,
            RefundState::Failed,
            RefundState::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// For people: "requested (no answer yet)", "paid out".
    pub fn describe(self) -> &'static str {
        match self {
            RefundState::Sending => "requested (no answer from the server yet)",
            RefundState::Requested => "requested",
            RefundState::Pending => "pending",
            RefundState::PaidOut => "paid out",
            RefundState::Failed => "failed",
            RefundState::Cancelled => "cancelled",
        }
    }

    /// Its amount is spoken for: everything but a failed or cancelled refund.
    pub fn holds_amount(self) -> bool {
        !matches!(self, RefundState::Failed | RefundState::Cancelled)
    }

    /// The server may still change it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RefundState::Sending | RefundState::Requested | RefundState::Pending
        )
    }
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRecord {
    pub id: i64,
    /// Our invoice record it refunds.
    pub invoice_id: i64,
    /// The request's own key (BitPay's idempotency `guid`).
    pub guid: String,
    /// The server's refund id (BitPay) or pull payment id (BTCPay), once it answered.
    pub server_id: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub reason: Option<String>,
    pub state: RefundState,
    /// The server's own word for it ("created", "success", "canceled").
    pub server_status: Option<String>,
    /// Where the payer claims it (BTCPay's pull payment page).
    pub claim_link: Option<String>,
    /// Who asked, in the journal's words.
    pub requested_by: String,
    pub requested_at: i64,
    pub updated_at: i64,
    pub note: Option<String>,
    /// When the negative payment was POSTed to Splynx (its outcome may be unknown).
    pub booking_sent_at: Option<i64>,
    /// The negative payment in Splynx, once booked.
    pub splynx_payment_id: Option<i64>,
}

impl RefundRecord {
    /// Paid out and not yet booked in Splynx.
    pub fn needs_booking(&self) -> bool {
        self.state == RefundState::PaidOut && self.splynx_payment_id.is_none()
    }

    /// The name people and the journal know it by: the server's id, or our key.
    pub fn name(&self) -> &str {
        self.server_id.as_deref().unwrap_or(&self.guid)
    }
}

/// Why a refund may not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    #[error("invoice {0} is not credited ({1}): only a credited payment can be refunded")]
    NotCredited(String, &'static str),
    #[error("invoice {0} is held for the admin ({1}): resolve it first")]
    Held(String, &'static str),
    #[error("BitPay invoice {0} is confirmed but not complete yet: wait until BitPay completes it (a refund now declines the invoice and forces a full refund that cannot be cancelled)")]
    NotFinalAtBitPay(String),
    #[error("{server} invoice {id} says {words}: it cannot be refunded from here")]
    NotRefundableThere {
        server: &'static str,
        id: String,
        words: String,
    },
    #[error("invoice {id} was refunded in the {server} dashboard, outside this add-on, so it cannot be refunded from here: record that refund in Splynx (`refund {id} --record`, or \"Record the refund\" on the admin page) after checking it")]
    RefundedElsewhere { server: &'static str, id: String },
    #[error("invoice {0} was paid through a direct link, so BitPay has no e-mail address to ask the payer for a refund address: refund it in the BitPay dashboard")]
    NoBuyerEmail(String),
    #[error("the amount {amount} is not a positive amount in {currency} with at most {decimals} decimals")]
    BadAmount {
        amount: String,
        currency: String,
        decimals: u32,
    },
    /// More than is left: what is left, and why (the message says it all).
    #[error("{0}")]
    TooMuch(String),
    #[error("nothing is left to refund of invoice {0}")]
    NothingLeft(String),
}

/// Which of the server's refunds of an invoice (`id`, and the request key it carries)
/// were made outside this add-on: neither a refund id nor a key of ours.
pub fn made_elsewhere<'a, T>(
    at_server: &'a [T],
    ours: &[RefundRecord],
    id_and_key: impl Fn(&T) -> (&str, Option<&str>),
) -> Vec<&'a T> {
    at_server
        .iter()
        .filter(|r| {
            let (id, key) = id_and_key(r);
            !ours
                .iter()
                .any(|o| o.server_id.as_deref() == Some(id) || key.is_some_and(|k| k == o.guid))
        })
        .collect()
}

/// What may still be refunded of `record`: what was credited less every refund that holds
/// its amount.
pub fn refundable_left(record: &InvoiceRecord, refunds: &[RefundRecord]) -> (Decimal, Decimal) {
    let taken: Decimal = refunds
        .iter()
        .filter(|r| r.invoice_id == record.id && r.state.holds_amount())
        .map(|r| r.amount)
        .sum();
    (record.order.price - taken, taken)
}

/// The amount to refund of `record` (everything left when `asked` is `None`), given the
/// server's fresh word on it (and whether it lists a refund made outside this add-on), or
/// why not.
pub fn check_refund(
    record: &InvoiceRecord,
    status: InvoiceStatus,
    words: &str,
    refunded_elsewhere: bool,
    refunds: &[RefundRecord],
    asked: Option<&str>,
) -> Result<Decimal, RefundRefusal> {
    let id = record
        .bitpay_id
        .as_ref()
        .map_or_else(|| record.order.guid.clone(), ToString::to_string);
    let server = record.order.server();
    match record.settlement {
        Settlement::Credited => {}
        Settlement::Review | Settlement::Reversed => {
            return Err(RefundRefusal::Held(id, record.settlement.as_str()))
        }
        other => return Err(RefundRefusal::NotCredited(id, other.as_str())),
    }
    if refunded_elsewhere {
        return Err(RefundRefusal::RefundedElsewhere {
            server: server.name(),
            id,
        });
    }
    match (server, status) {
        (ServerKind::BitPay, InvoiceStatus::Final) => {}
        (ServerKind::BitPay, InvoiceStatus::PaidConfirmed) => {
            return Err(RefundRefusal::NotFinalAtBitPay(id))
        }
        (ServerKind::Btcpay, InvoiceStatus::Final) => {}
        _ => {
            return Err(RefundRefusal::NotRefundableThere {
                server: server.name(),
                id,
                words: words.to_string(),
            })
        }
    }
    if server == ServerKind::BitPay && record.order.origin() == Origin::DirectLink {
        return Err(RefundRefusal::NoBuyerEmail(id));
    }
    let currency = &record.order.currency;
    let (left, taken) = refundable_left(record, refunds);
    if left <= Decimal::ZERO {
        return Err(RefundRefusal::NothingLeft(id));
    }
    let Some(text) = asked else {
        return Ok(left);
    };
    let decimals = currency_decimals(currency);
    let amount = text
        .trim()
        .parse::<Decimal>()
        .ok()
        .filter(|a| *a > Decimal::ZERO && a.normalize().scale() <= decimals)
        .ok_or_else(|| RefundRefusal::BadAmount {
            amount: text.chars().take(40).collect(),
            currency: currency.clone(),
            decimals,
        })?;
    if amount > left {
        return Err(RefundRefusal::TooMuch(format!(
            "{} {currency} is more than what can still be refunded of invoice {id}: {} {currency} (credited {}, refunded or being refunded {})",
            format_amount(amount, currency),
            format_amount(left, currency),
            format_amount(record.order.price, currency),
            format_amount(taken, currency),
        )));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credited() -> InvoiceRecord {
        InvoiceRecord::example(1, Settlement::Credited, "complete")
    }

    fn refund(amount: &str, state: RefundState) -> RefundRecord {
        RefundRecord {
            id: 1,
            invoice_id: 1,
            guid: "g".into(),
            server_id: None,
            amount: amount.parse().unwrap(),
            currency: "USD".into(),
            reason: None,
            state,
            server_status: None,
            claim_link: None,
            requested_by: "the command line".into(),
            requested_at: 0,
            updated_at: 0,
            note: None,
            booking_sent_at: None,
            splynx_payment_id: None,
        }
    }

    fn check(refunds: &[RefundRecord], asked: Option<&str>) -> Result<Decimal, RefundRefusal> {
        check_refund(
            &credited(),
            InvoiceStatus::Final,
            "complete",
            false,
            refunds,
            asked,
        )
    }

    #[test]
    fn everything_left_or_part_of_it() {
        assert_eq!(check(&[], None), Ok("51.61".parse().unwrap()));
        assert_eq!(check(&[], Some("10.5")), Ok("10.5".parse().unwrap()));
        // A refund in flight counts; a failed or cancelled one frees its amount.
        let earlier = [
            refund("20", RefundState::Pending),
            refund("30", RefundState::Cancelled),
            refund("1", RefundState::Sending),
        ];
        assert_eq!(check(&earlier, None), Ok("30.61".parse().unwrap()));
        assert!(matches!(
            check(&earlier, Some("30.62")),
            Err(RefundRefusal::TooMuch(_))
        ));
        let all = [refund("51.61", RefundState::PaidOut)];
        assert_eq!(
            check(&all, Some("1")),
            Err(RefundRefusal::NothingLeft("B1".into()))
        );
    }

    #[test]
    fn amounts_in_the_currencys_decimals() {
        for bad in ["0", "-1", "1.001", "abc", ""] {
            assert!(
                matches!(check(&[], Some(bad)), Err(RefundRefusal::BadAmount { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_credited_payments_that_are_final_at_the_server() {
        let mut held = credited();
        held.settlement = Settlement::Reversed;
        assert!(matches!(
            check_refund(&held, InvoiceStatus::Final, "complete", false, &[], None),
            Err(RefundRefusal::Held(..))
        ));
        let mut open = credited();
        open.settlement = Settlement::Open;
        assert!(matches!(
            check_refund(&open, InvoiceStatus::Final, "complete", false, &[], None),
            Err(RefundRefusal::NotCredited(..))
        ));
        assert!(matches!(
            check_refund(
                &credited(),
                InvoiceStatus::PaidConfirmed,
                "confirmed",
                false,
                &[],
                None
            ),
            Err(RefundRefusal::NotFinalAtBitPay(..))
        ));
        assert!(matches!(
            check_refund(
                &credited(),
                InvoiceStatus::Final,
                "complete",
                true,
                &[],
                None
            ),
            Err(RefundRefusal::RefundedElsewhere { .. })
        ));
        let mut ours = refund("5", RefundState::Requested);
        ours.server_id = Some("R1".into());
        let mut sending = refund("5", RefundState::Sending);
        sending.guid = "key-2".into();
        let at_server = [
            ("R1", None),
            ("R2", Some("key-2")),
            ("R3", None),
            ("R4", Some("x")),
        ];
        let elsewhere = made_elsewhere(&at_server, &[ours, sending], |r| (r.0, r.1));
        let ids: Vec<&str> = elsewhere.iter().map(|r| r.0).collect();
        assert_eq!(ids, ["R3", "R4"]);
        let mut link = credited();
        link.order.origin = Some(Origin::DirectLink);
        assert!(matches!(
            check_refund(&link, InvoiceStatus::Final, "complete", false, &[], None),
            Err(RefundRefusal::NoBuyerEmail(..))
        ));
    }
}
