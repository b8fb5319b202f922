//! The admin's settings as the rest of the program sees them: typed, validated, with
//! defaults applied. Reading and checking the TOML file is `parse`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::fee::FeeSettings;
use crate::secret::Secret;
use rust_decimal::Decimal;

pub const DEFAULT_PATH: &str = "/etc/splynx-bitpay/config.toml";
pub const ENV_VAR: &str = "SPLYNX_BITPAY_CONFIG";

/// 15 minutes: far above any Splynx timeout, and above PHP's usual `max_execution_time`,
/// so a request Splynx was still working on has committed (or died) by then.
pub const DEFAULT_PAYMENT_GRACE_SECONDS: u64 = 900;

/// The fee transaction's description when `[fee] message` is not set (the original
/// add-on's "Text for invoice" default).
pub const DEFAULT_FEE_MESSAGE: &str = "BitPay fee";
/// Splynx's "Correction" transaction category, the original add-on's default.
pub const DEFAULT_FEE_CATEGORY: i64 = 5;

/// Only the super administrator may change the pairing from the web by default: whoever
/// pairs decides which BitPay account customers pay.
pub const DEFAULT_PAIRING_ROLE: &str = "super-administrator";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source} ({})",
        read_fix(path, source)
    )]
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
    /// A value the admin entered in Splynx's Modules list (`field` ends with its closing
    /// quote, and says which partner when it is a partner's).
    #[error("Modules list setting \"{field}: {message} (change it in Splynx: Config → Integrations → Modules list → splynx_bitpay_addon; read from {path})")]
    ModulesListValue {
        path: String,
        field: String,
        message: String,
    },
    #[error("Modules list settings {path}: {message}")]
    ModulesList { path: String, message: String },
    /// Settings that are wrong: each is said once, with its fix.
    #[error("{}", list_problems(path, problems))]
    Problems {
        path: String,
        problems: Vec<ConfigProblem>,
    },
}

/// A setting that is wrong: which key, whether settlement needs it, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigProblem {
    /// `section.key` (or the section, for a section that does not parse).
    pub key: String,
    /// Settlement cannot run without it (where Splynx and BitPay are, the credentials,
    /// the data directory): then no command runs.
    pub critical: bool,
    /// The error, naming the file or Modules-list field and the fix.
    pub message: String,
}

/// What to do about a config file that cannot be read: a missing file is the wrong path,
/// an unreadable one the wrong owner or mode.
fn read_fix(path: &str, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!("let the web server's group read it: chgrp www-data {path} && chmod 640 {path}")
        }
        _ => format!("pass --config PATH or set {ENV_VAR}"),
    }
}

