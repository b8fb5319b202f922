//! `metrics`: the add-on's state in the Prometheus text format, from the state store.

use anyhow::Result;

use crate::context::Context;
use crate::exit::SUCCESS;

pub fn run(ctx: &Context) -> Result<u8> {
    let snapshot = crate::metrics::snapshot(ctx)?;
    ctx.output.text(&crate::metrics::render(&snapshot));
    Ok(SUCCESS)
}
