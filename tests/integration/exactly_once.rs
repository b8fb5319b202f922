//! Exactly once when Splynx is slow, and after the credit: payments whose outcome is
//! unknown, duplicates, reversals and refunds after a credit, late payments, order ids only
//! this installation can make.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{wait_until, Env, Run};

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

/// The test config with a short grace period for payments whose outcome is unknown.
fn with_grace(env: &Env, seconds: u64) {
    env.write_config(&env.default_config().replace(
        "timeout_seconds = 2\n\n[bitpay]",
        &format!("timeout_seconds = 2\npayment_grace_seconds = {seconds}\n\n[bitpay]"),
    ));
}

fn column<T: rusqlite::types::FromSql>(env: &Env, id: &str, column: &str) -> T {
    env.db()
        .query_row(
            &format!("SELECT {column} FROM invoices WHERE bitpay_id = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

fn settlement_of(env: &Env, id: &str) -> String {
    column(env, id, "settlement")
}

fn journal_of(env: &Env, id: &str) -> String {
    env.run(&["show", id]).stdout
}

fn confirmed_invoice_101(env: &Env) -> String {
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    id
}

fn webhook(env: &Env, id: &str) -> Run {
    env.deliver_webhook(id, true)
}

/// A payment an admin adds by hand in Splynx with our receipt number.
fn hand_made_payment(env: &Env, id: &str) -> i64 {
    env.splynx.add_payment_by_hand(json!({
        "customer_id": 42, "payment_type": 7, "receipt_number": id,
        "date": "2026-12-01", "amount": "51.61", "comment": "added by hand"
    }))
}

#[test]
fn slow_splynx_commits_after_we_gave_up_and_no_second_payment_is_made() {
    let env = paired();
    with_grace(&env, 8);
    let id = confirmed_invoice_101(&env);
    let faults = env.splynx.faults();
    faults.set_filter(Some("admin/finance/payments"), Some("POST"));
    faults.commit_late_next(1, Duration::from_secs(4));

    // The first webhook gives up after splynx.timeout_seconds (2 s): retry later.
    let started = Instant::now();
    webhook(&env, &id)
        .assert_code(75)
        .assert_stderr_contains("may or may not have been made");
    assert_eq!(settlement_of(&env, &id), "sent");
    assert_eq!(env.splynx.payment_count(), 0, "not committed yet");

    // BitPay's retry 2.3 s after the first: the payment is not in Splynx yet, and it is
    // not sent again.
    std::thread::sleep(Duration::from_millis(2300).saturating_sub(started.elapsed()));
    let posts_before = posts(&env);
    webhook(&env, &id)
        .assert_code(75)
        .assert_stderr_contains("only looked up");
    env.run(&["reconcile"]).assert_code(75);
    assert_eq!(
        posts(&env),
        posts_before,
        "no second POST inside the grace period"
    );

    // Splynx commits the first POST late; the next webhook adopts it.
    wait_until("Splynx commits the slow payment", || {
        env.splynx.payment_count() == 1
    });
    let run = webhook(&env, &id);
    run.assert_code(0);
    assert!(run.stdout.contains("found in Splynx"), "{run:?}");
    env.run(&["reconcile"]).assert_code(0);
    env.bitpay.set_status(&id, "complete", None);
    webhook(&env, &id).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(settlement_of(&env, &id), "credited");
    assert_eq!(posts(&env), posts_before);
    let journal = journal_of(&env, &id);
    assert!(journal.contains("outcome unknown"), "{journal}");
    assert!(journal.contains("waiting"), "{journal}");
}

fn posts(env: &Env) -> usize {
    env.splynx
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path().ends_with("admin/finance/payments"))
        .count()
}

#[test]
fn a_payment_that_never_appears_is_sent_again_after_the_grace_period() {
    let env = paired();
    // Long enough that the webhook (2 s timeout) and the early reconcile fit inside it on
    // a busy machine.
    with_grace(&env, 6);
    let id = confirmed_invoice_101(&env);
    let faults = env.splynx.faults();
    faults.set_filter(Some("admin/finance/payments"), Some("POST"));
    faults.hang_next(1); // read, never processed, never answered
    webhook(&env, &id).assert_code(75);
    assert_eq!(settlement_of(&env, &id), "sent");
    let sent_at: i64 = column(&env, &id, "payment_sent_at");

    // Inside the grace period reconcile only looks.
    let early = env.run(&["--json", "reconcile"]);
    early.assert_code(75);
    assert_eq!(posts(&env), 1);
    let status = env.run(&["--json", "status"]).json();
    assert_eq!(status["needs_admin"]["payment_outcome_unknown"], 1);

    // After it, the payment is sent again, and the journal says why.
    let due = sent_at + 6000;
    while splynx_bitpay::clock::now_ms() < due + 100 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(0);
    assert_eq!(run.json()["credited"], 1);
    assert_eq!(posts(&env), 2);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(settlement_of(&env, &id), "credited");
    assert_eq!(column::<i64>(&env, &id, "payment_attempts"), 2);
    let journal = journal_of(&env, &id);
    assert!(
        journal.contains("has not appeared in Splynx within the grace period"),
        "{journal}"
    );
}

#[test]
fn a_refused_payment_post_is_not_treated_as_maybe_sent() {
    let env = paired();
    with_grace(&env, 600);
    let id = confirmed_invoice_101(&env);
    // The key may not add payments: Splynx refuses before doing anything.
    env.splynx.deny("admin/finance/payments", "POST");
    webhook(&env, &id).assert_code(78);
    assert_eq!(settlement_of(&env, &id), "crediting");
    assert!(column::<Option<i64>>(&env, &id, "payment_sent_at").is_none());
    env.splynx.allow_all();
    // No grace period to wait for: the refusal proved nothing was made.
    webhook(&env, &id).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
}

#[test]
fn duplicates_found_while_crediting_are_held_with_every_payment_id() {
    let env = paired();
    let id = confirmed_invoice_101(&env);
    let first = hand_made_payment(&env, &id);
    let second = hand_made_payment(&env, &id);
    webhook(&env, &id).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "review");
    assert_eq!(
        env.splynx.payment_count(),
        2,
        "nothing made, nothing deleted"
    );

    let show = env.run(&["--json", "show", &id]).json();
    let ids: Vec<i64> = show["invoices"][0]["duplicate_payment_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![first, second]);
    let human = env.run(&["show", &id]).stdout;
    assert!(
        human.contains(&format!("duplicate payments in Splynx: {first}, {second}")),
        "{human}"
    );
    let status = env.run(&["--json", "status"]).json();
    assert_eq!(status["needs_admin"]["duplicates"], 1);
    assert_eq!(status["held"][0]["bitpay_invoice_id"], id.as_str());
    let doctor = env.run(&["doctor"]);
    let held = doctor
        .stdout
        .lines()
        .find(|l| l.contains("invoices.held"))
        .unwrap_or_default()
        .to_string();
    assert!(
        held.contains("warn") && held.contains("1 with duplicate Splynx payments"),
        "{doctor:?}"
    );

    // Mailed once by reconcile, then quiet.
    let report = env.run(&["reconcile"]);
    report.assert_code(1);
    assert!(report.stdout.contains("duplicate"), "{report:?}");
    assert!(report.stdout.contains(&id), "{report:?}");
    env.run(&["reconcile"]).assert_code(0);
    webhook(&env, &id).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 2);

    // The admin deletes one in Splynx and resolves the record.
    let resolved = env.run(&["resolve", &id, "--note", "deleted the second payment"]);
    resolved.assert_code(0);
    assert_eq!(settlement_of(&env, &id), "resolved");
    assert!(journal_of(&env, &id).contains("deleted the second payment"));
    let status = env.run(&["--json", "status"]).json();
    assert_eq!(status["needs_admin"]["duplicates"], 0);
    env.run(&["resolve", &id]).assert_code(65);
}

#[test]
fn a_duplicate_added_after_the_credit_is_found_when_the_watch_ends() {
    let env = paired();
    let id = confirmed_invoice_101(&env);
    webhook(&env, &id).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "credited");
    assert!(column::<Option<i64>>(&env, &id, "watch_until").is_some());
    let ours: i64 = column(&env, &id, "splynx_payment_id");
    let extra = hand_made_payment(&env, &id);

    env.bitpay.set_status(&id, "complete", None);
    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(1);
    let needs = &run.json()["needs_admin"];
    assert_eq!(needs[0]["kind"], "duplicate", "{needs}");
    assert!(needs[0]["summary"]
        .as_str()
        .unwrap()
        .contains(&format!("{ours}, {extra}")));
    assert_eq!(settlement_of(&env, &id), "review");
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 2);
}

