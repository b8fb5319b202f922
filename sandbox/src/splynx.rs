//! A strict loopback fake of the Splynx REST API v2.0 (the parts a payment add-on uses).
//!
//! What it checks: `Splynx-EA` signature auth (optionally with strictly increasing
//! nonces), per-controller permissions, payment validation (422 bodies), exact decimal
//! money, and invoice/proforma linking. With `set_loose_json(true)` it serves every
//! number and boolean as a string, the way older Splynx versions do.
//!
//! The Splynx host also serves the add-on's webhook URL, [`ADDON_WEBHOOK_PATH`]: it answers
//! every request with 400, as the add-on's shim answers a POST without a body (what
//! `doctor` probes with); `set_webhook_status` makes it answer like a misconfigured proxy.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::server::{control_error, control_ok, HttpServer, Incoming, Reply, Service};
mod ledger;

use crate::util::{
    decimal_from_json, int_from_json, parse_decimal, significant_scale, status_text, today,
};

const API_PREFIX: &str = "/api/2.0/";
/// Where the add-on's webhook shim is reached on the Splynx host.
pub const ADDON_WEBHOOK_PATH: &str = "/bitpay/ipn";

/// Fields holding money: stored exactly, served as strings with 4 decimals.
const MONEY_KEYS: &[&str] = &[
    "total",
    "due",
    "amount",
    "price",
    "remind_amount",
    "deposit",
    "mrr_total",
    "daily_prepaid_cost",
];
/// Fields holding booleans: served as 1/0, or "1"/"0" in loose mode.
const BOOL_KEYS: &[&str] = &[
    "is_active",
    "is_sent",
    "use_transactions",
    "payd_from_deposit",
    "is_crm_request",
];

const INVOICE_STATUSES: &[&str] = &["not_paid", "paid", "pending", "deleted"];
const PROFORMA_STATUSES: &[&str] = &["not_paid", "paid", "pending"];

fn is_id_key(key: &str) -> bool {
    key == "id" || key.ends_with("_id") || key == "payment_type"
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Customer,
    Invoice,
    Proforma,
    PaymentMethod,
    Payment,
    Statement,
    StatementRecord,
    Transaction,
    TransactionCategory,
    Administrator,
}

/// The resources served, by path (the permissions an access token lists name them).
const RESOURCES: [&str; 10] = [
    "admin/customers/customer",
    "admin/finance/invoices",
    "admin/finance/proforma-invoices",
    "admin/finance/payment-methods",
    "admin/finance/payments",
    "admin/finance/bank-statements",
    "admin/finance/bank-statements-records",
    "admin/finance/transactions",
    "admin/finance/transaction-categories",
    "admin/administration/administrators",
];

impl Kind {
    fn from_resource(resource: &str) -> Option<Kind> {
        Some(match resource {
            "admin/customers/customer" => Kind::Customer,
            "admin/finance/invoices" => Kind::Invoice,
            "admin/finance/proforma-invoices" => Kind::Proforma,
            "admin/finance/payment-methods" => Kind::PaymentMethod,
            "admin/finance/payments" => Kind::Payment,
            "admin/finance/bank-statements" => Kind::Statement,
            "admin/finance/bank-statements-records" => Kind::StatementRecord,
            "admin/finance/transactions" => Kind::Transaction,
            "admin/finance/transaction-categories" => Kind::TransactionCategory,
            "admin/administration/administrators" => Kind::Administrator,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Invoice => "invoice",
            Kind::Proforma => "proforma invoice",
            Kind::PaymentMethod => "payment method",
            Kind::Payment => "payment",
            Kind::Statement => "payment statement",
            Kind::StatementRecord => "payment statement record",
            Kind::Transaction => "transaction",
            Kind::TransactionCategory => "transaction category",
            Kind::Administrator => "administrator",
        }
    }

    /// Attributes that may be searched even when no stored row has them.
    fn attributes(self) -> &'static [&'static str] {
        match self {
            Kind::Customer => &[
                "id",
                "login",
                "name",
                "email",
                "status",
                "partner_id",
                "billing_type",
                "category",
                "phone",
                "location_id",
            ],
            Kind::Invoice => &[
                "id",
                "number",
                "customer_id",
                "status",
                "total",
                "due",
                "date_created",
                "date_till",
                "date_payment",
                "payment_id",
                "type",
                "is_sent",
                "note",
                "memo",
            ],
            Kind::Proforma => &[
                "id",
                "number",
                "customer_id",
                "status",
                "total",
                "payment_id",
                "date_created",
                "date_till",
                "date_payment",
                "is_sent",
                "note",
                "memo",
            ],
            Kind::PaymentMethod => &[
                "id",
                "name",
                "is_active",
                "name_1",
                "name_2",
                "name_3",
                "name_4",
                "name_5",
            ],
            Kind::Payment => &[
                "id",
                "customer_id",
                "invoice_id",
                "request_id",
                "transaction_id",
                "payment_type",
                "receipt_number",
                "date",
                "amount",
                "comment",
                "field_1",
                "field_2",
                "field_3",
                "field_4",
                "field_5",
                "note",
                "memo",
                "is_sent",
            ],
            Kind::TransactionCategory => &["id", "name"],
            Kind::Administrator => &["id", "login", "name", "role_name", "partner_id", "email"],
            // Their schema's fields (`ledger`), and the id.
            Kind::Statement | Kind::StatementRecord | Kind::Transaction => &["id"],
        }
    }
}

type Row = Map<String, Value>;

#[derive(Default)]
struct State {
    tables: BTreeMap<&'static str, BTreeMap<i64, Row>>,
    loose_json: bool,
    check_nonce: bool,
    last_nonce: Option<u64>,
    /// Access tokens issued by `POST admin/auth/tokens`, with their expiry (unix seconds).
    access_tokens: BTreeMap<String, i64>,
    access_tokens_issued: u64,
    /// (path prefix relative to /api/2.0/, method or "*").
    denied: Vec<(String, String)>,
    next_transaction_id: i64,
    /// Administrator sessions by session hash (`sash`): (id, role, partner id).
    admin_sessions: BTreeMap<String, (i64, String, i64)>,
    /// What the add-on's webhook URL answers; `None` is the shim's 400.
    webhook_status: Option<u16>,
    /// Bumped by every change to a table: a search's cache is only as old as this.
    changed: u64,
    /// The row ids the last search matched, in order (its table and filters, and `changed`
    /// then): paging through 100,000 payments filters them once, as a database's index
    /// would, not once per page.
    last_search: Option<(String, u64, Vec<i64>)>,
}

impl State {
    /// What every Splynx has before anyone adds data: its transaction categories.
    fn new() -> State {
        let mut state = State {
            next_transaction_id: 1,
            ..State::default()
        };
        for category in ledger::default_categories() {
            state
                .insert(Kind::TransactionCategory, &category)
                .expect("default categories");
        }
        state
    }

