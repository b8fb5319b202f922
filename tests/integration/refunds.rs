//! Refunds from Splynx through BitPay, exactly once (issue 23, contract money rule 10):
//! only what was credited and not refunded yet, sent once, booked as one negative payment
//! only when BitPay says the money was paid out.

use crate::util::{wait_until, Env, Run};

/// Paired with a pos and a merchant token; invoice 101 paid, complete and credited.
fn credited() -> (Env, String) {
    let env = Env::new();
    env.pair();
    env.pair_merchant();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    (env, id)
}

fn refund(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["--json", "refund"];
    all.extend_from_slice(args);
    env.run(&all)
}

/// BitPay's webhook for a refund (`code` 7001–7004), handed to `handle-ipn`.
fn refund_webhook(env: &Env, invoice: &str, refund_id: &str, code: u32) -> Run {
    let body = env.bitpay.refund_webhook_body(invoice, refund_id, code);
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
}

fn negative_payments(env: &Env, refund_id: &str) -> Vec<serde_json::Value> {
    env.payments_with_receipt(refund_id)
}

#[test]
fn full_and_partial_refunds_up_to_what_was_credited() {
    let (env, id) = credited();
    let first = refund(
        &env,
        &[&id, "--amount", "20", "--reason", "cancelled contract"],
    );
    first.assert_code(0);
    assert_eq!(first.json()["state"], "requested");
    assert_eq!(first.json()["amount"], "20.00");
    // More than is left (31.61) is refused, and nothing is sent.
    refund(&env, &[&id, "--amount", "31.62"])
        .assert_code(65)
        .assert_stderr_contains("31.61");
    refund(&env, &[&id, "--amount", "1.001"])
        .assert_code(65)
        .assert_stderr_contains("at most 2 decimals");
    assert_eq!(env.bitpay.api_refunds().len(), 1);
    // The rest, by the Splynx payment id.
    let payment_id = env.payments_with_receipt(&id)[0]["id"].to_string();
    let rest = refund(&env, &[payment_id.trim_matches('"')]);
    rest.assert_code(0);
    assert_eq!(rest.json()["amount"], "31.61");
    refund(&env, &[&id])
        .assert_code(65)
        .assert_stderr_contains("nothing is left to refund");
    let at_bitpay = env.bitpay.api_refunds();
    assert_eq!(at_bitpay.len(), 2);
    assert_eq!(at_bitpay[0]["invoice"], id.as_str());
    // Our own refunds are refunds, not reversals: the credit stands.
    env.deliver_webhook(&id, true).assert_code(0);
    let show = env.run(&["--json", "show", &id]).json();
    assert_eq!(show["invoices"][0]["settlement"], "credited");
    assert_eq!(show["invoices"][0]["refunds"].as_array().unwrap().len(), 2);
    let status = env.run(&["--json", "status"]).json();
    assert_eq!(status["refunds"]["requested"], 2);
}

#[test]
fn paid_out_is_booked_once_through_duplicate_webhooks_and_reconcile() {
    let (env, id) = credited();
    let run = refund(&env, &[&id, "--amount", "20"]);
    run.assert_code(0);
    let refund_id = run.json()["id"].as_str().unwrap().to_string();
    // Out of order: "paid out" arrives before "pending"; nothing is booked before it.
    env.bitpay.advance_refund(&refund_id, "pending");
    refund_webhook(&env, &id, &refund_id, 7002).assert_code(0);
    assert!(negative_payments(&env, &refund_id).is_empty());
    env.bitpay.advance_refund(&refund_id, "success");
    std::thread::scope(|scope| {
        for i in 0..4 {
            let (env, id, refund_id) = (&env, &id, &refund_id);
            scope.spawn(move || {
                if i == 0 {
                    env.run(&["reconcile"]).assert_code(0);
                } else {
                    refund_webhook(env, id, refund_id, 7003).assert_code(0);
                }
            });
        }
    });
    refund_webhook(&env, &id, &refund_id, 7002).assert_code(0);
    let booked = negative_payments(&env, &refund_id);
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0]["amount"], "-20.0000");
    assert_eq!(booked[0]["customer_id"].to_string().trim_matches('"'), "42");
    assert_eq!(
        booked[0]["invoice_id"].to_string().trim_matches('"'),
        "0",
        "not allocated"
    );
    assert_eq!(booked[0]["field_1"], id.as_str());
    let show = env.run(&["--json", "show", &id]).json();
    assert_eq!(show["invoices"][0]["refunds"][0]["state"], "paid-out");
    assert_eq!(env.splynx.invoice(101).unwrap()["status"], "paid");
}

