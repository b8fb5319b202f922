//! Settings the admin enters in Splynx's Modules list, read from the add-on's
//! `config/config.ini.php` over the TOML file.

use serde_json::Value;

use crate::util::Env;

/// The add-on directory with a Modules-list settings file holding `common`, and the
/// default config pointing at it.
fn with_modules_list(env: &Env, common: &str) -> std::path::PathBuf {
    with_config_and_modules_list(env, &env.default_config(), common)
}

fn with_config_and_modules_list(env: &Env, toml: &str, common: &str) -> std::path::PathBuf {
    let addon = env.data_dir().with_file_name("addon");
    std::fs::create_dir_all(addon.join("config")).unwrap();
    std::fs::write(
        addon.join("config/config.ini.php"),
        format!("; <?php exit(); ?>\n; Splynx Add-On config file\n[common]\napi_key = \"from-splynx\"\n{common}\n[default_partners_settings]\n"),
    )
    .unwrap();
    env.write_config(&format!("{toml}\n[addon]\ndir = \"{}\"\n", addon.display()));
    addon
}

fn setting<'a>(json: &'a Value, key: &str) -> &'a Value {
    json["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key}"))
}

#[test]
fn config_shows_each_value_with_its_source() {
    let env = Env::new();
    let addon = with_modules_list(
        &env,
        "currency = \"EUR\"\nrefill_max = \"250.00\"\ntransaction_speed = \"\"",
    );
    let run = env.run(&["--json", "config"]);
    run.assert_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["modules_list_file"],
        addon.join("config/config.ini.php").display().to_string()
    );
    for (key, value, source) in [
        ("bitpay.currency", "EUR", "modules-list"),
        ("refill.max", "250.00", "modules-list"),
        ("bitpay.transaction_speed", "medium", "toml"),
        ("splynx.auth", "access_token", "default"),
        ("splynx.api_secret", "(redacted)", "toml"),
    ] {
        let s = setting(&json, key);
        assert_eq!(
            (s["value"].as_str().unwrap(), s["source"].as_str().unwrap()),
            (value, source),
            "{key}"
        );
    }
    assert!(!run.stdout.contains(crate::util::API_SECRET));
    // The pages see the Modules-list values too.
    let settings: Value = serde_json::from_str(&env.run(&["--json", "settings"]).stdout).unwrap();
    assert_eq!(settings["currency"], "EUR");
    assert_eq!(settings["refill"]["max"], "250.00");
    // People read the same.
    let text = env.run(&["config"]).stdout;
    assert!(
        text.lines().any(|l| l.starts_with("bitpay.currency")
            && l.contains("modules-list")
            && l.ends_with("EUR")),
        "{text}"
    );
}

#[test]
fn a_bad_modules_list_value_is_a_setup_error_naming_the_field() {
    let env = Env::new();
    with_modules_list(&env, "transaction_speed = \"warp\"");
    let run = env.run(&["status"]);
    run.assert_code(78)
        .assert_stderr_contains("\"Transaction speed\"")
        .assert_stderr_contains("warp")
        .assert_stderr_contains("Config → Integrations → Modules list");
    with_modules_list(&env, "shoe_size = \"44\"");
    env.run(&["status"])
        .assert_code(78)
        .assert_stderr_contains("shoe_size");
}

#[test]
fn doctor_says_where_settings_come_from_and_flags_two_places_for_one() {
    let env = Env::new();
    let without_refill = env
        .default_config()
        .replace("[refill]\nmin = \"1.00\"\nmax = \"5000.00\"\n", "");
    with_config_and_modules_list(&env, &without_refill, "refill_max = \"250.00\"");
    let run = env.run(&["doctor"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(" config "))
        .unwrap()
        .to_string();
    assert!(
        line.starts_with("ok")
            && line.contains("Modules list settings")
            && line.contains("refill.max"),
        "{line}"
    );
    // The default config sets currency; the Modules list setting it too is flagged.
    with_modules_list(&env, "currency = \"EUR\"");
    let run = env.run(&["doctor"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(" config "))
        .unwrap()
        .to_string();
    assert!(
        line.starts_with("warn") && line.contains("overrides") && line.contains("bitpay.currency"),
        "{line}"
    );
}
