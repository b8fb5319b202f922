//! Refunds from Splynx through BTCPay Server (issue 23): a pull payment of exactly what was
//! asked, in the invoice's currency; its claim link for the customer; its payouts followed
//! through BTCPay's own webhook deliveries and `reconcile`; one negative payment once the
//! payouts completed; never a second pull payment for one request.

use std::time::Duration;

use crate::btcpay::through_the_binary::{connected, deliver, delivering, pay_invoice_101, Setup};
use crate::util::Run;
use splynx_bitpay_sandbox::WebhookRoute;

const WAIT: Duration = Duration::from_secs(30);

/// Connected with BTCPay delivering its webhooks to the add-on's route; invoice 101 paid,
/// settled and credited.
fn credited() -> (Setup, WebhookRoute, String) {
    let (s, route) = delivering();
    let id = pay_invoice_101(&s);
    s.btcpay.set_status(&id, "Settled", None);
    s.btcpay.wait_for_deliveries(WAIT);
    assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
    (s, route, id)
}

fn refund(s: &Setup, args: &[&str]) -> Run {
    let mut all = vec!["--json", "refund"];
    all.extend_from_slice(args);
    s.env.run(&all)
}

fn refund_state(s: &Setup, id: &str, n: usize) -> String {
    let show = s.env.run(&["--json", "show", id]).json();
    show["invoices"][0]["refunds"][n]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_partial_refund_is_a_pull_payment_booked_once_when_its_payouts_complete() {
    let (s, _route, id) = credited();
    let run = refund(&s, &[&id, "--amount", "20", "--reason", "overcharge"]);
    run.assert_code(0);
    let pull_id = run.json()["id"].as_str().unwrap().to_string();
    let link = run.json()["claim_link"].as_str().unwrap().to_string();
    assert!(
        link.ends_with(&format!("/pull-payments/{pull_id}")),
        "{link}"
    );
    assert_eq!(run.json()["state"], "requested");
    let pulls = s.btcpay.pull_payments();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["amount"], "20.00", "exactly what was asked");
    assert_eq!(pulls[0]["currency"], "USD");
    assert_eq!(pulls[0]["invoiceId"], id.as_str());
    // Without --json the claim link is printed for the admin to hand over.
    let text = s.env.run(&["show", &id]).stdout;
    assert!(text.contains(&link), "{text}");

    // The customer claims it in two parts; BTCPay's payout webhooks reach the route.
    let first = s.btcpay.claim(&pull_id, "12");
    let second = s.btcpay.claim(&pull_id, "8");
    s.btcpay.wait_for_deliveries(WAIT);
    assert_eq!(refund_state(&s, &id, 0), "pending");
    s.btcpay.set_payout_state(&first, "AwaitingPayment");
    s.btcpay.set_payout_state(&first, "Completed");
    s.btcpay.wait_for_deliveries(WAIT);
    assert!(
        s.env.payments_with_receipt(&pull_id).is_empty(),
        "12 of 20 paid out: nothing booked yet"
    );
    s.btcpay.duplicate_next(2);
    s.btcpay.set_payout_state(&second, "Completed");
    s.btcpay.wait_for_deliveries(WAIT);
    assert_eq!(
        s.env.payments_with_receipt(&pull_id).len(),
        1,
        "booked from the webhook"
    );
    s.env.run(&["reconcile"]).assert_code(0);
    let booked = s.env.payments_with_receipt(&pull_id);
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0]["amount"], "-20.0000");
    assert_eq!(booked[0]["field_1"], id.as_str());
    assert_eq!(booked[0]["field_3"], "overcharge");
    assert_eq!(refund_state(&s, &id, 0), "paid-out");
    let payout_deliveries = s
        .btcpay
        .deliveries()
        .into_iter()
        .filter(|d| d.kind.starts_with("Payout"))
        .count();
    assert!(payout_deliveries >= 6, "{payout_deliveries}");

    // The rest (31.61) may still be refunded; then nothing is left.
    refund(&s, &[&id, "--amount", "31.62"])
        .assert_code(65)
        .assert_stderr_contains("31.61");
    refund(&s, &[&id]).assert_code(0);
    refund(&s, &[&id])
        .assert_code(65)
        .assert_stderr_contains("nothing is left to refund");
    assert_eq!(s.btcpay.pull_payments().len(), 2);
}

