//! BTCPay's refunds, strict (reference §8): `POST /api/v1/stores/{s}/invoices/{id}/refund`
//! makes a pull payment each time it is called (never idempotent) on a refundable invoice
//! (`Settled`, `Invalid`, `Expired` with `PaidLate`/`PaidOver`/`PaidPartial`; otherwise 400
//! `non-refundable`), `refundVariant` required (422), `Custom` needing `customAmount` > 0
//! and `customCurrency`; `GET /api/v1/stores/{s}/pull-payments` (`includeArchived`); and
//! the anonymous `GET /api/v1/pull-payments/{id}` and `…/payouts` (`includeCancelled`).
//! Tests claim a pull payment (a payout awaiting approval), move the payout on and
//! archive the pull payment; each payout change queues `PayoutCreated`, `PayoutApproved`
//! or `PayoutUpdated` for the store's subscribed webhooks.

use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::{invalid, lock, BtcpaySandbox, Core, State};
use crate::server::{Incoming, Reply};
use crate::util::{decimal_from_json, now_ms, random_string, BASE58};

#[derive(Debug, Clone)]
pub(super) struct PullPayment {
    id: String,
    store_id: String,
    invoice_id: String,
    name: String,
    description: String,
    currency: String,
    amount: Decimal,
    archived: bool,
    starts_at: i64,
}

#[derive(Debug, Clone)]
pub(super) struct Payout {
    id: String,
    pull_payment_id: String,
    amount: Decimal,
    state: String,
    revision: i64,
    date: i64,
}

const PAYOUT_STATES: [&str; 5] = [
    "AwaitingApproval",
    "AwaitingPayment",
    "InProgress",
    "Completed",
    "Cancelled",
];

impl PullPayment {
    fn data(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "currency": self.currency,
            "amount": self.amount.to_string(),
            "period": null,
            "BOLT11Expiration": 30,
            "autoApproveClaims": false,
            "archived": self.archived,
            "viewLink": format!("{base_url}/pull-payments/{}", self.id),
            "startsAt": self.starts_at,
            "expiresAt": null,
        })
    }
}

impl Payout {
    fn data(&self, currency: &str) -> Value {
        json!({
            "id": self.id,
            "pullPaymentId": self.pull_payment_id,
            "date": self.date,
            "destination": "bc1qsandboxdestination0000000000000000000",
            "payoutMethodId": "BTC-CHAIN",
            "originalCurrency": currency,
            "originalAmount": self.amount.to_string(),
            "payoutCurrency": "BTC",
            "payoutAmount": null,
            "state": self.state,
            "revision": self.revision,
            "paymentProof": null,
            "metadata": {},
        })
    }
}

fn not_found() -> Reply {
    Reply::json(
        404,
        &json!({"code": "pullpayment-not-found", "message": "The pull payment was not found"}),
    )
}

/// What the refund body asks for: its amount and currency, or BTCPay's 422.
fn refund_amount(
    body: &Map<String, Value>,
    invoice: &super::Invoice,
) -> Result<(Decimal, String), Reply> {
    let custom_amount = body.get("customAmount").filter(|v| !v.is_null());
    let custom_currency = body.get("customCurrency").filter(|v| !v.is_null());
    match body.get("refundVariant").and_then(Value::as_str) {
        None => Err(invalid("RefundVariant", "`refundVariant` is mandatory")),
        Some("Custom") => {
            let amount = custom_amount
                .and_then(decimal_from_json)
                .filter(|a| *a > Decimal::ZERO)
                .ok_or_else(|| invalid("CustomAmount", "Amount must be greater than 0"))?;
            let currency = custom_currency
                .and_then(Value::as_str)
                .map(|c| c.trim().to_ascii_uppercase())
                .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()))
                .ok_or_else(|| invalid("CustomCurrency", "Invalid currency"))?;
            Ok((amount, currency))
        }
        Some(_) if custom_amount.is_some() || custom_currency.is_some() => Err(invalid(
            "CustomAmount",
            "customAmount and customCurrency are only used with the Custom refund variant",
        )),
        Some("Fiat") => Ok((invoice.amount.unwrap_or_default(), invoice.currency.clone())),
        Some(other) => Err(invalid(
            "RefundVariant",
            &format!("the sandbox makes Custom and Fiat refunds, not {other}"),
        )),
    }
}

impl Core {
    /// `POST /api/v1/stores/{store}/invoices/{id}/refund`.
    pub(super) fn refund_invoice(&self, req: &Incoming, store: &str, id: &str) -> Reply {
        let Ok(Value::Object(body)) = req.json() else {
            return invalid("", "A non-empty request body is required.");
        };
        let mut state = lock(&self.state);
        let Some(invoice) = state
            .invoices
            .iter()
            .find(|i| i.id == id && i.store_id == store)
            .cloned()
        else {
            return super::missing("btcpay.store.canviewinvoices");
        };
        let refundable = match invoice.status.as_str() {
            "Settled" | "Invalid" => true,
            "Expired" => matches!(
                invoice.additional.as_str(),
                "PaidLate" | "PaidOver" | "PaidPartial"
            ),
            _ => false,
        };
        if !refundable {
            return Reply::json(
                400,
                &json!({"code": "non-refundable", "message": "Cannot refund this invoice"}),
            );
        }
        let (amount, currency) = match refund_amount(&body, &invoice) {
            Ok(asked) => asked,
            Err(reply) => return reply,
        };
        let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.chars().count() > 50 {
            return invalid("Name", "The name should be maximum 50 characters.");
        }
        let pull = PullPayment {
            id: random_string(BASE58, 26),
            store_id: store.to_string(),
            invoice_id: invoice.id.clone(),
            name: if name.is_empty() {
                format!("Refund {}", invoice.id)
            } else {
                name.to_string()
            },
            description: body
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            currency,
            amount,
            archived: false,
            starts_at: now_ms() / 1000,
        };
        let data = pull.data(&self.base_url);
        state.pull_payments.push(pull);
        Reply::json(200, &data)
    }

