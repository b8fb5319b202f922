//! Splynx API v2 client: the calls the add-on makes, each request authenticated (`auth`),
//! sent through the HTTP seam and classified (`error`).
//!
//! Splynx keys may check that every nonce is greater than the last one seen. Many processes
//! (webhooks, portal clicks, cron) share one key, so each request takes the next nonce from
//! the state store and holds a cross-process lock until its reply arrives: requests reach
//! Splynx in nonce order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::error::{classify, decode, Result, SplynxError};
use super::model::{
    Administrator, AdministratorRow, Customer, FinanceDocument, Payment, PaymentMethod, Statement,
    StatementRecord, Transaction,
};
use super::sign::token_header;
use super::state::SharedState;
use crate::config::{SplynxAuth, SplynxSettings};
use crate::http::{self, Method, Transport};
use crate::secret::Secret;

/// Borrows the state store it keeps the nonce counter and the shared access token in:
/// one SQLite connection per process (or per reconcile worker).
pub struct SplynxClient<'a> {
    http: Arc<dyn Transport>,
    pub(super) api_url: String,
    pub(super) api_key: String,
    pub(super) api_secret: Secret,
    pub(super) lock_wait: Duration,
    auth: SplynxAuth,
    pub(super) state: &'a dyn SharedState,
    /// The access token this process uses, and its expiry (unix seconds).
    pub(super) token: Mutex<Option<(Secret, i64)>>,
}

/// A payment to create (`POST admin/finance/payments`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewPayment {
    pub customer_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i64>,
    pub payment_type: i64,
    pub receipt_number: String,
    pub date: String,
    pub amount: String,
    pub comment: String,
    pub field_1: String,
    pub field_2: String,
    pub field_3: String,
}

/// A payment statement record to create (`POST admin/finance/bank-statements-records`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewStatementRecord {
    pub bank_statements_process_id: i64,
    pub datetime: String,
    pub payment_date: String,
    pub amount: String,
    pub status: &'static str,
    pub customer_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<i64>,
    pub payment_id: i64,
    /// The customer id and the document number, as Splynx's own statement import pairs.
    pub pairing_1: String,
    pub pairing_2: String,
    /// The BitPay invoice id: what the record is looked up by.
    pub additional_1: String,
    pub comment: String,
}

/// A transaction to create (`POST admin/finance/transactions`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewTransaction {
    /// "debit": a charge to the customer.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub customer_id: i64,
    pub quantity: String,
    /// Net of VAT; Splynx adds `tax_percent`.
    pub price: String,
    pub tax_percent: String,
    pub date: String,
    pub category: i64,
    pub description: String,
    /// The BitPay invoice it belongs to: what it is looked up by.
    pub comment: String,
}

impl<'a> SplynxClient<'a> {
    pub fn new(settings: &SplynxSettings, state: &'a dyn SharedState) -> SplynxClient<'a> {
        SplynxClient::with_transport(settings, state, http::transport(settings.timeout))
    }

    /// A client that sends through `http` (tests give it canned replies).
    pub fn with_transport(
        settings: &SplynxSettings,
        state: &'a dyn SharedState,
        http: Arc<dyn Transport>,
    ) -> SplynxClient<'a> {
        SplynxClient {
            http,
            api_url: settings.api_url.clone(),
            api_key: settings.api_key.clone(),
            api_secret: settings.api_secret.clone(),
            lock_wait: settings.timeout * 2 + Duration::from_secs(5),
            auth: settings.auth,
            state,
            token: Mutex::new(None),
        }
    }

    /// The administrator whose session hash (`sash`) an add-on admin page received: Splynx
    /// answers as that administrator and names them in `SpL-Administrator-*` headers.
    pub fn administrator(&self, sash: &str) -> Result<Administrator> {
        let reply = self
            .request(
                Method::GET,
                "admin/api/check",
                &[("sash", sash)],
                None,
                "administrator session",
            )
            .map_err(|e| match e {
                SplynxError::Unauthorized { message } | SplynxError::Forbidden { message, .. }
                    if message.to_ascii_lowercase().contains("sash") =>
                {
                    SplynxError::InvalidSash { message }
                }
                other => other,
            })?;
        let id = reply
            .header("SpL-Administrator-Id")
            .and_then(|v| v.trim().parse().ok())
            .filter(|id: &i64| *id > 0);
        let role = reply
            .header("SpL-Administrator-Role")
            .map(str::trim)
            .filter(|r| !r.is_empty());
        match (id, role) {
            (Some(id), Some(role)) => {
                // Their login and name, as that administrator may see them; without the
                // permission the page names them by id.
                let row = self
                    .get_json::<AdministratorRow>(
                        &format!("admin/administration/administrators/{id}"),
                        &[("sash", sash)],
                        "administrator",
                    )
                    .map_err(|e| log::debug!("administrator {id}: no login: {e}"))
                    .ok();
                let text = |t: &str| {
                    let t: String = t.trim().chars().take(64).collect();
                    (!t.is_empty()).then_some(t)
                };
                Ok(Administrator {
                    id,
                    role: role.to_string(),
                    partner_id: reply
                        .header("SpL-Administrator-Partner")
                        .and_then(|v| v.trim().parse().ok()),
                    login: row.as_ref().and_then(|r| text(&r.login)),
                    name: row.as_ref().and_then(|r| text(&r.name)),
                })
            }
            _ => Err(SplynxError::InvalidSash {
                message: "Splynx named no administrator for it (no SpL-Administrator-Id and -Role headers)".into(),
            }),
        }
    }

