//! The optional service fee: a percentage of the document's amount, plus VAT on the fee,
//! charged on top. Exact decimals at the currency's precision; the rounding rule is stated
//! once, here and in the README:
//!
//! - fee = amount × fee% / 100, rounded to the currency's places, half away from zero;
//! - VAT = fee (already rounded) × VAT% / 100, rounded the same way;
//! - total = amount + fee + VAT, exact (each part already has the currency's places).
//!
//! The customer pays the total at BitPay; Splynx gets a payment for the total, linked to
//! the document (which is paid in full for its amount), and the fee with its VAT as a
//! debit transaction in the fee category, so the customer's balance nets to the document.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::currency_decimals;

/// `[fee]`: the service fee of one partner's customers (off when `percent` is zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeSettings {
    /// 0 to under 100.
    pub percent: Decimal,
    /// VAT on the fee, 0 to under 100.
    pub vat_percent: Decimal,
    /// The fee transaction's description in Splynx (and the label the customer sees).
    pub message: String,
    /// Splynx transaction category of the fee (Config → Finance → Transaction categories).
    pub category: i64,
}

/// The fee charged on one payment, as the customer saw it before paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedFee {
    pub percent: Decimal,
    pub fee: Decimal,
    pub vat_percent: Decimal,
    pub vat: Decimal,
}

impl AppliedFee {
    /// The fee with its VAT: what the fee transaction charges.
    pub fn total(&self) -> Decimal {
        self.fee + self.vat
    }
}

/// What the customer pays for an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// The document's amount (or the top-up the customer entered).
    pub amount: Decimal,
    /// `None` when the fee is off, or rounds to nothing.
    pub fee: Option<AppliedFee>,
}

impl Charge {
    pub fn total(&self) -> Decimal {
        self.amount + self.fee.map_or(Decimal::ZERO, |f| f.total())
    }
}

/// The charge for `amount` in `currency` under `settings` (the rounding rule above).
pub fn charge(amount: Decimal, settings: &FeeSettings, currency: &str) -> Charge {
    let places = currency_decimals(currency);
    let round =
        |d: Decimal| d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    let hundred = Decimal::ONE_HUNDRED;
    let fee = round(amount * settings.percent / hundred);
    let fee = (fee > Decimal::ZERO).then(|| AppliedFee {
        percent: settings.percent,
        fee,
        vat_percent: settings.vat_percent,
        vat: round(fee * settings.vat_percent / hundred),
    });
    Charge { amount, fee }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn settings(percent: &str, vat: &str) -> FeeSettings {
        FeeSettings {
            percent: d(percent),
            vat_percent: d(vat),
            message: "BitPay fee".into(),
            category: 5,
        }
    }

    /// (amount, fee %, VAT %, currency) → (fee, VAT, total), as the customer sees them.
    #[test]
    fn the_fee_table() {
        let table = [
            // The demo invoice: 2 % of 51.61 is 1.0322 → 1.03; 20 % of that is 0.206 → 0.21.
            ("51.61", "2", "20", "USD", "1.03", "0.21", "52.85"),
            // Exactly half a cent rounds away from zero: 0.125 → 0.13, then 0.013 → 0.01.
            ("5.00", "2.5", "10", "USD", "0.13", "0.01", "5.14"),
            ("0.20", "2.5", "0", "USD", "0.01", "0", "0.21"),
            // Just under half a cent rounds down: 0.0124 → 0.01.
            ("0.62", "2", "0", "USD", "0.01", "0", "0.63"),
            // Below half the smallest unit the fee is zero, and so is its VAT.
            ("0.10", "1", "20", "USD", "0", "0", "0.10"),
            // Currencies without decimals: 3 % of 1999 is 59.97 → 60, VAT 10 % → 6.
            ("1999", "3", "10", "JPY", "60", "6", "2065"),
            // Six places for BTC amounts.
            ("0.012345", "1.5", "0", "BTC", "0.000185", "0", "0.012530"),
            // A fractional VAT rate on a large amount.
            (
                "12345.67", "1.75", "7.7", "EUR", "216.05", "16.64", "12578.36",
            ),
        ];
        for (amount, percent, vat, currency, fee_want, vat_want, total_want) in table {
            let charge = charge(d(amount), &settings(percent, vat), currency);
            let (fee, vat) = charge.fee.map_or((d("0"), d("0")), |f| (f.fee, f.vat));
            assert_eq!(
                (fee, vat, charge.total()),
                (d(fee_want), d(vat_want), d(total_want)),
                "{amount} {currency} at {percent} % + {vat} % VAT"
            );
        }
    }

    #[test]
    fn no_fee_leaves_the_amount_alone() {
        for percent in ["0", "1"] {
            // Off, or less than half a cent: no fee at all (no transaction either).
            let charge = charge(d("0.10"), &settings(percent, "20"), "USD");
            assert_eq!(charge.fee, None, "{percent}");
            assert_eq!(charge.total(), d("0.10"));
        }
    }
}
