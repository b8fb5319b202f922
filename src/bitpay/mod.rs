//! BitPay: identity, signed client, API models.
pub mod client;
pub mod identity;
pub mod model;

pub use client::{BitPayClient, BitPayError};
pub use identity::Identity;
