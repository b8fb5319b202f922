use serde_json::Value;

use crate::util::Env;

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

#[test]
fn invoice_by_id_becomes_a_checkout_url() {
    let env = paired();
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    run.assert_code(0);
    let out = run.json();
    let id = out["bitpay_invoice_id"].as_str().unwrap();
    assert_eq!(out["price"], "51.61");
    assert_eq!(out["currency"], "USD");
    assert_eq!(out["status"], "new");
    assert_eq!(out["reused"], false);
    assert_eq!(out["url"], format!("{}/invoice?id={id}", env.bitpay.url()));

    // What BitPay received.
    let post = env
        .bitpay
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path() == "/invoices")
        .unwrap();
    let body = post.json().unwrap();
    assert_eq!(
        serde_json::to_string(&body["price"]).unwrap(),
        "51.61",
        "price is a JSON number"
    );
    assert_eq!(body["currency"], "USD");
    assert!(body["orderId"]
        .as_str()
        .unwrap()
        .starts_with("splynx-invoice-101-"));
    assert_eq!(body["itemDesc"], "Invoice #202401000001");
    assert_eq!(
        body["notificationURL"],
        "https://splynx.isp.test/bitpay/ipn"
    );
    assert!(body["redirectURL"]
        .as_str()
        .unwrap()
        .starts_with("https://splynx.isp.test/bitpay/result?order=splynx-invoice-101-"));
    assert_eq!(body["transactionSpeed"], "medium");
    assert_eq!(body["extendedNotifications"], true);
    assert_eq!(body["buyer"]["name"], "Ada Lovelace");
    assert_eq!(body["buyer"]["email"], "ada@example.com");
    let pos: Value = serde_json::from_str(body["posData"].as_str().unwrap()).unwrap();
    assert_eq!(pos["customer_id"], 42);
    assert!(post.header("x-signature").is_some() && post.header("x-identity").is_some());

    // The mapping was stored with the guid sent.
    let (guid, stored_id, facade): (String, String, String) = env
        .db()
        .query_row("SELECT guid, bitpay_id, facade FROM invoices", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(body["guid"], guid.as_str());
    assert_eq!(stored_id, id);
    assert_eq!(facade, "pos");

    // People get the URL on a line.
    let human = env.run(&["create-invoice", "--customer", "42", "--invoice", "101"]);
    human.assert_code(0);
    assert_eq!(human.stdout.trim(), out["url"].as_str().unwrap());
}

#[test]
fn each_document_kind() {
    let env = paired();
    let by_number = env.create_invoice(&["--customer", "42", "--invoice-number", "202401000001"]);
    by_number.assert_code(0);
    assert_eq!(by_number.json()["price"], "51.61");

    let partial = env.create_invoice(&["--customer", "42", "--invoice", "105"]);
    partial.assert_code(0);
    assert_eq!(
        partial.json()["price"],
        "30.00",
        "the invoice's due, not its total"
    );

    let proforma = env.create_invoice(&["--customer", "42", "--proforma", "201"]);
    proforma.assert_code(0);
    let id = proforma.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let invoice = env.bitpay.invoice(&id).unwrap();
    assert_eq!(invoice["itemDesc"], "Proforma invoice #2024000001");
    assert!(invoice["orderId"]
        .as_str()
        .unwrap()
        .starts_with("splynx-proforma-201-"));
    assert_eq!(proforma.json()["price"], "20.00");

    let by_proforma_number =
        env.create_invoice(&["--customer", "42", "--proforma-number", "2024000001"]);
    by_proforma_number.assert_code(0);
    assert_eq!(by_proforma_number.json()["reused"], true);

    let refill = env.create_invoice(&["--customer", "42", "--refill", "25.5"]);
    refill.assert_code(0);
    assert_eq!(refill.json()["price"], "25.50");
    let id = refill.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env.bitpay.invoice(&id).unwrap()["orderId"]
        .as_str()
        .unwrap()
        .starts_with("splynx-refill-c42-"));
    for bound in ["1.00", "5000", "5000.00"] {
        env.create_invoice(&["--customer", "42", "--refill", bound])
            .assert_code(0);
    }
}

