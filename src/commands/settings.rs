//! `settings`: what the add-on's pages show and check against (currency and its decimals,
//! refill bounds, URLs), so PHP never reads the config file itself. No secrets.

use anyhow::Result;
use serde_json::json;

use crate::context::Context;
use crate::exit::SUCCESS;
use crate::money::{currency_decimals, format_amount};

pub fn run(ctx: &Context) -> Result<u8> {
    let config = &ctx.config;
    let currency = &config.bitpay.currency;
    let (min, max) = (
        format_amount(config.refill.min, currency),
        format_amount(config.refill.max, currency),
    );
    let decimals = currency_decimals(currency);
    ctx.output.emit(
        &format!(
            "Environment:   {}\nSplynx URL:    {}\nCurrency:      {currency} ({decimals} decimals)\nRefill bounds: {min} to {max} {currency}\nConfig file:   {}",
            ctx.environment(),
            config.splynx.url,
            config.path.display()
        ),
        &json!({
            "environment": ctx.environment(),
            "splynx_url": config.splynx.url,
            "currency": currency,
            "currency_decimals": decimals,
            "refill": {"min": min, "max": max},
            "config_path": config.path.display().to_string(),
        }),
    );
    Ok(SUCCESS)
}
