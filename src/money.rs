//! Exact money: parsing customer input, currency precision and lenient JSON decoding.
//! Amounts are `rust_decimal::Decimal` end to end; nothing here touches floating point.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Coins BitPay prices invoices in, which ISO 4217 does not list, and the places BitPay
/// takes for them.
const PRICING_COINS: [(&str, u32); 3] = [("BTC", 6), ("BCH", 6), ("ETH", 6)];

/// Decimal places a currency's amounts carry: ISO 4217's minor units from the maintained
/// `iso_currency` table (KWD 3, XPF 0, ...), BitPay's for the coins it prices in.
pub fn known_decimals(currency: &str) -> Option<u32> {
    if let Some((_, places)) = PRICING_COINS.iter().find(|(code, _)| *code == currency) {
        return Some(*places);
    }
    iso_currency::Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .map(u32::from)
}

/// Decimal places of a currency the config accepted (`known_decimals`); 2 only for a code
/// stored by an older version that no table knows.
pub fn currency_decimals(currency: &str) -> u32 {
    known_decimals(currency).unwrap_or(2)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("\"{0}\" is not a plain decimal number (write it like 25.00)")]
    NotDecimal(String),
    #[error("the amount must be greater than zero")]
    NotPositive,
    #[error("{currency} amounts have at most {places} decimal places")]
    TooPrecise { currency: String, places: u32 },
}

/// Parses an amount typed by a person: digits with an optional `.` and fraction, nothing
/// else (no sign, exponent, thousands separators, commas or spaces).
pub fn parse_amount(text: &str, currency: &str) -> Result<Decimal, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_string());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) || text.len() > 30 {
        return Err(not_decimal());
    }
    let amount = Decimal::from_str(text).map_err(|_| not_decimal())?;
    if amount <= Decimal::ZERO {
        return Err(AmountError::NotPositive);
    }
    let places = currency_decimals(currency);
    if amount.normalize().scale() > places {
        return Err(AmountError::TooPrecise {
            currency: currency.to_string(),
            places,
        });
    }
    Ok(amount)
}

/// Renders an amount with exactly the currency's decimal places (`51.6100` → `51.61`).
pub fn format_amount(amount: Decimal, currency: &str) -> String {
    let mut rounded = amount.round_dp(currency_decimals(currency));
    rounded.rescale(currency_decimals(currency));
    rounded.to_string()
}

/// A JSON number rendered from the decimal, for BitPay's `price` (`10.50` → `10.5`).
pub fn json_number(amount: Decimal) -> serde_json::Value {
    let text = amount.normalize().to_string();
    serde_json::Value::Number(
        serde_json::Number::from_str(&text).expect("a normalised decimal is a valid JSON number"),
    )
}

/// Deserializes money from a JSON number or a numeric string (`51.61`, `"51.6100"`), exactly.
pub fn de_money<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    money_from_json(&value).ok_or_else(|| de::Error::custom(format!("not an amount: {value}")))
}

pub fn de_opt_money<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    if value.is_null() || value.as_str() == Some("") {
        return Ok(None);
    }
    money_from_json(&value)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("not an amount: {value}")))
}

pub fn money_from_json(value: &serde_json::Value) -> Option<Decimal> {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

/// Deserializes an id from a number or a numeric string (`5`, `"5"`).
pub fn de_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    id_from_json(&value).ok_or_else(|| de::Error::custom(format!("not an id: {value}")))
}

pub fn de_opt_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    if value.is_null() || value.as_str() == Some("") {
        return Ok(None);
    }
    id_from_json(&value)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("not an id: {value}")))
}

pub fn id_from_json(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Deserializes a string that may arrive as a number (`"202401000001"` or `202401000001`).
pub fn de_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals_only() {
        assert_eq!(parse_amount("25", "USD").unwrap().to_string(), "25");
        assert_eq!(parse_amount("25.50", "USD").unwrap().to_string(), "25.50");
        assert_eq!(parse_amount("0.10", "USD").unwrap().to_string(), "0.10");
        for bad in [
            "", "abc", "1e3", "-5", "+5", "1,00", " 5", "5.", ".5", "1.2.3", "NaN", "0x10",
        ] {
            assert!(
                matches!(parse_amount(bad, "USD"), Err(AmountError::NotDecimal(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_amount("0", "USD"), Err(AmountError::NotPositive));
        assert_eq!(parse_amount("0.00", "USD"), Err(AmountError::NotPositive));
        assert!(matches!(
            parse_amount("1.005", "USD"),
            Err(AmountError::TooPrecise { places: 2, .. })
        ));
        assert!(
            parse_amount("1.500", "USD").is_ok(),
            "trailing zeros are not extra precision"
        );
        assert!(matches!(
            parse_amount("100.5", "JPY"),
            Err(AmountError::TooPrecise { places: 0, .. })
        ));
    }

    #[test]
    fn decimals_follow_iso_4217() {
        for (code, places) in [
            ("USD", 2),
            ("EUR", 2),
            ("JPY", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("JOD", 3),
            ("OMR", 3),
            ("TND", 3),
            ("LYD", 3),
            ("IQD", 3),
            ("XPF", 0),
            ("BIF", 0),
            ("DJF", 0),
            ("GNF", 0),
            ("KMF", 0),
            ("RWF", 0),
            ("VUV", 0),
            ("CLF", 4),
            ("BTC", 6),
        ] {
            assert_eq!(known_decimals(code), Some(places), "{code}");
        }
        // Not currencies, or without minor units (gold): refused by the config.
        for code in ["XAU", "ABC", "usd", ""] {
            assert_eq!(known_decimals(code), None, "{code}");
        }
        assert_eq!(parse_amount("10.125", "KWD").unwrap().to_string(), "10.125");
        assert!(parse_amount("100.5", "XPF").is_err());
        assert_eq!(format_amount(Decimal::from(1500), "XPF"), "1500");
    }

    #[test]
    fn formats_and_renders_exactly() {
        let amount = Decimal::from_str("51.6100").unwrap();
        assert_eq!(format_amount(amount, "USD"), "51.61");
        assert_eq!(format_amount(Decimal::from(5), "USD"), "5.00");
        assert_eq!(
            json_number(Decimal::from_str("10.50").unwrap()).to_string(),
            "10.5"
        );
        assert_eq!(
            json_number(Decimal::from_str("0.10").unwrap()).to_string(),
            "0.1"
        );
        assert_eq!(
            json_number(Decimal::from_str("100").unwrap()).to_string(),
            "100"
        );
    }

    #[test]
    fn decodes_loose_json() {
        let v: serde_json::Value =
            serde_json::from_str(r#"["51.6100", 51.61, "7", 7, "1.5E2"]"#).unwrap();
        assert_eq!(money_from_json(&v[0]).unwrap().to_string(), "51.6100");
        assert_eq!(money_from_json(&v[1]).unwrap().to_string(), "51.61");
        assert_eq!(id_from_json(&v[2]), Some(7));
        assert_eq!(id_from_json(&v[3]), Some(7));
        assert_eq!(money_from_json(&v[4]).unwrap(), Decimal::from(150));
    }
}
