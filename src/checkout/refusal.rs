//! Why a checkout is refused, in words the payer reads: each refusal says what it means
//! (bad input or not found, or try again) and never carries a CLI number.

use crate::exit::{ExitCode, Failing};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Customer {0} does not exist")]
    NoSuchCustomer(i64),
    /// "Invoice #N was not found for your account": a foreign document reads the same.
    #[error("{label} {request} was not found{scope}")]
    NoSuchDocument {
        label: &'static str,
        request: String,
        scope: &'static str,
    },
    #[error("A balance top-up has no direct pay link")]
    TopUpHasNoLink,
    #[error("{label} #{number} is already paid")]
    AlreadyPaid { label: &'static str, number: String },
    #[error("{label} #{number} was cancelled and cannot be paid")]
    Cancelled { label: &'static str, number: String },
    #[error("A payment for {} #{number} is already being processed", label.to_lowercase())]
    BeingProcessed { label: &'static str, number: String },
    #[error("{label} #{number} has nothing left to pay")]
    NothingDue { label: &'static str, number: String },
    #[error("The amount {amount} has more decimals than {currency} allows ({places}); ask your provider to correct the invoice")]
    TooPrecise {
        amount: String,
        currency: String,
        places: u32,
    },
    #[error("A checkout for {document} is already open until {until}; please finish it there, or try again after then")]
    OpenElsewhere { document: String, until: String },
    #[error("A payment for {document} is already in progress ({server} invoice {invoice} is {status}); it will be credited once confirmed")]
    InProgress {
        document: String,
        server: &'static str,
        invoice: String,
        status: String,
    },
    #[error("The amount changed (it is now {now} {currency}, the page showed {shown} {currency}); please review it and pay again")]
    AmountChanged {
        now: String,
        shown: String,
        currency: String,
    },
    #[error("{server} could not create the invoice: {words}")]
    ServerRefused { server: &'static str, words: String },
    #[error("{server} did not answer in time; please try again in a minute")]
    ServerSlow { server: &'static str },
}

impl Refusal {
    /// What was asked for does not exist, or is not the caller's (pages answer 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Refusal::NoSuchCustomer(_) | Refusal::NoSuchDocument { .. }
        )
    }
}

impl Failing for Refusal {
    fn exit_code(&self) -> ExitCode {
        match self {
            Refusal::ServerSlow { .. } => ExitCode::Temporary,
            _ => ExitCode::BadInput,
        }
    }
}