#[test]
fn killed_between_paid_out_and_the_booking_books_once() {
    let (env, id) = credited();
    let refund_id = refund(&env, &[&id, "--amount", "5"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.advance_refund(&refund_id, "success");
    let body = env.bitpay.refund_webhook_body(&id, &refund_id, 7003);
    env.kill_ipn_once_splynx_has("admin/finance/payments", &["handle-ipn"], &body, || {
        env.splynx.payment_count()
    });
    assert_eq!(negative_payments(&env, &refund_id).len(), 1);
    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(0);
    assert_eq!(run.json()["refunds_booked"], 1, "found, not made again");
    assert_eq!(negative_payments(&env, &refund_id).len(), 1);
}

#[test]
fn a_lost_answer_is_found_by_the_refunds_key_and_not_sent_twice() {
    let (env, id) = credited();
    let faults = env.bitpay.faults();
    faults.set_filter(Some("/refunds"), Some("POST"));
    faults.hang_after_next(1);
    let run = refund(&env, &[&id, "--amount", "10"]);
    faults.clear();
    run.assert_code(0);
    assert_eq!(run.json()["state"], "requested");
    assert_eq!(env.bitpay.api_refunds().len(), 1);
    let show = env.run(&["show", &id]).stdout;
    assert!(show.contains("found by its key"), "{show}");
}

#[test]
fn cancelled_and_failed_refunds_book_nothing_and_are_reported() {
    let (env, id) = credited();
    let cancelled = refund(&env, &[&id, "--amount", "10"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = refund(&env, &["--cancel", &cancelled]);
    run.assert_code(0);
    assert_eq!(run.json()["state"], "cancelled");
    // The cancelled amount is free again; a refund BitPay failed to pay out too.
    let failed = refund(&env, &[&id]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.advance_refund(&failed, "failure");
    let run = env.run(&["reconcile"]);
    run.assert_code(1);
    assert!(run.stdout.contains("failed: nothing is booked"), "{run:?}");
    assert!(
        run.stdout.contains("cancelled: nothing is booked"),
        "{run:?}"
    );
    // Reported once.
    env.run(&["reconcile"]).assert_code(0);
    assert!(negative_payments(&env, &cancelled).is_empty());
    assert!(negative_payments(&env, &failed).is_empty());
    refund(&env, &["--cancel", &failed])
        .assert_code(65)
        .assert_stderr_contains("can no longer be cancelled");
}

#[test]
fn a_pos_only_pairing_is_told_how_to_pair_a_merchant_token() {
    let env = Env::new();
    env.pair();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    refund(&env, &[&id])
        .assert_code(78)
        .assert_stderr_contains("pair --request --facade merchant");
    assert!(env.bitpay.api_refunds().is_empty());
    let rows: i64 = env
        .db()
        .query_row("SELECT count(*) FROM refunds", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "nothing recorded");
    // Doctor says the same, as a warning (payments work without it).
    let doctor_refunds = |env: &Env| {
        let json = env.run(&["--json", "doctor"]).json();
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "bitpay.refunds")
            .cloned()
            .unwrap()
    };
    let check = doctor_refunds(&env);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("pair --request --facade merchant"),
        "{check}"
    );
    env.pair_merchant();
    assert_eq!(doctor_refunds(&env)["status"], "ok");
}

#[test]
fn a_confirmed_invoice_waits_and_a_dashboard_refund_is_recorded_only_when_asked() {
    let env = Env::new();
    env.pair();
    env.pair_merchant();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    refund(&env, &[&id])
        .assert_code(65)
        .assert_stderr_contains("wait until BitPay completes it");
    // Refunded in the BitPay dashboard: reversed after credit, held; not refundable here.
    env.bitpay.set_status(&id, "complete", None);
    env.bitpay.refund(&id);
    env.deliver_webhook(&id, true).assert_code(0);
    refund(&env, &[&id])
        .assert_code(65)
        .assert_stderr_contains("held for the admin");
    let at_bitpay = env.bitpay.api_refunds();
    assert_eq!(at_bitpay.len(), 1, "only the dashboard's: {at_bitpay:?}");
    let dashboard_id = at_bitpay[0]["id"].as_str().unwrap().to_string();

    // Paid out by BitPay: never booked by itself.
    env.bitpay.advance_refund(&dashboard_id, "success");
    env.run(&["reconcile"]);
    assert!(
        negative_payments(&env, &dashboard_id).is_empty(),
        "only when asked"
    );

    // The admin confirms: recorded as a refund and booked at once, exactly once.
    let recorded = refund(&env, &[&id, "--record"]);
    recorded.assert_code(0);
    assert_eq!(recorded.json()["refunds"][0]["id"], dashboard_id.as_str());
    assert_eq!(recorded.json()["refunds"][0]["state"], "paid-out");
    refund(&env, &[&id, "--record"])
        .assert_code(65)
        .assert_stderr_contains("nothing to record");
    env.run(&["reconcile"]);
    let booked = negative_payments(&env, &dashboard_id);
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0]["amount"], "-51.6100");
    assert_eq!(booked[0]["field_3"], "refunded in the BitPay dashboard");
    assert_eq!(env.bitpay.api_refunds().len(), 1, "nothing sent to BitPay");
    let show = env.run(&["--json", "show", &id]).json();
    let refunds = &show["invoices"][0]["refunds"];
    assert_eq!(refunds[0]["state"], "paid-out");
    assert!(refunds[0]["requested_by"]
        .as_str()
        .unwrap()
        .starts_with("the BitPay dashboard; recorded by"));
}

#[test]
fn only_refund_roles_refund_from_the_admin_page() {
    let (env, id) = credited();
    env.splynx
        .add_admin_session("sash-support-987654321", 7, "administrator");
    env.splynx
        .add_admin_session("sash-super-0123456789", 1, "super-administrator");
    refund(
        &env,
        &[
            &id,
            "--sash",
            "sash-support-987654321",
            "--session-admin",
            "7",
        ],
    )
    .assert_code(65)
    .assert_stderr_contains("may refund");
    let run = refund(
        &env,
        &[
            &id,
            "--amount",
            "1",
            "--sash",
            "sash-super-0123456789",
            "--session-admin",
            "1",
        ],
    );
    run.assert_code(0);
    assert!(run.json()["requested_by"]
        .as_str()
        .unwrap()
        .contains("(id 1, super-administrator)"));
    wait_until("the refund is at BitPay", || {
        env.bitpay.api_refunds().len() == 1
    });
}

/// A direct link names no payer: BitPay has no e-mail to ask for a refund address, so the
/// refund is refused, saying so, and nothing is recorded or sent.
#[test]
fn a_direct_link_invoice_without_an_email_is_refused_clearly() {
    let env = Env::new();
    env.pair();
    env.pair_merchant();
    env.write_config(&format!(
        "{}\n[direct_pay]\nenabled = true\n",
        env.default_config()
    ));
    let created = env.run(&["--json", "direct-pay", "--invoice-number", "202401000001"]);
    created.assert_code(0);
    let id = created.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1, "credited");
    refund(&env, &[&id])
        .assert_code(65)
        .assert_stderr_contains("paid through a direct link, so BitPay has no e-mail address");
    assert!(env.bitpay.api_refunds().is_empty(), "nothing sent");
    let show = env.run(&["--json", "show", &id]).json();
    assert!(show["invoices"][0]["refunds"]
        .as_array()
        .unwrap()
        .is_empty());
    let status = env.run(&["--json", "status"]).json();
    assert!(
        status["refundable"].get(&id).is_none(),
        "the page offers no Refund for it"
    );
}
