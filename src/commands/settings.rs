//! `settings`: what the add-on's pages show and check against (currency and its decimals,
//! refill bounds, URLs), so PHP never reads the config file itself. No secrets. With
//! `--customer`, what that customer's partner's settings say.

use anyhow::Result;
use serde::Serialize;

use crate::checkout;
use crate::cli::SettingsArgs;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::fee::FeeSettings;
use crate::money::{currency_decimals, format_amount};
use crate::output::View;

/// `settings`' result.
#[derive(Debug, Serialize)]
struct Settings {
    environment: String,
    /// Who takes the payments, for people: "BitPay" or "BTCPay Server".
    server: &'static str,
    splynx_url: String,
    currency: String,
    currency_decimals: u32,
    refill: RefillBounds,
    config_path: String,
}

#[derive(Debug, Serialize)]
struct RefillBounds {
    min: String,
    max: String,
    /// Says plainly whether the amount entered includes the service fee.
    fee_note: String,
}

impl View for Settings {
    fn human(&self) -> String {
        let currency = &self.currency;
        format!(
            "Server:        {}\nEnvironment:   {}\nSplynx URL:    {}\nCurrency:      {currency} ({} decimals)\nRefill bounds: {} to {} {currency}\nRefill fee:    {}\nConfig file:   {}",
            self.server,
            self.environment,
            self.splynx_url,
            self.currency_decimals,
            self.refill.min,
            self.refill.max,
            self.refill.fee_note,
            self.config_path
        )
    }
}

/// The refill page's sentence about the fee.
fn refill_fee_note(fee: &FeeSettings) -> String {
    if fee.percent.is_zero() {
        return "No fee is added: the amount you enter is what you pay and what is added to your balance.".into();
    }
    let vat = if fee.vat_percent.is_zero() {
        String::new()
    } else {
        format!(" plus {} % VAT on the fee", fee.vat_percent.normalize())
    };
    format!(
        "The amount you enter does not include the fee: a service fee of {} %{vat} is added on top, and the amount you enter is what is added to your balance.",
        fee.percent.normalize()
    )
}

pub fn run(args: SettingsArgs, ctx: &Context) -> Result<u8> {
    let config = match args.customer {
        Some(customer) => checkout::customer(ctx, customer)?.1,
        None => &ctx.config,
    };
    // The pages show these before a checkout: a wrong value refuses here like checkout.
    config.ensure_valid()?;
    let currency = &config.bitpay.currency;
    ctx.output.show(&Settings {
        environment: ctx.environment().to_string(),
        server: ctx.config.server.name(),
        splynx_url: config.splynx.url.clone(),
        currency: currency.clone(),
        currency_decimals: currency_decimals(currency),
        refill: RefillBounds {
            min: format_amount(config.refill.min, currency),
            max: format_amount(config.refill.max, currency),
            fee_note: refill_fee_note(&config.fee),
        },
        config_path: config.path.display().to_string(),
    });
    Ok(SUCCESS)
}
