//! A strict fake of BTCPay Server's Greenfield API (reference: `btcpay-greenfield.md`):
//! API keys with store-scoped permissions, BTCPay's error bodies (401 `unauthenticated`,
//! 403 `missing-permission` — also for an invoice that does not exist or is another
//! store's — 422 as a list of `{path, message}`), invoices with string amounts and
//! unix-second times, listing newest first with `skip`/`take`, the store (`GET
//! /api/v1/stores/{id}`, its default currency), store webhooks whose secret is shown once,
//! their deliveries (listed, redelivered, their request bodies), and the invoice state
//! machine's webhook events delivered by `btcpay_deliveries` with BTCPay's retries. Pages:
//! the authorize page (`/api-keys/authorize`) and the checkout (`/i/{id}`, "Pay").
//!
//! Control routes: `POST /_sandbox/stores` → `{"storeId"}`; `POST /_sandbox/api-keys`
//! (`{"permissions":[..]}`) → `{"apiKey"}`; `GET /_sandbox/invoices/{id}`;
//! `POST /_sandbox/invoices/{id}/status` (`{"status","additionalStatus"}`: the change's
//! webhook events are queued); `GET /_sandbox/invoices/{id}/webhook?type=T` →
//! `{"body","signature"}` for the store's first webhook; `GET /_sandbox/deliveries` (every
//! delivery made: `id`, `type`, `invoice_id`, `http_code`, `error_message`, ...).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use sha2::Sha256;

mod pull_payments;

use crate::btcpay_deliveries::{BtcpayDelivery, Deliveries, Target};
use crate::server::{control_ok, HttpServer, Incoming, Reply, Service};
use crate::util::{now_ms, random_string, ALNUM, BASE58};

const SPEED_POLICIES: [&str; 4] = ["HighSpeed", "MediumSpeed", "LowMediumSpeed", "LowSpeed"];

#[derive(Debug, Clone)]
struct Invoice {
    id: String,
    store_id: String,
    amount: Option<Decimal>,
    currency: String,
    status: String,
    additional: String,
    metadata: Value,
    checkout: Value,
    /// Unix seconds.
    created: i64,
    expires: i64,
}

impl Invoice {
    fn data(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "storeId": self.store_id,
            "amount": self.amount.map(|a| a.to_string()),
            "paidAmount": if matches!(self.status.as_str(), "Settled" | "Processing") || self.additional == "PaidLate" {
                self.amount.map(|a| a.to_string())
            } else {
                Some("0".to_string())
            },
            "currency": self.currency,
            "type": if self.amount.is_some() { "Standard" } else { "TopUp" },
            "status": self.status,
            "additionalStatus": self.additional,
            "checkoutLink": format!("{base_url}/i/{}", self.id),
            "createdTime": self.created,
            "expirationTime": self.expires,
            "monitoringExpiration": self.expires + 86_400,
            "archived": false,
            "metadata": self.metadata,
            "checkout": self.checkout,
            "paymentMethods": [],
        })
    }
}

#[derive(Debug, Clone)]
struct Webhook {
    id: String,
    store_id: String,
    url: String,
    secret: String,
    enabled: bool,
    automatic_redelivery: bool,
    events: Value,
}

#[derive(Default)]
struct State {
    stores: Vec<String>,
    /// The version `server/info` reports, when not 2.4.1.
    version: Option<String>,
    /// A store's default currency when not USD.
    currencies: BTreeMap<String, String>,
    /// API key → its permissions (`perm` or `perm:STORE`).
    keys: BTreeMap<String, Vec<String>>,
    /// Creation order: listed newest first.
    invoices: Vec<Invoice>,
    webhooks: Vec<Webhook>,
    /// Refunds' pull payments, in creation order, and the payouts claimed on them.
    pull_payments: Vec<pull_payments::PullPayment>,
    payouts: Vec<pull_payments::Payout>,
}

struct Core {
    base_url: String,
    state: Mutex<State>,
    deliveries: Arc<Deliveries>,
}

