//! What checkout charges and offers: `[refill]`, `[fee]`, `[statements]`, `[direct_pay]`.
//! A wrong value here refuses checkout, never a credit.

use rust_decimal::Decimal;

use super::raw::{RawDirectPay, RawFee, RawRefill, RawStatements};
use super::values::{percentage, quoted_prefix, refill_amount};
use super::{Bad, FALLBACK_CURRENCY};
use crate::config::{
    FeeSettings, RefillSettings, StatementGrouping, DEFAULT_FEE_CATEGORY, DEFAULT_FEE_MESSAGE,
};

/// `[refill]`, in the currency's precision.
pub(super) fn refill(raw: Option<RawRefill>, currency: &str, bad: Bad<'_>) -> RefillSettings {
    let refill = raw.unwrap_or_default();
    let mut amount = |key: &str, value: Option<toml::Value>, default: &str| {
        refill_amount(value, default, currency).unwrap_or_else(|m| {
            bad(key, m);
            refill_amount(None, default, FALLBACK_CURRENCY).expect("the default is valid")
        })
    };
    let min = amount("refill.min", refill.min, "1.00");
    let max = amount("refill.max", refill.max, "5000.00");
    if min > max {
        bad(
            "refill.min",
            format!("{min} is greater than refill.max ({max})"),
        );
    }
    RefillSettings { min, max }
}

pub(super) fn statements(raw: Option<RawStatements>, bad: Bad<'_>) -> StatementGrouping {
    match raw.and_then(|s| s.group).as_deref() {
        None | Some("month") => StatementGrouping::Month,
        Some("day") => StatementGrouping::Day,
        Some("off") => StatementGrouping::Off,
        Some(other) => {
            bad(
                "statements.group",
                format!(
                    "expected \"month\", \"day\" or \"off\", got \"{}\"",
                    quoted_prefix(other)
                ),
            );
            StatementGrouping::Month
        }
    }
}

pub(super) fn fee(raw: Option<RawFee>, bad: Bad<'_>) -> FeeSettings {
    let fee = raw.unwrap_or_default();
    let mut percent = |key: &str, value| {
        percentage(value).unwrap_or_else(|m| {
            bad(key, m);
            Decimal::ZERO
        })
    };
    let percent_of_price = percent("fee.percent", fee.percent);
    let vat_percent = percent("fee.vat_percent", fee.vat_percent);
    let message = match fee.message.map(|m| m.trim().to_string()) {
        None => DEFAULT_FEE_MESSAGE.to_string(),
        Some(m) if m.is_empty() || m.chars().count() > 200 => {
            bad(
                "fee.message",
                format!(
                    "must be 1 to 200 characters (the fee's description in Splynx and on the pay window), got {} starting \"{}\"",
                    m.chars().count(),
                    quoted_prefix(&m)
                ),
            );
            DEFAULT_FEE_MESSAGE.to_string()
        }
        Some(m) => m,
    };
    let category = match fee.category.unwrap_or(DEFAULT_FEE_CATEGORY) {
        id if id > 0 => id,
        id => {
            bad(
                "fee.category",
                format!("must be a Splynx transaction category id (Config → Finance → Transaction categories), got {id}"),
            );
            DEFAULT_FEE_CATEGORY
        }
    };
    FeeSettings {
        percent: percent_of_price,
        vat_percent,
        message,
        category,
    }
}

/// `[direct_pay] enabled`: a boolean in the file, "1"/"0" (or yes/no) from the Modules list.
pub(super) fn direct_pay(raw: Option<RawDirectPay>, bad: Bad<'_>) -> bool {
    match raw.and_then(|d| d.enabled) {
        None => false,
        Some(toml::Value::Boolean(on)) => on,
        Some(toml::Value::String(text)) => match text.trim() {
            "1" | "yes" | "true" => true,
            "0" | "no" | "false" => false,
            other => {
                bad(
                    "direct_pay.enabled",
                    format!(
                        "expected yes (1) or no (0), got \"{}\"",
                        quoted_prefix(other)
                    ),
                );
                false
            }
        },
        Some(other) => {
            bad(
                "direct_pay.enabled",
                format!(
                    "expected true or false, got {}",
                    quoted_prefix(&other.to_string())
                ),
            );
            false
        }
    }
}
