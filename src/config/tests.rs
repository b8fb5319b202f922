//! The config's validation rules, one test per rule.

use super::*;

const GOOD: &str = r#"
[splynx]
url = "https://splynx.isp.test"
api_key = "k"
api_secret = "s"
payment_method_id = 7

[bitpay]
environment = "test"
currency = "USD"

[storage]
data_dir = "/var/lib/splynx-bitpay"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/x.toml"), text)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn defaults_follow_the_contract() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.splynx.api_url, "https://splynx.isp.test/api/2.0/");
    assert_eq!(config.bitpay.api_url, "https://test.bitpay.com");
    assert_eq!(
        config.bitpay.notification_url,
        "https://splynx.isp.test/bitpay/ipn"
    );
    assert_eq!(
        config.bitpay.redirect_url,
        "https://splynx.isp.test/bitpay/result"
    );
    assert_eq!(config.bitpay.transaction_speed, "medium");
    assert_eq!(config.bitpay.credit_on, CreditOn::Confirmed);
    assert_eq!(config.refill.min.to_string(), "1.00");
    assert_eq!(config.refill.max.to_string(), "5000.00");
    assert_eq!(config.reconcile.concurrency, 8);
    assert!(!format!("{config:?}").contains("api_secret: \"s\""));
}

/// The settings table states each default; the parsers apply the same ones. The required
/// settings are the ones a minimal file must set.
#[test]
fn the_table_states_the_defaults_that_apply() {
    let config = parse(GOOD).unwrap();
    let mut required = Vec::new();
    for setting in table::all() {
        match setting.default {
            table::Default::Value(value) => {
                assert_eq!(
                    config.source(setting.key),
                    Source::Default,
                    "{}",
                    setting.key
                );
                assert_eq!(setting.shown(&config), value, "{}", setting.key);
            }
            table::Default::Required => required.push(setting.key),
            table::Default::Derived(_) => {
                assert_eq!(
                    config.source(setting.key),
                    Source::Default,
                    "{}",
                    setting.key
                )
            }
        }
    }
    let mut set_in_good: Vec<&str> = Vec::new();
    let file: toml::Table = toml::from_str(GOOD).unwrap();
    for (section, keys) in &file {
        for key in keys.as_table().unwrap().keys() {
            set_in_good.push(table::find(&format!("{section}.{key}")).unwrap().key);
        }
    }
    required.sort_unstable();
    set_in_good.sort_unstable();
    assert_eq!(required, set_in_good);
    // A secret is never shown; every setting is listed once.
    assert_eq!(
        table::find("splynx.api_secret").unwrap().shown(&config),
        "(redacted)"
    );
    let mut keys: Vec<&str> = table::all().map(|s| s.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), table::all().count());
}

#[test]
fn errors_name_file_key_and_problem() {
    let unknown = error(&GOOD.replace("currency = \"USD\"", "currency = \"USD\"\ncolour = 1"));
    assert!(
        unknown.contains("/etc/x.toml") && unknown.contains("colour"),
        "{unknown}"
    );
    let slash = error(&GOOD.replace("isp.test\"", "isp.test/\""));
    assert!(
        slash.contains("splynx.url") && slash.contains("slash"),
        "{slash}"
    );
    let env = error(&GOOD.replace("\"test\"", "\"prod\""));
    assert!(
        env.contains("bitpay.environment") && env.contains("prod"),
        "{env}"
    );
    let url = error(&GOOD.replace("https://splynx.isp.test", "ftp://x"));
    assert!(url.contains("splynx.url"), "{url}");
    let neg = error(&format!("{GOOD}\n[refill]\nmin = \"-1\"\n"));
    assert!(
        neg.contains("refill.min") && neg.contains("negative"),
        "{neg}"
    );
    let float = error(&format!("{GOOD}\n[refill]\nmax = 10.5\n"));
    assert!(
        float.contains("refill.max") && float.contains("quoted"),
        "{float}"
    );
    let order = error(&format!("{GOOD}\n[refill]\nmin = \"10\"\nmax = \"5\"\n"));
    assert!(order.contains("refill.min"), "{order}");
    let rel = error(&GOOD.replace("/var/lib/splynx-bitpay", "data"));
    assert!(
        rel.contains("storage.data_dir") && rel.contains("absolute"),
        "{rel}"
    );
    let method = error(&GOOD.replace("= 7", "= 0"));
    assert!(method.contains("payment_method_id"), "{method}");
    let missing = error(&GOOD.replace("api_key = \"k\"\n", ""));
    assert!(missing.contains("api_key"), "{missing}");
    let credit = error(&GOOD.replace(
        "currency = \"USD\"",
        "currency = \"USD\"\ncredit_on = \"paid\"",
    ));
    assert!(credit.contains("bitpay.credit_on"), "{credit}");
    let grace = error(&GOOD.replace(
        "payment_method_id = 7",
        "payment_method_id = 7\ntimeout_seconds = 60\npayment_grace_seconds = 60",
    ));
    assert!(
        grace.contains("splynx.payment_grace_seconds") && grace.contains("longer"),
        "{grace}"
    );
}

