//! The BTCPay Server module against the strict Greenfield sandbox, through the real HTTP
//! transport (issue 22 in progress: the binary does not select BTCPay yet, so these drive
//! the library's `PaymentServer` directly).

use std::time::Duration;

use splynx_bitpay::btcpay::model::{PERMISSIONS, REFUND_PERMISSIONS};
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
    let an_hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let listed = server
        .list_created(an_hour_ago, an_hour_ago + 7_200_000)
        .unwrap();
    assert_eq!(listed.len(), 230);
    let pages: Vec<String> = btcpay
        .sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.url.clone())
        .collect();
    // The first page alone, then four at once: one past the end.
    assert_eq!(pages.len(), 5, "{pages:?}");
    assert!(pages.iter().all(|p| p.contains("take=100")), "{pages:?}");
    for skip in [0, 100, 200, 300, 400] {
        assert!(
            pages.iter().any(|p| p.contains(&format!("skip={skip}&"))),
            "{pages:?}"
        );
    }
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

/// The real binary with `[server] kind = "btcpay"`, against the BTCPay and Splynx sandboxes.
pub(crate) mod through_the_binary {
    use super::*;
    use crate::util::{ipn_route, Env};

    pub(crate) struct Setup {
        pub(crate) env: Env,
        pub(crate) btcpay: BtcpaySandbox,
        pub(crate) store: String,
        pub(crate) key: String,
    }

    /// A store, and a key with every permission the authorize link asks for.
    pub(crate) fn setup() -> Setup {
        let env = Env::new();
        let btcpay = BtcpaySandbox::start();
        let store = btcpay.create_store();
        let permissions: Vec<String> = PERMISSIONS
            .iter()
            .chain(&REFUND_PERMISSIONS)
            .map(|p| format!("{p}:{store}"))
            .collect();
        let key = btcpay.create_api_key(&permissions);
        let config = env.default_config().replace(
            "[refill]",
            &format!(
                "[btcpay]\nurl = \"{}\"\nstore_id = \"{store}\"\n\n[refill]",
                btcpay.url()
            ),
        );
        env.write_config(&format!("[server]\nkind = \"btcpay\"\n\n{config}"));
        Setup {
            env,
            btcpay,
            store,
            key,
        }
    }

    /// Connected, with BTCPay delivering its webhooks over HTTP to the add-on's route
    /// (retries shortened to 200 ms).
    pub(crate) fn delivering() -> (Setup, splynx_bitpay_sandbox::WebhookRoute) {
        let s = setup();
        let route = ipn_route(s.env.config_path());
        add_to_bitpay_section(&s, &format!("notification_url = \"{}\"", route.url));
        s.env
            .run_with_stdin(&["pair", "--btcpay"], s.key.as_bytes())
            .assert_code(0);
        s.btcpay
            .set_retry_schedule(vec![std::time::Duration::from_millis(200); 8]);
        (s, route)
    }

    pub(crate) fn connected() -> Setup {
        let s = setup();
        s.env
            .run_with_stdin(&["pair", "--btcpay"], s.key.as_bytes())
            .assert_code(0);
        s
    }