#[test]
fn a_watched_credit_ends_quietly_when_bitpay_says_complete() {
    let env = paired();
    let id = confirmed_invoice_101(&env);
    webhook(&env, &id).assert_code(0);
    let watched = env.run(&["--json", "reconcile"]);
    watched.assert_code(0);
    assert_eq!(watched.json()["watched"], 1);
    let journal_rows = |env: &Env| env.journal_rows(&id);
    let rows = journal_rows(&env);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(
        journal_rows(&env),
        rows,
        "an unchanged watch is not journaled"
    );
    env.bitpay.set_status(&id, "complete", None);
    let done = env.run(&["--json", "reconcile"]);
    done.assert_code(0);
    assert!(column::<Option<i64>>(&env, &id, "watch_until").is_none());
    assert_eq!(env.run(&["--json", "reconcile"]).json()["checked"], 0);
    assert_eq!(env.splynx.payment_count(), 1);
}

#[test]
fn confirmed_credited_then_invalid_is_reversed_after_credit() {
    let env = paired();
    // Found by a webhook.
    let by_webhook = confirmed_invoice_101(&env);
    webhook(&env, &by_webhook).assert_code(0);
    let payment_id: i64 = column(&env, &by_webhook, "splynx_payment_id");
    env.bitpay.set_status(&by_webhook, "invalid", None);
    let run = webhook(&env, &by_webhook);
    run.assert_code(0);
    assert!(run.stdout.contains("reversed after credit"), "{run:?}");
    assert_eq!(settlement_of(&env, &by_webhook), "reversed");
    let note: String = column(&env, &by_webhook, "note");
    assert!(
        note.contains("invalid") && note.contains(&format!("Splynx payment {payment_id}")),
        "{note}"
    );

    // Found by reconcile, with no webhook.
    let by_reconcile = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&by_reconcile, "confirmed", None);
    webhook(&env, &by_reconcile).assert_code(0);
    env.bitpay.set_status(&by_reconcile, "invalid", None);

    let first = env.run(&["--json", "reconcile"]);
    first.assert_code(1);
    let json = first.json();
    assert_eq!(json["reversed"], 1, "{json}");
    let kinds: Vec<(&str, &str)> = json["needs_admin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["bitpay_invoice_id"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (by_webhook.as_str(), "reversed after credit"),
            (by_reconcile.as_str(), "reversed after credit")
        ]
    );
    env.run(&["reconcile"]).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);

    // Shown by status, show and doctor until the admin resolves it; the payments stay.
    let status = env.run(&["status"]);
    assert!(
        status.stdout.contains("reversed after credit 2"),
        "{status:?}"
    );
    assert_eq!(
        env.run(&["--json", "status"]).json()["needs_admin"]["reversed_after_credit"],
        2
    );
    assert!(journal_of(&env, &by_reconcile).contains("reversed after credit"));
    assert_eq!(env.splynx.payment_count(), 2);
    // Both stay among the recent payments, with their Splynx payment and what became of them.
    let recent = env.run(&["--json", "status"]).json()["recent_payments"].clone();
    let listed: Vec<(&str, bool, &str)> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["bitpay_invoice_id"].as_str().unwrap(),
                p["splynx_payment_id"].is_i64() && p["credited_at"].is_string(),
                p["settlement_text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 2, "{recent}");
    for id in [&by_webhook, &by_reconcile] {
        assert!(
            listed.contains(&(id.as_str(), true, "reversed after credit")),
            "{id} in {recent}"
        );
    }
    assert!(status.stdout.contains("Recent payments:"), "{status:?}");
    env.run(&["resolve", &by_webhook]).assert_code(0);
    env.run(&["resolve", &by_reconcile]).assert_code(0);
    assert_eq!(
        env.run(&["--json", "status"]).json()["needs_admin"]["reversed_after_credit"],
        0
    );
    // A resolved record is never acted on again.
    env.bitpay.set_status(&by_webhook, "complete", None);
    webhook(&env, &by_webhook).assert_code(0);
    assert_eq!(settlement_of(&env, &by_webhook), "resolved");
    env.run(&["reconcile"]).assert_code(0);
}

