//! The file's sections as TOML gives them: strict (an unknown key is an error), every value
//! optional, checked by the section parsers.

use std::path::PathBuf;

use serde::Deserialize;

use super::{quoted_prefix, table, ConfigError, Problems};
use crate::secret::Secret;

/// The file's sections, each read on its own so that every section's problem is found in
/// one run (`[addon]` is read first, by `addon_settings`: it says where the overlay is).
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    pub(super) btcpay: RawBtcpay,
    /// Every key may come from the Modules list instead (`unset` says where to set it).
    pub(super) splynx: RawSplynx,
    pub(super) bitpay: RawBitPay,
    pub(super) refill: Option<RawRefill>,
    pub(super) statements: Option<RawStatements>,
    pub(super) fee: Option<RawFee>,
    pub(super) direct_pay: Option<RawDirectPay>,
    pub(super) storage: RawStorage,
    pub(super) reconcile: Option<RawReconcile>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) admin: Option<RawAdmin>,
}

impl RawConfig {
    /// The sections of `table`; a section that does not fit its schema (an unknown key, a
    /// wrong type) is a problem and reads as empty.
    pub(super) fn read(table: &toml::Table, shown: &str, problems: &mut Problems) -> RawConfig {
        let sections = table::sections();
        for (name, value) in table
            .iter()
            .filter(|(k, _)| !sections.contains(&k.as_str()))
        {
            let name = quoted_prefix(name);
            let message = match value {
                toml::Value::Table(_) => format!(
                    "unknown section [{name}] (known: {})",
                    sections
                        .iter()
                        .map(|s| format!("[{s}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
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
            server: read!("server").unwrap_or_default(),
            btcpay: read!("btcpay").unwrap_or_default(),
            splynx: read!("splynx").unwrap_or_default(),
            bitpay: read!("bitpay").unwrap_or_default(),
            refill: read!("refill"),
            statements: read!("statements"),
            fee: read!("fee"),
            direct_pay: read!("direct_pay"),
            storage: read!("storage").unwrap_or_default(),
            reconcile: read!("reconcile"),
            metrics: read!("metrics"),
            admin: read!("admin"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAddon {
    pub(super) dir: Option<PathBuf>,
    pub(super) modules_list: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) pairing_roles: Option<Vec<String>>,
    pub(super) refund_roles: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSplynx {
    pub(super) url: Option<String>,
    pub(super) api_url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) api_secret: Option<Secret>,
    pub(super) payment_method_id: Option<i64>,
    pub(super) auth: Option<String>,
    pub(super) timeout_seconds: Option<u64>,
    pub(super) payment_grace_seconds: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBitPay {
    pub(super) environment: Option<String>,
    pub(super) api_url: Option<String>,
    pub(super) currency: Option<String>,
    pub(super) transaction_speed: Option<String>,
    pub(super) credit_on: Option<String>,
    pub(super) allow_zero_confirmation: Option<bool>,
    pub(super) notification_url: Option<String>,
    pub(super) redirect_url: Option<String>,
    pub(super) timeout_seconds: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRefill {
    pub(super) min: Option<toml::Value>,
    pub(super) max: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFee {
    pub(super) percent: Option<toml::Value>,
    pub(super) vat_percent: Option<toml::Value>,
    pub(super) message: Option<String>,
    pub(super) category: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirectPay {
    /// A boolean; from the Modules list "1"/"0".
    pub(super) enabled: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatements {
    pub(super) group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) owner: Option<String>,
    pub(super) journal_retention_days: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconcile {
    pub(super) concurrency: Option<usize>,
    pub(super) requests_per_second: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) textfile: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBtcpay {
    pub(super) url: Option<String>,
    pub(super) store_id: Option<String>,
    pub(super) transaction_speed: Option<String>,
    pub(super) api_key: Option<Secret>,
}
