//! BitPay's refund API (reference §14.3), strict: signed requests with a merchant token
//! only; `POST /refunds` on a `complete` invoice (a `confirmed` one declines and is
//! refunded in full, uncancellable; any other state is `010207`), an amount above what is
//! left is `010202`, an invoice without the buyer's e-mail cannot be refunded; `GET
//! /refunds/{id}`, `GET /refunds/guid/{guid}` (404 `010201`), `GET /refunds?invoiceId=`,
//! `DELETE /refunds/{id}` (only `created` refunds that may be cancelled). Each call makes a
//! new refund: the guid is a label, not an idempotency key. Tests move a refund on
//! (`pending`, `success`, `failure`) and its webhook (7002–7004) goes to the invoice's
//! `notificationURL`.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{coded_error, Core, StoredInvoice};
use crate::server::{Incoming, Reply};
use crate::util::{decimal_from_json, random_string, BASE58};
use crate::webhook::Delivery;

#[derive(Debug, Clone)]
pub(super) struct StoredRefund {
    id: String,
    invoice: String,
    guid: String,
    status: String,
    amount: Decimal,
    currency: String,
    reference: String,
    cancellable: bool,
    request_date: String,
}

impl StoredRefund {
    fn render(&self) -> Value {
        json!({
            "id": self.id,
            "invoice": self.invoice,
            "guid": self.guid,
            "reference": self.reference,
            "status": self.status,
            "amount": super::json_number(&self.amount.to_string()),
            "currency": self.currency,
            "refundFee": 0,
            "immediate": false,
            "buyerPaysRefundFee": false,
            "requestDate": self.request_date,
        })
    }
}

