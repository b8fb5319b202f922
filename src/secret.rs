//! Secrets that must never reach a log or a terminal.

use std::fmt;

/// A string secret (API secret, BitPay token). `Debug` and `Display` show `(redacted)`;
/// the value is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A hint safe to show an admin: the first four characters and the length.
    pub fn masked(&self) -> String {
        let head: String = self.0.chars().take(4).collect();
        format!("{head}… ({} chars)", self.0.chars().count())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// `text` with the value of every `token=` query parameter replaced by "(redacted)": BitPay's
/// URLs carry API tokens in their query.
pub fn redact_token_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        let (head, tail) = rest.split_at(at + "token=".len());
        out.push_str(head);
        let end = tail
            .find(['&', ')', '(', ' ', '"', '\'', '#', '\n', ','])
            .unwrap_or(tail.len());
        if end > 0 {
            out.push_str("(redacted)");
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?} {secret}"), "(redacted) (redacted)");
        assert_eq!(secret.masked(), "hunt… (19 chars)");
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn token_query_values_are_redacted() {
        assert_eq!(
            redact_token_query("GET /invoices/X?token=abc123&x=1 (url /y?token=zz)"),
            "GET /invoices/X?token=(redacted)&x=1 (url /y?token=(redacted))"
        );
        assert_eq!(redact_token_query("no secret"), "no secret");
        assert_eq!(redact_token_query("token="), "token=");
    }
}
