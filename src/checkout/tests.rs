//! Which existing invoice a checkout reuses, recovers or refuses.

use super::*;
use crate::fee::AppliedFee;
use std::str::FromStr;

fn record(
    id: i64,
    settlement: Settlement,
    status: &str,
    price: &str,
    expires_at: i64,
) -> InvoiceRecord {
    let mut record = InvoiceRecord {
        expires_at: Some(expires_at),
        ..InvoiceRecord::example(id, settlement, status)
    };
    record.order.price = Decimal::from_str(price).unwrap();
    record
}

#[test]
fn reuse_recover_or_refuse() {
    let price = Decimal::from_str("51.61").unwrap();
    let now = 1_000_000_000;
    let fresh = now + 10 * 60 * 1000;
    let nearly_gone = now + 60 * 1000;
    let kind = DocKind::Invoice;
    assert_eq!(
        classify_existing(&[], kind, price, Origin::Portal, now),
        Existing::None
    );
    let open = record(1, Settlement::Open, "new", "51.61", fresh);
    assert_eq!(
        classify_existing(
            std::slice::from_ref(&open),
            kind,
            price,
            Origin::Portal,
            now
        ),
        Existing::Candidate(1)
    );
    let other_amount = record(2, Settlement::Open, "new", "20.00", fresh);
    assert_eq!(
        classify_existing(&[other_amount], kind, price, Origin::Portal, now),
        Existing::None
    );
    let expiring = record(3, Settlement::Open, "new", "51.61", nearly_gone);
    assert_eq!(
        classify_existing(&[expiring], kind, price, Origin::Portal, now),
        Existing::None
    );
    let creating = record(4, Settlement::Creating, "unknown", "51.61", 0);
    assert_eq!(
        classify_existing(&[creating], kind, price, Origin::Portal, now),
        Existing::Recover(4)
    );
    let paid = record(5, Settlement::Open, "paid", "51.61", fresh);
    assert_eq!(
        classify_existing(
            &[paid.clone(), open.clone()],
            kind,
            price,
            Origin::Portal,
            now
        ),
        Existing::InProgress(5)
    );
    assert_eq!(
        classify_existing(&[paid, open], DocKind::Refill, price, Origin::Portal, now),
        Existing::Candidate(1)
    );
    // A fee on top does not make it another amount: reuse is keyed on the amount due.
    let mut with_fee = record(7, Settlement::Open, "new", "52.85", fresh);
    with_fee.order.fee = Some(AppliedFee {
        percent: Decimal::from(2),
        fee: Decimal::from_str("1.03").unwrap(),
        vat_percent: Decimal::from(20),
        vat: Decimal::from_str("0.21").unwrap(),
    });
    assert_eq!(
        classify_existing(
            std::slice::from_ref(&with_fee),
            kind,
            price,
            Origin::Portal,
            now
        ),
        Existing::Candidate(7)
    );
    // Another origin's open invoice is neither handed out nor joined by a second one.
    assert_eq!(
        classify_existing(&[with_fee], kind, price, Origin::DirectLink, now),
        Existing::OpenElsewhere(7)
    );
    let expired = record(6, Settlement::Expired, "expired", "51.61", fresh);
    assert_eq!(
        classify_existing(&[expired], kind, price, Origin::Portal, now),
        Existing::None
    );
}

#[test]
fn splynx_precision_beyond_the_currency_is_refused() {
    assert_eq!(
        round_for(Decimal::from_str("51.6100").unwrap(), "USD")
            .unwrap()
            .to_string(),
        "51.61"
    );
    assert!(round_for(Decimal::from_str("51.6150").unwrap(), "USD").is_err());
}