#[test]
fn refund_webhooks_trigger_a_recheck_and_are_never_bad_input() {
    let env = paired();
    // A confirmed, credited invoice refunded: BitPay declines it.
    let id = confirmed_invoice_101(&env);
    webhook(&env, &id).assert_code(0);
    let refund = env.bitpay.refund(&id);
    let body = env.bitpay.refund_webhook_body(&id, &refund, 7002);
    let run = env.run_with_stdin(&["handle-ipn"], body.as_bytes());
    run.assert_code(0);
    assert_eq!(settlement_of(&env, &id), "reversed");
    let journal = journal_of(&env, &id);
    assert!(journal.contains(&format!("refund {refund}")), "{journal}");
    assert!(journal.contains("refund listed"), "{journal}");
    // The next refund stages are journaled and change nothing.
    for code in [7003, 7004, 7001] {
        let body = env.bitpay.refund_webhook_body(&id, &refund, code);
        env.run_with_stdin(&["handle-ipn"], body.as_bytes())
            .assert_code(0);
    }
    assert_eq!(settlement_of(&env, &id), "reversed");

    // A complete invoice stays complete when refunded; the refund alone reverses it.
    let complete = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&complete, "complete", None);
    webhook(&env, &complete).assert_code(0);
    assert_eq!(settlement_of(&env, &complete), "credited");
    let refund = env.bitpay.refund(&complete);
    assert_eq!(env.bitpay.invoice(&complete).unwrap()["status"], "complete");
    let body = env.bitpay.refund_webhook_body(&complete, &refund, 7001);
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(0);
    assert_eq!(settlement_of(&env, &complete), "reversed");

    // Refund webhooks naming no invoice, or one that is not ours, are recorded with 0.
    let orphan =
        json!({"event": {"code": 7002, "name": "refund_pending"}, "data": {"id": "Rf000"}});
    let run = env.run_with_stdin(&["handle-ipn"], orphan.to_string().as_bytes());
    run.assert_code(0);
    assert!(run.stdout.contains("ignored"), "{run:?}");
    let stranger = json!({"event": {"code": 7002, "name": "refund_pending"},
                          "data": {"id": "Rf001", "invoice": "NotOurs1234567890abcd"}});
    env.run_with_stdin(&["handle-ipn"], stranger.to_string().as_bytes())
        .assert_code(0);
    let report = env.run(&["reconcile"]);
    report.assert_code(1);
    assert_eq!(report.stdout.matches("reversed after credit:").count(), 2);
    assert_eq!(
        env.splynx.payment_count(),
        2,
        "nothing is deleted automatically"
    );
}

