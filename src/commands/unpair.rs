//! `unpair`: forget the tokens of the configured environment.

use anyhow::Result;
use serde_json::json;

use crate::context::Context;
use crate::exit::SUCCESS;

pub fn run(ctx: &Context) -> Result<u8> {
    let env = ctx.environment();
    let removed = ctx.store.delete_tokens(env)?;
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
