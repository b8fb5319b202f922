//! Payment statements: every credit recorded once in the month's (or day's) statement,
//! through duplicate webhooks, reconcile, a kill between payment and record, a Splynx that
//! is down or refuses the permission, and across a month boundary.

use serde_json::Value;

use crate::util::Env;

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

fn with_grouping(env: &Env, group: &str) {
    env.write_config(&format!(
        "{}\n[statements]\ngroup = \"{group}\"\n",
        env.default_config()
    ));
}

/// Invoice 101 paid and confirmed at BitPay; returns its BitPay id.
fn confirmed_101(env: &Env) -> String {
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    id
}

/// Proforma 201 paid and confirmed at BitPay.
fn confirmed_201(env: &Env) -> String {
    let run = env.create_invoice(&["--customer", "42", "--proforma", "201"]);
    run.assert_code(0);
    let id = run.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&id, "confirmed", None);
    id
}

fn records_for(env: &Env, id: &str) -> Vec<Value> {
    env.splynx
        .statement_records()
        .into_iter()
        .filter(|r| r["additional_1"] == id)
        .collect()
}

/// Makes a waiting booking due now (a refused one otherwise waits an hour).
fn due_now(env: &Env) {
    env.db()
        .execute("UPDATE bookings SET next_try_at = 0", [])
        .unwrap();
}

fn statement_titles(env: &Env) -> Vec<String> {
    env.splynx
        .statements()
        .iter()
        .map(|s| s["title"].as_str().unwrap().to_string())
        .collect()
}

fn this_month() -> String {
    chrono::Utc::now().format("BitPay %m/%Y").to_string()
}

#[test]
fn each_credit_is_one_processed_record_in_the_months_statement() {
    let env = paired();
    let id = confirmed_101(&env);
    env.deliver_webhook(&id, true).assert_code(0);
    let payment = &env.payments_with_receipt(&id)[0];
    let records = records_for(&env, &id);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    let statements = env.splynx.statements();
    assert_eq!(statement_titles(&env), [this_month()]);
    assert_eq!(statements[0]["status"], "success");
    assert_eq!(record["bank_statements_process_id"], statements[0]["id"]);
    assert_eq!(record["status"], "processed");
    assert_eq!(record["customer_id"], 42);
    assert_eq!(record["invoice_id"], 101);
    assert_eq!(record["payment_id"], payment["id"]);
    assert_eq!(record["amount"], "51.6100");
    assert_eq!(record["comment"], "BitPay");
    assert_eq!(record["pairing_2"], "202401000001");
    assert_eq!(env.booking_state(&id, "statement"), "done");

    // Duplicate webhooks and reconcile book nothing more.
    env.deliver_webhook(&id, true).assert_code(0);
    env.deliver_webhook(&id, false).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(records_for(&env, &id).len(), 1);

    // The next payment goes into the same statement.
    let proforma = confirmed_201(&env);
    env.run(&["reconcile"]).assert_code(0);
    let second = records_for(&env, &proforma);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["request_id"], 201);
    assert!(second[0].get("invoice_id").is_none(), "{second:?}");
    assert_eq!(env.splynx.statements().len(), 1);
    assert_eq!(env.splynx.statement_records().len(), 2);
}

#[test]
fn a_kill_after_splynx_recorded_it_is_finished_by_look_up_not_sent_again() {
    let env = paired();
    let id = confirmed_101(&env);
    env.kill_webhook_once_splynx_has("bank-statements-records", &id, || {
        env.splynx.statement_records().len()
    });
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(env.booking_state(&id, "statement"), "sent");

    // The next webhook (or reconcile) finds the record and sends none.
    env.deliver_webhook(&id, true).assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(records_for(&env, &id).len(), 1);
    assert_eq!(env.booking_state(&id, "statement"), "done");
    assert!(env
        .run(&["show", &id])
        .stdout
        .contains("payment statement record 1 found in Splynx"));
}

#[test]
fn a_record_splynx_never_got_is_booked_by_reconcile_once() {
    let env = paired();
    // Complete: the credit is not watched, so only the sweep of open bookings sees it.
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "complete", None);
    let faults = env.splynx.faults();
    faults.set_filter(Some("bank-statements-records"), Some("POST"));
    faults.fail_next(1, 503);
    // The payment lands; the webhook is answered 200 (BitPay need not retry).
    env.deliver_webhook(&id, true).assert_code(0);
    faults.clear();
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert!(records_for(&env, &id).is_empty());
    // A 503's outcome is unknown: only looked up until the grace period has passed.
    assert_eq!(env.booking_state(&id, "statement"), "sent");
    let shown = env.run(&["show", &id]).stdout;
    assert!(
        shown.contains("  booked:     payment statement record -: sent, outcome unknown — the payment is credited, but its payment statement record is not booked yet"),
        "{shown}"
    );
    let status = env.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("Not booked yet:    1 payment statement record"),
        "{status:?}"
    );
    env.db()
        .execute("UPDATE bookings SET sent_at = sent_at - 3600000", [])
        .unwrap();
    let run = env.run(&["reconcile"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(&format!(
            "{id}: booked: recorded in payment statement \"{}\"",
            this_month()
        )),
        "{run:?}"
    );
    assert_eq!(records_for(&env, &id).len(), 1);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(records_for(&env, &id).len(), 1);
}