#[test]
fn late_payments_are_held_and_reported_never_credited() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "expired", Some("paidLate"));
    webhook(&env, &id).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "review");
    let note: String = column(&env, &id, "note");
    assert!(
        note.contains("paidLate") && note.contains("BTC paid"),
        "{note}"
    );

    // Recorded as expired first, paid late afterwards: held too.
    let proforma = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.expire(&proforma);
    webhook(&env, &proforma).assert_code(0);
    assert_eq!(settlement_of(&env, &proforma), "expired");
    env.bitpay
        .set_status(&proforma, "expired", Some("paidLate"));
    webhook(&env, &proforma).assert_code(0);
    assert_eq!(settlement_of(&env, &proforma), "review");

    let report = env.run(&["--json", "reconcile"]);
    report.assert_code(1);
    let json = report.json();
    let kinds: Vec<&str> = json["needs_admin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["paid late", "paid late"]);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.splynx.payment_count(), 0);
}

#[test]
fn invoices_with_forged_or_foreign_order_ids_are_never_adopted() {
    let env = paired();
    // Another integration on the same account uses our order id shape, old and new.
    let old_shape =
        env.bitpay
            .create_foreign_invoice("splynx-invoice-101-3f9a2c1d", "51.61", "USD");
    let forged_mac = env.bitpay.create_foreign_invoice(
        "splynx-invoice-101-3f9a2c1d-0123456789abcdef",
        "51.61",
        "USD",
    );
    for id in [&old_shape, &forged_mac] {
        env.bitpay.set_status(id, "confirmed", None);
        let body = env.bitpay.webhook_body(id, true);
        let run = env.run_with_stdin(&["handle-ipn"], body.as_bytes());
        run.assert_code(0);
        assert!(run.stdout.contains("ignored"), "{run:?}");
        let journal = env.run(&["show", id]).stdout;
        assert!(
            journal.contains("not made by this installation"),
            "{journal}"
        );
    }
    // Nor through reconcile --since (merchant token).
    env.pair_merchant();
    let run = env.run(&["--json", "reconcile", "--since", "2020-01-01"]);
    run.assert_code(0);
    assert_eq!(run.json()["discovered"], 0);
    assert_eq!(env.splynx.payment_count(), 0);
    let invoices: i64 = env
        .db()
        .query_row("SELECT count(*) FROM invoices", [], |r| r.get(0))
        .unwrap();
    assert_eq!(invoices, 0);
}

