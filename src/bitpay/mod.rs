//! BitPay: identity, signed client, API models.
pub mod client;
pub mod identity;
pub mod model;
pub mod server;
pub mod webhook;

pub use client::{BitPayClient, BitPayError};
pub use identity::Identity;
pub use server::{BitPayServer, BitPayWebhooks};
