//! Probes of BitPay and Splynx: reachability, the environment, the token, the API key's
//! permissions and the payment method; nothing is changed at either. Longer than 500
//! lines because each probe carries its fix text; one file per server is issue 21's split.

use crate::bitpay::{BitPayClient, BitPayError, Identity};
use crate::config::{Config, CreditOn, Environment, Source, StatementGrouping};
use crate::splynx::{SplynxClient, SplynxError};
use crate::store::Store;
use rust_decimal::Decimal;

use super::owner::owner_of;
use super::report::Report;
use super::CHECKS;

pub(super) fn check_bitpay(
    report: &mut Report,
    config: &Config,
    store: Option<&Store>,
    identity: Option<Identity>,
) {
    let settings = &config.bitpay;
    let env = settings.environment;
    let host = url::Url::parse(&settings.api_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let mismatch = match env {
        Environment::Production => host == "test.bitpay.com",
        Environment::Test => host == "bitpay.com" || host == "www.bitpay.com",
    };
    if mismatch {
        report.fail(
            "bitpay.environment",
            format!(
                "environment = \"{}\" but api_url = {} is the other environment",
                env.as_str(),
                settings.api_url
            ),
            format!(
                "remove bitpay.api_url from {} (the environment sets it) or make them agree",
                config.path.display()
            ),
        );
    } else {
        report.ok(
            "bitpay.environment",
            format!("{} ({})", env.as_str(), settings.api_url),
        );
    }

    check_confirmations(report, settings);
    let client = BitPayClient::new(settings, None);
    // An unsigned `GET /tokens`: any definitive answer (even a refusal) means BitPay is
    // reachable; only transport failures, 429 and 5xx are errors.
    let reachable = match client.get_unsigned("/tokens") {
        Ok(_) | Err(BitPayError::Api { .. }) => Ok(()),
        Err(e) => Err(e),
    };
    check_currency(report, config, reachable.is_ok().then_some(&client));
    if let Err(e) = reachable {
        report.fail_temporary(
            "bitpay.reachable",
            e.to_string(),
            format!(
                "check that this server reaches {} (DNS, firewall, outgoing HTTPS proxy); `bitpay.api_url` overrides the address",
                settings.api_url
            ),
        );
        report.skip("bitpay.token", "needs BitPay to be reachable");
        return;
    }
    report.ok("bitpay.reachable", format!("{} answers", settings.api_url));

    let Some(store) = store else {
        report.skip("bitpay.token", "needs the database");
        return;
    };
    let Some(identity) = identity else {
        report.skip("bitpay.token", "needs the BitPay key (see `key`)");
        return;
    };
    check_token(report, config, store, identity);
}

/// The currency against BitPay's `GET /currencies` (whether it prices invoices in it, and
/// with the decimals we use), and a reminder that Splynx's must be the same.
fn check_currency(report: &mut Report, config: &Config, reachable: Option<&BitPayClient>) {
    let currency = &config.bitpay.currency;
    let ours = crate::money::currency_decimals(currency);
    let splynx = format!(
        "check by hand that Config → Main → Localization → Finance format → Currency in Splynx is {currency} (payments are recorded in it; Splynx's API does not report it)"
    );
    let Some(client) = reachable else {
        let message = format!("BitPay invoices are in {currency} ({ours} decimal places by ISO 4217); BitPay is not reachable to compare");
        return report.warn("bitpay.currency", message, Some(splynx));
    };
    let listed = client.get_unsigned("/currencies").map(|data| {
        data.as_array()
            .into_iter()
            .flatten()
            .find(|c| c.get("code").and_then(|c| c.as_str()) == Some(currency.as_str()))
            .map(|c| c.get("precision").and_then(crate::money::id_from_json))
    });
    match listed {
        Ok(None) => report.fail(
            "bitpay.currency",
            format!("BitPay does not list {currency} among the currencies it prices invoices in (GET /currencies)"),
            format!("set bitpay.currency (Modules list \"Currency\") to your Splynx system currency, one BitPay supports; {splynx}"),
        ),
        Ok(Some(Some(theirs))) if theirs != i64::from(ours) => report.fail(
            "bitpay.currency",
            format!("{currency}: BitPay takes {theirs} decimal places, ISO 4217 says {ours}; amounts could be refused or rounded"),
            "report this to the add-on's maintainers with the output of doctor",
        ),
        Ok(_) => report.warn(
            "bitpay.currency",
            format!("BitPay invoices are in {currency} ({ours} decimal places, as BitPay takes them)"),
            Some(splynx),
        ),
        Err(e) => report.warn(
            "bitpay.currency",
            format!("BitPay invoices are in {currency} ({ours} decimal places by ISO 4217); BitPay's list of currencies could not be read: {e}"),
            Some(splynx),
        ),
    }
}

pub(super) fn check_confirmations(report: &mut Report, settings: &crate::config::BitPaySettings) {
    let credit_on = match settings.credit_on {
        CreditOn::Confirmed => "confirmed",
        CreditOn::Complete => "complete",
    };
    if settings.allow_zero_confirmation {
        report.warn(
            "bitpay.confirmations",
            format!(
                "transaction_speed = \"{}\", credit_on = \"{credit_on}\" with allow_zero_confirmation = true: customers are credited before any block includes their payment, so a double-spend is credited and later shows as \"reversed after credit\"",
                settings.transaction_speed
            ),
            Some("use transaction_speed = \"medium\" (one confirmation) or credit_on = \"complete\", and remove allow_zero_confirmation".into()),
        );
    } else {
        report.ok(
            "bitpay.confirmations",
            format!(
                "transaction_speed = \"{}\", credit on {credit_on}",
                settings.transaction_speed
            ),
        );
    }
}

pub(super) fn check_token(report: &mut Report, config: &Config, store: &Store, identity: Identity) {
    let env = config.bitpay.environment.as_str();
    let other = match config.bitpay.environment {
        Environment::Test => "production",
        Environment::Production => "test",
    };
    let owner = owner_of(&config.data_dir);
    let dashboard = format!("{}/dashboard/merchant/api-tokens", config.bitpay.api_url);
    let pair_fix = format!(
        "pair with a code from the {env} BitPay dashboard ({dashboard}): sudo -u {owner} splynx-bitpay pair CODE"
    );
    let tokens = match store.tokens(env) {
        Ok(tokens) => tokens,
        Err(e) => {
            report.fail("bitpay.token", e.to_string(), "see the `database` check");
            return;
        }
    };
    if tokens.is_empty() {
        let elsewhere = store.tokens(other).unwrap_or_default();
        if elsewhere.is_empty() {
            report.fail(
                "bitpay.token",
                format!("not paired yet (no token for the {env} environment)"),
                pair_fix,
            );
        } else {
            report.fail(
                "bitpay.token",
                format!("the token was paired on {other} but environment = {env}: it does not work there"),
                format!(
                    "{pair_fix}; or, if {other} is right, set bitpay.environment = \"{other}\" in {}",
                    config.path.display()
                ),
            );
        }
        return;
    }
    let sin = identity.sin();
    let client = BitPayClient::new(&config.bitpay, Some(identity));
    let active = match client.active_tokens() {
        Ok(active) => active,
        Err(e) if e.is_authorization() => Vec::new(),
        Err(e) => {
            let temporary = e.is_temporary();
            report.fail(
                "bitpay.token",
                format!("cannot list the tokens: {e}"),
                "run doctor again later; if it persists, check `bitpay.reachable`",
            );
            if let Some(last) = report.checks.last_mut() {
                last.temporary = temporary;
            }
            return;
        }
    };
    let is_active = |facade: &str, token: &str| {
        active
            .iter()
            .any(|(f, t)| f == facade && t.as_str() == token)
    };
    let live: Vec<&str> = tokens
        .iter()
        .filter(|t| is_active(&t.facade, t.token.expose()))
        .map(|t| t.facade.as_str())
        .collect();
    if !live.is_empty() {
        report.ok(
            "bitpay.token",
            format!(
                "{} token active at BitPay ({env}, SIN {sin})",
                live.join(", ")
            ),
        );
        return;
    }
    if let Some(pending) = tokens.iter().find(|t| !t.approved) {
        report.fail(
            "bitpay.token",
            format!(
                "the {} token is waiting for approval (pairing code {})",
                pending.facade,
                pending.pairing_code.as_deref().unwrap_or("?")
            ),
            format!("approve the code at {dashboard}, or {pair_fix}"),
        );
        return;
    }
    let facades: Vec<&str> = tokens.iter().map(|t| t.facade.as_str()).collect();
    report.fail(
        "bitpay.token",
        format!(
            "BitPay at {} ({env}) does not accept the stored {} token for SIN {sin}: it was revoked, or it belongs to the {other} environment",
            config.bitpay.api_url,
            facades.join(", ")
        ),
        format!("`splynx-bitpay unpair`, then {pair_fix}"),
    );
}

/// Refunds from Splynx need a merchant token: a warning (everything else works) that
/// says how to pair one.
pub(super) fn check_refund_token(report: &mut Report, config: &Config, store: &Store) {
    let env = config.bitpay.environment.as_str();
    let tokens = match store.tokens(env) {
        Ok(tokens) => tokens,
        Err(e) => return report.fail("bitpay.refunds", e.to_string(), "see the `database` check"),
    };
    if tokens.iter().any(|t| t.facade == "merchant" && t.approved) {
        return report.ok(
            "bitpay.refunds",
            "refunds can be asked for from Splynx (a merchant token is paired)",
        );
    }
    let owner = owner_of(&config.data_dir);
    report.warn(
        "bitpay.refunds",
        "refunds from Splynx need a merchant token, and none is paired (a pos token makes and reads invoices only)",
        Some(format!(
            "sudo -u {owner} splynx-bitpay pair --request --facade merchant, then approve the code in the BitPay dashboard"
        )),
    );
}

/// Skips every Splynx check, saying why.
pub(super) fn skip_splynx(report: &mut Report, why: &str) {
    for id in CHECKS.iter().filter(|id| id.starts_with("splynx.")) {
        report.skip(id, why);
    }
}

/// The Splynx checks, sharing `store`'s nonce, token and locks.
pub(super) fn check_splynx(report: &mut Report, config: &Config, store: &Store) {
    let client = SplynxClient::new(&config.splynx, store);
    let api = &config.splynx.api_url;
    let key_fix = || {
        match config.source("splynx.api_key") {
        // Splynx's own key for the add-on (its secret may be stored encrypted there).
        Source::SplynxApiKey => format!(
            "the key Splynx created for the add-on ({}) must be enabled in Administration → API keys, with this server's IP in its allowed list; or create one there and set splynx.api_key and splynx.api_secret in {}",
            config
                .modules_list_file()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            config.path.display()
        ),
        _ => format!(
            "check splynx.api_key and splynx.api_secret in {}; the key must be enabled in Administration → API keys, with this server's IP in its allowed list",
            config.path.display()
        ),
    }
    };
    match client.check() {
        Ok(_) => report.ok("splynx.api", format!("{api}: API key accepted")),
        Err(e) => {
            match e.cause() {
                SplynxError::Unauthorized { .. } => {
                    report.fail("splynx.api", e.to_string(), key_fix())
                }
                e if e.is_temporary() => report.fail_temporary(
                    "splynx.api",
                    e.to_string(),
                    format!(
                        "check that this server reaches {api} (splynx.api_url, DNS, firewall); run doctor again when Splynx is up"
                    ),
                ),
                _ => report.fail(
                    "splynx.api",
                    e.to_string(),
                    format!("check splynx.url / splynx.api_url in {}", config.path.display()),
                ),
            }
            for id in CHECKS
                .iter()
                .filter(|id| id.starts_with("splynx.") && **id != "splynx.api")
            {
                report.skip(id, "needs the Splynx API");
            }
            return;
        }
    }

    let grant = |what: &str| {
        format!("in Splynx, Administration → API keys → this key → Permissions: allow {what}")
    };
    let readable = [
        (
            "splynx.customers",
            "admin/customers/customer",
            "customers",
            "Customers → Customer (index, view)",
        ),
        (
            "splynx.invoices",
            "admin/finance/invoices",
            "invoices",
            "Finance → Invoices (index, view)",
        ),
        (
            "splynx.proformas",
            "admin/finance/proforma-invoices",
            "proforma invoices",
            "Finance → Proforma invoices (index, view)",
        ),
    ];
    for (id, path, what, permission) in readable {
        let result = probe_list(&client, path, what)
            .map_err(|e| (format!("list {what}"), e))
            .and_then(|first| {
                let row_id = first.as_ref().and_then(|row| row.get("id")).and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                });
                match row_id {
                    Some(row_id) => probe_view(&client, path, row_id, what)
                        .map(|_| true)
                        .map_err(|e| (format!("read {what}"), e)),
                    None => Ok(false),
                }
            });
        match result {
            Ok(true) => report.ok(id, format!("may list and read {what}")),
            Ok(false) => report.ok(id, format!("may list {what} (none yet to read)")),
            Err((action, e)) => {
                splynx_failure(report, id, &action, e, &grant(permission), &key_fix())
            }
        }
    }

    // What the key may add is read from the permissions Splynx lists with a new access
    // token: doctor never writes to the ISP's books to find out.
    let grants = Grants(client.permissions().unwrap_or(None));
    let probes = [("admin/finance/payments", "payments")];
    if may_list_and_add(
        report,
        "splynx.payments",
        &client,
        &grants,
        &probes,
        &grant("Finance → Payments (index, add)"),
    ) {
        report.ok("splynx.payments", "may list and add payments");
    }

    let wanted = config.splynx.payment_method_id;
    match client.payment_methods() {
        Ok(methods) => match methods.iter().find(|m| m.id == wanted) {
            Some(m) if m.active() => report.ok(
                "splynx.payment_method",
                format!(
                    "payment method {wanted} \"{}\" exists and is active",
                    m.name
                ),
            ),
            Some(m) => report.fail(
                "splynx.payment_method",
                format!("payment method {wanted} \"{}\" is disabled", m.name),
                "enable it in Splynx: Config → Finance → Payment methods",
            ),
            None => {
                let known: Vec<String> = methods
                    .iter()
                    .filter(|m| m.active())
                    .map(|m| format!("{} \"{}\"", m.id, m.name))
                    .collect();
                report.fail(
                    "splynx.payment_method",
                    format!(
                        "payment method {wanted} does not exist (active ones: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ),
                    format!(
                        "create a \"BitPay\" method in Config → Finance → Payment methods, then set splynx.payment_method_id to its id in {}",
                        config.path.display()
                    ),
                );
            }
        },
        Err(e) => splynx_failure(
            report,
            "splynx.payment_method",
            "list payment methods",
            e,
            &grant("Finance → Payment methods (index)"),
            &key_fix(),
        ),
    }
    check_statements(report, config, store, &client, &grants);
    check_fee(report, config, &client, &grants);
}