#[test]
fn check_describes_the_charge_without_creating_anything() {
    // No pairing needed: the portal shows the amount before the customer clicks Checkout.
    let env = Env::new();
    let run = env.create_invoice(&[
        "--check",
        "--customer",
        "42",
        "--invoice-number",
        "202401000001",
    ]);
    run.assert_code(0);
    let out = run.json();
    assert_eq!(out["description"], "Invoice #202401000001");
    assert_eq!(out["document_id"], 101);
    assert_eq!(out["price"], "51.61");
    assert_eq!(out["currency"], "USD");
    let proforma = env.create_invoice(&[
        "--check",
        "--customer",
        "42",
        "--proforma-number",
        "2024000001",
    ]);
    proforma.assert_code(0);
    assert_eq!(proforma.json()["document_id"], 201);
    env.create_invoice(&["--check", "--customer", "42", "--invoice", "102"])
        .assert_code(65)
        .assert_stderr_contains("already paid");
    env.create_invoice(&[
        "--check",
        "--customer",
        "42",
        "--proforma-number",
        "2024000002",
    ])
    .assert_code(65)
    .assert_stderr_contains("not found for your account");
    assert!(env.bitpay.requests().is_empty());
    assert_eq!(env.bitpay.invoice_count(), 0);
}

#[test]
fn second_click_reuses_the_open_invoice() {
    let env = paired();
    let first = env
        .create_invoice(&["--customer", "42", "--invoice", "101"])
        .json();
    let second = env
        .create_invoice(&["--customer", "42", "--invoice-number", "202401000001"])
        .json();
    assert_eq!(second["reused"], true);
    assert_eq!(second["bitpay_invoice_id"], first["bitpay_invoice_id"]);
    assert_eq!(second["url"], first["url"]);
    assert_eq!(env.bitpay.invoice_count(), 1);

    // An expired one is not handed out again.
    env.bitpay
        .expire(first["bitpay_invoice_id"].as_str().unwrap());
    let third = env
        .create_invoice(&["--customer", "42", "--invoice", "101"])
        .json();
    assert_eq!(third["reused"], false);
    assert_ne!(third["bitpay_invoice_id"], first["bitpay_invoice_id"]);
    assert_eq!(env.bitpay.invoice_count(), 2);

    // Paid at BitPay but not yet credited: no second invoice for the same document.
    env.bitpay
        .set_status(third["bitpay_invoice_id"].as_str().unwrap(), "paid", None);
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(65)
        .assert_stderr_contains("already in progress");
    assert_eq!(env.bitpay.invoice_count(), 2);
}

#[test]
fn parallel_double_click_creates_one_invoice() {
    let env = paired();
    env.bitpay
        .faults()
        .latency(std::time::Duration::from_millis(150));
    let children: Vec<_> = (0..4)
        .map(|_| {
            crate::util::spawn(
                &env.config_path(),
                &[
                    "--json",
                    "create-invoice",
                    "--customer",
                    "42",
                    "--invoice",
                    "101",
                ],
            )
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        assert!(output.status.success(), "{output:?}");
    }
    let ids: Vec<Value> = outputs
        .iter()
        .map(|o| serde_json::from_slice::<Value>(&o.stdout).unwrap()["bitpay_invoice_id"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(env.bitpay.invoice_count(), 1);
}

#[test]
fn refusals_are_bad_input_with_readable_messages() {
    let env = paired();
    let cases: &[(&[&str], &str)] = &[
        (&["--customer", "42", "--invoice", "102"], "already paid"),
        (&["--customer", "42", "--invoice", "104"], "cancelled"),
        (
            &["--customer", "42", "--invoice", "103"],
            "not found for your account",
        ),
        (
            &["--customer", "42", "--invoice-number", "202401000003"],
            "not found for your account",
        ),
        (
            &["--customer", "42", "--invoice", "999"],
            "not found for your account",
        ),
        (
            &["--customer", "42", "--proforma", "202"],
            "not found for your account",
        ),
        (
            &["--customer", "999", "--invoice", "101"],
            "Customer 999 does not exist",
        ),
        (
            &["--customer", "abc", "--invoice", "101"],
            "not a valid customer id",
        ),
        (
            &["--customer", "42", "--refill", "0.99"],
            "between 1.00 and 5000.00 USD",
        ),
        (
            &["--customer", "42", "--refill", "5000.01"],
            "between 1.00 and 5000.00 USD",
        ),
        (&["--customer", "42", "--refill", "0"], "greater than zero"),
        (
            &["--customer", "42", "--refill", "1.005"],
            "at most 2 decimal places",
        ),
        (
            &["--customer", "42", "--refill", "1e3"],
            "not a plain decimal number",
        ),
        (
            &["--customer", "42", "--refill", "-5"],
            "not a plain decimal number",
        ),
        (
            &["--customer", "42", "--refill", "12,50"],
            "not a plain decimal number",
        ),
    ];
    for (args, message) in cases {
        let run = env.create_invoice(args);
        run.assert_code(65).assert_stderr_contains(message);
    }
    assert_eq!(env.bitpay.invoice_count(), 0);
}

#[test]
fn not_paired_is_a_setup_problem() {
    let env = Env::new();
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(78)
        .assert_stderr_contains("pair CODE");
}

#[test]
fn timed_out_create_is_recovered_by_guid() {
    let env = paired();
    let faults = env.bitpay.faults();
    faults.set_filter(Some("/invoices"), Some("POST"));
    faults.hang_after_next(1);
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    run.assert_code(0);
    assert_eq!(env.bitpay.invoice_count(), 1, "created once, not twice");
    let paths: Vec<String> = env
        .bitpay
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("GET /invoices/guid/")),
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| *p == "POST /invoices").count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        run.json()["bitpay_invoice_id"],
        env.bitpay.invoices()[0]["id"]
    );
}