/// One problem as itself; several as a list, one a line.
fn list_problems(path: &str, problems: &[ConfigProblem]) -> String {
    match problems {
        [one] => one.message.clone(),
        several => format!(
            "config file {path}: {} settings need fixing:\n{}",
            several.len(),
            several
                .iter()
                .map(|p| format!("  - {}", p.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// What the config was built from, kept to build a partner's: it holds the API secrets
/// (ours, and Splynx's own in the Modules list), so `Debug` never shows it.
#[derive(Clone)]
pub struct Kept<T>(pub T);

impl<T> std::fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Where an effective setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Toml,
    /// The Modules list's main block.
    ModulesList,
    /// Its Partners settings for the default partner (what other partners fall back to).
    ModulesListDefaultPartner,
    /// Its Partners settings for this partner.
    ModulesListPartner(i64),
    /// The API key Splynx's add-on install created and wrote into the Modules-list file
    /// (used where the TOML file sets none).
    SplynxApiKey,
}

impl Source {
    /// `default`, `toml`, `modules-list`, `modules-list default partner`,
    /// `modules-list partner 3`.
    pub fn label(self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::Toml => "toml".into(),
            Source::ModulesList => "modules-list".into(),
            Source::ModulesListDefaultPartner => "modules-list default partner".into(),
            Source::ModulesListPartner(id) => format!("modules-list partner {id}"),
            Source::SplynxApiKey => "modules-list api key".into(),
        }
    }

    /// Where, in an admin's words: "Modules list (partner 3)", "config file", "default".
    pub fn describe(self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::Toml => "config file".into(),
            Source::ModulesList => "Modules list".into(),
            Source::ModulesListDefaultPartner => "Modules list (default partner)".into(),
            Source::ModulesListPartner(id) => format!("Modules list (partner {id})"),
            Source::SplynxApiKey => "the API key Splynx created for the add-on".into(),
        }
    }

    pub fn is_modules_list(self) -> bool {
        !matches!(self, Source::Default | Source::Toml)
    }

    /// A field's title as the admin finds it in Splynx.
    pub fn field_title(self, title: &str) -> String {
        match self {
            Source::ModulesListDefaultPartner => {
                format!("{title}\" (Partners settings, default partner)")
            }
            Source::ModulesListPartner(id) => {
                format!("{title}\" (Partners settings, partner {id})")
            }
            Source::SplynxApiKey => format!("{title}\" ([common], written by Splynx)"),
            _ => format!("{title}\""),
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

impl crate::exit::Failing for ConfigError {
    fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::Config
    }
}

/// Which payment server takes the coins (`[server] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    BitPay,
    /// BTCPay Server, self-hosted, through its Greenfield API.
    Btcpay,
}

impl ServerKind {
    /// For people: "BitPay", "BTCPay Server".
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::BitPay => "BitPay",
            ServerKind::Btcpay => "BTCPay Server",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::BitPay => "bitpay",
            ServerKind::Btcpay => "btcpay",
        }
    }
}

/// `[btcpay]`: where the BTCPay Server is and which store takes the payments.
#[derive(Debug, Clone, Default)]
pub struct BtcpaySettings {
    /// No trailing slash; empty when BTCPay is not the server.
    pub url: String,
    pub store_id: String,
    /// `high`, `medium`, `low-medium` or `low`: BTCPay's speed policies.
    pub transaction_speed: String,
    /// Set in the file; otherwise the key connecting stored in the data directory.
    pub api_key: Option<Secret>,
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

impl CreditOn {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditOn::Confirmed => "confirmed",
            CreditOn::Complete => "complete",
        }
    }

    pub fn parse(text: &str) -> Option<CreditOn> {
        [CreditOn::Confirmed, CreditOn::Complete]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
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

/// Which payment statement a credited payment is recorded in (`[statements] group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementGrouping {
    /// "BitPay 12/2026"
    Month,
    /// "BitPay 01/12/2026"
    Day,
    Off,
}

impl StatementGrouping {
    pub fn as_str(self) -> &'static str {
        match self {
            StatementGrouping::Month => "month",
            StatementGrouping::Day => "day",
            StatementGrouping::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<StatementGrouping> {
        [
            StatementGrouping::Month,
            StatementGrouping::Day,
            StatementGrouping::Off,
        ]
        .into_iter()
        .find(|g| g.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    pub concurrency: usize,
    pub requests_per_second: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub server: ServerKind,
    pub splynx: SplynxSettings,
    pub bitpay: BitPaySettings,
    pub btcpay: BtcpaySettings,
    pub refill: RefillSettings,
    pub statements: StatementGrouping,
    /// The service fee (per partner).
    pub fee: FeeSettings,
    /// Direct pay links for e-mails work without a portal login ("Grant access to
    /// unauthorized customers"; per partner; off by default).
    pub direct_pay_links: bool,
    pub reconcile: ReconcileSettings,
    /// Where `reconcile` writes the metrics (`[metrics] textfile`); off when `None`.
    pub metrics_textfile: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// Who must own `data_dir`: the user the add-on's pages run as (php-fpm's).
    pub data_owner: String,
    /// Journal detail of final records older than this is pruned (the mapping is kept).
    pub journal_retention_days: u32,
    /// Splynx administrator roles that may change the pairing from the admin page.
    pub pairing_roles: Vec<String>,
    /// Splynx administrator roles that may refund from the admin page.
    pub refund_roles: Vec<String>,
    /// The add-on's directory in Splynx, and whether its Modules-list settings are read.
    pub addon_dir: PathBuf,
    pub modules_list_mode: ModulesListMode,
    /// The Modules-list settings file read, and what it holds (for `for_partner`).
    pub modules_list: Option<(PathBuf, Kept<modules_list::Sections>)>,
    /// The partner these settings are for (`for_partner`), if any.
    pub partner: Option<i64>,
    /// The settings of each partner with Partners settings of its own, built once at load
    /// (empty in a partner's own settings).
    partners: Kept<std::sync::Arc<BTreeMap<i64, Config>>>,
    /// Where each setting (`section.key`) came from; absent means the default.
    pub sources: BTreeMap<String, Source>,
    /// Keys the config file sets that the Modules list overrides.
    pub overridden_toml: Vec<String>,
    /// What is wrong with these settings (each falls back to its default meanwhile). None
    /// is critical in a `Config` that `read` returned; checkout refuses while any exists.
    pub problems: Vec<ConfigProblem>,
}

impl Config {
    /// Refuses while any setting is wrong (checkout, and the pages' settings): every
    /// problem is said at once.
    pub fn ensure_valid(&self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(self.problems_error(self.problems.clone()))
    }

    /// Refuses only what settlement cannot run without (the credentials, where the servers
    /// are); the error lists every problem, not only the critical ones.
    pub fn ensure_runnable(&self) -> Result<(), ConfigError> {
        if self.problems.iter().any(|p| p.critical) {
            return Err(self.problems_error(self.problems.clone()));
        }
        Ok(())
    }

    /// `problems` as one error.
    pub fn problems_error(&self, problems: Vec<ConfigProblem>) -> ConfigError {
        ConfigError::Problems {
            path: self.path.display().to_string(),
            problems,
        }
    }

    /// The settings that apply to a partner's customers: the partner's own (built at
    /// load) when it has Partners settings in the Modules list, else these.
    pub fn for_partner(&self, partner: Option<i64>) -> &Config {
        partner
            .and_then(|p| self.partners.0.get(&p))
            .unwrap_or(self)
    }

    /// Every problem of these settings and of each partner's, each once.
    pub fn every_problem(&self) -> Vec<ConfigProblem> {
        let mut all = self.problems.clone();
        for settings in self.partners.0.values() {
            for problem in &settings.problems {
                if !all.iter().any(|p| p.message == problem.message) {
                    all.push(problem.clone());
                }
            }
        }
        all
    }

    /// How soon a payment counts as confirmed at the configured server.
    pub fn transaction_speed(&self) -> &str {
        match self.server {
            ServerKind::BitPay => &self.bitpay.transaction_speed,
            ServerKind::Btcpay => &self.btcpay.transaction_speed,
        }
    }

    /// What invoice records name their server by: BitPay's environment (`test`,
    /// `production`) or `btcpay`.
    pub fn invoice_environment(&self) -> &'static str {
        match self.server {
            ServerKind::BitPay => self.bitpay.environment.as_str(),
            ServerKind::Btcpay => ServerKind::Btcpay.as_str(),
        }
    }

    /// The problem with `key`, if it has one.
    pub fn problem(&self, key: &str) -> Option<&ConfigProblem> {
        self.problems.iter().find(|p| p.key == key)
    }

    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    /// The Modules-list settings file, if one was read.
    pub fn modules_list_file(&self) -> Option<&Path> {
        self.modules_list.as_ref().map(|(file, _)| file.as_path())
    }

    /// The partners with settings of their own in the Modules list.
    pub fn partners_with_settings(&self) -> Vec<i64> {
        self.partners.0.keys().copied().collect()
    }
}

/// Which file to read: `--config`, else `$SPLYNX_BITPAY_CONFIG`, else the default path.
pub fn resolve_path(flag: Option<&Path>, env_value: Option<&str>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| env_value.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

mod ini;
pub mod modules_list;
mod parse;
pub mod table;
#[cfg(test)]
mod tests;
