//! The TOML file parsed strictly (unknown keys are errors) into `RawConfig`, then validated
//! into `Config`. Every error names the file, the key and the problem. Longer than 500
//! lines because every setting is validated by hand here, until issue 21 item 5's
//! declarative settings table and split by section replace it.

use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use url::Url;

use super::*;
use crate::money;
use crate::secret::Secret;

/// The file's sections, each read on its own so that every section's problem is found in
/// one run (`[addon]` is read first, by `addon_settings`: it says where the overlay is).
struct RawConfig {
    /// Every key may come from the Modules list instead (`unset` says where to set it).
    splynx: RawSplynx,
    bitpay: RawBitPay,
    refill: Option<RawRefill>,
    statements: Option<RawStatements>,
    fee: Option<RawFee>,
    direct_pay: Option<RawDirectPay>,
    storage: RawStorage,
    reconcile: Option<RawReconcile>,
    admin: Option<RawAdmin>,
}

/// The sections a config file may have.
const SECTIONS: [&str; 10] = [
    "splynx",
    "bitpay",
    "refill",
    "statements",
    "fee",
    "direct_pay",
    "storage",
    "reconcile",
    "admin",
    "addon",
];

impl RawConfig {
    /// The sections of `table`; a section that does not fit its schema (an unknown key, a
    /// wrong type) is a problem and reads as empty.
    fn read(table: &toml::Table, shown: &str, problems: &mut Problems) -> RawConfig {
        for (name, value) in table
            .iter()
            .filter(|(k, _)| !SECTIONS.contains(&k.as_str()))
        {
            let name = quoted_prefix(name);
            let message = match value {
                toml::Value::Table(_) => format!(
                    "unknown section [{name}] (known: {})",
                    SECTIONS.map(|s| format!("[{s}]")).join(", ")
                ),
                _ => format!("key `{name}` is outside any section: put it under its [section]"),
            };
            problems.push(
                "file",
                ConfigError::Parse {
                    path: shown.to_string(),
                    message,
                },
            );
        }
        fn typed<T: serde::de::DeserializeOwned>(
            name: &str,
            table: &toml::Table,
            shown: &str,
            problems: &mut Problems,
        ) -> Option<T> {
            let value = table.get(name)?.clone();
            match T::deserialize(value) {
                Ok(raw) => Some(raw),
                Err(e) => {
                    let message = format!("[{name}]: {}", e.to_string().trim_end());
                    problems.push(
                        name,
                        ConfigError::Parse {
                            path: shown.to_string(),
                            message,
                        },
                    );
                    None
                }
            }
        }
        macro_rules! read {
            ($name:literal) => {
                typed($name, table, shown, problems)
            };
        }
        RawConfig {
            splynx: read!("splynx").unwrap_or_default(),
            bitpay: read!("bitpay").unwrap_or_default(),
            refill: read!("refill"),
            statements: read!("statements"),
            fee: read!("fee"),
            direct_pay: read!("direct_pay"),
            storage: read!("storage").unwrap_or_default(),
            reconcile: read!("reconcile"),
            admin: read!("admin"),
        }
    }
}

/// What is wrong with the settings, collected so that all of it is said at once.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: &str, error: ConfigError) {
        let message = error.to_string();
        if self.0.iter().any(|p| p.message == message) {
            return;
        }
        self.0.push(ConfigProblem {
            key: key.to_string(),
            critical: is_critical(key),
            message,
        });
    }
}

/// Settings the credit of money already received needs (where Splynx and BitPay are, and
/// the credentials): without them nothing runs. Every other setting is only read at
/// checkout, which is where a bad value refuses.
fn is_critical(key: &str) -> bool {
    matches!(
        key,
        "file"
            | "splynx"
            | "bitpay"
            | "storage"
            | "addon"
            | "splynx.url"
            | "splynx.api_url"
            | "splynx.api_key"
            | "splynx.api_secret"
            | "splynx.auth"
            | "splynx.timeout_seconds"
            | "splynx.payment_grace_seconds"
            | "bitpay.environment"
            | "bitpay.api_url"
            | "bitpay.timeout_seconds"
            | "storage.data_dir"
    )
}

/// Stand-ins for values that are missing or wrong, so the rest can still be checked and
/// shown; a problem about them is always recorded.
const FALLBACK_URL: &str = "https://splynx.invalid";
const FALLBACK_CURRENCY: &str = "USD";
const FALLBACK_DATA_DIR: &str = "/var/lib/splynx-bitpay";