#[test]
fn create_killed_while_waiting_for_bitpay_is_recovered_by_the_next_click() {
    let env = paired();
    let faults = env.bitpay.faults();
    faults.set_filter(Some("/invoices"), Some("POST"));
    faults.hang_after_next(1); // BitPay creates it; the reply never comes
    let mut child = crate::util::spawn(
        &env.config_path(),
        &[
            "--json",
            "create-invoice",
            "--customer",
            "42",
            "--invoice",
            "101",
        ],
    );
    crate::util::wait_until("BitPay has the invoice", || env.bitpay.invoice_count() == 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let settlement: String = env
        .db()
        .query_row("SELECT settlement FROM invoices", [], |r| r.get(0))
        .unwrap();
    assert_eq!(settlement, "creating", "saved before the request");
    faults.clear();
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    run.assert_code(0);
    assert_eq!(run.json()["reused"], true);
    assert_eq!(env.bitpay.invoice_count(), 1);
}

#[test]
fn splynx_nonce_checking_with_parallel_processes() {
    for auth in ["signature", "access_token"] {
        nonce_checking_with_parallel_processes(auth);
    }
}

fn nonce_checking_with_parallel_processes(auth: &str) {
    let env = paired();
    env.write_config(&crate::util::with_splynx_auth(&env.default_config(), auth));
    env.splynx.set_check_nonce(true);
    let children: Vec<_> = (0..12)
        .map(|i| {
            let amount = format!("{}.00", 10 + i);
            crate::util::spawn(
                &env.config_path(),
                &[
                    "--json",
                    "create-invoice",
                    "--customer",
                    "42",
                    "--refill",
                    &amount,
                ],
            )
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    assert_eq!(env.splynx.auth_failures(), 0, "{auth}");
    assert_eq!(env.bitpay.invoice_count(), 12);
}

#[test]
fn splynx_failures_map_to_exit_codes() {
    let env = paired();
    env.splynx.faults().fail_next(1, 503);
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(75);
    env.splynx.faults().hang_next(1);
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(75)
        .assert_stderr_contains("unreachable");

    env.splynx.deny("admin/customers/customer", "GET");
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(78)
        .assert_stderr_contains("Customers → Customer (view)");

    env.write_config(
        &env.default_config()
            .replace(crate::util::API_SECRET, "wrong-secret"),
    );
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    run.assert_code(78)
        .assert_stderr_contains("splynx.api_secret");
    assert!(!run.stderr.contains("wrong-secret"));
    assert_eq!(env.bitpay.invoice_count(), 0);
}

#[test]
fn string_typed_splynx_json() {
    let env = paired();
    env.splynx.set_loose_json(true);
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    run.assert_code(0);
    assert_eq!(run.json()["price"], "51.61");
    env.create_invoice(&["--customer", "42", "--proforma", "201"])
        .assert_code(0);
    env.create_invoice(&["--customer", "42", "--invoice", "102"])
        .assert_code(65);
}

#[test]
fn merchant_token_is_preferred_when_paired_with_both() {
    let env = paired();
    env.pair_merchant();
    let id = env.create_invoice_101();
    let facade: String = env
        .db()
        .query_row(
            "SELECT facade FROM invoices WHERE bitpay_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(facade, "merchant");
}

/// Both ids: `invoice_id` and `server` for every server, `bitpay_invoice_id` kept for
/// BitPay invoices so that nothing reading it breaks.
#[test]
fn the_result_names_the_invoice_and_its_server() {
    let env = Env::new();
    env.pair();
    let run = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["server"], "bitpay");
    assert!(json["invoice_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(json["invoice_id"], json["bitpay_invoice_id"]);
}
