//! What goes wrong on a real billing server: full or read-only disks, broken databases,
//! rate limits and outages, a clock that jumps back, settings that change between runs.

use std::time::Duration;

use serde_json::json;

use crate::util::{run_binary, Env, Run};

fn paired() -> Env {
    let env = Env::new();
    env.pair();
    env
}

/// Runs the binary in a private mount namespace after `setup` (a shell snippet that may
/// remount `$DATA`), so the rest of the machine never sees the broken disk.
fn run_with_broken_disk(env: &Env, setup: &str, args: &[&str], stdin: &[u8]) -> Run {
    let script = format!(
        "set -e; DATA='{}'; {setup}; exec \"$0\" \"$@\"",
        env.data_dir().display()
    );
    let mut full_args = vec![
        "-m",
        "sh",
        "-c",
        script.as_str(),
        crate::util::binary(),
        "--config",
    ];
    let config = env.config_path().display().to_string();
    full_args.push(&config);
    full_args.extend_from_slice(args);
    let mut child = std::process::Command::new("unshare")
        .args(&full_args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs as root");
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

const READ_ONLY: &str = r#"mount --bind "$DATA" "$DATA"; mount -o remount,bind,ro "$DATA""#;

/// A copy of the data on a tiny tmpfs, filled to the last byte.
const DISK_FULL: &str = r#"COPY=$(mktemp -d); cp -a "$DATA"/. "$COPY"/;
    mount -t tmpfs -o size=4m tmpfs "$DATA"; cp -a "$COPY"/. "$DATA"/; rm -rf "$COPY";
    dd if=/dev/zero of="$DATA/filler" bs=4k >/dev/null 2>&1 || true"#;

fn confirmed_invoice(env: &Env) -> (String, String) {
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    let body = env.bitpay.webhook_body(&id, true);
    (id, body)
}

#[test]
fn read_only_data_directory_during_settlement() {
    let env = paired();
    let (id, body) = confirmed_invoice(&env);
    let run = run_with_broken_disk(&env, READ_ONLY, &["handle-ipn"], body.as_bytes());
    run.assert_code(75);
    assert_eq!(
        env.splynx.payment_count(),
        0,
        "nothing credited without a journal"
    );
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(0);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
}

#[test]
fn full_disk_during_settlement() {
    let env = paired();
    let (id, body) = confirmed_invoice(&env);
    let run = run_with_broken_disk(&env, DISK_FULL, &["handle-ipn"], body.as_bytes());
    run.assert_code(75);
    assert_eq!(env.splynx.payment_count(), 0);
    // Reconcile on a full disk cannot record anything either: temporary, nothing credited.
    run_with_broken_disk(&env, DISK_FULL, &["reconcile"], b"").assert_code(75);
    assert_eq!(env.splynx.payment_count(), 0);
    env.run(&["reconcile"]).assert_code(0);
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
}

#[test]
fn corrupt_or_foreign_database_is_refused_clearly() {
    let env = paired();
    let db = env.data_dir().join("state.db");
    for wal in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(env.data_dir().join(wal));
    }
    std::fs::write(&db, vec![0x42u8; 8192]).unwrap();
    let run = env.run(&["status"]);
    run.assert_code(78).assert_stderr_contains("state.db");
    assert!(run.stderr.contains("not a database"), "{run:?}");

    // A SQLite file from something else entirely (a newer schema than we know).
    std::fs::remove_file(&db).unwrap();
    let foreign = rusqlite::Connection::open(&db).unwrap();
    foreign
        .execute_batch("CREATE TABLE other (x); PRAGMA user_version = 42;")
        .unwrap();
    drop(foreign);
    env.run(&["status"])
        .assert_code(78)
        .assert_stderr_contains("newer than this program knows");
}

#[test]
fn bitpay_rate_limits_and_outages_back_off_then_finish() {
    let env = paired();
    let (id, _) = confirmed_invoice(&env);
    // Two 429s: the signed GET backs off and succeeds within the same run.
    let faults = env.bitpay.faults();
    faults.set_filter(Some("/invoices/"), Some("GET"));
    faults.fail_next(2, 429);
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);

    let second = env
        .create_invoice(&["--customer", "42", "--proforma", "201"])
        .json();
    let second = second["bitpay_invoice_id"].as_str().unwrap().to_string();
    env.bitpay.set_status(&second, "complete", None);
    for latency in [Duration::ZERO, Duration::from_millis(300)] {
        faults.latency(latency);
        faults.fail_next(50, 503);
        let run = env.run(&["--json", "reconcile"]);
        run.assert_code(75);
        // The open invoice, and the credited one still watched until BitPay says complete.
        assert_eq!(run.json()["errors"], 2);
        env.run_with_stdin(
            &["handle-ipn"],
            env.bitpay.webhook_body(&second, true).as_bytes(),
        )
        .assert_code(75);
    }
    faults.clear();
    env.run(&["reconcile"]).assert_code(0);
    assert_eq!(env.payments_with_receipt(&second).len(), 1);
    assert_eq!(env.splynx.payment_count(), 2);
}