/// What the API key may do, as Splynx listed it with an access token (`None`: this Splynx
/// lists nothing).
struct Grants(Option<serde_json::Map<String, serde_json::Value>>);

impl Grants {
    /// Whether the key may add rows at `path` (`admin/finance/payments`), if known.
    fn may_add(&self, path: &str) -> Option<bool> {
        let grants = self.0.as_ref()?;
        let controller = controller_of(path);
        let entry = grants
            .get(&controller)
            .or_else(|| grants.get(&format!("api\\{controller}")));
        Some(entry.and_then(|e| e.get("add")).and_then(|a| a.as_str()) == Some("allow"))
    }
}

/// Splynx's controller for an API path: `admin/finance/bank-statements-records` is
/// `admin\finance\BankStatementsRecords`.
fn controller_of(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segments.split_last() else {
        return String::new();
    };
    let camel: String = last
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    parents
        .iter()
        .copied()
        .chain(std::iter::once(camel.as_str()))
        .collect::<Vec<_>>()
        .join("\\")
}

/// The key may list (probed with `GET ?limit=1`) and add (by its permissions) each of
/// `probes` (path, what). Reports a failure or, when Splynx does not list permissions, a
/// warning (with `grant`), and returns false; nothing is ever written to find out.
fn may_list_and_add(
    report: &mut Report,
    id: &'static str,
    client: &SplynxClient<'_>,
    grants: &Grants,
    probes: &[(&str, &str)],
    grant: &str,
) -> bool {
    for (path, what) in probes {
        if let Err(e) = probe_list(client, path, what) {
            let key_fix = "check splynx.api_key and splynx.api_secret";
            splynx_failure(report, id, &format!("list {what}"), e, grant, key_fix);
            return false;
        }
        match grants.may_add(path) {
            Some(true) => {}
            Some(false) => {
                report.fail(
                    id,
                    format!("the Splynx API key may not add {what} (Splynx lists its permissions)"),
                    grant,
                );
                return false;
            }
            None => {
                report.warn(
                    id,
                    format!("Splynx does not list this API key's permissions, so whether it may add {what} is not known; doctor writes nothing to the books to find out, and the first real one says what is missing"),
                    Some(grant.to_string()),
                );
                return false;
            }
        }
    }
    true
}

