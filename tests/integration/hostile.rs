//! The public webhook URL and untrusted text: what strangers send costs them more than it
//! costs us, and nothing they send can drive an operator's terminal.

use serde_json::json;

use crate::util::Env;

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

fn bitpay_gets(env: &Env, path: &str) -> usize {
    env.bitpay
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path().contains(path))
        .count()
}

fn journal_detail_sizes(env: &Env) -> Vec<(String, usize)> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT summary, length(coalesce(detail, '')) FROM journal WHERE kind = 'webhook' ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn bodies_we_reject_or_do_not_know_are_journaled_bounded() {
    let env = paired();
    let id = env.create_invoice_101();
    let padding = "x".repeat(60 * 1024);
    // Rejected (too large, not JSON) and unknown bodies: size, hash and the first KiB.
    let oversized = vec![b'{'; 64 * 1024 + 1];
    env.run_with_stdin(&["handle-ipn"], &oversized)
        .assert_code(65);
    let garbage = format!("not json {padding}");
    env.run_with_stdin(&["handle-ipn"], garbage.as_bytes())
        .assert_code(65);
    let stranger = json!({"id": "NotOurs1234567890abcd", "status": "paid", "padding": padding});
    env.run_with_stdin(&["handle-ipn"], stranger.to_string().as_bytes())
        .assert_code(0);
    // Ours: kept whole.
    let ours = env.bitpay.webhook_body(&id, true);
    env.run_with_stdin(&["handle-ipn"], ours.as_bytes())
        .assert_code(0);

    let rows = journal_detail_sizes(&env);
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (summary, size) in &rows[..3] {
        assert!(*size < 1300, "{summary}: {size} bytes journaled");
    }
    assert_eq!(
        rows[3].1,
        ours.len(),
        "our own invoice's webhook is kept whole"
    );
    let detail: String = env
        .db()
        .query_row(
            "SELECT detail FROM journal WHERE kind = 'webhook' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.starts_with("65537 bytes, sha256 ") && detail.contains("first 1024 bytes"),
        "{detail}"
    );
}

#[test]
fn an_unknown_invoice_id_is_asked_about_once_per_window() {
    let env = paired();
    let stranger = json!({"id": "NotOurs1234567890abcd", "status": "complete"}).to_string();
    for _ in 0..5 {
        let run = env.run_with_stdin(&["handle-ipn"], stranger.as_bytes());
        run.assert_code(0);
        assert!(run.stdout.contains("ignored"), "{run:?}");
    }
    assert_eq!(
        bitpay_gets(&env, "/invoices/NotOurs1234567890abcd"),
        1,
        "one signed GET for five POSTs"
    );
    let last = env.run_with_stdin(&["handle-ipn"], stranger.as_bytes());
    assert!(last.stdout.contains("asked BitPay at"), "{last:?}");
    // Another id is asked about on its own.
    let other = json!({"id": "AlsoNotOurs987654321", "status": "complete"}).to_string();
    env.run_with_stdin(&["handle-ipn"], other.as_bytes())
        .assert_code(0);
    assert_eq!(bitpay_gets(&env, "/invoices/AlsoNotOurs987654321"), 1);
}

#[test]
fn a_duplicate_webhook_seconds_later_is_answered_without_a_fetch() {
    let env = paired();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    let fetched = bitpay_gets(&env, &format!("/invoices/{id}"));
    for _ in 0..3 {
        let run = env.deliver_webhook(&id, true);
        run.assert_code(0);
        assert!(run.stdout.contains("not fetched again"), "{run:?}");
    }
    assert_eq!(bitpay_gets(&env, &format!("/invoices/{id}")), fetched);
    // A webhook that claims something new is checked at once.
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(bitpay_gets(&env, &format!("/invoices/{id}")), fetched + 1);
    assert_eq!(env.splynx.payment_count(), 1, "still exactly once");
}

#[test]
fn terminal_escapes_from_webhooks_are_shown_escaped() {
    let env = paired();
    let id = env.create_invoice_101();
    let body = json!({"event": {"code": 1003, "name": "invoice_paid\u{1b}[2J\u{1b}]0;owned\u{7}"},
                      "data": {"id": id, "status": "paid\u{1b}[31m"}})
    .to_string();
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(0);
    for args in [vec!["status"], vec!["show", &id]] {
        let run = env.run(&args);
        run.assert_code(0);
        assert!(
            !run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{7}'),
            "{args:?}: {:?}",
            run.stdout
        );
        assert!(
            run.stdout.contains("invoice_paid\\u{1b}[2J"),
            "{args:?}: {}",
            run.stdout
        );
    }
    // --json stays exact: the JSON string carries the escape as JSON escapes it.
    let json = env.run(&["--json", "show", &id]);
    assert!(!json.stdout.contains('\u{1b}'));
    let parsed = json.json();
    let summaries: Vec<&str> = parsed["invoices"][0]["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("invoice_paid\u{1b}[2J\u{1b}]0;owned\u{7}")),
        "{summaries:?}"
    );
}

#[test]
fn production_refuses_plain_http_off_this_machine() {
    let env = Env::new();
    let production = env
        .default_config()
        .replace("environment = \"test\"", "environment = \"production\"");
    // The sandboxes are on loopback: allowed.
    env.write_config(&production);
    env.run(&["status"]).assert_code(0);
    env.write_config(&production.replace(
        "url = \"https://splynx.isp.test\"",
        "url = \"http://splynx.isp.test\"",
    ));
    env.run(&["status"])
        .assert_code(78)
        .assert_stderr_contains("splynx.url")
        .assert_stderr_contains("unencrypted");
}

