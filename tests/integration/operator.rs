//! The operator's tools (issue 24): `metrics` and the file reconcile writes for node
//! exporter, the example alert rules, and `replay`.

use std::collections::BTreeMap;

use serde_json::json;

use crate::util::Env;

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("a sample is `name value`");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn now_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

#[test]
fn the_metrics_file_follows_a_webhook_a_held_record_and_a_failing_reconcile() {
    let env = Env::new();
    env.pair();
    let file = env.data_dir().with_file_name("splynx_bitpay.prom");
    env.write_config(&format!(
        "{}\n[metrics]\ntextfile = \"{}\"\n",
        env.default_config(),
        file.display()
    ));
    assert!(!file.exists());
    env.run(&["reconcile"]).assert_code(0);
    let first = samples(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(first["splynx_bitpay_credentials_valid"], 1.0);
    assert_eq!(first["splynx_bitpay_reconcile_errors"], 0.0);
    assert!(!first.contains_key("splynx_bitpay_last_webhook_timestamp_seconds"));
    let succeeded = first["splynx_bitpay_reconcile_last_success_timestamp_seconds"];
    assert!((now_seconds() - succeeded).abs() < 60.0, "{succeeded}");

    // A webhook credits invoice 101; another invoice's price was tampered with: held.
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "complete", None);
    env.deliver_webhook(&id, true).assert_code(0);
    let held = env.invoice_id(&["--customer", "42", "--proforma", "201"]);
    env.bitpay.set_status(&held, "confirmed", None);
    env.bitpay.set_field(&held, "price", json!(0.01));
    env.deliver_webhook(&held, true).assert_code(0);
    // Its finding is reported (exit 1: the admin must look) once.
    env.run(&["reconcile"]).assert_code(1);
    // An open one, and BitPay failing every read: reconcile fails.
    let open = env.invoice_id(&["--customer", "43", "--invoice", "103"]);
    let faults = env.bitpay.faults();
    faults.set_filter(Some(&format!("/invoices/{open}")), Some("GET"));
    faults.fail_next(100, 503);
    env.run(&["reconcile"]).assert_code(75);

    let text = std::fs::read_to_string(&file).unwrap();
    let after = samples(&text);
    assert_eq!(
        after["splynx_bitpay_invoices{state=\"credited\"}"], 1.0,
        "{text}"
    );
    assert_eq!(after["splynx_bitpay_invoices{state=\"review\"}"], 1.0);
    assert_eq!(after["splynx_bitpay_invoices{state=\"open\"}"], 1.0);
    assert_eq!(after["splynx_bitpay_held_records{kind=\"review\"}"], 1.0);
    let webhook = after["splynx_bitpay_last_webhook_timestamp_seconds"];
    assert!((now_seconds() - webhook).abs() < 60.0, "{webhook}");
    assert!(
        after["splynx_bitpay_oldest_unsettled_invoice_created_timestamp_seconds"] <= now_seconds()
    );
    assert_eq!(after["splynx_bitpay_reconcile_exit_status"], 75.0);
    assert!(after["splynx_bitpay_reconcile_errors"] >= 1.0);
    assert_eq!(
        after["splynx_bitpay_reconcile_last_success_timestamp_seconds"], succeeded,
        "a failed run is not a success"
    );
    assert!(after["splynx_bitpay_reconcile_last_run_timestamp_seconds"] >= succeeded);
    // `metrics` prints the same state.
    let printed = samples(&env.run(&["metrics"]).stdout);
    assert_eq!(printed["splynx_bitpay_held_records{kind=\"review\"}"], 1.0);
    assert_eq!(printed["splynx_bitpay_reconcile_exit_status"], 75.0);
    if let Some(promtool) = promtool() {
        let check = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
    }

    // Zabbix reads the same from `status --json`.
    let health = &env.run(&["--json", "status"]).json()["health"];
    assert_eq!(health["held_records"]["review"], 1, "{health}");
    assert_eq!(health["reconcile_exit_status"], 75);
    assert_eq!(health["credentials_valid"], true);
    assert_eq!(
        health["reconcile_last_success_timestamp"].as_f64().unwrap(),
        succeeded.floor()
    );

    // The merchant revoked the token in the dashboard: BitPay refuses it.
    faults.clear();
    for table in ["tokens", "invoices"] {
        env.db()
            .execute(
                &format!("UPDATE {table} SET token = 'revoked-token-value'"),
                [],
            )
            .unwrap();
    }
    env.run(&["reconcile"]).assert_code(1);
    let revoked = samples(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(revoked["splynx_bitpay_credentials_valid"], 0.0);
}

/// Debian's promtool (package prometheus), when installed (`.ci/run` installs it).
fn promtool() -> Option<&'static str> {
    let path = "/usr/bin/promtool";
    std::path::Path::new(path).exists().then_some(path)
}

