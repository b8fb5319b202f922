//! Integration tests: the real binary against the strict loopback sandboxes.

mod util;

mod admin_roles;
mod audit;
mod bad_input;
mod btcpay;
mod config_errors;
mod create_invoice;
mod direct_pay;
mod doctor;
mod exactly_once;
mod faults;
mod fee;
mod hostile;
mod layering;
mod modules_list;
mod operator;
mod pages;
mod pairing;
mod refunds;
mod refunds_btcpay;
mod review;
mod secrets;
mod settlement;
mod statements;
