//! B4 — not built yet.

use crate::harness::{Common, Summary};
use std::process::ExitCode;

/// Runs B4 and adds its rows to the summary.
pub(crate) fn run(_common: &Common, _summary: &mut Summary) {
    println!("## B4 — not built yet\n");
}

/// The child-process side of B4.
pub(crate) fn child(_args: &[String]) -> ExitCode {
    ExitCode::FAILURE
}
