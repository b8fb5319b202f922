//! `direct-pay`: a direct pay link from an e-mail (`/bitpay/direct-pay-invoice?item_id=`):
//! the document's own customer, when their partner grants access to unauthorized
//! customers; the checkout itself is `checkout`.

use anyhow::Result;

use super::pay::{document_request, pay, show_payable};
use crate::checkout::{self, Origin};
use crate::cli::DirectPayArgs;
use crate::context::Context;
use crate::exit::SUCCESS;

pub fn run(args: DirectPayArgs, ctx: &Context) -> Result<u8> {
    let request = document_request(&args.document)?.expect("clap requires one document");
    let (customer, settings, document) = checkout::direct(ctx, &request)?;
    if args.document.check {
        show_payable(ctx, settings, &document);
        return Ok(SUCCESS);
    }
    pay(
        ctx,
        &args.document,
        (settings, &customer, &document),
        Origin::DirectLink,
    )
}
