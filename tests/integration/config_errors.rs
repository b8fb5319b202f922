use crate::util::{run_binary, Env};

#[test]
fn unknown_key_names_file_and_key_and_exits_78() {
    let env = Env::new();
    env.write_config(&env.default_config().replace(
        "currency = \"USD\"",
        "currency = \"USD\"\nfavourite_coin = \"BTC\"",
    ));
    let run = env.run(&["status"]);
    run.assert_code(78).assert_stderr_contains("favourite_coin");
    assert!(
        run.stderr
            .contains(&env.config_path().display().to_string()),
        "{run:?}"
    );
}

#[test]
fn invalid_values_are_explained() {
    let env = Env::new();
    let cases = [
        (
            "url = \"https://splynx.isp.test\"",
            "url = \"https://splynx.isp.test/\"",
            "splynx.url",
        ),
        (
            "environment = \"test\"",
            "environment = \"staging\"",
            "bitpay.environment",
        ),
        ("min = \"1.00\"", "min = \"-5\"", "refill.min"),
        (
            "transaction_speed = \"medium\"",
            "transaction_speed = \"ludicrous\"",
            "bitpay.transaction_speed",
        ),
    ];
    for (from, to, key) in cases {
        env.write_config(&env.default_config().replace(from, to));
        env.run(&["settings"])
            .assert_code(78)
            .assert_stderr_contains(key);
    }
}

#[test]
fn missing_config_file_says_how_to_point_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_binary(&dir.path().join("nope.toml"), &["status"], b"");
    run.assert_code(78).assert_stderr_contains("--config");
    // The cause is said once, not again after the message that already names it.
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "{run:?}"
    );
}

#[test]
fn looking_creates_no_state() {
    let env = Env::new();
    for args in [
        vec!["status"],
        vec!["--json", "status"],
        vec!["show", "nothing-here"],
        vec!["settings"],
    ] {
        let run = env.run(&args);
        assert!(
            !env.data_dir().exists(),
            "{args:?} created {}: {run:?}",
            env.data_dir().display()
        );
    }
    let status = env.run(&["--json", "status"]);
    status.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["sin"], serde_json::Value::Null);
    assert_eq!(json["paired"], serde_json::json!([]));
    // The first command that stores something creates it.
    env.pair();
    assert!(env.data_dir().join("state.db").exists());
}

#[test]
fn config_comes_from_the_environment_variable_when_no_flag() {
    let env = Env::new();
    let output = std::process::Command::new(crate::util::binary())
        .args(["--json", "status"])
        .env("SPLYNX_BITPAY_CONFIG", env.config_path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["api_url"], env.bitpay.url());
}

#[test]
fn usage_errors_are_bad_input() {
    let env = Env::new();
    env.run(&["create-invoice", "--customer", "42"])
        .assert_code(65);
    env.run(&["no-such-command"]).assert_code(65);
    let help = env.run(&["create-invoice", "--help"]);
    help.assert_code(0);
    assert!(help.stdout.contains("Examples"), "{help:?}");
}
