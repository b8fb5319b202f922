mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::{client, json, splynx_auth};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};
use splynx_bitpay_sandbox::SplynxSandbox;

const KEY: &str = "test-key";
const SECRET: &str = "test-secret";

static NONCE: AtomicU64 = AtomicU64::new(170_000_000_000);

fn nonce() -> u64 {
    NONCE.fetch_add(1, Ordering::SeqCst)
}

fn sandbox() -> SplynxSandbox {
    let s = SplynxSandbox::start(KEY, SECRET);
    s.seed_demo();
    s
}

fn authed(builder: RequestBuilder) -> RequestBuilder {
    builder.header("authorization", splynx_auth(KEY, SECRET, nonce()))
}

fn get(s: &SplynxSandbox, path: &str) -> (u16, Value) {
    json(
        authed(client().get(format!("{}/api/2.0/{path}", s.url())))
            .send()
            .unwrap(),
    )
}

fn post(s: &SplynxSandbox, path: &str, body: Value) -> (u16, Value) {
    json(
        authed(client().post(format!("{}/api/2.0/{path}", s.url())))
            .json(&body)
            .send()
            .unwrap(),
    )
}

/// `POST path` must be refused with 422: the fields named, in order.
#[track_caller]
fn refused_fields(s: &SplynxSandbox, path: &str, body: Value) -> Vec<String> {
    let (status, errors) = post(s, path, body);
    assert_eq!(status, 422, "{path}: {errors}");
    errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

fn payment(invoice_id: Option<i64>, amount: Value) -> Value {
    let mut p = json!({"customer_id": 42, "payment_type": 7, "receipt_number": "BP-1",
                       "date": "2024-01-05", "amount": amount});
    if let Some(id) = invoice_id {
        p["invoice_id"] = json!(id);
    }
    p
}

#[test]
fn signature_auth_is_strict() {
    let s = sandbox();
    assert_eq!(
        get(&s, "admin/api/check"),
        (
            200,
            json!({"status": "ok", "message": "API is valid", "same_server": 0})
        )
    );
    let url = format!("{}/api/2.0/admin/api/check", s.url());
    let invalid = json!({"error": {"message": "Invalid signature", "code": 401, "internal_code": "UNAUTHORIZED"}});

    let wrong_secret = splynx_auth(KEY, "other-secret", nonce());
    let (status, body) = json(
        client()
            .get(&url)
            .header("authorization", wrong_secret)
            .send()
            .unwrap(),
    );
    assert_eq!((status, body), (401, invalid.clone()));

    let wrong_key = splynx_auth("other-key", SECRET, nonce());
    assert_eq!(
        json(
            client()
                .get(&url)
                .header("authorization", wrong_key)
                .send()
                .unwrap()
        )
        .0,
        401
    );

    let lowercase = splynx_auth(KEY, SECRET, nonce()).to_string();
    let sig = lowercase
        .split("signature=")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let lowercase = lowercase.replace(sig, &sig.to_lowercase());
    assert_eq!(
        json(
            client()
                .get(&url)
                .header("authorization", lowercase)
                .send()
                .unwrap()
        )
        .0,
        401
    );

    // Parameters in another order are fine.
    let n = nonce();
    let header = splynx_auth(KEY, SECRET, n);
    let sig = header
        .split("signature=")
        .nth(1)
        .unwrap()
        .trim_end_matches(')');
    let reordered = format!("Splynx-EA (signature={sig}&nonce={n}&key={KEY})");
    assert_eq!(
        json(
            client()
                .get(&url)
                .header("authorization", reordered)
                .send()
                .unwrap()
        )
        .0,
        200
    );

    let (status, body) = json(client().get(&url).send().unwrap());
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["internal_code"],
        "MISSED_AUTHORIZATION_HEADER"
    );
    assert_eq!(s.auth_failures(), 4);
}