#[test]
fn production_refuses_plain_http_except_loopback() {
    let production = GOOD.replace("\"test\"", "\"production\"");
    parse(&production).unwrap();
    let splynx = error(&production.replace("https://splynx", "http://splynx"));
    assert!(
        splynx.contains("splynx.url") && splynx.contains("unencrypted"),
        "{splynx}"
    );
    for (key, line) in [
        ("splynx.api_url", "api_url = \"http://10.0.0.5/api/2.0/\""),
        (
            "bitpay.notification_url",
            "notification_url = \"http://isp.example/bitpay/ipn\"",
        ),
    ] {
        let section = if key.starts_with("splynx") {
            "[splynx]"
        } else {
            "[bitpay]"
        };
        let text = production.replace(section, &format!("{section}\n{line}"));
        let e = error(&text);
        assert!(e.contains(key) && e.contains("https://"), "{e}");
    }
    let bitpay =
        error(&production.replace("[bitpay]", "[bitpay]\napi_url = \"http://btcpay.example\""));
    assert!(bitpay.contains("bitpay.api_url"), "{bitpay}");
    // This machine is fine: a sandbox, a local BTCPay, a local Splynx API.
    for local in [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        parse(&production.replace("[bitpay]", &format!("[bitpay]\napi_url = \"{local}\"")))
            .unwrap();
    }
    // The test environment keeps accepting http (doctor warns about it).
    parse(&GOOD.replace("https://splynx", "http://splynx")).unwrap();
}

#[test]
fn zero_confirmation_crediting_is_a_conscious_choice() {
    let risky = GOOD.replace(
        "currency = \"USD\"",
        "currency = \"USD\"\ntransaction_speed = \"high\"",
    );
    let refused = error(&risky);
    assert!(
        refused.contains("bitpay.transaction_speed")
            && refused.contains("zero confirmations")
            && refused.contains("allow_zero_confirmation"),
        "{refused}"
    );
    let accepted = parse(&risky.replace(
        "transaction_speed = \"high\"",
        "transaction_speed = \"high\"\nallow_zero_confirmation = true",
    ))
    .unwrap();
    assert!(accepted.bitpay.allow_zero_confirmation);
    // Only on complete: BitPay's own settlement point, no risk to accept.
    parse(&risky.replace(
        "transaction_speed = \"high\"",
        "transaction_speed = \"high\"\ncredit_on = \"complete\"",
    ))
    .unwrap();
    let config = parse(GOOD).unwrap();
    assert_eq!(config.splynx.payment_grace, Duration::from_secs(900));
}

/// What Splynx writes into the add-on's Modules-list file: the API key its install created
/// for the add-on, and what the admin entered (Splynx URL, payment method).
const SPLYNX_WROTE: &str = "; <?php exit(); ?>
; Splynx Add-On config file
[common]
api_domain = \"https://splynx.isp.test/\"
api_key = \"5f1e9a0c2b7d4e6f8a9b0c1d2e3f4a5b\"
api_secret = \"splynx-made-secret\"
splynx_url = \"https://portal.isp.test\"
payment_method_id = \"12\"
[default_partners_settings]
";

