//! Splynx API v2: signed client and lenient models.
pub mod client;
pub mod model;

pub use client::{NewPayment, SharedState, SplynxClient, SplynxError, StateError};
