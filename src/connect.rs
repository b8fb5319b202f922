//! Connecting to BTCPay Server (`pair --btcpay`, the key on stdin): the store's API key is
//! checked with `api-keys/current` (store, every permission the add-on needs) before
//! anything is stored, our webhook is registered (replacing ours, never piling up a second)
//! and the secret BTCPay shows once is kept with the key in the state store.

use anyhow::Result;
use serde::Serialize;

use crate::btcpay::model::{PERMISSIONS, REFUND_PERMISSIONS};
use crate::btcpay::{BtcpayClient, BtcpayError};
use crate::cli::AdminArgs;
use crate::clock;
use crate::config::ServerKind;
use crate::context::Context;
use crate::exit::{ExitCode, Failing};
use crate::gateway::{API_KEY, BTCPAY, WEBHOOK_SECRET};
use crate::secret::Secret;
use crate::store::TokenRecord;

/// The events the add-on listens to: every one that may change what is settled.
pub const EVENTS: [&str; 11] = [
    "InvoiceReceivedPayment",
    "InvoicePaymentSettled",
    "InvoiceProcessing",
    "InvoiceExpired",
    "InvoiceSettled",
    "InvoiceInvalid",
    "InvoicePaidAfterExpiration",
    "InvoiceExpiredPaidPartial",
    // A refund's payouts: claimed, approved, paid (or cancelled).
    "PayoutCreated",
    "PayoutApproved",
    "PayoutUpdated",
];

/// Why connecting stored nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("this add-on is set to [server] kind = \"bitpay\": set kind = \"btcpay\" and [btcpay] url and store_id in {0}, then connect")]
    NotBtcpay(String),
    #[error("no API key on stdin: pipe the key of the BTCPay store into `splynx-bitpay pair --btcpay` (it is never read from the command line)")]
    NoKey,
    #[error("BTCPay Server refused the API key ({0}): create one in BTCPay (Account → API Keys) for store {1} and connect again")]
    KeyRefused(String, String),
    #[error("the API key may not {permission} in store {store}: create a key with the permissions {all} for that store, and connect again")]
    MissingPermission {
        permission: String,
        store: String,
        all: String,
    },
    #[error("BTCPay Server registered the webhook without a secret: connect again")]
    NoSecret,
    #[error("this connection attempt is unknown, already used or older than 15 minutes: start it again from the add-on's admin page")]
    UnknownState,
    #[error("the return address {0:?} is not an http(s) URL")]
    BadRedirect(String),
}

impl Failing for ConnectError {
    fn exit_code(&self) -> ExitCode {
        match self {
            ConnectError::NoKey | ConnectError::UnknownState | ConnectError::BadRedirect(_) => {
                ExitCode::BadInput
            }
            _ => ExitCode::Config,
        }
    }
}

/// Where one-time connection states are kept (tokens table, this environment).
const STATES: &str = "btcpay-connect";
/// How long an admin has to come back from BTCPay's authorize page.
const STATE_MS: i64 = 15 * 60 * 1000;

/// BTCPay's authorize page, asking for exactly the permissions the add-on needs.
#[derive(Debug, Serialize)]
pub struct Authorize {
    pub authorize_url: String,
    pub expires_at: i64,
}

