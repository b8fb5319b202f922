use serde_json::json;

use crate::util::{wait_until, Env};

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

fn settlement_of(env: &Env, id: &str) -> String {
    env.db()
        .query_row(
            "SELECT settlement FROM invoices WHERE bitpay_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn happy_path_invoice() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    let run = env.deliver_webhook(&id, true);
    run.assert_code(0);
    assert!(run.stdout.contains("credited"), "{run:?}");
    let payments = env.payments_with_receipt(&id);
    assert_eq!(payments.len(), 1);
    let p = &payments[0];
    assert_eq!(p["customer_id"].to_string().trim_matches('"'), "42");
    assert_eq!(p["invoice_id"].to_string().trim_matches('"'), "101");
    assert_eq!(p["payment_type"].to_string().trim_matches('"'), "7");
    assert_eq!(
        p["amount"]
            .as_str()
            .map(|a| a.trim_end_matches('0').trim_end_matches('.')),
        Some("51.61")
    );
    assert_eq!(p["field_1"], id.as_str());
    assert_eq!(env.splynx.invoice(101).unwrap()["status"], "paid");
    assert_eq!(settlement_of(&env, &id), "credited");

    // The journal tells the story; status counts it.
    let show = env.run(&["show", &id]);
    show.assert_code(0);
    for line in [
        "webhook",
        "signature valid",
        "fetch",
        "BitPay says confirmed",
        "credit",
        "splynx",
    ] {
        assert!(
            show.stdout.contains(line),
            "show lacks {line:?}: {}",
            show.stdout
        );
    }
    let status = env.run(&["--json", "status"]).json();
    assert_eq!(status["invoices"]["credited"], 1);
    assert!(status["last_webhook_at"].is_string());
    assert!(status["oldest_unsettled"].is_null());
}

#[test]
fn happy_path_proforma_and_refill() {
    let env = paired();
    let proforma = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json();
    let refill = env
        .create_invoice(&["--customer", "42", "--refill", "12.34"])
        .json();
    for out in [&proforma, &refill] {
        let id = out["bitpay_invoice_id"].as_str().unwrap();
        env.bitpay.set_status(id, "complete", None);
        env.deliver_webhook(id, false).assert_code(0);
    }
    let p = &env.payments_with_receipt(proforma["bitpay_invoice_id"].as_str().unwrap())[0];
    assert_eq!(p["request_id"].to_string().trim_matches('"'), "201");
    assert!(p
        .get("invoice_id")
        .is_none_or(|v| v.is_null() || v == "0" || v == 0));
    assert_eq!(env.splynx.proforma(201).unwrap()["status"], "paid");
    let r = &env.payments_with_receipt(refill["bitpay_invoice_id"].as_str().unwrap())[0];
    assert!(r["amount"].as_str().unwrap().starts_with("12.34"));
    assert!(r
        .get("request_id")
        .is_none_or(|v| v.is_null() || v == "0" || v == 0));
    assert_eq!(env.splynx.payment_count(), 2);
}

#[test]
fn same_webhook_five_times_one_payment() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    for _ in 0..5 {
        env.deliver_webhook(&id, true).assert_code(0);
    }
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 1);
}

#[test]
fn forged_body_is_only_a_trigger() {
    let env = paired();
    let id = env.create_invoice_101();
    // BitPay says "new"; the body claims "complete" and lies about the price.
    let forged = json!({"event": {"code": 1006, "name": "invoice_completed"},
                        "data": {"id": id, "status": "complete", "price": 0.01, "currency": "USD"}})
    .to_string();
    let run = env.run_with_stdin(
        &["handle-ipn", "--signature", "Zm9yZ2Vk"],
        forged.as_bytes(),
    );
    run.assert_code(0);
    assert_eq!(env.splynx.payment_count(), 0);
    assert_eq!(settlement_of(&env, &id), "open");
    let journal = env.run(&["show", &id]).stdout;
    assert!(journal.contains("SIGNATURE INVALID"), "{journal}");
    assert!(journal.contains("pending"), "{journal}");
}

