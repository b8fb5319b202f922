//! No secret (Splynx API secret, BitPay token, private key) ever reaches stdout, stderr or
//! the journal, at any verbosity, with or without `--json`.

use crate::util::{Env, Run, API_SECRET};

fn secrets(env: &Env) -> Vec<String> {
    let db = env.db();
    let mut found = vec![API_SECRET.to_string()];
    let mut tokens = db
        .prepare("SELECT token FROM tokens UNION SELECT token FROM invoices")
        .unwrap();
    found.extend(
        tokens
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap),
    );
    // Per-invoice resource tokens BitPay returns are secrets too.
    for invoice in env.bitpay.invoices() {
        if let Some(token) = invoice["token"].as_str() {
            found.push(token.to_string());
        }
    }
    let key = std::fs::read_to_string(env.data_dir().join("bitpay.key")).unwrap();
    found.push(key.trim().to_string());
    found
}

#[test]
fn no_secret_in_any_output_or_the_journal() {
    let env = Env::new();
    let mut runs: Vec<Run> = Vec::new();
    let code = env.bitpay.create_pairing_code();
    for verbosity in ["-vvv", "-v", "-q"] {
        for json in [false, true] {
            let mut base = vec![verbosity];
            if json {
                base.push("--json");
            }
            let with = |args: &[&str]| -> Vec<String> {
                base.iter()
                    .chain(args.iter())
                    .map(|s| s.to_string())
                    .collect()
            };
            let run = |args: Vec<String>, stdin: &[u8]| {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                env.run_with_stdin(&args, stdin)
            };
            if runs.is_empty() {
                runs.push(run(with(&["pair", &code]), b""));
                runs.push(run(
                    with(&["pair", "--request", "--facade", "merchant"]),
                    b"",
                ));
            }
            runs.push(run(with(&["status"]), b""));
            let created = run(
                with(&["create-invoice", "--customer", "42", "--invoice", "101"]),
                b"",
            );
            runs.push(created);
            let id = env.bitpay.invoices()[0]["id"].as_str().unwrap().to_string();
            env.bitpay.set_status(&id, "confirmed", None);
            let body = env.bitpay.webhook_body(&id, true);
            let signature = env.bitpay.webhook_signature(&body, &id);
            runs.push(run(
                with(&["handle-ipn", "--signature", &signature]),
                body.as_bytes(),
            ));
            runs.push(run(with(&["handle-ipn"]), b"{not json"));
            runs.push(run(
                with(&["create-invoice", "--customer", "42", "--refill", "7.00"]),
                b"",
            ));
            runs.push(run(with(&["reconcile", "--dry-run"]), b""));
            runs.push(run(with(&["reconcile"]), b""));
            runs.push(run(with(&["show", &id]), b""));
            runs.push(run(
                with(&["create-invoice", "--customer", "43", "--invoice", "101"]),
                b"",
            ));
        }
    }
    // Failure paths print too: a wrong Splynx secret and an unreachable BitPay.
    env.bitpay.faults().fail_next(5, 503);
    runs.push(env.run(&["-vvv", "reconcile"]));
    runs.push(env.run(&["-vvv", "unpair"]));

    let secrets = secrets(&env);
    assert!(secrets.len() >= 5, "{secrets:?}");
    let journal: Vec<String> = journal_text(&env).lines().map(str::to_string).collect();
    assert!(journal.len() > 10);
    assert!(
        runs.iter().any(|r| r.stderr.contains("BitPay GET")),
        "-vvv shows requests"
    );
    for secret in &secrets {
        for run in &runs {
            assert!(
                !run.stdout.contains(secret.as_str()),
                "secret in stdout: {run:?}"
            );
            assert!(
                !run.stderr.contains(secret.as_str()),
                "secret in stderr: {run:?}"
            );
        }
        for entry in &journal {
            assert!(
                !entry.contains(secret.as_str()),
                "secret in the journal: {entry}"
            );
        }
    }
}

/// Every journal row as one text, for secret searches.
fn journal_text(env: &Env) -> String {
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT coalesce(bitpay_id,'') || kind || summary || coalesce(detail,'') FROM journal",
        )
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

/// A dropped connection makes the HTTP library describe the request with its URL, and
/// BitPay's URLs carry `?token=`: no such text may reach any output.
#[test]
fn dropped_connections_never_leak_a_token() {
    let env = Env::new();
    env.pair();
    env.pair_merchant();
    let id = env.create_invoice_101();
    let mut runs: Vec<Run> = Vec::new();
    let faults = env.bitpay.faults();
    let mut dropped = |path: &str, method: &str, run: &dyn Fn() -> Run| {
        faults.set_filter(Some(path), Some(method));
        faults.drop_next(1);
        let r = run();
        assert_eq!(faults.spec().drop_next, None, "the fault fired: {r:?}");
        faults.clear();
        runs.push(r);
    };
    // GET /invoices/{id}?token=: the webhook's fetch.
    dropped(&format!("/invoices/{id}"), "GET", &|| {
        let body = env.bitpay.webhook_body(&id, true);
        let r = env.run_with_stdin(&["-vv", "handle-ipn"], body.as_bytes());
        r.assert_code(75).assert_stderr_contains("unreachable");
        r
    });
    // GET /invoices/guid/{guid}?token=: recovering a create whose reply never came.
    faults.set_filter(Some("/invoices"), Some("POST"));
    faults.hang_next(1);
    env.create_invoice(&["--customer", "42", "--proforma", "201"])
        .assert_code(75);
    faults.clear();
    dropped("/invoices/guid/", "GET", &|| {
        let r = env.run(&["-vv", "reconcile"]);
        assert_ne!(r.code, 0, "{r:?}");
        r
    });
    // GET /invoices?token=&dateStart=: listing for reconcile --since.
    dropped("dateStart", "GET", &|| {
        let r = env.run(&["-vv", "reconcile", "--since", "2026-01-01"]);
        assert_ne!(r.code, 0, "{r:?}");
        r
    });
    // GET /tokens: the pending approvals `status` asks about.
    env.run(&["pair", "--request", "--facade", "pos"])
        .assert_code(0);
    dropped("/tokens", "GET", &|| env.run(&["-vv", "status"]));
    runs.push(env.run(&["show", &id]));
    runs.push(env.run(&["--json", "show", &id]));

    let journal = journal_text(&env);
    assert!(journal.contains("fetch failed"), "{journal}");
    assert!(
        runs.iter().any(|r| r.stderr.contains("unreachable")),
        "the drops were reported: {runs:#?}"
    );
    for secret in secrets(&env) {
        for run in &runs {
            assert!(!run.stdout.contains(&secret), "secret in stdout: {run:?}");
            assert!(!run.stderr.contains(&secret), "secret in stderr: {run:?}");
        }
        assert!(
            !journal.contains(&secret),
            "secret in the journal: {journal}"
        );
    }
}
