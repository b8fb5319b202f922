//! BTCPay Server through its Greenfield API: API-key client, lenient models, webhooks, and
//! its `PaymentServer` (`server.rs`).
pub mod client;
pub mod model;
mod refund;
pub mod server;
pub mod webhook;

pub use client::{BtcpayClient, BtcpayError};
pub use server::{BtcpayServer, BtcpayWebhooks};
