//! The admin's settings as the rest of the program sees them: typed, validated, with
//! defaults applied. Reading and checking the TOML file is `parse`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;
use rust_decimal::Decimal;

pub const DEFAULT_PATH: &str = "/etc/splynx-bitpay/config.toml";
pub const ENV_VAR: &str = "SPLYNX_BITPAY_CONFIG";

/// 15 minutes: far above any Splynx timeout, and above PHP's usual `max_execution_time`,
/// so a request Splynx was still working on has committed (or died) by then.
pub const DEFAULT_PAYMENT_GRACE_SECONDS: u64 = 900;

/// Only the super administrator may change the pairing from the web by default: whoever
/// pairs decides which BitPay account customers pay.
pub const DEFAULT_PAIRING_ROLE: &str = "super-administrator";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source} (pass --config PATH or set {ENV_VAR})")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
    /// A value the admin entered in Splynx's Modules list.
    #[error("Modules list setting \"{field}\": {message} (change it in Splynx: Config → Integrations → Modules list → splynx_bitpay_addon; read from {path})")]
    ModulesListValue {
        path: String,
        field: String,
        message: String,
    },
    #[error("Modules list settings {path}: {message}")]
    ModulesList { path: String, message: String },
}

/// Where an effective setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Toml,
    ModulesList,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Toml => "toml",
            Source::ModulesList => "modules-list",
        }
    }
}

/// Whether Splynx's Modules-list settings are read (`[addon] modules_list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModulesListMode {
    /// When the file exists.
    Auto,
    Off,
    /// The file must exist.
    Require,
}

impl ConfigError {
    pub fn exit_code(&self) -> u8 {
        crate::exit::CONFIG
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Test,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }

    pub fn default_api_url(self) -> &'static str {
        match self {
            Environment::Test => "https://test.bitpay.com",
            Environment::Production => "https://bitpay.com",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOn {
    /// `confirmed` or `complete`.
    Confirmed,
    Complete,
}

/// How requests to the Splynx API authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplynxAuth {
    /// One signed `admin/auth/tokens` call, then a shared 30-minute access token: requests
    /// from many processes run in parallel.
    AccessToken,
    /// Every request signed with the next nonce; requests are serialized across processes
    /// so the nonces reach Splynx in order.
    Signature,
}

#[derive(Debug, Clone)]
pub struct SplynxSettings {
    pub url: String,
    /// Always ends with `/`.
    pub api_url: String,
    pub api_key: String,
    pub api_secret: Secret,
    pub payment_method_id: i64,
    pub auth: SplynxAuth,
    pub timeout: Duration,
    /// How long a payment POST whose outcome is unknown is only looked up, never sent again.
    pub payment_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct BitPaySettings {
    pub environment: Environment,
    /// No trailing slash.
    pub api_url: String,
    pub currency: String,
    pub transaction_speed: String,
    pub credit_on: CreditOn,
    /// The admin accepted crediting at zero confirmations (`high` speed + `confirmed`).
    pub allow_zero_confirmation: bool,
    pub notification_url: String,
    pub redirect_url: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RefillSettings {
    pub min: Decimal,
    pub max: Decimal,
}

#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    pub concurrency: usize,
    pub requests_per_second: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub splynx: SplynxSettings,
    pub bitpay: BitPaySettings,
    pub refill: RefillSettings,
    pub reconcile: ReconcileSettings,
    pub data_dir: PathBuf,
    /// Journal detail of final records older than this is pruned (the mapping is kept).
    pub journal_retention_days: u32,
    /// Splynx administrator roles that may change the pairing from the admin page.
    pub pairing_roles: Vec<String>,
    /// The add-on's directory in Splynx, and whether its Modules-list settings are read.
    pub addon_dir: PathBuf,
    pub modules_list: ModulesListMode,
    /// The Modules-list settings file in effect, if one was read.
    pub modules_list_file: Option<PathBuf>,
    /// Where each setting (`section.key`) came from; absent means the default.
    pub sources: BTreeMap<String, Source>,
    /// Keys the config file sets that the Modules list overrides.
    pub overridden_toml: Vec<String>,
}

impl Config {
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }
}

/// Which file to read: `--config`, else `$SPLYNX_BITPAY_CONFIG`, else the default path.
pub fn resolve_path(flag: Option<&Path>, env_value: Option<&str>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| env_value.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

pub mod modules_list;
mod parse;
#[cfg(test)]
mod tests;
