//! Tina's benchmark suite, side by side with its peers (see `BENCHMARKS.md` at the workspace
//! root for the results and the protocol).
//!
//! ```text
//! cargo run --release -p tina-bench -- all            # every benchmark, full length
//! cargo run --release -p tina-bench -- ring           # B1: cross-core ring
//! cargo run --release -p tina-bench -- intra          # B2: send + dispatch within a shard
//! cargo run --release -p tina-bench -- memory         # B6: memory per idle isolate
//! cargo run --release -p tina-bench -- all --quick    # CI: checks the harness, not the speed
//! ```
//!
//! Options: `--messages N` (per timed run) and `--rounds R` (interleaved rounds, at least 5 for
//! a result worth recording).

mod harness;
mod intra;
mod memory;
mod ring;

use std::process::ExitCode;

const USAGE: &str =
    "usage: tina-bench [all|ring|intra|memory] [--quick] [--messages N] [--rounds R]";

fn main() -> ExitCode {
    let mut command = "all".to_string();
    let mut quick = false;
    let mut messages = None;
    let mut rounds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--messages" => messages = args.next().and_then(|v| v.parse().ok()),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "all" | "ring" | "intra" | "memory" => command = arg,
            "b6-child" => {
                let contender = args.next().unwrap_or_default();
                let n = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                memory::child(&contender, n);
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("unknown argument `{arg}`\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    if matches!(messages, Some(0)) || matches!(rounds, Some(0)) {
        eprintln!("--messages and --rounds must be positive numbers\n{USAGE}");
        return ExitCode::FAILURE;
    }
    let options = ring::Options {
        messages: messages.unwrap_or(if quick { 20_000 } else { 1_000_000 }),
        rounds: rounds.unwrap_or(if quick { 2 } else { 7 }),
    };
    let intra = intra::Options {
        messages: messages.unwrap_or(if quick { 20_000 } else { 2_000_000 }),
        rounds: rounds.unwrap_or(if quick { 2 } else { 7 }),
    };
    let mut summary = harness::Summary::default();
    let all = command == "all";
    if all || command == "ring" {
        ring::run(&options, &mut summary);
    }
    if all || command == "intra" {
        intra::run(&intra, &mut summary);
    }
    if all || command == "memory" {
        memory::run(quick, intra.rounds.max(3), &mut summary);
    }
    summary.print();
    ExitCode::SUCCESS
}