/// Payment statements: the key may list and add statements and their records, and no
/// credit waits for its record.
fn check_statements(
    report: &mut Report,
    config: &Config,
    store: &Store,
    client: &SplynxClient<'_>,
    grants: &Grants,
) {
    const ID: &str = "splynx.statements";
    if config.statements == StatementGrouping::Off {
        report.ok(
            ID,
            "payment statements are off ([statements] group = \"off\")",
        );
        return;
    }
    let probes = [
        ("admin/finance/bank-statements", "payment statements"),
        (
            "admin/finance/bank-statements-records",
            "payment statement records",
        ),
    ];
    let grant = "in Splynx, Administration → API keys → this key → Permissions: allow Finance → Payment statements and Payment statements records (index, add); payments are credited meanwhile, and reconcile books their records once it may";
    if !may_list_and_add(report, ID, client, grants, &probes, grant) {
        return;
    }
    match store.open_bookings() {
        Ok((0, _)) | Err(_) => report.ok(
            ID,
            format!(
                "may list and add payment statements and their records (one statement per {})",
                config.statements.as_str()
            ),
        ),
        Ok((waiting, note)) => report.warn(
            ID,
            format!(
                "{waiting} credited payment(s) wait for a booking (payment statement record or fee transaction): {}",
                note.unwrap_or_default()
            ),
            Some("run `splynx-bitpay reconcile`; it books them".into()),
        ),
    }
}