    /// The API key's permissions as an access token lists them (reference §1.2:
    /// `{"admin\\finance\\Payments": {"add": "allow", ...}}`), following `deny`.
    fn permissions(&self) -> Value {
        let actions = [
            ("index", "GET"),
            ("view", "GET"),
            ("add", "POST"),
            ("update", "PUT"),
            ("delete", "DELETE"),
        ];
        let mut all = Map::new();
        for resource in RESOURCES {
            let mut granted = Map::new();
            for (action, method) in actions {
                let denied = self.denied.iter().any(|(prefix, m)| {
                    (m == "*" || m.eq_ignore_ascii_case(method))
                        && resource.starts_with(prefix.as_str())
                });
                granted.insert(action.into(), json!(if denied { "deny" } else { "allow" }));
            }
            let name = controller_name(resource);
            let name = name.strip_prefix("api\\").unwrap_or(&name).to_string();
            all.insert(name, Value::Object(granted));
        }
        Value::Object(all)
    }

    /// An administrator logged in with `sash`, and their row in Administration →
    /// Administrators (created with a login and name the first time).
    fn add_admin_session(&mut self, sash: &str, id: i64, role: &str, partner: i64) {
        self.admin_sessions
            .insert(sash.to_string(), (id, role.to_string(), partner));
        if self.get(Kind::Administrator, id).is_none() {
            let row = json!({"id": id, "login": format!("admin{id}"), "name": format!("Administrator {id}"),
                             "role_name": role, "partner_id": partner, "email": ""});
            self.insert(Kind::Administrator, &row)
                .expect("a new administrator row");
        }
    }

    fn table(&self, kind: Kind) -> Option<&BTreeMap<i64, Row>> {
        self.tables.get(kind.name())
    }

    fn table_mut(&mut self, kind: Kind) -> &mut BTreeMap<i64, Row> {
        self.changed += 1;
        self.tables.entry(kind.name()).or_default()
    }

    fn get(&self, kind: Kind, id: i64) -> Option<&Row> {
        self.table(kind).and_then(|t| t.get(&id))
    }

    fn rows(&self, kind: Kind) -> Vec<&Row> {
        self.table(kind)
            .map(|t| t.values().collect())
            .unwrap_or_default()
    }

    fn insert(&mut self, kind: Kind, input: &Value) -> Result<i64, String> {
        let mut row = normalize(input)?;
        let table = self.table_mut(kind);
        let id = match row.get("id") {
            Some(v) if !v.is_null() => int_from_json(v).ok_or("id must be an integer")?,
            _ => table.keys().next_back().copied().unwrap_or(0) + 1,
        };
        if id <= 0 {
            return Err(format!("{} id must be positive", kind.name()));
        }
        if table.contains_key(&id) {
            return Err(format!("{} {id} already exists", kind.name()));
        }
        row.insert("id".into(), json!(id));
        apply_defaults(kind, id, &mut row)?;
        table.insert(id, row);
        Ok(id)
    }
}

struct Core {
    api_key: String,
    api_secret: String,
    state: Mutex<State>,
    auth_failures: AtomicU64,
}

/// The Splynx fake. Dropping it stops the server.
pub struct SplynxSandbox {
    server: HttpServer,
    core: Arc<Core>,
}

crate::sandbox_common_api!(SplynxSandbox);

impl SplynxSandbox {
    /// Starts on a free loopback port with this API key and secret.
    pub fn start(api_key: &str, api_secret: &str) -> SplynxSandbox {
        SplynxSandbox::start_on(0, api_key, api_secret)
    }

    /// Starts on `127.0.0.1:port` (0 = any free port); panics when it cannot bind.
    pub fn start_on(port: u16, api_key: &str, api_secret: &str) -> SplynxSandbox {
        SplynxSandbox::try_start_on(port, api_key, api_secret)
            .unwrap_or_else(|e| panic!("Splynx sandbox cannot listen on port {port}: {e}"))
    }

    pub fn try_start_on(port: u16, api_key: &str, api_secret: &str) -> io::Result<SplynxSandbox> {
        let (server, core) = HttpServer::start(port, |_| Core {
            api_key: api_key.to_string(),
            api_secret: api_secret.to_string(),
            state: Mutex::new(State::new()),
            auth_failures: AtomicU64::new(0),
        })?;
        Ok(SplynxSandbox { server, core })
    }

    /// When on, each request's nonce must be strictly greater than the last accepted one.
    pub fn set_check_nonce(&self, on: bool) {
        self.core.lock().check_nonce = on;
    }

    /// The nonce of the last authenticated request.
    pub fn last_nonce(&self) -> Option<u64> {
        self.core.lock().last_nonce
    }

    /// Requests refused with 401 so far.
    /// How many access tokens `POST admin/auth/tokens` has issued.
    pub fn access_tokens_issued(&self) -> u64 {
        self.core.lock().access_tokens_issued
    }

    /// Expires every issued access token (Splynx's last for 30 minutes).
    pub fn expire_access_tokens(&self) {
        self.core.lock().access_tokens.clear();
    }

    pub fn auth_failures(&self) -> u64 {
        self.core.auth_failures.load(Ordering::SeqCst)
    }

    /// Refuses (403) requests whose path (relative to `/api/2.0/`, e.g.
    /// `admin/finance/payments`) starts with `path_prefix` and whose method is `method`
    /// (`"*"` = any method).
    pub fn deny(&self, path_prefix: &str, method: &str) {
        let prefix = relative_path(path_prefix).to_string();
        self.core
            .lock()
            .denied
            .push((prefix, method.to_ascii_uppercase()));
    }

    /// Removes every `deny`.
    pub fn allow_all(&self) {
        self.core.lock().denied.clear();
    }

    /// Serves ids, numbers and booleans as strings (`"id":"5"`, `"is_active":"1"`).
    pub fn set_loose_json(&self, on: bool) {
        self.core.lock().loose_json = on;
    }

    /// Makes the add-on's webhook URL answer `status` instead of the shim's 400.
    pub fn set_webhook_status(&self, status: u16) {
        self.core.lock().webhook_status = Some(status);
    }

    /// Adds a customer (id, login, name, email, status, partner_id, billing_type, ...);
    /// returns its id. Panics on invalid input.
    pub fn add_customer(&self, customer: Value) -> i64 {
        self.add(Kind::Customer, customer)
    }

    /// Adds an invoice (id, number, customer_id, status, total, due, date_created,
    /// date_till, payment_id, items[]); `due` defaults to `total` (0 when paid).
    pub fn add_invoice(&self, invoice: Value) -> i64 {
        self.add(Kind::Invoice, invoice)
    }

    /// Adds a proforma invoice (id, number, customer_id, status, total, payment_id).
    pub fn add_proforma(&self, proforma: Value) -> i64 {
        self.add(Kind::Proforma, proforma)
    }

    /// Adds a payment method (id, name, is_active, name_1..name_5).
    pub fn add_payment_method(&self, method: Value) -> i64 {
        self.add(Kind::PaymentMethod, method)
    }

    pub fn customer(&self, id: i64) -> Option<Value> {
        self.get(Kind::Customer, id)
    }

    pub fn invoice(&self, id: i64) -> Option<Value> {
        self.get(Kind::Invoice, id)
    }

