//! `resolve ID`: the admin closes a record held for them (review, reversed after credit,
//! duplicates) after acting in Splynx. Nothing in Splynx is changed here.

use anyhow::Result;
use serde::Serialize;

use crate::cli::ResolveArgs;
use crate::clock;
use crate::context::Context;
use crate::exit::{Problem, SUCCESS};
use crate::output::View;

pub fn run(args: ResolveArgs, ctx: &Context) -> Result<u8> {
    // From the admin page, like a pairing change: an administrator with a pairing role.
    let caller = crate::admin::require_pairing_role(ctx, &args.admin)?;
    let id = args.id.trim();
    let record = ctx
        .store
        .invoice_by_bitpay_id(id)?
        .ok_or_else(|| Problem::BadInput(format!("no BitPay invoice {id:?} is known here")))?;
    if !record.settlement.needs_admin() {
        return Err(Problem::BadInput(format!(
            "BitPay invoice {id} is {} ({}), not held for the admin; nothing to resolve",
            record.settlement.as_str(),
            record.settlement.describe()
        ))
        .into());
    }
    let now = clock::now_ms();
    let note = format!(
        "resolved by {}{}; was {}: {}",
        crate::admin::who(caller.as_ref()),
        args.note
            .as_deref()
            .map(|n| format!(" ({})", n.trim().chars().take(500).collect::<String>()))
            .unwrap_or_default(),
        record.settlement.describe(),
        record.note.as_deref().unwrap_or("")
    );
    let tx = ctx.store.begin()?;
    let resolved = ctx.store.resolve(record.id, &note, now)?;
    ctx.store.journal(Some(id), "decision", &note, None, now)?;
    tx.commit().map_err(crate::store::StoreError::from)?;
    if !resolved {
        return Err(Problem::Temporary(format!(
            "BitPay invoice {id} changed while resolving; run the command again"
        ))
        .into());
    }
    ctx.store.make_durable()?;
    ctx.output.show(&Resolved {
        bitpay_invoice_id: id.to_string(),
        result: "resolved",
        was: record.settlement.as_str(),
        was_text: record.settlement.describe(),
    });
    Ok(SUCCESS)
}

/// `resolve`'s result.
#[derive(Debug, Serialize)]
struct Resolved {
    bitpay_invoice_id: String,
    result: &'static str,
    was: &'static str,
    #[serde(skip)]
    was_text: &'static str,
}

impl View for Resolved {
    fn human(&self) -> String {
        format!(
            "{}: resolved (was {})",
            self.bitpay_invoice_id, self.was_text
        )
    }
}
