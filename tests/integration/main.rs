//! Integration tests: the real binary against the strict loopback sandboxes.

mod util;

mod config_errors;
mod create_invoice;
mod pairing;
mod settlement;