#[test]
fn unknown_invoice_is_recorded_and_ignored() {
    let env = paired();
    let run = env.run_with_stdin(
        &["handle-ipn"],
        br#"{"id":"NotOurs1234567890abcd","status":"complete"}"#,
    );
    run.assert_code(0);
    assert!(run.stdout.contains("ignored"), "{run:?}");
    let count: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM journal WHERE bitpay_id = 'NotOurs1234567890abcd'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(count >= 2, "the webhook and the decision are journaled");
    assert_eq!(env.splynx.payment_count(), 0);
}

#[test]
fn lost_local_record_is_adopted_from_bitpay() {
    let env = paired();
    let id = env.create_invoice_101();
    env.db().execute("DELETE FROM invoices", []).unwrap();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(settlement_of(&env, &id), "credited");
}

#[test]
fn bad_bodies_are_bad_input_and_journaled() {
    let env = paired();
    let big = vec![b'{'; 64 * 1024 + 10];
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "empty"),
        (b"not json", "not JSON"),
        (
            br#"{"event":{"name":"invoice_paidInFull"},"data":{"status":"paid"}}"#,
            "no invoice id",
        ),
        (&big, "larger than"),
    ];
    for (body, message) in cases {
        env.run_with_stdin(&["handle-ipn"], body)
            .assert_code(65)
            .assert_stderr_contains(message);
    }
    let rejected: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM journal WHERE kind = 'webhook'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rejected, 4);
}

#[test]
fn both_formats_with_loose_types() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "paid", None);
    let legacy = json!({"id": id, "status": "paid", "price": "51.61", "amountPaid": "1025900",
                        "invoiceTime": "1620669854224", "exceptionStatus": false,
                        "paymentTotals": {"PAX": 76700000000000000000u128}})
    .to_string();
    env.run_with_stdin(&["handle-ipn"], legacy.as_bytes())
        .assert_code(0);
    env.bitpay.set_status(&id, "confirmed", None);
    let body = env.bitpay.webhook_body(&id, true);
    assert!(
        body.contains("76700000000000000000"),
        "the sandbox sends >64-bit integers"
    );
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(0);
    assert_eq!(env.splynx.payment_count(), 1);
}

#[test]
fn underpaid_is_not_credited_and_overpaid_credits_the_price() {
    let env = paired();
    let under = env.create_invoice_101();
    env.bitpay
        .set_status(&under, "expired", Some("paidPartial"));
    env.deliver_webhook(&under, true).assert_code(0);
    assert_eq!(settlement_of(&env, &under), "expired");
    assert!(env
        .run(&["show", &under])
        .stdout
        .contains("underpaid, refunded by BitPay"));
    assert_eq!(env.splynx.payment_count(), 0);

    let over = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&over, "confirmed", Some("paidOver"));
    env.deliver_webhook(&over, true).assert_code(0);
    let payments = env.payments_with_receipt(&over);
    assert_eq!(payments.len(), 1);
    assert!(payments[0]["amount"].as_str().unwrap().starts_with("20.00"));
}

#[test]
fn invalid_then_complete() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "invalid", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "open");
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "credited");
    assert_eq!(env.splynx.payment_count(), 1);
}

#[test]
fn credit_on_complete() {
    let env = paired();
    env.write_config(
        &env.default_config()
            .replace("credit_on = \"confirmed\"", "credit_on = \"complete\""),
    );
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 0);
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 1);
}

#[test]
fn mismatch_goes_to_review_never_credited() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.bitpay.set_field(&id, "price", json!(0.01));
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "review");
    assert_eq!(env.splynx.payment_count(), 0);
    // The webhook's finding is reported (and mailed by cron) by the next reconcile, once.
    let reconcile = env.run(&["reconcile"]);
    reconcile.assert_code(1);
    assert!(
        reconcile.stdout.contains("does not match ours"),
        "{reconcile:?}"
    );
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 0);
}

