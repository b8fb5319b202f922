//! The outside review of the third round (issue 20), item by item: each test failed on the
//! code before its fix.

use serde_json::json;

use crate::util::Env;

/// `text` contains every one of `words`.
#[track_caller]
fn says_all(text: &str, words: &[&str]) {
    for word in words {
        assert!(text.contains(word), "{word:?} missing from {text}");
    }
}

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

/// Item 4: a finding reported, then pruned, must not hide the next one (SQLite reuses the
/// ids of deleted rows in a table without AUTOINCREMENT).
#[test]
fn findings_after_a_prune_are_still_reported() {
    let env = paired();
    let late = env.create_invoice_101();
    env.bitpay.set_status(&late, "expired", Some("paidLate"));
    env.deliver_webhook(&late, true).assert_code(0);
    env.run(&["reconcile"]).assert_code(1);
    env.run(&["reconcile"]).assert_code(0);
    // Two hundred days later the reported finding is pruned.
    let old = splynx_bitpay::clock::now_ms() - 200 * 24 * 3600 * 1000;
    env.db()
        .execute(
            "UPDATE findings SET at = ?1, reported_at = ?1",
            rusqlite::params![old],
        )
        .unwrap();
    let pruned = env.run(&["--json", "prune"]);
    pruned.assert_code(0);
    assert_eq!(pruned.json()["findings"], 1, "{pruned:?}");
    // Then a credit is reversed: the webhook records the finding, reconcile mails it.
    let reversed = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&reversed, "confirmed", None);
    env.deliver_webhook(&reversed, true).assert_code(0);
    env.bitpay.set_status(&reversed, "invalid", None);
    env.deliver_webhook(&reversed, true).assert_code(0);
    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(1);
    let findings = run.json()["needs_admin"].clone();
    assert_eq!(findings.as_array().unwrap().len(), 1, "{run:?}");
    assert_eq!(findings[0]["kind"], "reversed after credit", "{run:?}");
    env.run(&["reconcile"]).assert_code(0);
}

