//! Checks of single values, shared by the section parsers: URLs, amounts, percentages,
//! names, and how a bad value is quoted back.

use std::time::Duration;

use rust_decimal::Decimal;
use url::Url;

use crate::money;

/// At most this much of a bad value is quoted back (errors reach cron mail and pages).
const QUOTED_CHARS: usize = 40;

/// The start of a bad value, for an error: at most `QUOTED_CHARS` characters, control
/// characters escaped, "…" when cut.
pub(in crate::config) fn quoted_prefix(value: &str) -> String {
    let mut text: String = value
        .chars()
        .take(QUOTED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    // `escape_debug` escapes quotes too, which read badly inside the error's own quotes.
    text = text.replace("\\\"", "\"").replace("\\'", "'");
    if value.chars().count() > QUOTED_CHARS {
        text.push('…');
    }
    text
}

pub(super) fn timeout(
    seconds: Option<u64>,
    key: &str,
    bad: &mut dyn FnMut(&str, String),
) -> Duration {
    match seconds.unwrap_or(30) {
        0 => bad(key, "must be at least 1 second".into()),
        s if s > 600 => bad(key, format!("{s} seconds is too long (at most 600)")),
        s => return Duration::from_secs(s),
    }
    Duration::from_secs(30)
}

/// A Splynx role identifier: lower-case letters, digits, `-` and `_`.
pub(super) fn is_role_identifier(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

/// A POSIX-portable user name (letters, digits, `.`, `_`, `-`; not starting with `-`).
pub(super) fn is_user_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The example config's values, which must never reach Splynx or BitPay.
pub(super) const EXAMPLE_API_KEY: &str = "0123456789abcdef0123456789abcdef";
pub(super) const PLACEHOLDER_SECRETS: [&str; 2] = ["change-me", "changeme"];

/// A URL on the documentation domains (`example.com`, `.net`, `.org`, RFC 2606).
pub(super) fn is_placeholder_url(text: &str) -> bool {
    Url::parse(text)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| {
            ["example.com", "example.net", "example.org"]
                .iter()
                .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
        })
}

/// An http(s) URL used as a base for paths: no trailing slash, no query or fragment.
pub(super) fn base_url(text: &str) -> Result<String, String> {
    if text.ends_with('/') {
        return Err(format!(
            "\"{text}\" must not end with a slash (write \"{}\")",
            text.trim_end_matches('/')
        ));
    }
    let url = absolute_url(text)?;
    let parsed = Url::parse(&url).map_err(|e| e.to_string())?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("\"{text}\" must not have a query or fragment"));
    }
    Ok(url)
}

pub(super) fn absolute_url(text: &str) -> Result<String, String> {
    let parsed = Url::parse(text).map_err(|e| format!("\"{text}\" is not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "\"{text}\" must be an http:// or https:// URL with a host"
        ));
    }
    Ok(text.to_string())
}

/// `http://` to anything but this machine (127.0.0.0/8, ::1, localhost).
pub(super) fn is_plain_http_off_host(text: &str) -> bool {
    let Ok(url) = Url::parse(text) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// A percentage, 0 up to (not including) 100, as an exact decimal: `"2.5"` or `2`.
pub(super) fn percentage(value: Option<toml::Value>) -> Result<Decimal, String> {
    let text = match value {
        None => return Ok(Decimal::ZERO),
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(i)) => i.to_string(),
        Some(toml::Value::Float(f)) => {
            return Err(format!(
                "write percentages as quoted decimals, e.g. \"{f}\", so they stay exact"
            ))
        }
        Some(other) => return Err(format!("expected a percentage like \"2.5\", got {other}")),
    };
    let text = text.trim_end_matches('%').trim();
    let exact = text.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !text.is_empty();
    match text.parse::<Decimal>() {
        Ok(p) if exact && p < Decimal::ONE_HUNDRED && p.normalize().scale() <= 4 => {
            Ok(p.normalize())
        }
        _ => Err(format!(
            "\"{text}\" is not a percentage from 0 to under 100 (at most 4 decimal places), e.g. \"2.5\""
        )),
    }
}

pub(super) fn refill_amount(
    value: Option<toml::Value>,
    default: &str,
    currency: &str,
) -> Result<Decimal, String> {
    let text = match value {
        None => default.to_string(),
        Some(toml::Value::String(s)) => s,
        Some(toml::Value::Integer(i)) if i >= 0 => i.to_string(),
        Some(toml::Value::Integer(i)) => {
            return Err(format!("{i} is negative; amounts must be positive"))
        }
        Some(toml::Value::Float(f)) => {
            return Err(format!(
                "write amounts as quoted decimals, e.g. \"{f:.2}\", so they stay exact"
            ))
        }
        Some(other) => return Err(format!("expected an amount like \"1.00\", got {other}")),
    };
    if text.trim_start().starts_with('-') {
        return Err(format!("\"{text}\" is negative; amounts must be positive"));
    }
    money::parse_amount(&text, currency).map_err(|e| e.to_string())
}
