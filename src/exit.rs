//! The documented exit codes, by what they mean. A leaf: the modules below the commands say
//! what went wrong as an `ExitCode` (the `Failing` trait on their typed errors) and never
//! see a number; which number each meaning is, is said here; the walk over an error's
//! causes that picks one is `errors`, at the top.

pub const SUCCESS: u8 = ExitCode::Success.code();
pub const FAILURE: u8 = ExitCode::Failure.code();
pub const BAD_INPUT: u8 = ExitCode::BadInput.code();
pub const TEMPORARY: u8 = ExitCode::Temporary.code();
pub const CONFIG: u8 = ExitCode::Config.code();

/// What a failure means for whoever retries or reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    /// Anything else.
    Failure,
    /// Malformed webhook, bad amount, foreign or paid document: do not retry as is.
    BadInput,
    /// Unreachable, 5xx, lock busy, outcome unknown: retry later.
    Temporary,
    /// Configuration or pairing: the admin must act.
    Config,
}

impl ExitCode {
    pub const fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::BadInput => 65,
            ExitCode::Temporary => 75,
            ExitCode::Config => 78,
        }
    }
}

/// A typed error says what its failure means.
pub trait Failing {
    fn exit_code(&self) -> ExitCode;
}

/// Failures the commands decide on, with a message meant for the person who will read it.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Malformed webhook, bad amount, foreign or paid document (65).
    #[error("{0}")]
    BadInput(String),
    /// What was asked for does not exist, or is not the caller's (65): pages tell it apart
    /// from other bad input by the JSON error's `kind`.
    #[error("{0}")]
    NotFound(String),
    /// BitPay or Splynx unreachable, lock busy: retry later (75).
    #[error("{0}")]
    Temporary(String),
    /// Configuration or pairing problem (78).
    #[error("{0}")]
    Setup(String),
}

impl Failing for Problem {
    fn exit_code(&self) -> ExitCode {
        match self {
            Problem::BadInput(_) | Problem::NotFound(_) => ExitCode::BadInput,
            Problem::Temporary(_) => ExitCode::Temporary,
            Problem::Setup(_) => ExitCode::Config,
        }
    }
}