/// The webhook events a status change makes, with each type's extra fields (reference
/// §7.2). Falling back from `Processing` to `New` (a replaced transaction) makes none.
fn events_for(before: (&str, &str), after: (&str, &str)) -> Vec<(&'static str, Value)> {
    if before == after {
        return Vec::new();
    }
    let (status, additional) = after;
    let marked = additional == "Marked";
    match status {
        "New" if additional == "PaidPartial" => {
            vec![("InvoiceReceivedPayment", json!({"afterExpiration": false}))]
        }
        "Processing" => vec![
            ("InvoiceReceivedPayment", json!({"afterExpiration": false})),
            (
                "InvoiceProcessing",
                json!({"overPaid": additional == "PaidOver"}),
            ),
        ],
        "Settled" => vec![(
            "InvoiceSettled",
            json!({"manuallyMarked": marked, "overPaid": additional == "PaidOver"}),
        )],
        "Expired" if additional == "PaidLate" => vec![
            ("InvoiceReceivedPayment", json!({"afterExpiration": true})),
            ("InvoicePaidAfterExpiration", json!({})),
        ],
        "Expired" => vec![(
            "InvoiceExpired",
            json!({"partiallyPaid": additional == "PaidPartial"}),
        )],
        "Invalid" => vec![("InvoiceInvalid", json!({"manuallyMarked": marked}))],
        _ => Vec::new(),
    }
}

/// BTCPay's answer for a request without (or with an unknown) API key.
fn unauthenticated(message: &str) -> Reply {
    Reply::json(401, &json!({"code": "unauthenticated", "message": message}))
}

/// BTCPay's 403: a missing permission, an unknown store, an unknown or foreign invoice.
fn missing(permission: &str) -> Reply {
    Reply::json(
        403,
        &json!({
            "code": "missing-permission",
            "message": format!("Insufficient API Permissions. Please use an API key with permission \"{permission}\". You can create an API key in your account's settings / Api Keys."),
            "missingPermission": permission,
        }),
    )
}

fn webhook_not_found() -> Reply {
    Reply::json(
        404,
        &json!({"code": "webhook-not-found", "message": "The webhook was not found"}),
    )
}

fn delivery_not_found() -> Reply {
    Reply::json(
        404,
        &json!({"code": "webhookdelivery-not-found", "message": "The webhook delivery was not found"}),
    )
}