impl StoredRefund {
    /// A refund the merchant made in the dashboard: listed by the API like its own, in
    /// full, with no guid of ours, waiting for the buyer's address.
    pub(super) fn from_dashboard(
        id: &str,
        invoice: &str,
        amount: Decimal,
        currency: &str,
    ) -> StoredRefund {
        StoredRefund {
            id: id.to_string(),
            invoice: invoice.to_string(),
            guid: String::new(),
            status: "created".into(),
            amount,
            currency: currency.to_string(),
            reference: "dashboard".into(),
            cancellable: false,
            request_date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

fn refund_not_found() -> Reply {
    coded_error(404, "010201", "Refund not found")
}

fn data(refund: &StoredRefund) -> Reply {
    Reply::json(
        200,
        &json!({"facade": "merchant/refund", "data": refund.render()}),
    )
}

fn has_buyer_email(invoice: &StoredInvoice) -> bool {
    invoice
        .data
        .get("buyer")
        .and_then(|b| b.get("email"))
        .and_then(Value::as_str)
        .is_some_and(|e| !e.trim().is_empty())
}

impl Core {
    /// The merchant token a refund call must carry (in the body for POST, else `?token=`).
    fn merchant_token(&self, req: &Incoming, token: Option<&str>) -> Result<(), Reply> {
        let sin = self.authenticate(req)?;
        let token = Core::authorize(&self.lock(), &sin, token)?;
        if token.facade != "merchant" {
            return Err(coded_error(
                403,
                "020003",
                "This endpoint requires the merchant facade",
            ));
        }
        Ok(())
    }

    pub(super) fn refunds_route(&self, req: &Incoming) -> Option<Reply> {
        let path = req.path.strip_prefix("/refunds")?;
        let rest = path.trim_matches('/');
        let query_token = req.query_param("token");
        Some(match (req.method.as_str(), rest) {
            ("POST", "") => self.create_refund(req),
            (method, _) => {
                if let Err(reply) = self.merchant_token(req, query_token.as_deref()) {
                    return Some(reply);
                }
                let state = || self.lock();
                match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
                    ("GET", [""]) => {
                        let invoice = req.query_param("invoiceId").unwrap_or_default();
                        let list: Vec<Value> = state()
                            .refunds
                            .iter()
                            .filter(|r| r.invoice == invoice)
                            .map(StoredRefund::render)
                            .collect();
                        Reply::json(200, &json!({"facade": "merchant/refund", "data": list}))
                    }
                    ("GET", ["guid", guid]) => {
                        match state().refunds.iter().rev().find(|r| r.guid == *guid) {
                            Some(r) => data(r),
                            None => refund_not_found(),
                        }
                    }
                    ("GET", [id]) => match state().refunds.iter().find(|r| r.id == *id) {
                        Some(r) => data(r),
                        None => refund_not_found(),
                    },
                    ("DELETE", [id]) => self.cancel_refund_api(id),
                    _ => super::plain_error(405, "Method not allowed"),
                }
            }
        })
    }

    fn create_refund(&self, req: &Incoming) -> Reply {
        let Ok(Value::Object(body)) = req.json() else {
            return coded_error(400, "010203", "Missing required parameters");
        };
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
        if let Err(reply) = self.merchant_token(req, Some(text("token"))) {
            return reply;
        }
        let invoice_id = text("invoiceId").to_string();
        let Some(amount) = body
            .get("amount")
            .and_then(decimal_from_json)
            .filter(|a| *a > Decimal::ZERO)
        else {
            return coded_error(400, "010202", "Invalid parameter amount");
        };
        let mut state = self.lock();
        let taken: Decimal = state
            .refunds
            .iter()
            .filter(|r| {
                r.invoice == invoice_id && !matches!(r.status.as_str(), "canceled" | "failure")
            })
            .map(|r| r.amount)
            .sum();
        let Ok(invoice) = state.invoice_mut(&invoice_id) else {
            return super::invoice_not_found();
        };
        let price = invoice
            .data
            .get("price")
            .and_then(decimal_from_json)
            .unwrap_or_default();
        let currency = invoice.text("currency");
        let (amount, cancellable) = match invoice.text("status").as_str() {
            "complete" => (amount, true),
            // "invoice will decline and a refund is created for the full amount".
            "confirmed" if amount == price => {
                invoice.data.insert("status".into(), json!("declined"));
                (price, false)
            }
            "confirmed" => {
                return coded_error(
                    400,
                    "010000",
                    "Only full refunds can be processed before the Payment is Completed",
                )
            }
            _ => return coded_error(400, "010207", "Invalid invoice state for refund"),
        };
        if !has_buyer_email(invoice) {
            return coded_error(
                400,
                "010202",
                "Invoices will require buyer contact information to be refunded",
            );
        }
        if amount > price - taken {
            return coded_error(400, "010202", "Refund amount exceeds the refundable amount");
        }
        let refund = StoredRefund {
            id: random_string(BASE58, 22),
            invoice: invoice_id,
            guid: text("guid").to_string(),
            status: "created".into(),
            amount,
            currency,
            reference: text("reference").chars().take(100).collect(),
            cancellable,
            request_date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let info =
            json!([{"supportRequest": refund.id, "currency": refund.currency, "amounts": {}}]);
        invoice.data.insert("refundInfo".into(), info);
        state.refunds.push(refund.clone());
        data(&refund)
    }

    fn cancel_refund_api(&self, id: &str) -> Reply {
        let mut state = self.lock();
        let Some(refund) = state.refunds.iter_mut().find(|r| r.id == id) else {
            return refund_not_found();
        };
        if refund.status != "created" || !refund.cancellable {
            return coded_error(
                400,
                "010200",
                "Refund cannot be canceled in its current state",
            );
        }
        refund.status = "canceled".into();
        data(refund)
    }

    /// Moves a refund on as BitPay does (`pending`: the buyer gave an address; `success`:
    /// paid out; `failure`), and delivers its webhook when the invoice has a
    /// `notificationURL`.
    pub(super) fn advance_refund(
        &self,
        id: &str,
        status: &str,
    ) -> Result<Option<Delivery>, String> {
        let code = match status {
            "pending" => 7002,
            "success" => 7003,
            "failure" => 7004,
            other => {
                return Err(format!(
                    "a refund moves on to pending, success or failure, not {other:?}"
                ))
            }
        };
        let invoice = {
            let mut state = self.lock();
            let refund = state
                .refunds
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or_else(|| format!("no refund {id}"))?;
            refund.status = status.to_string();
            refund.invoice.clone()
        };
        if !self.has_notification_url(&invoice) {
            return Ok(None);
        }
        let body = self.refund_webhook_body(&invoice, id, code)?;
        let url = self
            .lock()
            .invoice(&invoice)
            .map(|i| i.text("notificationURL"))
            .unwrap_or_default();
        let delivery = self.send_webhook(
            &invoice,
            url,
            body,
            status.to_string(),
            Some(format!("refund {code}")),
        )?;
        Ok(Some(delivery))
    }

    /// A refund as the API shows it.
    pub(super) fn refund_data(&self, id: &str) -> Option<Value> {
        self.lock()
            .refunds
            .iter()
            .find(|r| r.id == id)
            .map(StoredRefund::render)
    }

    /// Every refund, oldest first.
    pub(super) fn all_refunds(&self) -> Vec<Value> {
        self.lock()
            .refunds
            .iter()
            .map(StoredRefund::render)
            .collect()
    }

    /// The amount of refund `id`, for its webhook body.
    pub(super) fn refund_amount(&self, id: &str) -> Option<Value> {
        self.lock()
            .refunds
            .iter()
            .find(|r| r.id == id)
            .map(|r| super::json_number(&r.amount.to_string()))
    }
}