#[test]
fn the_example_alert_rules_load() {
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/prometheus/splynx-bitpay.rules.yml"
    );
    let text = std::fs::read_to_string(rules).unwrap();
    // Every metric the rules use is one the add-on writes.
    let written = [
        "splynx_bitpay_invoices",
        "splynx_bitpay_last_webhook_timestamp_seconds",
        "splynx_bitpay_held_records",
        "splynx_bitpay_reconcile_exit_status",
        "splynx_bitpay_reconcile_errors",
        "splynx_bitpay_reconcile_last_success_timestamp_seconds",
        "splynx_bitpay_credentials_valid",
        "splynx_bitpay_audit_differences",
    ];
    let used: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("splynx_bitpay_"))
        .collect();
    assert!(used.len() >= 8);
    for name in used {
        assert!(written.contains(&name), "{name} is not a metric of ours");
    }
    match promtool() {
        Some(promtool) => {
            let check = std::process::Command::new(promtool)
                .args(["check", "rules", rules])
                .output()
                .unwrap();
            assert!(check.status.success(), "{check:?}");
            assert!(String::from_utf8_lossy(&check.stdout).contains("SUCCESS: 6 rules found"));
        }
        None => {
            // Without promtool: the YAML's shape, read by hand.
            let alerts = text
                .lines()
                .filter(|l| l.trim_start().starts_with("- alert: "))
                .count();
            let exprs = text
                .lines()
                .filter(|l| l.trim_start().starts_with("expr:"))
                .count();
            assert_eq!((alerts, exprs), (6, 6));
        }
    }
}

fn replay(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "replay"];
    all.extend_from_slice(args);
    let run = env.run(&all);
    run.assert_code(0);
    run.json()
}

#[test]
fn replay_shows_then_applies_a_missed_webhook_once_and_leaves_a_credit_alone() {
    let env = Env::new();
    env.pair();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "complete", None);
    // The webhook never came. Without --apply: the decision and its steps, nothing done.
    let shown = replay(&env, &[&id]);
    assert_eq!(shown["decision"], "credit", "{shown}");
    assert_eq!(shown["server_says"], "complete");
    assert_eq!(shown["settlement_before"], "open");
    assert_eq!(shown["applied"], false);
    let steps = shown["steps"].to_string();
    assert!(steps.contains("51.61 USD for customer 42"), "{steps}");
    assert!(env.payments_with_receipt(&id).is_empty());
    let text = env.run(&["replay", &id]).stdout;
    assert!(
        text.contains("Outcome: would be credited (dry run"),
        "{text}"
    );
    // --apply, twice and beside a late webhook: one payment.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            env.run(&["replay", &id, "--apply"]).assert_code(0);
        });
        scope.spawn(|| {
            env.deliver_webhook(&id, true).assert_code(0);
        });
    });
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    let again = replay(&env, &[&id, "--apply"]);
    assert_eq!(again["decision"], "already credited", "{again}");
    assert_eq!(again["applied"], true);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    let credited = replay(&env, &[&id]);
    assert!(credited["steps"][0]
        .as_str()
        .unwrap()
        .starts_with("nothing to credit: Splynx payment"));

    // A stored webhook, replayed by its number: its invoice is fetched afresh.
    let second = env.invoice_id(&["--customer", "42", "--proforma", "201"]);
    env.deliver_webhook(&second, true).assert_code(0);
    env.bitpay.set_status(&second, "confirmed", None);
    let webhooks = env.run(&["--json", "status"]).json()["recent_webhooks"].clone();
    let number = webhooks
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["bitpay_invoice_id"] == second.as_str())
        .unwrap()["id"]
        .to_string();
    let from_webhook = replay(&env, &["--webhook", &number]);
    assert_eq!(from_webhook["invoice_id"], second.as_str());
    assert_eq!(from_webhook["decision"], "credit");
    assert!(from_webhook["webhook"]
        .as_str()
        .unwrap()
        .starts_with(&format!("webhook {number}, received ")));
    replay(&env, &["--webhook", &number, "--apply"]);
    assert_eq!(env.payments_with_receipt(&second).len(), 1);

    // Ids with no record: unknown, or another integration's; bad ones are refused.
    assert_eq!(replay(&env, &["NoSuchInvoice1"])["decision"], "unknown");
    let foreign = env
        .bitpay
        .create_foreign_invoice("woocommerce-12", "5.00", "USD");
    assert_eq!(replay(&env, &[&foreign, "--apply"])["decision"], "not ours");
    env.run(&["replay", "--webhook", "999999"])
        .assert_code(65)
        .assert_stderr_contains("not a webhook");
    env.run(&["replay", "../etc"]).assert_code(65);
    assert_eq!(env.splynx.payment_count(), 2);
}

#[test]
fn btcpay_replay_credits_a_missed_settlement_once_and_metrics_see_the_key() {
    let s = crate::btcpay::through_the_binary::connected();
    let id = crate::btcpay::through_the_binary::pay_invoice_101(&s);
    s.btcpay.set_status(&id, "Settled", None);
    let shown = replay(&s.env, &[&id]);
    assert_eq!(shown["decision"], "credit", "{shown}");
    assert!(s.env.payments_with_receipt(&id).is_empty());
    assert_eq!(replay(&s.env, &[&id, "--apply"])["outcome"], "credited");
    assert_eq!(
        replay(&s.env, &[&id, "--apply"])["decision"],
        "already credited"
    );
    assert_eq!(s.env.payments_with_receipt(&id).len(), 1);
    let metrics = samples(&s.env.run(&["metrics"]).stdout);
    assert_eq!(metrics["splynx_bitpay_credentials_valid"], 1.0);
    assert_eq!(metrics["splynx_bitpay_invoices{state=\"credited\"}"], 1.0);
}
