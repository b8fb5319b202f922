//! Opens the configured payment server for an operation: its credentials from the store,
//! its key, and the key our order ids are signed with. The one place that knows which
//! servers exist: a new one is a line in `open`, `server_name` and `webhooks`.

use anyhow::Result;

use crate::bitpay::{BitPayServer, BitPayWebhooks, Identity};
use crate::btcpay::{BtcpayClient, BtcpayServer, BtcpayWebhooks};
use crate::config::ServerKind;
use crate::context::Context;
use crate::exit::{ExitCode, Failing};
use crate::order_id::OrderKey;
use crate::pairing;
use crate::secret::Secret;
use crate::server::{Credential, PaymentServer, WebhookFormat};

/// What the operation needs beyond reading invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Makes invoices (or sweeps them): the credential to make them with must be ready.
    Invoices,
    /// Only reads what a webhook names.
    Reading,
}

/// Whether the operation may create this installation's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    CreateIfMissing,
    /// A dry run creates nothing: a missing key is a setup problem.
    MustExist,
}

/// A dry run found no key to read with (it creates none).
#[derive(Debug, thiserror::Error)]
#[error("the BitPay key {0} is missing: pair again (`splynx-bitpay pair CODE`)")]
pub struct KeyMissing(String);

impl Failing for KeyMissing {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

/// The configured payment server, and the key our order ids carry.
pub struct Gateway {
    pub server: Box<dyn PaymentServer>,
    pub order_key: OrderKey,
}

pub fn open(ctx: &Context, need: Need, key: Key) -> Result<Gateway> {
    match ctx.config.server {
        ServerKind::BitPay => open_bitpay(ctx, need, key),
        ServerKind::Btcpay => open_btcpay(ctx, key),
    }
}

/// The configured server's webhooks, read before anything else is opened.
pub fn webhooks(ctx: &Context) -> Result<Box<dyn WebhookFormat>> {
    Ok(match ctx.config.server {
        ServerKind::BitPay => Box::new(BitPayWebhooks),
        ServerKind::Btcpay => Box::new(BtcpayWebhooks {
            secret: stored_btcpay(ctx, WEBHOOK_SECRET)?,
        }),
    })
}

/// Where connecting to BTCPay keeps what it learned: the store's token table, under this
/// environment name (BitPay's are `test` and `production`).
pub const BTCPAY: &str = "btcpay";
/// The API key (label: the store id).
pub const API_KEY: &str = "api-key";
/// The webhook's secret (label: the webhook's id).
pub const WEBHOOK_SECRET: &str = "webhook";

/// A secret connecting stored (`API_KEY`, `WEBHOOK_SECRET`).
pub fn stored_btcpay(ctx: &Context, what: &str) -> Result<Option<Secret>> {
    Ok(ctx
        .store
        .tokens(BTCPAY)?
        .into_iter()
        .find(|t| t.facade == what)
        .map(|t| t.token))
}

/// Not connected to the payment server yet: the admin must connect.
#[derive(Debug, thiserror::Error)]
#[error("not connected to {0}: run `splynx-bitpay pair --btcpay` with the store's API key on stdin, or connect on the add-on's admin page (Config → Integrations → Bitpay)")]
pub struct NotConnected(pub &'static str);

impl Failing for NotConnected {
    fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

/// BTCPay: the store's key (the file's, else the one connecting stored); our order ids are
/// signed with this installation's key, as for BitPay.
fn open_btcpay(ctx: &Context, key: Key) -> Result<Gateway> {
    let settings = &ctx.config.btcpay;
    let api_key = match &settings.api_key {
        Some(api_key) => api_key.clone(),
        None => stored_btcpay(ctx, API_KEY)?.ok_or(NotConnected("BTCPay Server"))?,
    };
    let client = BtcpayClient::configured(&ctx.config, api_key);
    let identity = identity(ctx, key)?;
    Ok(Gateway {
        server: Box::new(BtcpayServer::new(
            client,
            stored_btcpay(ctx, WEBHOOK_SECRET)?,
        )),
        order_key: OrderKey::of(&identity),
    })
}

fn open_bitpay(ctx: &Context, need: Need, key: Key) -> Result<Gateway> {
    let invoice_token = match need {
        Need::Invoices => {
            let client = ctx.bitpay(ctx.existing_identity()?);
            let token = pairing::invoice_token(ctx, &client)?;
            Some(Credential {
                label: token.facade,
                secret: token.token,
            })
        }
        Need::Reading => None,
    };
    let identity = identity(ctx, key)?;
    let mut tokens: Vec<Credential> = ctx
        .store
        .tokens(ctx.environment())?
        .into_iter()
        .filter(|t| t.approved)
        .map(|t| Credential {
            label: t.facade,
            secret: t.token,
        })
        .collect();
    tokens.sort_by_key(|t| t.label != "merchant");
    let sin = identity.sin();
    let order_key = OrderKey::of(&identity);
    let server = BitPayServer::new(
        ctx.bitpay(Some(identity)),
        tokens,
        invoice_token,
        sin,
        ctx.config.bitpay.notification_url.clone(),
    );
    Ok(Gateway {
        server: Box::new(server),
        order_key,
    })
}

fn identity(ctx: &Context, key: Key) -> Result<Identity> {
    match (ctx.existing_identity()?, key) {
        (Some(identity), _) => Ok(identity),
        (None, Key::MustExist) => {
            Err(KeyMissing(ctx.config.key_path().display().to_string()).into())
        }
        (None, Key::CreateIfMissing) => ctx.identity(),
    }
}