#[test]
fn splynx_down_during_webhook_then_reconcile_finishes() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.splynx.faults().fail_next(100, 503);
    env.deliver_webhook(&id, true).assert_code(75);
    assert_eq!(env.splynx.payment_count(), 0);
    env.splynx.faults().clear();
    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(0);
    assert_eq!(run.json()["credited"], 1);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 1);
}

#[test]
fn killed_after_splynx_accepted_the_payment() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.kill_webhook_after_splynx_commits(&id);
    // Recorded as sent before the POST left: its outcome is unknown until a look-up.
    assert_eq!(settlement_of(&env, &id), "sent");
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 1);
    assert_eq!(settlement_of(&env, &id), "credited");
    let payment_id: i64 = env
        .db()
        .query_row(
            "SELECT splynx_payment_id FROM invoices WHERE bitpay_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        env.splynx.payments()[0]["id"].to_string().trim_matches('"'),
        payment_id.to_string()
    );
}

#[test]
fn splynx_422_goes_to_review_and_is_not_retried() {
    let env = paired();
    // A payment method Splynx does not have: it validates payment_type and answers 422.
    env.write_config(
        &env.default_config()
            .replace("payment_method_id = 7", "payment_method_id = 99"),
    );
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "review");
    assert!(env.run(&["show", &id]).stdout.contains("422"));
    let posts = || {
        env.splynx
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    };
    let before = posts();
    env.deliver_webhook(&id, true).assert_code(0);
    env.run(&["reconcile"]).assert_code(1);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(posts(), before, "never retried blindly");
}

#[test]
fn storm_of_webhooks_racing_reconcile_with_nonce_checking() {
    for auth in ["signature", "access_token"] {
        storm_racing_reconcile(auth);
    }
}

fn storm_racing_reconcile(auth: &str) {
    let env = paired();
    env.write_config(&crate::util::with_splynx_auth(&env.default_config(), auth));
    env.splynx.set_check_nonce(true);
    let mut ids = Vec::new();
    for i in 0..40 {
        let amount = format!("{}.{:02}", 5 + i / 10, i);
        let out = env.create_invoice(&["--customer", "42", "--refill", &amount]);
        out.assert_code(0);
        let id = out.json()["bitpay_invoice_id"]
            .as_str()
            .unwrap()
            .to_string();
        env.bitpay.set_status(&id, "confirmed", None);
        ids.push(id);
    }
    let bodies: Vec<String> = ids
        .iter()
        .flat_map(|id| {
            let body = env.bitpay.webhook_body(id, true);
            vec![body.clone(), body.clone(), body]
        })
        .collect();
    let config = env.config_path();
    let queue = std::sync::Mutex::new(bodies.into_iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let run = crate::util::run_binary(&config, &["reconcile"], b"");
            if run.code != 0 {
                failures.lock().unwrap().push(format!("reconcile: {run:?}"));
            }
        });
        for _ in 0..16 {
            scope.spawn(|| loop {
                let Some(body) = queue.lock().unwrap().next() else {
                    break;
                };
                let run = crate::util::run_binary(&config, &["handle-ipn"], body.as_bytes());
                if run.code != 0 {
                    failures.lock().unwrap().push(format!("{run:?}"));
                }
            });
        }
    });
    assert_eq!(failures.into_inner().unwrap(), Vec::<String>::new());
    assert_eq!(env.splynx.payment_count(), 40);
    assert_eq!(env.splynx.auth_failures(), 0);
    for id in &ids {
        assert_eq!(env.payments_with_receipt(id).len(), 1, "{id}");
    }
}