    pub fn proforma(&self, id: i64) -> Option<Value> {
        self.get(Kind::Proforma, id)
    }

    pub fn payment_method(&self, id: i64) -> Option<Value> {
        self.get(Kind::PaymentMethod, id)
    }

    /// Every payment created through the API, oldest first (strict JSON typing).
    pub fn payments(&self) -> Vec<Value> {
        self.all(Kind::Payment)
    }

    /// Payment statements, in id order.
    pub fn statements(&self) -> Vec<Value> {
        self.all(Kind::Statement)
    }

    /// Payment statement records, in id order.
    pub fn statement_records(&self) -> Vec<Value> {
        self.all(Kind::StatementRecord)
    }

    /// An admin deletes a payment statement in Splynx, with its records.
    pub fn delete_statement(&self, id: i64) {
        let mut state = self.core.lock();
        state.table_mut(Kind::Statement).remove(&id);
        state
            .table_mut(Kind::StatementRecord)
            .retain(|_, r| r.get("bank_statements_process_id") != Some(&json!(id)));
    }

    /// Transactions, in id order.
    pub fn transactions(&self) -> Vec<Value> {
        self.all(Kind::Transaction)
    }

    fn all(&self, kind: Kind) -> Vec<Value> {
        self.core
            .lock()
            .rows(kind)
            .into_iter()
            .map(|r| render_row(r, false))
            .collect()
    }

    /// A payment an admin adds by hand in Splynx (Finance → Payments), validated like the
    /// API's; returns its id. Panics when Splynx would refuse it.
    pub fn add_payment_by_hand(&self, payment: Value) -> i64 {
        let Value::Object(body) = payment else {
            panic!("a payment is a JSON object");
        };
        let reply = self.core.add_payment(&body, false);
        let created: Value = serde_json::from_slice(&reply.body).expect("JSON reply");
        assert_eq!(reply.status, 201, "Splynx refused the payment: {created}");
        created["id"].as_i64().expect("payment id")
    }

    /// An administrator logged in to Splynx with session hash `sash`: API requests with
    /// `?sash=` then answer with `SpL-Administrator-Id`/`-Role`/`-Partner` headers (an
    /// unknown sash gets 401 INVALID_SASH).
    /// The administrator's login is `admin<id>` and their name "Administrator <id>" unless
    /// set with `set_admin_name`.
    pub fn add_admin_session(&self, sash: &str, id: i64, role: &str) {
        self.core.lock().add_admin_session(sash, id, role, 1);
    }

    /// The login and name Splynx has for administrator `id` (Administration → Administrators).
    pub fn set_admin_name(&self, id: i64, login: &str, name: &str) {
        let mut state = self.core.lock();
        if let Some(row) = state.table_mut(Kind::Administrator).get_mut(&id) {
            row.insert("login".into(), json!(login));
            row.insert("name".into(), json!(name));
        }
    }

    pub fn payment_count(&self) -> usize {
        self.core
            .lock()
            .table(Kind::Payment)
            .map_or(0, BTreeMap::len)
    }

    /// The demo data set the `splynx-bitpay-sandbox` binary starts with: customers
    /// 42 (Ada Lovelace, prepaid) and 43 (Grace Hopper); invoices 101 (customer 42,
    /// number 202401000001, 51.61 due), 102 (customer 42, paid), 103 (customer 43);
    /// proforma 201 (number 2024000001, 20.00); payment methods 1-6 (Splynx defaults)
    /// and 7 "BitPay".
    pub fn seed_demo(&self) {
        let mut state = self.core.lock();
        seed_demo(&mut state).unwrap_or_else(|e| panic!("demo seed: {e}"));
    }

    fn add(&self, kind: Kind, value: Value) -> i64 {
        self.core
            .lock()
            .insert(kind, &value)
            .unwrap_or_else(|e| panic!("cannot add {}: {e}", kind.name()))
    }

    fn get(&self, kind: Kind, id: i64) -> Option<Value> {
        self.core.lock().get(kind, id).map(|r| render_row(r, false))
    }
}

