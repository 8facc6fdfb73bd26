//! Tina's benchmark suite, side by side with its peers (see `BENCHMARKS.md` at the workspace
//! root for the results and the protocol).
//!
//! ```text
//! cargo run --release -p tina-bench -- all            # every benchmark, full length
//! cargo run --release -p tina-bench -- ring           # B1: cross-core ring
//! cargo run --release -p tina-bench -- intra          # B2: send + dispatch within a shard
//! cargo run --release -p tina-bench -- tcp            # B3: TCP echo (own options: tcp --help)
//! cargo run --release -p tina-bench -- memory         # B6: memory per idle isolate
//! cargo run --release -p tina-bench -- overload       # B4: overload, RSS over time, drops
//! cargo run --release -p tina-bench -- idle           # B5: idle CPU and wake-up latency
//! cargo run --release -p tina-bench -- conns          # B6: memory per idle TCP connection
//! cargo run --release -p tina-bench -- isolation      # B7: latency isolation
//! cargo run --release -p tina-bench -- sim            # B8: simulator speed
//! cargo run --release -p tina-bench -- all --quick    # CI: checks the harness, not the speed
//! cargo run --release -p tina-bench -- perf ring      # one round of Tina's rows only (perf --help)
//! ```
//!
//! `perf` prints machine-readable lines for comparing two builds of Tina:
//! `bench/perf-compare.sh` builds two commits and runs their `perf` workloads interleaved.
//!
//! Options: `--messages N` (per timed run), `--rounds R` (interleaved rounds, at least 5 for
//! a result worth recording) and `--seconds S` (length of the timed window of the workloads
//! that run for a duration: B4, B5, B7).
//!
//! Benchmarks that measure a whole process (its RSS, its CPU) re-execute this binary as a child:
//! `tina-bench child <workload> <args…>` is that hidden entry point.

mod conns;
mod harness;
mod idle;
mod intra;
mod isolation;
mod memory;
mod named;
mod overload;
mod perf;
mod ring;
mod sim;
mod tcp;

use std::process::ExitCode;

const USAGE: &str = "usage: tina-bench [all|ring|intra|tcp|memory|overload|idle|conns|isolation|sim] \
                     [--quick] [--messages N] [--rounds R] [--seconds S]\n       \
                     tina-bench perf <pingpong|pingpong-named|ring|tcp> [options]   (perf --help)";

fn main() -> ExitCode {
    let mut command = "all".to_string();
    let mut quick = false;
    let mut messages = None;
    let mut rounds = None;
    let mut seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--messages" => messages = args.next().and_then(|v| v.parse().ok()),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "all" | "ring" | "intra" | "memory" | "overload" | "idle" | "conns" | "isolation"
            | "sim" => command = arg,
            "tcp" => {
                let rest: Vec<String> = args.collect();
                return tcp::command(quick, &rest);
            }
            "perf" => {
                let rest: Vec<String> = args.collect();
                return perf::command(&rest);
            }
            "child" => {
                let workload = args.next().unwrap_or_default();
                let rest: Vec<String> = args.collect();
                return match workload.as_str() {
                    "overload" => overload::child(&rest),
                    "idle" => idle::child(&rest),
                    "conns" => conns::child(&rest),
                    "isolation" => isolation::child(&rest),
                    "tcp" => tcp::child(&rest),
                    _ => {
                        eprintln!("unknown child workload `{workload}`");
                        ExitCode::FAILURE
                    }
                };
            }
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
    if matches!(messages, Some(0)) || matches!(rounds, Some(0)) || matches!(seconds, Some(0)) {
        eprintln!("--messages, --rounds and --seconds must be positive numbers\n{USAGE}");
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
    let common = harness::Common {
        quick,
        rounds: rounds.unwrap_or(if quick { 1 } else { 5 }),
        seconds,
        whole_suite: command == "all",
    };
    let mut summary = harness::Summary::default();
    let all = command == "all";
    let affinity = harness::Affinity::current();
    type Workload<'a> = (&'a str, &'a dyn Fn(&mut harness::Summary));
    let workloads: [Workload<'_>; 9] = [
        ("ring", &|s| ring::run(&options, s)),
        ("intra", &|s| intra::run(&intra, s)),
        ("tcp", &|s| tcp::run(&common, s)),
        ("memory", &|s| memory::run(quick, intra.rounds.max(3), s)),
        ("conns", &|s| conns::run(&common, s)),
        ("overload", &|s| overload::run(&common, s)),
        ("idle", &|s| idle::run(&common, s)),
        ("isolation", &|s| isolation::run(&common, s)),
        ("sim", &|s| sim::run(&common, s)),
    ];
    for (name, run) in workloads {
        // (`tcp` alone has its own entry point, `tcp::command` above; `all` runs its bounded
        // variant here.)
        if all || command == name {
            run(&mut summary);
            // A workload may have pinned this thread: the next one starts unpinned.
            affinity.restore();
        }
    }
    summary.print();
    ExitCode::SUCCESS
}