#[test]
fn repeated_nonce_is_refused_when_checked() {
    let s = sandbox();
    let url = format!("{}/api/2.0/admin/api/check", s.url());
    let send = |n: u64| {
        json(
            client()
                .get(&url)
                .header("authorization", splynx_auth(KEY, SECRET, n))
                .send()
                .unwrap(),
        )
    };
    assert_eq!(send(500).0, 200);
    assert_eq!(send(500).0, 200, "nonce check is off by default");
    s.set_check_nonce(true);
    let (status, body) = send(500);
    assert_eq!(
        (status, body),
        (
            401,
            json!({"error": {"message": "Nonce is invalid", "code": 401, "internal_code": "UNAUTHORIZED"}})
        )
    );
    assert_eq!(send(499).0, 401);
    assert_eq!(send(501).0, 200);
    assert_eq!(s.last_nonce(), Some(501));
    assert_eq!(s.auth_failures(), 2);
}

#[test]
fn reads_search_and_count() {
    let s = sandbox();
    let (status, customer) = get(&s, "admin/customers/customer/42");
    assert_eq!(status, 200);
    assert_eq!(customer["name"], "Ada Lovelace");
    assert_eq!(customer["id"], 42);
    assert_eq!(customer["billing_type"], "prepaid");
    assert_eq!(get(&s, "admin/customers/customer/999").0, 404);
    assert_eq!(
        get(&s, "admin/customers/customer/999").1,
        json!({"error": {"message": "Not found", "code": 404, "internal_code": "NOT_FOUND"}})
    );

    let (_, invoice) = get(&s, "admin/finance/invoices/101");
    assert_eq!(invoice["total"], "51.6100");
    assert_eq!(invoice["number"], "202401000001");

    let (_, found) = get(&s, "admin/finance/invoices?main_attributes[number]=202401000001&main_attributes[customer_id]=42");
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (_, found) = get(&s, "admin/finance/invoices?main_attributes%5Bnumber%5D=202401000001&main_attributes%5Bcustomer_id%5D=43");
    assert_eq!(found, json!([]));
    let (_, found) = get(&s, "admin/finance/invoices?main_attributes[customer_id]=42");
    assert_eq!(found.as_array().unwrap().len(), 2);
    let (_, found) = get(
        &s,
        "admin/finance/proforma-invoices?main_attributes[number]=2024000001",
    );
    assert_eq!(found[0]["id"], 201);
    let (_, methods) = get(&s, "admin/finance/payment-methods");
    assert_eq!(methods.as_array().unwrap().len(), 7);
    let (_, bitpay) = get(&s, "admin/finance/payment-methods/7");
    assert_eq!(bitpay["name_1"], "BitPay invoice");
    assert_eq!(bitpay["is_active"], 1);
    assert_eq!(
        get(&s, "admin/finance/invoices?main_attributes[bogus]=1").0,
        400
    );

    let head = authed(client().head(format!(
        "{}/api/2.0/admin/finance/invoices?main_attributes[customer_id]=42",
        s.url()
    )))
    .send()
    .unwrap();
    assert_eq!(head.status().as_u16(), 204);
    assert_eq!(head.headers()["x-total-count"], "2");

    s.set_loose_json(true);
    let (_, invoice) = get(&s, "admin/finance/invoices/101");
    assert_eq!(invoice["id"], "101");
    assert_eq!(invoice["customer_id"], "42");
    assert_eq!(invoice["total"], "51.6100");
    let (_, bitpay) = get(&s, "admin/finance/payment-methods/7");
    assert_eq!(bitpay["is_active"], "1");
}

