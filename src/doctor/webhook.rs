//! The public webhook URL: BitPay must reach it, and the IPN shim must answer.

use crate::config::{Config, Environment};
use crate::http;

use super::report::Report;

/// BitPay must reach `notification_url`: the IPN endpoint answers 400 to an empty POST.
pub(super) fn check_webhook_url(report: &mut Report, config: &Config) {
    let url = &config.bitpay.notification_url;
    let production = config.bitpay.environment == Environment::Production;
    let https = url.starts_with("https://");
    let nginx_fix = "install the nginx snippet (/etc/nginx/sites-available/splynx-bitpay.addons, included by the Splynx vhost) and the link /var/www/splynx/web/bitpay, then reload nginx";
    let reply = http::transport(config.bitpay.timeout).send(http::Request {
        method: http::Method::POST,
        url: url.clone(),
        headers: vec![("Content-Type", "application/json".into())],
        body: Some(Vec::new()),
    });
    let response = match reply {
        Ok(response) => response,
        Err(e) => {
            // Like BitPay and Splynx being unreachable: temporary (75) when nothing else
            // failed, as the help says.
            report.fail_temporary(
                "webhook.url",
                format!("POST {url}: {}", e.message),
                format!("BitPay must reach this URL from the internet: check DNS, the firewall (port 443) and the HTTPS certificate; {nginx_fix}; or set bitpay.notification_url in {}. (This check runs on this server: if it cannot reach its own public name, try from outside: curl -X POST {url})", config.path.display()),
            );
            return;
        }
    };
    let status = response.status;
    let location = response.header("location").map(str::to_string);
    match status {
        400 if !https && production => report.fail(
            "webhook.url",
            format!("{url} answers, but BitPay only sends webhooks to HTTPS URLs"),
            format!("serve Splynx over HTTPS and set bitpay.notification_url (or splynx.url) to the https:// address in {}", config.path.display()),
        ),
        400 if !https => report.warn(
            "webhook.url",
            format!("{url} answers 400 to an empty POST (the IPN endpoint is up), but it is not HTTPS"),
            Some("BitPay requires HTTPS for webhooks: use an https:// URL before going to production".into()),
        ),
        400 => report.ok(
            "webhook.url",
            format!("{url} answers 400 to an empty POST: the IPN endpoint is up"),
        ),
        300..=399 => report.fail(
            "webhook.url",
            format!(
                "{url} redirects (HTTP {status}{}); BitPay does not follow redirects",
                location.map(|l| format!(" to {l}")).unwrap_or_default()
            ),
            format!("set bitpay.notification_url in {} to the final URL", config.path.display()),
        ),
        404 => report.fail(
            "webhook.url",
            format!("{url} answers 404: the add-on is not served there"),
            nginx_fix,
        ),
        500..=599 => report.fail(
            "webhook.url",
            format!("{url} answers HTTP {status} to an empty POST (expected 400)"),
            "the IPN shim reached but failed: check the PHP-FPM and nginx error logs, and that the web server user can run /usr/bin/splynx-bitpay with this config (sudo -u www-data splynx-bitpay status)",
        ),
        _ => report.fail(
            "webhook.url",
            format!("{url} answers HTTP {status} to an empty POST, not 400: something else than the IPN endpoint answers there"),
            format!("{nginx_fix}; or set bitpay.notification_url in {}", config.path.display()),
        ),
    }
}