    pub fn check(&self) -> Result<serde_json::Value> {
        self.get_json("admin/api/check", &[], "API check")
    }

    pub fn customer(&self, id: i64) -> Result<Customer> {
        self.get_json(
            &format!("admin/customers/customer/{id}"),
            &[],
            &format!("customer {id}"),
        )
    }

    pub fn invoice(&self, id: i64) -> Result<FinanceDocument> {
        self.get_json(
            &format!("admin/finance/invoices/{id}"),
            &[],
            &format!("invoice with id {id}"),
        )
    }

    pub fn invoices_by_number(&self, number: &str) -> Result<Vec<FinanceDocument>> {
        self.get_json(
            "admin/finance/invoices",
            &[("main_attributes[number]", number)],
            "invoice list",
        )
    }

    pub fn proforma(&self, id: i64) -> Result<FinanceDocument> {
        self.get_json(
            &format!("admin/finance/proforma-invoices/{id}"),
            &[],
            &format!("proforma invoice with id {id}"),
        )
    }

    pub fn proformas_by_number(&self, number: &str) -> Result<Vec<FinanceDocument>> {
        self.get_json(
            "admin/finance/proforma-invoices",
            &[("main_attributes[number]", number)],
            "proforma invoice list",
        )
    }

    pub fn payment_methods(&self) -> Result<Vec<PaymentMethod>> {
        self.get_json("admin/finance/payment-methods", &[], "payment method list")
    }

    /// Payments whose receipt number is `receipt` (for one customer).
    pub fn payments_by_receipt(&self, receipt: &str, customer_id: i64) -> Result<Vec<Payment>> {
        let customer = customer_id.to_string();
        self.get_json(
            "admin/finance/payments",
            &[
                ("main_attributes[receipt_number]", receipt),
                ("main_attributes[customer_id]", &customer),
            ],
            "payment list",
        )
    }

    /// Payments with receipt number `receipt`, whoever they belong to.
    pub fn payments_with_receipt(&self, receipt: &str) -> Result<Vec<Payment>> {
        self.get_json(
            "admin/finance/payments",
            &[("main_attributes[receipt_number]", receipt)],
            "payment list",
        )
    }

