//! `replay ID` / `replay --webhook N`: re-run one invoice's decision from a fresh fetch and
//! show it; `--apply` takes its steps through the same settlement as `handle-ipn`.

use anyhow::Result;

use crate::cli::ReplayArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::output::View;
use crate::replay::{self, Replayed};

pub fn run(args: ReplayArgs, ctx: &Context) -> Result<u8> {
    let (id, webhook) = match (args.id, args.webhook) {
        (Some(id), None) => (id.trim().to_string(), None),
        (None, Some(n)) => {
            let entry = ctx
                .store
                .journal_entry(n)?
                .filter(|e| e.kind == "webhook")
                .ok_or_else(|| {
                    Problem::BadInput(format!(
                        "journal entry {n} is not a webhook (`status` lists recent webhooks with their numbers)"
                    ))
                })?;
            let received = format!(
                "webhook {n}, received {}: {}",
                clock::datetime_of(entry.at),
                entry.summary
            );
            let id = entry.bitpay_id.ok_or_else(|| {
                Problem::BadInput(format!(
                    "{received}; it named no invoice of this add-on, so there is nothing to replay"
                ))
            })?;
            (id, Some(received))
        }
        _ => {
            return Err(
                Problem::BadInput("give an invoice id or --webhook N, not both".into()).into(),
            )
        }
    };
    if !crate::server::is_invoice_id(&id) {
        return Err(Problem::BadInput(format!(
            "{id:?} is not an invoice id (letters and digits, at most 64)"
        ))
        .into());
    }
    let replayed = replay::invoice(ctx, &id, args.apply, webhook)?;
    ctx.output.show(&replayed);
    Ok(SUCCESS)
}

impl View for Replayed {
    fn human(&self) -> String {
        let mut lines = vec![format!("Invoice {}", self.invoice_id)];
        if let Some(webhook) = &self.webhook {
            lines.push(format!("Replaying {webhook}"));
        }
        if let Some(says) = &self.server_says {
            lines.push(format!("The server says now: {says}"));
        }
        if let Some(before) = self.settlement_before {
            lines.push(format!("Recorded here:       {before}"));
        }
        lines.push(format!("Decision:            {}", self.decision));
        lines.push(if self.applied {
            "Steps taken:".into()
        } else {
            "Steps it would take:".into()
        });
        for (n, step) in self.steps.iter().enumerate() {
            lines.push(format!("  {}. {step}", n + 1));
        }
        lines.push(if self.applied {
            format!("Outcome: {}", self.outcome)
        } else {
            format!(
                "Outcome: would be {} (dry run: nothing was changed; --apply takes these steps)",
                self.outcome
            )
        });
        lines.join("\n")
    }
}
