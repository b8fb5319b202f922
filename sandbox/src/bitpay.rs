//! A strict loopback fake of the BitPay merchant API (one merchant per sandbox).
//!
//! What it checks: BitAuth request signatures (`x-identity`, `x-signature` over
//! `http://` + Host + URL + body), token binding to the signer's SIN, token approval,
//! `x-accept-version: 2.0.0`, facades, and the invoice fields BitPay validates.
//! Control routes live under `/_sandbox/` (see the crate documentation).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use splynx_bitpay::bitpay::identity;

use crate::checkout;
use crate::dashboard;
use crate::server::{control_error, control_ok, HttpServer, Incoming, Reply, Service};
use crate::util::{
    json_number, now_ms, parse_decimal, random_string, significant_scale, status_text, ALNUM,
    BASE58,
};
use crate::webhook::{self, Delivery};

mod refunds;

const PAIRING_LIFETIME_MS: i64 = 86_400_000;
const INVOICE_LIFETIME_MS: i64 = 900_000;
/// Copied from BitPay's own webhook fixture: bigger than u64, so clients must cope.
const PAX_TOTAL: &str = "76700000000000000000";
const BTC_MINER_FEE_SATS: i64 = 4_300;
/// Biggest accepted invoice, in US dollars.
const MAX_PRICE_USD: i64 = 10_000_000;

/// Invoice currencies: code, allowed decimals, US dollars per unit.
const CURRENCIES: &[(&str, u32, &str)] = &[
    ("USD", 2, "1"),
    ("EUR", 2, "1.0817"),
    ("GBP", 2, "1.2712"),
    ("CAD", 2, "0.7401"),
    ("AUD", 2, "0.6598"),
    ("NZD", 2, "0.6123"),
    ("CHF", 2, "1.1342"),
    ("JPY", 0, "0.00671"),
    ("MXN", 2, "0.0589"),
    ("BRL", 2, "0.2015"),
    ("ZAR", 2, "0.0541"),
    ("INR", 2, "0.0120"),
    ("KES", 2, "0.0077"),
    ("NGN", 2, "0.00066"),
    ("SGD", 2, "0.7402"),
    ("HKD", 2, "0.1280"),
    ("SEK", 2, "0.0951"),
    ("NOK", 2, "0.0932"),
    ("DKK", 2, "0.1450"),
    ("PLN", 2, "0.2510"),
    ("CZK", 2, "0.0431"),
    ("KWD", 3, "3.2541"),
    ("XPF", 0, "0.0091"),
    ("BTC", 6, "57204.993195"),
    ("BCH", 6, "330.12"),
];

/// `GET /currencies` (public, unsigned): what invoices may be priced in, with the places
/// BitPay takes.
fn currencies() -> Value {
    let data: Vec<Value> = CURRENCIES
        .iter()
        .map(|(code, places, _)| json!({"code": code, "precision": places, "name": code}))
        .collect();
    json!({ "data": data })
}

/// Payment coins: code, smallest-unit decimals, US dollars per coin.
pub(crate) const COINS: &[(&str, u32, &str)] = &[
    ("BTC", 8, "57204.993195"),
    ("BCH", 8, "330.12"),
    ("ETH", 18, "3058.45"),
    ("GUSD", 2, "1"),
    ("PAX", 18, "1"),
    ("USDC", 6, "1"),
    ("DOGE", 8, "0.069"),
    ("LTC", 8, "75.86"),
];

const STATUSES: &[&str] = &[
    "new",
    "paid",
    "confirmed",
    "complete",
    "expired",
    "invalid",
    "declined",
];

#[derive(Clone, Debug)]
struct ApiToken {
    token: String,
    facade: String,
    sin: String,
    active: bool,
    date_created: i64,
    /// Client-initiated pairing: the code the merchant approves, and until when.
    pairing_code: Option<String>,
    pairing_expiration: i64,
}

#[derive(Clone, Debug)]
struct ServerCode {
    production: bool,
    used: bool,
    expires_ms: i64,
}

#[derive(Clone, Debug)]
struct StoredInvoice {
    data: Map<String, Value>,
    /// The API token that created the invoice (webhook HMAC key).
    api_token: String,
}

impl StoredInvoice {
    /// A string field, empty when absent.
    fn text(&self, key: &str) -> String {
        self.data
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Default)]
struct State {
    tokens: Vec<ApiToken>,
    server_codes: HashMap<String, ServerCode>,
    invoices: Vec<StoredInvoice>,
    /// Position of each invoice in `invoices` by id: benchmarks hold tens of thousands.
    invoice_index: HashMap<String, usize>,
    /// Every webhook sent to a merchant, oldest first.
    deliveries: Vec<Delivery>,
    /// Refunds made through the API, oldest first.
    refunds: Vec<refunds::StoredRefund>,
    /// Bumped by every change to an invoice: the listing's cache is only as old as this.
    invoices_changed: u64,
    /// The positions the last listing query matched (its filters, and `invoices_changed`
    /// then): paging through 100,000 invoices filters them once, as a real server's index
    /// would, not once per page.
    listing: Option<(String, u64, Vec<usize>)>,
}

impl State {
    fn invoice_mut(&mut self, id: &str) -> Result<&mut StoredInvoice, String> {
        self.invoices_changed += 1;
        let at = self.invoice_index.get(id).copied();
        at.and_then(|at| self.invoices.get_mut(at))
            .ok_or_else(|| format!("no invoice {id}"))
    }

    fn invoice(&self, id: &str) -> Option<&StoredInvoice> {
        self.invoice_index
            .get(id)
            .and_then(|at| self.invoices.get(*at))
    }

    /// A fresh 7-character pairing code, neither a dashboard code nor a requested one.
    fn unused_pairing_code(&self) -> String {
        loop {
            let code = random_string(ALNUM, 7);
            let taken = self.server_codes.contains_key(&code)
                || self
                    .tokens
                    .iter()
                    .any(|t| t.pairing_code.as_deref() == Some(&code));
            if !taken {
                return code;
            }
        }
    }

    fn push_invoice(&mut self, invoice: StoredInvoice) {
        let id = invoice.text("id");
        self.invoices_changed += 1;
        self.invoice_index.insert(id, self.invoices.len());
        self.invoices.push(invoice);
    }
}

struct Core {
    base_url: String,
    state: Mutex<State>,
}

/// The BitPay fake. Dropping it stops the server.
pub struct BitPaySandbox {
    server: HttpServer,
    core: Arc<Core>,
}

crate::sandbox_common_api!(BitPaySandbox);

impl BitPaySandbox {
    /// Starts on a free loopback port.
    pub fn start() -> BitPaySandbox {
        BitPaySandbox::start_on(0)
    }

    /// Starts on `127.0.0.1:port` (0 = any free port); panics when it cannot bind.
    pub fn start_on(port: u16) -> BitPaySandbox {
        BitPaySandbox::try_start_on(port)
            .unwrap_or_else(|e| panic!("BitPay sandbox cannot listen on port {port}: {e}"))
    }

    pub fn try_start_on(port: u16) -> io::Result<BitPaySandbox> {
        let (server, core) = HttpServer::start(port, |base_url| Core {
            base_url,
            state: Mutex::new(State::default()),
        })?;
        Ok(BitPaySandbox { server, core })
    }

    /// A dashboard pairing code (server-initiated pairing yields an active `pos` token).
    pub fn create_pairing_code(&self) -> String {
        self.core.new_server_code(false)
    }

    /// A pairing code "from the other environment": pairing with it always fails.
    pub fn create_production_pairing_code(&self) -> String {
        self.core.new_server_code(true)
    }