#[test]
fn old_format_order_ids_still_settle_from_their_local_record() {
    let env = paired();
    let id = env.create_invoice_101();
    let order_id: String = column(&env, &id, "order_id");
    // Written by the previous version: no MAC.
    let old = order_id.rsplit_once('-').unwrap().0.to_string();
    assert!(
        old.starts_with("splynx-invoice-101-") && old.len() == 27,
        "{old}"
    );
    env.db()
        .execute(
            "UPDATE invoices SET order_id = ?1 WHERE bitpay_id = ?2",
            [&old, &id],
        )
        .unwrap();
    env.bitpay.set_field(&id, "orderId", Value::String(old));
    env.bitpay.set_status(&id, "confirmed", None);
    webhook(&env, &id).assert_code(0);
    assert_eq!(settlement_of(&env, &id), "credited");
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
}

#[test]
fn zero_confirmation_crediting_needs_an_explicit_yes() {
    let env = paired();
    let risky = env.default_config().replace(
        "transaction_speed = \"medium\"",
        "transaction_speed = \"high\"",
    );
    env.write_config(&risky);
    env.run(&["settings"])
        .assert_code(78)
        .assert_stderr_contains("double-spent")
        .assert_stderr_contains("allow_zero_confirmation = true");
    env.write_config(&risky.replace(
        "credit_on = \"confirmed\"",
        "credit_on = \"confirmed\"\nallow_zero_confirmation = true",
    ));
    env.run(&["status"]).assert_code(0);
    let doctor = env.run(&["--json", "doctor"]).json();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "bitpay.confirmations")
        .cloned()
        .unwrap();
    assert_eq!(check["status"], "warn", "{check}");
    assert!(check["message"].as_str().unwrap().contains("double-spend"));
}

#[test]
fn killed_between_sent_and_reply_adopts_after_restart() {
    let env = paired();
    with_grace(&env, 600);
    let id = confirmed_invoice_101(&env);
    env.kill_webhook_after_splynx_commits(&id);
    // Well inside the grace period: found by the look-up, adopted, never sent again.
    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(0);
    assert_eq!(run.json()["credited"], 1);
    assert_eq!(posts(&env), 1);
    assert_eq!(settlement_of(&env, &id), "credited");
}