/// BTCPay makes a pull payment on every call: a request whose answer was lost is found
/// by its key among the store's pull payments, never sent again.
#[test]
fn a_lost_answer_is_found_among_the_pull_payments_and_not_sent_twice() {
    let (s, _route, id) = credited();
    let faults = s.btcpay.faults();
    faults.set_filter(Some("/refund"), Some("POST"));
    faults.hang_after_next(1);
    let run = refund(&s, &[&id, "--amount", "10"]);
    faults.clear();
    run.assert_code(0);
    assert_eq!(run.json()["state"], "requested");
    assert_eq!(s.btcpay.pull_payments().len(), 1);
    s.env.run(&["reconcile"]).assert_code(0);
    assert_eq!(s.btcpay.pull_payments().len(), 1, "never sent again");
    assert_eq!(
        s.env.run(&["--json", "show", &id]).json()["invoices"][0]["refunds"][0]["id"],
        s.btcpay.pull_payments()[0]["id"]
    );
}

/// An archived pull payment (cancelled in BTCPay) books nothing, is a finding, and frees
/// its amount; a key without the refund permissions is refused before anything is recorded.
#[test]
fn archived_is_cancelled_and_a_key_without_refund_permissions_is_refused() {
    let (s, _route, id) = credited();
    let run = refund(&s, &[&id]);
    run.assert_code(0);
    let pull_id = run.json()["id"].as_str().unwrap().to_string();
    refund(&s, &["--cancel", &pull_id])
        .assert_code(65)
        .assert_stderr_contains("archive pull payment");
    s.btcpay.archive_pull_payment(&pull_id);
    let reconciled = s.env.run(&["--json", "reconcile"]);
    reconciled.assert_code(1);
    assert!(
        reconciled.stdout.contains("nothing is booked in Splynx"),
        "a finding: {reconciled:?}"
    );
    assert_eq!(reconciled.json()["refunds_followed"], 1);
    assert_eq!(refund_state(&s, &id, 0), "cancelled");
    assert!(s.env.payments_with_receipt(&pull_id).is_empty());

    // A key connected before refunds were asked for.
    let old_key = s.btcpay.create_api_key(
        &splynx_bitpay::btcpay::model::PERMISSIONS.map(|p| format!("{p}:{}", s.store)),
    );
    s.env
        .run_with_stdin(&["pair", "--btcpay"], old_key.as_bytes())
        .assert_code(0);
    refund(&s, &[&id, "--amount", "5"])
        .assert_code(78)
        .assert_stderr_contains("btcpay.store.cancreatenonapprovedpullpayments");
    let doctor = s.env.run(&["--json", "doctor"]).json();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "btcpay.refunds")
        .cloned()
        .unwrap();
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["message"].as_str().unwrap().contains(
            "btcpay.store.cancreatenonapprovedpullpayments, btcpay.store.canviewpullpayments"
        ),
        "{check}"
    );
    assert_eq!(s.btcpay.pull_payments().len(), 1, "nothing sent");
    let show = s.env.run(&["--json", "show", &id]).json();
    assert_eq!(show["invoices"][0]["refunds"].as_array().unwrap().len(), 1);
}

/// BTCPay's payout event `kind` for pull payment `pull_id` (a body shaped like its
/// deliveries), and its `BTCPay-Sig` with the secret connecting stored.
fn payout_webhook(s: &Setup, kind: &str, pull_id: &str, state: &str) -> (String, String) {
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "deliveryId": "D1", "webhookId": "W1", "originalDeliveryId": "D1",
        "isRedelivery": false, "type": kind, "timestamp": 1_765_000_000,
        "storeId": s.store, "payoutId": "Payout9", "pullPaymentId": pull_id,
        "payoutState": state,
    }))
    .unwrap();
    let secret: String = s
        .env
        .db()
        .query_row(
            "SELECT token FROM tokens WHERE environment = 'btcpay' AND facade = 'webhook'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let signature = splynx_bitpay_sandbox::btcpay_signature(&secret, body.as_bytes());
    (body, signature)
}