fn seed_demo(state: &mut State) -> Result<(), String> {
    let customers = [
        json!({"id": 42, "login": "ada", "name": "Ada Lovelace", "email": "ada@example.com",
               "status": "active", "partner_id": 1, "billing_type": "prepaid"}),
        json!({"id": 43, "login": "grace", "name": "Grace Hopper", "email": "grace@example.com",
               "status": "active", "partner_id": 1, "billing_type": "recurring"}),
    ];
    let invoices = [
        json!({"id": 101, "number": "202401000001", "customer_id": 42, "status": "not_paid",
               "total": "51.61", "due": "51.61", "date_created": "2024-01-01", "date_till": "2024-01-15",
               "items": [{"description": "Internet 100 Mbps, January 2024", "quantity": 1, "unit": "month",
                          "price": "51.61", "tax": 0}]}),
        json!({"id": 102, "number": "202401000002", "customer_id": 42, "status": "paid",
               "total": "30.00", "due": "0", "date_created": "2023-12-01", "date_till": "2023-12-15",
               "date_payment": "2023-12-10",
               "items": [{"description": "Internet 100 Mbps, December 2023", "quantity": 1, "unit": "month",
                          "price": "30.00", "tax": 0}]}),
        json!({"id": 103, "number": "202401000003", "customer_id": 43, "status": "not_paid",
               "total": "25.00", "due": "25.00", "date_created": "2024-01-01", "date_till": "2024-01-15",
               "items": [{"description": "Internet 50 Mbps, January 2024", "quantity": 1, "unit": "month",
                          "price": "25.00", "tax": 0}]}),
    ];
    let proformas = [
        json!({"id": 201, "number": "2024000001", "customer_id": 42, "status": "not_paid",
                           "total": "20.00", "date_created": "2024-01-01", "date_till": "2024-01-15"}),
    ];
    let mut methods: Vec<Value> = [
        "Cash",
        "Bank transfer",
        "Credit card",
        "PayPal",
        "Other",
        "Refill card",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| json!({"id": i + 1, "name": name, "is_active": true}))
    .collect();
    methods.push(json!({"id": 7, "name": "BitPay", "is_active": true,
                        "name_1": "BitPay invoice", "name_2": "Coin", "name_3": "Transaction"}));
    for c in &customers {
        state.insert(Kind::Customer, c)?;
    }
    for i in &invoices {
        state.insert(Kind::Invoice, i)?;
    }
    for p in &proformas {
        state.insert(Kind::Proforma, p)?;
    }
    for m in &methods {
        state.insert(Kind::PaymentMethod, m)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Normalising and rendering rows

/// Coerces ids to integers, money to exact decimals (stored as text) and booleans to
/// bools, accepting numbers or strings as input.
fn normalize(input: &Value) -> Result<Row, String> {
    let Value::Object(map) = input else {
        return Err("expected a JSON object".into());
    };
    let mut row = Row::new();
    for (key, value) in map {
        row.insert(key.clone(), normalize_field(key, value)?);
    }
    Ok(row)
}

fn normalize_field(key: &str, value: &Value) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    if MONEY_KEYS.contains(&key) {
        let d = decimal_from_json(value).ok_or(format!("{key} must be a decimal"))?;
        return Ok(json!(d.normalize().to_string()));
    }
    if BOOL_KEYS.contains(&key) {
        return match value {
            Value::Bool(b) => Ok(json!(*b)),
            other => match int_from_json(other) {
                Some(0) => Ok(json!(false)),
                Some(1) => Ok(json!(true)),
                _ => match other.as_str() {
                    Some("true") => Ok(json!(true)),
                    Some("false") => Ok(json!(false)),
                    _ => Err(format!("{key} must be a boolean")),
                },
            },
        };
    }
    if is_id_key(key) {
        return int_from_json(value)
            .map(|n| json!(n))
            .ok_or(format!("{key} must be an integer"));
    }
    if key == "number" {
        return match value {
            Value::String(s) => Ok(json!(s)),
            Value::Number(n) => Ok(json!(n.to_string())),
            _ => Err("number must be a string".into()),
        };
    }
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(_) => normalize(item).map(Value::Object),
                other => Ok(other.clone()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn apply_defaults(kind: Kind, id: i64, row: &mut Row) -> Result<(), String> {
    let mut default = |key: &str, value: Value| {
        if row.get(key).is_none_or(Value::is_null) {
            row.insert(key.to_string(), value);
        }
    };
    match kind {
        Kind::Customer => {
            default("login", json!(format!("customer{id}")));
            default("name", json!(""));
            default("email", json!(""));
            default("status", json!("active"));
            default("partner_id", json!(1));
            default("billing_type", json!("recurring"));
            default("category", json!("person"));
        }
        Kind::Invoice | Kind::Proforma => {
            default(
                "number",
                json!(format!(
                    "{}{id:06}",
                    if kind == Kind::Invoice {
                        "20240100"
                    } else {
                        "2024"
                    }
                )),
            );
            default("customer_id", json!(0));
            default("status", json!("not_paid"));
            default("total", json!("0"));
            default("payment_id", json!(0));
            default("date_created", json!(today()));
            default("date_till", json!(today()));
            default("items", json!([]));
            let statuses = if kind == Kind::Invoice {
                INVOICE_STATUSES
            } else {
                PROFORMA_STATUSES
            };
            let status = row
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !statuses.contains(&status) {
                return Err(format!("status must be one of {statuses:?}"));
            }
            if kind == Kind::Invoice && row.get("due").is_none_or(Value::is_null) {
                let due = if status == "paid" {
                    json!("0")
                } else {
                    row["total"].clone()
                };
                row.insert("due".into(), due);
            }
        }
        Kind::PaymentMethod => {
            default("name", json!(format!("Method {id}")));
            default("is_active", json!(true));
            for n in 1..=5 {
                default(&format!("name_{n}"), json!(""));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A stored row as served: money as 4-decimal strings; ids and other numbers as
/// numbers and booleans as 1/0, or all of them as strings when `loose`.
fn render_row(row: &Row, loose: bool) -> Value {
    Value::Object(
        row.iter()
            .map(|(k, v)| (k.clone(), render_value(Some(k), v, loose)))
            .collect(),
    )
}

fn render_value(key: Option<&str>, value: &Value, loose: bool) -> Value {
    if let (Some(k), false) = (key, value.is_null()) {
        if MONEY_KEYS.contains(&k) {
            if let Some(d) = decimal_from_json(value) {
                return json!(format!("{:.4}", d));
            }
        }
    }
    match value {
        Value::Object(map) => render_row(map, loose),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| render_value(None, v, loose)).collect())
        }
        Value::Number(n) if loose => json!(n.to_string()),
        Value::Bool(b) if loose => json!(if *b { "1" } else { "0" }),
        Value::Bool(b) => json!(if *b { 1 } else { 0 }),
        other => other.clone(),
    }
}

/// The field as text, for `main_attributes` equality.
fn field_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------
// Errors

fn api_error(status: u16, message: &str, internal_code: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"message": message, "code": status, "internal_code": internal_code}}),
    )
}

/// Splynx's 422: a list of `{field, message}`.
fn validation_failed(errors: Vec<(String, String)>) -> Reply {
    let list: Vec<Value> = errors
        .into_iter()
        .map(|(field, message)| json!({"field": field, "message": message}))
        .collect();
    Reply::json(422, &Value::Array(list))
}

fn not_found() -> Reply {
    api_error(404, "Not found", "NOT_FOUND")
}

fn method_not_allowed() -> Reply {
    api_error(405, "Method Not Allowed", "METHOD_NOT_ALLOWED")
}

fn bad_request(message: &str) -> Reply {
    api_error(400, message, "BAD_REQUEST")
}

/// `admin/finance/payment-methods` → `api\admin\finance\PaymentMethods`.
fn controller_name(relative: &str) -> String {
    let segments: Vec<&str> = relative
        .split('/')
        .filter(|s| !s.is_empty())
        .take(3)
        .collect();
    let mut name = String::from("api");
    for (i, segment) in segments.iter().enumerate() {
        name.push('\\');
        if i + 1 < segments.len() {
            name.push_str(segment);
            continue;
        }
        for word in segment.split('-') {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                name.extend(first.to_uppercase());
                name.push_str(chars.as_str());
            }
        }
    }
    name
}

fn relative_path(path: &str) -> &str {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("api/2.0/").unwrap_or(path);
    path.trim_end_matches('/')
}

// ---------------------------------------------------------------------------------
// The service

impl Service for Core {
    fn handle(&self, req: &Incoming) -> Reply {
        if req.path == ADDON_WEBHOOK_PATH {
            return Reply::empty(self.lock().webhook_status.unwrap_or(400));
        }
        let Some(relative) = req.path.strip_prefix(API_PREFIX) else {
            return not_found();
        };
        let relative = relative.trim_end_matches('/');
        if relative == "admin/auth/tokens" && req.method == "POST" {
            return self.issue_access_token(req);
        }
        if let Err(reply) = self.authenticate(req) {
            self.auth_failures.fetch_add(1, Ordering::SeqCst);
            return reply;
        }
        // `?sash=` makes the API act as that administrator and name them in the answer.
        let administrator = match req.query_param("sash") {
            None => None,
            Some(sash) => match self.lock().admin_sessions.get(&sash).cloned() {
                Some(admin) => Some(admin),
                None => return api_error(401, "Invalid sash", "INVALID_SASH"),
            },
        };
        let reply = self.route(req, relative);
        match administrator {
            Some((id, role, partner)) => reply
                .header("SpL-Administrator-Id", id.to_string())
                .header("SpL-Administrator-Role", role)
                .header("SpL-Administrator-Partner", partner.to_string()),
            None => reply,
        }
    }

    fn control(&self, req: &Incoming, route: &str) -> Reply {
        self.control_route(req, route)
            .unwrap_or_else(|(status, message)| control_error(status, &message))
    }

    fn fault_reply(&self, status: u16) -> Reply {
        fault_reply(status)
    }
}

