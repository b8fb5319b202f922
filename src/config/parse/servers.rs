//! `[splynx]` and `[bitpay]`: where the two servers are, the credentials, and the rules
//! that keep money safe (confirmations, plain http, placeholders).

use std::time::Duration;

use super::raw::{RawBitPay, RawBtcpay, RawServer, RawSplynx};
use super::values::{
    absolute_url, base_url, is_placeholder_url, is_plain_http_off_host, quoted_prefix, timeout,
    EXAMPLE_API_KEY, PLACEHOLDER_SECRETS,
};
use super::{Bad, FALLBACK_CURRENCY, FALLBACK_URL};
use crate::config::{
    BitPaySettings, BtcpaySettings, CreditOn, Environment, ServerKind, SplynxAuth, SplynxSettings,
    DEFAULT_PAYMENT_GRACE_SECONDS,
};
use crate::money;
use crate::secret::Secret;

fn unset(how: &str) -> String {
    format!("is not set: {how}, or set it in this file")
}

fn in_modules_list(title: &str) -> String {
    format!(
        "enter \"{title}\" in Splynx (Config → Integrations → Modules list → splynx_bitpay_addon)"
    )
}

const BY_SPLYNX: &str = "run the add-on's install (php /var/www/splynx/addons/splynx-bitpay/install), which has Splynx create the add-on's API key";

/// URLs derived from splynx.url share its problem: each is said once, at its cause.
pub(super) fn derived_urls(splynx: &RawSplynx, bitpay: &RawBitPay) -> Vec<&'static str> {
    [
        ("splynx.api_url", splynx.api_url.is_some()),
        ("bitpay.notification_url", bitpay.notification_url.is_some()),
        ("bitpay.redirect_url", bitpay.redirect_url.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| !set)
    .map(|(key, _)| key)
    .collect()
}

