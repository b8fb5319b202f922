//! The BitPay fake's hosted checkout: choose a currency, confirm, webhooks delivered for
//! real to the invoice's notificationURL, receipt with "Return to splynx".

mod common;

use std::sync::{Arc, Mutex};
use std::thread;

use base64::Engine;
use common::{client, identity, json, signed_get, signed_post};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use splynx_bitpay::bitpay::identity::Identity;
use splynx_bitpay_sandbox::BitPaySandbox;

/// What the merchant's webhook endpoint saw: body, x-signature, and the invoice status
/// it read back from the fake while answering.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A merchant endpoint on loopback that answers `status` and, like the real add-on,
/// re-fetches the invoice from BitPay before answering.
fn merchant(bitpay_url: String, id: Identity, token: String, status: u16) -> (String, Seen) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/bitpay/ipn",
        server.server_addr().to_ip().unwrap().port()
    );
    let seen: Seen = Arc::default();
    let log = seen.clone();
    thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            let signature = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("x-signature"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let invoice_id = serde_json::from_str::<Value>(&body).unwrap()["data"]["id"]
                .as_str()
                .unwrap()
                .to_string();
            let (_, fetched) = json(signed_get(
                &bitpay_url,
                &format!("/invoices/{invoice_id}?token={token}"),
                &id,
            ));
            let fetched_status = fetched["data"]["status"]
                .as_str()
                .unwrap_or("?")
                .to_string();
            log.lock().unwrap().push((body, signature, fetched_status));
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    (url, seen)
}

fn paired(bitpay: &BitPaySandbox, id: &Identity) -> String {
    bitpay.create_token(&id.sin(), "pos")
}

fn new_invoice(bitpay: &BitPaySandbox, id: &Identity, token: &str, notify: &str) -> String {
    let body = json!({
        "price": 51.61, "currency": "USD", "orderId": "splynx-invoice-101-3f9a2c1d",
        "itemDesc": "Invoice #202401000001", "notificationURL": notify,
        "redirectURL": "http://127.0.0.1:9/bitpay/result?order=splynx-invoice-101-3f9a2c1d",
        "extendedNotifications": true, "token": token,
    })
    .to_string();
    let (status, created) = json(signed_post(&bitpay.url(), "/invoices", &body, id));
    assert_eq!(status, 200, "{created}");
    created["data"]["id"].as_str().unwrap().to_string()
}

