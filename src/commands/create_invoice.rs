//! `create-invoice`: argument checks and output; the checkout itself is `checkout`.

use anyhow::Result;

use super::pay::{bad_input, document_request, parse_id, pay, show_payable};
use crate::checkout::{self, Origin, Request};
use crate::cli::CreateInvoiceArgs;
use crate::config::Config;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::money::{self, format_amount};

fn parse_request(args: &CreateInvoiceArgs, settings: &Config) -> Result<Request> {
    if let Some(request) = document_request(&args.document)? {
        return Ok(request);
    }
    let text = args.refill.as_deref().unwrap_or_default();
    let currency = &settings.bitpay.currency;
    let amount = money::parse_amount(text.trim(), currency)
        .map_err(|e| bad_input(format!("Top-up amount: {e}")))?;
    let (min, max) = (settings.refill.min, settings.refill.max);
    if amount < min || amount > max {
        return Err(bad_input(format!(
            "Top-up amount must be between {} and {} {currency}",
            format_amount(min, currency),
            format_amount(max, currency)
        )));
    }
    Ok(Request::Refill(amount))
}

pub fn run(args: CreateInvoiceArgs, ctx: &Context) -> Result<u8> {
    let customer_id = parse_id(&args.customer, "customer")?;
    // Amounts are checked against the customer's partner's currency and bounds.
    let (customer, settings) = checkout::customer(ctx, customer_id)?;
    let request = parse_request(&args, settings)?;
    let document = checkout::check(ctx, settings, &request, &customer)?;
    if args.document.check {
        show_payable(ctx, settings, &document);
        return Ok(SUCCESS);
    }
    pay(
        ctx,
        &args.document,
        (settings, &customer, &document),
        Origin::Portal,
    )
}
