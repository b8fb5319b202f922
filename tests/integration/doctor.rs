//! `doctor`: every check passes against the sandboxes; each failure we can provoke names
//! its fix and makes the exit code non-zero.

use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use serde_json::Value;
use splynx_bitpay_sandbox::ADDON_WEBHOOK_PATH;

use crate::util::{current_user, Env, Run, API_SECRET};

/// The add-on's webhook URL on the sandbox's Splynx host (it answers like the shim).
fn webhook_url(env: &Env) -> String {
    format!("{}{ADDON_WEBHOOK_PATH}", env.splynx.url())
}

/// How many empty POSTs (doctor's probe) reached the webhook URL.
fn webhook_probes(env: &Env) -> usize {
    env.splynx
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path() == ADDON_WEBHOOK_PATH && r.body.is_empty())
        .count()
}

/// A loopback URL nothing listens on.
fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn with_notification_url(config: &str, url: &str) -> String {
    config.replace(
        "credit_on = \"confirmed\"\n",
        &format!("credit_on = \"confirmed\"\nnotification_url = \"{url}\"\n"),
    )
}

fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Paired, config 0600, the webhook URL on the sandbox's Splynx host.
fn ready() -> Env {
    let env = Env::new();
    env.write_config(&with_notification_url(
        &env.default_config(),
        &webhook_url(&env),
    ));
    set_mode(&env.config_path(), 0o600);
    env.pair();
    env
}

/// The line of check `id`: "<tag>  <id> <message> → fix: <fix>" (checks skipped for one
/// reason share a line: "skip  <id>,<id> (2 checks) <why>").
#[track_caller]
fn line<'a>(run: &'a Run, id: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|ids| ids.split(',').any(|i| i == id))
        })
        .unwrap_or_else(|| panic!("no line for check {id}: {run:#?}"))
}

#[track_caller]
fn assert_fails(run: &Run, id: &str, message: &str, fix: &str) {
    let line = line(run, id);
    assert!(line.starts_with("FAIL"), "{id} should fail: {line}");
    let (text, fix_text) = line
        .split_once(" → fix: ")
        .unwrap_or_else(|| panic!("{id} has no fix: {line}"));
    assert!(text.contains(message), "{id}: {message:?} not in {line}");
    assert!(fix_text.contains(fix), "{id}: fix {fix:?} not in {line}");
}

#[test]
fn a_data_directory_the_pages_cannot_use_is_flagged() {
    let env = ready();
    let me = current_user();
    let owned_by = |owner: &str| {
        env.default_config().replace(
            &format!("owner = \"{me}\""),
            &format!("owner = \"{owner}\""),
        )
    };
    // Made by `pair` run as root, say, while php-fpm runs as another user.
    env.write_config(&with_notification_url(
        &owned_by("nobody"),
        &webhook_url(&env),
    ));
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    let dir = env.data_dir().display().to_string();
    assert_fails(
        &run,
        "data_dir",
        &format!("{dir} belongs to {me}, but the add-on's pages run as nobody (storage.owner)"),
        &format!("chown -R nobody: {dir}"),
    );
    // Every other check still runs.
    assert_eq!(status_of(&run, "splynx.api"), "ok", "{run:#?}");

    env.write_config(&with_notification_url(
        &owned_by("no-such-user-7"),
        &webhook_url(&env),
    ));
    let run = env.run(&["doctor"]);
    assert_fails(
        &run,
        "data_dir",
        "there is no user no-such-user-7 (storage.owner) on this machine",
        "set storage.owner in",
    );

    // Not a user name at all: the config is refused, naming the key.
    env.write_config(&owned_by("www data;"));
    env.run(&["settings"])
        .assert_code(78)
        .assert_stderr_contains("storage.owner");
}

#[track_caller]
fn status_of(run: &Run, id: &str) -> String {
    line(run, id).split_whitespace().next().unwrap().to_string()
}

