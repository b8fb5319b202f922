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

/// doctor's `config` line.
fn config_line(run: &crate::util::Run) -> String {
    run.stdout
        .lines()
        .find(|l| l.contains(" config "))
        .unwrap_or_else(|| panic!("no config line: {run:?}"))
        .to_string()
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
        assert!(setting(&json, key)["source_text"].is_string(), "{key}");
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
    // Refused where it is used (checkout and the pages' settings), never for a credit.
    let run = env.run(&["settings"]);
    run.assert_code(78)
        .assert_stderr_contains("\"Transaction speed\"")
        .assert_stderr_contains("warp")
        .assert_stderr_contains("Config → Integrations → Modules list");
    with_modules_list(&env, "shoe_size = \"44\"");
    env.run(&["settings"])
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
    let line = config_line(&run);
    assert!(
        line.starts_with("ok")
            && line.contains("Modules list settings")
            && line.contains("refill.max"),
        "{line}"
    );
    // The default config sets currency; the Modules list setting it too is flagged.
    with_modules_list(&env, "currency = \"EUR\"");
    let run = env.run(&["doctor"]);
    let line = config_line(&run);
    assert!(
        line.starts_with("warn") && line.contains("overrides") && line.contains("bitpay.currency"),
        "{line}"
    );
}

/// The reference's file with Partners settings: partner 2 bills in GBP with its own payment
/// method; everyone else in the main block's currency.
const WITH_PARTNERS: &str = "; <?php exit(); ?>
; Splynx Add-On config file
[common]
api_domain = \"https://splynx.isp.test/\"
api_key = \"key-splynx-created\"
api_secret = \"splynx-own-secret-4c2f\"
currency = \"USD\"
[default_partners_settings]
currency = \"\"
payment_method_id = \"\"
[1]
[2]
currency = \"GBP\"
payment_method_id = \"12\"
refill_max = \"300.00\"
[3]
";

#[test]
fn a_customer_of_partner_2_pays_in_partner_2s_currency_and_method() {
    let env = Env::new();
    let addon = with_modules_list(&env, "");
    std::fs::write(addon.join("config/config.ini.php"), WITH_PARTNERS).unwrap();
    env.splynx.add_customer(serde_json::json!({"id": 44, "login": "lin", "name": "Lin Reseller-Customer", "email": "lin@isp.test", "status": "active", "partner_id": 2, "billing_type": "prepaid"}));
    env.splynx.add_payment_method(
        serde_json::json!({"id": 12, "name": "BitPay (partner 2)", "is_active": "1"}),
    );
    env.pair();

    // The refill page shows partner 2's currency and bounds to its customer.
    let shown: Value =
        serde_json::from_str(&env.run(&["--json", "settings", "--customer", "44"]).stdout).unwrap();
    assert_eq!(
        (shown["currency"].as_str(), shown["refill"]["max"].as_str()),
        (Some("GBP"), Some("300.00"))
    );
    // Partner 2's bounds apply to its customer: 300.00 at most.
    let refused = env.create_invoice(&["--customer", "44", "--refill", "400.00"]);
    refused.assert_code(65).assert_stderr_contains("300.00 GBP");
    let run = env.create_invoice(&["--customer", "44", "--refill", "25.00"]);
    run.assert_code(0);
    let created = run.json();
    assert_eq!(created["currency"], "GBP");
    let id = created["bitpay_invoice_id"].as_str().unwrap().to_string();
    assert_eq!(env.bitpay.invoice(&id).unwrap()["currency"], "GBP");
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    let payments = env.payments_with_receipt(&id);
    assert_eq!(payments.len(), 1);
    assert_eq!(
        payments[0]["payment_type"].to_string().trim_matches('"'),
        "12"
    );

    // A customer of partner 1 keeps the main settings.
    let run = env.create_invoice(&["--customer", "42", "--refill", "25.00"]);
    run.assert_code(0);
    assert_eq!(run.json()["currency"], "USD");
    let other = run.json()["bitpay_invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.bitpay.set_status(&other, "confirmed", None);
    env.deliver_webhook(&other, true).assert_code(0);
    let payments = env.payments_with_receipt(&other);
    assert_eq!(
        payments[0]["payment_type"].to_string().trim_matches('"'),
        "7"
    );
    // Splynx's own API secret in the file is never shown.
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains("Partners settings for partner 2"),
        "{doctor:?}"
    );
    let shown = env.run(&["-vv", "--json", "config"]);
    assert!(
        !shown.stdout.contains("splynx-own-secret-4c2f")
            && !shown.stderr.contains("splynx-own-secret-4c2f")
    );
}