    /// One page of the payments of method `payment_type` dated `from` to `to`
    /// (`YYYY-MM-DD`, both included), oldest id first.
    pub fn payments_dated(
        &self,
        payment_type: i64,
        (from, to): (&str, &str),
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Payment>> {
        let (method, limit, offset) = (
            payment_type.to_string(),
            limit.to_string(),
            offset.to_string(),
        );
        self.get_json(
            "admin/finance/payments",
            &[
                ("main_attributes[payment_type]", method.as_str()),
                ("main_attributes[date][0]", "BETWEEN"),
                ("main_attributes[date][1]", from),
                ("main_attributes[date][2]", to),
                ("order[id]", "ASC"),
                ("limit", limit.as_str()),
                ("offset", offset.as_str()),
            ],
            "payment list",
        )
    }

    /// Creates a payment; returns its id.
    pub fn create_payment(&self, payment: &NewPayment) -> Result<i64> {
        self.post_for_id("admin/finance/payments", payment, "payment")
    }

    /// Payment statements titled `title`.
    pub fn statements_by_title(&self, title: &str) -> Result<Vec<Statement>> {
        self.get_json(
            "admin/finance/bank-statements",
            &[("main_attributes[title]", title)],
            "payment statement list",
        )
    }

    /// Creates a payment statement (status success: its records are processed as they
    /// are added); returns its id.
    pub fn create_statement(&self, title: &str) -> Result<i64> {
        self.post_for_id(
            "admin/finance/bank-statements",
            &serde_json::json!({"title": title, "status": "success"}),
            "payment statement",
        )
    }

    /// Payment statement records whose `additional_1` is `key`.
    pub fn statement_records_by_key(&self, key: &str) -> Result<Vec<StatementRecord>> {
        self.get_json(
            "admin/finance/bank-statements-records",
            &[("main_attributes[additional_1]", key)],
            "payment statement record list",
        )
    }

    pub fn create_statement_record(&self, record: &NewStatementRecord) -> Result<i64> {
        self.post_for_id(
            "admin/finance/bank-statements-records",
            record,
            "payment statement record",
        )
    }

    /// The customer's transactions whose comment is `comment`.
    pub fn transactions_by_comment(
        &self,
        customer_id: i64,
        comment: &str,
    ) -> Result<Vec<Transaction>> {
        let customer = customer_id.to_string();
        self.get_json(
            "admin/finance/transactions",
            &[
                ("main_attributes[customer_id]", &customer),
                ("main_attributes[comment]", comment),
            ],
            "transaction list",
        )
    }

    pub fn create_transaction(&self, transaction: &NewTransaction) -> Result<i64> {
        self.post_for_id("admin/finance/transactions", transaction, "transaction")
    }

    /// `POST path` with `body`; the new row's id from the reply.
    fn post_for_id(&self, path: &str, body: &impl serde::Serialize, what: &str) -> Result<i64> {
        let body = serde_json::to_value(body).expect("request bodies serialize");
        let reply = self
            .request(Method::POST, path, &[], Some(&body), what)?
            .body;
        let value: serde_json::Value = decode(path, &reply)?;
        value
            .get("id")
            .and_then(|id| {
                id.as_i64()
                    .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| SplynxError::Decode {
                path: path.into(),
                message: format!("no {what} id in {reply}"),
            })
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<T> {
        let reply = self.request(Method::GET, path, query, None, what)?;
        decode(path, &reply.body)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<http::Reply> {
        let url = http::with_query(format!("{}{path}", self.api_url), query);
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON values serialize"));
        let send =
            |authorization: &str| self.exchange(&method, &url, authorization, body.as_deref());
        let reply = match self.auth {
            SplynxAuth::Signature => {
                // Held until the reply is in: the next nonce is only used after this one
                // arrived, so Splynx sees nonces in order even from many processes.
                let _turn =
                    self.state
                        .hold("splynx-api", "the Splynx API request lock", self.lock_wait)?;
                send(&self.signature_header()?)?
            }
            SplynxAuth::AccessToken => {
                let token = self
                    .access_token(None)
                    .map_err(SplynxError::before_sending)?;
                let reply = send(&token_header(&token))?;
                if reply.status == 401 {
                    // Expired, revoked or banned: one fresh token, one more try.
                    let fresh = self
                        .access_token(Some(&token))
                        .map_err(SplynxError::before_sending)?;
                    send(&token_header(&fresh))?
                } else {
                    reply
                }
            }
        };
        let http::Reply {
            status,
            headers,
            body,
        } = reply;
        let body = classify(status, body, &method, path, what)?;
        Ok(http::Reply {
            status,
            headers,
            body,
        })
    }

    pub(super) fn exchange(
        &self,
        method: &Method,
        url: &str,
        authorization: &str,
        body: Option<&[u8]>,
    ) -> Result<http::Reply> {
        let mut headers = vec![("Accept", "application/json".to_string())];
        if !authorization.is_empty() {
            headers.push(("Authorization", authorization.to_string()));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json".to_string()));
        }
        log::debug!("Splynx {method} {url}");
        let request = http::Request {
            method: method.clone(),
            url: url.to_string(),
            headers,
            body: body.map(<[u8]>::to_vec),
        };
        let reply = self
            .http
            .send(request)
            .map_err(|e| SplynxError::Transport {
                url: url.to_string(),
                message: e.message,
                may_have_arrived: e.may_have_arrived,
            })?;
        log::debug!("Splynx HTTP {}, {} bytes", reply.status, reply.body.len());
        Ok(reply)
    }
}

/// Raw API access for `doctor`'s probes: any path, the reply as JSON.
impl SplynxClient<'_> {
    pub fn get_value(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<serde_json::Value> {
        self.get_json(path, query, what)
    }

    /// `POST path` with `body`; Splynx's 422 is `SplynxError::Validation`.
    pub fn post_value(&self, path: &str, body: &serde_json::Value, what: &str) -> Result<u16> {
        self.request(Method::POST, path, &[], Some(body), what)
            .map(|reply| reply.status)
    }
}
