//! The one place an error chain becomes its documented exit code and its one-line message:
//! each known typed error says what it means (`exit::Failing`). At the top: it knows every
//! module's error type, and only `main` and the commands use it.

use std::error::Error;

use crate::admin::AdminRefusal;
use crate::bitpay::identity::IdentityError;
use crate::bitpay::BitPayError;
use crate::checkout::Refusal;
use crate::config::ConfigError;
use crate::connect::ConnectError;
use crate::context::ForeignDataDir;
use crate::domain::RefundRefusal;
use crate::exit::{ExitCode, Failing, Problem, BAD_INPUT, CONFIG, TEMPORARY};
use crate::gateway::{KeyMissing, NotConnected};
use crate::lock::LockError;
use crate::pairing::PairingError;
use crate::refund::RefundError;
use crate::server::{ServerError, WebhookError};
use crate::splynx::{PaymentUnsettled, SplynxError};
use crate::store::StoreError;

/// The exit code for an error. A verdict (a command's `Problem`, a checkout's `Refusal`,
/// also when attached as context) wins; otherwise the first cause in the chain with a
/// known meaning decides.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    failure_of(error).code()
}

/// What an error means (the exit code without its number).
pub fn failure_of(error: &anyhow::Error) -> ExitCode {
    if let Some(problem) = error.downcast_ref::<Problem>() {
        return problem.exit_code();
    }
    if let Some(refusal) = error.downcast_ref::<Refusal>() {
        return refusal.exit_code();
    }
    error
        .chain()
        .find_map(meaning_of)
        .unwrap_or(ExitCode::Failure)
}

/// The error and its causes in one line ("a: b: c"), each cause once: an error that
/// already names its cause in its own text (`cannot read file X: No such file`) is not
/// followed by that cause again.
pub fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// What kind of failure, for `--json` errors: `not_found`, `bad_input`, `temporary`,
/// `config` or `failure`.
pub fn error_kind(error: &anyhow::Error) -> &'static str {
    let not_found = matches!(error.downcast_ref::<Problem>(), Some(Problem::NotFound(_)))
        || error
            .downcast_ref::<Refusal>()
            .is_some_and(Refusal::is_not_found);
    if not_found {
        return "not_found";
    }
    match exit_code(error) {
        BAD_INPUT => "bad_input",
        TEMPORARY => "temporary",
        CONFIG => "config",
        _ => "failure",
    }
}

/// What a cause means: every typed error knows its own.
fn meaning_of(cause: &(dyn Error + 'static)) -> Option<ExitCode> {
    macro_rules! known {
        ($($error:ty),*) => {
            $(if let Some(e) = cause.downcast_ref::<$error>() {
                return Some(e.exit_code());
            })*
        };
    }
    known!(
        Problem,
        Refusal,
        PairingError,
        AdminRefusal,
        PaymentUnsettled,
        WebhookError,
        KeyMissing,
        NotConnected,
        ConnectError,
        ForeignDataDir,
        ServerError,
        BitPayError,
        SplynxError,
        ConfigError,
        IdentityError,
        StoreError,
        LockError,
        RefundError,
        RefundRefusal
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{BAD_INPUT, FAILURE};
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let read = ConfigError::Read {
            path: "/etc/x.toml".into(),
            source: io,
        };
        let text = message(&anyhow::Error::new(read).context("loading the settings"));
        assert_eq!(
            text.matches("No such file or directory").count(),
            1,
            "{text}"
        );
        assert!(text.starts_with("loading the settings: cannot read config file /etc/x.toml"));
    }

    #[test]
    fn the_first_known_cause_decides() {
        let err = anyhow::Error::new(Problem::BadInput("bad".into())).context("creating invoice");
        assert_eq!(exit_code(&err), BAD_INPUT);
        let bitpay = BitPayError::Unavailable {
            status: 503,
            message: "down".into(),
        };
        assert_eq!(exit_code(&anyhow::Error::new(bitpay)), TEMPORARY);
        let auth = BitPayError::Api {
            status: 401,
            code: None,
            message: "Unauthorized sin".into(),
        };
        assert_eq!(exit_code(&anyhow::Error::new(auth)), CONFIG);
        let forbidden = SplynxError::Forbidden {
            permission: "p".into(),
            action: "a".into(),
            message: "m".into(),
        };
        assert_eq!(exit_code(&anyhow::Error::new(forbidden)), CONFIG);
        let verdict = anyhow::Error::new(BitPayError::Api {
            status: 500,
            code: None,
            message: "x".into(),
        })
        .context(Problem::Setup("pair again".into()))
        .context("pairing");
        assert_eq!(exit_code(&verdict), CONFIG);
        let plain: anyhow::Result<()> = Err(anyhow::anyhow!("other"));
        assert_eq!(exit_code(&plain.context("x").unwrap_err()), FAILURE);
        let busy = LockError::Busy { what: "x".into() };
        assert_eq!(exit_code(&anyhow::Error::new(busy)), TEMPORARY);
        let missing = anyhow::Error::new(Problem::NotFound("gone".into())).context("checkout");
        assert_eq!(exit_code(&missing), BAD_INPUT);
        assert_eq!(error_kind(&missing), "not_found");
        assert_eq!(error_kind(&verdict), "config");
    }
}