    fn btcpay_tokens(env: &Env) -> i64 {
        env.db()
            .query_row(
                "SELECT count(*) FROM tokens WHERE environment = 'btcpay'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// The store's webhooks, as its owner sees them (the add-on's key may be revoked).
    fn webhooks(s: &Setup) -> Vec<serde_json::Value> {
        let owner = s.btcpay.create_api_key(&["unrestricted".to_string()]);
        reqwest::blocking::Client::new()
            .get(format!(
                "{}/api/v1/stores/{}/webhooks",
                s.btcpay.url(),
                s.store
            ))
            .header("Authorization", format!("token {owner}"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    #[test]
    fn connecting_checks_the_key_and_registers_one_webhook() {
        let s = setup();
        // Nothing on stdin: bad input; an unknown key, or one without a permission: 78,
        // naming it, and nothing is stored.
        s.env
            .run_with_stdin(&["pair", "--btcpay"], b"")
            .assert_code(65);
        s.env
            .run_with_stdin(&["pair", "--btcpay"], b"00ff00ff")
            .assert_code(78)
            .assert_stderr_contains("refused the API key");
        let view_only = s
            .btcpay
            .create_api_key(&[format!("btcpay.store.canviewinvoices:{}", s.store)]);
        s.env
            .run_with_stdin(&["pair", "--btcpay"], view_only.as_bytes())
            .assert_code(78)
            .assert_stderr_contains("btcpay.store.cancreateinvoice");
        assert_eq!(btcpay_tokens(&s.env), 0, "nothing stored");
        assert!(webhooks(&s).is_empty());
        let run = s
            .env
            .run_with_stdin(&["--json", "pair", "--btcpay"], s.key.as_bytes());
        run.assert_code(0);
        assert_eq!(
            run.json()["webhook_url"],
            "https://splynx.isp.test/bitpay/ipn"
        );
        assert!(!run.stdout.contains(&s.key), "the key is never shown");
        // Reconnecting replaces our webhook; it never piles up a second.
        let again = s
            .env
            .run_with_stdin(&["--json", "pair", "--btcpay"], s.key.as_bytes());
        again.assert_code(0);
        assert_eq!(again.json()["replaced"], 1);
        assert_eq!(webhooks(&s).len(), 1);
        assert_eq!(btcpay_tokens(&s.env), 2, "the key and the webhook's secret");
    }

    /// From the admin page only a role in `admin.pairing_roles` may start connecting (and
    /// disconnect); the journal names who connected.
    #[test]
    fn only_allowed_roles_connect_from_the_admin_page() {
        let s = setup();
        s.env
            .splynx
            .add_admin_session("sash-super-0123456789", 1, "super-administrator");
        s.env
            .splynx
            .add_admin_session("sash-support-987654321", 7, "administrator");
        let start = |sash: &str, id: &str| {
            s.env.run(&[
                "--json",
                "pair",
                "--btcpay",
                "--authorize-redirect",
                "https://splynx.isp.test/bitpay/btcpay-connected",
                "--sash",
                sash,
                "--session-admin",
                id,
            ])
        };
        start("sash-support-987654321", "7")
            .assert_code(65)
            .assert_stderr_contains("Only administrators with the role \"super-administrator\"");
        let run = start("sash-super-0123456789", "1");
        run.assert_code(0);
        let (action, fields) = authorize_in_browser(run.json()["authorize_url"].as_str().unwrap());
        let state = url::Url::parse(&action)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let key = &fields.iter().find(|(n, _)| n == "apiKey").unwrap().1;
        s.env
            .run_with_stdin(&["pair", "--btcpay", "--state", &state], key.as_bytes())
            .assert_code(0);
        let changes = s.env.run(&["--json", "status"]).json()["pairing_changes"].clone();
        assert!(
            changes[0]["summary"]
                .as_str()
                .unwrap()
                .contains("(id 1, super-administrator)"),
            "{changes}"
        );
        s.env
            .run(&[
                "unpair",
                "--sash",
                "sash-support-987654321",
                "--session-admin",
                "7",
            ])
            .assert_code(65);
        assert_eq!(btcpay_tokens(&s.env), 2, "still connected");
    }

    #[test]
    fn connecting_needs_btcpay_chosen() {
        let env = Env::new();
        env.run_with_stdin(&["pair", "--btcpay"], b"0123")
            .assert_code(78)
            .assert_stderr_contains("kind = \"btcpay\"");
    }

    pub(crate) fn pay_invoice_101(s: &Setup) -> String {
        let run = s
            .env
            .create_invoice(&["--customer", "42", "--invoice", "101"]);
        run.assert_code(0);
        let id = run.json()["invoice_id"].as_str().unwrap().to_string();
        assert_eq!(run.json()["server"], "btcpay");
        assert!(run.json().get("bitpay_invoice_id").is_none());
        let at_btcpay = s.btcpay.invoice(&id).unwrap();
        assert_eq!(at_btcpay["amount"], "51.61");
        assert_eq!(run.json()["url"], at_btcpay["checkoutLink"]);
        id
    }

    pub(crate) fn deliver(s: &Setup, id: &str, kind: &str) -> crate::util::Run {
        let (body, signature) = s.btcpay.webhook(id, kind).unwrap();
        s.env
            .run_with_stdin(&["handle-ipn", "--btcpay-sig", &signature], body.as_bytes())
    }

    #[test]
    fn a_settled_invoice_is_credited_once_from_a_signed_webhook() {
        let s = connected();
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Settled", None);
        deliver(&s, &id, "InvoiceSettled").assert_code(0);
        deliver(&s, &id, "InvoiceSettled").assert_code(0);
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
        let show = s.env.run(&["show", &id]).stdout;
        assert!(show.contains("BTCPay Server says Settled"), "{show}");
    }

    #[test]
    fn unsigned_or_forged_webhooks_are_refused_before_anything_else() {
        let s = connected();
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Settled", None);
        s.btcpay.clear_requests();
        let (body, signature) = s.btcpay.webhook(&id, "InvoiceSettled").unwrap();
        s.env
            .run_with_stdin(&["handle-ipn"], body.as_bytes())
            .assert_code(65)
            .assert_stderr_contains("no BTCPay Server signature");
        let forged = body.replace("InvoiceSettled", "InvoiceProcessing");
        s.env
            .run_with_stdin(
                &["handle-ipn", "--btcpay-sig", &signature],
                forged.as_bytes(),
            )
            .assert_code(65)
            .assert_stderr_contains("does not match");
        assert!(s.btcpay.requests().is_empty(), "nothing was fetched");
        assert!(s.env.payments_with_receipt(&id).is_empty());
    }

    #[test]
    fn marked_and_paid_late_are_held_and_reconcile_credits_what_webhooks_missed() {
        let s = connected();
        let marked = pay_invoice_101(&s);
        s.btcpay.set_status(&marked, "Settled", Some("Marked"));
        let run = deliver(&s, &marked, "InvoiceSettled");
        run.assert_code(0);
        assert!(run.stdout.contains("marked paid by hand"), "{run:?}");
        assert!(s.env.payments_with_receipt(&marked).is_empty());

        let s = connected();
        let late = pay_invoice_101(&s);
        s.btcpay.set_status(&late, "Expired", Some("PaidLate"));
        deliver(&s, &late, "InvoicePaidAfterExpiration").assert_code(0);
        assert!(s.env.payments_with_receipt(&late).is_empty());

        let s = connected();
        let missed = pay_invoice_101(&s);
        s.btcpay.set_status(&missed, "Settled", Some("PaidOver"));
        s.env.run(&["reconcile"]).assert_code(0);
        assert_eq!(s.env.payments_with_receipt(&missed).len(), 1);
    }

    fn doctor_statuses(s: &Setup) -> Vec<(String, String, String)> {
        let run = s.env.run(&["doctor", "--json"]);
        run.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"].as_str().unwrap_or_default().starts_with("btcpay."))
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                    c["message"].to_string(),
                )
            })
            .collect()
    }

    fn doctor_status(s: &Setup, id: &str) -> (String, String) {
        doctor_statuses(s)
            .into_iter()
            .find(|c| c.0 == id)
            .map(|c| (c.1, c.2))
            .unwrap_or_else(|| panic!("no check {id}"))
    }

    /// Each BTCPay check fails in turn, named, and the others keep their own verdicts.
    #[test]
    fn doctor_checks_each_part_of_the_connection_in_turn() {
        let s = setup();
        let route = ipn_route(s.env.config_path());
        add_to_bitpay_section(&s, &format!("notification_url = \"{}\"", route.url));
        let before = doctor_statuses(&s);
        let ids: Vec<&str> = before.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                "btcpay.server",
                "btcpay.key",
                "btcpay.store",
                "btcpay.webhook",
                "btcpay.deliveries",
                "btcpay.refunds"
            ]
        );
        let verdicts: Vec<&str> = before.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            verdicts,
            ["ok", "fail", "skip", "skip", "skip", "skip"],
            "{before:?}"
        );