#[test]
fn payments_link_invoices_and_proformas() {
    let s = sandbox();
    // Partial payment reduces due.
    let (status, created) = post(
        &s,
        "admin/finance/payments",
        payment(Some(101), json!("20.00")),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created, json!({"id": 1}));
    let invoice = s.invoice(101).unwrap();
    assert_eq!(invoice["status"], "not_paid");
    assert_eq!(invoice["due"], "31.6100");

    // The rest (as a JSON number, parsed exactly) pays it.
    let (status, created) = post(
        &s,
        "admin/finance/payments",
        payment(Some(101), json!(31.61)),
    );
    assert_eq!(status, 201);
    let invoice = s.invoice(101).unwrap();
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["due"], "0.0000");
    assert_eq!(invoice["payment_id"], created["id"]);
    assert_eq!(invoice["date_payment"], "2024-01-05");

    // Proforma.
    let mut p = payment(None, json!("20"));
    p["request_id"] = json!(201);
    assert_eq!(post(&s, "admin/finance/payments", p).0, 201);
    assert_eq!(s.proforma(201).unwrap()["status"], "paid");

    assert_eq!(s.payment_count(), 3);
    let payments = s.payments();
    assert_eq!(payments[1]["amount"], "31.6100");
    assert_eq!(payments[1]["invoice_id"], 101);

    let (status, found) = get(&s, "admin/finance/payments?main_attributes[receipt_number]=BP-1&main_attributes[customer_id]=42");
    assert_eq!(status, 200);
    assert_eq!(found.as_array().unwrap().len(), 3);
    assert_eq!(get(&s, "admin/finance/payments/2").1["amount"], "31.6100");
}

#[test]
fn invalid_payments_get_422() {
    let s = sandbox();
    let (status, errors) = post(&s, "admin/finance/payments", payment(Some(101), json!("0")));
    assert_eq!(
        (status, errors),
        (
            422,
            json!([{"field": "amount", "message": "Amount must not be 0"}])
        )
    );
    // A refund is a negative payment, never allocated to a document.
    let (status, errors) = post(
        &s,
        "admin/finance/payments",
        payment(Some(101), json!("-5")),
    );
    assert_eq!(status, 422, "{errors}");
    assert_eq!(errors[0]["field"], "amount");
    let (status, _) = post(&s, "admin/finance/payments", payment(None, json!("-5")));
    assert_eq!(status, 201);
    let fields = |body: Value| refused_fields(&s, "admin/finance/payments", body);
    assert_eq!(
        fields(payment(Some(103), json!("1"))),
        ["invoice_id"],
        "other customer's invoice"
    );
    assert_eq!(fields(payment(Some(999), json!("1"))), ["invoice_id"]);
    assert_eq!(fields(payment(None, json!("abc"))), ["amount"]);
    assert_eq!(fields(payment(None, json!(1.00001))), ["amount"]);
    let mut p = payment(None, json!("1"));
    p["receipt_number"] = json!("x".repeat(33));
    p["date"] = json!("05/01/2024");
    p["payment_type"] = json!(99);
    p["customer_id"] = json!(1);
    assert_eq!(
        fields(p),
        ["customer_id", "payment_type", "receipt_number", "date"]
    );
    assert_eq!(s.payment_count(), 1, "only the refund");
    assert_eq!(s.invoice(101).unwrap()["due"], "51.6100");
}