    /// `GET /api/v1/stores/{store}/pull-payments`, newest first.
    pub(super) fn list_pull_payments(&self, req: &Incoming, store: &str) -> Reply {
        let archived = req.query_param("includeArchived").as_deref() == Some("true");
        let state = lock(&self.state);
        let listed: Vec<Value> = state
            .pull_payments
            .iter()
            .rev()
            .filter(|p| p.store_id == store && (archived || !p.archived))
            .map(|p| p.data(&self.base_url))
            .collect();
        Reply::json(200, &Value::Array(listed))
    }

    /// The anonymous routes: `GET /api/v1/pull-payments/{id}[/payouts]`.
    pub(super) fn pull_payment_route(&self, req: &Incoming, rest: &[&str]) -> Reply {
        let state = lock(&self.state);
        let find = |id: &str| state.pull_payments.iter().find(|p| p.id == id);
        match (req.method.as_str(), rest) {
            ("GET", [id]) => {
                find(id).map_or_else(not_found, |p| Reply::json(200, &p.data(&self.base_url)))
            }
            ("GET", [id, "payouts"]) => {
                let Some(pull) = find(id) else {
                    return not_found();
                };
                let cancelled = req.query_param("includeCancelled").as_deref() == Some("true");
                let listed: Vec<Value> = state
                    .payouts
                    .iter()
                    .filter(|p| p.pull_payment_id == *id && (cancelled || p.state != "Cancelled"))
                    .map(|p| p.data(&pull.currency))
                    .collect();
                Reply::json(200, &Value::Array(listed))
            }
            _ => Reply::json(404, &json!({"code": "not-found", "message": "Not found"})),
        }
    }

    /// Queues payout event `kind` for the store's webhooks subscribed to it.
    fn emit_payout(&self, state: &State, payout: &Payout, kind: &str) {
        let Some(pull) = state
            .pull_payments
            .iter()
            .find(|p| p.id == payout.pull_payment_id)
        else {
            return;
        };
        let mut event = Map::new();
        event.insert("type".into(), json!(kind));
        event.insert("timestamp".into(), json!(now_ms() / 1000));
        event.insert("storeId".into(), json!(pull.store_id));
        event.insert("payoutId".into(), json!(payout.id));
        event.insert("pullPaymentId".into(), json!(pull.id));
        event.insert("payoutState".into(), json!(payout.state));
        self.enqueue_event(state, &pull.store_id, kind, event);
    }
}

impl BtcpaySandbox {
    /// Every pull payment BTCPay made, oldest first, as the API shows it (plus the
    /// invoice it refunds, under `invoiceId`).
    pub fn pull_payments(&self) -> Vec<Value> {
        let state = lock(&self.core.state);
        state
            .pull_payments
            .iter()
            .map(|p| {
                let mut data = p.data(&self.core.base_url);
                data["invoiceId"] = json!(p.invoice_id);
                data
            })
            .collect()
    }

    /// The customer claims `amount` of pull payment `id` with an address: a payout awaiting
    /// the store's approval (`PayoutCreated`). Its id.
    pub fn claim(&self, id: &str, amount: &str) -> String {
        let mut state = lock(&self.core.state);
        assert!(
            state
                .pull_payments
                .iter()
                .any(|p| p.id == id && !p.archived),
            "no open pull payment {id}"
        );
        let payout = Payout {
            id: random_string(BASE58, 26),
            pull_payment_id: id.to_string(),
            amount: amount.parse().expect("a claim amount"),
            state: "AwaitingApproval".into(),
            revision: 0,
            date: now_ms() / 1000,
        };
        state.payouts.push(payout.clone());
        self.core.emit_payout(&state, &payout, "PayoutCreated");
        payout.id
    }

    /// Moves payout `id` to `new_state` (`AwaitingPayment` is an approval, `PayoutApproved`;
    /// anything else `PayoutUpdated`).
    pub fn set_payout_state(&self, id: &str, new_state: &str) {
        assert!(
            PAYOUT_STATES.contains(&new_state),
            "no payout state {new_state}"
        );
        let mut state = lock(&self.core.state);
        let payout = state
            .payouts
            .iter_mut()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no payout {id}"));
        payout.state = new_state.to_string();
        payout.revision += 1;
        let payout = payout.clone();
        let kind = if new_state == "AwaitingPayment" {
            "PayoutApproved"
        } else {
            "PayoutUpdated"
        };
        self.core.emit_payout(&state, &payout, kind);
    }

    /// Archives pull payment `id`, as the store's Pull Payments page does: no more claims.
    pub fn archive_pull_payment(&self, id: &str) {
        let mut state = lock(&self.core.state);
        let pull = state
            .pull_payments
            .iter_mut()
            .find(|p| p.id == id)
            .unwrap_or_else(|| panic!("no pull payment {id}"));
        pull.archived = true;
    }
}
