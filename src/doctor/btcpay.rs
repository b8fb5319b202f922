//! Probes of BTCPay Server (`[server] kind = "btcpay"`): reachable, its version, the key and
//! each permission it needs, and our webhook; nothing is changed there.

use crate::btcpay::model::{PERMISSIONS, REFUND_PERMISSIONS};
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

/// The checks after `btcpay.server`, skipped together when it fails.
const AFTER_SERVER: [&str; 5] = [
    "btcpay.key",
    "btcpay.store",
    "btcpay.webhook",
    "btcpay.deliveries",
    "btcpay.refunds",
];

const CONNECT: &str =
    "connect again: `splynx-bitpay pair --btcpay` with the store's API key on stdin";

pub(super) fn check_btcpay(report: &mut Report, config: &Config, store: Option<&Store>) {
    let stored = |what: &str| {
        store
            .and_then(|s| s.tokens(BTCPAY).ok())
            .and_then(|tokens| tokens.into_iter().find(|t| t.facade == what))
            .map(|t| t.token)
    };
    let key = config.btcpay.api_key.clone().or_else(|| stored(API_KEY));
    let client = BtcpayClient::configured(config, key.clone().unwrap_or_else(|| Secret::new("")));
    if !check_server(report, config, &client, key.is_some()) {
        for id in AFTER_SERVER {
            report.skip(id, "needs BTCPay Server to be reachable");
        }
        return;
    }
    if key.is_none() {
        report.fail(
            "btcpay.key",
            "not connected: no API key in the config file or the state store",
            CONNECT,
        );
        for id in &AFTER_SERVER[1..] {
            report.skip(id, "needs the API key");
        }
        return;
    }
    if !check_key(report, config, &client) {
        for id in &AFTER_SERVER[1..] {
            report.skip(id, "needs a valid API key");
        }
        return;
    }
    check_store(report, config, &client);
    match check_webhook(report, config, &client, stored(WEBHOOK_SECRET).is_some()) {
        Some(hook) => {
            check_deliveries(report, &client, hook["id"].as_str().unwrap_or("?"));
            check_refunds(report, config, &client, &hook);
        }
        None => {
            report.skip("btcpay.deliveries", "needs our webhook");
            report.skip("btcpay.refunds", "needs our webhook");
        }
    }
}

/// Refunds need the pull-payment permissions and the payout events: a warning (payments
/// work without them) naming what is missing.
fn check_refunds(
    report: &mut Report,
    config: &Config,
    client: &BtcpayClient,
    hook: &serde_json::Value,
) {
    let store_id = &config.btcpay.store_id;
    let missing: Vec<&str> = match client.current_key() {
        Ok(granted) => REFUND_PERMISSIONS
            .iter()
            .copied()
            .filter(|p| !granted.grants(p, store_id))
            .collect(),
        Err(e) => return report.fail("btcpay.refunds", e.to_string(), CONNECT),
    };
    let events = &hook["authorizedEvents"];
    let subscribed = events["everything"] == true
        || crate::connect::EVENTS
            .iter()
            .filter(|e| e.starts_with("Payout"))
            .all(|e| {
                events["specificEvents"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == e))
            });
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "the API key may not {} in store {store_id}",
            missing.join(", ")
        ));
    }
    if !subscribed {
        problems.push("our webhook is not subscribed to the payout events".to_string());
    }
    if problems.is_empty() {
        report.ok(
            "btcpay.refunds",
            "refunds can be asked for from Splynx, and their payouts are followed",
        );
    } else {
        report.warn(
            "btcpay.refunds",
            format!(
                "refunds from Splynx cannot be made: {}",
                problems.join("; ")
            ),
            Some(format!(
                "connect again through the admin page (its link asks for {})",
                REFUND_PERMISSIONS.join(", ")
            )),
        );
    }
}

/// Reachable, and new enough; false when it cannot be reached at all.
fn check_server(report: &mut Report, config: &Config, client: &BtcpayClient, keyed: bool) -> bool {
    let url = &config.btcpay.url;
    match client.server_info() {
        Err(BtcpayError::Unauthorized { .. }) | Ok(_) if !keyed => {
            report.ok("btcpay.server", format!("{url} answers"))
        }
        Ok(info) => {
            let version = info["version"].as_str().unwrap_or_default().to_string();
            match version_of(&version) {
                Some(v) if v >= MINIMUM_VERSION => report.ok(
                    "btcpay.server",
                    format!("{url} answers: BTCPay Server {version}"),
                ),
                _ => report.fail(
                    "btcpay.server",
                    format!("{url} runs BTCPay Server {version:?}, older than 2.1.2"),
                    "update BTCPay Server to 2.1.2 or later (it reports late and partial payments the add-on relies on)",
                ),
            }
        }
        Err(e) if e.is_temporary() => {
            report.fail_temporary(
                "btcpay.server",
                e.to_string(),
                format!("check that this server reaches {url} (DNS, firewall, certificate)"),
            );
            return false;
        }
        Err(_) => report.ok("btcpay.server", format!("{url} answers")),
    }
    true
}