#[test]
fn the_shipped_example_works_with_the_modules_list_alone_or_filled_in_by_file() {
    let shipped = include_str!("../../examples/config.toml");
    // Nothing in Splynx yet: what is missing, and both places to set it.
    let message = error(shipped);
    assert!(
        message.contains("key `splynx.url`: is not set: enter \"Splynx URL\" in Splynx (Config → Integrations → Modules list → splynx_bitpay_addon), or set it in this file"),
        "{message}"
    );
    // The guide's way: the install created the API key, the admin entered the rest.
    let config = with_modules_list(shipped, SPLYNX_WROTE).unwrap();
    assert_eq!(config.splynx.url, "https://portal.isp.test");
    assert_eq!(config.splynx.api_url, "https://splynx.isp.test/api/2.0/");
    assert_eq!(config.splynx.api_key, "5f1e9a0c2b7d4e6f8a9b0c1d2e3f4a5b");
    assert_eq!(config.splynx.api_secret.expose(), "splynx-made-secret");
    assert_eq!(config.splynx.payment_method_id, 12);
    assert_eq!(config.source("splynx.api_key"), Source::SplynxApiKey);
    assert_eq!(config.source("splynx.api_url"), Source::SplynxApiKey);
    assert_eq!(config.source("splynx.url"), Source::ModulesList);
    assert!(config.overridden_toml.is_empty());
    // By file: its commented keys filled in (the placeholders are refused until then).
    let uncommented = shipped
        .replace("# url = ", "url = ")
        .replace("# api_key = ", "api_key = ")
        .replace("# api_secret = ", "api_secret = ")
        .replace("# payment_method_id = ", "payment_method_id = ");
    assert!(error(&uncommented).contains("placeholder"));
    let filled = uncommented
        .replace("splynx.example.com", "splynx.isp.test")
        .replace(
            "0123456789abcdef0123456789abcdef",
            "f3a9c1d2e4b5a6978877665544332211",
        )
        .replace("change-me", "a-real-secret");
    let config = parse(&filled).unwrap();
    assert_eq!(config.splynx.payment_method_id, 7);
    assert_eq!(config.reconcile.requests_per_second, 400);
}

#[test]
fn an_api_key_in_the_file_wins_over_splynxs_own() {
    // The file names its own key and secret: both used, Splynx's ignored.
    let config = with_modules_list(GOOD, SPLYNX_WROTE).unwrap();
    assert_eq!(config.splynx.api_key, "k");
    assert_eq!(config.splynx.api_secret.expose(), "s");
    assert_eq!(config.source("splynx.api_key"), Source::Toml);
    // The API address still comes from Splynx when the file names none.
    assert_eq!(config.splynx.api_url, "https://splynx.isp.test/api/2.0/");
    // A bad api_domain is named as Splynx wrote it.
    let bad = SPLYNX_WROTE.replace("https://splynx.isp.test/", "splynx.isp.test");
    let message = with_modules_list(GOOD, &bad).unwrap_err().to_string();
    assert!(
        message.contains("api_domain\" ([common], written by Splynx)"),
        "{message}"
    );
}

#[test]
fn path_resolution_order() {
    assert_eq!(
        resolve_path(Some(Path::new("/a")), Some("/b")),
        PathBuf::from("/a")
    );
    assert_eq!(resolve_path(None, Some("/b")), PathBuf::from("/b"));
    assert_eq!(resolve_path(None, None), PathBuf::from(DEFAULT_PATH));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,600}") {
            let _ = parse(&text);
        }

        /// Damage the valid config one line at a time: it either still loads or the
        /// error names the file.
        #[test]
        fn damaged_configs_fail_with_the_file_named(
            line in 0usize..20,
            replacement in "[a-z_\\[\\]=\" ./:0-9-]{0,40}",
        ) {
            let mut lines: Vec<String> = GOOD.lines().map(str::to_string).collect();
            let at = line % lines.len();
            lines[at] = replacement;
            match parse(&lines.join("\n")) {
                Ok(config) => prop_assert!(config.data_dir.is_absolute()),
                Err(e) => prop_assert!(e.to_string().starts_with("config file /etc/x.toml"), "{}", e),
            }
        }
    }
}

#[test]
fn the_examples_placeholders_are_refused_with_the_fix() {
    let with_url = |url: &str| GOOD.replace("https://splynx.isp.test", url);
    for (text, key, fix) in [
        (
            with_url("https://splynx.example.com"),
            "splynx.url",
            "public address",
        ),
        (
            with_url("https://EXAMPLE.org"),
            "splynx.url",
            "public address",
        ),
        (
            GOOD.replace(
                "[bitpay]",
                "[bitpay]\nnotification_url = \"https://pay.example.net/ipn\"",
            ),
            "bitpay.notification_url",
            "public address",
        ),
        (
            GOOD.replace(
                "api_key = \"k\"",
                "api_key = \"0123456789abcdef0123456789abcdef\"",
            ),
            "splynx.api_key",
            "Administration → API keys",
        ),
        (
            GOOD.replace("api_secret = \"s\"", "api_secret = \"change-me\""),
            "splynx.api_secret",
            "secret of the API key",
        ),
    ] {
        let message = error(&text);
        assert!(
            message.contains(key) && message.contains("placeholder") && message.contains(fix),
            "{message}"
        );
    }
    // Lookalikes are real addresses.
    assert!(parse(&with_url("https://splynx.example-isp.com")).is_ok());
    assert!(parse(&with_url("https://notexample.com")).is_ok());
}

