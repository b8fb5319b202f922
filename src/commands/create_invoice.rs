//! `create-invoice`: argument checks and output; the checkout itself is `checkout`.

use anyhow::Result;
use serde_json::json;

use crate::checkout::{self, bad_input, Request};
use crate::cli::CreateInvoiceArgs;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::money::{self, format_amount};

fn parse_id(text: &str, what: &str) -> Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(bad_input(format!("\"{text}\" is not a valid {what} id"))),
    }
}

fn parse_number(text: &str, what: &str) -> Result<String> {
    let number = text.trim();
    if number.is_empty() || number.len() > 64 || !number.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_input(format!(
            "\"{number}\" is not a valid {what} number"
        )));
    }
    Ok(number.to_string())
}

fn parse_request(args: &CreateInvoiceArgs, ctx: &Context) -> Result<Request> {
    if let Some(id) = &args.invoice {
        return Ok(Request::Invoice(parse_id(id, "invoice")?));
    }
    if let Some(number) = &args.invoice_number {
        return Ok(Request::InvoiceNumber(parse_number(number, "invoice")?));
    }
    if let Some(id) = &args.proforma {
        return Ok(Request::Proforma(parse_id(id, "proforma invoice")?));
    }
    if let Some(number) = &args.proforma_number {
        return Ok(Request::ProformaNumber(parse_number(
            number,
            "proforma invoice",
        )?));
    }
    let text = args.refill.as_deref().unwrap_or_default();
    let currency = &ctx.config.bitpay.currency;
    let amount = money::parse_amount(text.trim(), currency)
        .map_err(|e| bad_input(format!("Top-up amount: {e}")))?;
    let (min, max) = (ctx.config.refill.min, ctx.config.refill.max);
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
    let request = parse_request(&args, ctx)?;
    let currency = ctx.config.bitpay.currency.clone();
    let (customer, document) = checkout::check(ctx, &request, customer_id)?;
    if args.check {
        let price = format_amount(document.price, &currency);
        ctx.output.emit(
            &format!("{}: {price} {currency}", document.description),
            &json!({
                "document": document.kind.as_str(),
                "document_id": document.id,
                "number": document.number,
                "description": document.description,
                "price": price,
                "currency": currency,
            }),
        );
        return Ok(SUCCESS);
    }
    let done = checkout::checkout(ctx, &customer, &document)?;
    let price = format_amount(done.record.price, &done.record.currency);
    let url = done.invoice.url.clone();
    ctx.output.emit(
        &url,
        &json!({
            "bitpay_invoice_id": done.invoice.id,
            "url": url,
            "price": price,
            "currency": done.record.currency,
            "status": done.invoice.status,
            "reused": done.reused,
        }),
    );
    Ok(SUCCESS)
}
