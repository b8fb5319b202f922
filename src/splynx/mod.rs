//! Splynx API v2: signed client and lenient models.
mod auth;
pub mod client;
mod error;
pub mod model;
#[cfg(test)]
mod tests;

pub use auth::{signature, SharedState, StateError};
pub use client::{NewPayment, NewStatementRecord, NewTransaction, SplynxClient};
pub use error::{Result, SplynxError};