/// At most this much of a bad value is quoted back (errors reach cron mail and pages).
const QUOTED_CHARS: usize = 40;

/// The start of a bad value, for an error: at most `QUOTED_CHARS` characters, control
/// characters escaped, "…" when cut.
pub(super) fn quoted_prefix(value: &str) -> String {
    let mut text: String = value
        .chars()
        .take(QUOTED_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    // `escape_debug` escapes quotes too, which read badly inside the error's own quotes.
    text = text.replace("\\\"", "\"").replace("\\'", "'");
    if value.chars().count() > QUOTED_CHARS {
        text.push('…');
    }
    text
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAddon {
    dir: Option<PathBuf>,
    modules_list: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    pairing_roles: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSplynx {
    url: Option<String>,
    api_url: Option<String>,
    api_key: Option<String>,
    api_secret: Option<Secret>,
    payment_method_id: Option<i64>,
    auth: Option<String>,
    timeout_seconds: Option<u64>,
    payment_grace_seconds: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBitPay {
    environment: Option<String>,
    api_url: Option<String>,
    currency: Option<String>,
    transaction_speed: Option<String>,
    credit_on: Option<String>,
    allow_zero_confirmation: Option<bool>,
    notification_url: Option<String>,
    redirect_url: Option<String>,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRefill {
    min: Option<toml::Value>,
    max: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFee {
    percent: Option<toml::Value>,
    vat_percent: Option<toml::Value>,
    message: Option<String>,
    category: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectPay {
    /// A boolean; from the Modules list "1"/"0".
    enabled: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatements {
    group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: Option<PathBuf>,
    owner: Option<String>,
    journal_retention_days: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    concurrency: Option<usize>,
    requests_per_second: Option<u32>,
}

impl Config {
    /// The settings as settlement needs them: refused only when something it cannot run
    /// without is wrong (then every problem is listed); other problems are kept in
    /// `problems` for checkout to refuse and `doctor`, `config` and `reconcile` to report.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let config = Config::inspect(path)?;
        config.ensure_runnable()?;
        Ok(config)
    }

    /// Every setting valid, or every problem at once.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let config = Config::inspect(path)?;
        config.ensure_valid()?;
        Ok(config)
    }

    /// The settings with whatever is wrong in `problems`: only a file that cannot be read
    /// or is not TOML is an error (`config` and `doctor` show the rest).
    pub fn inspect(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::build_from(path, &text, &read_settings_file)
    }

    /// The TOML text alone (no Modules-list settings), every setting valid.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, &|_| {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    /// The TOML text, overlaid with what `read` finds at the Modules-list settings file,
    /// every setting valid.
    pub fn parse_with(
        path: &Path,
        text: &str,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Config, ConfigError> {
        let config = Config::build_from(path, text, read)?;
        config.ensure_valid()?;
        Ok(config)
    }

    fn build_from(
        path: &Path,
        text: &str,
        read: &dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_string(),
        };
        let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let mut sources: BTreeMap<String, Source> = BTreeMap::new();
        for (section, keys) in &table {
            if let Some(keys) = keys.as_table() {
                for key in keys.keys() {
                    sources.insert(format!("{section}.{key}"), Source::Toml);
                }
            }
        }
        let (addon_dir, mode) = addon_settings(&table, &shown)?;
        let file = addon_dir.join(modules_list::SETTINGS_FILE);
        let file_shown = file.display().to_string();
        let list_error = |message: String| ConfigError::ModulesList {
            path: file_shown.clone(),
            message,
        };
        let sections = match (mode, read(&file)) {
            (ModulesListMode::Off, _) => None,
            (ModulesListMode::Auto, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
            (_, Err(e)) => {
                return Err(list_error(format!(
                    "cannot read it: {e} (addon.modules_list = {} in {shown})",
                    if mode == ModulesListMode::Require {
                        "\"require\""
                    } else {
                        "\"auto\""
                    }
                )))
            }
            (_, Ok(ini)) => match modules_list::parse(&ini) {
                Ok(sections) => Some(sections),
                Err(message) => {
                    // Read as absent: what settlement needs from it (Splynx's API key)
                    // is then missing and refuses; the config file may still hold it.
                    let mut config =
                        Config::build(path, table, sources, (addon_dir, mode), None, None)?;
                    config.problems.insert(
                        0,
                        ConfigProblem {
                            key: "modules_list".into(),
                            critical: false,
                            message: list_error(message).to_string(),
                        },
                    );
                    return Ok(config);
                }
            },
        };
        let Some(sections) = sections else {
            return Config::build(path, table, sources, (addon_dir, mode), None, None);
        };
        let build = |partner| {
            Config::build(
                path,
                table.clone(),
                sources.clone(),
                (addon_dir.clone(), mode),
                Some((file.clone(), sections.clone())),
                partner,
            )
        };
        // Each partner's settings are built once, here: never again per payment.
        let mut partners = BTreeMap::new();
        for partner in partners_with_settings(&sections) {
            partners.insert(partner, build(Some(partner))?);
        }
        let mut base = build(None)?;
        base.partners = Kept(std::sync::Arc::new(partners));
        Ok(base)
    }

    fn build(
        path: &Path,
        mut table: toml::Table,
        mut sources: BTreeMap<String, Source>,
        (addon_dir, mode): (PathBuf, ModulesListMode),
        modules_list: Option<(PathBuf, modules_list::Sections)>,
        partner: Option<i64>,
    ) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_string(),
        };
        let file_shown = modules_list
            .as_ref()
            .map(|(file, _)| file.display().to_string())
            .unwrap_or_default();
        let mut problems = Problems::default();
        let overlays = match &modules_list {
            Some((_, sections)) => {
                let mut list_problems = Vec::new();
                let mut found = modules_list::overlays(sections, partner, &mut list_problems);
                for (key, message) in list_problems {
                    problems.push(
                        &key,
                        ConfigError::ModulesList {
                            path: file_shown.clone(),
                            message,
                        },
                    );
                }
                // Splynx's own API key for the add-on, only where the file names none.
                found.extend(
                    modules_list::splynx_key(sections)
                        .into_iter()
                        .filter(|o| sources.get(o.field.toml) != Some(&Source::Toml)),
                );
                found
            }
            None => Vec::new(),
        };
        let mut titles: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut overridden_toml = Vec::new();
        for overlay in &overlays {
            insert_at(&mut table, overlay.field.toml, overlay.value.clone())
                .map_err(parse_error)?;
            let key = overlay.field.toml.to_string();
            if sources.get(&key) == Some(&Source::Toml) {
                overridden_toml.push(key.clone());
            }
            sources.insert(key, overlay.source);
            titles.insert(
                overlay.field.toml,
                overlay.source.field_title(overlay.field.title),
            );
        }
        let raw = RawConfig::read(&table, &shown, &mut problems);
        let invalid = |key: &str, message: String| match titles.get(key) {
            Some(title) => ConfigError::ModulesListValue {
                path: file_shown.clone(),
                field: title.clone(),
                message,
            },
            None => ConfigError::Invalid {
                path: shown.clone(),
                key: key.to_string(),
                message,
            },
        };
        // Every problem is collected (each with its fix) and the value falls back to a
        // default: `Config::read` refuses only what settlement cannot run without.
        let mut bad = |key: &str, message: String| problems.push(key, invalid(key, message));

        let unset = |how: &str| format!("is not set: {how}, or set it in this file");
        let in_modules_list = |title: &str| {
            format!("enter \"{title}\" in Splynx (Config → Integrations → Modules list → splynx_bitpay_addon)")
        };
        let by_splynx = "run the add-on's install (php /var/www/splynx/addons/splynx-bitpay/install), which has Splynx create the add-on's API key";
        let api_key_given = raw.splynx.api_key.is_some();
        let api_secret_given = raw.splynx.api_secret.is_some();
        let url = raw.splynx.url.unwrap_or_else(|| {
            bad("splynx.url", unset(&in_modules_list("Splynx URL")));
            FALLBACK_URL.to_string()
        });
        let api_key = raw.splynx.api_key.unwrap_or_else(|| {
            bad("splynx.api_key", unset(by_splynx));
            String::new()
        });
        let api_secret = raw.splynx.api_secret.unwrap_or_else(|| {
            bad("splynx.api_secret", unset(by_splynx));
            Secret::new("")
        });
        let payment_method_id = raw.splynx.payment_method_id.unwrap_or_else(|| {
            bad(
                "splynx.payment_method_id",
                unset(&in_modules_list("Payment method")),
            );
            0
        });
        let splynx_url = base_url(&url).unwrap_or_else(|m| {
            bad("splynx.url", m);
            FALLBACK_URL.to_string()
        });
        // URLs derived from splynx.url share its problem: each is said once, at its cause.
        let derived = |key: &str, set: bool| (!set).then(|| key.to_string());
        let derived_urls: Vec<String> = [
            derived("splynx.api_url", raw.splynx.api_url.is_some()),
            derived(
                "bitpay.notification_url",
                raw.bitpay.notification_url.is_some(),
            ),
            derived("bitpay.redirect_url", raw.bitpay.redirect_url.is_some()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let api_url = match raw.splynx.api_url {
            Some(u) => match base_url(u.trim_end_matches('/')) {
                Ok(base) => format!("{base}/"),
                Err(m) => {
                    bad("splynx.api_url", m);
                    format!("{FALLBACK_URL}/")
                }
            },
            None => format!("{splynx_url}/api/2.0/"),
        };
        if api_key_given && api_key.trim().is_empty() {
            bad("splynx.api_key", "must not be empty".into());
        }
        if api_secret_given && api_secret.expose().trim().is_empty() {
            bad("splynx.api_secret", "must not be empty".into());
        }
        if api_key == EXAMPLE_API_KEY {
            bad(
                "splynx.api_key",
                "is the example's placeholder: create an API key in Splynx (Administration → API keys) and paste its key here".into(),
            );
        }
        if PLACEHOLDER_SECRETS.contains(&api_secret.expose().trim().to_ascii_lowercase().as_str()) {
            bad(
                "splynx.api_secret",
                "is the example's placeholder: paste the secret of the API key (Administration → API keys)".into(),
            );
        }
        if raw.splynx.payment_method_id.is_some() && payment_method_id <= 0 {
            bad(
                "splynx.payment_method_id",
                format!("must be a positive Splynx payment method id, got {payment_method_id}"),
            );
        }

        let auth = match raw.splynx.auth.as_deref().unwrap_or("access_token") {
            "access_token" => SplynxAuth::AccessToken,
            "signature" => SplynxAuth::Signature,
            other => {
                bad(
                    "splynx.auth",
                    format!(
                        "unknown method \"{}\" (expected \"access_token\" or \"signature\")",
                        quoted_prefix(other)
                    ),
                );
                SplynxAuth::AccessToken
            }
        };
        let environment = match raw.bitpay.environment.as_deref() {
            Some("test") => Environment::Test,
            Some("production") => Environment::Production,
            Some(other) => {
                bad(
                    "bitpay.environment",
                    format!(
                        "unknown environment \"{}\" (expected \"test\" or \"production\")",
                        quoted_prefix(other)
                    ),
                );
                Environment::Test
            }
            None => {
                bad(
                    "bitpay.environment",
                    "is not set: \"test\" or \"production\"".into(),
                );
                Environment::Test
            }
        };
        let bitpay_api_url = match raw.bitpay.api_url {
            Some(u) => base_url(&u).unwrap_or_else(|m| {
                bad("bitpay.api_url", m);
                environment.default_api_url().to_string()
            }),
            None => environment.default_api_url().to_string(),
        };
        let currency = match raw.bitpay.currency {
            Some(currency) if money::known_decimals(&currency).is_some() => currency,
            Some(currency) => {
                bad(
                    "bitpay.currency",
                    format!(
                        "\"{}\" is not an ISO 4217 currency code with minor units, such as \"USD\" (upper case)",
                        quoted_prefix(&currency)
                    ),
                );
                FALLBACK_CURRENCY.to_string()
            }
            None => {
                bad("bitpay.currency", unset(&in_modules_list("Currency")));
                FALLBACK_CURRENCY.to_string()
            }
        };
        let transaction_speed = raw
            .bitpay
            .transaction_speed
            .unwrap_or_else(|| "medium".into());
        let transaction_speed = if matches!(transaction_speed.as_str(), "high" | "medium" | "low") {
            transaction_speed
        } else {
            bad(
                "bitpay.transaction_speed",
                format!(
                    "unknown speed \"{}\" (expected \"high\", \"medium\" or \"low\")",
                    quoted_prefix(&transaction_speed)
                ),
            );
            "medium".to_string()
        };
        let credit_on = match raw.bitpay.credit_on.as_deref().unwrap_or("confirmed") {
            "confirmed" => CreditOn::Confirmed,
            "complete" => CreditOn::Complete,
            other => {
                bad(
                    "bitpay.credit_on",
                    format!(
                        "unknown value \"{}\" (expected \"confirmed\" or \"complete\")",
                        quoted_prefix(other)
                    ),
                );
                // The stricter rule while the admin's intent is unknown.
                CreditOn::Complete
            }
        };
        let allow_zero_confirmation = raw.bitpay.allow_zero_confirmation.unwrap_or(false);
        if transaction_speed == "high"
            && credit_on == CreditOn::Confirmed
            && !allow_zero_confirmation
        {
            bad(
                "bitpay.transaction_speed",
                "\"high\" with credit_on = \"confirmed\" credits customers at zero confirmations: BitPay marks an invoice confirmed as soon as the payment is seen, before any block includes it, so a double-spent or dropped transaction is credited anyway and reversed later. Use \"medium\" (one confirmation), set credit_on = \"complete\", or accept the risk with allow_zero_confirmation = true".into(),
            );
        }
        let notification_url = match raw.bitpay.notification_url {
            Some(u) => absolute_url(&u).unwrap_or_else(|m| {
                bad("bitpay.notification_url", m);
                format!("{splynx_url}/bitpay/ipn")
            }),
            None => format!("{splynx_url}/bitpay/ipn"),
        };
        let redirect_url = match raw.bitpay.redirect_url {
            Some(u) => absolute_url(&u).unwrap_or_else(|m| {
                bad("bitpay.redirect_url", m);
                format!("{splynx_url}/bitpay/result")
            }),
            None => format!("{splynx_url}/bitpay/result"),
        };

        let urls = [
            ("splynx.url", &splynx_url),
            ("splynx.api_url", &api_url),
            ("bitpay.api_url", &bitpay_api_url),
            ("bitpay.notification_url", &notification_url),
            ("bitpay.redirect_url", &redirect_url),
        ];
        for (key, url) in urls {
            if url.starts_with(FALLBACK_URL) || derived_urls.iter().any(|d| d == key) {
                continue;
            }
            if is_placeholder_url(url) {
                bad(
                    key,
                    format!("\"{url}\" is the example's placeholder: set the public address of your Splynx server (where customers open the portal)"),
                );
            } else if environment == Environment::Production && is_plain_http_off_host(url) {
                bad(
                    key,
                    format!(
                        "\"{url}\" is plain http:// in production: API keys, tokens and payment data would cross the network unencrypted. Use https:// (plain http is accepted only for this machine's loopback addresses)"
                    ),
                );
            }
        }

        let refill = raw.refill.unwrap_or_default();
        let mut amount = |key: &str, value: Option<toml::Value>, default: &str| {
            refill_amount(value, default, &currency).unwrap_or_else(|m| {
                bad(key, m);
                refill_amount(None, default, FALLBACK_CURRENCY).expect("the default is valid")
            })
        };
        let min = amount("refill.min", refill.min, "1.00");
        let max = amount("refill.max", refill.max, "5000.00");
        if min > max {
            bad(
                "refill.min",
                format!("{min} is greater than refill.max ({max})"),
            );
        }

        let statements = match raw.statements.and_then(|s| s.group).as_deref() {
            None | Some("month") => StatementGrouping::Month,
            Some("day") => StatementGrouping::Day,
            Some("off") => StatementGrouping::Off,
            Some(other) => {
                bad(
                    "statements.group",
                    format!(
                        "expected \"month\", \"day\" or \"off\", got \"{}\"",
                        quoted_prefix(other)
                    ),
                );
                StatementGrouping::Month
            }
        };

        let fee = raw.fee.unwrap_or_default();
        let mut percent = |key: &str, value| {
            percentage(value).unwrap_or_else(|m| {
                bad(key, m);
                Decimal::ZERO
            })
        };
        let fee = FeeSettings {
            percent: percent("fee.percent", fee.percent),
            vat_percent: percent("fee.vat_percent", fee.vat_percent),
            message: match fee.message.map(|m| m.trim().to_string()) {
                None => DEFAULT_FEE_MESSAGE.to_string(),
                Some(m) if m.is_empty() || m.chars().count() > 200 => {
                    bad(
                        "fee.message",
                        format!(
                            "must be 1 to 200 characters (the fee's description in Splynx and on the pay window), got {} starting \"{}\"",
                            m.chars().count(),
                            quoted_prefix(&m)
                        ),
                    );
                    DEFAULT_FEE_MESSAGE.to_string()
                }
                Some(m) => m,
            },
            category: match fee.category.unwrap_or(DEFAULT_FEE_CATEGORY) {
                id if id > 0 => id,
                id => {
                    bad(
                        "fee.category",
                        format!("must be a Splynx transaction category id (Config → Finance → Transaction categories), got {id}"),
                    );
                    DEFAULT_FEE_CATEGORY
                }
            },
        };

        let direct_pay_links = match raw.direct_pay.and_then(|d| d.enabled) {
            None => false,
            Some(toml::Value::Boolean(on)) => on,
            Some(toml::Value::String(text)) => match text.trim() {
                "1" | "yes" | "true" => true,
                "0" | "no" | "false" => false,
                other => {
                    bad(
                        "direct_pay.enabled",
                        format!(
                            "expected yes (1) or no (0), got \"{}\"",
                            quoted_prefix(other)
                        ),
                    );
                    false
                }
            },
            Some(other) => {
                bad(
                    "direct_pay.enabled",
                    format!(
                        "expected true or false, got {}",
                        quoted_prefix(&other.to_string())
                    ),
                );
                false
            }
        };

        let mut pairing_roles: Vec<String> = raw
            .admin
            .and_then(|a| a.pairing_roles)
            .unwrap_or_else(|| vec![DEFAULT_PAIRING_ROLE.to_string()])
            .iter()
            .map(|r| r.trim().to_string())
            .collect();
        if let Some(odd) = pairing_roles.iter().find(|r| !is_role_identifier(r)) {
            bad(
                "admin.pairing_roles",
                format!(
                    "\"{}\" is not a Splynx role identifier: roles are matched exactly by their identifier, lower case with dashes (\"super-administrator\", \"administrator\", or a custom role's identifier as Administration → Roles shows it)",
                    quoted_prefix(odd)
                ),
            );
            pairing_roles = vec![DEFAULT_PAIRING_ROLE.to_string()];
        } else if pairing_roles.is_empty() {
            bad(
                "admin.pairing_roles",
                format!("list at least one Splynx administrator role, e.g. [\"{DEFAULT_PAIRING_ROLE}\"]; empty names are not roles"),
            );
            pairing_roles = vec![DEFAULT_PAIRING_ROLE.to_string()];
        }
        let mut journal_retention_days = raw.storage.journal_retention_days.unwrap_or(180);
        if !(7..=3650).contains(&journal_retention_days) {
            bad(
                "storage.journal_retention_days",
                format!("must be between 7 and 3650 days, got {journal_retention_days}"),
            );
            journal_retention_days = 180;
        }
        let data_dir = match raw.storage.data_dir {
            Some(dir) if dir.is_absolute() => dir,
            Some(dir) => {
                bad(
                    "storage.data_dir",
                    format!("\"{}\" must be an absolute path", dir.display()),
                );
                PathBuf::from(FALLBACK_DATA_DIR)
            }
            None => {
                bad(
                    "storage.data_dir",
                    format!("is not set: the directory for the key and the state, e.g. \"{FALLBACK_DATA_DIR}\""),
                );
                PathBuf::from(FALLBACK_DATA_DIR)
            }
        };
        let mut data_owner = raw
            .storage
            .owner
            .unwrap_or_else(|| DEFAULT_DATA_OWNER.to_string());
        if !is_user_name(&data_owner) {
            bad(
                "storage.owner",
                format!("\"{}\" is not a user name (the user php-fpm runs the add-on's pages as, e.g. \"{DEFAULT_DATA_OWNER}\")", quoted_prefix(&data_owner)),
            );
            data_owner = DEFAULT_DATA_OWNER.to_string();
        }

        let reconcile = raw.reconcile.unwrap_or_default();
        let mut concurrency = reconcile.concurrency.unwrap_or(8);
        if !(1..=64).contains(&concurrency) {
            bad(
                "reconcile.concurrency",
                format!("must be between 1 and 64, got {concurrency}"),
            );
            concurrency = 8;
        }
        let mut requests_per_second = reconcile.requests_per_second.unwrap_or(400);
        if requests_per_second == 0 {
            bad("reconcile.requests_per_second", "must be at least 1".into());
            requests_per_second = 400;
        }

        let splynx_timeout = timeout(
            raw.splynx.timeout_seconds,
            "splynx.timeout_seconds",
            &mut bad,
        );
        let bitpay_timeout = timeout(
            raw.bitpay.timeout_seconds,
            "bitpay.timeout_seconds",
            &mut bad,
        );
        let payment_grace = Duration::from_secs(
            raw.splynx
                .payment_grace_seconds
                .unwrap_or(DEFAULT_PAYMENT_GRACE_SECONDS),
        );
        if payment_grace <= splynx_timeout {
            bad(
                "splynx.payment_grace_seconds",
                format!(
                    "{} seconds must be longer than splynx.timeout_seconds ({}): Splynx may still commit a payment after we stopped waiting for its reply",
                    payment_grace.as_secs(),
                    splynx_timeout.as_secs()
                ),
            );
        }

        // A secret pasted into the wrong field is never quoted back.
        let secrets: Vec<String> = std::iter::once(api_secret.expose().to_string())
            .chain(modules_list.iter().flat_map(|(_, sections)| {
                sections
                    .values()
                    .flat_map(|values| {
                        ["api_secret", "add_on_encryption_key"].map(|k| values.get(k))
                    })
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
            }))
            .map(|s| s.trim().to_string())
            .filter(|s| s.chars().count() >= 4)
            .collect();
        let mut problems = problems.0;
        for problem in &mut problems {
            for secret in &secrets {
                problem.message = problem.message.replace(secret.as_str(), "(redacted)");
            }
        }

        Ok(Config {
            path: path.to_path_buf(),
            splynx: SplynxSettings {
                url: splynx_url,
                api_url,
                api_key,
                api_secret,
                payment_method_id,
                auth,
                timeout: splynx_timeout,
                payment_grace,
            },
            bitpay: BitPaySettings {
                environment,
                api_url: bitpay_api_url,
                currency,
                transaction_speed,
                credit_on,
                allow_zero_confirmation,
                notification_url,
                redirect_url,
                timeout: bitpay_timeout,
            },
            refill: RefillSettings { min, max },
            statements,
            fee,
            direct_pay_links,
            reconcile: ReconcileSettings {
                concurrency,
                requests_per_second,
            },
            data_dir,
            data_owner,
            journal_retention_days,
            pairing_roles,
            addon_dir,
            modules_list_mode: mode,
            modules_list: modules_list.map(|(file, sections)| (file, Kept(sections))),
            partner,
            partners: Kept(Default::default()),
            sources,
            overridden_toml,
            problems,
        })
    }

    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("bitpay.key")
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("state.db")
    }
}

/// The partners with settings of their own in the Modules list (a section named by the
/// partner's id, with a value in it).
fn partners_with_settings(sections: &modules_list::Sections) -> Vec<i64> {
    sections
        .iter()
        .filter(|(_, values)| values.values().any(|v| !v.trim().is_empty()))
        .filter_map(|(name, _)| name.parse().ok())
        .collect()
}

/// The Modules-list settings file, read no further than the INI reader accepts (a bigger
/// one is refused by it, naming its size), bytes that are not UTF-8 replaced.
fn read_settings_file(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?
        .take(super::ini::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Sets `section.key` in the TOML table (a Modules-list value overlaid).
fn insert_at(
    table: &mut toml::Table,
    dotted: &str,
    value: toml::Value,
) -> Result<(), toml::de::Error> {
    let (section, key) = dotted
        .split_once('.')
        .expect("Modules-list fields name a TOML section.key");
    table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| serde::de::Error::custom(format!("`{section}` must be a table")))?
        .insert(key.to_string(), value);
    Ok(())
}

fn timeout(seconds: Option<u64>, key: &str, bad: &mut dyn FnMut(&str, String)) -> Duration {
    match seconds.unwrap_or(30) {
        0 => bad(key, "must be at least 1 second".into()),
        s if s > 600 => bad(key, format!("{s} seconds is too long (at most 600)")),
        s => return Duration::from_secs(s),
    }
    Duration::from_secs(30)
}

/// The web server's user on Debian, as the package creates the data directory.
pub(super) const DEFAULT_DATA_OWNER: &str = "www-data";

/// A Splynx role identifier: lower-case letters, digits, `-` and `_`.
fn is_role_identifier(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

/// A POSIX-portable user name (letters, digits, `.`, `_`, `-`; not starting with `-`).
fn is_user_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `[addon] dir` and `modules_list`, read before the overlay (they decide where it is).
fn addon_settings(
    table: &toml::Table,
    shown: &str,
) -> Result<(PathBuf, ModulesListMode), ConfigError> {
    let addon = match table.get("addon") {
        Some(value) => RawAddon::deserialize(value.clone()).map_err(|e| ConfigError::Parse {
            path: shown.to_string(),
            message: format!("[addon]: {}", e.to_string().trim_end()),
        })?,
        None => RawAddon {
            dir: None,
            modules_list: None,
        },
    };
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        path: shown.to_string(),
        key: key.to_string(),
        message,
    };
    let dir = addon
        .dir
        .unwrap_or_else(|| PathBuf::from(modules_list::DEFAULT_ADDON_DIR));
    if !dir.is_absolute() {
        return Err(invalid(
            "addon.dir",
            format!("\"{}\" must be an absolute path", dir.display()),
        ));
    }
    let mode = match addon.modules_list.as_deref().unwrap_or("auto") {
        "auto" => ModulesListMode::Auto,
        "off" => ModulesListMode::Off,
        "require" => ModulesListMode::Require,
        other => {
            return Err(invalid(
                "addon.modules_list",
                format!("unknown value \"{other}\" (expected \"auto\", \"off\" or \"require\")"),
            ))
        }
    };
    Ok((dir, mode))
}

/// The example config's values, which must never reach Splynx or BitPay.
const EXAMPLE_API_KEY: &str = "0123456789abcdef0123456789abcdef";
const PLACEHOLDER_SECRETS: [&str; 2] = ["change-me", "changeme"];

/// A URL on the documentation domains (`example.com`, `.net`, `.org`, RFC 2606).
fn is_placeholder_url(text: &str) -> bool {
    Url::parse(text)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| {
            ["example.com", "example.net", "example.org"]
                .iter()
                .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
        })
}

/// An http(s) URL used as a base for paths: no trailing slash, no query or fragment.
pub(super) fn base_url(text: &str) -> Result<String, String> {
    if text.ends_with('/') {
        return Err(format!(
            "\"{text}\" must not end with a slash (write \"{}\")",
            text.trim_end_matches('/')
        ));
    }
    let url = absolute_url(text)?;
    let parsed = Url::parse(&url).map_err(|e| e.to_string())?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("\"{text}\" must not have a query or fragment"));
    }
    Ok(url)
}

pub(super) fn absolute_url(text: &str) -> Result<String, String> {
    let parsed = Url::parse(text).map_err(|e| format!("\"{text}\" is not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "\"{text}\" must be an http:// or https:// URL with a host"
        ));
    }
    Ok(text.to_string())
}

/// `http://` to anything but this machine (127.0.0.0/8, ::1, localhost).
pub(super) fn is_plain_http_off_host(text: &str) -> bool {
    let Ok(url) = Url::parse(text) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// A percentage, 0 up to (not including) 100, as an exact decimal: `"2.5"` or `2`.
fn percentage(value: Option<toml::Value>) -> Result<Decimal, String> {
    let text = match value {
        None => return Ok(Decimal::ZERO),
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(i)) => i.to_string(),
        Some(toml::Value::Float(f)) => {
            return Err(format!(
                "write percentages as quoted decimals, e.g. \"{f}\", so they stay exact"
            ))
        }
        Some(other) => return Err(format!("expected a percentage like \"2.5\", got {other}")),
    };
    let text = text.trim_end_matches('%').trim();
    let exact = text.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !text.is_empty();
    match text.parse::<Decimal>() {
        Ok(p) if exact && p < Decimal::ONE_HUNDRED && p.normalize().scale() <= 4 => {
            Ok(p.normalize())
        }
        _ => Err(format!(
            "\"{text}\" is not a percentage from 0 to under 100 (at most 4 decimal places), e.g. \"2.5\""
        )),
    }
}

pub(super) fn refill_amount(
    value: Option<toml::Value>,
    default: &str,
    currency: &str,
) -> Result<Decimal, String> {
    let text = match value {
        None => default.to_string(),
        Some(toml::Value::String(s)) => s,
        Some(toml::Value::Integer(i)) if i >= 0 => i.to_string(),
        Some(toml::Value::Integer(i)) => {
            return Err(format!("{i} is negative; amounts must be positive"))
        }
        Some(toml::Value::Float(f)) => {
            return Err(format!(
                "write amounts as quoted decimals, e.g. \"{f:.2}\", so they stay exact"
            ))
        }
        Some(other) => return Err(format!("expected an amount like \"1.00\", got {other}")),
    };
    if text.trim_start().starts_with('-') {
        return Err(format!("\"{text}\" is negative; amounts must be positive"));
    }
    money::parse_amount(&text, currency).map_err(|e| e.to_string())
}