/// The service fee, when any partner charges one: the key may list and add transactions.
fn check_fee(report: &mut Report, config: &Config, client: &SplynxClient<'_>, grants: &Grants) {
    const ID: &str = "splynx.fee";
    let mut charging = Vec::new();
    if config.fee.percent > Decimal::ZERO {
        charging.push(format!("{} %", config.fee.percent));
    }
    for partner in config.partners_with_settings() {
        let settings = config.for_partner(Some(partner));
        if settings.fee.percent > Decimal::ZERO && settings.fee != config.fee {
            charging.push(format!("partner {partner}: {} %", settings.fee.percent));
        }
    }
    if charging.is_empty() {
        report.ok(ID, "no service fee is charged ([fee] percent = \"0\")");
        return;
    }
    let probes = [("admin/finance/transactions", "transactions")];
    let grant = "in Splynx, Administration → API keys → this key → Permissions: allow Finance → Transactions (index, add); payments are credited meanwhile, and reconcile charges their fees once it may";
    if may_list_and_add(report, ID, client, grants, &probes, grant) {
        report.ok(
            ID,
            format!(
                "service fee {} is charged as transactions in category {}; the key may list and add them",
                charging.join(", "),
                config.fee.category
            ),
        );
    }
}

/// `GET path?limit=1`: the first row, if any (needs the `index` permission).
fn probe_list(
    client: &SplynxClient<'_>,
    path: &str,
    what: &str,
) -> Result<Option<serde_json::Value>, SplynxError> {
    let rows = client.get_value(path, &[("limit", "1")], what)?;
    Ok(rows.as_array().and_then(|rows| rows.first().cloned()))
}