fn invalid(path: &str, message: &str) -> Reply {
    Reply::json(422, &json!([{"path": path, "message": message}]))
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// `sha256=` + lowercase hex HMAC-SHA256 of the body, keyed with the secret's UTF-8.
pub fn btcpay_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Core {
    /// The key's permissions, or BTCPay's 401.
    fn authenticate(&self, req: &Incoming) -> Result<Vec<String>, Reply> {
        let header = req.header("authorization").unwrap_or_default();
        let mut parts = header.split_whitespace();
        let scheme = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (Some(key), true) = (parts.next(), matches!(scheme.as_str(), "token" | "bearer"))
        else {
            return Err(unauthenticated(
                "Authentication is required for accessing this endpoint",
            ));
        };
        lock(&self.state)
            .keys
            .get(key)
            .cloned()
            .ok_or_else(|| unauthenticated("ApiKey authentication failed: Unknown API Key"))
    }

    /// The key holds `permission` for `store`, itself or through a wider one that
    /// includes it (BTCPay's policy table, reference §1.2).
    fn allowed(permissions: &[String], permission: &str, store: &str) -> bool {
        let wider: &[&str] = match permission {
            "btcpay.store.cancreatenonapprovedpullpayments" => &[
                "btcpay.store.cancreatepullpayments",
                "btcpay.store.canmanagepullpayments",
            ],
            "btcpay.store.canviewpullpayments" => &["btcpay.store.canmanagepullpayments"],
            _ => &[],
        };
        std::iter::once(permission)
            .chain(wider.iter().copied())
            .chain(std::iter::once("btcpay.store.canmodifystoresettings"))
            .any(|wanted| {
                permissions.iter().any(|p| {
                    p == "unrestricted" || p == wanted || *p == format!("{wanted}:{store}")
                })
            })
    }

    fn route(&self, req: &Incoming) -> Reply {
        let permissions = match self.authenticate(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("DELETE", ["api", "v1", "api-keys", "current"]) => {
                let key = req
                    .header("authorization")
                    .unwrap_or_default()
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                lock(&self.state).keys.remove(&key);
                Reply::empty(200)
            }
            ("GET", ["api", "v1", "api-keys", "current"]) => Reply::json(
                200,
                &json!({"apiKey": "(hidden)", "label": "splynx-bitpay", "permissions": permissions}),
            ),
            ("GET", ["api", "v1", "server", "info"]) => {
                let version = lock(&self.state)
                    .version
                    .clone()
                    .unwrap_or_else(|| "2.4.1".into());
                Reply::json(
                    200,
                    &json!({"version": version, "onion": null, "supportedPaymentMethods": ["BTC-CHAIN"], "fullySynched": true}),
                )
            }
            (method, ["api", "v1", "stores", store, rest @ ..]) => {
                let known = lock(&self.state).stores.iter().any(|s| s == store);
                let need = match (method, rest) {
                    ("GET", []) => "btcpay.store.canviewstoresettings",
                    ("POST", ["invoices"]) => "btcpay.store.cancreateinvoice",
                    ("POST", ["invoices", _, "refund"]) => {
                        "btcpay.store.cancreatenonapprovedpullpayments"
                    }
                    (_, ["invoices", ..]) => "btcpay.store.canviewinvoices",
                    ("GET", ["pull-payments"]) => "btcpay.store.canviewpullpayments",
                    (_, ["webhooks", ..]) => "btcpay.store.webhooks.canmodifywebhooks",
                    _ => {
                        return Reply::json(
                            404,
                            &json!({"code": "not-found", "message": "Not found"}),
                        )
                    }
                };
                if !known || !Core::allowed(&permissions, need, store) {
                    return missing(need);
                }
                self.store_route(req, store, rest)
            }
            _ => Reply::json(404, &json!({"code": "not-found", "message": "Not found"})),
        }
    }

    fn store_route(&self, req: &Incoming, store: &str, rest: &[&str]) -> Reply {
        match (req.method.as_str(), rest) {
            ("GET", []) => {
                let currency = lock(&self.state)
                    .currencies
                    .get(store)
                    .cloned()
                    .unwrap_or_else(|| "USD".into());
                Reply::json(
                    200,
                    &json!({"id": store, "name": "Sandbox ISP", "defaultCurrency": currency, "speedPolicy": "MediumSpeed"}),
                )
            }
            ("POST", ["invoices"]) => self.create_invoice(req, store),
            ("POST", ["invoices", id, "refund"]) => self.refund_invoice(req, store, id),
            ("GET", ["pull-payments"]) => self.list_pull_payments(req, store),
            ("GET", ["invoices"]) => self.list_invoices(req, store),
            ("GET", ["invoices", id]) => {
                let state = lock(&self.state);
                match state
                    .invoices
                    .iter()
                    .find(|i| i.id == *id && i.store_id == store)
                {
                    Some(invoice) => Reply::json(200, &invoice.data(&self.base_url)),
                    // BTCPay resolves the store from the id first: unknown reads as forbidden.
                    None => missing("btcpay.store.canviewinvoices"),
                }
            }
            ("POST", ["webhooks"]) => self.create_webhook(req, store),
            ("GET", ["webhooks"]) => {
                let state = lock(&self.state);
                let hooks: Vec<Value> = state
                    .webhooks
                    .iter()
                    .filter(|w| w.store_id == store)
                    .map(|w| webhook_data(w, false))
                    .collect();
                Reply::json(200, &Value::Array(hooks))
            }
            ("GET", ["webhooks", id, "deliveries"]) => {
                if !self.has_webhook(store, id) {
                    return webhook_not_found();
                }
                let count = req
                    .query_param("count")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(50);
                Reply::json(200, &Value::Array(self.deliveries.listed(id, count)))
            }
            ("POST", ["webhooks", id, "deliveries", delivery, "redeliver"]) => {
                if !self.has_webhook(store, id) {
                    return webhook_not_found();
                }
                match self.deliveries.redeliver(id, delivery) {
                    Some(new_id) => Reply::json(200, &json!(new_id)),
                    None => delivery_not_found(),
                }
            }
            ("GET", ["webhooks", id, "deliveries", delivery, "request"]) => {
                if !self.has_webhook(store, id) {
                    return webhook_not_found();
                }
                match self.deliveries.request_body(id, delivery) {
                    Some(body) => Reply::json(
                        200,
                        &serde_json::from_str::<Value>(&body).unwrap_or_default(),
                    ),
                    None => delivery_not_found(),
                }
            }
            ("DELETE", ["webhooks", id]) => {
                let mut state = lock(&self.state);
                let before = state.webhooks.len();
                state
                    .webhooks
                    .retain(|w| !(w.id == *id && w.store_id == store));
                if state.webhooks.len() == before {
                    return webhook_not_found();
                }
                Reply::empty(200)
            }
            _ => Reply::json(404, &json!({"code": "not-found", "message": "Not found"})),
        }
    }

    fn create_invoice(&self, req: &Incoming, store: &str) -> Reply {
        let Ok(Value::Object(body)) = req.json() else {
            return invalid("", "A non-empty request body is required.");
        };
        let amount = match body.get("amount") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => match text.trim().parse::<Decimal>() {
                Ok(a) => Some(a),
                Err(_) => return invalid("amount", "Invalid number"),
            },
            Some(Value::Number(n)) => match n.to_string().parse::<Decimal>() {
                Ok(a) => Some(a),
                Err(_) => return invalid("amount", "Invalid number"),
            },
            Some(_) => return invalid("amount", "Invalid number"),
        };
        if amount.is_some_and(|a| a < Decimal::ZERO) {
            return invalid("Amount", "The amount should be 0 or more.");
        }
        let currency = body
            .get("currency")
            .and_then(Value::as_str)
            .unwrap_or("USD")
            .trim()
            .to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Reply::json(
                400,
                &json!({"code": "generic-error", "message": "Error retrieving a matching payment method or rate."}),
            );
        }
        let metadata = match body.get("metadata") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::Object(m)) => Value::Object(m.clone()),
            Some(_) => return invalid("metadata", "Unexpected character encountered"),
        };
        let checkout = body.get("checkout").cloned().unwrap_or(json!({}));
        if let Some(policy) = checkout.get("speedPolicy").and_then(Value::as_str) {
            if !SPEED_POLICIES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(policy))
            {
                return invalid("checkout.speedPolicy", "Invalid speed policy");
            }
        }
        if let Some(tolerance) = checkout.get("paymentTolerance") {
            if tolerance
                .as_f64()
                .is_none_or(|t| !(0.0..=100.0).contains(&t))
            {
                return invalid(
                    "Checkout.PaymentTolerance",
                    "PaymentTolerance can only be between 0 and 100 percent",
                );
            }
        }
        let minutes = checkout
            .get("expirationMinutes")
            .and_then(Value::as_i64)
            .unwrap_or(15);
        let created = now_ms() / 1000;
        let invoice = Invoice {
            id: random_string(BASE58, 22),
            store_id: store.to_string(),
            amount,
            currency,
            status: "New".into(),
            additional: "None".into(),
            metadata,
            checkout,
            created,
            expires: created + minutes * 60,
        };
        let data = invoice.data(&self.base_url);
        let mut state = lock(&self.state);
        state.invoices.push(invoice);
        self.emit(
            &state,
            data["id"].as_str().unwrap_or_default(),
            "InvoiceCreated",
            json!({}),
        );
        Reply::json(200, &data)
    }

    fn list_invoices(&self, req: &Incoming, store: &str) -> Reply {
        let number = |name: &str| -> Result<Option<i64>, Reply> {
            match req.query_param(name) {
                None => Ok(None),
                Some(text) => text
                    .parse()
                    .map(Some)
                    .map_err(|_| invalid(name, "Invalid unix timestamp")),
            }
        };
        let (start, end) = match (number("startDate"), number("endDate")) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(reply), _) | (_, Err(reply)) => return reply,
        };
        let skip = req
            .query_param("skip")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0usize);
        let take = req.query_param("take").and_then(|t| t.parse().ok());
        let pairs = req.query_pairs();
        let order_ids: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "orderId")
            .map(|(_, v)| v.as_str())
            .collect();
        let state = lock(&self.state);
        let rows: Vec<Value> = state
            .invoices
            .iter()
            .rev()
            .filter(|i| i.store_id == store)
            .filter(|i| start.is_none_or(|s| i.created >= s) && end.is_none_or(|e| i.created <= e))
            .filter(|i| {
                order_ids.is_empty()
                    || order_ids.contains(&i.metadata["orderId"].as_str().unwrap_or_default())
            })
            .skip(skip)
            // No `take`: every match, as BTCPay answers.
            .take(take.unwrap_or(usize::MAX))
            .map(|i| i.data(&self.base_url))
            .collect();
        Reply::json(200, &Value::Array(rows))
    }

    fn has_webhook(&self, store: &str, id: &str) -> bool {
        lock(&self.state)
            .webhooks
            .iter()
            .any(|w| w.id == id && w.store_id == store)
    }

    fn create_webhook(&self, req: &Incoming, store: &str) -> Reply {
        let Ok(Value::Object(body)) = req.json() else {
            return invalid("", "A non-empty request body is required.");
        };
        let url = body.get("url").and_then(Value::as_str).unwrap_or_default();
        if url::Url::parse(url).is_err() {
            return invalid("Url", "Invalid Url");
        }
        let webhook = Webhook {
            id: random_string(BASE58, 22),
            store_id: store.to_string(),
            url: url.to_string(),
            secret: body
                .get("secret")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| random_string(BASE58, 22), str::to_string),
            enabled: body.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            automatic_redelivery: body
                .get("automaticRedelivery")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            events: body
                .get("authorizedEvents")
                .cloned()
                .unwrap_or(json!({"everything": true})),
        };
        // The only answer that ever shows the secret.
        let data = webhook_data(&webhook, true);
        lock(&self.state).webhooks.push(webhook);
        Reply::json(200, &data)
    }

    /// Sets an invoice's status and queues the webhook events the change makes.
    fn change_status(&self, id: &str, status: &str, additional: &str) -> Result<(), String> {
        let mut state = lock(&self.state);
        let invoice = state
            .invoices
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| format!("no BTCPay invoice {id}"))?;
        let before = (invoice.status.clone(), invoice.additional.clone());
        invoice.status = status.to_string();
        invoice.additional = additional.to_string();
        for (kind, extra) in events_for((&before.0, &before.1), (status, additional)) {
            self.emit(&state, id, kind, extra);
        }
        Ok(())
    }

    /// Queues event `kind` about invoice `id` for every enabled webhook of its store that
    /// subscribed to it.
    fn emit(&self, state: &State, id: &str, kind: &str, extra: Value) {
        let Some(invoice) = state.invoices.iter().find(|i| i.id == id) else {
            return;
        };
        let mut event = Map::new();
        event.insert("type".into(), json!(kind));
        event.insert("timestamp".into(), json!(now_ms() / 1000));
        if let Value::Object(fields) = &extra {
            event.extend(fields.clone());
        }
        event.insert("storeId".into(), json!(invoice.store_id));
        event.insert("invoiceId".into(), json!(invoice.id));
        event.insert("metadata".into(), invoice.metadata.clone());
        self.enqueue_event(state, &invoice.store_id, kind, event);
    }

    /// Queues `event` (of type `kind`) for every enabled webhook of `store` subscribed to it.
    fn enqueue_event(&self, state: &State, store: &str, kind: &str, event: Map<String, Value>) {
        for hook in state.webhooks.iter().filter(|w| {
            w.store_id == store
                && w.enabled
                && (w.events["everything"] != false
                    || w.events["specificEvents"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k == kind)))
        }) {
            self.deliveries.enqueue(
                Target {
                    webhook_id: hook.id.clone(),
                    url: hook.url.clone(),
                    secret: hook.secret.clone(),
                    automatic_redelivery: hook.automatic_redelivery,
                },
                event.clone(),
            );
        }
    }

    /// The body BTCPay would deliver for `kind` about invoice `id`, and its signature with
    /// the store's first webhook's secret.
    fn webhook_for(&self, id: &str, kind: &str) -> Option<(String, String)> {
        let state = lock(&self.state);
        let invoice = state.invoices.iter().find(|i| i.id == id)?;
        let hook = state
            .webhooks
            .iter()
            .find(|w| w.store_id == invoice.store_id)?;
        let delivery = random_string(BASE58, 22);
        let body = serde_json::to_string_pretty(&json!({
            "deliveryId": delivery,
            "webhookId": hook.id,
            "originalDeliveryId": delivery,
            "isRedelivery": false,
            "type": kind,
            "timestamp": now_ms() / 1000,
            "storeId": invoice.store_id,
            "invoiceId": invoice.id,
            "metadata": invoice.metadata,
        }))
        .expect("JSON");
        let signature = btcpay_signature(&hook.secret, body.as_bytes());
        Some((body, signature))
    }
}