/// Makes every journal row of `bitpay_id` (or, with None, the rows naming no invoice) look
/// `days` old.
fn age_journal(env: &Env, bitpay_id: Option<&str>, days: i64) {
    let at = splynx_bitpay::clock::now_ms() - days * 24 * 3600 * 1000;
    match bitpay_id {
        Some(id) => env.db().execute(
            "UPDATE journal SET at = ?1 WHERE bitpay_id = ?2",
            rusqlite::params![at, id],
        ),
        None => env.db().execute(
            "UPDATE journal SET at = ?1 WHERE bitpay_id IS NULL OR bitpay_id LIKE 'NotOurs%'",
            [at],
        ),
    }
    .unwrap();
}

fn journal_rows(env: &Env, bitpay_id: &str) -> Vec<(String, String)> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT kind, summary FROM journal WHERE bitpay_id = ?1 ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([bitpay_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn prune_keeps_the_mapping_and_one_line_per_settled_payment() {
    let env = paired();
    // A settled payment (credited, complete: no longer watched), a held one, an open one,
    // and strangers' bodies: all 200 days old.
    let settled = env.create_invoice_101();
    env.bitpay.set_status(&settled, "complete", None);
    env.deliver_webhook(&settled, true).assert_code(0);
    let held = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&held, "expired", Some("paidLate"));
    env.deliver_webhook(&held, true).assert_code(0);
    let open = env
        .create_invoice(&["--customer", "42", "--refill", "5.00"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.run_with_stdin(&["handle-ipn"], b"not json")
        .assert_code(65);
    env.run_with_stdin(&["handle-ipn"], br#"{"id":"NotOurs1234567890abcd"}"#)
        .assert_code(0);
    for id in [&settled, &held, &open] {
        age_journal(&env, Some(id), 200);
    }
    age_journal(&env, None, 200);
    let settled_rows = journal_rows(&env, &settled).len();
    let held_rows = journal_rows(&env, &held);
    let open_rows = journal_rows(&env, &open);
    assert!(settled_rows > 4);

    let dry = env.run(&["--json", "prune", "--dry-run"]);
    dry.assert_code(0);
    let dry = dry.json();
    assert_eq!(dry["settled_payments"], 1, "{dry}");
    assert_eq!(dry["settled_entries"], settled_rows, "{dry}");
    assert!(dry["stranger_entries"].as_i64().unwrap() >= 3, "{dry}");
    assert_eq!(
        journal_rows(&env, &settled).len(),
        settled_rows,
        "a dry run changes nothing"
    );

    let run = env.run(&["prune"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("pruned journal detail older than 180 days"),
        "{run:?}"
    );
    let left = journal_rows(&env, &settled);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, "pruned");
    assert!(
        left[0].1.contains("credited") && left[0].1.contains("Splynx payment"),
        "{left:?}"
    );
    assert_eq!(
        journal_rows(&env, &held),
        held_rows,
        "held payments keep everything"
    );
    assert_eq!(
        journal_rows(&env, &open),
        open_rows,
        "unsettled payments keep everything"
    );
    let count = |sql: &str| -> i64 { env.db().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM journal WHERE kind != 'pairing' AND (bitpay_id IS NULL OR bitpay_id LIKE 'NotOurs%')"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM journal WHERE kind = 'pairing'"),
        1,
        "who paired is an audit trail: kept"
    );
    // The mapping stays: show still finds the payment and its Splynx payment id.
    let shown = env.run(&["--json", "show", &settled]).json();
    assert_eq!(shown["invoices"][0]["settlement"], "credited");
    assert!(shown["invoices"][0]["splynx_payment_id"].is_i64());
    // Pruning again finds nothing new; the summary line is never pruned.
    let again = env.run(&["--json", "prune"]).json();
    assert_eq!(again["settled_entries"], 0, "{again}");
    assert_eq!(journal_rows(&env, &settled).len(), 1);

    // status shows the store's size and age.
    let status = env.run(&["--json", "status"]).json();
    assert!(status["database_bytes"].as_u64().unwrap() > 0);
    assert!(status["oldest_journal_at"].is_string());
    assert!(status["last_pruned_at"].is_string());
    env.run(&["prune", "--older-than", "0"]).assert_code(65);
}

#[test]
fn reconcile_prunes_at_most_once_a_day() {
    let env = paired();
    env.run_with_stdin(&["handle-ipn"], b"not json")
        .assert_code(65);
    age_journal(&env, None, 400);
    let first = env.run(&["--json", "reconcile"]);
    first.assert_code(0);
    assert_eq!(first.json()["pruned"]["stranger_entries"], 1, "{first:?}");
    env.run_with_stdin(&["handle-ipn"], b"still not json")
        .assert_code(65);
    age_journal(&env, None, 400);
    let second = env.run(&["--json", "reconcile"]);
    assert!(second.json()["pruned"].is_null(), "once a day: {second:?}");
    let kept: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM journal WHERE bitpay_id IS NULL AND kind = 'webhook'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "the second body waits for tomorrow's prune");
}