#[test]
fn reconcile_finds_payments_without_webhooks() {
    let env = paired();
    let mut ids = Vec::new();
    for i in 0..240 {
        let amount = format!("{}.{:02}", 1 + i / 100, i % 100);
        let out = env.create_invoice(&["--customer", "42", "--refill", &amount]);
        out.assert_code(0);
        ids.push(
            out.json()["bitpay_invoice_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        match i % 8 {
            0 => env.bitpay.set_status(id, "confirmed", None),
            1 => env.bitpay.set_status(id, "complete", Some("paidOver")),
            2 => env.bitpay.expire(id),
            3 => env.bitpay.set_status(id, "paid", None),
            _ => {}
        }
    }
    let dry = env.run(&["--json", "reconcile", "--dry-run"]);
    dry.assert_code(0);
    assert_eq!(dry.json()["credited"], 60);
    assert_eq!(env.splynx.payment_count(), 0, "dry run changes nothing");

    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(0);
    let summary = run.json();
    assert_eq!(summary["checked"], 240);
    assert_eq!(summary["credited"], 60);
    assert_eq!(summary["expired"], 30);
    assert_eq!(summary["pending"], 150);
    assert_eq!(summary["errors"], 0);
    assert_eq!(env.splynx.payment_count(), 60);

    let again = env.run(&["--json", "reconcile"]).json();
    // Settled ones are not checked again, except the 30 credited on "confirmed": they are
    // watched until BitPay says complete.
    assert_eq!(again["checked"], 180);
    assert_eq!(again["watched"], 30);
    assert_eq!(again["credited"], 0);
    assert_eq!(env.splynx.payment_count(), 60);
}

#[test]
fn reconcile_since_needs_merchant_and_adopts_lost_records() {
    let env = paired();
    env.run(&["reconcile", "--since", "2026-01-01"])
        .assert_code(78)
        .assert_stderr_contains("merchant");
    env.pair_merchant();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.db().execute("DELETE FROM invoices", []).unwrap();
    let run = env.run(&["--json", "reconcile", "--since", "2020-01-01"]);
    run.assert_code(0);
    assert_eq!(run.json()["discovered"], 1);
    assert_eq!(run.json()["credited"], 1);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    env.run(&["reconcile", "--since", "yesterday"])
        .assert_code(65);
}

#[test]
fn only_one_reconcile_at_a_time() {
    let env = paired();
    for i in 0..3 {
        env.create_invoice(&["--customer", "42", "--refill", &format!("{}.00", 2 + i)])
            .assert_code(0);
    }
    env.bitpay
        .faults()
        .latency(std::time::Duration::from_millis(1500));
    let config = env.config_path();
    let slow = std::thread::spawn(move || crate::util::run_binary(&config, &["reconcile"], b""));
    // Its first BitPay request arrived: it holds the lock (taken before any request) and
    // waits 1.5 s for the answer.
    wait_until("the first reconcile asks BitPay", || {
        env.bitpay
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path().starts_with("/invoices/"))
    });
    env.run(&["reconcile"])
        .assert_code(75)
        .assert_stderr_contains("another run is in progress");
    slow.join().unwrap().assert_code(0);
}

/// Re-checking an open invoice that BitPay still reports unchanged notes when it was asked,
/// and journals nothing new; a change is journaled again.
#[test]
fn an_unchanged_open_invoice_is_not_journaled_again() {
    let env = paired();
    let id = env.create_invoice_101();
    let journal_lines = || env.journal_rows(&id);
    let fetched_at = || -> Option<i64> {
        env.db()
            .query_row(
                "SELECT fetched_at FROM invoices WHERE bitpay_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap()
    };
    env.run(&["reconcile"]).assert_code(0);
    let after_first = journal_lines();
    let first_fetch = fetched_at().expect("the first check is noted");
    std::thread::sleep(std::time::Duration::from_millis(20));
    env.run(&["reconcile"]).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(journal_lines(), after_first, "nothing new was journaled");
    assert!(
        fetched_at().unwrap() > first_fetch,
        "when it was asked is kept"
    );
    env.bitpay.set_status(&id, "paid", None);
    env.run(&["reconcile"]).assert_code(0);
    assert!(journal_lines() > after_first, "a change is journaled");
    let show = env.run(&["show", &id]).stdout;
    assert!(show.contains("BitPay says paid"), "{show}");
}