/// GOOD with the Modules-list settings file `ini` (at the default add-on directory).
fn with_modules_list(toml: &str, ini: &str) -> Result<Config, ConfigError> {
    let expected = Path::new(modules_list::DEFAULT_ADDON_DIR).join(modules_list::SETTINGS_FILE);
    let ini = ini.to_string();
    Config::parse_with(Path::new("/etc/x.toml"), toml, &move |file| {
        assert_eq!(file, expected);
        Ok(ini.clone())
    })
}

#[test]
fn modules_list_wins_over_toml_which_wins_over_the_default() {
    let toml = GOOD.replace(
        "[bitpay]",
        "[bitpay]\ntransaction_speed = \"low\"\ncredit_on = \"complete\"",
    );
    let ini = "; <?php exit(); ?>\n[common]\ncurrency = \"EUR\"\ntransaction_speed = \"high\"\ncredit_on = \"\"\n";
    let config = with_modules_list(&toml, ini).unwrap();
    // key: (value, source)
    let cases = [
        (
            "bitpay.currency",
            config.bitpay.currency.clone(),
            Source::ModulesList,
            "EUR",
        ),
        (
            "bitpay.transaction_speed",
            config.bitpay.transaction_speed.clone(),
            Source::ModulesList,
            "high",
        ),
        // An empty Modules-list value leaves the TOML's.
        (
            "bitpay.credit_on",
            format!("{:?}", config.bitpay.credit_on),
            Source::Toml,
            "Complete",
        ),
        (
            "splynx.url",
            config.splynx.url.clone(),
            Source::Toml,
            "https://splynx.isp.test",
        ),
        (
            "splynx.auth",
            format!("{:?}", config.splynx.auth),
            Source::Default,
            "AccessToken",
        ),
    ];
    for (key, value, source, expected) in cases {
        assert_eq!(
            (value.as_str(), config.source(key)),
            (expected, source),
            "{key}"
        );
    }
    assert!(config.modules_list_file().is_some());
    // Without the file (auto), the TOML alone.
    let config = parse(&toml).unwrap();
    assert_eq!(config.bitpay.transaction_speed, "low");
    assert_eq!(config.source("bitpay.transaction_speed"), Source::Toml);
    assert!(config.modules_list_file().is_none());
}

#[test]
fn a_bad_modules_list_value_names_the_field_as_splynx_shows_it() {
    let ini = "[common]\ntransaction_speed = \"ludicrous\"\n";
    let message = with_modules_list(GOOD, ini).unwrap_err().to_string();
    for part in [
        "\"Transaction speed\"",
        "ludicrous",
        "Modules list",
        "config/config.ini.php",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    let message = with_modules_list(GOOD, "[common]\nrefill_min = \"ten\"\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("\"Top-up minimum\""), "{message}");
    let message = with_modules_list(GOOD, "[common]\npayment_method_id = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("Payment method") && message.contains("config.ini.php"),
        "{message}"
    );
}

#[test]
fn the_modules_list_switch() {
    let ini = "[common]\ncurrency = \"EUR\"\n";
    let off = GOOD.to_string() + "\n[addon]\nmodules_list = \"off\"\n";
    assert_eq!(with_modules_list(&off, ini).unwrap().bitpay.currency, "USD");
    let require =
        GOOD.to_string() + "\n[addon]\nmodules_list = \"require\"\ndir = \"/opt/bitpay\"\n";
    let missing = Config::parse_with(Path::new("/etc/x.toml"), &require, &|_| {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    })
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("/opt/bitpay/config/config.ini.php") && missing.contains("require"),
        "{missing}"
    );
    let bad = GOOD.to_string() + "\n[addon]\nmodules_list = \"sometimes\"\n";
    assert!(error(&bad).contains("addon.modules_list"));
    let unknown = GOOD.to_string() + "\n[addon]\ncolour = \"red\"\n";
    assert!(error(&unknown).contains("colour"));
}

