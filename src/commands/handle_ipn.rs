//! `handle-ipn`: one webhook of the payment server on stdin. The body is only a trigger:
//! the invoice is re-fetched and settled from what the server says now
//! (`settlement::webhook`).

use std::io::Read;

use anyhow::{Context as _, Result};

use crate::bitpay::model::WEBHOOK_MAX_BYTES;
use crate::cli::HandleIpnArgs;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::server::WebhookHeaders;
use crate::settlement::webhook::{answer, WebhookAnswer};
use crate::view::{AnsweredView, SettledView};

pub fn run(args: HandleIpnArgs, ctx: &Context, stdin: &mut dyn Read) -> Result<u8> {
    let mut body = Vec::new();
    stdin
        .take(WEBHOOK_MAX_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .context("reading the webhook body from stdin")?;
    let headers = WebhookHeaders {
        x_signature: args.signature,
        btcpay_sig: args.btcpay_sig,
    };
    match answer(ctx, &body, &headers)? {
        WebhookAnswer::Ignored { invoice, why } => ctx.output.show(&AnsweredView {
            human: match &invoice {
                Some(id) => format!("{id}: ignored ({why})"),
                None => format!("ignored: {why}"),
            },
            bitpay_invoice_id: invoice,
            result: "ignored",
            settlement: None,
        }),
        WebhookAnswer::AlreadyChecked {
            invoice,
            settlement,
            answer,
        } => ctx.output.show(&AnsweredView {
            human: format!("{invoice}: {answer} (duplicate webhook; not fetched again)"),
            bitpay_invoice_id: Some(invoice),
            result: "already checked",
            settlement: Some(settlement.as_str()),
        }),
        WebhookAnswer::Settled { invoice, outcome } => {
            ctx.output.show(&SettledView::new(&invoice, &outcome))
        }
        WebhookAnswer::Refund {
            invoice,
            refund,
            followed,
        } => ctx.output.show(&AnsweredView {
            human: format!("{invoice}: refund {refund} {followed}"),
            bitpay_invoice_id: Some(invoice),
            result: "refund",
            settlement: None,
        }),
    }
    Ok(SUCCESS)
}
