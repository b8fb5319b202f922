//! What `create-invoice` and `direct-pay` share: the document the arguments name,
//! `--expect-total`, and the two results (what would be charged; the BitPay invoice).

use anyhow::Result;

use crate::checkout::{self, Checkout, Document, Origin, Request};
use crate::cli::DocumentArgs;
use crate::config::{Config, ServerKind};
use crate::context::Context;
use crate::domain::InvoiceId;
use crate::exit::SUCCESS;
use crate::money::{self, format_amount};
use crate::splynx::model::Customer;
use crate::view::{Created, FeeView, Payable};

/// A refusal of what the page or the shell asked (65).
pub(super) fn bad_input(message: impl Into<String>) -> anyhow::Error {
    crate::exit::Problem::BadInput(message.into()).into()
}

pub(super) fn parse_id(text: &str, what: &str) -> Result<i64> {
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

/// The document named by `--invoice`, `--invoice-number`, `--proforma` or
/// `--proforma-number`, if one is.
pub(super) fn document_request(args: &DocumentArgs) -> Result<Option<Request>> {
    Ok(Some(if let Some(id) = &args.invoice {
        Request::Invoice(parse_id(id, "invoice")?)
    } else if let Some(number) = &args.invoice_number {
        Request::InvoiceNumber(parse_number(number, "invoice")?)
    } else if let Some(id) = &args.proforma {
        Request::Proforma(parse_id(id, "proforma invoice")?)
    } else if let Some(number) = &args.proforma_number {
        Request::ProformaNumber(parse_number(number, "proforma invoice")?)
    } else {
        return Ok(None);
    }))
}

/// `--expect-total`: the total the page showed.
fn expected_total(args: &DocumentArgs, settings: &Config) -> Result<Option<rust_decimal::Decimal>> {
    let Some(text) = &args.expect_total else {
        return Ok(None);
    };
    money::parse_amount(text.trim(), &settings.bitpay.currency)
        .map(Some)
        .map_err(|e| bad_input(format!("--expect-total: {e}")))
}

/// Creates or hands out the BitPay invoice (for exactly `--expect-total`, when given) and
/// prints it.
pub(super) fn pay(
    ctx: &Context,
    args: &DocumentArgs,
    (settings, customer, document): (&Config, &Customer, &Document),
    origin: Origin,
) -> Result<u8> {
    let expected = expected_total(args, settings)?;
    let done = checkout::checkout(ctx, settings, customer, document, origin, expected)?;
    show_created(ctx, &done);
    Ok(SUCCESS)
}

/// What the customer would pay (`--check`): no customer data, only the document and the
/// amounts.
pub(super) fn show_payable(ctx: &Context, settings: &Config, document: &Document) {
    let currency = settings.bitpay.currency.clone();
    ctx.output.show(&Payable {
        document: document.kind.as_str(),
        document_id: document.id,
        number: document.number.clone(),
        description: document.description.clone(),
        price: format_amount(document.price, &currency),
        amount: format_amount(document.charge.amount, &currency),
        fee: document.charge.fee.map(|f| FeeView {
            label: document.fee_label.clone(),
            percent: f.percent.normalize().to_string(),
            fee: format_amount(f.fee, &currency),
            vat_percent: f.vat_percent.normalize().to_string(),
            vat: format_amount(f.vat, &currency),
        }),
        currency,
    });
}

/// The BitPay invoice to send the customer to.
fn show_created(ctx: &Context, done: &Checkout) {
    ctx.output.show(&Created {
        invoice_id: InvoiceId::new(done.invoice.id.clone()),
        server: ctx.config.server.as_str(),
        bitpay_invoice_id: (ctx.config.server == ServerKind::BitPay)
            .then(|| InvoiceId::new(done.invoice.id.clone())),
        url: done.invoice.url.clone(),
        price: format_amount(done.record.order.price, &done.record.order.currency),
        currency: done.record.order.currency.clone(),
        status: done.invoice.words.status.clone(),
        reused: done.reused,
    });
}