/// Item 2: one record whose booking fails does not stop the sweep: the other bookings are
/// made, findings are reported, and the exit code is the worst.
#[test]
fn one_failing_booking_does_not_stop_the_sweep() {
    let env = paired();
    let faults = env.splynx.faults();
    faults.set_filter(Some("bank-statements"), None);
    faults.fail_next(1000, 503);
    let broken = env.create_invoice_101();
    let fine = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in [&broken, &fine] {
        env.bitpay.set_status(id, "confirmed", None);
        env.deliver_webhook(id, true).assert_code(0);
        assert_eq!(env.booking_state(id, "statement"), "pending");
    }
    // A fee booking on a payment that has no fee: booking it fails with an error.
    env.db()
        .execute(
            "INSERT INTO bookings (invoice_id, kind, state, attempts, next_try_at, updated_at)
             SELECT id, 'fee', 'pending', 0, 0, 0 FROM invoices WHERE bitpay_id = ?1",
            [&broken],
        )
        .unwrap();
    let late = env
        .create_invoice(&["--customer", "42", "--invoice", "105"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&late, "expired", Some("paidLate"));
    faults.clear();
    env.deliver_webhook(&late, true).assert_code(0);

    let run = env.run(&["--json", "reconcile"]);
    run.assert_code(1);
    let report = run.json();
    assert_eq!(report["errors"], 1, "{run:?}");
    assert_eq!(env.booking_state(&fine, "statement"), "done", "{run:?}");
    let kinds: Vec<&str> = report["needs_admin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["paid late"], "{run:?}");
    assert!(
        report["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["result"] == "error" && i["bitpay_invoice_id"] == broken.as_str()),
        "{run:?}"
    );
}

fn with_currency(env: &Env, currency: &str) {
    env.write_config(
        &env.default_config()
            .replace("currency = \"USD\"", &format!("currency = \"{currency}\"")),
    );
}

/// doctor's `bitpay.currency` check has `status` and its message says `says`.
#[track_caller]
fn currency_check(env: &Env, status: &str, says: &str) {
    let doctor = env.run(&["--json", "doctor"]).json();
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "bitpay.currency")
        .unwrap()
        .clone();
    assert_eq!(check["status"], status, "{check}");
    assert!(check["message"].as_str().unwrap().contains(says), "{check}");
}

/// Item 6: minor units by ISO 4217: three places for KWD, none for XPF; doctor compares
/// with BitPay's list of currencies.
#[test]
fn currency_decimals_follow_iso_4217() {
    let env = paired();
    with_currency(&env, "KWD");
    let run = env.create_invoice(&["--customer", "42", "--refill", "10.125"]);
    run.assert_code(0);
    assert_eq!(run.json()["price"], "10.125", "{run:?}");
    env.create_invoice(&["--customer", "42", "--refill", "10.1255"])
        .assert_code(65);
    currency_check(&env, "warn", "3 decimal places");

    with_currency(&env, "XPF");
    let run = env.create_invoice(&["--customer", "42", "--refill", "1500"]);
    run.assert_code(0);
    assert_eq!(run.json()["price"], "1500", "{run:?}");
    env.create_invoice(&["--customer", "42", "--refill", "1500.50"])
        .assert_code(65);

    // A currency BitPay does not price invoices in fails doctor's check.
    with_currency(&env, "TND");
    currency_check(&env, "fail", "does not list TND");
    // Not a currency at all: the config names it.
    with_currency(&env, "XAU");
    env.run(&["settings"])
        .assert_code(78)
        .assert_stderr_contains("is not an ISO 4217 currency code");
}

fn bitpay_id(run: &crate::util::Run) -> String {
    run.assert_code(0);
    run.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Item 1: a cosmetic setting broken after the checkout (a decimal comma in "Service
/// fee", a partner's 201-character "Text for invoice") never holds back a credit: it
/// refuses checkout naming the field, and reconcile reports it once.
#[test]
fn a_broken_setting_refuses_checkout_but_never_a_credit() {
    let env = paired();
    env.add_partner_two_customer();
    let fee_text = "x".repeat(201);
    let ini = |service_fee: &str, partner_text: &str| {
        format!(
            "; <?php exit(); ?>\n[common]\nservice_fee = \"{service_fee}\"\nfee_message = \"Crypto fee\"\n[default_partners_settings]\n[2]\nfee_message = \"{partner_text}\"\nfee_category = \"4\"\n"
        )
    };
    env.with_modules_list_ini(&ini("2.5", "Partner fee"));
    let ours = bitpay_id(&env.create_invoice(&["--customer", "42", "--invoice", "101"]));
    let theirs = bitpay_id(&env.create_invoice(&["--customer", "77", "--invoice", "701"]));
    // The admin types a decimal comma, and a partner's text gets too long.
    env.with_modules_list_ini(&ini("2,5", &fee_text));
    for id in [&ours, &theirs] {
        env.bitpay.set_status(id, "confirmed", None);
    }
    env.deliver_webhook(&ours, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&ours).len(), 1);
    let first = env.run(&["--json", "reconcile"]);
    first.assert_code(1);
    assert_eq!(env.payments_with_receipt(&theirs).len(), 1, "{first:?}");
    // Fee and statement were booked as the checkout decided.
    for id in [&ours, &theirs] {
        assert_eq!(env.booking_state(id, "fee"), "done", "{first:?}");
        assert_eq!(env.booking_state(id, "statement"), "done", "{first:?}");
    }
    let fee = env
        .splynx
        .transactions()
        .into_iter()
        .find(|t| t["comment"] == format!("BitPay invoice {theirs}"))
        .unwrap();
    assert!(
        fee["description"]
            .as_str()
            .unwrap()
            .starts_with("Partner fee"),
        "{fee}"
    );
    let findings = first.json()["needs_admin"].clone();
    let text = findings.to_string();
    says_all(&text, &["Service fee", "2,5"]);
    says_all(&text, &["Text for invoice", "partner 2"]);
    assert!(
        !text.contains(&fee_text),
        "the value is quoted short: {text}"
    );
    // Reported once, not on every run.
    env.run(&["reconcile"]).assert_code(0);
    // Checkout is refused with the field's name (78).
    env.create_invoice(&["--customer", "42", "--proforma", "201"])
        .assert_code(78)
        .assert_stderr_contains("Service fee");
    env.create_invoice(&["--customer", "77", "--refill", "10"])
        .assert_code(78)
        .assert_stderr_contains("Text for invoice");
    // doctor lists both.
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains("Service fee") && doctor.stdout.contains("Text for invoice"),
        "{doctor:?}"
    );
    // Fixed, then broken again: reported again.
    env.with_modules_list_ini(&ini("2.5", "Partner fee"));
    env.run(&["reconcile"]).assert_code(0);
    env.with_modules_list_ini(&ini("2,5", "Partner fee"));
    env.run(&["reconcile"]).assert_code(1);
}

/// Item 1: the payment method and the statement grouping are the checkout's, not today's.
#[test]
fn settlement_follows_the_invoice_not_todays_settings() {
    let env = paired();
    env.splynx
        .add_payment_method(json!({"id": 9, "name": "Other", "is_active": "1"}));
    let id = env.create_invoice_101();
    env.write_config(
        &(env
            .default_config()
            .replace("payment_method_id = 7", "payment_method_id = 9")
            + "\n[statements]\ngroup = \"day\"\n"),
    );
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    let payment = &env.payments_with_receipt(&id)[0];
    assert_eq!(payment["payment_type"].as_i64(), Some(7), "{payment}");
    let titles: Vec<String> = env
        .splynx
        .statements()
        .iter()
        .map(|s| s["title"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(titles.len(), 1);
    assert_eq!(
        titles[0].matches('/').count(),
        1,
        "grouped by month: {titles:?}"
    );
}

fn with_fee_percent(env: &Env, percent: &str) {
    env.write_config(&format!(
        "{}\n[fee]\npercent = \"{percent}\"\nvat_percent = \"20\"\n",
        env.default_config()
    ));
}

/// What the pay window shows for invoice 101 (`--check`).
fn check_101(env: &Env) -> crate::util::Run {
    env.create_invoice(&["--customer", "42", "--invoice", "101", "--check"])
}

/// Checkout Now for invoice 101, with the total the window showed.
fn pay_101(env: &Env, shown: &str) -> crate::util::Run {
    env.create_invoice(&[
        "--customer",
        "42",
        "--invoice",
        "101",
        "--expect-total",
        shown,
    ])
}

/// Item 3: the customer pays what the page showed; a fee changed in between neither
/// charges another amount nor opens a second payable invoice.
#[test]
fn the_customer_pays_what_the_page_showed() {
    let env = paired();
    with_fee_percent(&env, "2");
    let shown = check_101(&env);
    assert_eq!(shown.json()["price"], "52.85");
    let first = bitpay_id(&pay_101(&env, "52.85"));
    // The admin raises the fee while the first invoice is still open.
    with_fee_percent(&env, "3");
    let shown = check_101(&env);
    assert_eq!(
        shown.json()["price"],
        "52.85",
        "the open invoice is what is shown"
    );
    let again = pay_101(&env, "52.85");
    assert_eq!(bitpay_id(&again), first);
    assert_eq!(again.json()["reused"], true);
    assert_eq!(env.bitpay.invoice_count(), 1);
    // Once it expired, a new one is priced with today's fee, and only for what was shown.
    env.bitpay.expire(&first);
    pay_101(&env, "52.85")
        .assert_code(65)
        .assert_stderr_contains("The amount changed");
    assert_eq!(env.bitpay.invoice_count(), 1, "nothing was created");
    let shown = check_101(&env);
    assert_eq!(shown.json()["price"], "53.47");
    let second = bitpay_id(&pay_101(&env, "53.47"));
    // Paid at BitPay: coming back shows that, not a button to pay again.
    env.bitpay.set_status(&second, "paid", None);
    env.deliver_webhook(&second, true).assert_code(0);
    check_101(&env)
        .assert_code(65)
        .assert_stderr_contains("already in progress");
}

/// Item 8: a direct link never hands out the portal's BitPay invoice (which carries the
/// customer's name and returns to the portal), nor opens a second one beside it.
#[test]
fn a_direct_link_never_hands_out_the_portal_invoice() {
    let env = paired();
    env.write_config(&format!(
        "{}\n[direct_pay]\nenabled = true\n",
        env.default_config()
    ));
    let portal = env.create_invoice_101();
    for args in [
        vec!["--json", "direct-pay", "--invoice", "101"],
        vec!["--json", "direct-pay", "--invoice", "101", "--check"],
    ] {
        let run = env.run(&args);
        run.assert_code(65)
            .assert_stderr_contains("already open until");
        assert!(!run.stdout.contains(&portal), "{run:?}");
        assert!(!run.stderr.contains(&portal), "{run:?}");
    }
    assert_eq!(env.bitpay.invoice_count(), 1);
    // Once it expired (BitPay says so by webhook) the link gets its own, without the
    // customer's name.
    env.bitpay.expire(&portal);
    env.deliver_webhook(&portal, true).assert_code(0);
    let run = env.run(&["--json", "direct-pay", "--invoice", "101"]);
    let link = bitpay_id(&run);
    assert_ne!(link, portal);
    assert_eq!(env.bitpay.invoice(&link).unwrap()["buyer"]["name"], "");
    // And the portal does not get the link's.
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(65)
        .assert_stderr_contains("already open until");
}

/// Item 5: a payment statement POST that Splynx commits after we gave up waiting is looked
/// up during the grace period, never created a second time.
#[test]
fn a_slow_statement_create_is_not_repeated() {
    let env = paired();
    let faults = env.splynx.faults();
    faults.set_filter(Some("admin/finance/bank-statements"), Some("POST"));
    // Committed 6 s after it arrived; the add-on waits 2 s (timeout_seconds).
    faults.commit_late_next(1, std::time::Duration::from_secs(6));
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(env.booking_state(&id, "statement"), "pending");
    // The next run, before Splynx has committed it: looked up, not created again.
    let run = env.run(&["--json", "reconcile"]);
    assert!(run.stderr.contains("only looked up"), "{run:?}");
    assert!(env.splynx.statements().is_empty(), "{run:?}");
    crate::util::wait_until("Splynx committed the statement", || {
        !env.splynx.statements().is_empty()
    });
    faults.clear();
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(
        env.splynx.statements().len(),
        1,
        "one statement for the month"
    );
    assert_eq!(env.booking_state(&id, "statement"), "done");
    assert_eq!(env.splynx.statement_records().len(), 1);
}

/// The rows of every table the add-on keeps (caches of Splynx's nonce and access token
/// aside), to see that a command changed nothing.
fn state_rows(env: &Env) -> Vec<String> {
    let db = env.db();
    let tables: Vec<String> = {
        let mut stmt = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('splynx_nonce', 'splynx_token') ORDER BY name")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    let mut all = Vec::new();
    for table in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..columns)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        all.extend(rows.map(|r| format!("{table}: {}", r.unwrap())));
    }
    all
}

/// Item 13: no read-only command and no dry run creates or changes anything.
#[test]
fn looking_and_dry_runs_write_nothing() {
    let env = Env::new();
    let read_only: [&[&str]; 9] = [
        &["status"],
        &["show", "nothing-here"],
        &["settings"],
        &["config"],
        &["doctor"],
        &["reconcile", "--dry-run"],
        &["prune", "--dry-run"],
        &["--json", "doctor"],
        &["--json", "reconcile", "--dry-run"],
    ];
    for args in read_only {
        let run = env.run(args);
        assert!(
            !env.data_dir().exists(),
            "{args:?} created {}: {run:?}",
            env.data_dir().display()
        );
    }
    // With state: a paid-late invoice held, an open one, a finding not yet reported.
    env.pair();
    let late = env.create_invoice_101();
    env.bitpay.set_status(&late, "expired", Some("paidLate"));
    env.deliver_webhook(&late, true).assert_code(0);
    let open = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&open, "confirmed", None);
    let before = state_rows(&env);
    let files = |env: &Env| {
        let mut names: Vec<String> = std::fs::read_dir(env.data_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
            .collect();
        names.sort();
        names
    };
    let files_before = files(&env);
    for args in read_only {
        env.run(args);
        assert_eq!(state_rows(&env), before, "{args:?} changed the state");
        assert_eq!(files(&env), files_before, "{args:?} added files");
    }
    // Nothing was written to the ISP's books either.
    assert!(env.payments_with_receipt(&open).is_empty());
    let writes: Vec<String> = env
        .splynx
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && !r.path().contains("auth/tokens"))
        .map(|r| r.path().to_string())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

/// Item 10: a file saved with a byte-order mark, an inline comment, an escaped quote and
/// trailing zeros reads as PHP reads it; a huge one is refused with its size.
#[test]
fn the_modules_list_file_as_splynx_writes_it() {
    let env = paired();
    env.with_modules_list_ini(
        "\u{feff}; <?php exit(); ?>\r\n[common]\r\nservice_fee = \"2.50000\" ; typed by hand\r\nfee_message = \"The \\\"crypto\\\" fee\"\r\n",
    );
    let check = env.create_invoice(&["--customer", "42", "--invoice", "101", "--check"]);
    check.assert_code(0);
    let json = check.json();
    assert_eq!(json["fee"]["percent"], "2.5", "{json}");
    assert_eq!(json["fee"]["label"], "The \"crypto\" fee", "{json}");
    let id = env.create_invoice_101();
    env.with_modules_list_ini(&format!(
        "[common]\nfee_message = \"{}\"\n",
        "x".repeat(300 * 1024)
    ));
    // Unreadable, it is as if absent: the credit goes on (the config file holds the API
    // key), checkout is refused with a bounded message.
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    let run = env.create_invoice(&["--customer", "42", "--proforma", "201"]);
    run.assert_code(78).assert_stderr_contains("larger than");
    assert!(
        run.stderr.len() < 2000,
        "bounded: {} bytes",
        run.stderr.len()
    );
}

/// Item 12: an error quotes at most a short prefix of a bad value, and never a configured
/// secret pasted into the wrong field.
#[test]
fn errors_are_bounded_and_never_echo_a_secret() {
    let env = paired();
    let secret = crate::util::API_SECRET;
    env.with_modules_list_ini(&format!(
        "[common]\npayment_method_id = \"{secret}\"\ncurrency = \"{}\"\n",
        "Q".repeat(200 * 1024)
    ));
    for args in [
        vec!["config"],
        vec!["--json", "config"],
        vec!["settings"],
        vec!["doctor"],
        vec!["create-invoice", "--customer", "42", "--invoice", "101"],
    ] {
        let run = env.run(&args);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains(secret), "{args:?} printed the secret: {all}");
        assert!(all.len() < 20_000, "{args:?} printed {} bytes", all.len());
    }
    let config = env.run(&["--json", "config"]).json();
    let problems = config["problems"].to_string();
    says_all(&problems, &["Payment method", "(redacted)"]);
    says_all(&problems, &["Currency", "QQQ…"]);
}

/// Item 14: every problem at once, each with its fix; `config` shows the values and marks
/// the wrong ones instead of refusing to run.
#[test]
fn every_config_problem_at_once() {
    let env = Env::new();
    let example = include_str!("../../examples/config.toml")
        .replace(
            "# url = \"https://splynx.example.com\"",
            "url = \"https://splynx.example.com\"",
        )
        .replace("# api_key = ", "api_key = ")
        .replace("# api_secret = ", "api_secret = ")
        .replace("# payment_method_id = 7", "payment_method_id = 7")
        .replace(
            "data_dir = \"/var/lib/splynx-bitpay\"",
            &format!("data_dir = \"{}\"", env.data_dir().display()),
        )
        .replace("# modules_list = \"auto\"", "modules_list = \"off\"");
    env.write_config(&example);
    let run = env.run(&["status"]);
    run.assert_code(78);
    for key in ["splynx.url", "splynx.api_key", "splynx.api_secret"] {
        assert_eq!(run.stderr.matches(key).count(), 1, "{key} once: {run:?}");
    }
    assert!(run.stderr.contains("3 settings need fixing"), "{run:?}");
    let config = env.run(&["--json", "config"]);
    config.assert_code(0);
    let json = config.json();
    assert_eq!(json["problems"].as_array().unwrap().len(), 3, "{json}");
    let url = json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "splynx.url")
        .unwrap();
    assert!(
        url["problem"].as_str().unwrap().contains("placeholder"),
        "{url}"
    );
    let human = env.run(&["config"]);
    human.assert_code(0);
    assert!(human.stdout.contains("WRONG"), "{human:?}");
}

/// Item 16: a top-up reads as one in `show`, and BitPay's checkout page shows no customer
/// number for it.
#[test]
fn a_top_up_reads_as_one() {
    let env = paired();
    let id = bitpay_id(&env.create_invoice(&["--customer", "42", "--refill", "12.00"]));
    let invoice = env.bitpay.invoice(&id).unwrap();
    assert_eq!(invoice["itemDesc"], "Balance top-up", "{invoice}");
    let shown = env.run(&["show", &id]);
    assert!(
        shown
            .stdout
            .contains("document:   balance top-up of customer 42"),
        "{shown:?}"
    );
    assert!(!shown.stdout.contains("(id -)"), "{shown:?}");
}
