mod common;

use base64::Engine;
use common::{client, identity, json, signed_get, signed_post};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use splynx_bitpay::bitpay::identity::Identity;
use splynx_bitpay_sandbox::BitPaySandbox;

/// Server-initiated pairing over HTTP; returns the pos token.
fn pair_with_code(bitpay: &BitPaySandbox, id: &Identity) -> String {
    let code = bitpay.create_pairing_code();
    let (status, body) = json(
        client()
            .post(format!("{}/tokens", bitpay.url()))
            .json(&json!({"id": id.sin(), "pairingCode": code, "label": "splynx-bitpay test"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let data = &body["data"][0];
    assert_eq!(data["facade"], "pos");
    assert_eq!(data["policies"][0]["method"], "requireSin");
    assert_eq!(data["policies"][0]["params"][0], json!(id.sin()));
    let token = data["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 44);
    token
}

fn create_invoice(bitpay: &BitPaySandbox, id: &Identity, body: &str) -> (u16, Value) {
    json(signed_post(&bitpay.url(), "/invoices", body, id))
}

#[test]
fn correctly_signed_invoice_creation_passes() {
    let bitpay = BitPaySandbox::start();
    let id = identity(1);
    let token = pair_with_code(&bitpay, &id);
    let body = format!(
        r#"{{"price":51.61,"currency":"USD","orderId":"inv-101","posData":"{{\"k\":1}}","guid":"g-1","notificationURL":"https://isp.example/bitpay/ipn","redirectURL":"https://isp.example/r","transactionSpeed":"medium","buyer":{{"name":"Ada","email":"ada@example.com"}},"token":"{token}"}}"#
    );
    let response = signed_post(&bitpay.url(), "/invoices", &body, &id);
    assert_eq!(response.status().as_u16(), 200);
    let raw = response.text().unwrap();
    assert!(raw.contains(r#""PAX":76700000000000000000"#), "{raw}");
    let value: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(value["facade"], "pos/invoice");
    let data = &value["data"];
    let invoice_id = data["id"].as_str().unwrap();
    assert_eq!(invoice_id.len(), 22);
    assert_eq!(
        data["url"],
        json!(format!("{}/invoice?id={invoice_id}", bitpay.url()))
    );
    assert_eq!(data["status"], "new");
    assert_eq!(data["price"].to_string(), "51.61");
    assert_eq!(data["currency"], "USD");
    assert_eq!(data["orderId"], "inv-101");
    assert_eq!(data["posData"], r#"{"k":1}"#);
    assert_eq!(data["exceptionStatus"], false);
    assert_eq!(data["amountPaid"], 0);
    assert_eq!(
        data["expirationTime"].as_i64().unwrap() - data["invoiceTime"].as_i64().unwrap(),
        900_000
    );
    assert!(data["exchangeRates"]["BTC"]["USD"].is_f64());
    assert_eq!(bitpay.invoice_count(), 1);
    assert_eq!(bitpay.invoice_api_token(invoice_id), Some(token.clone()));

    // GET it back, signed, with the token in the query.
    let (status, got) = json(signed_get(
        &bitpay.url(),
        &format!("/invoices/{invoice_id}?token={token}"),
        &id,
    ));
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["id"], json!(invoice_id));

    // The checkout page is public.
    let page = client()
        .get(format!("{}/invoice?id={invoice_id}", bitpay.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("<title>BitPay checkout</title>") && page.contains("51.61"));

    let recorded = bitpay.requests();
    let post = recorded
        .iter()
        .find(|r| r.method == "POST" && r.path() == "/invoices")
        .unwrap();
    assert_eq!(post.status, 200);
    assert_eq!(post.header("X-Accept-Version"), Some("2.0.0"));
    assert_eq!(post.body, body);
}

#[test]
fn bad_signatures_and_foreign_identities_are_refused() {
    let bitpay = BitPaySandbox::start();
    let id = identity(2);
    let token = pair_with_code(&bitpay, &id);
    let body = format!(r#"{{"price":10,"currency":"USD","token":"{token}"}}"#);
    let url = format!("{}/invoices", bitpay.url());

    // Signature over a different body.
    let (status, err) = json(
        client()
            .post(&url)
            .header("x-identity", id.public_key_hex())
            .header("x-signature", id.sign(format!("{url}{{}}").as_bytes()))
            .header("x-accept-version", "2.0.0")
            .body(body.clone())
            .send()
            .unwrap(),
    );
    assert_eq!((status, err), (401, json!({"error": "Invalid signature"})));

    // Signed over https:// instead of what is on the wire.
    let wrong_scheme = url.replace("http://", "https://");
    let (status, _) = json(
        client()
            .post(&url)
            .header("x-identity", id.public_key_hex())
            .header(
                "x-signature",
                id.sign(format!("{wrong_scheme}{body}").as_bytes()),
            )
            .header("x-accept-version", "2.0.0")
            .body(body.clone())
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);

    // No signature headers at all.
    let (status, _) = json(client().post(&url).body(body.clone()).send().unwrap());
    assert_eq!(status, 401);

    // A valid signature by another identity than the token's SIN.
    let other = identity(3);
    let (status, err) = create_invoice(&bitpay, &other, &body);
    assert_eq!((status, err), (401, json!({"error": "Unauthorized sin"})));

    // Unknown token.
    let (status, _) = create_invoice(
        &bitpay,
        &id,
        r#"{"price":10,"currency":"USD","token":"nope"}"#,
    );
    assert_eq!(status, 401);

    // Missing X-Accept-Version.
    let (status, err) = json(
        client()
            .post(&url)
            .header("x-identity", id.public_key_hex())
            .header("x-signature", id.sign(format!("{url}{body}").as_bytes()))
            .body(body.clone())
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, err),
        (400, json!({"error": "Missing X-Accept-Version"}))
    );

    assert_eq!(bitpay.invoice_count(), 0);
}

#[test]
fn client_initiated_pairing_needs_approval() {
    let bitpay = BitPaySandbox::start();
    let id = identity(4);
    let (status, body) = json(
        client()
            .post(format!("{}/tokens", bitpay.url()))
            .json(&json!({"id": id.sin(), "facade": "merchant", "label": "splynx-bitpay"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let data = &body["data"][0];
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "dateCreated",
            "facade",
            "label",
            "pairingCode",
            "pairingExpiration",
            "policies",
            "token"
        ]
    );
    assert_eq!(
        data["policies"],
        json!([{"policy": "id", "method": "inactive", "params": [id.sin()]}])
    );
    assert_eq!(
        data["pairingExpiration"].as_i64().unwrap() - data["dateCreated"].as_i64().unwrap(),
        86_400_000
    );
    let token = data["token"].as_str().unwrap();
    let code = data["pairingCode"].as_str().unwrap();
    assert_eq!(code.len(), 7);

    // Not approved yet: the token is disabled; GET /tokens lists nothing active.
    let (status, err) = create_invoice(
        &bitpay,
        &id,
        &format!(r#"{{"price":10,"currency":"USD","token":"{token}"}}"#),
    );
    assert_eq!((status, err), (403, json!({"error": "Token is disabled"})));
    let (status, tokens) = json(signed_get(&bitpay.url(), "/tokens", &id));
    assert_eq!((status, tokens), (200, json!({"data": []})));

    // An identity with no tokens at all.
    let (status, err) = json(signed_get(&bitpay.url(), "/tokens", &identity(5)));
    assert_eq!((status, err), (401, json!({"error": "Unauthorized sin"})));

    // Approve over HTTP; a second approval is refused.
    let approve = format!("{}/_sandbox/pairing-codes/{code}/approve", bitpay.url());
    assert_eq!(
        client().post(&approve).send().unwrap().status().as_u16(),
        200
    );
    assert!(!bitpay.approve_pairing(code));
    let (status, tokens) = json(signed_get(&bitpay.url(), "/tokens", &id));
    assert_eq!(
        (status, tokens),
        (200, json!({"data": [{"merchant": token}]}))
    );
    let (status, created) = create_invoice(
        &bitpay,
        &id,
        &format!(r#"{{"price":10,"currency":"USD","token":"{token}"}}"#),
    );
    assert_eq!(status, 200);
    assert_eq!(created["facade"], "merchant/invoice");

    // Expired codes cannot be approved.
    let (_, body) = json(
        client()
            .post(format!("{}/tokens", bitpay.url()))
            .json(&json!({"id": id.sin(), "facade": "pos"}))
            .send()
            .unwrap(),
    );
    let code = body["data"][0]["pairingCode"].as_str().unwrap().to_string();
    bitpay.expire_pairing_code(&code);
    assert!(!bitpay.approve_pairing(&code));
}

#[test]
fn server_initiated_pairing_failures() {
    let bitpay = BitPaySandbox::start();
    let id = identity(6);
    let post = |body: Value| {
        json(
            client()
                .post(format!("{}/tokens", bitpay.url()))
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let unable = json!({"error": "Unable to create token"});
    assert_eq!(
        post(json!({"id": id.sin(), "pairingCode": "abc1234"})),
        (500, unable.clone())
    );
    assert_eq!(
        post(json!({"id": id.sin(), "pairingCode": "abc-12"})),
        (500, unable.clone())
    );

    let code = bitpay.create_pairing_code();
    assert_eq!(post(json!({"id": id.sin(), "pairingCode": code})).0, 200);
    assert_eq!(
        post(json!({"id": id.sin(), "pairingCode": code})),
        (500, unable.clone()),
        "reused"
    );

    let code = bitpay.create_pairing_code();
    bitpay.expire_pairing_code(&code);
    assert_eq!(
        post(json!({"id": id.sin(), "pairingCode": code})),
        (500, unable)
    );

    let code = bitpay.create_production_pairing_code();
    let (status, err) = post(json!({"id": id.sin(), "pairingCode": code}));
    assert_eq!(status, 500);
    assert_eq!(
        err["error"],
        "Unable to create token Pairing failed. Please check whether you're trying to pair a production pairing code on test."
    );

    let code = bitpay.create_pairing_code();
    assert_eq!(
        post(json!({"id": "Tf1Jc1xSbqasm5QLwwSQc5umddx2h7mAMhX", "pairingCode": code})),
        (400, json!({"error": "Invalid SIN"}))
    );
    assert_eq!(
        post(json!({"id": id.sin(), "pairingCode": code, "label": "host.example.com"})),
        (500, json!({"error": "Label is invalid"}))
    );
}

#[test]
fn invoice_fields_are_validated() {
    let bitpay = BitPaySandbox::start();
    let id = identity(7);
    let token = bitpay.create_token(&id.sin(), "merchant");
    let create =
        |fields: &str| create_invoice(&bitpay, &id, &format!(r#"{{{fields},"token":"{token}"}}"#));

    let (status, err) = create(r#""price":"10.00","currency":"USD""#);
    assert_eq!(status, 400);
    assert_eq!(err["code"], "010002");
    assert_eq!(err["status"], "error");
    assert_eq!(create(r#""price":10.001,"currency":"USD""#).0, 400);
    assert_eq!(create(r#""price":0,"currency":"USD""#).0, 400);
    assert_eq!(create(r#""price":-5,"currency":"USD""#).0, 400);
    assert_eq!(create(r#""price":100.5,"currency":"JPY""#).0, 400);
    assert_eq!(create(r#""price":100,"currency":"JPY""#).0, 200);
    assert_eq!(create(r#""price":0.000123,"currency":"BTC""#).0, 200);
    assert_eq!(create(r#""price":10.50,"currency":"EUR""#).0, 200);
    assert_eq!(create(r#""price":10,"currency":"XYZ""#).0, 400);
    assert_eq!(
        create(r#""price":10,"currency":"USD","posData":{"a":1}"#).0,
        400
    );
    assert_eq!(
        create(r#""price":10,"currency":"USD","transactionSpeed":"fast""#).0,
        400
    );
    let (status, err) = create(r#""currency":"USD""#);
    assert_eq!(
        (status, err),
        (
            400,
            json!({"errors": [{"error": "Missing required parameter.", "param": "price"}]})
        )
    );
    assert_eq!(bitpay.invoice_count(), 3);
}

#[test]
fn guid_is_not_deduplicated_and_can_be_looked_up() {
    let bitpay = BitPaySandbox::start();
    let id = identity(8);
    let token = bitpay.create_token(&id.sin(), "pos");
    let body = format!(r#"{{"price":20,"currency":"USD","guid":"abc-guid","token":"{token}"}}"#);
    let (_, first) = create_invoice(&bitpay, &id, &body);
    let (_, second) = create_invoice(&bitpay, &id, &body);
    assert_eq!(bitpay.invoice_count(), 2);
    assert_ne!(first["data"]["id"], second["data"]["id"]);
    let (status, found) = json(signed_get(
        &bitpay.url(),
        &format!("/invoices/guid/abc-guid?token={token}"),
        &id,
    ));
    assert_eq!(status, 200);
    assert_eq!(found["data"]["id"], second["data"]["id"]);
    let (status, missing) = json(signed_get(
        &bitpay.url(),
        &format!("/invoices/guid/other?token={token}"),
        &id,
    ));
    assert_eq!(
        (status, missing),
        (
            404,
            json!({"status": "error", "code": "020101", "data": null, "error": "Invoice not found"})
        )
    );
    let (status, _) = json(signed_get(
        &bitpay.url(),
        &format!("/invoices/NoSuchInvoice?token={token}"),
        &id,
    ));
    assert_eq!(status, 404);
}

#[test]
fn listing_needs_the_merchant_facade_and_filters_by_date() {
    let bitpay = BitPaySandbox::start();
    let id = identity(9);
    let merchant = bitpay.create_token(&id.sin(), "merchant");
    let pos = bitpay.create_token(&id.sin(), "pos");
    let mut ids = Vec::new();
    for order in ["a", "b", "c"] {
        let (_, v) = create_invoice(
            &bitpay,
            &id,
            &format!(r#"{{"price":5,"currency":"USD","orderId":"{order}","token":"{merchant}"}}"#),
        );
        ids.push(v["data"]["id"].as_str().unwrap().to_string());
    }
    // 2024-01-10T23:59:59Z and 2024-01-11T00:00:00Z
    bitpay.set_invoice_time(&ids[0], 1_704_931_199_000);
    bitpay.set_invoice_time(&ids[1], 1_704_931_200_000);

    let (status, err) = json(signed_get(
        &bitpay.url(),
        &format!("/invoices?token={pos}&dateStart=2024-01-01&dateEnd=2024-01-31"),
        &id,
    ));
    assert_eq!(
        (status, err),
        (
            403,
            json!({"status": "error", "code": "020003", "data": null, "error": "This endpoint requires the merchant facade"})
        )
    );
    let list = |query: &str| {
        let (status, v) = json(signed_get(
            &bitpay.url(),
            &format!("/invoices?token={merchant}&{query}"),
            &id,
        ));
        assert_eq!(status, 200, "{v}");
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list("dateStart=2024-01-01&dateEnd=2024-01-10"),
        vec![ids[0].clone()]
    );
    assert_eq!(
        list("dateStart=2024-01-11&dateEnd=2024-01-11"),
        vec![ids[1].clone()]
    );
    assert_eq!(list("dateStart=2024-01-01&dateEnd=2024-01-31").len(), 2);
    assert_eq!(
        list("dateStart=2024-01-01&dateEnd=2024-01-31&orderId=b"),
        vec![ids[1].clone()]
    );
    assert_eq!(
        list("dateStart=2024-01-01&dateEnd=2024-01-31&limit=1&offset=1"),
        vec![ids[1].clone()]
    );
    bitpay.set_status(&ids[1], "confirmed", None);
    assert_eq!(
        list("dateStart=2024-01-01&dateEnd=2024-01-31&status=confirmed"),
        vec![ids[1].clone()]
    );
    let (status, _) = json(signed_get(
        &bitpay.url(),
        &format!("/invoices?token={merchant}&dateStart=2024-01-01"),
        &id,
    ));
    assert_eq!(status, 400);
}

#[test]
fn status_changes_and_webhooks() {
    let bitpay = BitPaySandbox::start();
    let id = identity(10);
    let token = bitpay.create_token(&id.sin(), "merchant");
    let (_, v) = create_invoice(
        &bitpay,
        &id,
        &format!(
            r#"{{"price":51.61,"currency":"USD","orderId":"o-1","posData":"p","buyer":{{"name":"Ada"}},"token":"{token}"}}"#
        ),
    );
    let invoice_id = v["data"]["id"].as_str().unwrap().to_string();

    bitpay.set_status(&invoice_id, "confirmed", Some("paidOver"));
    let inv = bitpay.invoice(&invoice_id).unwrap();
    assert_eq!(inv["status"], "confirmed");
    assert_eq!(inv["exceptionStatus"], "paidOver");
    assert_eq!(inv["transactionCurrency"], "BTC");
    assert!(inv["overpaidAmount"].is_number());
    assert_eq!(inv["transactions"][0]["confirmations"], 1);

    let body = bitpay.webhook_body(&invoice_id, true);
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed["event"],
        json!({"code": 1005, "name": "invoice_confirmed"})
    );
    assert_eq!(parsed["data"]["orderId"], "o-1");
    assert_eq!(parsed["data"]["buyerFields"], json!({"buyerName": "Ada"}));
    assert!(body.contains(r#""PAX":76700000000000000000"#));

    let signature = bitpay.webhook_signature(&body, &invoice_id);
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    assert_eq!(
        signature,
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );

    bitpay.set_status(&invoice_id, "complete", None);
    let legacy: Value = serde_json::from_str(&bitpay.webhook_body(&invoice_id, false)).unwrap();
    assert_eq!(legacy["status"], "complete");
    assert_eq!(legacy["exceptionStatus"], false);
    assert!(legacy.get("event").is_none());

    // Over HTTP.
    let (status, hook) = json(
        client()
            .get(format!(
                "{}/_sandbox/invoices/{invoice_id}/webhook?format=extended",
                bitpay.url()
            ))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    let hook_body = hook["body"].as_str().unwrap();
    assert_eq!(
        hook["signature"],
        json!(bitpay.webhook_signature(hook_body, &invoice_id))
    );
    assert!(hook_body.contains("invoice_completed"));

    let (status, _) = json(
        client()
            .post(format!(
                "{}/_sandbox/invoices/{invoice_id}/status",
                bitpay.url()
            ))
            .json(&json!({"status": "expired", "exceptionStatus": "paidPartial"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    let inv = bitpay.invoice(&invoice_id).unwrap();
    assert_eq!(inv["status"], "expired");
    assert!(inv["underpaidAmount"].is_number());

    bitpay.set_field(&invoice_id, "price", json!(1));
    assert_eq!(bitpay.invoice(&invoice_id).unwrap()["price"], json!(1));
    bitpay.expire(&invoice_id);
    assert_eq!(bitpay.invoice(&invoice_id).unwrap()["amountPaid"], json!(0));
}
