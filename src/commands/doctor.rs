//! `doctor`: the checks live in the `doctor` module; this is the command's entry, which
//! turns its verdict into the exit code.

use std::path::Path;

use anyhow::Result;

use crate::doctor::{self, Verdict};
use crate::exit::{Failing, SUCCESS};
use crate::output::Output;

pub use crate::doctor::CHECKS;

pub fn run(config_path: &Path, output: Output) -> Result<u8> {
    Ok(match doctor::run(config_path, output)? {
        Verdict::RanAs(code) => code,
        Verdict::Checked(Ok(())) => SUCCESS,
        Verdict::Checked(Err(failed)) => failed.exit_code().code(),
    })
}