        s.env
            .run_with_stdin(&["pair", "--btcpay"], s.key.as_bytes())
            .assert_code(0);
        let after = doctor_statuses(&s);
        assert!(after.iter().all(|c| c.1 == "ok"), "{after:?}");
        assert!(after[0].2.contains("2.4.1"), "{after:?}");
        assert!(after[4].2.contains("no delivery yet"), "{after:?}");
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Processing", None);
        s.btcpay
            .wait_for_deliveries(std::time::Duration::from_secs(30));
        let (status, message) = doctor_status(&s, "btcpay.deliveries");
        assert_eq!(status, "ok");
        assert!(message.contains("answered HTTP 200"), "{message}");

        // The store invoices in another currency: a warning that names both.
        s.btcpay.set_default_currency(&s.store, "EUR");
        let (status, message) = doctor_status(&s, "btcpay.store");
        assert_eq!(status, "warn");
        assert!(
            message.contains("EUR") && message.contains("USD"),
            "{message}"
        );
        s.btcpay.set_default_currency(&s.store, "USD");

        // Our webhook switched off in BTCPay.
        let webhook_id = webhooks(&s)[0]["id"].as_str().unwrap().to_string();
        s.btcpay.set_webhook_enabled(&webhook_id, false);
        let (status, message) = doctor_status(&s, "btcpay.webhook");
        assert_eq!(status, "fail");
        assert!(message.contains("disabled"), "{message}");
        s.btcpay.set_webhook_enabled(&webhook_id, true);