#[test]
fn statements_records_and_transactions_are_created_strictly() {
    let s = sandbox();
    let fields = |path: &str, body: Value| refused_fields(&s, path, body);
    let statements = "admin/finance/bank-statements";
    assert_eq!(
        fields(
            statements,
            json!({"title": "BitPay 12/2026", "status": "success", "colour": 1})
        ),
        ["colour"]
    );
    assert_eq!(
        fields(statements, json!({"status": "done"})),
        ["title", "status"]
    );
    let (status, created) = post(
        &s,
        statements,
        json!({"title": "BitPay 12/2026", "status": "success"}),
    );
    assert_eq!(status, 201);
    let statement = created["id"].as_i64().unwrap();
    let (_, found) = get(
        &s,
        "admin/finance/bank-statements?main_attributes%5Btitle%5D=BitPay%2012%2F2026",
    );
    assert_eq!(found.as_array().unwrap().len(), 1);

    let records = "admin/finance/bank-statements-records";
    assert_eq!(
        fields(records, json!({"amount": "1.00", "status": "processed"})),
        ["bank_statements_process_id"]
    );
    // Another customer's invoice, a payment that does not exist, 5 decimals.
    assert_eq!(
        fields(
            records,
            json!({"bank_statements_process_id": statement, "customer_id": 42, "invoice_id": 103,
                   "payment_id": 9, "amount": "1.00001"})
        ),
        ["amount", "payment_id", "invoice_id"]
    );
    let (status, _) = post(
        &s,
        records,
        json!({"bank_statements_process_id": statement, "customer_id": 42, "invoice_id": 101,
               "amount": "51.61", "status": "processed", "additional_1": "BP-1",
               "datetime": "2026-12-01 10:00:00", "payment_date": "2026-12-01"}),
    );
    assert_eq!(status, 201);
    let (_, found) = get(
        &s,
        "admin/finance/bank-statements-records?main_attributes%5Badditional_1%5D=BP-1",
    );
    assert_eq!(found[0]["amount"], "51.6100");
    assert_eq!(found[0]["status"], "processed");

    let transactions = "admin/finance/transactions";
    assert_eq!(
        fields(transactions, json!({"type": "charge", "customer_id": 42})),
        ["type", "price", "date", "category"]
    );
    assert_eq!(
        fields(
            transactions,
            json!({"type": "debit", "customer_id": 42, "price": "1.03", "date": "2026-12-01",
                   "category": 99})
        ),
        ["category"]
    );
    let (status, _) = post(
        &s,
        transactions,
        json!({"type": "debit", "customer_id": 42, "price": "1.03", "tax_percent": "20",
               "date": "2026-12-01", "category": 5, "comment": "BitPay invoice BP-1"}),
    );
    assert_eq!(status, 201);
    assert_eq!(s.transactions()[0]["quantity"], "1");
    assert_eq!(s.transactions()[0]["price"], "1.0300");
}

#[test]
fn denied_permissions_name_controller_and_action() {
    let s = sandbox();
    s.deny("admin/finance/payments", "POST");
    let (status, body) = post(&s, "admin/finance/payments", payment(None, json!("1")));
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": {"message": "Permission denied: api\\admin\\finance\\Payments add", "code": 403, "internal_code": "FORBIDDEN"}})
        )
    );
    assert_eq!(get(&s, "admin/finance/payments").0, 200);
    s.deny("admin/customers/customer", "GET");
    let (status, body) = get(&s, "admin/customers/customer/42");
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["message"],
        "Permission denied: api\\admin\\customers\\Customer view"
    );
    s.allow_all();
    assert_eq!(get(&s, "admin/customers/customer/42").0, 200);
    assert_eq!(s.payment_count(), 0);
}

#[test]
fn http_control_routes() {
    let s = SplynxSandbox::start(KEY, SECRET);
    let (status, created) = json(
        client()
            .post(format!("{}/_sandbox/seed", s.url()))
            .json(&json!({"customers": [{"id": 5, "name": "Lin"}],
                          "invoices": [{"customer_id": 5, "total": "10"}],
                          "payment_methods": [{"name": "BitPay"}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created,
        json!({"customers": [5], "invoices": [1], "payment_methods": [1]})
    );
    assert_eq!(s.invoice(1).unwrap()["due"], "10.0000");

    let enable = client()
        .post(format!("{}/_sandbox/check-nonce", s.url()))
        .json(&json!({"enabled": true}))
        .send()
        .unwrap();
    assert_eq!(enable.status().as_u16(), 200);
    let url = format!("{}/api/2.0/admin/api/check", s.url());
    let send = |n: u64| {
        client()
            .get(&url)
            .header("authorization", splynx_auth(KEY, SECRET, n))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send(10), 200);
    assert_eq!(send(10), 401);

    let p = json!({"customer_id": 5, "payment_type": 1, "receipt_number": "r", "date": "2024-02-01", "amount": "10", "invoice_id": 1});
    let status = client()
        .post(format!("{}/api/2.0/admin/finance/payments", s.url()))
        .header("authorization", splynx_auth(KEY, SECRET, 11))
        .json(&p)
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 201);
    let (_, payments) = json(
        client()
            .get(format!("{}/_sandbox/payments", s.url()))
            .send()
            .unwrap(),
    );
    assert_eq!(payments.as_array().unwrap().len(), 1);
    assert_eq!(s.invoice(1).unwrap()["status"], "paid");
}