#[test]
fn a_partners_settings_win_for_its_customers() {
    let ini = "[common]\ncurrency = \"USD\"\n[default_partners_settings]\ntransaction_speed = \"low\"\n[2]\ncurrency = \"GBP\"\npayment_method_id = \"12\"\n[3]\n";
    let config = with_modules_list(GOOD, ini).unwrap();
    let two = config.for_partner(Some(2));
    assert_eq!(two.partner, Some(2));
    assert_eq!(
        (two.bitpay.currency.as_str(), two.source("bitpay.currency")),
        ("GBP", Source::ModulesListPartner(2))
    );
    assert_eq!(two.splynx.payment_method_id, 12);
    assert_eq!(
        two.source("bitpay.transaction_speed"),
        Source::ModulesListDefaultPartner
    );
    assert_eq!(
        two.source("bitpay.transaction_speed").label(),
        "modules-list default partner"
    );
    assert_eq!(
        two.source("bitpay.currency").label(),
        "modules-list partner 2"
    );
    // Partner 3 has nothing of its own: the main block and the default partner's.
    let three = config.for_partner(Some(3));
    assert_eq!(
        (
            three.bitpay.currency.as_str(),
            three.splynx.payment_method_id
        ),
        ("USD", 7)
    );
    assert_eq!(three.bitpay.transaction_speed, "low");
    // Without a partner (or without Modules-list settings) nothing changes.
    assert_eq!(config.for_partner(None).bitpay.currency, "USD");
    assert_eq!(
        parse(GOOD).unwrap().for_partner(Some(2)).bitpay.currency,
        "USD"
    );
    // A partner's bad value names the partner.
    let bad = with_modules_list(GOOD, "[4]\ntransaction_speed = \"warp\"\n").unwrap();
    // It refuses that partner's checkouts, never the settings as a whole.
    let partner = bad.for_partner(Some(4));
    let message = partner.ensure_valid().unwrap_err().to_string();
    assert!(
        message.contains("\"Transaction speed\" (Partners settings, partner 4)"),
        "{message}"
    );
}

#[test]
fn payment_statements_are_monthly_unless_the_admin_says_otherwise() {
    assert_eq!(parse(GOOD).unwrap().statements, StatementGrouping::Month);
    let toml = format!("{GOOD}\n[statements]\ngroup = \"off\"\n");
    assert_eq!(parse(&toml).unwrap().statements, StatementGrouping::Off);
    let config = with_modules_list(&toml, "[common]\nstatements_group = \"day\"\n").unwrap();
    assert_eq!(config.statements, StatementGrouping::Day);
    assert_eq!(config.source("statements.group"), Source::ModulesList);
    let message = error(&format!("{GOOD}\n[statements]\ngroup = \"week\"\n"));
    assert!(
        message.contains("statements.group") && message.contains("\"week\""),
        "{message}"
    );
    let message = with_modules_list(GOOD, "[common]\nstatements_group = \"year\"\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("\"Group bank statements\""), "{message}");
}

#[test]
fn the_fee_is_off_by_default_and_its_values_are_checked() {
    let config = parse(GOOD).unwrap();
    assert_eq!(config.fee.percent, Decimal::ZERO);
    assert_eq!(config.fee.message, DEFAULT_FEE_MESSAGE);
    assert_eq!(config.fee.category, DEFAULT_FEE_CATEGORY);
    let config = parse(&format!(
        "{GOOD}\n[fee]\npercent = \"2.5\"\nvat_percent = 20\nmessage = \"Crypto fee\"\ncategory = 1\n"
    ))
    .unwrap();
    assert_eq!(config.fee.percent.to_string(), "2.5");
    assert_eq!(config.fee.vat_percent.to_string(), "20");
    for (line, key, part) in [
        ("percent = 2.5", "fee.percent", "quoted decimals"),
        ("percent = \"100\"", "fee.percent", "under 100"),
        ("percent = \"-1\"", "fee.percent", "\"-1\""),
        ("vat_percent = \"1e2\"", "fee.vat_percent", "\"1e2\""),
        ("percent = \"0.12345\"", "fee.percent", "4 decimal places"),
        ("message = \" \"", "fee.message", "1 to 200 characters"),
        ("category = 0", "fee.category", "transaction category id"),
    ] {
        let message = error(&format!("{GOOD}\n[fee]\n{line}\n"));
        assert!(
            message.contains(key) && message.contains(part),
            "{line}: {message}"
        );
    }
    let message = with_modules_list(GOOD, "[common]\nservice_fee = \"two\"\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("\"Service fee\""), "{message}");
}