        // The webhook route stops answering: the last delivery failed.
        drop(route);
        s.btcpay.set_retry_schedule(Vec::new());
        s.btcpay.set_status(&id, "Settled", None);
        s.btcpay
            .wait_for_deliveries(std::time::Duration::from_secs(30));
        let (status, message) = doctor_status(&s, "btcpay.deliveries");
        assert_eq!(status, "fail");
        assert!(message.contains("no answer"), "{message}");

        // Too old a server.
        s.btcpay.set_server_version("2.0.9");
        let (status, message) = doctor_status(&s, "btcpay.server");
        assert_eq!(status, "fail");
        assert!(message.contains("older than 2.1.2"), "{message}");
        s.btcpay.set_server_version("2.4.1");

        // A key that lost a permission is named.
        s.btcpay.revoke_permissions(&s.key);
        let (status, message) = doctor_status(&s, "btcpay.key");
        assert_eq!(status, "fail");
        assert!(
            message.contains("btcpay.store.canviewinvoices"),
            "{message}"
        );

        // Unreachable: the rest is skipped, not failed again.
        s.btcpay.hang_next(1);
        let down = doctor_statuses(&s);
        let verdicts: Vec<&str> = down.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            verdicts,
            ["fail", "skip", "skip", "skip", "skip", "skip"],
            "{down:?}"
        );
    }

    /// A replaced transaction can send `Processing` back to `New`: nothing is credited
    /// before `Settled`.
    #[test]
    fn processing_is_never_credited_even_when_it_falls_back_to_new() {
        let s = connected();
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Processing", None);
        deliver(&s, &id, "InvoiceProcessing").assert_code(0);
        s.btcpay.set_status(&id, "New", Some("PaidPartial"));
        deliver(&s, &id, "InvoiceReceivedPayment").assert_code(0);
        s.env.run(&["reconcile"]).assert_code(0);
        assert!(s.env.payments_with_receipt(&id).is_empty());
        s.btcpay.set_status(&id, "Settled", None);
        deliver(&s, &id, "InvoiceSettled").assert_code(0);
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
    }

    /// The store's webhook reports every integration's invoices: another one's, with a
    /// valid signature, is answered 0 (so BTCPay's queue moves on) and never credited.
    #[test]
    fn another_integrations_invoice_is_ignored() {
        let s = connected();
        let theirs: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/stores/{}/invoices", s.btcpay.url(), s.store))
            .header("Authorization", format!("token {}", s.key))
            .json(&serde_json::json!({"amount": "51.61", "currency": "USD", "metadata": {"orderId": "woocommerce-4711"}}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let id = theirs["id"].as_str().unwrap().to_string();
        s.btcpay.set_status(&id, "Settled", None);
        let run = deliver(&s, &id, "InvoiceSettled");
        run.assert_code(0);
        assert!(
            run.stdout.contains("not an invoice of this add-on"),
            "{run:?}"
        );
        assert!(s.env.payments_with_receipt(&id).is_empty());
    }

    /// Redeliveries, duplicates and a reconcile at the same moment credit once.
    #[test]
    fn concurrent_deliveries_and_reconcile_credit_once() {
        let s = connected();
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Settled", None);
        std::thread::scope(|scope| {
            for i in 0..6 {
                let (s, id) = (&s, &id);
                scope.spawn(move || {
                    if i == 0 {
                        s.env.run(&["reconcile"]).assert_code(0);
                    } else {
                        // Each delivery is new (a new delivery id), as BTCPay redelivers.
                        deliver(s, id, "InvoiceSettled").assert_code(0);
                    }
                });
            }
        });
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
    }

    #[test]
    fn status_shows_the_connection_without_its_secrets() {
        let s = connected();
        let run = s.env.run(&["--json", "status"]);
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["environment"], "btcpay");
        assert_eq!(json["api_url"], s.btcpay.url());
        assert_eq!(json["paired"], serde_json::json!(["api-key", "webhook"]));
        assert!(!run.stdout.contains(&s.key), "the key is masked");
    }

    #[test]
    fn disconnecting_deletes_our_webhook_and_forgets_the_secrets() {
        let s = connected();
        assert_eq!(webhooks(&s).len(), 1);
        let run = s.env.run(&["--json", "unpair"]);
        run.assert_code(0);
        assert_eq!(run.json()["webhook_deleted"], true);
        assert!(webhooks(&s).is_empty());
        assert_eq!(run.json()["key_revoked"], true);
        assert!(!s.btcpay.key_exists(&s.key), "the key revoked itself");
        assert_eq!(btcpay_tokens(&s.env), 0);
        // Not connected: checkout says what to do.
        s.env
            .run(&["create-invoice", "--customer", "42", "--invoice", "101"])
            .assert_code(78)
            .assert_stderr_contains("not connected to BTCPay Server");
    }

    /// The customer's result page names the server they paid through.
    #[test]
    fn the_result_page_speaks_of_btcpay() {
        let s = connected();
        let id = pay_invoice_101(&s);
        let run = s.env.run(&["--json", "show", &id, "--customer", "42"]);
        run.assert_code(0);
        let text = run.json()["invoices"][0]["customer_view"]["text"].to_string();
        assert!(
            text.contains("BTCPay Server") && !text.contains("BitPay"),
            "{text}"
        );
    }

    /// Rewrites the config with `line` added under `[bitpay]` (its server-neutral keys).
    pub(crate) fn add_to_bitpay_section(s: &Setup, line: &str) {
        let config = std::fs::read_to_string(s.env.config_path()).unwrap();
        s.env
            .write_config(&config.replacen("[bitpay]\n", &format!("[bitpay]\n{line}\n"), 1));
    }

    /// Rewrites the config with `payment_grace_seconds` set in `[splynx]`.
    fn with_grace(s: &Setup, seconds: u64) {
        let config = std::fs::read_to_string(s.env.config_path()).unwrap();
        s.env.write_config(&config.replacen(
            "timeout_seconds = 2\n\n[bitpay]",
            &format!("timeout_seconds = 2\npayment_grace_seconds = {seconds}\n\n[bitpay]"),
            1,
        ));
    }

    fn settlement_of(s: &Setup, id: &str) -> String {
        s.env
            .db()
            .query_row(
                "SELECT settlement FROM invoices WHERE bitpay_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn payment_posts(s: &Setup) -> usize {
        s.env
            .splynx
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path().ends_with("admin/finance/payments"))
            .count()
    }

    /// BTCPay's own deliveries over HTTP to the webhook route: a 503 (BTCPay unreachable
    /// while we re-fetch) is retried as a new delivery, a proxy's duplicate and a manual
    /// redelivery change nothing: one payment.
    #[test]
    fn deliveries_over_http_with_retries_duplicates_and_redeliveries_credit_once() {
        let (s, _route) = delivering();
        let id = pay_invoice_101(&s);
        s.btcpay
            .wait_for_deliveries(std::time::Duration::from_secs(30));
        let faults = s.btcpay.faults();
        faults.set_filter(Some(&format!("/invoices/{id}")), Some("GET"));
        faults.fail_next(1, 503);
        s.btcpay.duplicate_next(1);
        s.btcpay.set_status(&id, "Settled", None);
        s.btcpay
            .wait_for_deliveries(std::time::Duration::from_secs(30));
        faults.clear();
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
        assert_eq!(settlement_of(&s, &id), "credited");

        let settled: Vec<_> = s
            .btcpay
            .deliveries()
            .into_iter()
            .filter(|d| d.kind == "InvoiceSettled")
            .collect();
        let answers: Vec<_> = settled.iter().map(|d| d.http_code).collect();
        assert_eq!(answers, [Some(503), Some(200), Some(200)], "{settled:#?}");
        assert_eq!(settled[1].id, settled[0].id, "the proxy's duplicate");
        assert_ne!(settled[2].id, settled[0].id, "a retry is a new delivery");
        assert_eq!(settled[2].original_delivery_id, settled[0].id);
        assert!(settled[2].is_redelivery);

        // A manual redelivery from BTCPay's page: answered 200, nothing more booked.
        let client = reqwest::blocking::Client::new();
        let webhook_id = &settled[0].webhook_id;
        let api = format!(
            "{}/api/v1/stores/{}/webhooks/{webhook_id}/deliveries",
            s.btcpay.url(),
            s.store
        );
        let again: String = client
            .post(format!("{api}/{}/redeliver", settled[0].id))
            .header("Authorization", format!("token {}", s.key))
            .send()
            .unwrap()
            .json()
            .unwrap();
        s.btcpay
            .wait_for_deliveries(std::time::Duration::from_secs(30));
        let last = s.btcpay.deliveries().pop().unwrap();
        assert_eq!(
            (last.id.as_str(), last.http_code),
            (again.as_str(), Some(200))
        );
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
        let listed: Vec<serde_json::Value> = client
            .get(format!("{api}?count=10"))
            .header("Authorization", format!("token {}", s.key))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let statuses: Vec<&str> = listed.iter().filter_map(|d| d["status"].as_str()).collect();
        assert!(
            statuses.contains(&"HttpError") && statuses.contains(&"HttpSuccess"),
            "{listed:?}"
        );
    }

    /// `handle-ipn` killed after Splynx committed the payment, before its reply: the next
    /// reconcile finds the payment by receipt number and never sends it again.
    #[test]
    fn killed_after_splynx_committed_reconcile_adopts_the_payment() {
        let s = connected();
        with_grace(&s, 600);
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Settled", None);
        let (body, signature) = s.btcpay.webhook(&id, "InvoiceSettled").unwrap();
        s.env.kill_ipn_once_splynx_has(
            "admin/finance/payments",
            &["handle-ipn", "--btcpay-sig", &signature],
            &body,
            || s.env.splynx.payment_count(),
        );
        let run = s.env.run(&["--json", "reconcile"]);
        run.assert_code(0);
        assert_eq!(run.json()["credited"], 1);
        assert_eq!(payment_posts(&s), 1);
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
        assert_eq!(settlement_of(&s, &id), "credited");
    }

    /// Splynx commits the payment after we gave up waiting: later deliveries only look it
    /// up until it appears, then adopt it.
    #[test]
    fn a_slow_splynx_commit_is_looked_up_never_sent_twice() {
        let s = connected();
        with_grace(&s, 8);
        let id = pay_invoice_101(&s);
        s.btcpay.set_status(&id, "Settled", None);
        let faults = s.env.splynx.faults();
        faults.set_filter(Some("admin/finance/payments"), Some("POST"));
        faults.commit_late_next(1, std::time::Duration::from_secs(4));
        deliver(&s, &id, "InvoiceSettled")
            .assert_code(75)
            .assert_stderr_contains("may or may not have been made");
        assert_eq!(settlement_of(&s, &id), "sent");
        deliver(&s, &id, "InvoiceSettled")
            .assert_code(75)
            .assert_stderr_contains("only looked up");
        crate::util::wait_until("Splynx commits the slow payment", || {
            s.env.splynx.payment_count() == 1
        });
        let run = deliver(&s, &id, "InvoiceSettled");
        run.assert_code(0);
        assert!(run.stdout.contains("found in Splynx"), "{run:?}");
        assert_eq!(payment_posts(&s), 1);
        assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
    }

    /// Reconcile reads the store's list (every page), fetches only the invoices it shows
    /// changed, and finds the invoice whose create answer was lost by its order id.
    #[test]
    fn reconcile_lists_every_page_fetches_what_changed_and_finds_lost_creates() {
        let s = connected();
        let open = pay_invoice_101(&s);
        let paid = s
            .env
            .create_invoice(&["--customer", "42", "--refill", "20"])
            .json()["invoice_id"]
            .as_str()
            .unwrap()
            .to_string();
        // Killed while BTCPay made the invoice, before its answer arrived.
        let faults = s.btcpay.faults();
        faults.set_filter(Some("/invoices"), Some("POST"));
        faults.hang_after_next(1);
        let before = s.btcpay.invoice_count();
        let mut child = crate::util::spawn(
            &s.env.config_path(),
            &["create-invoice", "--customer", "42", "--refill", "30"],
        );
        crate::util::wait_until("BTCPay made the invoice", || {
            s.btcpay.invoice_count() == before + 1
        });
        child.kill().unwrap();
        child.wait().unwrap();
        faults.clear();
        let lost = s
            .btcpay
            .invoices_with_amount("30.00")
            .pop()
            .expect("BTCPay made the invoice");
        // Other integrations' invoices after ours push ours to the second page.
        let client = reqwest::blocking::Client::new();
        for i in 0..110 {
            client
                .post(format!("{}/api/v1/stores/{}/invoices", s.btcpay.url(), s.store))
                .header("Authorization", format!("token {}", s.key))
                .json(&serde_json::json!({"amount": "1", "currency": "USD", "metadata": {"orderId": format!("woocommerce-{i}")}}))
                .send()
                .unwrap();
        }
        s.btcpay.set_status(&paid, "Settled", None);
        s.btcpay.set_status(&lost, "Settled", None);
        s.btcpay.clear_requests();

        let run = s.env.run(&["--json", "reconcile"]);
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["credited"], 2, "{json}");
        assert_eq!(json["listed_unchanged"], 1, "{json}");
        assert_eq!(
            json["discovered"], 1,
            "the lost create, by its order id: {json}"
        );
        assert_eq!(s.env.payments_with_receipt(&paid).len(), 1);
        assert_eq!(s.env.payments_with_receipt(&lost).len(), 1);
        let gets: Vec<String> = s
            .btcpay
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .map(|r| r.url.clone())
            .collect();
        let pages: Vec<&String> = gets.iter().filter(|u| u.contains("take=100")).collect();
        assert!(
            pages.iter().any(|p| p.contains("skip=100&")),
            "the second page is read: {pages:?}"
        );
        assert!(
            !gets.iter().any(|u| u.contains(&open)),
            "the unchanged invoice is not fetched: {gets:#?}"
        );
        assert!(gets
            .iter()
            .any(|u| u.ends_with(&format!("/invoices/{paid}"))));

        // Nothing changed since: nothing is fetched one by one.
        s.btcpay.clear_requests();
        let again = s.env.run(&["--json", "reconcile"]);
        again.assert_code(0);
        assert_eq!(again.json()["credited"], 0);
        assert!(s
            .btcpay
            .requests()
            .iter()
            .all(|r| r.url.contains("take=100")));
    }

    /// What a browser does on BTCPay's authorize page: opens it, presses "Authorize app",
    /// and is sent back with the key in a form. Returns the form's fields and its target.
    fn authorize_in_browser(authorize_url: &str) -> (String, Vec<(String, String)>) {
        let client = reqwest::blocking::Client::new();
        let page = client.get(authorize_url).send().unwrap().text().unwrap();
        assert!(page.contains("Authorize app"), "{page}");
        let query = url::Url::parse(authorize_url)
            .unwrap()
            .query()
            .unwrap()
            .to_string();
        let base = authorize_url.split("/api-keys/").next().unwrap();
        let back = client
            .post(format!("{base}/api-keys/authorize"))
            .form(&[("query", query)])
            .send()
            .unwrap()
            .text()
            .unwrap();
        let attribute = |tag: &str, name: &str| -> String {
            let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let value = &tag[start..];
            value[..value.find('"').unwrap()]
                .replace("&amp;", "&")
                .replace("&quot;", "\"")
        };
        let form_tag = &back[back.find("<form").unwrap()..];
        let action = attribute(form_tag, "action");
        let fields = back
            .split("<input")
            .skip(1)
            .map(|tag| (attribute(tag, "name"), attribute(tag, "value")))
            .collect();
        (action, fields)
    }

    /// The admin page's "Connect": a one-time state, BTCPay's authorize page asking for
    /// exactly the permissions needed, and the key it posts back connects once.
    #[test]
    fn connecting_through_the_authorize_page() {
        let s = setup();
        let run = s.env.run(&[
            "--json",
            "pair",
            "--btcpay",
            "--authorize-redirect",
            "https://splynx.isp.test/bitpay/admin/btcpay-connected",
        ]);
        run.assert_code(0);
        let authorize = run.json()["authorize_url"].as_str().unwrap().to_string();
        let parsed = url::Url::parse(&authorize).unwrap();
        let asked: Vec<String> = parsed
            .query_pairs()
            .filter(|(k, _)| k == "permissions")
            .map(|(_, v)| v.into_owned())
            .collect();
        let wanted: Vec<&str> = PERMISSIONS
            .iter()
            .chain(&REFUND_PERMISSIONS)
            .copied()
            .collect();
        assert_eq!(asked, wanted, "the refund permissions too");
        let (action, fields) = authorize_in_browser(&authorize);
        let state = url::Url::parse(&action)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("the state comes back");
        assert!(action.starts_with("https://splynx.isp.test/bitpay/admin/btcpay-connected?"));
        let key = fields
            .iter()
            .find(|(name, _)| name == "apiKey")
            .map(|(_, v)| v.clone())
            .unwrap();
        // A forged state is refused and stores nothing.
        s.env
            .run_with_stdin(
                &["pair", "--btcpay", "--state", "0123456789abcdef"],
                key.as_bytes(),
            )
            .assert_code(65)
            .assert_stderr_contains("start it again");
        assert_eq!(btcpay_tokens(&s.env), 0);
        s.env
            .run_with_stdin(&["pair", "--btcpay", "--state", &state], key.as_bytes())
            .assert_code(0);
        assert_eq!(btcpay_tokens(&s.env), 2);
        // The state is used once.
        s.env
            .run_with_stdin(&["pair", "--btcpay", "--state", &state], key.as_bytes())
            .assert_code(65);
    }
}
