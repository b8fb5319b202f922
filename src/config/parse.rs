//! The TOML file parsed strictly (unknown keys are errors) into `RawConfig`, then validated
//! into `Config`. Every error names the file, the key and the problem.

use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use url::Url;

use super::*;
use crate::money;
use crate::secret::Secret;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Every key may come from the Modules list instead (`required` says where to set it).
    #[serde(default)]
    splynx: RawSplynx,
    bitpay: RawBitPay,
    refill: Option<RawRefill>,
    statements: Option<RawStatements>,
    fee: Option<RawFee>,
    direct_pay: Option<RawDirectPay>,
    storage: RawStorage,
    reconcile: Option<RawReconcile>,
    admin: Option<RawAdmin>,
    /// Read on its own first (`addon_settings`): it says where the overlay comes from.
    #[serde(rename = "addon")]
    _addon: Option<serde::de::IgnoredAny>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBitPay {
    environment: String,
    api_url: Option<String>,
    currency: String,
    transaction_speed: Option<String>,
    credit_on: Option<String>,
    allow_zero_confirmation: Option<bool>,
    notification_url: Option<String>,
    redirect_url: Option<String>,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: PathBuf,
    owner: Option<String>,
    journal_retention_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    concurrency: Option<usize>,
    requests_per_second: Option<u32>,
}

