//! `audit` (issue 24): both books side by side over a period, against the strict sandboxes.
//! One of each difference is planted; the audit finds exactly those, and a clean period
//! exits 0. Nothing is written without `--record`.

use chrono::{Datelike, Local, NaiveDate, TimeZone};
use serde_json::{json, Value};

use crate::btcpay::through_the_binary::{connected, deliver, pay_invoice_101};
use crate::util::{Env, Run};

/// Noon on the 15th of last month, local time, in Unix milliseconds; and that day.
fn mid_last_month() -> (i64, String) {
    let first = Local::now().date_naive().with_day(1).unwrap();
    let day = first.pred_opt().unwrap().with_day(15).unwrap();
    let noon = Local
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).unwrap())
        .earliest()
        .unwrap();
    (noon.timestamp_millis(), day.to_string())
}

fn today() -> NaiveDate {
    Local::now().date_naive()
}

/// The differences as (kind, invoice id or refund id), sorted as the audit sorts them.
fn differences(run: &Run) -> Vec<(String, String)> {
    run.json()["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id = match d["invoice_id"].as_str() {
                Some("") | None => d["refund_id"].as_str().unwrap_or_default(),
                Some(id) => id,
            };
            (d["kind"].as_str().unwrap().to_string(), id.to_string())
        })
        .collect()
}

fn by_hand(env: &Env, payment: Value) -> i64 {
    env.splynx.add_payment_by_hand(payment)
}

/// A BitPay invoice created mid last month (status as given), without any webhook.
fn made_last_month(env: &Env, args: &[&str], status: &str) -> String {
    let id = env.invoice_id(args);
    env.bitpay.set_invoice_time(&id, mid_last_month().0);
    env.bitpay.set_status(&id, status, None);
    id
}

#[test]
fn bitpay_a_month_with_one_of_each_difference_finds_exactly_those() {
    let env = Env::new();
    env.pair();
    // With only the pos token the server's list cannot be read: 78, naming the token.
    env.run(&["audit"])
        .assert_code(78)
        .assert_stderr_contains("merchant");
    env.pair_merchant();
    let (_, day) = mid_last_month();

    // Credited through its webhook today; created last month: the payment (dated this
    // month) is found by its receipt number and matches.
    let matched = made_last_month(&env, &["--customer", "42", "--invoice", "101"], "complete");
    env.deliver_webhook(&matched, true).assert_code(0);
    // Refunded at BitPay (paid out), the booking never happened.
    let refund = env.run(&["--json", "refund", &matched, "--amount", "5"]);
    refund.assert_code(0);
    let refund_id = refund.json()["id"].as_str().unwrap().to_string();
    env.bitpay.advance_refund(&refund_id, "success");

    // Paid, its webhook lost, no reconcile: missing in Splynx.
    let missing = made_last_month(&env, &["--customer", "42", "--proforma", "201"], "complete");
    // Typed by hand with the wrong amount.
    let wrong = made_last_month(&env, &["--customer", "43", "--invoice", "103"], "complete");
    by_hand(
        &env,
        json!({"customer_id": 43, "invoice_id": 103, "payment_type": 7, "receipt_number": wrong,
               "date": day, "amount": "90.00"}),
    );
    // Credited today, and typed again by hand today: a duplicate, though neither payment
    // is dated in the period.
    let twice = made_last_month(
        &env,
        &["--customer", "43", "--refill", "25.00"],
        "confirmed",
    );
    env.deliver_webhook(&twice, true).assert_code(0);
    by_hand(
        &env,
        json!({"customer_id": 43, "payment_type": 7, "receipt_number": twice,
               "date": today().to_string(), "amount": "25.00"}),
    );
    // A payment with the add-on's method that no invoice stands behind.
    by_hand(
        &env,
        json!({"customer_id": 42, "payment_type": 7, "receipt_number": "CASH0001", "date": day,
               "amount": "10.00"}),
    );
    // Another integration's invoice on the same account: counted, not compared.
    let foreign = env
        .bitpay
        .create_foreign_invoice("woocommerce-77", "12.00", "USD");
    env.bitpay.set_invoice_time(&foreign, mid_last_month().0);
    env.bitpay.set_status(&foreign, "complete", None);
    // This month's paid invoice is not in last month's audit.
    let later = env.invoice_id(&["--customer", "42", "--invoice", "105"]);
    env.bitpay.set_status(&later, "complete", None);

    let payments_before = env.splynx.payments().len();
    let audit = env.run(&["--json", "audit"]);
    audit.assert_code(1);
    let mut expected = vec![
        ("missing_in_splynx".to_string(), missing.clone()),
        ("not_paid_at_server".to_string(), "CASH0001".to_string()),
        ("amount_differs".to_string(), wrong.clone()),
        ("duplicate".to_string(), twice.clone()),
        ("refund_not_booked".to_string(), matched.clone()),
    ];
    expected.sort_by_key(|(kind, _)| kind_order(kind));
    assert_eq!(differences(&audit), expected, "{}", audit.stdout);
    let totals = &audit.json()["totals"];
    assert_eq!(totals["paid_at_server"], 4, "{totals}");
    assert_eq!(totals["foreign"], 1);
    assert_eq!(totals["matched"], 1);
    assert_eq!(totals["refunds_paid_out"], 1);
    assert_eq!(
        env.splynx.payments().len(),
        payments_before,
        "the audit writes nothing to Splynx"
    );
    assert!(
        env.run(&["--json", "status"]).json()["last_audit"].is_null(),
        "nothing recorded without --record"
    );

    // The accountant's CSV: a header and the same five rows.
    let csv = env.run(&["audit", "--csv"]);
    csv.assert_code(1);
    let mut reader = csv::Reader::from_reader(csv.stdout.as_bytes());
    assert_eq!(&reader.headers().unwrap()[2], "kind");
    assert_eq!(reader.records().count(), 5);
    // For people: each difference on a line of its own.
    let text = env.run(&["audit"]).stdout;
    assert!(
        text.contains(&format!(
            "paid at the server, not in Splynx: no Splynx payment has receipt number {missing}"
        )),
        "{text}"
    );

    // Recorded, the page and metrics see the last audit.
    env.run(&["audit", "--record"]).assert_code(1);
    let last = &env.run(&["--json", "status"]).json()["last_audit"];
    assert_eq!(last["differences"], 5, "{last}");
    assert_eq!(last["by_kind"]["duplicate"], 1);
}