impl Core {
    /// BTCPay's authorize page (`/api-keys/authorize`): `GET` shows what the application
    /// asks for and an "Authorize app" button; its `POST` creates a key for the first store
    /// (`selectiveStores`: the permissions come back as `perm:STORE`) and sends the browser
    /// to `redirect` with an auto-submitted form (`apiKey`, `userId`, `permissions[]`).
    fn authorize(&self, req: &Incoming) -> Reply {
        // The page's form posts the original query back in one field.
        let query = if req.method == "POST" {
            url::form_urlencoded::parse(&req.body)
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        } else {
            req.query.clone()
        };
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let permissions: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "permissions")
            .map(|(_, v)| v.clone())
            .collect();
        let Some(redirect) = get("redirect").filter(|r| url::Url::parse(r).is_ok()) else {
            return Reply::html(400, "<p>redirect must be an absolute URL</p>".into());
        };
        let application = get("applicationName").unwrap_or_default();
        if req.method != "POST" {
            let escaped = crate::util::html_escape(&query);
            let listed: String = permissions
                .iter()
                .map(|p| format!("<li>{}</li>", crate::util::html_escape(p)))
                .collect();
            return Reply::html(
                200,
                format!(
                    "<!doctype html><title>Authorize application</title><h1>Authorize {}</h1><ul>{listed}</ul><form method=\"post\" action=\"/api-keys/authorize\"><input type=\"hidden\" name=\"query\" value=\"{escaped}\"><button type=\"submit\" id=\"authorize\">Authorize app</button></form>",
                    crate::util::html_escape(&application)
                ),
            );
        }
        let Some(store) = lock(&self.state).stores.first().cloned() else {
            return Reply::html(400, "<p>no store to authorize</p>".into());
        };
        let scoped: Vec<String> = permissions.iter().map(|p| format!("{p}:{store}")).collect();
        let key = random_string(b"0123456789abcdef", 40);
        lock(&self.state).keys.insert(key.clone(), scoped.clone());
        let fields: String = std::iter::once(("apiKey", key))
            .chain(std::iter::once(("userId", "sandbox-admin".to_string())))
            .chain(scoped.into_iter().map(|p| ("permissions[]", p)))
            .map(|(name, value)| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    crate::util::html_escape(&value)
                )
            })
            .collect();
        Reply::html(
            200,
            format!(
                "<!doctype html><title>Redirecting</title><form id=\"back\" method=\"post\" action=\"{}\">{fields}</form><script>document.getElementById('back').submit()</script>",
                crate::util::html_escape(&redirect)
            ),
        )
    }
}