#[test]
fn without_the_permission_payments_land_and_doctor_names_it() {
    let env = paired();
    env.splynx.deny("admin/finance/bank-statements", "*");
    let id = confirmed_101(&env);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(env.booking_state(&id, "statement"), "pending");

    let doctor = env.run(&["doctor"]);
    assert_ne!(doctor.code, 0);
    assert!(
        doctor.stdout.contains("splynx.statements")
            && doctor.stdout.contains("may not list payment statements")
            && doctor.stdout.contains("Payment statements"),
        "{doctor:#?}"
    );
    let reconcile = env.run(&["reconcile"]);
    // Refused: waits an hour before the next try, so this run leaves it.
    reconcile.assert_code(0);

    env.splynx.allow_all();
    due_now(&env);
    let reconcile = env.run(&["reconcile"]);
    reconcile.assert_code(0);
    assert_eq!(records_for(&env, &id).len(), 1);
    assert_eq!(env.booking_state(&id, "statement"), "done");
}

/// Two credits, one in the last minutes of November and one in the first of December
/// (server time), booked after the month turned.
fn book_across_the_month_boundary(group: &str) -> (Env, String, String) {
    let env = paired();
    with_grouping(&env, group);
    let november = confirmed_101(&env);
    let december = confirmed_201(&env);
    let faults = env.splynx.faults();
    faults.set_filter(Some("bank-statements-records"), Some("POST"));
    faults.fail_next(2, 403);
    env.deliver_webhook(&november, true).assert_code(0);
    env.deliver_webhook(&december, true).assert_code(0);
    faults.clear();
    for (id, at) in [
        (&november, "2026-11-30T23:59:30Z"),
        (&december, "2026-12-01T00:00:10Z"),
    ] {
        let ms = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .timestamp_millis();
        env.db()
            .execute(
                "UPDATE invoices SET credited_at = ?1 WHERE bitpay_id = ?2",
                rusqlite::params![ms, id],
            )
            .unwrap();
    }
    due_now(&env);
    env.run(&["reconcile"]).assert_code(0);
    (env, november, december)
}

fn statement_of(env: &Env, id: &str) -> String {
    let record = &records_for(env, id)[0];
    env.splynx
        .statements()
        .into_iter()
        .find(|s| s["id"] == record["bank_statements_process_id"])
        .unwrap()["title"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn monthly_statements_split_at_the_month_boundary() {
    let (env, november, december) = book_across_the_month_boundary("month");
    assert_eq!(statement_of(&env, &november), "BitPay 11/2026");
    assert_eq!(statement_of(&env, &december), "BitPay 12/2026");
    let record = &records_for(&env, &november)[0];
    assert_eq!(record["payment_date"], "2026-11-30");
    assert_eq!(record["datetime"], "2026-11-30 23:59:30");
}

#[test]
fn daily_statements_split_at_midnight() {
    let (env, november, december) = book_across_the_month_boundary("day");
    assert_eq!(statement_of(&env, &november), "BitPay 30/11/2026");
    assert_eq!(statement_of(&env, &december), "BitPay 01/12/2026");
}

#[test]
fn statements_off_books_none() {
    let env = paired();
    with_grouping(&env, "off");
    let id = confirmed_101(&env);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert!(env.splynx.statements().is_empty());
    assert!(env.splynx.statement_records().is_empty());
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains("payment statements are off"),
        "{doctor:#?}"
    );
}

#[test]
fn a_statement_deleted_in_splynx_is_looked_up_again() {
    let env = paired();
    let first = confirmed_101(&env);
    env.deliver_webhook(&first, true).assert_code(0);
    let statement = env.splynx.statements()[0]["id"].as_i64().unwrap();
    env.splynx.delete_statement(statement);
    let second = confirmed_201(&env);
    env.deliver_webhook(&second, true).assert_code(0);
    let statements = env.splynx.statements();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statement_of(&env, &second), this_month());
    assert_eq!(env.booking_state(&second, "statement"), "done");
}

#[test]
fn a_record_left_open_when_statements_are_turned_off_is_not_booked() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "complete", None);
    let faults = env.splynx.faults();
    faults.set_filter(Some("bank-statements-records"), Some("POST"));
    faults.fail_next(1, 403);
    env.deliver_webhook(&id, true).assert_code(0);
    faults.clear();
    assert_eq!(env.booking_state(&id, "statement"), "pending");
    with_grouping(&env, "off");
    due_now(&env);
    env.run(&["reconcile"]).assert_code(0);
    assert!(env.splynx.statement_records().is_empty());
}
