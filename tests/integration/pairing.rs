use std::os::unix::fs::PermissionsExt;

use crate::util::{Env, API_SECRET};

#[test]
fn pair_with_a_dashboard_code_then_status() {
    let env = Env::new();
    let code = env.bitpay.create_pairing_code();
    let run = env.run(&["pair", &code]);
    run.assert_code(0);
    assert!(run.stdout.contains("facade pos"), "{run:?}");
    assert!(run.stdout.contains("SIN T"), "{run:?}");
    assert!(
        run.stderr.is_empty(),
        "a successful run is quiet on stderr: {run:?}"
    );

    let key = env.data_dir().join("bitpay.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let status = env.run(&["--json", "status"]);
    status.assert_code(0);
    let json = status.json();
    assert_eq!(json["environment"], "test");
    assert_eq!(json["api_url"], env.bitpay.url());
    assert_eq!(json["paired"], serde_json::json!(["pos"]));
    assert!(json["sin"].as_str().unwrap().starts_with('T'));
    assert_eq!(json["pending_approvals"], serde_json::json!([]));

    // The token itself never appears; only a masked hint.
    let token: String = env
        .db()
        .query_row("SELECT token FROM tokens", [], |r| r.get(0))
        .unwrap();
    for out in [&status.stdout, &env.run(&["status"]).stdout] {
        assert!(!out.contains(&token), "token leaked: {out}");
        assert!(!out.contains(API_SECRET));
    }
    assert!(json["tokens"][0]["token"].as_str().unwrap().contains('…'));

    // The pairing request was unsigned and carried our SIN.
    let tokens_call = env
        .bitpay
        .requests()
        .into_iter()
        .find(|r| r.path() == "/tokens")
        .unwrap();
    assert_eq!(tokens_call.json().unwrap()["id"], json["sin"]);
    assert_eq!(tokens_call.json().unwrap()["pairingCode"], code.as_str());
}

#[test]
fn client_initiated_pairing_waits_for_approval() {
    let env = Env::new();
    let run = env.run(&["--json", "pair", "--request", "--facade", "merchant"]);
    run.assert_code(0);
    let json = run.json();
    let code = json["pairing_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 7);
    assert_eq!(
        json["approve_url"],
        format!("{}/dashboard/merchant/api-tokens", env.bitpay.url())
    );
    let human = env.run(&["pair", "--request"]);
    human.assert_code(0);
    assert!(
        human.stdout.contains("Pairing code: ")
            && human.stdout.contains("/dashboard/merchant/api-tokens"),
        "{human:?}"
    );
    let code = env.run(&["--json", "status"]).json()["pending_approvals"][0]["pairing_code"]
        .as_str()
        .unwrap()
        .to_string();

    // Not approved yet: using it is refused with what to do.
    let refused = env.create_invoice(&["--customer", "42", "--invoice", "101"]);
    refused
        .assert_code(78)
        .assert_stderr_contains("not approved yet");
    assert!(refused.stderr.contains(&code), "{refused:?}");

    let pending = env.run(&["--json", "status"]).json();
    assert_eq!(pending["paired"], serde_json::json!([]));
    assert_eq!(pending["pending_approvals"][0]["facade"], "merchant");

    assert!(env.bitpay.approve_pairing(&code));
    let approved = env.run(&["--json", "status"]).json();
    assert_eq!(approved["paired"], serde_json::json!(["merchant"]));
    assert_eq!(approved["pending_approvals"], serde_json::json!([]));
}

#[test]
fn bad_code_format_is_refused_before_any_request() {
    let env = Env::new();
    for code in ["abc", "abcdefgh", "abc-123", "ab cd12"] {
        // Bad input, not a setup problem (#20 item 15).
        env.run(&["pair", code])
            .assert_code(65)
            .assert_stderr_contains("7 letters or digits");
    }
    assert!(env.bitpay.requests().is_empty());
}

#[test]
fn unknown_used_and_expired_codes_are_explained() {
    let env = Env::new();
    env.run(&["pair", "Zz9Zz9Z"])
        .assert_code(78)
        .assert_stderr_contains("unknown, expired");
    let code = env.bitpay.create_pairing_code();
    env.run(&["pair", &code]).assert_code(0);
    env.run(&["pair", &code])
        .assert_code(78)
        .assert_stderr_contains("already used");
    let stale = env.bitpay.create_pairing_code();
    env.bitpay.expire_pairing_code(&stale);
    env.run(&["pair", &stale])
        .assert_code(78)
        .assert_stderr_contains("expired");
}

#[test]
fn production_code_on_test_is_explained() {
    let env = Env::new();
    let code = env.bitpay.create_production_pairing_code();
    let run = env.run(&["pair", &code]);
    run.assert_code(78)
        .assert_stderr_contains("other BitPay environment");
    run.assert_stderr_contains("bitpay.environment");
}

#[test]
fn disabled_token_is_explained() {
    let env = Env::new();
    env.run(&["pair", "--request", "--facade", "pos"])
        .assert_code(0);
    // Pretend we believed it approved: BitPay itself says the token is disabled.
    env.db()
        .execute("UPDATE tokens SET approved = 1", [])
        .unwrap();
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(78)
        .assert_stderr_contains("disabled");
}

#[test]
fn unauthorized_sin_is_explained() {
    let env = Env::new();
    env.pair();
    // A new key pair: BitPay no longer recognises the identity that owns the token.
    std::fs::remove_file(env.data_dir().join("bitpay.key")).unwrap();
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(78)
        .assert_stderr_contains("does not accept this add-on's identity");
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let env = Env::new();
    env.pair();
    let key = env.data_dir().join("bitpay.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = env.run(&["pair", &env.bitpay.create_pairing_code()]);
    run.assert_code(78).assert_stderr_contains("chmod 600");
    assert!(run.stderr.contains(&key.display().to_string()), "{run:?}");
}

#[test]
fn unpair_forgets_the_environment_tokens() {
    let env = Env::new();
    env.pair();
    let run = env.run(&["unpair"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Forgot 1"), "{run:?}");
    assert_eq!(
        env.run(&["--json", "status"]).json()["paired"],
        serde_json::json!([])
    );
    env.create_invoice(&["--customer", "42", "--invoice", "101"])
        .assert_code(78)
        .assert_stderr_contains("not paired");
}

#[test]
fn bitpay_outage_during_pairing_is_temporary() {
    let env = Env::new();
    env.bitpay.faults().fail_next(1, 503);
    env.run(&["pair", &env.bitpay.create_pairing_code()])
        .assert_code(75);
    env.bitpay.faults().hang_next(1);
    let started = std::time::Instant::now();
    env.run(&["pair", &env.bitpay.create_pairing_code()])
        .assert_code(75)
        .assert_stderr_contains("unreachable");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // No network at all: the cause is said once, and it is not "overloaded".
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    env.write_config(
        &env.default_config()
            .replace(&env.bitpay.url(), &format!("http://127.0.0.1:{closed}")),
    );
    let run = env.run(&["pair", "abcd123"]);
    run.assert_code(75).assert_stderr_contains("cannot connect");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(!run.stderr.contains("overloaded"), "{run:?}");
}