fn webhook_data(w: &Webhook, with_secret: bool) -> Value {
    let mut data = json!({
        "id": w.id,
        "url": w.url,
        "enabled": w.enabled,
        "automaticRedelivery": w.automatic_redelivery,
        "authorizedEvents": w.events,
    });
    if with_secret {
        data["secret"] = Value::String(w.secret.clone());
    }
    data
}

impl Core {
    /// The checkout page (`checkoutLink`, `/i/{id}`): `GET` shows the amount and a "Pay"
    /// button; its `POST` pays the invoice in full (`Processing`, then `Settled`), waits
    /// for the webhook deliveries that makes, and shows "Return to the store" (the
    /// invoice's `checkout.redirectURL`).
    fn checkout_page(&self, req: &Incoming, id: &str) -> Reply {
        let paying = req.method == "POST";
        if paying {
            if let Err(e) = self
                .change_status(id, "Processing", "None")
                .and_then(|()| self.change_status(id, "Settled", "None"))
            {
                return Reply::html(404, format!("<p>{}</p>", crate::util::html_escape(&e)));
            }
            self.deliveries
                .wait_idle(std::time::Duration::from_secs(30));
        }
        let state = lock(&self.state);
        let Some(invoice) = state.invoices.iter().find(|i| i.id == id) else {
            return Reply::html(404, "<p>Invoice not found</p>".into());
        };
        let amount = invoice.amount.map(|a| a.to_string()).unwrap_or_default();
        let escape = crate::util::html_escape;
        let body = match invoice.status.as_str() {
            "New" => format!(
                "<h1 class=\"amount\">{} {}</h1><form method=\"post\" action=\"/i/{}\"><button type=\"submit\" id=\"pay\">Pay with BTC</button></form>",
                escape(&amount),
                escape(&invoice.currency),
                escape(id)
            ),
            "Settled" | "Processing" => {
                let back = invoice.checkout["redirectURL"].as_str().unwrap_or_default();
                format!(
                    "<h1 class=\"state\">Invoice paid</h1><a class=\"return\" href=\"{}\">Return to the store</a>",
                    escape(back)
                )
            }
            other => format!("<h1 class=\"state\">Invoice {}</h1>", escape(other)),
        };
        Reply::html(
            200,
            format!("<!doctype html><title>BTCPay Server checkout</title>{body}"),
        )
    }
}