#[test]
fn every_check_passes_on_a_good_installation() {
    let env = ready();
    let run = env.run(&["doctor"]);
    run.assert_code(0);
    assert!(run.stderr.is_empty(), "{run:#?}");
    for id in splynx_bitpay::commands::doctor::CHECKS {
        let status = status_of(&run, id);
        let expected = if id == "webhook.last" { "warn" } else { "ok" };
        // http:// webhook URLs warn (BitPay wants HTTPS) on the test environment, and
        // Splynx's API cannot tell its system currency: the admin compares by hand.
        // Only a pos token is paired: refunds from Splynx need a merchant token.
        let expected = if id == "webhook.url" || id == "bitpay.currency" || id == "bitpay.refunds" {
            "warn"
        } else {
            expected
        };
        assert_eq!(status, expected, "check {id}: {run:#?}");
    }
    assert!(line(&run, "webhook.url").contains("answers 400"));
    assert!(line(&run, "bitpay.token").contains("pos token active"));
    assert!(line(&run, "splynx.payment_method").contains("7 \"BitPay\""));
    assert!(run
        .stdout
        .trim_end()
        .ends_with("All checks passed, 4 warnings."));
    assert!(line(&run, "bitpay.currency").contains("Localization"));
    assert!(line(&run, "bitpay.confirmations").contains("medium"));
    assert_eq!(webhook_probes(&env), 1, "one empty POST to the webhook URL");
    // The probes changed nothing in Splynx, and no secret was printed.
    assert_eq!(env.splynx.payment_count(), 0);
    assert!(!run.stdout.contains(API_SECRET));
    // What the key may add is read from its permissions, never probed with a write.
    assert!(
        !env.splynx
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path().contains("admin/finance/")),
        "doctor wrote to the books"
    );

    // Once a webhook arrived, doctor says when.
    let id = env.create_invoice_101();
    env.deliver_webhook(&id, true).assert_code(0);
    let run = env.run(&["doctor"]);
    run.assert_code(0);
    assert_eq!(status_of(&run, "webhook.last"), "ok");
    assert!(line(&run, "webhook.last").contains("last webhook arrived"));
}

#[test]
fn json_has_one_entry_per_check() {
    let env = ready();
    let run = env.run(&["doctor", "--json"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["environment"], "test");
    assert_eq!(json["config"], env.config_path().display().to_string());
    assert!(json["user"].is_string());
    let checks = json["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, splynx_bitpay::commands::doctor::CHECKS);
    for c in checks {
        assert!(
            ["ok", "warn"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["message"].as_str().is_some_and(|m| !m.is_empty()), "{c}");
        assert!(c.get("fix").is_some());
    }
    assert_eq!(json["summary"]["ok"], 18);
    assert_eq!(json["summary"]["warn"], 4);
    assert_eq!(json["summary"]["fail"], 0);

    // A failure: ok false, the failing check carries its fix, exit non-zero.
    set_mode(&env.config_path(), 0o644);
    let run = env.run(&["--json", "doctor"]);
    run.assert_code(78);
    let json = run.json();
    assert_eq!(json["ok"], false);
    let failed: Vec<&Value> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{json}");
    assert_eq!(failed[0]["id"], "config.permissions");
    assert!(failed[0]["fix"].as_str().unwrap().contains("chmod 640"));
    assert_eq!(json["summary"]["fail"], 1, "{json}");
}

#[test]
fn world_readable_config_fails_with_chmod_advice() {
    let env = ready();
    set_mode(&env.config_path(), 0o644);
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "config.permissions",
        "open to every user (mode 0644",
        "chmod 640",
    );
    assert!(run.stdout.contains("1 of 22 checks failed"));
    // The verdict is said once (#20 item 16).
    assert!(!run.stderr.contains("checks failed"), "{run:#?}");
}

#[test]
fn open_data_dir_and_key_fail() {
    let env = ready();
    set_mode(&env.data_dir(), 0o755);
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "data_dir",
        "open to other users (mode 0755)",
        "chmod 700",
    );
    set_mode(&env.data_dir(), 0o700);
    let key = env.data_dir().join("bitpay.key");
    set_mode(&key, 0o644);
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "key", "readable by other users", "chmod 600");
    assert_eq!(status_of(&run, "bitpay.token"), "skip");
}

