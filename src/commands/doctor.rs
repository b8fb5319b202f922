//! `doctor`: the checks live in the `doctor` module; this is the command's entry.

pub use crate::doctor::{run, CHECKS};
