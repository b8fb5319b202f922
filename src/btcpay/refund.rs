//! BTCPay refunds' pure parts: a pull payment's state from its payouts, and the label our
//! pull payments carry (which finds one whose create answer was lost).

use rust_decimal::Decimal;

use super::model::{Payout, PullPayment, MARKER};
use crate::domain::RefundState;

/// Where a refund stands, from its pull payment and the payouts claimed on it: paid out
/// once completed payouts cover what was asked (a claim may be split); pending while a
/// payout is under way or part was paid; cancelled when archived with nothing paid;
/// otherwise waiting for the customer to claim it.
pub(super) fn refund_state(pull: &PullPayment, payouts: &[Payout]) -> (RefundState, String) {
    let asked = pull.amount.unwrap_or_default();
    let completed: Decimal = payouts
        .iter()
        .filter(|p| p.state == "Completed")
        .map(Payout::value)
        .sum();
    let under_way = payouts.iter().find(|p| {
        matches!(
            p.state.as_str(),
            "AwaitingApproval" | "AwaitingPayment" | "InProgress"
        )
    });
    if asked > Decimal::ZERO && completed >= asked {
        return (RefundState::PaidOut, "Completed".into());
    }
    if let Some(payout) = under_way {
        return (RefundState::Pending, format!("payout {}", payout.state));
    }
    if completed > Decimal::ZERO {
        let archived = if pull.archived { ", archived" } else { "" };
        return (
            RefundState::Pending,
            format!(
                "{completed} of {asked} {} paid out, the rest not claimed{archived}",
                pull.currency
            ),
        );
    }
    if pull.archived {
        return (RefundState::Cancelled, "archived".into());
    }
    (RefundState::Requested, "not claimed yet".into())
}

/// The text our refunds' pull payments carry, which finds one whose answer was lost.
pub(super) fn refund_label(key: &str) -> String {
    format!("{MARKER} refund {key}")
}

/// The request key a pull payment's description carries, when it is one of ours.
pub(super) fn key_of(description: &str) -> Option<String> {
    description
        .strip_prefix(&refund_label(""))
        .map(|rest| rest.split(':').next().unwrap_or_default().to_string())
}

/// A key connected before refunds were asked for.
#[derive(Debug, thiserror::Error)]
#[error("BTCPay Server's API key may not {missing} in store {store}, which refunds need: connect again (the authorize link asks for it) or add it to the key")]
pub(super) struct RefundPermission {
    pub(super) missing: &'static str,
    pub(super) store: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_is_paid_out_only_once_completed_payouts_cover_it() {
        let pull = |archived| PullPayment {
            id: "P1".into(),
            currency: "USD".into(),
            amount: Some("20.00".parse().unwrap()),
            archived,
            ..PullPayment::default()
        };
        let payout = |amount: &str, state: &str| Payout {
            id: "x".into(),
            original_amount: None,
            amount: Some(amount.parse().unwrap()),
            state: state.into(),
        };
        let state = |archived, payouts: &[Payout]| refund_state(&pull(archived), payouts).0;
        assert_eq!(state(false, &[]), RefundState::Requested);
        assert_eq!(state(true, &[]), RefundState::Cancelled);
        assert_eq!(
            state(true, &[payout("20", "Cancelled")]),
            RefundState::Cancelled
        );
        assert_eq!(
            state(false, &[payout("20", "AwaitingApproval")]),
            RefundState::Pending
        );
        assert_eq!(
            state(
                false,
                &[payout("12", "Completed"), payout("8", "InProgress")]
            ),
            RefundState::Pending
        );
        let (partial, words) = refund_state(&pull(true), &[payout("12", "Completed")]);
        assert_eq!(partial, RefundState::Pending, "never booked by itself");
        assert!(words.contains("12 of 20.00 USD"), "{words}");
        assert_eq!(
            state(
                false,
                &[payout("12", "Completed"), payout("8", "Completed")]
            ),
            RefundState::PaidOut
        );
    }

    #[test]
    fn our_label_gives_back_its_key() {
        let description = format!("{}: overcharge", refund_label("k-1"));
        assert_eq!(key_of(&description).as_deref(), Some("k-1"));
        assert_eq!(key_of("Refund by hand"), None);
    }
}
