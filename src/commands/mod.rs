//! One file per subcommand: argument checks and glue; decisions live in the library.
pub mod audit;
pub mod config;
pub mod create_invoice;
pub mod direct_pay;
pub mod doctor;
pub mod handle_ipn;
pub mod metrics;
pub mod pair;
mod pay;
pub mod prune;
pub mod reconcile;
pub mod refund;
pub mod replay;
pub mod resolve;
pub mod settings;
pub mod show;
pub mod status;
pub mod unpair;
