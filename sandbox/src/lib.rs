//! Strict loopback fakes of BitPay, BTCPay Server (`btcpay.rs`, its control routes there)
//! and the Splynx API, for tests and the demo.
//!
//! Both fakes bind `127.0.0.1` (a free port unless one is given), serve from a pool of
//! worker threads, record every API request, inject faults on demand and stop when
//! dropped. They are deliberately strict: a request the real service would refuse is
//! refused here too, with the real service's error shape.
//!
//! Shared test control (Rust methods on both fakes, and HTTP routes):
//!
//! | Rust | HTTP |
//! |---|---|
//! | `faults().fail_next(n, status)`, `hang_next(n)`, `hang_after_next(n)`, `commit_late_next(n, d)`, `drop_next(n)`, `latency(d)`, `set_filter(path, method)`, `clear()` | `POST /_sandbox/faults` `{"fail_next":N,"status":503,"hang_next":N,"hang_after_next":N,"commit_late_next":N,"commit_late_ms":N,"drop_next":N,"latency_ms":N,"path_contains":"..","method":".."}` (`{}` clears); `GET /_sandbox/faults` |
//! | `requests()`, `clear_requests()` | `GET /_sandbox/requests`, `DELETE /_sandbox/requests` |
//!
//! Requests under `/_sandbox/` are neither faulted nor recorded.
//!
//! BitPay-only control routes: `POST /_sandbox/pairing-codes` (`{"production":true}`
//! optional) → `{"pairingCode":..}`; `POST /_sandbox/pairing-codes/{code}/approve`;
//! `POST /_sandbox/pairing-codes/{code}/expire`; `GET|POST /_sandbox/tokens`
//! (`{"sin":..,"facade":..}` creates an active token); `GET /_sandbox/invoices[/{id}]`;
//! `POST /_sandbox/invoices/{id}/status` (`{"status":..,"exceptionStatus":..|false}`);
//! `POST /_sandbox/invoices/{id}/fields` (`{"key":value,..}`);
//! `POST /_sandbox/invoices/{id}/invoice-time` (`{"invoiceTime":ms}`);
//! `POST /_sandbox/invoices/{id}/expire`;
//! `POST /_sandbox/invoices/{id}/refund` → `{"refundId":..}` (a confirmed invoice declines);
//! `GET /_sandbox/invoices/{id}/refund-webhook?refund=R&code=7002` → `{"body":..}`;
//! `POST /_sandbox/refunds/{id}/status` (`{"status":"pending"|"success"|"failure"}`: its
//! webhook is delivered) → `{"delivered": HTTP status or null}`;
//! `POST /_sandbox/foreign-invoices` (`{"orderId","price","currency"}`) → `{"id":..}`, an
//! invoice another integration on the same account made with its own token;
//! `GET /_sandbox/invoices/{id}/webhook?format=extended|legacy` → `{"body":..,"signature":..}`;
//! `POST /_sandbox/invoices/{id}/deliver` sends that webhook (the invoice's
//! `extendedNotifications` picks the format) to its `notificationURL` for real, with
//! `x-signature`, and answers the recorded delivery; `POST /_sandbox/invoices/{id}/pay`
//! (`{"currency":"BTC"}` optional) does what the checkout's "Confirm payment" does;
//! `GET /_sandbox/deliveries` lists every delivery (`invoice_id`, `invoice_status`,
//! `event`, `url`, `body`, `signature`, `status` = the merchant's HTTP answer or 0,
//! `error`, `at`), `DELETE /_sandbox/deliveries` forgets them.
//!
//! BitPay's hosted checkout (public, like BitPay's): `GET /invoice?id=ID` lists the coins
//! to pay with, `GET /invoice?id=ID&currency=COIN` asks to "Confirm payment", and
//! `POST /invoice` (form `id`, `currency`) pays in full: the invoice goes `paid` then
//! `confirmed`, each step's webhook is delivered, and the browser lands on the receipt
//! ("Payment from bitpay", "Return to splynx" → the invoice's `redirectURL`).
//!
//! Splynx-only control routes: `GET /_sandbox/payments`, `GET /_sandbox/{statements,statement-records,transactions}`; `POST /_sandbox/check-nonce` and
//! `POST /_sandbox/loose-json` (`{"enabled":bool}`); `POST /_sandbox/seed`
//! (`{"customers":[..],"invoices":[..],"proformas":[..],"payment_methods":[..]}`);
//! `POST /_sandbox/seed-demo`; `POST /_sandbox/admin-sessions` (`{"sash","id","role"}`: API
//! requests with `?sash=` then carry `SpL-Administrator-*` headers); `POST /_sandbox/deny` (`{"path":..,"method":..}`),
//! `DELETE /_sandbox/deny`; `GET /_sandbox/auth`; `GET /_sandbox/{customers,invoices,
//! proformas,payment-methods}/{id}`.

/// The inherent methods both fakes share (they delegate to the shared server), so
/// tests need no trait import.
macro_rules! sandbox_common_api {
    ($sandbox:ty) => {
        impl $sandbox {
            /// Base URL, `http://127.0.0.1:PORT`, without a trailing slash.
            pub fn url(&self) -> String {
                self.server.url().to_string()
            }

            /// The listening port.
            pub fn port(&self) -> u16 {
                self.server
                    .url()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0)
            }

            /// The fault switches of this fake.
            pub fn faults(&self) -> &$crate::Faults {
                self.server.faults()
            }

            /// Shortcut for `faults().fail_next(n, status)`.
            pub fn fail_next(&self, n: usize, status: u16) {
                self.faults().fail_next(n, status)
            }

            /// Shortcut for `faults().hang_next(n)`.
            pub fn hang_next(&self, n: usize) {
                self.faults().hang_next(n)
            }

            /// Shortcut for `faults().hang_after_next(n)`.
            pub fn hang_after_next(&self, n: usize) {
                self.faults().hang_after_next(n)
            }

            /// Shortcut for `faults().drop_next(n)`.
            pub fn drop_next(&self, n: usize) {
                self.faults().drop_next(n)
            }

            /// Shortcut for `faults().latency(latency)`.
            pub fn latency(&self, latency: std::time::Duration) {
                self.faults().latency(latency)
            }

            /// Shortcut for `faults().clear()`.
            pub fn clear_faults(&self) {
                self.faults().clear()
            }

            /// Every API request received so far (control routes excluded), oldest first.
            pub fn requests(&self) -> Vec<$crate::RecordedRequest> {
                self.server.requests()
            }

            pub fn clear_requests(&self) {
                self.server.clear_requests()
            }
        }
    };
}
pub(crate) use sandbox_common_api;

mod bitpay;
mod btcpay;
mod btcpay_deliveries;
mod checkout;
mod dashboard;
mod faults;
mod route;
mod server;
mod splynx;
mod util;
mod webhook;

pub use bitpay::BitPaySandbox;
pub use btcpay::{btcpay_signature, BtcpaySandbox};
pub use btcpay_deliveries::BtcpayDelivery;
pub use faults::{FaultSpec, Faults, DEFAULT_FAIL_STATUS};
pub use route::WebhookRoute;
pub use server::RecordedRequest;
pub use splynx::{SplynxSandbox, ADDON_WEBHOOK_PATH};
pub use webhook::Delivery;