/// A payout webhook is signed like every other; one about a pull payment this add-on did
/// not make is answered and ignored.
#[test]
fn payout_webhooks_of_other_pull_payments_are_ignored() {
    let s = connected();
    let (body, signature) = payout_webhook(&s, "PayoutUpdated", "NotOurs123", "Completed");
    s.env
        .run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(65);
    let run = s
        .env
        .run_with_stdin(&["handle-ipn", "--btcpay-sig", &signature], body.as_bytes());
    run.assert_code(0);
    assert!(run.stdout.contains("did not ask for"), "{run:?}");
}

/// Killed after Splynx committed the negative payment but before its answer: the next
/// webhook (an older one, arriving late) and reconcile find it; one booking.
#[test]
fn killed_between_paid_out_and_the_booking_books_once() {
    let s = connected();
    let id = pay_invoice_101(&s);
    s.btcpay.set_status(&id, "Settled", None);
    deliver(&s, &id, "InvoiceSettled").assert_code(0);
    let pull_id = refund(&s, &[&id, "--amount", "10"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let payout = s.btcpay.claim(&pull_id, "10");
    s.btcpay.set_payout_state(&payout, "Completed");
    let (body, signature) = payout_webhook(&s, "PayoutUpdated", &pull_id, "Completed");
    s.env.kill_ipn_once_splynx_has(
        "admin/finance/payments",
        &["handle-ipn", "--btcpay-sig", &signature],
        &body,
        || s.env.splynx.payment_count(),
    );
    assert_eq!(s.env.payments_with_receipt(&pull_id).len(), 1);
    let (late, late_signature) = payout_webhook(&s, "PayoutCreated", &pull_id, "AwaitingApproval");
    s.env
        .run_with_stdin(
            &["handle-ipn", "--btcpay-sig", &late_signature],
            late.as_bytes(),
        )
        .assert_code(0);
    let run = s.env.run(&["--json", "reconcile"]);
    run.assert_code(0);
    assert_eq!(
        s.env.payments_with_receipt(&pull_id).len(),
        1,
        "one booking"
    );
    assert_eq!(refund_state(&s, &id, 0), "paid-out");
}

/// A refund made in BTCPay itself (its invoice page names the pull payment "Refund {id}"):
/// refunding from Splynx is refused, nothing is booked by itself, and `--record` books it
/// once, when its payouts completed.
#[test]
fn a_refund_made_in_btcpay_is_recorded_only_when_asked() {
    let (s, _route, id) = credited();
    let owner = s.btcpay.create_api_key(&["unrestricted".to_string()]);
    let made: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!(
            "{}/api/v1/stores/{}/invoices/{id}/refund",
            s.btcpay.url(),
            s.store
        ))
        .header("Authorization", format!("token {owner}"))
        .json(&serde_json::json!({"refundVariant": "Fiat"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pull_id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["name"], format!("Refund {id}"));
    refund(&s, &[&id, "--amount", "1"])
        .assert_code(65)
        .assert_stderr_contains("refunded in the BTCPay Server dashboard");
    let payout = s.btcpay.claim(&pull_id, "51.61");
    s.btcpay.set_payout_state(&payout, "Completed");
    s.btcpay.wait_for_deliveries(WAIT);
    s.env.run(&["reconcile"]);
    assert!(
        s.env.payments_with_receipt(&pull_id).is_empty(),
        "only when asked"
    );

    let recorded = refund(&s, &[&id, "--record"]);
    recorded.assert_code(0);
    assert_eq!(recorded.json()["refunds"][0]["id"], pull_id.as_str());
    assert_eq!(recorded.json()["refunds"][0]["state"], "paid-out");
    refund(&s, &[&id, "--record"]).assert_code(65);
    s.env.run(&["reconcile"]).assert_code(0);
    let booked = s.env.payments_with_receipt(&pull_id);
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(booked[0]["amount"], "-51.6100");
    assert_eq!(s.btcpay.pull_payments().len(), 1, "nothing asked of BTCPay");
}
