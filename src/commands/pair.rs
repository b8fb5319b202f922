//! `pair CODE`, `pair --request` and `pair --btcpay`: the pairing is `pairing::pair`,
//! connecting to BTCPay `connect::connect_btcpay`; this reads the key and renders them.

use std::io::Read;

use anyhow::{Context as _, Result};

use crate::cli::PairArgs;
use crate::clock;
use crate::connect::{authorize_url, connect_btcpay, consume_state, Authorize, Connected};
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::output::View;
use crate::pairing::{pair, Paired};

pub fn run(args: PairArgs, ctx: &Context) -> Result<u8> {
    if let Some(redirect) = &args.authorize_redirect {
        let authorize = authorize_url(ctx, &args.admin, redirect)?;
        ctx.output.show(&authorize);
        return Ok(SUCCESS);
    }
    if args.btcpay {
        // From the authorize page: the state it returned is used up first.
        let started_by = match &args.state {
            Some(state) => Some(consume_state(ctx, state)?),
            None => None,
        };
        let mut key = String::new();
        std::io::stdin()
            .take(1024)
            .read_to_string(&mut key)
            .context("reading the API key from stdin")?;
        let connected = connect_btcpay(ctx, &args.admin, &key, started_by)?;
        ctx.output.show(&connected);
        return Ok(SUCCESS);
    }
    let paired = pair(ctx, &args)?;
    ctx.output.show(&paired);
    Ok(SUCCESS)
}

impl View for Paired {
    fn human(&self) -> String {
        let (env, facade, sin) = (&self.environment, &self.facade, &self.sin);
        match &self.pending {
            None => format!(
                "Paired with BitPay ({env}, {}): facade {facade}, SIN {sin}",
                self.api_url
            ),
            Some(code) => format!(
                "Pairing code: {}\nApprove it at {} (expires {}),\nthen check with: splynx-bitpay status\nFacade {facade}, SIN {sin}",
                code.pairing_code,
                code.approve_url,
                code.pairing_expires_at
                    .map(clock::datetime_of)
                    .unwrap_or_else(|| "in 24 hours".into())
            ),
        }
    }
}

impl View for Connected {
    fn human(&self) -> String {
        format!(
            "Connected to {} {} (store {}); webhook {} sends to {}{}",
            self.server,
            self.url,
            self.store_id,
            self.webhook_id,
            self.webhook_url,
            if self.replaced > 0 {
                " (replaced our earlier one)"
            } else {
                ""
            }
        )
    }
}

impl View for Authorize {
    /// The address alone, for the page that redirects to it.
    fn human(&self) -> String {
        self.authorize_url.clone()
    }
}