/// Each permission the add-on needs, named when missing; false when the key itself is
/// refused (the later checks would only repeat it).
fn check_key(report: &mut Report, config: &Config, client: &BtcpayClient) -> bool {
    let store_id = &config.btcpay.store_id;
    match client.current_key() {
        Ok(granted) => match PERMISSIONS.iter().find(|p| !granted.grants(p, store_id)) {
            Some(missing) => report.fail(
                "btcpay.key",
                format!("the API key may not {missing} in store {store_id}"),
                format!(
                    "create a key with {} for that store, then {CONNECT}",
                    PERMISSIONS.join(", ")
                ),
            ),
            None => report.ok(
                "btcpay.key",
                format!("valid, with every permission needed in store {store_id}"),
            ),
        },
        Err(e) => {
            report.fail("btcpay.key", e.to_string(), CONNECT);
            return false;
        }
    }
    true
}

/// The store exists, and its default currency is ours (invoices name their currency, but
/// BTCPay's own pages, reports and refunds use the store's).
fn check_store(report: &mut Report, config: &Config, client: &BtcpayClient) {
    let ours = &config.bitpay.currency;
    match client.store() {
        Ok(store) => {
            let name = store["name"].as_str().unwrap_or("?");
            let currency = store["defaultCurrency"].as_str().unwrap_or_default();
            if currency.eq_ignore_ascii_case(ours) {
                report.ok(
                    "btcpay.store",
                    format!(
                        "store {name:?} ({}), default currency {currency}",
                        client.store_id()
                    ),
                );
            } else {
                report.warn(
                    "btcpay.store",
                    format!("store {name:?}'s default currency is {currency}, the add-on invoices in {ours}"),
                    Some(format!("set the store's default currency to {ours} in BTCPay (Store → Settings → General), so its reports and refunds match Splynx")),
                );
            }
        }
        Err(e) => report.fail(
            "btcpay.store",
            e.to_string(),
            format!(
                "check [btcpay] store_id ({}) and that the key is for that store",
                client.store_id()
            ),
        ),
    }
}

/// Our webhook is registered, on, and its secret is here; its id.
fn check_webhook(
    report: &mut Report,
    config: &Config,
    client: &BtcpayClient,
    secret_stored: bool,
) -> Option<serde_json::Value> {
    let ours = &config.bitpay.notification_url;
    let hooks = match client.webhooks() {
        Ok(hooks) => hooks,
        Err(e) => {
            report.fail("btcpay.webhook", e.to_string(), CONNECT);
            return None;
        }
    };
    let Some(hook) = hooks
        .iter()
        .find(|h| h["url"].as_str() == Some(ours.as_str()))
    else {
        report.fail(
            "btcpay.webhook",
            format!("no webhook of the store sends to {ours}"),
            CONNECT,
        );
        return None;
    };
    let id = hook["id"].as_str().unwrap_or("?").to_string();
    if hook["enabled"] == false {
        report.fail(
            "btcpay.webhook",
            format!("our webhook {id} is disabled in BTCPay"),
            "enable it in BTCPay (Store → Settings → Webhooks), or connect again",
        );
    } else if !secret_stored {
        report.fail(
            "btcpay.webhook",
            "the webhook's secret is not stored here, so no delivery can be verified",
            CONNECT,
        );
    } else {
        report.ok("btcpay.webhook", format!("webhook {id} sends to {ours}"));
    }
    Some(hook.clone())
}

/// How BTCPay's last deliveries to us went: a failing one holds back every later event
/// of the webhook while BTCPay retries it (about 71 minutes).
fn check_deliveries(report: &mut Report, client: &BtcpayClient, webhook_id: &str) {
    const LAST: usize = 10;
    let deliveries = match client.deliveries(webhook_id, LAST) {
        Ok(deliveries) => deliveries,
        Err(e) => {
            report.fail("btcpay.deliveries", e.to_string(), CONNECT);
            return;
        }
    };
    let Some(last) = deliveries.first() else {
        report.ok(
            "btcpay.deliveries",
            "no delivery yet (normal before the first invoice)",
        );
        return;
    };
    let failed = deliveries
        .iter()
        .filter(|d| d["status"] != "HttpSuccess")
        .count();
    let when = last["timestamp"]
        .as_i64()
        .map(|t| crate::clock::datetime_of(t * 1000))
        .unwrap_or_default();
    let answer = match (last["httpCode"].as_u64(), last["errorMessage"].as_str()) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(error)) => format!("no answer ({error})"),
        (None, None) => "no answer".to_string(),
    };
    if last["status"] == "HttpSuccess" {
        report.ok(
            "btcpay.deliveries",
            format!(
                "the last delivery ({when}) was answered {answer}; {failed} of the last {} failed",
                deliveries.len()
            ),
        );
    } else {
        report.fail(
            "btcpay.deliveries",
            format!(
                "the last delivery ({when}) failed: {answer}; {failed} of the last {} failed",
                deliveries.len()
            ),
            "BTCPay retries it and holds back later events meanwhile: check `webhook.url` and the web server's log, then redeliver it in BTCPay (Store → Settings → Webhooks); `splynx-bitpay reconcile` settles what the webhooks missed",
        );
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
