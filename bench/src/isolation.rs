//! B7 — not built yet.

use crate::harness::{Common, Summary};
use std::process::ExitCode;

/// Runs B7 and adds its rows to the summary.
pub(crate) fn run(_common: &Common, _summary: &mut Summary) {
    println!("## B7 — not built yet\n");
}

/// The child-process side of B7.
pub(crate) fn child(_args: &[String]) -> ExitCode {
    ExitCode::FAILURE
}