/// Starts the connection from the admin page: a one-time state (kept 15 minutes) and the
/// address of BTCPay's authorize page, which posts the key back to `redirect?state=…`.
pub fn authorize_url(ctx: &Context, admin: &AdminArgs, redirect: &str) -> Result<Authorize> {
    if ctx.config.server != ServerKind::Btcpay {
        return Err(ConnectError::NotBtcpay(ctx.config.path.display().to_string()).into());
    }
    let caller = crate::admin::require_pairing_role(ctx, admin)?;
    let mut back = url::Url::parse(redirect)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| ConnectError::BadRedirect(redirect.chars().take(80).collect()))?;
    let state = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let now = clock::now_ms();
    ctx.store.save_token(&TokenRecord {
        environment: STATES.into(),
        facade: state.clone(),
        token: Secret::new(state.clone()),
        approved: false,
        pairing_code: None,
        pairing_expires_at: Some(now + STATE_MS),
        // Who started it: the journal names them when the key comes back.
        label: Some(crate::admin::who(caller.as_ref())),
        created_at: now,
    })?;
    back.query_pairs_mut().append_pair("state", &state);
    let mut authorize = url::Url::parse(&format!("{}/api-keys/authorize", ctx.config.btcpay.url))?;
    {
        let mut query = authorize.query_pairs_mut();
        for permission in PERMISSIONS.iter().chain(&REFUND_PERMISSIONS) {
            query.append_pair("permissions", permission);
        }
        query
            .append_pair("applicationName", "splynx-bitpay")
            .append_pair("strict", "true")
            .append_pair("selectiveStores", "true")
            .append_pair("redirect", back.as_str());
    }
    Ok(Authorize {
        authorize_url: authorize.to_string(),
        expires_at: now + STATE_MS,
    })
}

/// Uses up a connection state: it must exist and be younger than 15 minutes. Who started
/// the connection.
pub fn consume_state(ctx: &Context, state: &str) -> Result<String> {
    let now = clock::now_ms();
    let found = ctx
        .store
        .tokens(STATES)?
        .into_iter()
        .find(|t| t.facade == state);
    let removed = ctx.store.delete_token(STATES, state)?;
    match found {
        Some(t) if removed && t.pairing_expires_at.is_some_and(|at| at > now) => Ok(format!(
            "{} through BTCPay's authorize page",
            t.label.unwrap_or_else(|| "the command line".into())
        )),
        _ => Err(ConnectError::UnknownState.into()),
    }
}

/// What connecting did.
#[derive(Debug, Serialize)]
pub struct Connected {
    pub server: &'static str,
    pub url: String,
    pub store_id: String,
    pub webhook_id: String,
    pub webhook_url: String,
    /// Our earlier webhooks that this one replaced.
    pub replaced: usize,
}