/// `GET path/id` (needs the `view` permission).
fn probe_view(
    client: &SplynxClient<'_>,
    path: &str,
    id: i64,
    what: &str,
) -> Result<(), SplynxError> {
    client
        .get_value(&format!("{path}/{id}"), &[], what)
        .map(|_| ())
}

/// `action` is what the probe tried ("list customers"), for a 403's message.
pub(super) fn splynx_failure(
    report: &mut Report,
    id: &'static str,
    action: &str,
    e: SplynxError,
    grant: &str,
    key_fix: &str,
) {
    match e.cause() {
        SplynxError::Forbidden { message, .. } => report.fail(
            id,
            format!("the API key may not {action} (Splynx: {message})"),
            grant,
        ),
        SplynxError::Unauthorized { .. } => report.fail(id, e.to_string(), key_fix),
        e if e.is_temporary() => {
            report.fail_temporary(id, e.to_string(), "run doctor again when Splynx answers")
        }
        _ => report.fail(id, format!("cannot {action}: {e}"), grant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_named_as_splynx_names_them() {
        assert_eq!(
            controller_of("admin/finance/payments"),
            r"admin\finance\Payments"
        );
        assert_eq!(
            controller_of("admin/finance/bank-statements-records"),
            r"admin\finance\BankStatementsRecords"
        );
        let grants = Grants(Some(
            serde_json::json!({
                r"admin\finance\Payments": {"add": "allow", "index": "allow"},
                r"api\admin\finance\Transactions": {"add": "allow"},
                r"admin\finance\BankStatements": {"add": "deny"},
            })
            .as_object()
            .unwrap()
            .clone(),
        ));
        assert_eq!(grants.may_add("admin/finance/payments"), Some(true));
        assert_eq!(grants.may_add("admin/finance/transactions"), Some(true));
        assert_eq!(grants.may_add("admin/finance/bank-statements"), Some(false));
        assert_eq!(
            grants.may_add("admin/finance/bank-statements-records"),
            Some(false)
        );
        assert_eq!(Grants(None).may_add("admin/finance/payments"), None);
    }
}