#[test]
fn clock_jumping_backwards_keeps_nonces_increasing() {
    let env = paired();
    // Signature auth uses a nonce on every request (token auth only when renewing).
    env.write_config(&crate::util::with_splynx_auth(
        &env.default_config(),
        "signature",
    ));
    env.splynx.set_check_nonce(true);
    env.create_invoice(&["--check", "--customer", "42", "--invoice", "101"])
        .assert_code(0);
    // Pretend the last nonce was taken by a clock an hour ahead (the clock has since
    // been set back): every new nonce must still be greater.
    let future = env.splynx.last_nonce().unwrap() as i64 + 360_000;
    env.db()
        .execute("UPDATE splynx_nonce SET last = ?1", [future])
        .unwrap();
    for _ in 0..3 {
        env.create_invoice(&["--check", "--customer", "42", "--invoice", "101"])
            .assert_code(0);
    }
    assert_eq!(env.splynx.auth_failures(), 0);
    assert!(env.splynx.last_nonce().unwrap() as i64 > future);
}

#[test]
fn settings_changed_between_runs_keep_stored_records_valid() {
    let env = paired();
    env.splynx
        .add_payment_method(json!({"id": 8, "name": "Crypto", "is_active": "1"}));
    let id = env.create_invoice_101();
    let refill = env
        .create_invoice(&["--customer", "42", "--refill", "4000.00"])
        .json();
    let refill = refill["bitpay_invoice_id"].as_str().unwrap().to_string();
    // The admin switches payment method, narrows the refill bounds and the speed.
    env.write_config(
        &env.default_config()
            .replace("payment_method_id = 7", "payment_method_id = 8")
            .replace("max = \"5000.00\"", "max = \"100.00\"")
            .replace(
                "transaction_speed = \"medium\"",
                "transaction_speed = \"low\"",
            ),
    );
    for invoice in [&id, &refill] {
        env.bitpay.set_status(invoice, "confirmed", None);
        env.deliver_webhook(invoice, true).assert_code(0);
    }
    let payments = env.splynx.payments();
    assert_eq!(payments.len(), 2);
    // The payment method is the one the checkout decided (#20: money follows the
    // invoice, not today's settings).
    assert!(payments
        .iter()
        .all(|p| p["payment_type"].to_string().trim_matches('"') == "7"));
    let refill_payment = &env.payments_with_receipt(&refill)[0];
    assert!(
        refill_payment["amount"]
            .as_str()
            .unwrap()
            .starts_with("4000.00"),
        "the stored price, not today's bounds"
    );
}

#[test]
fn a_slow_bitpay_that_never_answers_is_temporary() {
    let env = paired();
    let (id, body) = confirmed_invoice(&env);
    env.bitpay.faults().hang_next(1);
    let started = std::time::Instant::now();
    env.run_with_stdin(&["handle-ipn"], body.as_bytes())
        .assert_code(75)
        .assert_stderr_contains("unreachable");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(env.splynx.payment_count(), 0);
    run_binary(&env.config_path(), &["reconcile"], b"").assert_code(0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
}

#[test]
fn splynx_access_token_is_shared_and_renewed() {
    let env = paired();
    env.splynx.set_check_nonce(true);
    for i in 0..3 {
        env.create_invoice(&["--customer", "42", "--refill", &format!("{}.00", 3 + i)])
            .assert_code(0);
    }
    assert_eq!(
        env.splynx.access_tokens_issued(),
        1,
        "one token for every process"
    );
    let signed_calls = |env: &Env| {
        env.splynx
            .requests()
            .iter()
            .filter(|r| {
                r.header("authorization")
                    .is_some_and(|a| a.contains("signature="))
            })
            .count()
    };
    assert_eq!(
        signed_calls(&env),
        0,
        "the token call signs its body, not a header"
    );
    // Splynx expires it (30 minutes, a restart, a revoked key): the next call renews it.
    env.splynx.expire_access_tokens();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    assert_eq!(env.splynx.access_tokens_issued(), 2);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    assert_eq!(
        env.splynx.auth_failures(),
        1,
        "only the expired token, once"
    );
    // A changed secret is noticed at once, not when the old token expires.
    env.write_config(
        &env.default_config()
            .replace(crate::util::API_SECRET, "rotated-secret"),
    );
    env.create_invoice(&["--check", "--customer", "42", "--invoice", "101"])
        .assert_code(78)
        .assert_stderr_contains("splynx.api_secret");
}

#[test]
fn signature_auth_still_works_one_request_at_a_time() {
    let env = paired();
    env.splynx.set_check_nonce(true);
    env.write_config(&crate::util::with_splynx_auth(
        &env.default_config(),
        "signature",
    ));
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    let body = env.bitpay.webhook_body(&id, true);
    let config = env.config_path();
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                run_binary(&config, &["handle-ipn"], body.as_bytes()).assert_code(0);
            });
        }
    });
    assert_eq!(env.splynx.access_tokens_issued(), 0);
    assert_eq!(env.splynx.auth_failures(), 0);
    assert_eq!(env.payments_with_receipt(&id).len(), 1);
    env.write_config(&crate::util::with_splynx_auth(
        &env.default_config(),
        "hmac",
    ));
    env.run(&["status"])
        .assert_code(78)
        .assert_stderr_contains("splynx.auth");
}
