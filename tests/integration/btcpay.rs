//! The BTCPay Server module against the strict Greenfield sandbox, through the real HTTP
//! transport (issue 22 in progress: the binary does not select BTCPay yet, so these drive
//! the library's `PaymentServer` directly).

use std::time::Duration;

use splynx_bitpay::btcpay::model::PERMISSIONS;
use splynx_bitpay::btcpay::{BtcpayClient, BtcpayServer, BtcpayWebhooks};
use splynx_bitpay::domain::{DocKind, NewInvoice};
use splynx_bitpay::secret::Secret;
use splynx_bitpay::server::{
    CreateDetails, InvoiceStatus, PaymentServer, ServerError, SignatureCheck, WebhookFormat,
};
use splynx_bitpay_sandbox::BtcpaySandbox;

struct Btcpay {
    sandbox: BtcpaySandbox,
    store: String,
    key: String,
}

impl Btcpay {
    fn new() -> Btcpay {
        let sandbox = BtcpaySandbox::start();
        let store = sandbox.create_store();
        let permissions: Vec<String> = PERMISSIONS.iter().map(|p| format!("{p}:{store}")).collect();
        let key = sandbox.create_api_key(&permissions);
        Btcpay {
            sandbox,
            store,
            key,
        }
    }

    fn server(&self, webhook_secret: Option<&str>) -> BtcpayServer {
        let client = BtcpayClient::new(
            &self.sandbox.url(),
            Secret::new(self.key.clone()),
            &self.store,
            splynx_bitpay::http::transport(Duration::from_secs(2)),
        );
        BtcpayServer::new(client, webhook_secret.map(Secret::new))
    }
}

/// Splynx invoice 101 of customer 42, 51.61 USD, under `order_id`.
fn order(order_id: &str) -> NewInvoice {
    NewInvoice {
        guid: format!("guid-{order_id}"),
        environment: "btcpay".into(),
        facade: "btcpay".into(),
        token: Secret::new(""),
        doc_kind: DocKind::Invoice,
        doc_id: Some(101),
        doc_number: Some("202401000001".into()),
        customer_id: 42,
        price: "51.61".parse().unwrap(),
        currency: "USD".into(),
        order_id: order_id.to_string(),
        partner_id: None,
        fee: None,
        origin: None,
        terms: None,
    }
}

fn details() -> CreateDetails<'static> {
    CreateDetails {
        description: "Invoice #202401000001",
        redirect_url: "https://splynx.isp.test/bitpay/result?order=o",
        metadata: r#"{"c":42}"#,
        payer: None,
        speed: "medium",
    }
}

#[test]
fn create_fetch_and_settle_through_the_seam() {
    let btcpay = Btcpay::new();
    let server = btcpay.server(None);
    let order = order("splynx-invoice-101-aaaa0001-0011223344556677");
    let created = server.create(&order, &details()).unwrap();
    assert_eq!(created.status, InvoiceStatus::Open);
    assert_eq!(created.price, Some(order.price));
    assert_eq!(created.order_id, order.order_id);
    assert_eq!(created.metadata, r#"{"c":42}"#);
    let sent = btcpay.sandbox.invoice(&created.id).unwrap();
    assert_eq!(sent["amount"], "51.61");
    assert_eq!(sent["checkout"]["paymentTolerance"], 0);
    btcpay
        .sandbox
        .set_status(&created.id, "Settled", Some("PaidOver"));
    let settled = server.fetch(&created.id, &order).unwrap();
    assert_eq!(settled.status, InvoiceStatus::Final);
    assert_eq!(settled.words.to_string(), "Settled (PaidOver)");
    btcpay
        .sandbox
        .set_status(&created.id, "Settled", Some("Marked"));
    assert_eq!(
        server.fetch(&created.id, &order).unwrap().status,
        InvoiceStatus::MarkedFinal
    );
    btcpay
        .sandbox
        .set_status(&created.id, "Expired", Some("PaidLate"));
    assert_eq!(
        server.fetch(&created.id, &order).unwrap().status,
        InvoiceStatus::ExpiredPaidLate
    );
}

/// BTCPay has no idempotent create: an answer lost on the way back is found by order id,
/// never made twice.
#[test]
fn a_create_whose_answer_is_lost_is_found_by_its_order_id() {
    let btcpay = Btcpay::new();
    let server = btcpay.server(None);
    let order = order("splynx-invoice-101-bbbb0002-0011223344556677");
    btcpay.sandbox.hang_after_next(1);
    let lost = server.create(&order, &details()).unwrap_err();
    assert!(lost.is_temporary(), "{lost}");
    assert_eq!(btcpay.sandbox.invoice_count(), 1, "BTCPay made it");
    let found = server
        .find_created(&order)
        .unwrap()
        .expect("found by order id");
    assert_eq!(found.order_id, order.order_id);
    let other = server
        .find_created(&self::order("splynx-invoice-101-cccc0003-0011223344556677"))
        .unwrap();
    assert!(other.is_none());
}

/// An unknown invoice is a 403 at BTCPay: read as "not ours" while the key still reads
/// invoices, as a refused key once it does not.
#[test]
fn a_403_is_told_apart_from_a_revoked_key() {
    let btcpay = Btcpay::new();
    let server = btcpay.server(None);
    let unknown = BtcpaySandbox::unknown_invoice_id();
    assert!(server.fetch_unknown(&unknown).unwrap().is_none());
    btcpay.sandbox.revoke_permissions(&btcpay.key);
    let refused = server.fetch_unknown(&unknown).unwrap_err();
    assert!(
        matches!(refused, ServerError::Authorization(_)),
        "{refused}"
    );
}

#[test]
fn listing_pages_through_every_invoice() {
    let btcpay = Btcpay::new();
    let server = btcpay.server(None);
    for i in 0..230 {
        server
            .create(
                &order(&format!("splynx-refill-c42-{i:08x}-0011223344556677")),
                &details(),
            )
            .unwrap();
    }
    let today = chrono::Utc::now().date_naive();
    let listed = server.list_since(today).unwrap();
    assert_eq!(listed.len(), 230);
    let pages: Vec<String> = btcpay
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.url.clone())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages.iter().all(|p| p.contains("take=100")), "{pages:?}");
}