fn hmac_b64(key: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn checkout_choose_confirm_delivers_signed_webhooks_and_shows_receipt() {
    let bitpay = BitPaySandbox::start();
    let id = identity(7);
    let token = paired(&bitpay, &id);
    let (notify, seen) = merchant(bitpay.url(), identity(7), token.clone(), 200);
    let invoice_id = new_invoice(&bitpay, &id, &token, &notify);
    let page = |query: &str| {
        client()
            .get(format!("{}/invoice?{query}", bitpay.url()))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };

    let choose = page(&format!("id={invoice_id}"));
    assert!(
        choose.contains("<title>BitPay checkout</title>"),
        "{choose}"
    );
    assert!(choose.contains("Sandbox ISP") && choose.contains("51.61"));
    assert!(choose.contains("Select a currency"));
    for coin in ["BTC", "BCH", "ETH", "USDC"] {
        assert!(
            choose.contains(&format!("data-currency=\"{coin}\"")),
            "{coin}"
        );
    }
    let confirm = page(&format!("id={invoice_id}&currency=ETH"));
    assert!(confirm.contains("Confirm payment") && confirm.contains("Pay with ETH"));

    let response = no_redirects()
        .post(format!("{}/invoice", bitpay.url()))
        .form(&[("id", invoice_id.as_str()), ("currency", "ETH")])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("/invoice?id={invoice_id}").as_str()
    );

    let invoice = bitpay.invoice(&invoice_id).unwrap();
    assert_eq!(invoice["status"], "confirmed");
    assert_eq!(invoice["transactionCurrency"], "ETH");
    assert_eq!(invoice["transactions"][0]["confirmations"], 1);
    assert_ne!(invoice["amountPaid"], json!(0));

    // Two deliveries, paid then confirmed, each signed with the creating token, each
    // answered while the fake stayed responsive to the merchant's re-fetch.
    let deliveries = bitpay.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(deliveries[0].invoice_status, "paid");
    assert_eq!(deliveries[0].event.as_deref(), Some("invoice_paidInFull"));
    assert_eq!(deliveries[1].event.as_deref(), Some("invoice_confirmed"));
    assert!(deliveries.iter().all(|d| d.status == 200 && d.accepted()));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for ((body, signature, _), delivery) in seen.iter().zip(&deliveries) {
        assert_eq!(body, &delivery.body);
        assert_eq!(signature, &hmac_b64(&token, body));
        assert_eq!(signature, &bitpay.webhook_signature(body, &invoice_id));
    }
    assert_eq!(seen[0].2, "paid");
    assert_eq!(seen[1].2, "confirmed");
    let body: Value = serde_json::from_str(&seen[1].0).unwrap();
    assert_eq!(body["event"]["name"], "invoice_confirmed");
    assert_eq!(body["data"]["transactionCurrency"], "ETH");

    let receipt = page(&format!("id={invoice_id}"));
    assert!(receipt.contains("Payment from bitpay"), "{receipt}");
    assert!(receipt.contains(
        "href=\"http://127.0.0.1:9/bitpay/result?order=splynx-invoice-101-3f9a2c1d\">Return to splynx"
    ));

    // Confirming twice pays nothing more and delivers nothing more.
    let again = no_redirects()
        .post(format!("{}/invoice", bitpay.url()))
        .form(&[("id", invoice_id.as_str()), ("currency", "ETH")])
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    assert_eq!(bitpay.deliveries().len(), 2);

    // Over HTTP too.
    let (status, listed) = json(
        client()
            .get(format!("{}/_sandbox/deliveries", bitpay.url()))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(listed[1]["status"], 200);
    assert_eq!(listed[1]["invoice_status"], "confirmed");
}

#[test]
fn merchant_refusals_and_unreachable_endpoints_are_recorded() {
    let bitpay = BitPaySandbox::start();
    let id = identity(8);
    let token = paired(&bitpay, &id);
    let (notify, _seen) = merchant(bitpay.url(), identity(8), token.clone(), 503);
    let invoice_id = new_invoice(&bitpay, &id, &token, &notify);

    let (status, delivery) = json(
        client()
            .post(format!(
                "{}/_sandbox/invoices/{invoice_id}/deliver",
                bitpay.url()
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{delivery}");
    assert_eq!(delivery["status"], 503);
    assert_eq!(delivery["invoice_status"], "new");
    assert_eq!(delivery["event"], "invoice_created");

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lost = new_invoice(
        &bitpay,
        &id,
        &token,
        &format!("http://127.0.0.1:{closed_port}/bitpay/ipn"),
    );
    let deliveries = bitpay.pay(&lost, "BTC").unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d.status == 0 && !d.accepted()));
    assert!(deliveries[0]
        .error
        .as_deref()
        .unwrap()
        .contains("cannot connect"));
    assert_eq!(bitpay.invoice(&lost).unwrap()["status"], "confirmed");
    assert!(bitpay.pay(&lost, "BTC").unwrap_err().contains("confirmed"));
    assert!(bitpay.pay(&invoice_id, "XYZ").is_err());
}

#[test]
fn expired_invoices_cannot_be_paid() {
    let bitpay = BitPaySandbox::start();
    let id = identity(9);
    let token = paired(&bitpay, &id);
    let invoice_id = new_invoice(&bitpay, &id, &token, "http://127.0.0.1:9/ipn");
    bitpay.set_invoice_time(&invoice_id, 1_000);
    let page = client()
        .get(format!("{}/invoice?id={invoice_id}", bitpay.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("Invoice expired"), "{page}");
    assert!(bitpay
        .pay(&invoice_id, "BTC")
        .unwrap_err()
        .contains("expired"));
    assert!(bitpay.deliveries().is_empty());
    let missing = client()
        .get(format!("{}/invoice?id=nope", bitpay.url()))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}