#[test]
fn not_paired_says_how_to_pair_and_creates_no_key() {
    let env = Env::new();
    env.write_config(&with_notification_url(
        &env.default_config(),
        &webhook_url(&env),
    ));
    set_mode(&env.config_path(), 0o600);
    // No data directory yet: doctor does not create one.
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "data_dir", "No such file", "install -d -m 0700");
    assert!(!env.data_dir().exists());
    // The Splynx checks still run: a second problem is not hidden behind the first.
    for id in [
        "splynx.api",
        "splynx.customers",
        "splynx.payments",
        "splynx.payment_method",
    ] {
        assert_eq!(status_of(&run, id), "ok", "{id}: {run:#?}");
    }
    env.write_config(
        &with_notification_url(&env.default_config(), &webhook_url(&env))
            .replace("payment_method_id = 7", "payment_method_id = 9"),
    );
    let run = env.run(&["doctor"]);
    assert_fails(
        &run,
        "splynx.payment_method",
        "payment method 9 does not exist",
        "",
    );
    assert!(!env.data_dir().exists());
    env.write_config(&with_notification_url(
        &env.default_config(),
        &webhook_url(&env),
    ));
    set_mode(&env.config_path(), 0o600);

    // Looking creates nothing either.
    env.run(&["status"]).assert_code(0);
    assert!(
        !env.data_dir().exists(),
        "status created the data directory"
    );
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(env.data_dir())
        .unwrap();
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "key", "not paired yet", "splynx-bitpay pair CODE");
    assert_eq!(status_of(&run, "bitpay.token"), "skip");
    assert_eq!(status_of(&run, "database"), "ok");
    assert_eq!(status_of(&run, "splynx.payments"), "ok");
    assert!(!env.data_dir().join("bitpay.key").exists());
}

#[test]
fn splynx_refusing_payments_names_the_permission() {
    let env = ready();
    env.splynx.deny("admin/finance/payments", "POST");
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "splynx.payments",
        "may not add payments",
        "Finance → Payments (index, add)",
    );
    assert_eq!(status_of(&run, "splynx.customers"), "ok");

    env.splynx.allow_all();
    env.splynx.deny("admin/customers/customer", "GET");
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "splynx.customers",
        "may not list customers",
        "Customers → Customer (index, view)",
    );

    // Listing allowed, reading one (invoice 101, the first listed) refused.
    env.splynx.allow_all();
    env.splynx.deny("admin/finance/invoices/1", "GET");
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "splynx.invoices",
        "may not read invoices",
        "Finance → Invoices (index, view)",
    );

    env.splynx.allow_all();
    env.splynx.deny("admin/finance/payment-methods", "GET");
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "splynx.payment_method",
        "may not list payment methods",
        "Finance → Payment methods (index)",
    );
}

#[test]
fn a_wrong_api_secret_is_reported_once_with_its_fix() {
    let env = ready();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace(API_SECRET, "wrong-secret"));
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "splynx.api", "HTTP 401", "splynx.api_secret");
    assert_eq!(status_of(&run, "splynx.payments"), "skip");
}

#[test]
fn a_missing_payment_method_lists_the_real_ones() {
    let env = ready();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("payment_method_id = 7", "payment_method_id = 9"));
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "splynx.payment_method",
        "payment method 9 does not exist (active ones: 7 \"BitPay\")",
        "splynx.payment_method_id",
    );
}

#[test]
fn splynx_down_is_temporary() {
    let env = ready();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    // The API only: the webhook URL lives on the same host and stays reachable.
    let api = |host: &str| format!("{host}/api/");
    env.write_config(&config.replace(&api(&env.splynx.url()), &api(&closed_url())));
    let run = env.run(&["doctor"]);
    run.assert_code(75);
    assert_fails(&run, "splynx.api", "unreachable", "reaches");
    for id in [
        "splynx.customers",
        "splynx.payments",
        "splynx.payment_method",
    ] {
        assert_eq!(status_of(&run, id), "skip");
    }
    assert_eq!(status_of(&run, "bitpay.token"), "ok");
}

