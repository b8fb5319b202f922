//! The TOML file parsed strictly (unknown keys are errors) into `RawConfig`, overlaid with
//! the Modules list, then validated section by section (`servers`, `checkout`,
//! `operation`) into `Config`. Every error names the file (or the Modules-list field), the
//! key and the problem; every problem is collected at once. Each partner's settings are
//! built here once, at load.

use std::path::Path;

use serde::Deserialize;

use super::table;
use super::*;
use raw::{RawAddon, RawConfig};

mod checkout;
mod operation;
mod raw;
mod servers;
mod values;

pub(in crate::config) use values::quoted_prefix;

/// Where a section parser reports a bad value (`section.key` and what is wrong); the value
/// then falls back to its default.
type Bad<'a> = &'a mut dyn FnMut(&str, String);

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
            critical: table::is_critical(key),
            message,
        });
    }
}

/// Stand-ins for values that are missing or wrong, so the rest can still be checked and
/// shown; a problem about them is always recorded.
const FALLBACK_URL: &str = "https://splynx.invalid";
const FALLBACK_CURRENCY: &str = "USD";
const FALLBACK_DATA_DIR: &str = "/var/lib/splynx-bitpay";

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
        let mut bad: &mut dyn FnMut(&str, String) = &mut bad;

        let derived_urls = servers::derived_urls(&raw.splynx, &raw.bitpay);
        let times = servers::RawTimes::of(&raw.splynx, &raw.bitpay);
        let mut splynx = servers::splynx(raw.splynx, &mut bad);
        let server = servers::server_kind(raw.server, &mut bad);
        let mut bitpay = servers::bitpay(raw.bitpay, server, &splynx.url, &mut bad);
        let btcpay = servers::btcpay(raw.btcpay, server, &bitpay, &mut bad);
        servers::check_urls(&splynx, &bitpay, &derived_urls, &mut bad);
        let refill = checkout::refill(raw.refill, &bitpay.currency, &mut bad);
        let statements = checkout::statements(raw.statements, &mut bad);
        let fee = checkout::fee(raw.fee, &mut bad);
        let direct_pay_links = checkout::direct_pay(raw.direct_pay, &mut bad);
        let (pairing_roles, refund_roles) = operation::admin_roles(raw.admin, &mut bad);
        let storage = operation::storage(raw.storage, &mut bad);
        let reconcile = operation::reconcile(raw.reconcile, &mut bad);
        let metrics_textfile = operation::metrics_textfile(raw.metrics, &mut bad);
        servers::timeouts(times, &mut splynx, &mut bitpay, &mut bad);

        // A secret pasted into the wrong field is never quoted back.
        let secrets: Vec<String> = std::iter::once(splynx.api_secret.expose().to_string())
            .chain(btcpay.api_key.iter().map(|k| k.expose().to_string()))
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
            server,
            splynx,
            bitpay,
            btcpay,
            refill,
            statements,
            fee,
            direct_pay_links,
            reconcile,
            metrics_textfile,
            data_dir: storage.data_dir,
            data_owner: storage.owner,
            journal_retention_days: storage.journal_retention_days,
            pairing_roles,
            refund_roles,
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
