//! `pair CODE` and `pair --request`: the pairing is `pairing::pair`; this renders it.

use anyhow::Result;

use crate::cli::PairArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::output::View;
use crate::pairing::{pair, Paired};

pub fn run(args: PairArgs, ctx: &Context) -> Result<u8> {
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