    /// Makes a pairing code (either kind) expired. Panics when the code is unknown.
    pub fn expire_pairing_code(&self, code: &str) {
        self.core
            .expire_pairing_code(code)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The merchant approves a client-initiated pairing code: its token becomes active.
    /// False when the code is unknown, expired or already approved.
    pub fn approve_pairing(&self, code: &str) -> bool {
        self.core.approve_pairing(code)
    }

    /// Shortcut for tests: an already active token of `facade` ("merchant" or "pos")
    /// bound to `sin`.
    pub fn create_token(&self, sin: &str, facade: &str) -> String {
        self.core
            .create_token(sin, facade)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets `status` and `exceptionStatus` (`None` = `false`), with amountPaid,
    /// transactions, transactionCurrency and under/overpaid amounts to match.
    /// Panics on an unknown invoice or status.
    pub fn set_status(&self, id: &str, status: &str, exception_status: Option<&str>) {
        self.core
            .set_status(id, status, exception_status)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Overwrites any field of an invoice (tests use it to tamper with price/orderId).
    pub fn set_field(&self, id: &str, key: &str, value: Value) {
        self.core
            .with_invoice(id, |inv| {
                inv.data.insert(key.to_string(), value);
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The invoice as `GET /invoices/{id}` would return it now (`data` only).
    pub fn invoice(&self, id: &str) -> Option<Value> {
        let state = self.core.lock();
        state.invoice(id).map(render_invoice)
    }

    /// All invoices, oldest first.
    pub fn invoices(&self) -> Vec<Value> {
        self.core
            .lock()
            .invoices
            .iter()
            .map(render_invoice)
            .collect()
    }

    pub fn invoice_count(&self) -> usize {
        self.core.lock().invoices.len()
    }

    /// The API token that created the invoice.
    pub fn invoice_api_token(&self, id: &str) -> Option<String> {
        self.core.lock().invoice(id).map(|i| i.api_token.clone())
    }

    /// Moves an invoice in time: `invoiceTime = ms`, `expirationTime = ms + 15 min`.
    pub fn set_invoice_time(&self, id: &str, ms: i64) {
        self.core
            .with_invoice(id, |inv| set_invoice_time(inv, ms))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Marks the invoice expired.
    pub fn expire(&self, id: &str) {
        self.set_status(id, "expired", None)
    }

    /// The body BitPay would POST to `notificationURL` now: the legacy flat format, or
    /// the extended `{"event":{code,name},"data":{..}}` format.
    pub fn webhook_body(&self, id: &str, extended: bool) -> String {
        self.core
            .webhook_body(id, extended)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `x-signature` of a webhook: base64(HMAC-SHA256(key = the API token that created
    /// invoice `id`, message = body bytes)). Panics on an unknown invoice.
    pub fn webhook_signature(&self, body: &str, id: &str) -> String {
        self.core
            .webhook_signature(body, id)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends the webhook for the invoice's current state to its `notificationURL`, for
    /// real, and records the answer. Panics on an unknown invoice or one without a
    /// `notificationURL`.
    pub fn deliver_webhook(&self, id: &str) -> Delivery {
        self.core.deliver(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// What the checkout page's "Confirm payment" does: the buyer pays in full in
    /// `coin` (BTC, BCH, ETH, ...); the invoice goes `paid` then `confirmed`, and each
    /// step's webhook is delivered. `Err` when the invoice cannot be paid (unknown,
    /// not `new`, expired, unsupported coin).
    pub fn pay(&self, id: &str, coin: &str) -> Result<Vec<Delivery>, String> {
        self.core.pay(id, coin)
    }

    /// The merchant refunds the invoice in full from the dashboard: a `confirmed` invoice
    /// becomes `declined`, a `complete` one stays `complete`; either way the refund shows
    /// in `refundInfo`. Returns the refund id. Panics on an invoice that cannot be
    /// refunded (unknown, or not confirmed or complete).
    pub fn refund(&self, id: &str) -> String {
        self.core.refund(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Refunds made through the API (`POST /refunds`), oldest first, as the API shows them.
    pub fn api_refunds(&self) -> Vec<Value> {
        self.core.all_refunds()
    }

    /// One refund made through the API, as the API shows it.
    pub fn api_refund(&self, id: &str) -> Option<Value> {
        self.core.refund_data(id)
    }

    /// Moves refund `id` on (`pending`, `success` or `failure`) and delivers its webhook
    /// (7002–7004) when the invoice has a `notificationURL`. Panics on an unknown refund.
    pub fn advance_refund(&self, id: &str, status: &str) -> Option<Delivery> {
        self.core
            .advance_refund(id, status)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The refund webhook BitPay sends for refund `refund_id` of invoice `id`, with event
    /// `code` (7001 refund_created, 7002 refund_pending, 7003 refund_success, 7004
    /// refund_failure).
    pub fn refund_webhook_body(&self, id: &str, refund_id: &str, code: u32) -> String {
        self.core
            .refund_webhook_body(id, refund_id, code)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An invoice that another integration on the same BitPay account creates with its own
    /// token (any of this account's tokens can fetch it). Returns its id.
    pub fn create_foreign_invoice(&self, order_id: &str, price: &str, currency: &str) -> String {
        self.core
            .create_foreign_invoice(order_id, price, currency)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every webhook delivered so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.core.lock().deliveries.clone()
    }
}

// ---------------------------------------------------------------------------------
// Error shapes

/// `{"error":"..."}` (tokens, signatures).
fn plain_error(status: u16, message: &str) -> Reply {
    Reply::json(status, &json!({"error": message}))
}

/// `{"status":"error","code":"010002","data":null,"error":"..."}`.
fn coded_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"status": "error", "code": code, "data": null, "error": message}),
    )
}

fn invoice_not_found() -> Reply {
    coded_error(404, "020101", "Invoice not found")
}

// ---------------------------------------------------------------------------------
// The service

impl Service for Core {
    fn handle(&self, req: &Incoming) -> Reply {
        if let Some(reply) = self.refunds_route(req) {
            return reply;
        }
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("GET", "/invoice") => self.checkout_page(req),
            ("GET", dashboard::PATH) => self.dashboard_page(req),
            ("POST", dashboard::PATH) => self.dashboard_action(req),
            ("POST", "/invoice") => self.checkout_confirm(req),
            ("POST", "/tokens") => self.pair(req),
            ("GET", "/tokens") => self.list_tokens(req),
            ("GET", "/currencies") => Reply::json(200, &currencies()),
            ("POST", "/invoices") => self.create_invoice(req),
            ("GET", "/invoices") => self.list_invoices(req),
            ("GET", _) if path.starts_with("/invoices/guid/") => {
                let guid = decode_segment(&path["/invoices/guid/".len()..]);
                self.get_invoice(req, |state| {
                    state
                        .invoices
                        .iter()
                        .rev()
                        .find(|i| i.data.get("guid").and_then(Value::as_str) == Some(guid.as_str()))
                        .cloned()
                })
            }
            ("GET", _) if path.starts_with("/invoices/") && !path[10..].contains('/') => {
                let id = decode_segment(&path["/invoices/".len()..]);
                self.get_invoice(req, |state| state.invoice(&id).cloned())
            }
            (_, "/invoice" | "/tokens" | "/invoices") => plain_error(405, "Method not allowed"),
            (_, _) if path.starts_with("/invoices/") => plain_error(405, "Method not allowed"),
            _ => coded_error(404, "000001", "Resource not found"),
        }
    }

    fn control(&self, req: &Incoming, route: &str) -> Reply {
        self.control_route(req, route)
            .unwrap_or_else(|(status, message)| control_error(status, &message))
    }

    fn fault_reply(&self, status: u16) -> Reply {
        match status {
            502..=504 => Reply::html(
                status,
                format!(
                    "<html><head><title>{status} {text}</title></head><body><center><h1>{status} {text}</h1></center><hr><center>cloudflare</center></body></html>",
                    text = status_text(status)
                ),
            ),
            429 => plain_error(429, "Rate limit exceeded. Please try again later."),
            _ => plain_error(status, status_text(status)),
        }
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn host(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    // ---- authentication ---------------------------------------------------------

    /// Checks the BitAuth signature and the API version; returns the signer's SIN.
    fn authenticate(&self, req: &Incoming) -> Result<String, Reply> {
        let invalid = || plain_error(401, "Invalid signature");
        let (Some(public_key), Some(signature)) =
            (req.header("x-identity"), req.header("x-signature"))
        else {
            return Err(invalid());
        };
        let host = req.header("host").unwrap_or(self.host());
        let mut message = format!("http://{host}{}", req.url).into_bytes();
        message.extend_from_slice(&req.body);
        if !identity::verify(public_key.trim(), &message, signature.trim()) {
            return Err(invalid());
        }
        let public_bytes = hex::decode(public_key.trim()).map_err(|_| invalid())?;
        let sin = identity::sin_from_public_key(&public_bytes);
        if req.header("x-accept-version").map(str::trim) != Some("2.0.0") {
            return Err(plain_error(400, "Missing X-Accept-Version"));
        }
        Ok(sin)
    }

    /// The token must exist, be bound to `sin` and be approved.
    fn authorize(state: &State, sin: &str, token: Option<&str>) -> Result<ApiToken, Reply> {
        let found = token.and_then(|t| state.tokens.iter().find(|k| k.token == t));
        match found {
            Some(t) if t.sin == sin => {
                if t.active {
                    Ok(t.clone())
                } else {
                    Err(plain_error(403, "Token is disabled"))
                }
            }
            _ => Err(plain_error(401, "Unauthorized sin")),
        }
    }

    /// Signature + version + the `?token=` of a GET.
    fn authorize_get(&self, req: &Incoming) -> Result<ApiToken, Reply> {
        let sin = self.authenticate(req)?;
        let token = req.query_param("token");
        Core::authorize(&self.lock(), &sin, token.as_deref())
    }

    // ---- pairing ------------------------------------------------------------------

    fn new_server_code(&self, production: bool) -> String {
        let mut state = self.lock();
        let code = state.unused_pairing_code();
        state.server_codes.insert(
            code.clone(),
            ServerCode {
                production,
                used: false,
                expires_ms: now_ms() + PAIRING_LIFETIME_MS,
            },
        );
        code
    }

    fn expire_pairing_code(&self, code: &str) -> Result<(), String> {
        let mut state = self.lock();
        let past = now_ms() - 1;
        if let Some(c) = state.server_codes.get_mut(code) {
            c.expires_ms = past;
            return Ok(());
        }
        match state
            .tokens
            .iter_mut()
            .find(|t| t.pairing_code.as_deref() == Some(code))
        {
            Some(t) => {
                t.pairing_expiration = past;
                Ok(())
            }
            None => Err(format!("no pairing code {code}")),
        }
    }

    fn approve_pairing(&self, code: &str) -> bool {
        let mut state = self.lock();
        let now = now_ms();
        match state
            .tokens
            .iter_mut()
            .find(|t| t.pairing_code.as_deref() == Some(code))
        {
            Some(t) if !t.active && now <= t.pairing_expiration => {
                t.active = true;
                true
            }
            _ => false,
        }
    }

    fn create_token(&self, sin: &str, facade: &str) -> Result<String, String> {
        if !identity::is_valid_sin(sin) {
            return Err(format!("invalid SIN {sin}"));
        }
        if facade != "merchant" && facade != "pos" {
            return Err(format!("unsupported facade {facade}"));
        }
        let token = random_string(BASE58, 44);
        self.lock().tokens.push(ApiToken {
            token: token.clone(),
            facade: facade.to_string(),
            sin: sin.to_string(),
            active: true,
            date_created: now_ms(),
            pairing_code: None,
            pairing_expiration: 0,
        });
        Ok(token)
    }

    /// `POST /tokens` (unsigned): server- or client-initiated pairing.
    fn pair(&self, req: &Incoming) -> Reply {
        let Ok(Value::Object(body)) = req.json() else {
            return plain_error(400, "Invalid JSON body");
        };
        let sin = match body.get("id").and_then(Value::as_str) {
            Some(sin) if identity::is_valid_sin(sin) => sin.to_string(),
            _ => return plain_error(400, "Invalid SIN"),
        };
        let label = match body.get("label") {
            None | Some(Value::Null) => None,
            Some(Value::String(l)) if valid_label(l) => Some(l.clone()),
            Some(_) => return plain_error(500, "Label is invalid"),
        };
        let now = now_ms();
        let mut state = self.lock();

        if let Some(code) = body.get("pairingCode") {
            let unable = || plain_error(500, "Unable to create token");
            let Some(code) = code.as_str().filter(|c| valid_pairing_code(c)) else {
                return unable();
            };
            let Some(entry) = state.server_codes.get_mut(code) else {
                return unable();
            };
            if entry.production {
                return plain_error(
                    500,
                    "Unable to create token Pairing failed. Please check whether you're trying to pair a production pairing code on test.",
                );
            }
            if entry.used || now > entry.expires_ms {
                return unable();
            }
            entry.used = true;
            let token = random_string(BASE58, 44);
            state.tokens.push(ApiToken {
                token: token.clone(),
                facade: "pos".into(),
                sin: sin.clone(),
                active: true,
                date_created: now,
                pairing_code: None,
                pairing_expiration: 0,
            });
            let mut data = json!({
                "policies": [{"policy": "sin", "method": "requireSin", "params": [sin]}],
                "token": token,
                "facade": "pos",
                "dateCreated": now,
                "resource": random_string(BASE58, 44),
            });
            if let Some(label) = label {
                data["label"] = json!(label);
            }
            return Reply::json(200, &json!({"data": [data]}));
        }

        let facade = match body.get("facade") {
            None | Some(Value::Null) => "pos".to_string(),
            Some(Value::String(f)) if f == "merchant" || f == "pos" => f.clone(),
            Some(_) => return plain_error(400, "Invalid facade"),
        };
        let token = random_string(BASE58, 44);
        let code = state.unused_pairing_code();
        state.tokens.push(ApiToken {
            token: token.clone(),
            facade: facade.clone(),
            sin: sin.clone(),
            active: false,
            date_created: now,
            pairing_code: Some(code.clone()),
            pairing_expiration: now + PAIRING_LIFETIME_MS,
        });
        let mut data = Map::new();
        data.insert(
            "policies".into(),
            json!([{"policy": "id", "method": "inactive", "params": [sin]}]),
        );
        data.insert("token".into(), json!(token));
        data.insert("facade".into(), json!(facade));
        if let Some(label) = label {
            data.insert("label".into(), json!(label));
        }
        data.insert("dateCreated".into(), json!(now));
        data.insert("pairingExpiration".into(), json!(now + PAIRING_LIFETIME_MS));
        data.insert("pairingCode".into(), json!(code));
        Reply::json(200, &json!({"data": [data]}))
    }

    /// `GET /tokens` (signed, no token): the signer's active tokens.
    fn list_tokens(&self, req: &Incoming) -> Reply {
        let sin = match self.authenticate(req) {
            Ok(sin) => sin,
            Err(reply) => return reply,
        };
        let state = self.lock();
        let mine: Vec<&ApiToken> = state.tokens.iter().filter(|t| t.sin == sin).collect();
        if mine.is_empty() {
            return plain_error(401, "Unauthorized sin");
        }
        let data: Vec<Value> = mine
            .iter()
            .filter(|t| t.active)
            .map(|t| {
                let mut entry = Map::new();
                entry.insert(t.facade.clone(), json!(t.token));
                Value::Object(entry)
            })
            .collect();
        Reply::json(200, &json!({ "data": data }))
    }

    // ---- invoices -----------------------------------------------------------------

    fn create_invoice(&self, req: &Incoming) -> Reply {
        let sin = match self.authenticate(req) {
            Ok(sin) => sin,
            Err(reply) => return reply,
        };
        let body = match req.json() {
            Ok(Value::Object(body)) => body,
            _ => {
                return coded_error(
                    400,
                    "010002",
                    "Invalid request body: expected a JSON object",
                )
            }
        };
        let mut state = self.lock();
        let token = match Core::authorize(&state, &sin, body.get("token").and_then(Value::as_str)) {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        let checked = match validate_invoice_request(&body) {
            Ok(checked) => checked,
            Err(reply) => return reply,
        };
        let invoice = build_invoice(&self.base_url, &body, &checked, &token);
        let data = render_invoice(&invoice);
        state.push_invoice(invoice);
        Reply::json(
            200,
            &json!({"facade": format!("{}/invoice", token.facade), "data": data}),
        )
    }

    fn get_invoice(
        &self,
        req: &Incoming,
        find: impl FnOnce(&State) -> Option<StoredInvoice>,
    ) -> Reply {
        let token = match self.authorize_get(req) {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        match find(&self.lock()) {
            Some(invoice) => Reply::json(
                200,
                &json!({"facade": format!("{}/invoice", token.facade), "data": render_invoice(&invoice)}),
            ),
            None => invoice_not_found(),
        }
    }

    fn list_invoices(&self, req: &Incoming) -> Reply {
        let token = match self.authorize_get(req) {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        if token.facade != "merchant" {
            return coded_error(403, "020003", "This endpoint requires the merchant facade");
        }
        let params: BTreeMap<String, String> = req.query_pairs().into_iter().collect();
        let date = |name: &str| -> Result<NaiveDate, Reply> {
            match params.get(name) {
                None => Err(coded_error(
                    400,
                    "020003",
                    &format!("Missing required parameter: {name}"),
                )),
                Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    coded_error(
                        400,
                        "020002",
                        &format!("Invalid parameter {name}: expected YYYY-MM-DD"),
                    )
                }),
            }
        };
        let count = |name: &str| -> Result<Option<usize>, Reply> {
            match params.get(name) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    coded_error(
                        400,
                        "020002",
                        &format!("Invalid parameter {name}: expected a number"),
                    )
                }),
            }
        };
        let (start, end) = match (date("dateStart"), date("dateEnd")) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let (limit, offset) = match (count("limit"), count("offset")) {
            (Ok(l), Ok(o)) => (l, o.unwrap_or(0)),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        if let Some(status) = params.get("status") {
            if !STATUSES.contains(&status.as_str()) {
                return coded_error(
                    400,
                    "020002",
                    &format!("Invalid parameter status: {status}"),
                );
            }
        }
        let mut state = self.lock();
        let query = format!(
            "{start} {end} {:?} {:?}",
            params.get("status"),
            params.get("orderId")
        );
        let cached = state
            .listing
            .as_ref()
            .filter(|(q, at, _)| *q == query && *at == state.invoices_changed)
            .map(|(_, _, positions)| positions.clone());
        let positions = cached.unwrap_or_else(|| {
            let positions = matching_invoices(&state.invoices, &params, start, end);
            state.listing = Some((query, state.invoices_changed, positions.clone()));
            positions
        });
        let data: Vec<Value> = positions
            .iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .map(|&at| render_invoice(&state.invoices[at]))
            .collect();
        Reply::json(200, &json!({ "data": data }))
    }

    /// `GET /invoice?id=ID[&currency=COIN]` (public): the hosted checkout. A new
    /// invoice asks for a currency, then for confirmation; a paid one shows the receipt.
    fn checkout_page(&self, req: &Incoming) -> Reply {
        let id = req.query_param("id").unwrap_or_default();
        let Some(invoice) = self.lock().invoice(&id).map(render_invoice) else {
            return Reply::html(404, checkout::not_found());
        };
        let status = invoice["status"].as_str().unwrap_or("new");
        let expired = invoice["expirationTime"]
            .as_i64()
            .is_some_and(|t| t < now_ms());
        let html = match status {
            "new" if expired => checkout::expired(&invoice),
            "new" => match req.query_param("currency") {
                Some(coin) if coin_decimals(&coin).is_some() => {
                    checkout::confirm(&invoice, &coin, None)
                }
                _ => checkout::choose_currency(&invoice, CHECKOUT_COINS),
            },
            "paid" | "confirmed" | "complete" => checkout::receipt(&invoice),
            "expired" => checkout::expired(&invoice),
            _ => checkout::closed(&invoice),
        };
        Reply::html(200, html)
    }

    /// `POST /invoice` (form `id`, `currency`): "Confirm payment". Pays, delivers the
    /// webhooks, then sends the browser to the receipt (post/redirect/get).
    fn checkout_confirm(&self, req: &Incoming) -> Reply {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let id = form.get("id").cloned().unwrap_or_default();
        let coin = form.get("currency").cloned().unwrap_or_default();
        let Some(invoice) = self.lock().invoice(&id).map(render_invoice) else {
            return Reply::html(404, checkout::not_found());
        };
        match self.pay(&id, &coin) {
            Ok(_) => {
                Reply::empty(303).header("Location", format!("/invoice?id={}", url_encode(&id)))
            }
            Err(message) if coin_decimals(&coin).is_some() => {
                Reply::html(409, checkout::confirm(&invoice, &coin, Some(&message)))
            }
            Err(_) => Reply::html(400, checkout::choose_currency(&invoice, CHECKOUT_COINS)),
        }
    }

    // ---- the merchant dashboard's API tokens page ---------------------------------

    fn dashboard_page(&self, req: &Incoming) -> Reply {
        let notice = if let Some(code) = req.query_param("added") {
            Some(dashboard::Notice::Added(code))
        } else if let Some(code) = req.query_param("approved") {
            Some(dashboard::Notice::Approved(code))
        } else {
            req.query_param("refused")
                .map(dashboard::Notice::NotApproved)
        };
        let now = now_ms();
        let state = self.lock();
        let tokens: Vec<dashboard::TokenRow> = state
            .tokens
            .iter()
            .map(|t| dashboard::TokenRow {
                facade: t.facade.clone(),
                sin: t.sin.clone(),
                active: t.active,
                pending_code: t
                    .pairing_code
                    .clone()
                    .filter(|_| now <= t.pairing_expiration),
            })
            .collect();
        let mut unused: Vec<dashboard::UnusedCode> = state
            .server_codes
            .iter()
            .filter(|(_, c)| !c.used && !c.production && c.expires_ms > now)
            .map(|(code, c)| dashboard::UnusedCode {
                code: code.clone(),
                expires: DateTime::<Utc>::from_timestamp_millis(c.expires_ms)
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
            })
            .collect();
        unused.sort_by(|a, b| a.expires.cmp(&b.expires).then(a.code.cmp(&b.code)));
        Reply::html(200, dashboard::render(&tokens, &unused, notice))
    }

    /// "Add New Token" and "Approve": then back to the page (post/redirect/get).
    fn dashboard_action(&self, req: &Incoming) -> Reply {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let (name, code) = match form.get("action").map(String::as_str) {
            Some("add") => ("added", self.new_server_code(false)),
            Some("approve") => {
                let code = form.get("code").cloned().unwrap_or_default();
                let name = if self.approve_pairing(&code) {
                    "approved"
                } else {
                    "refused"
                };
                (name, code)
            }
            _ => return plain_error(400, "Unknown action"),
        };
        Reply::empty(303).header(
            "Location",
            format!("{}?{name}={}", dashboard::PATH, url_encode(&code)),
        )
    }

    // ---- test control -------------------------------------------------------------

    fn with_invoice<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut StoredInvoice) -> T,
    ) -> Result<T, String> {
        let mut state = self.lock();
        state.invoice_mut(id).map(f)
    }

    fn set_status(&self, id: &str, status: &str, exception: Option<&str>) -> Result<(), String> {
        if !STATUSES.contains(&status) {
            return Err(format!(
                "unknown invoice status {status:?}; one of {STATUSES:?}"
            ));
        }
        self.with_invoice(id, |inv| apply_status(inv, status, exception))
    }

    fn webhook_body(&self, id: &str, extended: bool) -> Result<String, String> {
        let state = self.lock();
        let invoice = state
            .invoice(id)
            .ok_or_else(|| format!("no invoice {id}"))?;
        let data = webhook_data(&render_invoice(invoice));
        let body = if extended {
            let status = data.get("status").and_then(Value::as_str).unwrap_or("new");
            let (code, name) = event_for(status);
            json!({"event": {"code": code, "name": name}, "data": data})
        } else {
            Value::Object(data)
        };
        Ok(serde_json::to_string(&body).expect("serialisable JSON"))
    }

    fn webhook_signature(&self, body: &str, id: &str) -> Result<String, String> {
        let key = self
            .lock()
            .invoice(id)
            .map(|i| i.api_token.clone())
            .ok_or_else(|| format!("no invoice {id}"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(body.as_bytes());
        Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn pay(&self, id: &str, coin: &str) -> Result<Vec<Delivery>, String> {
        if coin_decimals(coin).is_none() {
            return Err(format!("{coin:?} is not a currency this checkout accepts"));
        }
        {
            let mut state = self.lock();
            let invoice = state.invoice_mut(id)?;
            let status = invoice.data.get("status").and_then(Value::as_str);
            if status != Some("new") {
                return Err(format!(
                    "invoice {id} is {} and cannot be paid",
                    status.unwrap_or("?")
                ));
            }
            let expires = invoice.data.get("expirationTime").and_then(Value::as_i64);
            if expires.is_some_and(|t| t < now_ms()) {
                return Err(format!("invoice {id} has expired"));
            }
            apply_payment(invoice, "paid", None, coin);
        }
        let mut deliveries = Vec::new();
        if self.has_notification_url(id) {
            deliveries.push(self.deliver(id)?);
        }
        self.with_invoice(id, |inv| apply_payment(inv, "confirmed", None, coin))?;
        if self.has_notification_url(id) {
            deliveries.push(self.deliver(id)?);
        }
        Ok(deliveries)
    }

    fn refund(&self, id: &str) -> Result<String, String> {
        let refund_id = random_string(BASE58, 22);
        let (price, currency) = self.with_invoice(id, |inv| {
            (
                inv.data
                    .get("price")
                    .and_then(crate::util::decimal_from_json)
                    .unwrap_or_default(),
                inv.text("currency"),
            )
        })?;
        let made = self.with_invoice(id, |inv| {
            let status = inv.text("status");
            match status.as_str() {
                // "When used on a confirmed invoice - invoice will decline".
                "confirmed" => {
                    inv.data.insert("status".into(), json!("declined"));
                }
                "complete" => {}
                other => return Err(format!("invoice {id} is {other} and cannot be refunded")),
            }
            let currency = inv.data.get("currency").cloned().unwrap_or(Value::Null);
            let paid = inv.data.get("amountPaid").cloned().unwrap_or(json!(0));
            let coin = inv
                .data
                .get("transactionCurrency")
                .and_then(Value::as_str)
                .unwrap_or("BTC")
                .to_string();
            inv.data.insert(
                "refundInfo".into(),
                json!([{"supportRequest": refund_id, "currency": currency, "amounts": {coin: paid}}]),
            );
            Ok(refund_id.clone())
        })?;
        self.lock()
            .refunds
            .push(refunds::StoredRefund::from_dashboard(
                &refund_id, id, price, &currency,
            ));
        made
    }

    fn refund_webhook_body(&self, id: &str, refund_id: &str, code: u32) -> Result<String, String> {
        let (name, status) = match code {
            7001 => ("refund_created", "created"),
            7002 => ("refund_pending", "pending"),
            7003 => ("refund_success", "success"),
            7004 => ("refund_failure", "failure"),
            other => return Err(format!("unknown refund event code {other}")),
        };
        // Read before the state is locked below (the lock is not reentrant).
        let refund_amount = self.refund_amount(refund_id);
        let state = self.lock();
        let invoice = state
            .invoice(id)
            .ok_or_else(|| format!("no invoice {id}"))?;
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = json!({
            "event": {"code": code, "name": name},
            "data": {
                "id": refund_id,
                "invoice": id,
                "supportRequest": refund_id,
                "status": status,
                "amount": refund_amount
                    .or_else(|| invoice.data.get("price").cloned())
                    .unwrap_or(Value::Null),
                "currency": invoice.data.get("currency").cloned().unwrap_or(Value::Null),
                "lastRefundNotification": now,
                "refundFee": 0,
                "immediate": false,
                "buyerPaysRefundFee": false,
                "requestDate": now,
            }
        });
        Ok(serde_json::to_string(&body).expect("serialisable JSON"))
    }

    fn create_foreign_invoice(
        &self,
        order_id: &str,
        price: &str,
        currency: &str,
    ) -> Result<String, String> {
        let other_integration = splynx_bitpay::bitpay::Identity::from_secret_bytes(&[0x5a; 32])
            .expect("a valid key")
            .sin();
        // One token for the other integration, however many invoices it makes.
        let existing = self
            .lock()
            .tokens
            .iter()
            .find(|t| t.sin == other_integration && t.facade == "pos" && t.active)
            .map(|t| t.token.clone());
        let token = match existing {
            Some(token) => token,
            None => self.create_token(&other_integration, "pos")?,
        };
        let mut body = Map::new();
        body.insert("price".into(), json_number(price));
        body.insert("currency".into(), json!(currency));
        body.insert("orderId".into(), json!(order_id));
        body.insert("token".into(), json!(token));
        let checked = validate_invoice_request(&body)
            .map_err(|reply| format!("invalid invoice (HTTP {})", reply.status))?;
        let mut state = self.lock();
        let api_token = state
            .tokens
            .iter()
            .find(|t| t.token == token)
            .cloned()
            .ok_or("token vanished")?;
        let invoice = build_invoice(&self.base_url, &body, &checked, &api_token);
        let id = invoice.data["id"].as_str().unwrap_or_default().to_string();
        state.push_invoice(invoice);
        Ok(id)
    }

    fn has_notification_url(&self, id: &str) -> bool {
        self.lock()
            .invoice(id)
            .and_then(|i| i.data.get("notificationURL"))
            .and_then(Value::as_str)
            .is_some_and(|u| !u.is_empty())
    }

    /// Builds the webhook under the lock, sends it without holding the lock (the
    /// merchant re-fetches the invoice from this fake while answering), records it.
    fn deliver(&self, id: &str) -> Result<Delivery, String> {
        let (url, extended, status) = {
            let state = self.lock();
            let invoice = state
                .invoice(id)
                .ok_or_else(|| format!("no invoice {id}"))?;
            let url = invoice
                .data
                .get("notificationURL")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| format!("invoice {id} has no notificationURL"))?
                .to_string();
            let extended = invoice.data.get("extendedNotifications") == Some(&Value::Bool(true));
            let status = invoice
                .data
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("new")
                .to_string();
            (url, extended, status)
        };
        let body = self.webhook_body(id, extended)?;
        let event = extended.then(|| event_for(&status).1.to_string());
        self.send_webhook(id, url, body, status, event)
    }

    /// POSTs `body` to `url`, signed with the invoice's token as BitPay signs, and records
    /// the delivery and the merchant's answer.
    fn send_webhook(
        &self,
        id: &str,
        url: String,
        body: String,
        status: String,
        event: Option<String>,
    ) -> Result<Delivery, String> {
        let signature = self.webhook_signature(&body, id)?;
        let at = now_ms();
        let (status_code, error) = match webhook::post(
            &url,
            &body,
            &[
                ("User-Agent", "BitPay IPN (sandbox)"),
                ("x-signature", &signature),
            ],
        ) {
            Ok(code) => (code, None),
            Err(e) => (0, Some(e)),
        };
        let delivery = Delivery {
            invoice_id: id.to_string(),
            invoice_status: status,
            event,
            url,
            body,
            signature,
            status: status_code,
            error,
            at,
        };
        self.lock().deliveries.push(delivery.clone());
        Ok(delivery)
    }

    fn control_route(&self, req: &Incoming, route: &str) -> Result<Reply, (u16, String)> {
        let parts: Vec<&str> = route.split('/').collect();
        let body = || req.control_body();
        let not_found = |e: String| (404, e);
        let ok = control_ok;
        let reply = match (req.method.as_str(), parts.as_slice()) {
            ("POST", ["pairing-codes"]) => {
                let production = body()?.get("production").and_then(Value::as_bool) == Some(true);
                Reply::json(
                    200,
                    &json!({"pairingCode": self.new_server_code(production)}),
                )
            }
            ("POST", ["pairing-codes", code, "approve"]) => {
                if self.approve_pairing(code) {
                    Reply::json(200, &json!({"approved": true}))
                } else {
                    Reply::json(
                        404,
                        &json!({"approved": false, "error": "unknown, expired or already approved pairing code"}),
                    )
                }
            }
            ("POST", ["pairing-codes", code, "expire"]) => {
                self.expire_pairing_code(code).map_err(not_found)?;
                ok()
            }
            ("GET", ["tokens"]) => {
                let tokens: Vec<Value> = self
                    .lock()
                    .tokens
                    .iter()
                    .map(|t| {
                        json!({"token": t.token, "facade": t.facade, "sin": t.sin, "active": t.active,
                               "pairingCode": t.pairing_code, "dateCreated": t.date_created})
                    })
                    .collect();
                Reply::json(200, &json!(tokens))
            }
            ("POST", ["tokens"]) => {
                let b = body()?;
                let sin = b.get("sin").and_then(Value::as_str).unwrap_or_default();
                let facade = b
                    .get("facade")
                    .and_then(Value::as_str)
                    .unwrap_or("merchant");
                let token = self.create_token(sin, facade).map_err(|e| (400, e))?;
                Reply::json(200, &json!({"token": token, "facade": facade}))
            }
            ("GET", ["invoices"]) => {
                let list: Vec<Value> = self.lock().invoices.iter().map(render_invoice).collect();
                Reply::json(200, &json!(list))
            }
            ("GET", ["invoices", id]) => {
                let state = self.lock();
                let invoice = state
                    .invoice(id)
                    .ok_or_else(|| (404, format!("no invoice {id}")))?;
                Reply::json(200, &render_invoice(invoice))
            }
            ("POST", ["invoices", id, "status"]) => {
                let b = body()?;
                let status = b
                    .get("status")
                    .and_then(Value::as_str)
                    .ok_or((400, "status is required".to_string()))?;
                let exception = match b.get("exceptionStatus") {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => None,
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(_) => {
                        return Err((400, "exceptionStatus must be false or a string".into()))
                    }
                };
                if self.lock().invoice(id).is_none() {
                    return Err((404, format!("no invoice {id}")));
                }
                self.set_status(id, status, exception)
                    .map_err(|e| (400, e))?;
                Reply::json(
                    200,
                    &self
                        .lock()
                        .invoice(id)
                        .map(render_invoice)
                        .unwrap_or(Value::Null),
                )
            }
            ("POST", ["invoices", id, "refund"]) => {
                let refund_id = self.refund(id).map_err(|e| (400, e))?;
                Reply::json(200, &json!({"refundId": refund_id}))
            }
            ("POST", ["refunds", id, "status"]) => {
                let b = body()?;
                let status = b
                    .get("status")
                    .and_then(Value::as_str)
                    .ok_or((400, "status is required".to_string()))?;
                let delivered = self.advance_refund(id, status).map_err(|e| (400, e))?;
                Reply::json(200, &json!({"delivered": delivered.map(|d| d.status)}))
            }
            ("GET", ["invoices", id, "refund-webhook"]) => {
                let refund_id = req
                    .query_param("refund")
                    .ok_or((400, "refund=ID is required".to_string()))?;
                let code = req.query_param("code").map_or(Ok(7002), |c| {
                    c.parse().map_err(|_| (400, format!("bad code {c}")))
                })?;
                let body = self
                    .refund_webhook_body(id, &refund_id, code)
                    .map_err(|e| (400, e))?;
                Reply::json(200, &json!({"body": body}))
            }
            ("POST", ["foreign-invoices"]) => {
                let b = body()?;
                let field = |key: &str| {
                    b.get(key)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .ok_or((400, format!("{key} is required")))
                };
                let id = self
                    .create_foreign_invoice(
                        &field("orderId")?,
                        &field("price")?,
                        &field("currency")?,
                    )
                    .map_err(|e| (400, e))?;
                Reply::json(200, &json!({"id": id}))
            }
            ("POST", ["invoices", id, "fields"]) => {
                let b = body()?;
                self.with_invoice(id, |inv| {
                    for (k, v) in b {
                        inv.data.insert(k, v);
                    }
                })
                .map_err(not_found)?;
                ok()
            }
            ("POST", ["invoices", id, "invoice-time"]) => {
                let ms = body()?
                    .get("invoiceTime")
                    .and_then(Value::as_i64)
                    .ok_or((400, "invoiceTime (ms) is required".to_string()))?;
                self.with_invoice(id, |inv| set_invoice_time(inv, ms))
                    .map_err(not_found)?;
                ok()
            }
            ("POST", ["invoices", id, "expire"]) => {
                if self.lock().invoice(id).is_none() {
                    return Err((404, format!("no invoice {id}")));
                }
                self.set_status(id, "expired", None).map_err(|e| (400, e))?;
                ok()
            }
            ("GET", ["deliveries"]) => Reply::json(200, &json!(self.lock().deliveries)),
            ("DELETE", ["deliveries"]) => {
                self.lock().deliveries.clear();
                ok()
            }
            ("POST", ["invoices", id, "deliver"]) => {
                if self.lock().invoice(id).is_none() {
                    return Err((404, format!("no invoice {id}")));
                }
                let delivery = self.deliver(id).map_err(|e| (400, e))?;
                Reply::json(200, &json!(delivery))
            }
            ("POST", ["invoices", id, "pay"]) => {
                let coin = body()?
                    .get("currency")
                    .and_then(Value::as_str)
                    .unwrap_or("BTC")
                    .to_string();
                if self.lock().invoice(id).is_none() {
                    return Err((404, format!("no invoice {id}")));
                }
                let deliveries = self.pay(id, &coin).map_err(|e| (409, e))?;
                Reply::json(200, &json!({ "deliveries": deliveries }))
            }
            ("GET", ["invoices", id, "webhook"]) => {
                let extended = match req.query_param("format").as_deref() {
                    None | Some("extended") => true,
                    Some("legacy") => false,
                    Some(other) => {
                        return Err((
                            400,
                            format!("format must be extended or legacy, not {other}"),
                        ))
                    }
                };
                let body = self.webhook_body(id, extended).map_err(not_found)?;
                let signature = self.webhook_signature(&body, id).map_err(not_found)?;
                Reply::json(200, &json!({"body": body, "signature": signature}))
            }
            _ => {
                return Err((
                    404,
                    format!("no sandbox route {} /_sandbox/{route}", req.method),
                ))
            }
        };
        Ok(reply)
    }
}

// ---------------------------------------------------------------------------------
// Invoice construction and state

struct CheckedInvoice {
    price: Value,
    currency: String,
    usd: Decimal,
}

/// Invoice request parameters that must be strings, and those that must be booleans; both
/// are stored as given.
const TEXT_PARAMETERS: [&str; 9] = [
    "orderId",
    "itemDesc",
    "itemCode",
    "posData",
    "guid",
    "notificationURL",
    "notificationEmail",
    "redirectURL",
    "closeURL",
];
const FLAG_PARAMETERS: [&str; 4] = [
    "fullNotifications",
    "extendedNotifications",
    "autoRedirect",
    "physical",
];

fn validate_invoice_request(body: &Map<String, Value>) -> Result<CheckedInvoice, Reply> {
    let missing: Vec<Value> = ["price", "currency"]
        .iter()
        .filter(|k| body.get(**k).is_none_or(Value::is_null))
        .map(|k| json!({"error": "Missing required parameter.", "param": k}))
        .collect();
    if !missing.is_empty() {
        return Err(Reply::json(400, &json!({ "errors": missing })));
    }
    let invalid = |message: String| Err(coded_error(400, "010002", &message));

    let currency = match body.get("currency") {
        Some(Value::String(c)) => c.clone(),
        _ => return invalid("Invalid parameter currency: must be a string".into()),
    };
    let Some(&(_, decimals, usd_rate)) = CURRENCIES.iter().find(|(code, _, _)| *code == currency)
    else {
        return invalid(format!("Invalid currency: {currency} is not supported"));
    };
    let price_value = body.get("price").cloned().unwrap_or(Value::Null);
    let Value::Number(number) = &price_value else {
        return invalid("Invalid parameter price: must be a number".into());
    };
    let Some(price) = parse_decimal(&number.to_string()) else {
        return invalid("Invalid parameter price: not a valid number".into());
    };
    if price <= Decimal::ZERO {
        return invalid("Invalid parameter price: must be greater than 0".into());
    }
    if significant_scale(&price) > decimals {
        return invalid(format!(
            "Invalid parameter price: {currency} allows at most {decimals} decimal places"
        ));
    }
    let usd = price * parse_decimal(usd_rate).expect("rate table");
    if usd > Decimal::from(MAX_PRICE_USD) {
        return Err(coded_error(
            400,
            "010111",
            "Invoice price is above the maximum threshold",
        ));
    }

    for key in TEXT_PARAMETERS {
        if let Some(v) = body.get(key) {
            if !v.is_string() && !v.is_null() {
                return invalid(format!("Invalid parameter {key}: must be a string"));
            }
        }
    }
    for key in FLAG_PARAMETERS {
        if let Some(v) = body.get(key) {
            if !v.is_boolean() && !v.is_null() {
                return invalid(format!("Invalid parameter {key}: must be a boolean"));
            }
        }
    }
    if let Some(speed) = body.get("transactionSpeed").filter(|v| !v.is_null()) {
        if !matches!(speed.as_str(), Some("high" | "medium" | "low")) {
            return invalid(
                "Invalid parameter transactionSpeed: must be high, medium or low".into(),
            );
        }
    }
    if let Some(buyer) = body.get("buyer").filter(|v| !v.is_null()) {
        if !buyer.is_object() {
            return invalid("Invalid parameter buyer: must be an object".into());
        }
    }
    if let Some(window) = body.get("acceptanceWindow").filter(|v| !v.is_null()) {
        if window.as_u64().is_none_or(|w| w > 900_000) {
            return invalid("Invalid parameter acceptanceWindow: must be 0-900000".into());
        }
    }
    Ok(CheckedInvoice {
        price: price_value,
        currency,
        usd,
    })
}

fn build_invoice(
    base_url: &str,
    body: &Map<String, Value>,
    checked: &CheckedInvoice,
    token: &ApiToken,
) -> StoredInvoice {
    let id = random_string(BASE58, 22);
    let now = now_ms();
    let mut data = Map::new();
    data.insert("url".into(), json!(format!("{base_url}/invoice?id={id}")));
    data.insert("id".into(), json!(id));
    data.insert("status".into(), json!("new"));
    data.insert("price".into(), checked.price.clone());
    data.insert("currency".into(), json!(checked.currency));
    for key in TEXT_PARAMETERS.into_iter().chain(FLAG_PARAMETERS) {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            data.insert(key.into(), v.clone());
        }
    }
    data.insert(
        "transactionSpeed".into(),
        body.get("transactionSpeed")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(json!("medium")),
    );
    data.insert(
        "buyer".into(),
        body.get("buyer")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(json!({})),
    );
    data.insert("invoiceTime".into(), json!(now));
    data.insert("expirationTime".into(), json!(now + INVOICE_LIFETIME_MS));
    data.insert("currentTime".into(), json!(now));
    data.insert("lowFeeDetected".into(), json!(false));
    data.insert("amountPaid".into(), json!(0));
    data.insert("displayAmountPaid".into(), json!("0"));
    data.insert("exceptionStatus".into(), json!(false));
    data.insert("targetConfirmations".into(), json!(6));
    data.insert("transactions".into(), json!([]));
    data.insert("refundAddresses".into(), json!([]));
    data.insert("refundAddressRequestPending".into(), json!(false));
    data.insert("isCancelled".into(), json!(false));
    data.insert("merchantName".into(), json!("Sandbox ISP"));
    data.insert("token".into(), json!(random_string(BASE58, 44)));

    let (subtotals, totals, display) = payment_amounts(checked.usd);
    data.insert("paymentSubtotals".into(), Value::Object(subtotals));
    data.insert("paymentTotals".into(), Value::Object(totals));
    data.insert(
        "paymentDisplayTotals".into(),
        Value::Object(display.clone()),
    );
    data.insert("paymentDisplaySubTotals".into(), Value::Object(display));
    data.insert("exchangeRates".into(), exchange_rates(&checked.currency));
    data.insert(
        "minerFees".into(),
        json!({"BTC": {"satoshisPerByte": 20, "totalFee": BTC_MINER_FEE_SATS, "fiatAmount": 2.46}}),
    );
    data.insert(
        "supportedTransactionCurrencies".into(),
        Value::Object(
            COINS
                .iter()
                .map(|(c, _, _)| (c.to_string(), json!({"enabled": true})))
                .collect(),
        ),
    );
    StoredInvoice {
        data,
        api_token: token.token.clone(),
    }
}

/// Smallest-unit subtotals/totals and display totals for every coin.
fn payment_amounts(usd: Decimal) -> (Map<String, Value>, Map<String, Value>, Map<String, Value>) {
    let mut subtotals = Map::new();
    let mut totals = Map::new();
    let mut display = Map::new();
    for &(coin, decimals, rate) in COINS {
        let rate = parse_decimal(rate).expect("rate table");
        let coins = usd / rate;
        let units = (coins * Decimal::from(10u64.pow(decimals.min(18))))
            .round()
            .normalize();
        let (sub, total) = if coin == "PAX" {
            (PAX_TOTAL.to_string(), PAX_TOTAL.to_string())
        } else if coin == "BTC" {
            (
                units.to_string(),
                (units + Decimal::from(BTC_MINER_FEE_SATS)).to_string(),
            )
        } else {
            (units.to_string(), units.to_string())
        };
        let shown = (parse_decimal(&total).unwrap_or_default()
            / Decimal::from(10u64.pow(decimals.min(18))))
        .normalize();
        subtotals.insert(coin.into(), json_number(&sub));
        totals.insert(coin.into(), json_number(&total));
        display.insert(coin.into(), json!(shown.to_string()));
    }
    (subtotals, totals, display)
}

/// `{"BTC":{"USD":57204.993195,"EUR":..,"BCH":..},...}` as floats, like BitPay.
fn exchange_rates(currency: &str) -> Value {
    let usd_per = |code: &str| -> Decimal {
        CURRENCIES
            .iter()
            .chain(COINS.iter())
            .find(|(c, _, _)| *c == code)
            .and_then(|(_, _, r)| parse_decimal(r))
            .unwrap_or(Decimal::ONE)
    };
    let mut rates = Map::new();
    for &(coin, _, _) in COINS {
        let mut row = Map::new();
        let mut targets: Vec<&str> = vec!["USD", currency];
        targets.extend(COINS.iter().map(|(c, _, _)| *c));
        for target in targets {
            let rate = (usd_per(coin) / usd_per(target)).round_dp(8);
            row.insert(target.to_string(), json!(rate.to_f64().unwrap_or(0.0)));
        }
        rates.insert(coin.to_string(), Value::Object(row));
    }
    Value::Object(rates)
}

fn set_invoice_time(inv: &mut StoredInvoice, ms: i64) {
    inv.data.insert("invoiceTime".into(), json!(ms));
    inv.data
        .insert("expirationTime".into(), json!(ms + INVOICE_LIFETIME_MS));
}

/// Coins the hosted checkout offers (PAX keeps BitPay's odd fixture total, so not it).
const CHECKOUT_COINS: &[&str] = &["BTC", "BCH", "ETH", "USDC", "GUSD", "LTC", "DOGE"];

/// Smallest-unit decimals of a payment coin; `None` for an unknown one.
pub(crate) fn coin_decimals(coin: &str) -> Option<u32> {
    COINS
        .iter()
        .find(|(code, _, _)| *code == coin)
        .map(|(_, decimals, _)| *decimals)
}

fn coin_total(inv: &StoredInvoice, coin: &str) -> Decimal {
    inv.data
        .get("paymentTotals")
        .and_then(|t| t.get(coin))
        .and_then(crate::util::decimal_from_json)
        .unwrap_or_default()
}

fn apply_status(inv: &mut StoredInvoice, status: &str, exception: Option<&str>) {
    apply_payment(inv, status, exception, "BTC")
}

/// Sets the status and the payment fields that go with it, as paid in `coin`.
fn apply_payment(inv: &mut StoredInvoice, status: &str, exception: Option<&str>, coin: &str) {
    let total = coin_total(inv, coin);
    let unit = Decimal::from(10u64.pow(coin_decimals(coin).unwrap_or(8).min(18)));
    let data = &mut inv.data;
    data.insert("status".into(), json!(status));
    data.insert(
        "exceptionStatus".into(),
        exception.map_or(json!(false), |e| json!(e)),
    );
    data.remove("underpaidAmount");
    data.remove("overpaidAmount");

    let paid_in_full = matches!(status, "paid" | "confirmed" | "complete" | "invalid");
    let paid = match exception {
        Some("paidPartial") => {
            let paid = (total / Decimal::TWO).floor();
            data.insert(
                "underpaidAmount".into(),
                json_number(&((total - paid) / unit).normalize().to_string()),
            );
            paid
        }
        Some("paidOver") => {
            let paid = (total * Decimal::new(11, 1)).floor();
            data.insert(
                "overpaidAmount".into(),
                json_number(&((paid - total) / unit).normalize().to_string()),
            );
            paid
        }
        _ if paid_in_full || exception.is_some() => total,
        _ => Decimal::ZERO,
    };

    if paid.is_zero() {
        data.insert("amountPaid".into(), json!(0));
        data.insert("displayAmountPaid".into(), json!("0"));
        data.insert("transactions".into(), json!([]));
        data.remove("transactionCurrency");
        return;
    }
    let confirmations = match status {
        "confirmed" => 1,
        "complete" => 6,
        _ => 0,
    };
    let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
    let txid = hex::encode(Sha256::digest(format!("sandbox-tx-{id}").as_bytes()));
    let received = data
        .get("invoiceTime")
        .and_then(Value::as_i64)
        .and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms + 60_000))
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let usd_rate = COINS
        .iter()
        .find(|(code, _, _)| *code == coin)
        .and_then(|(_, _, rate)| parse_decimal(rate))
        .unwrap_or(Decimal::ONE);
    let paid_text = paid.normalize().to_string();
    data.insert("amountPaid".into(), json_number(&paid_text));
    data.insert(
        "displayAmountPaid".into(),
        json!((paid / unit).normalize().to_string()),
    );
    data.insert("transactionCurrency".into(), json!(coin));
    let mut ex_rates = Map::new();
    ex_rates.insert(coin.to_string(), json!(1));
    ex_rates.insert("USD".into(), json!(usd_rate.to_f64().unwrap_or(0.0)));
    data.insert(
        "transactions".into(),
        json!([{
            "amount": json_number(&paid_text),
            "confirmations": confirmations,
            "receivedTime": received,
            "txid": txid,
            "exRates": ex_rates,
            "outputIndex": 0
        }]),
    );
}

/// The stored invoice as served, with `currentTime` = now.
fn render_invoice(inv: &StoredInvoice) -> Value {
    let mut data = inv.data.clone();
    data.insert("currentTime".into(), json!(now_ms()));
    Value::Object(data)
}

/// The flat webhook fields (legacy format, also the extended format's `data`).
fn webhook_data(invoice: &Value) -> Map<String, Value> {
    let mut data = Map::new();
    let copy = |data: &mut Map<String, Value>, keys: &[&str]| {
        for key in keys {
            if let Some(v) = invoice.get(key) {
                data.insert(key.to_string(), v.clone());
            }
        }
    };
    copy(
        &mut data,
        &[
            "id",
            "url",
            "posData",
            "status",
            "price",
            "currency",
            "invoiceTime",
            "expirationTime",
            "currentTime",
            "exceptionStatus",
        ],
    );
    data.insert("buyerFields".into(), buyer_fields(invoice.get("buyer")));
    copy(
        &mut data,
        &[
            "paymentSubtotals",
            "paymentTotals",
            "exchangeRates",
            "amountPaid",
            "orderId",
            "transactionCurrency",
        ],
    );
    data
}

fn buyer_fields(buyer: Option<&Value>) -> Value {
    let mut fields = Map::new();
    if let Some(Value::Object(buyer)) = buyer {
        for (from, to) in [
            ("name", "buyerName"),
            ("address1", "buyerAddress1"),
            ("address2", "buyerAddress2"),
            ("locality", "buyerCity"),
            ("region", "buyerState"),
            ("postalCode", "buyerZip"),
            ("country", "buyerCountry"),
            ("phone", "buyerPhone"),
            ("notify", "buyerNotify"),
            ("email", "buyerEmail"),
        ] {
            match buyer.get(from) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.is_empty() => {}
                Some(v) => {
                    fields.insert(to.into(), v.clone());
                }
            }
        }
    }
    Value::Object(fields)
}

/// Extended-notification event for an invoice status.
fn event_for(status: &str) -> (u32, &'static str) {
    match status {
        "paid" => (1003, "invoice_paidInFull"),
        "expired" => (1004, "invoice_expired"),
        "confirmed" => (1005, "invoice_confirmed"),
        "complete" => (1006, "invoice_completed"),
        "invalid" => (1013, "invoice_failedToConfirm"),
        "declined" => (1019, "invoice_declined"),
        _ => (1001, "invoice_created"),
    }
}

fn valid_pairing_code(code: &str) -> bool {
    code.len() == 7 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// BitPay allows letters, digits, spaces, underscores and dashes (a period fails
/// with "Label is invalid").
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.chars().count() <= 60
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_' || c == '-')
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn decode_segment(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Positions of the invoices `GET /invoices` lists: created (`invoiceTime`, UTC day) from
/// `start` to `end`, both included, of `status` and `orderId` when given.
fn matching_invoices(
    invoices: &[StoredInvoice],
    params: &BTreeMap<String, String>,
    start: NaiveDate,
    end: NaiveDate,
) -> Vec<usize> {
    invoices
        .iter()
        .enumerate()
        .filter(|(_, inv)| {
            let day = inv
                .data
                .get("invoiceTime")
                .and_then(Value::as_i64)
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|t| t.date_naive());
            day.is_some_and(|d| d >= start && d <= end)
                && params.get("status").is_none_or(|s| {
                    inv.data.get("status").and_then(Value::as_str) == Some(s.as_str())
                })
                && params.get("orderId").is_none_or(|o| {
                    inv.data.get("orderId").and_then(Value::as_str) == Some(o.as_str())
                })
        })
        .map(|(at, _)| at)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_amounts_keep_huge_integers() {
        let (sub, total, _) = payment_amounts(Decimal::new(5161, 2));
        assert_eq!(total["PAX"].to_string(), PAX_TOTAL);
        let btc_sub: i64 = sub["BTC"].to_string().parse().unwrap();
        let btc_total: i64 = total["BTC"].to_string().parse().unwrap();
        assert_eq!(btc_total - btc_sub, BTC_MINER_FEE_SATS);
        assert!(btc_sub > 80_000 && btc_sub < 100_000, "{btc_sub}");
        assert_eq!(total["GUSD"].to_string(), "5161");
    }

    #[test]
    fn labels_and_codes() {
        assert!(valid_label("splynx-bitpay host_1"));
        assert!(!valid_label("host.example.com"));
        assert!(valid_pairing_code("abc1234"));
        assert!(!valid_pairing_code("abc-234"));
        assert!(!valid_pairing_code("abc12345"));
    }
}