impl Core {
    /// An authenticated API request.
    fn route(&self, req: &Incoming, relative: &str) -> Reply {
        let loose = self.lock().loose_json;

        // Route: "admin/api/check" or a resource with an optional numeric id.
        let (resource, id) = match relative.rsplit_once('/') {
            Some((head, last)) if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) => {
                (head, last.parse::<i64>().ok())
            }
            _ => (relative, None),
        };
        let kind = Kind::from_resource(resource);
        if kind.is_none() && relative != "admin/api/check" {
            return not_found();
        }
        let action = match (req.method.as_str(), id) {
            ("GET" | "HEAD", Some(_)) => "view",
            ("GET" | "HEAD", None) => "index",
            ("POST", _) => "add",
            ("PUT", _) => "update",
            ("DELETE", _) => "delete",
            _ => return method_not_allowed(),
        };
        if let Some(reply) = self.check_permission(relative, &req.method, action) {
            return reply;
        }
        let Some(kind) = kind else {
            return match req.method.as_str() {
                "GET" => Reply::json(
                    200,
                    &json!({"status": "ok", "message": "API is valid", "same_server": 0}),
                ),
                _ => method_not_allowed(),
            };
        };
        match (req.method.as_str(), id) {
            ("GET", Some(id)) => match self.lock().get(kind, id) {
                Some(row) => Reply::json(200, &render_row(row, loose)),
                None => not_found(),
            },
            ("HEAD", Some(id)) => match self.lock().get(kind, id) {
                Some(_) => Reply::empty(204),
                None => Reply::empty(404),
            },
            ("GET", None) => match self.search(kind, req) {
                Ok(rows) => Reply::json(
                    200,
                    &Value::Array(rows.iter().map(|r| render_row(r, loose)).collect()),
                ),
                Err(reply) => reply,
            },
            ("HEAD", None) => match self.search(kind, req) {
                Ok(rows) => Reply::empty(204)
                    .header("X-total-count", rows.len().to_string())
                    .header("Access-Control-Expose-Headers", "X-total-count"),
                Err(reply) => Reply::empty(reply.status),
            },
            ("POST", None) if kind == Kind::Payment => self.create_payment(req, loose),
            ("POST", None) if ledger::creatable(kind) => self.create_ledger_row(kind, req, loose),
            _ => method_not_allowed(),
        }
    }
}

