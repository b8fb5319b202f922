//! `unpair`: forget the tokens of the configured environment.

use anyhow::Result;
use serde_json::json;

use crate::admin;
use crate::cli::UnpairArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::SUCCESS;

pub fn run(args: UnpairArgs, ctx: &Context) -> Result<u8> {
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
    let human = if removed == 0 {
        format!("Not paired in the {env} environment; nothing to forget.")
    } else {
        format!("Forgot {removed} BitPay token(s) of the {env} environment. Revoke them in the BitPay dashboard too: {}", ctx.dashboard_tokens_url())
    };
    ctx.output.emit(
        &human,
        &json!({"environment": env, "tokens_removed": removed}),
    );
    Ok(SUCCESS)
}
