//! Small helpers shared by both fakes: random ids, clocks, exact decimals, JSON numbers.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// The Bitcoin base58 alphabet BitPay ids and tokens are drawn from.
pub(crate) const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, OS randomness).
pub(crate) fn random_string(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::getrandom(&mut buf).expect("operating system random source");
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// A JSON number with exactly this text (needs serde_json's `arbitrary_precision`,
/// so integers bigger than u64 survive untouched).
pub(crate) fn json_number(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("valid JSON number text");
    assert!(value.is_number(), "{text} is not a JSON number");
    value
}

/// Parses decimal text exactly (plain or scientific notation); never goes through f64.
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text)
            .or_else(|_| Decimal::from_str(text))
            .ok()
    }
}

/// A decimal from a JSON number or a numeric string.
pub(crate) fn decimal_from_json(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => parse_decimal(&n.to_string()),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

/// An integer from a JSON number or a numeric string ("42", 42).
pub(crate) fn int_from_json(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Decimal places that matter (`10.50` has 1, `10.505` has 3).
pub(crate) fn significant_scale(d: &Decimal) -> u32 {
    d.normalize().scale()
}

pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_use_the_alphabet() {
        let s = random_string(BASE58, 44);
        assert_eq!(s.len(), 44);
        assert!(s.bytes().all(|b| BASE58.contains(&b)));
        assert_ne!(s, random_string(BASE58, 44));
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("51.61").unwrap().to_string(), "51.61");
        assert_eq!(parse_decimal("1e2").unwrap(), Decimal::from(100));
        assert_eq!(significant_scale(&parse_decimal("10.50").unwrap()), 1);
        assert!(parse_decimal("abc").is_none());
        assert_eq!(
            json_number("76700000000000000000").to_string(),
            "76700000000000000000"
        );
    }
}