impl Service for Core {
    fn handle(&self, req: &Incoming) -> Reply {
        if req.path == "/api-keys/authorize" {
            return self.authorize(req);
        }
        if let Some(id) = req.path.strip_prefix("/i/") {
            return self.checkout_page(req, id);
        }
        // A pull payment and its payouts are read by id without a key (the claim link).
        if let Some(rest) = req.path.strip_prefix("/api/v1/pull-payments/") {
            let rest: Vec<&str> = rest.trim_matches('/').split('/').collect();
            return self.pull_payment_route(req, &rest);
        }
        self.route(req)
    }

    fn control(&self, req: &Incoming, route: &str) -> Reply {
        let parts: Vec<&str> = route.trim_matches('/').split('/').collect();
        let body = match req.control_body() {
            Ok(body) => body,
            Err((status, message)) => return Reply::json(status, &json!({"error": message})),
        };
        match (req.method.as_str(), parts.as_slice()) {
            ("POST", ["stores"]) => {
                let store = random_string(BASE58, 44);
                lock(&self.state).stores.push(store.clone());
                Reply::json(200, &json!({"storeId": store}))
            }
            ("POST", ["api-keys"]) => {
                let permissions: Vec<String> = body
                    .get("permissions")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let key = random_string(b"0123456789abcdef", 40);
                lock(&self.state).keys.insert(key.clone(), permissions);
                Reply::json(200, &json!({"apiKey": key}))
            }
            ("GET", ["invoices", id]) => {
                let state = lock(&self.state);
                match state.invoices.iter().find(|i| i.id == *id) {
                    Some(i) => Reply::json(200, &i.data(&self.base_url)),
                    None => Reply::json(404, &json!({"error": "no such invoice"})),
                }
            }
            ("POST", ["invoices", id, "status"]) => {
                let Some(status) = body.get("status").and_then(Value::as_str) else {
                    return Reply::json(400, &json!({"error": "status is required"}));
                };
                let additional = body
                    .get("additionalStatus")
                    .and_then(Value::as_str)
                    .unwrap_or("None");
                match self.change_status(id, status, additional) {
                    Ok(()) => control_ok(),
                    Err(e) => Reply::json(404, &json!({"error": e})),
                }
            }
            ("GET", ["deliveries"]) => Reply::json(200, &json!(self.deliveries.all())),
            ("GET", ["invoices", id, "webhook"]) => {
                let kind = req
                    .query_param("type")
                    .unwrap_or_else(|| "InvoiceSettled".into());
                match self.webhook_for(id, &kind) {
                    Some((body, signature)) => {
                        Reply::json(200, &json!({"body": body, "signature": signature}))
                    }
                    None => Reply::json(404, &json!({"error": "no such invoice or no webhook"})),
                }
            }
            _ => Reply::json(404, &json!({"error": "unknown control route"})),
        }
    }