#[test]
fn bitpay_down_is_temporary() {
    let env = ready();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace(&env.bitpay.url(), &closed_url()));
    let run = env.run(&["doctor"]);
    run.assert_code(75);
    assert_fails(&run, "bitpay.reachable", "unreachable", "bitpay.api_url");
    assert_eq!(status_of(&run, "bitpay.token"), "skip");

    // 503s from BitPay are an outage too.
    env.write_config(&config);
    env.bitpay.fail_next(50, 503);
    let run = env.run(&["doctor"]);
    run.assert_code(75);
    assert_eq!(status_of(&run, "bitpay.reachable"), "FAIL");
}

#[test]
fn a_test_token_on_production_is_caught() {
    let env = ready();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("environment = \"test\"", "environment = \"production\""));
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "bitpay.token",
        "paired on test but environment = production",
        "pair CODE",
    );
}

#[test]
fn a_token_bitpay_does_not_know_is_caught() {
    let env = ready();
    env.db()
        .execute("UPDATE tokens SET token = 'revoked-token-value'", [])
        .unwrap();
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(
        &run,
        "bitpay.token",
        "does not accept the stored pos token",
        "unpair",
    );
    assert!(!run.stdout.contains("revoked-token-value"));
}

#[test]
fn the_webhook_url_must_answer_400() {
    let env = ready();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    for (status, message) in [
        (200, "answers HTTP 200 to an empty POST, not 400"),
        (404, "answers 404"),
        (502, "answers HTTP 502"),
        (301, "redirects (HTTP 301)"),
    ] {
        env.splynx.set_webhook_status(status);
        env.splynx.clear_requests();
        let run = env.run(&["doctor"]);
        run.assert_code(78);
        assert_fails(&run, "webhook.url", message, "");
        assert_eq!(webhook_probes(&env), 1);
    }
    let unreachable = format!("{}/bitpay/ipn", closed_url());
    env.write_config(&with_notification_url(&env.default_config(), &unreachable));
    let run = env.run(&["doctor"]);
    // Only "cannot connect": temporary, as the help says (#20 item 15).
    run.assert_code(75);
    assert_fails(&run, "webhook.url", "cannot connect", "firewall");
    env.write_config(&config);
}

#[test]
fn a_broken_or_missing_config_is_the_first_failure() {
    let env = Env::new();
    std::fs::remove_file(env.config_path()).unwrap();
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "config", "does not exist", "--config");
    assert_eq!(status_of(&run, "splynx.api"), "skip");

    env.write_config(
        &env.default_config()
            .replace("currency = \"USD\"", "currency = \"usd\""),
    );
    set_mode(&env.config_path(), 0o600);
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "config", "bitpay.currency", "edit");
    assert_eq!(status_of(&run, "config.permissions"), "ok");
}

#[test]
fn a_damaged_database_is_reported() {
    let env = ready();
    let db = env.data_dir().join("state.db");
    std::fs::write(&db, b"this is not a database, just some bytes long enough").unwrap();
    let _ = std::fs::remove_file(env.data_dir().join("state.db-wal"));
    let _ = std::fs::remove_file(env.data_dir().join("state.db-shm"));
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert_fails(&run, "database", "state.db", "backup");
}

/// Run as root, doctor checks as the data directory's owner (the web server user). It needs
/// root: `./test.sh` runs it when run as root (as CI does); otherwise it shows as ignored.
#[test]
#[ignore = "needs root (./test.sh as root runs it)"]
fn as_root_it_runs_the_checks_as_the_data_owner() {
    let env = ready();
    // nobody (65534) cannot even reach the config in root's private temp dir.
    std::os::unix::fs::chown(env.data_dir(), Some(65534), Some(65534)).unwrap();
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    assert!(run.stdout.contains("running as nobody"), "{run:#?}");
    assert_eq!(status_of(&run, "config"), "FAIL");
    // Nothing was created as root in the data directory meanwhile.
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(env.data_dir()).unwrap() {
        let entry = entry.unwrap();
        let created_before = [
            "bitpay.key",
            "state.db",
            "state.db-wal",
            "state.db-shm",
            "locks",
        ];
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            created_before.contains(&name.as_str()),
            "doctor created {name}"
        );
    }
    assert_eq!(std::fs::metadata(env.data_dir()).unwrap().uid(), 65534);
}