#[test]
fn webhooks_verify_with_the_secret_and_nothing_else() {
    let btcpay = Btcpay::new();
    let server = btcpay.server(None);
    let created = server
        .create(
            &order("splynx-invoice-101-dddd0004-0011223344556677"),
            &details(),
        )
        .unwrap();
    let client = reqwest::blocking::Client::new();
    let hook: serde_json::Value = client
        .post(format!(
            "{}/api/v1/stores/{}/webhooks",
            btcpay.sandbox.url(),
            btcpay.store
        ))
        .header("Authorization", format!("token {}", btcpay.key))
        .json(&serde_json::json!({"url": "https://splynx.isp.test/bitpay/ipn"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = hook["secret"]
        .as_str()
        .expect("the secret, shown once")
        .to_string();
    let (body, signature) = btcpay
        .sandbox
        .webhook(&created.id, "InvoiceSettled")
        .unwrap();
    let format = BtcpayWebhooks {
        secret: Some(Secret::new(secret)),
    };
    let notice = format.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(notice.invoice_id, created.id);
    assert_eq!(
        format.check_signature(body.as_bytes(), Some(&signature), None),
        SignatureCheck::Valid
    );
    let forged = body.replace("InvoiceSettled", "InvoiceInvalid");
    assert_eq!(
        format.check_signature(forged.as_bytes(), Some(&signature), None),
        SignatureCheck::Invalid
    );
    let wrong_key = BtcpayWebhooks {
        secret: Some(Secret::new("another-secret")),
    };
    assert_eq!(
        wrong_key.check_signature(body.as_bytes(), Some(&signature), None),
        SignatureCheck::Invalid
    );
}

/// The fake refuses what BTCPay refuses, in BTCPay's shapes.
#[test]
fn the_sandbox_is_strict() {
    let btcpay = Btcpay::new();
    let client = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", btcpay.sandbox.url());
    let invoices = format!("/api/v1/stores/{}/invoices", btcpay.store);
    let anonymous = client.get(url(&invoices)).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    let unknown_key = client
        .get(url(&invoices))
        .header("Authorization", "token 00ff")
        .send()
        .unwrap();
    assert_eq!(unknown_key.status(), 401);
    let other_store = client
        .get(url(&format!(
            "/api/v1/stores/{}/invoices",
            btcpay.sandbox.create_store()
        )))
        .header("Authorization", format!("token {}", btcpay.key))
        .send()
        .unwrap();
    assert_eq!(other_store.status(), 403);
    let body: serde_json::Value = other_store.json().unwrap();
    assert_eq!(body["code"], "missing-permission");
    let negative = client
        .post(url(&invoices))
        .header("Authorization", format!("token {}", btcpay.key))
        .json(&serde_json::json!({"amount": "-1", "currency": "USD"}))
        .send()
        .unwrap();
    assert_eq!(negative.status(), 422);
    let body: serde_json::Value = negative.json().unwrap();
    assert_eq!(body[0]["path"], "Amount");
    let bad_date = client
        .get(url(&format!("{invoices}?startDate=yesterday")))
        .header("Authorization", format!("token {}", btcpay.key))
        .send()
        .unwrap();
    assert_eq!(bad_date.status(), 422);
}
