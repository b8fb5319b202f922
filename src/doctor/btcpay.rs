//! Probes of BTCPay Server (`[server] kind = "btcpay"`): reachable, its version, the key and
//! each permission it needs, and our webhook; nothing is changed there.

use crate::btcpay::model::PERMISSIONS;
use crate::btcpay::{BtcpayClient, BtcpayError};
use crate::config::Config;
use crate::gateway::{API_KEY, BTCPAY, WEBHOOK_SECRET};
use crate::secret::Secret;
use crate::store::Store;

use super::report::Report;

/// The oldest BTCPay Server the add-on is built for: 2.1.2 added `paidAmount` and the
/// `InvoicePaidAfterExpiration` and `InvoiceExpiredPaidPartial` webhooks it registers.
pub(super) const MINIMUM_VERSION: (u64, u64, u64) = (2, 1, 2);

fn version_of(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text
        .trim()
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

pub(super) fn check_btcpay(report: &mut Report, config: &Config, store: Option<&Store>) {
    let settings = &config.btcpay;
    let stored = |what: &str| {
        store
            .and_then(|s| s.tokens(BTCPAY).ok())
            .and_then(|tokens| tokens.into_iter().find(|t| t.facade == what))
            .map(|t| t.token)
    };
    let key = settings.api_key.clone().or_else(|| stored(API_KEY));
    let client = BtcpayClient::configured(config, key.clone().unwrap_or_else(|| Secret::new("")));
    match client.server_info() {
        Err(BtcpayError::Unauthorized { .. }) | Ok(_) if key.is_none() => {
            report.ok("btcpay.server", format!("{} answers", settings.url))
        }
        Ok(info) => {
            let version = info["version"].as_str().unwrap_or_default().to_string();
            match version_of(&version) {
                Some(v) if v >= MINIMUM_VERSION => report.ok(
                    "btcpay.server",
                    format!("{} answers: BTCPay Server {version}", settings.url),
                ),
                _ => report.fail(
                    "btcpay.server",
                    format!("{} runs BTCPay Server {version:?}, older than 2.1.2", settings.url),
                    "update BTCPay Server to 2.1.2 or later (it reports late and partial payments the add-on relies on)",
                ),
            }
        }
        Err(e) if e.is_temporary() => {
            report.fail_temporary(
                "btcpay.server",
                e.to_string(),
                format!(
                    "check that this server reaches {} (DNS, firewall, certificate)",
                    settings.url
                ),
            );
            report.skip("btcpay.key", "needs BTCPay Server to be reachable");
            report.skip("btcpay.webhook", "needs BTCPay Server to be reachable");
            return;
        }
        Err(_) => report.ok("btcpay.server", format!("{} answers", settings.url)),
    }
    let connect = "connect again: `splynx-bitpay pair --btcpay` with the store's API key on stdin";
    if key.is_none() {
        report.fail(
            "btcpay.key",
            "not connected: no API key in the config file or the state store",
            connect,
        );
        report.skip("btcpay.webhook", "needs the API key");
        return;
    }
    match client.current_key() {
        Ok(granted) => match PERMISSIONS
            .iter()
            .find(|p| !granted.grants(p, &settings.store_id))
        {
            Some(missing) => report.fail(
                "btcpay.key",
                format!(
                    "the API key may not {missing} in store {}",
                    settings.store_id
                ),
                format!(
                    "create a key with {} for that store, then {connect}",
                    PERMISSIONS.join(", ")
                ),
            ),
            None => report.ok(
                "btcpay.key",
                format!(
                    "valid, with every permission needed in store {}",
                    settings.store_id
                ),
            ),
        },
        Err(e) => {
            report.fail("btcpay.key", e.to_string(), connect);
            report.skip("btcpay.webhook", "needs a valid API key");
            return;
        }
    }
    let ours = &config.bitpay.notification_url;
    match client.webhooks() {
        Ok(hooks) => {
            let hook = hooks
                .iter()
                .find(|h| h["url"].as_str() == Some(ours.as_str()));
            match hook {
                None => report.fail(
                    "btcpay.webhook",
                    format!("no webhook of the store sends to {ours}"),
                    connect,
                ),
                Some(h) if h["enabled"] == false => report.fail(
                    "btcpay.webhook",
                    format!("our webhook {} is disabled in BTCPay", h["id"]),
                    "enable it in BTCPay (Store → Settings → Webhooks), or connect again",
                ),
                Some(_) if stored(WEBHOOK_SECRET).is_none() => report.fail(
                    "btcpay.webhook",
                    "the webhook's secret is not stored here, so no delivery can be verified",
                    connect,
                ),
                Some(h) => report.ok(
                    "btcpay.webhook",
                    format!(
                        "webhook {} sends to {ours}",
                        h["id"].as_str().unwrap_or("?")
                    ),
                ),
            }
        }
        Err(e) => report.fail("btcpay.webhook", e.to_string(), connect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(version_of("2.4.1"), Some((2, 4, 1)));
        assert_eq!(version_of("2.1"), Some((2, 1, 0)));
        assert_eq!(version_of("2.1.2-rc1"), Some((2, 1, 2)));
        assert!(version_of("2.0.9").unwrap() < MINIMUM_VERSION);
        assert!(version_of("2.10.0").unwrap() > MINIMUM_VERSION);
        assert_eq!(version_of("unknown"), None);
    }
}
