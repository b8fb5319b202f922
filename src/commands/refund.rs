//! `refund ID [--amount X] [--reason TEXT]`, `refund --cancel REFUND_ID` and `refund ID
//! --record`: the operation is `refund::request` / `cancel` / `record_elsewhere`; this
//! checks who asks and renders the refunds.

use anyhow::Result;

use crate::cli::RefundArgs;
use crate::context::Context;
use crate::exit::SUCCESS;
use crate::output::View;
use crate::refund::{self, RefundView};

pub fn run(args: RefundArgs, ctx: &Context) -> Result<u8> {
    // From the admin page: an administrator with a refund role; the terminal is trusted.
    let caller = crate::admin::require_refund_role(ctx, &args.admin)?;
    let who = crate::admin::who(caller.as_ref());
    if let (true, Some(id)) = (args.record, &args.id) {
        let recorded = refund::record_elsewhere(ctx, id.trim(), &who)?;
        ctx.output.show(&Recorded { refunds: recorded });
        return Ok(SUCCESS);
    }
    let view = match (&args.cancel, &args.id) {
        (Some(refund_id), _) => refund::cancel(ctx, refund_id.trim(), &who)?,
        (None, Some(id)) => refund::request(
            ctx,
            id.trim(),
            args.amount.as_deref(),
            args.reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty()),
            &who,
        )?,
        (None, None) => unreachable!("clap requires ID or --cancel"),
    };
    ctx.output.show(&view);
    Ok(SUCCESS)
}

impl View for RefundView {
    fn human(&self) -> String {
        let mut lines = vec![format!(
            "Refund {} of {} invoice {}: {} {}, {}",
            self.id, self.server, self.invoice_id, self.amount, self.currency, self.state_text
        )];
        if let Some(link) = &self.claim_link {
            lines.push(format!("The customer claims it at: {link}"));
        }
        if let Some(payment) = self.splynx_payment_id {
            lines.push(format!("Booked in Splynx as payment {payment}"));
        }
        lines.join("\n")
    }
}

/// What `--record` recorded.
#[derive(Debug, serde::Serialize)]
struct Recorded {
    refunds: Vec<RefundView>,
}

impl View for Recorded {
    fn human(&self) -> String {
        self.refunds
            .iter()
            .map(|r| format!("Recorded: {}", r.human()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
