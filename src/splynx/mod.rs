//! Splynx API v2: signed client and lenient models.
mod auth;
pub mod client;
mod error;
pub mod model;
mod sign;
mod state;
#[cfg(test)]
mod tests;

pub use client::{NewPayment, NewStatementRecord, NewTransaction, SplynxClient};
pub use error::{PaymentUnsettled, Result, SplynxError};
pub use sign::signature;
pub use state::{Held, SharedState, StateError};