fn kind_order(kind: &str) -> usize {
    [
        "missing_in_splynx",
        "not_paid_at_server",
        "amount_differs",
        "customer_differs",
        "document_differs",
        "duplicate",
        "refund_not_booked",
        "refund_not_at_server",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap()
}

#[test]
fn bitpay_a_clean_month_exits_0() {
    let env = Env::new();
    env.pair();
    env.pair_merchant();
    let id = made_last_month(&env, &["--customer", "42", "--invoice", "101"], "complete");
    env.deliver_webhook(&id, true).assert_code(0);
    let refund = env.run(&["--json", "refund", &id, "--amount", "5"]).json();
    let refund_id = refund["id"].as_str().unwrap().to_string();
    env.bitpay.advance_refund(&refund_id, "success");
    env.run(&["reconcile"]).assert_code(0);
    let audit = env.run(&["--json", "audit"]);
    audit.assert_code(0);
    assert_eq!(differences(&audit), []);
    let totals = &audit.json()["totals"];
    assert_eq!(
        (
            totals["matched"].as_u64(),
            totals["refunds_booked"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // Bad periods are refused, naming the problem.
    env.run(&["audit", "--from", "2026-11-31", "--to", "2026-12-01"])
        .assert_code(65)
        .assert_stderr_contains("2026-11-31");
    env.run(&["audit", "--from", "2026-11-01"])
        .assert_code(65)
        .assert_stderr_contains("both");
    env.run(&["audit", "--from", "2026-11-02", "--to", "2026-11-01"])
        .assert_code(65)
        .assert_stderr_contains("before");
}

#[test]
fn btcpay_a_month_with_one_of_each_difference_and_then_a_clean_one() {
    let s = connected();
    let (from, to) = (
        today().with_day(1).unwrap().to_string(),
        today().to_string(),
    );
    let period = ["--json", "audit", "--from", &from, "--to", &to];
    // Paid and credited: clean.
    let credited = pay_invoice_101(&s);
    s.btcpay.set_status(&credited, "Settled", None);
    deliver(&s, &credited, "InvoiceSettled").assert_code(0);
    s.env.run(&period).assert_code(0);

    // Refunded in full through a pull payment, paid out; the booking never happened.
    let run = s.env.run(&["--json", "refund", &credited]);
    run.assert_code(0);
    let pull = run.json()["id"].as_str().unwrap().to_string();
    let payout = s.btcpay.claim(&pull, "51.61");
    s.btcpay.set_payout_state(&payout, "AwaitingPayment");
    s.btcpay.set_payout_state(&payout, "Completed");
    // Settled, its webhook lost.
    let missing = s.env.invoice_id(&["--customer", "42", "--proforma", "201"]);
    s.btcpay.set_status(&missing, "Settled", None);
    // Settled and credited, then typed again by hand; and one typed with another amount.
    let twice = s.env.invoice_id(&["--customer", "43", "--refill", "25.00"]);
    s.btcpay.set_status(&twice, "Settled", None);
    deliver(&s, &twice, "InvoiceSettled").assert_code(0);
    by_hand(
        &s.env,
        json!({"customer_id": 43, "payment_type": 7, "receipt_number": twice, "date": to,
               "amount": "25.00"}),
    );
    let wrong = s.env.invoice_id(&["--customer", "43", "--invoice", "103"]);
    s.btcpay.set_status(&wrong, "Settled", None);
    by_hand(
        &s.env,
        json!({"customer_id": 43, "invoice_id": 103, "payment_type": 7, "receipt_number": wrong,
               "date": to, "amount": "98.00"}),
    );
    by_hand(
        &s.env,
        json!({"customer_id": 42, "payment_type": 7, "receipt_number": "CASH0002", "date": to,
               "amount": "10.00"}),
    );
    let audit = s.env.run(&period);
    audit.assert_code(1);
    let mut expected = vec![
        ("missing_in_splynx".to_string(), missing.clone()),
        ("not_paid_at_server".to_string(), "CASH0002".to_string()),
        ("amount_differs".to_string(), wrong.clone()),
        ("duplicate".to_string(), twice.clone()),
        ("refund_not_booked".to_string(), credited.clone()),
    ];
    expected.sort_by_key(|(kind, _)| kind_order(kind));
    assert_eq!(differences(&audit), expected, "{}", audit.stdout);

    // reconcile books the refund and credits the missing payment: those two are gone.
    s.env.run(&["reconcile"]).assert_code(0);
    let after = s.env.run(&period);
    let kinds: Vec<String> = differences(&after).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        ["not_paid_at_server", "amount_differs", "duplicate"],
        "{}",
        after.stdout
    );
}