    fn fault_reply(&self, status: u16) -> Reply {
        Reply::html(
            status,
            format!(
                "<html><body><h1>{status}</h1><p>BTCPay Server is unavailable</p></body></html>"
            ),
        )
    }
}

/// The BTCPay Server fake. Stops when dropped.
pub struct BtcpaySandbox {
    server: HttpServer,
    core: Arc<Core>,
}

crate::sandbox_common_api!(BtcpaySandbox);

impl Drop for BtcpaySandbox {
    fn drop(&mut self) {
        self.core.deliveries.stop();
    }
}

impl BtcpaySandbox {
    /// Starts on a free loopback port.
    pub fn start() -> BtcpaySandbox {
        BtcpaySandbox::try_start_on(0)
            .unwrap_or_else(|e| panic!("BTCPay sandbox cannot listen: {e}"))
    }

    pub fn try_start_on(port: u16) -> io::Result<BtcpaySandbox> {
        let (server, core) = HttpServer::start(port, |base_url| Core {
            base_url,
            state: Mutex::new(State::default()),
            deliveries: Deliveries::start(),
        })?;
        Ok(BtcpaySandbox { server, core })
    }

    /// A new store; its id.
    pub fn create_store(&self) -> String {
        let store = random_string(BASE58, 44);
        lock(&self.core.state).stores.push(store.clone());
        store
    }