/// Checks the key, registers our webhook, and stores both secrets. `started_by` names who
/// started a connection through the authorize page (`consume_state`).
pub fn connect_btcpay(
    ctx: &Context,
    admin: &AdminArgs,
    key: &str,
    started_by: Option<String>,
) -> Result<Connected> {
    let config = &ctx.config;
    if config.server != ServerKind::Btcpay {
        return Err(ConnectError::NotBtcpay(config.path.display().to_string()).into());
    }
    let caller = crate::admin::require_pairing_role(ctx, admin)?;
    let key = key.trim();
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_whitespace) {
        return Err(ConnectError::NoKey.into());
    }
    let settings = &config.btcpay;
    let client = BtcpayClient::configured(config, Secret::new(key));
    let granted = match client.current_key() {
        Ok(granted) => granted,
        Err(BtcpayError::Unauthorized { message }) => {
            return Err(ConnectError::KeyRefused(message, settings.store_id.clone()).into())
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(missing) = PERMISSIONS
        .iter()
        .find(|p| !granted.grants(p, &settings.store_id))
    {
        return Err(ConnectError::MissingPermission {
            permission: missing.to_string(),
            store: settings.store_id.clone(),
            all: PERMISSIONS.join(", "),
        }
        .into());
    }
    // Reconnecting replaces our webhook: BTCPay never shows an old secret again.
    let ours = &config.bitpay.notification_url;
    let mut replaced = 0;
    for hook in client.webhooks()? {
        if hook["url"].as_str() == Some(ours.as_str()) {
            if let Some(id) = hook["id"].as_str() {
                client.delete_webhook(id)?;
                replaced += 1;
            }
        }
    }
    let hook = client.create_webhook(&serde_json::json!({
        "url": ours,
        "enabled": true,
        "automaticRedelivery": true,
        "authorizedEvents": {"everything": false, "specificEvents": EVENTS},
    }))?;
    let secret = hook["secret"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or(ConnectError::NoSecret)?;
    let webhook_id = hook["id"].as_str().unwrap_or_default().to_string();
    let now = clock::now_ms();
    let record = |facade: &str, secret: &str, label: &str| TokenRecord {
        environment: BTCPAY.into(),
        facade: facade.into(),
        token: Secret::new(secret),
        approved: true,
        pairing_code: None,
        pairing_expires_at: None,
        label: Some(label.into()),
        created_at: now,
    };
    let tx = ctx.store.begin()?;
    ctx.store
        .save_token(&record(API_KEY, key, &settings.store_id))?;
    ctx.store
        .save_token(&record(WEBHOOK_SECRET, secret, &webhook_id))?;
    ctx.store.journal(
        None,
        "pairing",
        &format!(
            "connected to BTCPay Server {} store {} (webhook {webhook_id}{}), by {}",
            settings.url,
            settings.store_id,
            if replaced > 0 { ", replacing ours" } else { "" },
            started_by.unwrap_or_else(|| crate::admin::who(caller.as_ref()))
        ),
        None,
        now,
    )?;
    tx.commit().map_err(crate::store::StoreError::from)?;
    ctx.store.make_durable()?;
    Ok(Connected {
        server: "BTCPay Server",
        url: settings.url.clone(),
        store_id: settings.store_id.clone(),
        webhook_id,
        webhook_url: ours.clone(),
        replaced,
    })
}

/// What disconnecting did.
#[derive(Debug, Serialize)]
pub struct Disconnected {
    /// Our webhook was deleted at BTCPay (false: it could not be, or there was none).
    pub webhook_deleted: bool,
    /// Why the webhook could not be deleted, if it could not.
    pub webhook_problem: Option<String>,
    /// The API key connecting stored was revoked at BTCPay (`DELETE api-keys/current`);
    /// false for a key from the config file, which is left for the admin to remove.
    pub key_revoked: bool,
    pub secrets_forgotten: usize,
}

/// Deletes our webhook at BTCPay (what it can) and forgets the key and the secret.
pub fn disconnect_btcpay(ctx: &Context, admin: &AdminArgs) -> Result<Disconnected> {
    let caller = crate::admin::require_pairing_role(ctx, admin)?;
    let tokens = ctx.store.tokens(BTCPAY)?;
    let stored = |what: &str| tokens.iter().find(|t| t.facade == what);
    let settings = &ctx.config.btcpay;
    let mut webhook_deleted = false;
    let mut webhook_problem = None;
    let mut key_revoked = false;
    let connected_key = stored(API_KEY).map(|t| t.token.clone());
    let key = settings.api_key.clone().or_else(|| connected_key.clone());
    let hook_id = stored(WEBHOOK_SECRET).and_then(|t| t.label.clone());
    if let Some(key) = key {
        let client = BtcpayClient::configured(&ctx.config, key);
        if let Some(hook_id) = hook_id {
            match client.delete_webhook(&hook_id) {
                Ok(()) => webhook_deleted = true,
                Err(e) => webhook_problem = Some(e.to_string()),
            }
        }
        // The key connecting stored is ours to revoke; one in the config file is the
        // admin's (and would still be used).
        if settings.api_key.is_none() && connected_key.is_some() {
            match client.revoke_current_key() {
                Ok(()) => key_revoked = true,
                Err(e) => log::warn!("the API key could not be revoked at BTCPay: {e}"),
            }
        }
    }
    let secrets_forgotten = ctx.store.delete_tokens(BTCPAY)?;
    ctx.store.journal(
        None,
        "pairing",
        &format!(
            "disconnected from BTCPay Server: {} secret(s) forgotten, webhook {}, API key {}, by {}",
            secrets_forgotten,
            if webhook_deleted {
                "deleted"
            } else {
                "not deleted"
            },
            if key_revoked { "revoked" } else { "not revoked" },
            crate::admin::who(caller.as_ref())
        ),
        None,
        clock::now_ms(),
    )?;
    ctx.store.make_durable()?;
    Ok(Disconnected {
        webhook_deleted,
        webhook_problem,
        key_revoked,
        secrets_forgotten,
    })
}
