//! Every setting, declared once: its key (`section.key`), its field in Splynx's Modules
//! list (INI name, title, whether a partner may set it), whether settlement needs it,
//! whether it is a secret, its default, and how `config` shows it. The Modules-list
//! overlay, which problems stop every command, `config`'s listing and the check of the
//! form (`hooks/config/config.json`) all read this table; the values are checked by the
//! section parsers (`parse`), whose defaults a test holds to the ones stated here.

use super::{Config, ModulesListMode, SplynxAuth};
use crate::money::format_amount;

/// A field of the Modules-list form that sets a setting.
#[derive(Debug)]
pub struct FormField {
    /// Its INI key in `config/config.ini.php` (and `config.json`).
    pub ini: &'static str,
    /// Its title on the form, which error messages name.
    pub title: &'static str,
    /// A whole number (Splynx writes every value as text).
    pub integer: bool,
    /// On the Partners settings block too: a partner may set it differently.
    pub per_partner: bool,
}

/// What applies when nothing sets a setting.
#[derive(Debug, PartialEq, Eq)]
pub enum Default {
    /// Nothing: it must be set.
    Required,
    /// Worked out from other settings, as said.
    Derived(&'static str),
    /// This value, as `config` shows it.
    Value(&'static str),
}

#[derive(Debug)]
pub struct Setting {
    pub key: &'static str,
    pub form: Option<FormField>,
    /// Settlement (crediting money already received) cannot run without it.
    pub critical: bool,
    /// Never shown.
    pub secret: bool,
    pub default: Default,
    /// The effective value as text.
    pub show: fn(&Config) -> String,
}

impl Setting {
    /// The section it belongs to (`splynx` of `splynx.url`).
    pub fn section(&self) -> &'static str {
        self.key.split_once('.').map_or(self.key, |(s, _)| s)
    }

    /// What `config` shows: the value, or "(redacted)" for a secret.
    pub fn shown(&self, config: &Config) -> String {
        if self.secret {
            "(redacted)".into()
        } else {
            (self.show)(config)
        }
    }
}

const fn form(ini: &'static str, title: &'static str) -> Option<FormField> {
    Some(FormField {
        ini,
        title,
        integer: false,
        per_partner: false,
    })
}

const fn partner_form(ini: &'static str, title: &'static str, integer: bool) -> Option<FormField> {
    Some(FormField {
        ini,
        title,
        integer,
        per_partner: true,
    })
}

/// A setting only the TOML file sets.
const fn file_only(
    key: &'static str,
    critical: bool,
    default: Default,
    show: fn(&Config) -> String,
) -> Setting {
    Setting {
        key,
        form: None,
        critical,
        secret: false,
        default,
        show,
    }
}

fn seconds(d: std::time::Duration) -> String {
    d.as_secs().to_string()
}

/// Every setting, in the config file's order.
pub const SETTINGS: [Setting; 38] = [
    Setting {
        key: "server.kind",
        form: form("payment_server", "Payment server"),
        critical: true,
        secret: false,
        default: Default::Value("bitpay"),
        show: |c| c.server.as_str().into(),
    },
    Setting {
        key: "splynx.url",
        form: form("splynx_url", "Splynx URL"),
        critical: true,
        secret: false,
        default: Default::Required,
        show: |c| c.splynx.url.clone(),
    },
    file_only(
        "splynx.api_url",
        true,
        Default::Derived("splynx.url + /api/2.0/"),
        |c| c.splynx.api_url.clone(),
    ),
    file_only("splynx.api_key", true, Default::Required, |c| {
        c.splynx.api_key.clone()
    }),
    Setting {
        key: "splynx.api_secret",
        form: None,
        critical: true,
        secret: true,
        default: Default::Required,
        show: |c| c.splynx.api_secret.expose().to_string(),
    },
    Setting {
        key: "splynx.payment_method_id",
        form: partner_form("payment_method_id", "Payment method", true),
        critical: false,
        secret: false,
        default: Default::Required,
        show: |c| c.splynx.payment_method_id.to_string(),
    },
    file_only("splynx.auth", true, Default::Value("access_token"), |c| {
        match c.splynx.auth {
            SplynxAuth::AccessToken => "access_token",
            SplynxAuth::Signature => "signature",
        }
        .into()
    }),
    file_only("splynx.timeout_seconds", true, Default::Value("30"), |c| {
        seconds(c.splynx.timeout)
    }),
    file_only(
        "splynx.payment_grace_seconds",
        true,
        Default::Value("900"),
        |c| seconds(c.splynx.payment_grace),
    ),
    file_only("bitpay.environment", true, Default::Required, |c| {
        c.bitpay.environment.as_str().into()
    }),
    file_only(
        "bitpay.api_url",
        true,
        Default::Derived("the environment's BitPay address"),
        |c| c.bitpay.api_url.clone(),
    ),
    Setting {
        key: "bitpay.currency",
        form: partner_form("currency", "Currency", false),
        critical: false,
        secret: false,
        default: Default::Required,
        show: |c| c.bitpay.currency.clone(),
    },
    Setting {
        key: "bitpay.transaction_speed",
        form: partner_form("transaction_speed", "Transaction speed", false),
        critical: false,
        secret: false,
        default: Default::Value("medium"),
        show: |c| c.bitpay.transaction_speed.clone(),
    },
    Setting {
        key: "bitpay.credit_on",
        form: form("credit_on", "Credit payments when BitPay says"),
        critical: false,
        secret: false,
        default: Default::Value("confirmed"),
        show: |c| c.bitpay.credit_on.as_str().into(),
    },
    file_only(
        "bitpay.allow_zero_confirmation",
        false,
        Default::Value("false"),
        |c| c.bitpay.allow_zero_confirmation.to_string(),
    ),
    file_only(
        "bitpay.notification_url",
        false,
        Default::Derived("splynx.url + /bitpay/ipn"),
        |c| c.bitpay.notification_url.clone(),
    ),
    file_only(
        "bitpay.redirect_url",
        false,
        Default::Derived("splynx.url + /bitpay/result"),
        |c| c.bitpay.redirect_url.clone(),
    ),
    file_only("bitpay.timeout_seconds", true, Default::Value("30"), |c| {
        seconds(c.bitpay.timeout)
    }),
    file_only(
        "btcpay.url",
        true,
        Default::Derived("required when server.kind = \"btcpay\""),
        |c| c.btcpay.url.clone(),
    ),
    file_only(
        "btcpay.store_id",
        true,
        Default::Derived("required when server.kind = \"btcpay\""),
        |c| c.btcpay.store_id.clone(),
    ),
    file_only(
        "btcpay.transaction_speed",
        false,
        Default::Value("medium"),
        |c| c.btcpay.transaction_speed.clone(),
    ),
    Setting {
        key: "btcpay.api_key",
        form: None,
        critical: true,
        secret: true,
        default: Default::Derived("the key `splynx-bitpay pair --btcpay` stored"),
        show: |c| {
            c.btcpay
                .api_key
                .as_ref()
                .map(|k| k.expose().to_string())
                .unwrap_or_default()
        },
    },
    Setting {
        key: "refill.min",
        form: partner_form("refill_min", "Top-up minimum", false),
        critical: false,
        secret: false,
        default: Default::Value("1.00"),
        show: |c| format_amount(c.refill.min, &c.bitpay.currency),
    },
    Setting {
        key: "refill.max",
        form: partner_form("refill_max", "Top-up maximum", false),
        critical: false,
        secret: false,
        default: Default::Value("5000.00"),
        show: |c| format_amount(c.refill.max, &c.bitpay.currency),
    },
    Setting {
        key: "statements.group",
        form: form("statements_group", "Group bank statements"),
        critical: false,
        secret: false,
        default: Default::Value("month"),
        show: |c| c.statements.as_str().into(),
    },
    Setting {
        key: "fee.percent",
        form: partner_form("service_fee", "Service fee", false),
        critical: false,
        secret: false,
        default: Default::Value("0"),
        show: |c| c.fee.percent.to_string(),
    },
    Setting {
        key: "fee.vat_percent",
        form: partner_form("fee_vat", "VAT", false),
        critical: false,
        secret: false,
        default: Default::Value("0"),
        show: |c| c.fee.vat_percent.to_string(),
    },
    Setting {
        key: "fee.message",
        form: partner_form("fee_message", "Text for invoice", false),
        critical: false,
        secret: false,
        default: Default::Value(super::DEFAULT_FEE_MESSAGE),
        show: |c| c.fee.message.clone(),
    },
    Setting {
        key: "fee.category",
        form: partner_form("fee_category", "Transaction fee category", true),
        critical: false,
        secret: false,
        default: Default::Value("5"),
        show: |c| c.fee.category.to_string(),
    },
    Setting {
        key: "direct_pay.enabled",
        form: partner_form(
            "direct_pay_links",
            "Grant access to unauthorized customers",
            false,
        ),
        critical: false,
        secret: false,
        default: Default::Value("false"),
        show: |c| c.direct_pay_links.to_string(),
    },
    file_only("storage.data_dir", true, Default::Required, |c| {
        c.data_dir.display().to_string()
    }),
    file_only("storage.owner", false, Default::Value("www-data"), |c| {
        c.data_owner.clone()
    }),
    file_only(
        "storage.journal_retention_days",
        false,
        Default::Value("180"),
        |c| c.journal_retention_days.to_string(),
    ),
    file_only(
        "metrics.textfile",
        false,
        Default::Derived("off: reconcile writes no metrics file"),
        |c| {
            c.metrics_textfile
                .as_ref()
                .map_or_else(|| "(off)".to_string(), |p| p.display().to_string())
        },
    ),
    file_only("reconcile.concurrency", false, Default::Value("8"), |c| {
        c.reconcile.concurrency.to_string()
    }),
    file_only(
        "reconcile.requests_per_second",
        false,
        Default::Value("400"),
        |c| c.reconcile.requests_per_second.to_string(),
    ),
    file_only(
        "admin.pairing_roles",
        false,
        Default::Value(super::DEFAULT_PAIRING_ROLE),
        |c| c.pairing_roles.join(", "),
    ),
    file_only(
        "admin.refund_roles",
        false,
        Default::Value(super::DEFAULT_PAIRING_ROLE),
        |c| c.refund_roles.join(", "),
    ),
];

/// Settings of the `[addon]` section: read before everything else (they say where the
/// Modules list is), and listed after it.
pub const ADDON_SETTINGS: [Setting; 2] = [
    file_only(
        "addon.dir",
        true,
        Default::Value(super::modules_list::DEFAULT_ADDON_DIR),
        |c| c.addon_dir.display().to_string(),
    ),
    file_only("addon.modules_list", true, Default::Value("auto"), |c| {
        match c.modules_list_mode {
            ModulesListMode::Auto => "auto",
            ModulesListMode::Off => "off",
            ModulesListMode::Require => "require",
        }
        .into()
    }),
];

/// Every setting, `[addon]` last.
pub fn all() -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().chain(ADDON_SETTINGS.iter())
}

/// The setting `key`, if there is one.
pub fn find(key: &str) -> Option<&'static Setting> {
    all().find(|s| s.key == key)
}

/// The Modules-list form's fields, in the form's order.
pub fn form_fields() -> impl Iterator<Item = (&'static Setting, &'static FormField)> {
    all().filter_map(|s| s.form.as_ref().map(|f| (s, f)))
}

/// The sections a config file may have, in the file's order.
pub fn sections() -> Vec<&'static str> {
    let mut sections: Vec<&'static str> = Vec::new();
    for section in all().map(Setting::section) {
        if !sections.contains(&section) {
            sections.push(section);
        }
    }
    sections
}

/// Whether a problem with `key` (a setting, a section, or the file) stops every command.
pub fn is_critical(key: &str) -> bool {
    match find(key) {
        Some(setting) => setting.critical,
        // A section that cannot be read, or the file itself: critical for the sections
        // that hold a critical setting.
        None => key == "file" || all().any(|s| s.critical && s.section() == key),
    }
}