impl Config {
    /// The TOML file, overlaid with the Modules-list settings file when there is one.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse_with(path, &text, &|file| std::fs::read_to_string(file))
    }

    /// The TOML text alone (no Modules-list settings).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, &|_| {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    /// The TOML text, overlaid with what `read` finds at the Modules-list settings file.
    pub fn parse_with(
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
            (_, Ok(ini)) => Some(modules_list::parse(&ini).map_err(list_error)?),
        };
        Config::build(
            path,
            text,
            table,
            sources,
            (addon_dir, mode),
            sections.map(|s| (file, s)),
            None,
        )
    }

    /// This partner's settings: the Modules list's Partners settings for it (else for the
    /// default partner) over everything else. Without Modules-list settings, the same.
    pub fn for_partner(&self, partner: Option<i64>) -> Result<Config, ConfigError> {
        let (Some(partner), Some((file, sections))) = (partner, &self.modules_list) else {
            return Ok(self.clone());
        };
        let table: toml::Table =
            toml::from_str(&self.toml_text.0).map_err(|e| ConfigError::Parse {
                path: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        Config::build(
            &self.path,
            &self.toml_text.0,
            table,
            self.toml_sources(),
            (self.addon_dir.clone(), self.modules_list_mode),
            Some((file.clone(), sections.0.clone())),
            Some(partner),
        )
    }

    /// The keys the TOML file sets.
    fn toml_sources(&self) -> BTreeMap<String, Source> {
        self.sources
            .iter()
            .filter(|(_, s)| **s == Source::Toml)
            .map(|(k, s)| (k.clone(), *s))
            .collect()
    }

    fn build(
        path: &Path,
        text: &str,
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
        let overlays = match &modules_list {
            Some((_, sections)) => {
                let mut found = modules_list::overlays(sections, partner).map_err(|message| {
                    ConfigError::ModulesList {
                        path: file_shown.clone(),
                        message,
                    }
                })?;
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
        let raw: RawConfig = match RawConfig::deserialize(toml::Value::Table(table)) {
            Ok(raw) => raw,
            // The TOML's own error names the line; with nothing overlaid it is the same.
            Err(_) if titles.is_empty() => toml::from_str(text).map_err(parse_error)?,
            Err(e) => return Err(parse_error(e)),
        };
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

        let unset = |key: &str, how: &str| ConfigError::Invalid {
            path: shown.clone(),
            key: key.to_string(),
            message: format!("is not set: {how}, or set it in this file"),
        };
        let in_modules_list = |title: &str| {
            format!("enter \"{title}\" in Splynx (Config → Integrations → Modules list → splynx_bitpay_addon)")
        };
        let by_splynx = "run the add-on's install (php /var/www/splynx/addons/splynx-bitpay/install), which has Splynx create the add-on's API key";
        let url = raw
            .splynx
            .url
            .ok_or_else(|| unset("splynx.url", &in_modules_list("Splynx URL")))?;
        let api_key = raw
            .splynx
            .api_key
            .ok_or_else(|| unset("splynx.api_key", by_splynx))?;
        let api_secret = raw
            .splynx
            .api_secret
            .ok_or_else(|| unset("splynx.api_secret", by_splynx))?;
        let payment_method_id = raw.splynx.payment_method_id.ok_or_else(|| {
            unset(
                "splynx.payment_method_id",
                &in_modules_list("Payment method"),
            )
        })?;
        let splynx_url = base_url(&url).map_err(|m| invalid("splynx.url", m))?;
        let api_url = match raw.splynx.api_url {
            Some(u) => {
                let base =
                    base_url(u.trim_end_matches('/')).map_err(|m| invalid("splynx.api_url", m))?;
                format!("{base}/")
            }
            None => format!("{splynx_url}/api/2.0/"),
        };
        if api_key.trim().is_empty() {
            return Err(invalid("splynx.api_key", "must not be empty".into()));
        }
        if api_secret.expose().trim().is_empty() {
            return Err(invalid("splynx.api_secret", "must not be empty".into()));
        }
        if api_key == EXAMPLE_API_KEY {
            return Err(invalid(
                "splynx.api_key",
                "is the example's placeholder: create an API key in Splynx (Administration → API keys) and paste its key here".into(),
            ));
        }
        if PLACEHOLDER_SECRETS.contains(&api_secret.expose().trim().to_ascii_lowercase().as_str()) {
            return Err(invalid(
                "splynx.api_secret",
                "is the example's placeholder: paste the secret of the API key (Administration → API keys)".into(),
            ));
        }
        if payment_method_id <= 0 {
            return Err(invalid(
                "splynx.payment_method_id",
                format!("must be a positive Splynx payment method id, got {payment_method_id}"),
            ));
        }

        let auth = match raw.splynx.auth.as_deref().unwrap_or("access_token") {
            "access_token" => SplynxAuth::AccessToken,
            "signature" => SplynxAuth::Signature,
            other => {
                return Err(invalid(
                    "splynx.auth",
                    format!(
                        "unknown method \"{other}\" (expected \"access_token\" or \"signature\")"
                    ),
                ))
            }
        };
        let environment = match raw.bitpay.environment.as_str() {
            "test" => Environment::Test,
            "production" => Environment::Production,
            other => {
                return Err(invalid(
                    "bitpay.environment",
                    format!(
                        "unknown environment \"{other}\" (expected \"test\" or \"production\")"
                    ),
                ))
            }
        };
        let bitpay_api_url = match raw.bitpay.api_url {
            Some(u) => base_url(&u).map_err(|m| invalid("bitpay.api_url", m))?,
            None => environment.default_api_url().to_string(),
        };
        let currency = raw.bitpay.currency.clone();
        if money::known_decimals(&currency).is_none() {
            return Err(invalid(
                "bitpay.currency",
                format!(
                    "\"{currency}\" is not an ISO 4217 currency code with minor units, such as \"USD\" (upper case)"
                ),
            ));
        }
        let transaction_speed = raw
            .bitpay
            .transaction_speed
            .unwrap_or_else(|| "medium".into());
        if !matches!(transaction_speed.as_str(), "high" | "medium" | "low") {
            return Err(invalid(
                "bitpay.transaction_speed",
                format!("unknown speed \"{transaction_speed}\" (expected \"high\", \"medium\" or \"low\")"),
            ));
        }
        let credit_on = match raw.bitpay.credit_on.as_deref().unwrap_or("confirmed") {
            "confirmed" => CreditOn::Confirmed,
            "complete" => CreditOn::Complete,
            other => {
                return Err(invalid(
                    "bitpay.credit_on",
                    format!("unknown value \"{other}\" (expected \"confirmed\" or \"complete\")"),
                ))
            }
        };
        let allow_zero_confirmation = raw.bitpay.allow_zero_confirmation.unwrap_or(false);
        if transaction_speed == "high"
            && credit_on == CreditOn::Confirmed
            && !allow_zero_confirmation
        {
            return Err(invalid(
                "bitpay.transaction_speed",
                "\"high\" with credit_on = \"confirmed\" credits customers at zero confirmations: BitPay marks an invoice confirmed as soon as the payment is seen, before any block includes it, so a double-spent or dropped transaction is credited anyway and reversed later. Use \"medium\" (one confirmation), set credit_on = \"complete\", or accept the risk with allow_zero_confirmation = true".into(),
            ));
        }
        let notification_url = match raw.bitpay.notification_url {
            Some(u) => absolute_url(&u).map_err(|m| invalid("bitpay.notification_url", m))?,
            None => format!("{splynx_url}/bitpay/ipn"),
        };
        let redirect_url = match raw.bitpay.redirect_url {
            Some(u) => absolute_url(&u).map_err(|m| invalid("bitpay.redirect_url", m))?,
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
            if is_placeholder_url(url) {
                return Err(invalid(
                    key,
                    format!("\"{url}\" is the example's placeholder: set the public address of your Splynx server (where customers open the portal)"),
                ));
            }
        }
        if environment == Environment::Production {
            for (key, url) in urls {
                if is_plain_http_off_host(url) {
                    return Err(invalid(
                        key,
                        format!(
                            "\"{url}\" is plain http:// in production: API keys, tokens and payment data would cross the network unencrypted. Use https:// (plain http is accepted only for this machine's loopback addresses)"
                        ),
                    ));
                }
            }
        }

        let refill = raw.refill.unwrap_or(RawRefill {
            min: None,
            max: None,
        });
        let min =
            refill_amount(refill.min, "1.00", &currency).map_err(|m| invalid("refill.min", m))?;
        let max = refill_amount(refill.max, "5000.00", &currency)
            .map_err(|m| invalid("refill.max", m))?;
        if min > max {
            return Err(invalid(
                "refill.min",
                format!("{min} is greater than refill.max ({max})"),
            ));
        }

        let statements = match raw.statements.and_then(|s| s.group).as_deref() {
            None | Some("month") => StatementGrouping::Month,
            Some("day") => StatementGrouping::Day,
            Some("off") => StatementGrouping::Off,
            Some(other) => {
                return Err(invalid(
                    "statements.group",
                    format!("expected \"month\", \"day\" or \"off\", got {other:?}"),
                ))
            }
        };

        let fee = raw.fee.unwrap_or_default();
        let fee = FeeSettings {
            percent: percentage(fee.percent).map_err(|m| invalid("fee.percent", m))?,
            vat_percent: percentage(fee.vat_percent).map_err(|m| invalid("fee.vat_percent", m))?,
            message: match fee.message.map(|m| m.trim().to_string()) {
                None => DEFAULT_FEE_MESSAGE.to_string(),
                Some(m) if m.is_empty() || m.chars().count() > 200 => {
                    return Err(invalid(
                        "fee.message",
                        "must be 1 to 200 characters: the fee's description in Splynx and on the pay window".into(),
                    ))
                }
                Some(m) => m,
            },
            category: match fee.category.unwrap_or(DEFAULT_FEE_CATEGORY) {
                id if id > 0 => id,
                id => {
                    return Err(invalid(
                        "fee.category",
                        format!("must be a Splynx transaction category id (Config → Finance → Transaction categories), got {id}"),
                    ))
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
                    return Err(invalid(
                        "direct_pay.enabled",
                        format!("expected yes (1) or no (0), got {other:?}"),
                    ))
                }
            },
            Some(other) => {
                return Err(invalid(
                    "direct_pay.enabled",
                    format!("expected true or false, got {other}"),
                ))
            }
        };

        let pairing_roles: Vec<String> = raw
            .admin
            .and_then(|a| a.pairing_roles)
            .unwrap_or_else(|| vec![DEFAULT_PAIRING_ROLE.to_string()])
            .iter()
            .map(|r| r.trim().to_string())
            .collect();
        if pairing_roles.is_empty() || pairing_roles.iter().any(String::is_empty) {
            return Err(invalid(
                "admin.pairing_roles",
                format!("list at least one Splynx administrator role, e.g. [\"{DEFAULT_PAIRING_ROLE}\"]; empty names are not roles"),
            ));
        }
        let journal_retention_days = raw.storage.journal_retention_days.unwrap_or(180);
        if !(7..=3650).contains(&journal_retention_days) {
            return Err(invalid(
                "storage.journal_retention_days",
                format!("must be between 7 and 3650 days, got {journal_retention_days}"),
            ));
        }
        let data_dir = raw.storage.data_dir;
        if !data_dir.is_absolute() {
            return Err(invalid(
                "storage.data_dir",
                format!("\"{}\" must be an absolute path", data_dir.display()),
            ));
        }
        let data_owner = raw
            .storage
            .owner
            .unwrap_or_else(|| DEFAULT_DATA_OWNER.to_string());
        if !is_user_name(&data_owner) {
            return Err(invalid(
                "storage.owner",
                format!("\"{data_owner}\" is not a user name (the user php-fpm runs the add-on's pages as, e.g. \"{DEFAULT_DATA_OWNER}\")"),
            ));
        }

        let reconcile = raw.reconcile.unwrap_or(RawReconcile {
            concurrency: None,
            requests_per_second: None,
        });
        let concurrency = reconcile.concurrency.unwrap_or(8);
        if !(1..=64).contains(&concurrency) {
            return Err(invalid(
                "reconcile.concurrency",
                format!("must be between 1 and 64, got {concurrency}"),
            ));
        }
        let requests_per_second = reconcile.requests_per_second.unwrap_or(400);
        if requests_per_second == 0 {
            return Err(invalid(
                "reconcile.requests_per_second",
                "must be at least 1".into(),
            ));
        }

        let splynx_timeout = timeout(
            raw.splynx.timeout_seconds,
            "splynx.timeout_seconds",
            &invalid,
        )?;
        let payment_grace = Duration::from_secs(
            raw.splynx
                .payment_grace_seconds
                .unwrap_or(DEFAULT_PAYMENT_GRACE_SECONDS),
        );
        if payment_grace <= splynx_timeout {
            return Err(invalid(
                "splynx.payment_grace_seconds",
                format!(
                    "{} seconds must be longer than splynx.timeout_seconds ({}): Splynx may still commit a payment after we stopped waiting for its reply",
                    payment_grace.as_secs(),
                    splynx_timeout.as_secs()
                ),
            ));
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
                timeout: timeout(
                    raw.bitpay.timeout_seconds,
                    "bitpay.timeout_seconds",
                    &invalid,
                )?,
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
            toml_text: Kept(text.to_string()),
            sources,
            overridden_toml,
        })
    }

    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("bitpay.key")
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("state.db")
    }
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

fn timeout(
    seconds: Option<u64>,
    key: &str,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    match seconds.unwrap_or(30) {
        0 => Err(invalid(key, "must be at least 1 second".into())),
        s if s > 600 => Err(invalid(
            key,
            format!("{s} seconds is too long (at most 600)"),
        )),
        s => Ok(Duration::from_secs(s)),
    }
}

/// The web server's user on Debian, as the package creates the data directory.
pub const DEFAULT_DATA_OWNER: &str = "www-data";

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
        Ok(p) if exact && p < Decimal::ONE_HUNDRED && p.scale() <= 4 => Ok(p.normalize()),
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