#[test]
fn config_for_a_partner_names_the_partner_as_the_source() {
    let env = Env::new();
    let addon = with_modules_list(&env, "");
    std::fs::write(addon.join("config/config.ini.php"), WITH_PARTNERS).unwrap();
    let run = env.run(&["--json", "config", "--partner", "2"]);
    run.assert_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let s = setting(&json, "bitpay.currency");
    assert_eq!(
        (s["value"].as_str().unwrap(), s["source"].as_str().unwrap()),
        ("GBP", "modules-list partner 2")
    );
    assert_eq!(json["partner"], 2);
    assert_eq!(s["source_text"], "Modules list (partner 2)");
    let three: Value =
        serde_json::from_str(&env.run(&["--json", "config", "--partner", "3"]).stdout).unwrap();
    assert_eq!(setting(&three, "bitpay.currency")["source"], "modules-list");

    // Without --partner: the main settings, then each partner's own, and only those.
    let all = env.run(&["--json", "config"]).json();
    assert_eq!(setting(&all, "bitpay.currency")["value"], "USD");
    let own: Vec<(i64, &str, &str)> = all["partners"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["settings"].as_array().unwrap().iter().map(|s| {
                (
                    p["partner"].as_i64().unwrap(),
                    s["key"].as_str().unwrap(),
                    s["value"].as_str().unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(
        own,
        vec![
            (2, "splynx.payment_method_id", "12"),
            (2, "bitpay.currency", "GBP"),
            (2, "refill.max", "300.00"),
        ]
    );
    let human = env.run(&["config"]);
    assert!(
        human
            .stdout
            .contains("Customers of partner 2 instead get:\n  splynx.payment_method_id"),
        "{human:?}"
    );
}

#[test]
fn doctor_checks_every_partners_settings() {
    let env = Env::new();
    let addon = with_modules_list(&env, "");
    std::fs::write(
        addon.join("config/config.ini.php"),
        "[common]\n[7]\ntransaction_speed = \"warp\"\n",
    )
    .unwrap();
    // Nothing else notices until partner 7's customer pays; doctor does.
    env.run(&["status"]).assert_code(0);
    let run = env.run(&["doctor"]);
    run.assert_code(78);
    let line = config_line(&run);
    assert!(
        line.starts_with("FAIL") && line.contains("partner 7") && line.contains("warp"),
        "{line}"
    );
}

/// The user guide's setup, with nothing typed into the config file: the package's config
/// as shipped, the API key Splynx's add-on install created (and wrote into the Modules-list
/// file with its API address), the Splynx URL and payment method the admin entered there.
/// Only the BitPay and data paths point at the sandboxes, as no admin would need.
#[test]
fn the_guide_setup_works_without_editing_the_config_file() {
    let env = Env::new();
    let addon = env.data_dir().with_file_name("addon");
    std::fs::create_dir_all(addon.join("config")).unwrap();
    std::fs::write(
        addon.join("config/config.ini.php"),
        format!(
            "; <?php exit(); ?>\n; Splynx Add-On config file\n[common]\napi_domain = \"{}/\"\napi_key = \"{}\"\napi_secret = \"{}\"\nsplynx_url = \"https://splynx.isp.test\"\npayment_method_id = \"7\"\n[default_partners_settings]\n[1]\n",
            env.splynx.url(),
            crate::util::API_KEY,
            crate::util::API_SECRET
        ),
    )
    .unwrap();
    let shipped = include_str!("../../examples/config.toml");
    let sandboxed = shipped
        .replace(
            "# api_url = \"http://127.0.0.1:8080\"",
            &format!("api_url = \"{}\"", env.bitpay.url()),
        )
        .replace(
            "data_dir = \"/var/lib/splynx-bitpay\"",
            &format!("data_dir = \"{}\"", env.data_dir().display()),
        )
        .replace(
            "# dir = \"/var/www/splynx/addons/splynx-bitpay\"",
            &format!("dir = \"{}\"", addon.display()),
        );
    assert_ne!(sandboxed, shipped);
    env.write_config(&sandboxed);

    let json = env.run(&["--json", "config"]).json();
    for (key, source) in [
        ("splynx.url", "modules-list"),
        ("splynx.payment_method_id", "modules-list"),
        ("splynx.api_key", "modules-list api key"),
        ("splynx.api_url", "modules-list api key"),
    ] {
        assert_eq!(setting(&json, key)["source"], source, "{key}: {json}");
    }
    assert_eq!(setting(&json, "splynx.api_secret")["value"], "(redacted)");

    env.pair();
    let id = env.create_invoice_101();
    env.bitpay.set_status(&id, "confirmed", None);
    env.deliver_webhook(&id, true).assert_code(0);
    let payments = env.payments_with_receipt(&id);
    assert_eq!(
        payments.len(),
        1,
        "exactly one payment, made with Splynx's key"
    );
    // Splynx's key refused (e.g. its secret stored encrypted): doctor says what to do.
    let ini = addon.join("config/config.ini.php");
    let text = std::fs::read_to_string(&ini).unwrap();
    std::fs::write(
        &ini,
        text.replace(crate::util::API_SECRET, "stored-encrypted"),
    )
    .unwrap();
    let doctor = env.run(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.contains(" splynx.api "))
        .unwrap_or_else(|| panic!("{doctor:?}"));
    assert!(
        line.starts_with("FAIL")
            && line.contains("the key Splynx created for the add-on")
            && line.contains("set splynx.api_key and splynx.api_secret in"),
        "{line}"
    );
    assert_eq!(
        payments[0]["payment_type"].to_string().trim_matches('"'),
        "7"
    );
}

/// A small deterministic generator (xorshift), so a failure can be replayed by its seed.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn text(&mut self, alphabet: &[&str], most: usize) -> String {
        (0..self.below(most + 1))
            .map(|_| self.pick(alphabet))
            .collect()
    }
}

/// One Modules-list file of the kind Splynx writes, with what admins type into its fields
/// and what a hand edit adds (comments, spacing, line endings, a byte-order mark).
fn generated_ini(dice: &mut Dice) -> String {
    let newline = if dice.below(4) == 0 { "\r\n" } else { "\n" };
    let mut text = String::new();
    if dice.below(5) == 0 {
        text.push('\u{feff}');
    }
    if dice.below(3) != 0 {
        text.push_str("; <?php exit(); ?>");
        text.push_str(newline);
    }
    let sections = ["common", "default_partners_settings", "1", "2", "42"];
    let keys = [
        "splynx_url",
        "currency",
        "service_fee",
        "fee_message",
        "payment_method_id",
        "api_key",
        "k-1",
        "x.y",
    ];
    let quoted = [
        "a", "Z", "7", " ", ".", ",", ";", ":", "/", "#", "=", "é", "€", "-", "\\\"", "\\\\",
        "\\n", "'", "2,5", "yes",
    ];
    let unquoted = [
        "a", "B", "7", " ", ".", ",", ":", "/", "#", "é", "-", "2,5", "0",
    ];
    for _ in 0..dice.below(4) {
        text.push_str(&format!("[{}]{newline}", dice.pick(&sections)));
        for _ in 0..dice.below(6) {
            let line = match dice.below(12) {
                0 => format!("; {}", dice.text(&unquoted, 12)),
                1 => String::new(),
                2 => format!("# {}", dice.text(&unquoted, 8)),
                _ => {
                    let key = dice.pick(&keys);
                    let spacing = dice.pick(&["=", " = ", "\t=  ", " ="]);
                    let value = match dice.below(8) {
                        0..=2 => format!("\"{}\"", dice.text(&quoted, 12)),
                        3..=4 => dice.text(&unquoted, 12),
                        5 => dice
                            .pick(&["yes", "No", "TRUE", "off", "none", "null", "On"])
                            .to_string(),
                        6 => format!("'{}'", dice.text(&unquoted, 8)),
                        _ => String::new(),
                    };
                    let comment = match dice.below(4) {
                        0 => format!(" ; {}", dice.text(&unquoted, 6)),
                        _ => String::new(),
                    };
                    let indent = dice.pick(&["", " ", "\t"]);
                    format!("{indent}{key}{spacing}{value}{comment}")
                }
            };
            text.push_str(&line);
            text.push_str(newline);
        }
    }
    text
}

/// #20 item 10: the Modules-list file is read as Splynx's PHP reads it: thousands of
/// generated files, each read by the binary's reader and by PHP's own parse_ini_file.
#[test]
fn the_modules_list_file_is_read_as_php_reads_it() {
    let php = std::process::Command::new("php").arg("--version").output();
    assert!(
        php.is_ok_and(|o| o.status.success()),
        "php-cli is needed (test.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut dice = Dice(0x5eed_1234_abcd_0001);
    let files: Vec<(std::path::PathBuf, String)> = (0..2000)
        .map(|i| {
            let text = generated_ini(&mut dice);
            let path = dir.path().join(format!("{i}.ini.php"));
            std::fs::write(&path, &text).unwrap();
            (path, text)
        })
        .collect();
    let list = dir.path().join("files.txt");
    let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    std::fs::write(&list, names.join("\n")).unwrap();
    let script = "foreach (file($argv[1], FILE_IGNORE_NEW_LINES) as $f) { echo json_encode(@parse_ini_file($f, true)), \"\\n\"; }";
    let out = std::process::Command::new("php")
        .args(["-n", "-r", script])
        .arg(&list)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let answers = String::from_utf8(out.stdout).unwrap();
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), files.len());
    let mut differences = Vec::new();
    for ((_, text), answer) in files.iter().zip(answers) {
        let php: Value = serde_json::from_str(answer).unwrap();
        let ours = splynx_bitpay::config::modules_list::parse(text);
        let same = match (&php, &ours) {
            (Value::Bool(false), Err(_)) => true,
            (Value::Bool(false), Ok(_)) | (_, Err(_)) => false,
            (php, Ok(sections)) => {
                // PHP lists an empty section as [] and keys before any section at the top.
                let ours: serde_json::Map<String, Value> = sections
                    .iter()
                    .filter(|(name, _)| !name.is_empty())
                    .map(|(name, keys)| (name.clone(), serde_json::json!(keys)))
                    .collect();
                let empty = serde_json::Map::new();
                let theirs: serde_json::Map<String, Value> = php
                    .as_object()
                    .unwrap_or(&empty)
                    .iter()
                    .filter(|(_, keys)| !keys.is_string())
                    .map(|(name, keys)| match keys {
                        Value::Array(a) if a.is_empty() => (name.clone(), serde_json::json!({})),
                        other => (name.clone(), other.clone()),
                    })
                    .collect();
                ours == theirs
            }
        };
        if !same {
            differences.push(format!("{text:?}\n  php:  {answer}\n  ours: {ours:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} files read differently, e.g.:\n{}",
        differences.len(),
        files.len(),
        differences[..differences.len().min(5)].join("\n")
    );
}
