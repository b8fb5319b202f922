//! `unpair`: forget the tokens of the configured environment, or disconnect from BTCPay
//! Server (`connect::disconnect_btcpay`).

use anyhow::Result;
use serde::Serialize;

use crate::admin;
use crate::cli::UnpairArgs;
use crate::clock;
use crate::config::ServerKind;
use crate::connect::{disconnect_btcpay, Disconnected};
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::output::View;

pub fn run(args: UnpairArgs, ctx: &Context) -> Result<u8> {
    if ctx.config.server == ServerKind::Btcpay {
        let done = disconnect_btcpay(ctx, &args.admin)?;
        ctx.output.show(&done);
        return Ok(SUCCESS);
    }
    let caller = admin::require_pairing_role(ctx, &args.admin)?;
    let env = ctx.environment();
    let removed = ctx.store.delete_tokens(env)?;
    if removed > 0 {
        ctx.store.journal(
            None,
            "pairing",
            &format!(
                "unpaired: forgot {removed} {env} token(s), by {}",
                admin::who(caller.as_ref())
            ),
            None,
            clock::now_ms(),
        )?;
    }
    ctx.store.make_durable()?;
    ctx.output.show(&Unpaired {
        environment: env.to_string(),
        tokens_removed: removed,
        dashboard: ctx.dashboard_tokens_url(),
    });
    Ok(SUCCESS)
}

/// `unpair`'s result.
#[derive(Debug, Serialize)]
struct Unpaired {
    environment: String,
    tokens_removed: usize,
    /// Where the tokens are revoked at BitPay.
    #[serde(skip)]
    dashboard: String,
}

impl View for Unpaired {
    fn human(&self) -> String {
        let env = &self.environment;
        match self.tokens_removed {
            0 => format!("Not paired in the {env} environment; nothing to forget."),
            removed => format!(
                "Forgot {removed} BitPay token(s) of the {env} environment. Revoke them in the BitPay dashboard too: {}",
                self.dashboard
            ),
        }
    }
}

impl View for Disconnected {
    fn human(&self) -> String {
        let webhook = match (&self.webhook_problem, self.webhook_deleted) {
            (_, true) => "our webhook was deleted at BTCPay".to_string(),
            (Some(problem), false) => {
                format!("our webhook could not be deleted ({problem}): delete it in BTCPay (Store → Settings → Webhooks)")
            }
            (None, false) => "there was no webhook of ours to delete".to_string(),
        };
        let key = if self.key_revoked {
            "the API key was revoked at BTCPay"
        } else {
            "revoke the API key in BTCPay too (Account → API Keys)"
        };
        format!(
            "Disconnected from BTCPay Server: forgot {} secret(s); {webhook}; {key}.",
            self.secrets_forgotten
        )
    }
}