/// `[splynx]`, without its timeouts (`timeouts`, checked last).
pub(super) fn splynx(raw: RawSplynx, bad: Bad<'_>) -> SplynxSettings {
    let api_key_given = raw.api_key.is_some();
    let api_secret_given = raw.api_secret.is_some();
    let url = raw.url.unwrap_or_else(|| {
        bad("splynx.url", unset(&in_modules_list("Splynx URL")));
        FALLBACK_URL.to_string()
    });
    let api_key = raw.api_key.unwrap_or_else(|| {
        bad("splynx.api_key", unset(BY_SPLYNX));
        String::new()
    });
    let api_secret = raw.api_secret.unwrap_or_else(|| {
        bad("splynx.api_secret", unset(BY_SPLYNX));
        Secret::new("")
    });
    let payment_method_id = raw.payment_method_id.unwrap_or_else(|| {
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
    let api_url = match raw.api_url {
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
    if raw.payment_method_id.is_some() && payment_method_id <= 0 {
        bad(
            "splynx.payment_method_id",
            format!("must be a positive Splynx payment method id, got {payment_method_id}"),
        );
    }
    let auth = match raw.auth.as_deref().unwrap_or("access_token") {
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
    SplynxSettings {
        url: splynx_url,
        api_url,
        api_key,
        api_secret,
        payment_method_id,
        auth,
        // Set by `timeouts`, checked last.
        timeout: Duration::ZERO,
        payment_grace: Duration::ZERO,
    }
}

/// `[server] kind`: which payment server takes the coins.
pub(super) fn server_kind(raw: RawServer, bad: Bad<'_>) -> ServerKind {
    match raw.kind.as_deref().map(str::trim) {
        None | Some("bitpay") => ServerKind::BitPay,
        Some("btcpay") => ServerKind::Btcpay,
        Some(other) => {
            bad(
                "server.kind",
                format!(
                    "unknown payment server \"{}\" (expected \"bitpay\" or \"btcpay\")",
                    quoted_prefix(other)
                ),
            );
            ServerKind::BitPay
        }
    }
}

/// `[btcpay]`: checked only when BTCPay is the server (an unused section's unknown keys
/// are still refused by its reader).
pub(super) fn btcpay(
    raw: RawBtcpay,
    kind: ServerKind,
    bitpay: &BitPaySettings,
    bad: Bad<'_>,
) -> BtcpaySettings {
    let speed = raw.transaction_speed.unwrap_or_else(|| "medium".into());
    if kind != ServerKind::Btcpay {
        return BtcpaySettings {
            url: raw.url.unwrap_or_default(),
            store_id: raw.store_id.unwrap_or_default(),
            transaction_speed: speed,
            api_key: raw.api_key,
        };
    }
    let url = match raw.url {
        None => {
            bad(
                "btcpay.url",
                "is not set: the address of your BTCPay Server, e.g. \"https://btcpay.example.com\"".into(),
            );
            String::new()
        }
        Some(url) => match base_url(&url) {
            Ok(url) if is_plain_http_off_host(&url) => {
                bad(
                    "btcpay.url",
                    format!("\"{url}\" is plain http://: the API key and payment data would cross the network unencrypted. Use https:// (plain http is accepted only for this machine's loopback addresses)"),
                );
                url
            }
            Ok(url) => url,
            Err(m) => {
                bad("btcpay.url", m);
                String::new()
            }
        },
    };
    let store_id = raw.store_id.unwrap_or_default();
    if store_id.is_empty() {
        bad(
            "btcpay.store_id",
            "is not set: the id of the BTCPay store that takes the payments (Stores → Settings → General → Store Id)".into(),
        );
    } else if store_id.len() > 64 || !store_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bad(
            "btcpay.store_id",
            format!(
                "\"{}\" is not a BTCPay store id (letters and digits, as Stores → Settings → General shows it)",
                quoted_prefix(&store_id)
            ),
        );
    }
    let speed = if matches!(speed.as_str(), "high" | "medium" | "low-medium" | "low") {
        speed
    } else {
        bad(
            "btcpay.transaction_speed",
            format!(
                "unknown speed \"{}\" (expected \"high\", \"medium\", \"low-medium\" or \"low\")",
                quoted_prefix(&speed)
            ),
        );
        "medium".to_string()
    };
    if speed == "high" && !bitpay.allow_zero_confirmation {
        bad(
            "btcpay.transaction_speed",
            "\"high\" settles BTCPay invoices at zero confirmations, so a double-spent or replaced payment is credited anyway. Use \"medium\" (one confirmation), or accept the risk with [bitpay] allow_zero_confirmation = true".into(),
        );
    }
    if raw
        .api_key
        .as_ref()
        .is_some_and(|k| k.expose().trim().is_empty())
    {
        bad("btcpay.api_key", "must not be empty".into());
    }
    BtcpaySettings {
        url,
        store_id,
        transaction_speed: speed,
        api_key: raw.api_key,
    }
}

/// `[bitpay]`, without its timeout; its URLs default under `splynx_url`. Its environment
/// is needed only when BitPay is the server.
pub(super) fn bitpay(
    raw: RawBitPay,
    kind: ServerKind,
    splynx_url: &str,
    bad: Bad<'_>,
) -> BitPaySettings {
    let environment = match raw.environment.as_deref() {
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
        None if kind == ServerKind::Btcpay => Environment::Test,
        None => {
            bad(
                "bitpay.environment",
                "is not set: \"test\" or \"production\"".into(),
            );
            Environment::Test
        }
    };
    let api_url = match raw.api_url {
        Some(u) => base_url(&u).unwrap_or_else(|m| {
            bad("bitpay.api_url", m);
            environment.default_api_url().to_string()
        }),
        None => environment.default_api_url().to_string(),
    };
    let currency = match raw.currency {
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
    let transaction_speed = raw.transaction_speed.unwrap_or_else(|| "medium".into());
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
    let credit_on = match raw.credit_on.as_deref().unwrap_or("confirmed") {
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
    let allow_zero_confirmation = raw.allow_zero_confirmation.unwrap_or(false);
    if transaction_speed == "high" && credit_on == CreditOn::Confirmed && !allow_zero_confirmation {
        bad(
            "bitpay.transaction_speed",
            "\"high\" with credit_on = \"confirmed\" credits customers at zero confirmations: BitPay marks an invoice confirmed as soon as the payment is seen, before any block includes it, so a double-spent or dropped transaction is credited anyway and reversed later. Use \"medium\" (one confirmation), set credit_on = \"complete\", or accept the risk with allow_zero_confirmation = true".into(),
        );
    }
    let mut page_url = |key: &str, set: Option<String>, path: &str| match set {
        Some(u) => absolute_url(&u).unwrap_or_else(|m| {
            bad(key, m);
            format!("{splynx_url}{path}")
        }),
        None => format!("{splynx_url}{path}"),
    };
    let notification_url = page_url(
        "bitpay.notification_url",
        raw.notification_url,
        "/bitpay/ipn",
    );
    let redirect_url = page_url("bitpay.redirect_url", raw.redirect_url, "/bitpay/result");
    BitPaySettings {
        environment,
        api_url,
        currency,
        transaction_speed,
        credit_on,
        allow_zero_confirmation,
        notification_url,
        redirect_url,
        // Set by `timeouts`, checked last.
        timeout: Duration::ZERO,
    }
}

/// No placeholder address, and no plain http off this machine in production.
pub(super) fn check_urls(
    splynx: &SplynxSettings,
    bitpay: &BitPaySettings,
    derived: &[&str],
    bad: Bad<'_>,
) {
    let urls = [
        ("splynx.url", &splynx.url),
        ("splynx.api_url", &splynx.api_url),
        ("bitpay.api_url", &bitpay.api_url),
        ("bitpay.notification_url", &bitpay.notification_url),
        ("bitpay.redirect_url", &bitpay.redirect_url),
    ];
    for (key, url) in urls {
        if url.starts_with(FALLBACK_URL) || derived.contains(&key) {
            continue;
        }
        if is_placeholder_url(url) {
            bad(
                key,
                format!("\"{url}\" is the example's placeholder: set the public address of your Splynx server (where customers open the portal)"),
            );
        } else if bitpay.environment == Environment::Production && is_plain_http_off_host(url) {
            bad(
                key,
                format!(
                    "\"{url}\" is plain http:// in production: API keys, tokens and payment data would cross the network unencrypted. Use https:// (plain http is accepted only for this machine's loopback addresses)"
                ),
            );
        }
    }
}

/// `[splynx]`'s and `[bitpay]`'s times, read before the sections are consumed.
pub(super) struct RawTimes {
    pub(super) splynx: Option<u64>,
    pub(super) payment_grace: Option<u64>,
    pub(super) bitpay: Option<u64>,
}

impl RawTimes {
    pub(super) fn of(splynx: &RawSplynx, bitpay: &RawBitPay) -> RawTimes {
        RawTimes {
            splynx: splynx.timeout_seconds,
            payment_grace: splynx.payment_grace_seconds,
            bitpay: bitpay.timeout_seconds,
        }
    }
}

/// Both servers' timeouts and Splynx's grace period (checked last, as they always were).
pub(super) fn timeouts(
    raw: RawTimes,
    splynx: &mut SplynxSettings,
    bitpay: &mut BitPaySettings,
    bad: Bad<'_>,
) {
    splynx.timeout = timeout(raw.splynx, "splynx.timeout_seconds", bad);
    bitpay.timeout = timeout(raw.bitpay, "bitpay.timeout_seconds", bad);
    splynx.payment_grace =
        Duration::from_secs(raw.payment_grace.unwrap_or(DEFAULT_PAYMENT_GRACE_SECONDS));
    if splynx.payment_grace <= splynx.timeout {
        bad(
            "splynx.payment_grace_seconds",
            format!(
                "{} seconds must be longer than splynx.timeout_seconds ({}): Splynx may still commit a payment after we stopped waiting for its reply",
                splynx.payment_grace.as_secs(),
                splynx.timeout.as_secs()
            ),
        );
    }
}