    /// The version `GET /api/v1/server/info` reports (2.4.1 until set).
    pub fn set_server_version(&self, version: &str) {
        lock(&self.core.state).version = Some(version.to_string());
    }

    /// Sets a store's default currency (USD until set).
    pub fn set_default_currency(&self, store: &str, currency: &str) {
        lock(&self.core.state)
            .currencies
            .insert(store.to_string(), currency.to_string());
    }

    /// Turns a webhook on or off, as the store's settings page does.
    pub fn set_webhook_enabled(&self, id: &str, enabled: bool) {
        for hook in lock(&self.core.state)
            .webhooks
            .iter_mut()
            .filter(|w| w.id == id)
        {
            hook.enabled = enabled;
        }
    }

    /// A new API key with `permissions` (`perm` or `perm:STORE`).
    pub fn create_api_key(&self, permissions: &[String]) -> String {
        let key = random_string(b"0123456789abcdef", 40);
        lock(&self.core.state)
            .keys
            .insert(key.clone(), permissions.to_vec());
        key
    }

    /// Whether a key still authenticates (not revoked).
    pub fn key_exists(&self, key: &str) -> bool {
        lock(&self.core.state).keys.contains_key(key)
    }

    /// Takes a key's permissions away (it still authenticates).
    pub fn revoke_permissions(&self, key: &str) {
        if let Some(p) = lock(&self.core.state).keys.get_mut(key) {
            p.clear();
        }
    }

    /// Sets an invoice's status and additional status ("None" when not given), and
    /// queues the webhook events BTCPay would send for the change.
    pub fn set_status(&self, id: &str, status: &str, additional: Option<&str>) {
        self.core
            .change_status(id, status, additional.unwrap_or("None"))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Every webhook delivery so far, oldest first.
    pub fn deliveries(&self) -> Vec<BtcpayDelivery> {
        self.core.deliveries.all()
    }

    /// Waits until every queued delivery (and its retries) is done; panics after `timeout`.
    pub fn wait_for_deliveries(&self, timeout: std::time::Duration) {
        assert!(
            self.core.deliveries.wait_idle(timeout),
            "BTCPay webhook deliveries still running after {timeout:?}"
        );
    }

    /// Replaces BTCPay's retry delays (10 s, 1 min, 6 × 10 min): tests shorten them.
    pub fn set_retry_schedule(&self, delays: Vec<std::time::Duration>) {
        self.core.deliveries.set_schedule(delays);
    }

    /// Sends each of the next `n` deliveries twice, as a retrying proxy does.
    pub fn duplicate_next(&self, n: usize) {
        self.core.deliveries.duplicate_next(n);
    }

    /// An invoice as the API shows it.
    pub fn invoice(&self, id: &str) -> Option<Value> {
        let state = lock(&self.core.state);
        state
            .invoices
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.data(&self.core.base_url))
    }

    /// The ids of the invoices for `amount` ("30.00"), oldest first.
    pub fn invoices_with_amount(&self, amount: &str) -> Vec<String> {
        let amount: Option<Decimal> = amount.parse().ok();
        lock(&self.core.state)
            .invoices
            .iter()
            .filter(|i| i.amount.is_some() && i.amount == amount)
            .map(|i| i.id.clone())
            .collect()
    }

    /// How many invoices the store holds.
    pub fn invoice_count(&self) -> usize {
        lock(&self.core.state).invoices.len()
    }

    /// The webhook body of `kind` for invoice `id` and its `BTCPay-Sig` (the store's first
    /// webhook's secret).
    pub fn webhook(&self, id: &str, kind: &str) -> Option<(String, String)> {
        self.core.webhook_for(id, kind)
    }

    /// A random id, for tests that need one BTCPay never made.
    pub fn unknown_invoice_id() -> String {
        random_string(ALNUM, 22)
    }
}