#[test]
fn direct_pay_links_are_off_unless_granted() {
    assert!(!parse(GOOD).unwrap().direct_pay_links);
    assert!(
        parse(&format!("{GOOD}\n[direct_pay]\nenabled = true\n"))
            .unwrap()
            .direct_pay_links
    );
    let config = with_modules_list(
        GOOD,
        "[common]\ndirect_pay_links = \"1\"\n[2]\ndirect_pay_links = \"0\"\n",
    )
    .unwrap();
    assert!(config.direct_pay_links);
    assert!(!config.for_partner(Some(2)).direct_pay_links);
    assert!(config.for_partner(Some(3)).direct_pay_links);
    let message = error(&format!("{GOOD}\n[direct_pay]\nenabled = \"maybe\"\n"));
    assert!(message.contains("direct_pay.enabled"), "{message}");
    let message = with_modules_list(GOOD, "[common]\ndirect_pay_links = \"sure\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"Grant access to unauthorized customers\""),
        "{message}"
    );
}

/// #20 item 14: a config the user may not read says chgrp/chmod, not where to find one.
#[test]
fn an_unreadable_config_says_chmod() {
    let denied = ConfigError::Read {
        path: "/etc/splynx-bitpay/config.toml".into(),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    }
    .to_string();
    assert!(denied.contains("chmod 640"), "{denied}");
    assert!(!denied.contains(ENV_VAR), "{denied}");
    let missing = ConfigError::Read {
        path: "/nope.toml".into(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    }
    .to_string();
    assert!(missing.contains("--config"), "{missing}");
}

/// BTCPay as the server: its own section is required and checked; BitPay's environment is
/// not needed; the server-neutral keys of [bitpay] still apply.
#[test]
fn btcpay_is_chosen_and_checked() {
    let btcpay_config = |btcpay: &str| {
        GOOD.replace("environment = \"test\"\n", "").replace(
            "[splynx]",
            &format!("[server]\nkind = \"btcpay\"\n\n{btcpay}\n[splynx]"),
        )
    };
    let config = parse(&btcpay_config(
        "[btcpay]\nurl = \"https://btcpay.isp.test\"\nstore_id = \"Store1abc\"\n",
    ))
    .unwrap();
    assert_eq!(config.server, ServerKind::Btcpay);
    assert_eq!(config.btcpay.url, "https://btcpay.isp.test");
    assert_eq!(config.btcpay.transaction_speed, "medium");
    assert_eq!(config.bitpay.currency, "USD");
    let missing = error(&btcpay_config(""));
    assert!(
        missing.contains("btcpay.url") && missing.contains("btcpay.store_id"),
        "{missing}"
    );
    assert!(!missing.contains("bitpay.environment"), "{missing}");
    let plain = error(&btcpay_config(
        "[btcpay]\nurl = \"http://btcpay.isp.test\"\nstore_id = \"S1\"\n",
    ));
    assert!(plain.contains("plain http"), "{plain}");
    let loopback = btcpay_config("[btcpay]\nurl = \"http://127.0.0.1:8081\"\nstore_id = \"S1\"\n");
    assert!(parse(&loopback).is_ok());
    let zero_conf = error(&btcpay_config(
        "[btcpay]\nurl = \"https://b.isp.test\"\nstore_id = \"S1\"\ntransaction_speed = \"high\"\n",
    ));
    assert!(zero_conf.contains("zero confirmations"), "{zero_conf}");
    let odd = error(&GOOD.replace("[splynx]", "[server]\nkind = \"coinbase\"\n\n[splynx]"));
    assert!(
        odd.contains("server.kind") && odd.contains("coinbase"),
        "{odd}"
    );
    // An API key set in the file is never shown.
    let with_key = parse(&btcpay_config(
        "[btcpay]\nurl = \"https://b.isp.test\"\nstore_id = \"S1\"\napi_key = \"abcdef0123456789\"\n",
    ))
    .unwrap();
    assert!(!format!("{with_key:?}").contains("abcdef0123456789"));
    assert_eq!(
        table::find("btcpay.api_key").unwrap().shown(&with_key),
        "(redacted)"
    );
}