/// The error reply of an injected fault, shaped like Splynx's (or its nginx's).
fn fault_reply(status: u16) -> Reply {
    let text = status_text(status);
    match status {
        500 => Reply::json(
            500,
            &json!({"name": "Internal Server Error", "message": "An internal server error occurred.",
                    "code": 0, "status": 500}),
        ),
        502..=504 => Reply::html(
            status,
            format!("<html>\r\n<head><title>{status} {text}</title></head>\r\n<body>\r\n<center><h1>{status} {text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
        ),
        _ => api_error(
            status,
            text,
            &text.to_ascii_uppercase().replace(' ', "_"),
        ),
    }
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `POST admin/auth/tokens` with `{"auth_type":"api_key","key","nonce","signature"}`:
    /// a 30-minute access token, as Splynx issues them.
    fn issue_access_token(&self, req: &Incoming) -> Reply {
        let body = req.json().unwrap_or_default();
        let text = |name: &str| match &body[name] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if text("auth_type").as_deref() != Some("api_key") {
            return api_error(400, "Invalid auth type", "INVALID_AUTH_TYPE");
        }
        if let Err(reply) = self.check_signature(
            text("key").as_ref(),
            text("nonce").as_ref(),
            text("signature").as_ref(),
        ) {
            self.auth_failures.fetch_add(1, Ordering::SeqCst);
            return reply;
        }
        let mut bytes = [0u8; 24];
        getrandom::getrandom(&mut bytes).expect("OS randomness");
        let token = hex::encode(bytes);
        let expires = chrono::Utc::now().timestamp() + 1800;
        let mut state = self.lock();
        state.access_tokens.insert(token.clone(), expires);
        state.access_tokens_issued += 1;
        let permissions = state.permissions();
        Reply::json(
            201,
            &json!({"access_token": token, "access_token_expiration": expires,
                    "refresh_token": hex::encode(&bytes[..12]), "refresh_token_expiration": expires + 86400,
                    "permissions": permissions}),
        )
    }

    /// `Authorization: Splynx-EA (key=K&nonce=N&signature=S)` or
    /// `Splynx-EA (access_token=T)`.
    fn authenticate(&self, req: &Incoming) -> Result<(), Reply> {
        let unauthorized = |message: &str| api_error(401, message, "UNAUTHORIZED");
        let Some(header) = req.header("authorization") else {
            return Err(api_error(
                401,
                "Authorization header is missing",
                "MISSED_AUTHORIZATION_HEADER",
            ));
        };
        let inner = header
            .trim()
            .strip_prefix("Splynx-EA")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
            .ok_or_else(|| unauthorized("Invalid signature"))?;
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(inner.as_bytes())
            .into_owned()
            .collect();
        if let Some(token) = params.get("access_token") {
            let now = chrono::Utc::now().timestamp();
            return match self.lock().access_tokens.get(token) {
                Some(expires) if *expires > now => Ok(()),
                _ => Err(api_error(
                    401,
                    "Access token is expired or invalid",
                    "EXPIRED_ACCESS_TOKEN",
                )),
            };
        }
        self.check_signature(
            params.get("key"),
            params.get("nonce"),
            params.get("signature"),
        )
    }

    /// HMAC signature and (when checked) strictly increasing nonce.
    fn check_signature(
        &self,
        key: Option<&String>,
        nonce_text: Option<&String>,
        signature: Option<&String>,
    ) -> Result<(), Reply> {
        let unauthorized = |message: &str| api_error(401, message, "UNAUTHORIZED");
        let (Some(key), Some(nonce_text), Some(signature)) = (key, nonce_text, signature) else {
            return Err(unauthorized("Invalid signature"));
        };
        if key != &self.api_key {
            return Err(unauthorized("Invalid signature"));
        }
        if nonce_text.is_empty() || !nonce_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unauthorized("Nonce is invalid"));
        }
        let nonce: u64 = nonce_text
            .parse()
            .map_err(|_| unauthorized("Nonce is invalid"))?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.api_secret.as_bytes()).expect("any key length");
        mac.update(nonce_text.as_bytes());
        mac.update(self.api_key.as_bytes());
        let expected = hex::encode_upper(mac.finalize().into_bytes());
        if signature != &expected {
            return Err(unauthorized("Invalid signature"));
        }
        // Check and update under one lock so concurrent requests cannot share a nonce.
        let mut state = self.lock();
        if state.check_nonce && state.last_nonce.is_some_and(|last| nonce <= last) {
            return Err(unauthorized("Nonce is invalid"));
        }
        state.last_nonce = Some(nonce);
        Ok(())
    }

    fn check_permission(&self, relative: &str, method: &str, action: &str) -> Option<Reply> {
        let state = self.lock();
        let denied = state.denied.iter().any(|(prefix, m)| {
            (m == "*" || m.eq_ignore_ascii_case(method)) && relative.starts_with(prefix.as_str())
        });
        denied.then(|| {
            api_error(
                403,
                &format!("Permission denied: {} {action}", controller_name(relative)),
                "FORBIDDEN",
            )
        })
    }

    /// `main_attributes[...]` filters, `order[field]`, `limit`, `offset`.
    fn search(&self, kind: Kind, req: &Incoming) -> Result<Vec<Row>, Reply> {
        let mut conditions: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut parts: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut order: Option<(String, bool)> = None;
        let mut limit: Option<usize> = None;
        let mut offset = 0usize;
        let mut between: Vec<(String, String, String)> = Vec::new();
        for (key, value) in req.query_pairs() {
            if let Some(rest) = key.strip_prefix("main_attributes[") {
                let segments: Vec<&str> = rest.trim_end_matches(']').split("][").collect();
                match segments.as_slice() {
                    [field] => {
                        conditions.insert(field.to_string(), ("=".into(), value));
                    }
                    [field, index] => {
                        parts
                            .entry(field.to_string())
                            .or_default()
                            .insert(index.to_string(), value);
                    }
                    _ => return Err(bad_request(&format!("Unsupported search parameter {key}"))),
                }
            } else if key.starts_with("additional_attributes") {
                return Err(bad_request(
                    "additional_attributes are not supported by the sandbox",
                ));
            } else if let Some(field) = key.strip_prefix("order[").and_then(|r| r.strip_suffix(']'))
            {
                let descending = match value.to_ascii_uppercase().as_str() {
                    "ASC" => false,
                    "DESC" => true,
                    _ => return Err(bad_request(&format!("Invalid order direction {value}"))),
                };
                order = Some((field.to_string(), descending));
            } else if key == "limit" {
                limit = Some(
                    value
                        .parse()
                        .map_err(|_| bad_request("limit must be an integer"))?,
                );
            } else if key == "offset" {
                offset = value
                    .parse()
                    .map_err(|_| bad_request("offset must be an integer"))?;
            }
        }
        for (field, p) in parts {
            let (Some(op), Some(value)) = (p.get("0"), p.get("1")) else {
                return Err(bad_request(&format!("Invalid condition for {field}")));
            };
            let op = op.to_ascii_uppercase();
            if op == "BETWEEN" {
                let Some(high) = p.get("2") else {
                    return Err(bad_request(&format!("BETWEEN on {field} needs two values")));
                };
                between.push((field, value.clone(), high.clone()));
                continue;
            }
            if !["=", "!=", "<>", "LIKE", ">", "<", ">=", "<="].contains(&op.as_str()) {
                return Err(bad_request(&format!(
                    "Operator {op} is not supported by the sandbox"
                )));
            }
            conditions.insert(field, (op, value.clone()));
        }

        let mut state = self.lock();
        let key = format!("{} {conditions:?} {between:?} {order:?}", kind.name());
        let cached = state
            .last_search
            .as_ref()
            .filter(|(k, at, _)| *k == key && *at == state.changed)
            .map(|(_, _, ids)| ids.clone());
        let ids = match cached {
            Some(ids) => ids,
            None => {
                let ids = matching_rows(&state, kind, &conditions, &between, order)?;
                state.last_search = Some((key, state.changed, ids.clone()));
                ids
            }
        };
        let Some(table) = state.table(kind) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .filter_map(|id| table.get(id))
            .cloned()
            .collect())
    }

    /// `POST` of a payment statement, statement record or transaction (`ledger`).
    fn create_ledger_row(&self, kind: Kind, req: &Incoming, loose: bool) -> Reply {
        let body = match req.json() {
            Ok(Value::Object(body)) => body,
            Ok(_) => return bad_request("Request body must be a JSON object"),
            Err(e) => return bad_request(&e),
        };
        match ledger::create(&mut self.lock(), kind, &body) {
            Ok(id) => Reply::json(
                201,
                &render_row(&Map::from_iter([("id".into(), json!(id))]), loose),
            ),
            Err(errors) => validation_failed(errors),
        }
    }

    fn create_payment(&self, req: &Incoming, loose: bool) -> Reply {
        match req.json() {
            Ok(Value::Object(body)) => self.add_payment(&body, loose),
            Ok(_) => bad_request("Request body must be a JSON object"),
            Err(e) => bad_request(&e),
        }
    }

    /// Validates and records a payment as `POST admin/finance/payments` does (it pays the
    /// invoice or proforma it names).
    fn add_payment(&self, body: &Map<String, Value>, loose: bool) -> Reply {
        let mut state = self.lock();
        let payment = match validate_payment(&state, body) {
            Ok(p) => p,
            Err(errors) => return validation_failed(errors),
        };
        let id = state
            .table(Kind::Payment)
            .and_then(|t| t.keys().next_back().copied())
            .unwrap_or(0)
            + 1;
        let transaction_id = state.next_transaction_id;
        state.next_transaction_id += 1;

        let mut remind = payment.amount;
        if let Some(invoice_id) = payment.invoice_id {
            let invoice = state
                .table_mut(Kind::Invoice)
                .get_mut(&invoice_id)
                .expect("validated");
            let due = invoice
                .get("due")
                .and_then(decimal_from_json)
                .unwrap_or_default();
            if invoice.get("status").and_then(Value::as_str) != Some("paid") {
                if payment.amount >= due {
                    invoice.insert("status".into(), json!("paid"));
                    invoice.insert("due".into(), json!("0"));
                    invoice.insert("payment_id".into(), json!(id));
                    invoice.insert("date_payment".into(), json!(payment.date));
                    remind = payment.amount - due;
                } else {
                    invoice.insert(
                        "due".into(),
                        json!((due - payment.amount).normalize().to_string()),
                    );
                    remind = Decimal::ZERO;
                }
            }
        }
        if let Some(request_id) = payment.request_id {
            let proforma = state
                .table_mut(Kind::Proforma)
                .get_mut(&request_id)
                .expect("validated");
            let total = proforma
                .get("total")
                .and_then(decimal_from_json)
                .unwrap_or_default();
            if proforma.get("status").and_then(Value::as_str) != Some("paid")
                && payment.amount >= total
            {
                proforma.insert("status".into(), json!("paid"));
                proforma.insert("payment_id".into(), json!(id));
                proforma.insert("date_payment".into(), json!(payment.date));
            }
        }

        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let text = |key: &str| body.get(key).map(field_text).unwrap_or_default();
        let mut row = Row::new();
        row.insert("id".into(), json!(id));
        row.insert("customer_id".into(), json!(payment.customer_id));
        row.insert("invoice_id".into(), json!(payment.invoice_id.unwrap_or(0)));
        row.insert("request_id".into(), json!(payment.request_id.unwrap_or(0)));
        row.insert("transaction_id".into(), json!(transaction_id));
        row.insert("payment_type".into(), json!(payment.payment_type));
        row.insert("receipt_number".into(), json!(payment.receipt_number));
        row.insert("date".into(), json!(payment.date));
        row.insert(
            "amount".into(),
            json!(payment.amount.normalize().to_string()),
        );
        row.insert(
            "remind_amount".into(),
            json!(remind.normalize().to_string()),
        );
        for key in [
            "comment", "field_1", "field_2", "field_3", "field_4", "field_5", "note", "memo",
        ] {
            row.insert(key.into(), json!(text(key)));
        }
        row.insert(
            "is_sent".into(),
            json!(body.get("is_sent").and_then(int_from_json) == Some(1)),
        );
        row.insert("added_by".into(), json!("api"));
        row.insert("added_by_id".into(), json!(0));
        row.insert("real_create_datetime".into(), json!(now));
        row.insert("updated_at".into(), json!(now));
        state.table_mut(Kind::Payment).insert(id, row);
        let mut created = Row::new();
        created.insert("id".into(), json!(id));
        Reply::json(201, &render_row(&created, loose))
    }

    fn control_route(&self, req: &Incoming, route: &str) -> Result<Reply, (u16, String)> {
        let parts: Vec<&str> = route.split('/').collect();
        let body = || req.control_body();
        let enabled = || -> Result<bool, (u16, String)> {
            body()?
                .get("enabled")
                .and_then(Value::as_bool)
                .ok_or((400, "expected {\"enabled\": true|false}".to_string()))
        };
        let ok = control_ok;
        let row = |kind: Kind, id: &str| -> Result<Reply, (u16, String)> {
            let id: i64 = id.parse().map_err(|_| (400, format!("bad id {id}")))?;
            let state = self.lock();
            let row = state
                .get(kind, id)
                .ok_or((404, format!("no {} {id}", kind.name())))?;
            Ok(Reply::json(200, &render_row(row, false)))
        };
        let reply = match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["payments"]) => {
                let state = self.lock();
                let list: Vec<Value> = state
                    .rows(Kind::Payment)
                    .into_iter()
                    .map(|r| render_row(r, false))
                    .collect();
                Reply::json(200, &Value::Array(list))
            }
            ("GET", [list @ ("statements" | "statement-records" | "transactions")]) => {
                let kind = match *list {
                    "statements" => Kind::Statement,
                    "statement-records" => Kind::StatementRecord,
                    _ => Kind::Transaction,
                };
                let state = self.lock();
                let rows: Vec<Value> = state
                    .rows(kind)
                    .into_iter()
                    .map(|r| render_row(r, false))
                    .collect();
                Reply::json(200, &Value::Array(rows))
            }
            ("GET", ["customers", id]) => row(Kind::Customer, id)?,
            ("GET", ["invoices", id]) => row(Kind::Invoice, id)?,
            ("GET", ["proformas", id]) => row(Kind::Proforma, id)?,
            ("GET", ["payment-methods", id]) => row(Kind::PaymentMethod, id)?,
            ("POST", ["check-nonce"]) => {
                self.lock().check_nonce = enabled()?;
                ok()
            }
            ("POST", ["loose-json"]) => {
                self.lock().loose_json = enabled()?;
                ok()
            }
            ("GET", ["auth"]) => {
                let state = self.lock();
                Reply::json(
                    200,
                    &json!({"auth_failures": self.auth_failures.load(Ordering::SeqCst),
                            "last_nonce": state.last_nonce, "check_nonce": state.check_nonce}),
                )
            }
            ("POST", ["deny"]) => {
                let b = body()?;
                let path = b
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or((400, "path is required".to_string()))?;
                let method = b.get("method").and_then(Value::as_str).unwrap_or("*");
                self.lock()
                    .denied
                    .push((relative_path(path).to_string(), method.to_ascii_uppercase()));
                ok()
            }
            ("DELETE", ["deny"]) => {
                self.lock().denied.clear();
                ok()
            }
            ("POST", ["seed"]) => {
                let b = body()?;
                let mut state = self.lock();
                let mut created = Map::new();
                for (key, kind) in [
                    ("customers", Kind::Customer),
                    ("invoices", Kind::Invoice),
                    ("proformas", Kind::Proforma),
                    ("payment_methods", Kind::PaymentMethod),
                ] {
                    let items = match b.get(key) {
                        None => continue,
                        Some(Value::Array(items)) => items,
                        Some(_) => return Err((400, format!("{key} must be an array"))),
                    };
                    let mut ids = Vec::new();
                    for item in items {
                        ids.push(
                            state
                                .insert(kind, item)
                                .map_err(|e| (400, format!("{key}: {e}")))?,
                        );
                    }
                    created.insert(key.into(), json!(ids));
                }
                if let Some(unknown) = b.keys().find(|k| {
                    !["customers", "invoices", "proformas", "payment_methods"].contains(&k.as_str())
                }) {
                    return Err((400, format!("unknown seed key {unknown}")));
                }
                Reply::json(200, &Value::Object(created))
            }
            ("POST", ["admin-sessions"]) => {
                let b = body()?;
                let sash = b
                    .get("sash")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or((400, "sash is required".to_string()))?;
                let id = b
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or((400, "id is required".to_string()))?;
                let role = b
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or((400, "role is required".to_string()))?;
                let partner = b.get("partner_id").and_then(Value::as_i64).unwrap_or(1);
                let mut state = self.lock();
                state.add_admin_session(sash, id, role, partner);
                for field in ["login", "name"] {
                    if let Some(value) = b.get(field).and_then(Value::as_str) {
                        if let Some(row) = state.table_mut(Kind::Administrator).get_mut(&id) {
                            row.insert(field.into(), json!(value));
                        }
                    }
                }
                ok()
            }
            ("POST", ["seed-demo"]) => {
                seed_demo(&mut self.lock()).map_err(|e| (400, e))?;
                ok()
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

/// The ids of the rows of `kind` that meet every condition, in the order asked for (by id
/// otherwise).
fn matching_rows(
    state: &State,
    kind: Kind,
    conditions: &BTreeMap<String, (String, String)>,
    between: &[(String, String, String)],
    order: Option<(String, bool)>,
) -> Result<Vec<i64>, Reply> {
    let mut rows: Vec<(i64, &Row)> = state
        .table(kind)
        .map(|t| t.iter().map(|(id, row)| (*id, row)).collect())
        .unwrap_or_default();
    for field in conditions.keys().chain(between.iter().map(|(f, _, _)| f)) {
        let known = kind.attributes().contains(&field.as_str())
            || ledger::schema_fields(kind).any(|f| f == field)
            || rows.iter().any(|(_, r)| r.contains_key(field));
        if !known {
            return Err(bad_request(&format!("Unknown attribute {field}")));
        }
    }
    rows.retain(|(_, row)| {
        conditions.iter().all(|(field, (op, wanted))| {
            let value = row.get(field).unwrap_or(&Value::Null);
            matches(field, value, op, wanted)
        }) && between.iter().all(|(field, low, high)| {
            let value = row.get(field).unwrap_or(&Value::Null);
            matches(field, value, ">=", low) && matches(field, value, "<=", high)
        })
    });
    if let Some((field, descending)) = order {
        rows.sort_by(|(_, a), (_, b)| {
            let (x, y) = (
                a.get(&field).unwrap_or(&Value::Null),
                b.get(&field).unwrap_or(&Value::Null),
            );
            let ordering = match (decimal_from_json(x), decimal_from_json(y)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => field_text(x).cmp(&field_text(y)),
            };
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

fn matches(field: &str, value: &Value, op: &str, wanted: &str) -> bool {
    let money = MONEY_KEYS.contains(&field);
    let ordering = match (decimal_from_json(value), parse_decimal(wanted)) {
        (Some(x), Some(y)) if money || value.is_number() => Some(x.cmp(&y)),
        _ => None,
    };
    let text = field_text(value);
    match op {
        "=" => ordering.map_or(text == wanted, |o| o.is_eq()),
        "!=" | "<>" => ordering.map_or(text != wanted, |o| o.is_ne()),
        "LIKE" => text
            .to_lowercase()
            .contains(&wanted.trim_matches('%').to_lowercase()),
        ">" => ordering.map_or(text.as_str() > wanted, |o| o.is_gt()),
        "<" => ordering.map_or(text.as_str() < wanted, |o| o.is_lt()),
        ">=" => ordering.map_or(text.as_str() >= wanted, |o| o.is_ge()),
        "<=" => ordering.map_or(text.as_str() <= wanted, |o| o.is_le()),
        _ => false,
    }
}

struct NewPayment {
    customer_id: i64,
    invoice_id: Option<i64>,
    request_id: Option<i64>,
    payment_type: i64,
    receipt_number: String,
    date: String,
    amount: Decimal,
}

/// Validates a `POST admin/finance/payments` body; `Err` lists (field, message).
fn validate_payment(state: &State, body: &Row) -> Result<NewPayment, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut error = |field: &str, message: String| errors.push((field.to_string(), message));
    let present = |key: &str| body.get(key).filter(|v| !v.is_null() && *v != &json!(""));

    let customer_id = match present("customer_id") {
        None => {
            error("customer_id", "Customer Id cannot be blank.".into());
            None
        }
        Some(v) => match int_from_json(v) {
            None => {
                error("customer_id", "Customer Id must be an integer.".into());
                None
            }
            Some(id) if state.get(Kind::Customer, id).is_none() => {
                error("customer_id", format!("Customer with id {id} not found."));
                None
            }
            Some(id) => Some(id),
        },
    };
    let payment_type = match present("payment_type") {
        None => {
            error("payment_type", "Payment Type cannot be blank.".into());
            None
        }
        Some(v) => match int_from_json(v) {
            Some(id) if state.get(Kind::PaymentMethod, id).is_some() => Some(id),
            _ => {
                error("payment_type", "Payment Type is invalid.".into());
                None
            }
        },
    };
    let receipt_number = match present("receipt_number") {
        None => {
            error("receipt_number", "Receipt Number cannot be blank.".into());
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            error("receipt_number", "Receipt Number cannot be blank.".into());
            None
        }
        Some(Value::String(s)) if s.chars().count() > 32 => {
            error(
                "receipt_number",
                "Receipt Number should contain at most 32 characters.".into(),
            );
            None
        }
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(field_text(v)),
        Some(_) => {
            error("receipt_number", "Receipt Number must be a string.".into());
            None
        }
    };
    let date = match present("date") {
        None => {
            error("date", "Date cannot be blank.".into());
            None
        }
        Some(Value::String(s))
            if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() =>
        {
            Some(s.clone())
        }
        Some(_) => {
            error("date", "The format of Date is invalid.".into());
            None
        }
    };
    let amount = match present("amount") {
        None => {
            error("amount", "Amount cannot be blank.".into());
            None
        }
        Some(v) => match decimal_from_json(v) {
            None => {
                error("amount", "Amount must be a number.".into());
                None
            }
            // A refund is a negative payment; zero is nothing.
            Some(d) if d.is_zero() => {
                error("amount", "Amount must not be 0".into());
                None
            }
            Some(d) if significant_scale(&d) > 4 => {
                error(
                    "amount",
                    "Amount must have at most 4 decimal places.".into(),
                );
                None
            }
            Some(d) => Some(d),
        },
    };
    let mut linked = |key: &str, kind: Kind, label: &str| -> Option<i64> {
        let v = present(key)?;
        match int_from_json(v) {
            Some(0) => None,
            Some(id) => match state.get(kind, id) {
                None => {
                    error(key, format!("{label} with id {id} not found."));
                    None
                }
                Some(row) => {
                    let owner = row.get("customer_id").and_then(int_from_json);
                    if customer_id.is_some() && owner != customer_id {
                        error(key, format!("{label} {id} belongs to another customer."));
                        None
                    } else if row.get("status").and_then(Value::as_str) == Some("deleted") {
                        error(key, format!("{label} {id} is deleted."));
                        None
                    } else {
                        Some(id)
                    }
                }
            },
            None => {
                error(key, format!("{label} Id must be an integer."));
                None
            }
        }
    };
    let invoice_id = linked("invoice_id", Kind::Invoice, "Invoice");
    let request_id = linked("request_id", Kind::Proforma, "Proforma invoice");
    if amount.is_some_and(|a| a < Decimal::ZERO) && (invoice_id.is_some() || request_id.is_some()) {
        error(
            "amount",
            "A negative payment (a refund) is not allocated to an invoice or proforma invoice."
                .into(),
        );
    }
    for (key, max) in [
        ("comment", 256),
        ("field_1", 512),
        ("field_2", 512),
        ("field_3", 512),
        ("field_4", 512),
        ("field_5", 512),
    ] {
        if let Some(v) = present(key) {
            if !v.is_string() && !v.is_number() {
                error(key, format!("{key} must be a string."));
            } else if field_text(v).chars().count() > max {
                error(
                    key,
                    format!("{key} should contain at most {max} characters."),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewPayment {
        customer_id: customer_id.expect("validated"),
        invoice_id,
        request_id,
        payment_type: payment_type.expect("validated"),
        receipt_number: receipt_number.expect("validated"),
        date: date.expect("validated"),
        amount: amount.expect("validated"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_names() {
        assert_eq!(
            controller_name("admin/finance/payments"),
            r"api\admin\finance\Payments"
        );
        assert_eq!(
            controller_name("admin/finance/payment-methods/7"),
            r"api\admin\finance\PaymentMethods"
        );
        assert_eq!(
            controller_name("admin/customers/customer/42"),
            r"api\admin\customers\Customer"
        );
    }

    #[test]
    fn rows_render_strictly_or_loosely() {
        let row = normalize(
            &json!({"id": "5", "total": 51.61, "is_active": "1", "number": 2024,
                                    "items": [{"price": "1.5", "quantity": 2}]}),
        )
        .unwrap();
        let strict = render_row(&row, false);
        assert_eq!(strict["id"], json!(5));
        assert_eq!(strict["total"], json!("51.6100"));
        assert_eq!(strict["is_active"], json!(1));
        assert_eq!(strict["number"], json!("2024"));
        assert_eq!(strict["items"][0]["price"], json!("1.5000"));
        let loose = render_row(&row, true);
        assert_eq!(loose["id"], json!("5"));
        assert_eq!(loose["total"], json!("51.6100"));
        assert_eq!(loose["is_active"], json!("1"));
        assert_eq!(loose["items"][0]["quantity"], json!("2"));
    }
}
