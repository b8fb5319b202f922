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
}
