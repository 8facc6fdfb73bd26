//! `tina-bench perf <workload>`: one round of Tina's own rows (no peers), printed one number
//! per line, for comparing two builds of Tina. `bench/perf-compare.sh` runs the `perf`
//! workloads of two builds interleaved round by round and computes per-round ratios.
//!
//! ```text
//! tina-bench perf pingpong [--messages N]   # B2 ping-pong once: no warm-up, no pinning (callgrind)
//! tina-bench perf pingpong-named [--messages N]
//!                                           # the same, each send addressed by name
//! tina-bench perf ring [--messages N]       # B1: tina batched and per-message, capacities 16, 1024
//! tina-bench perf tcp [--conns C] [--size B] [--warmup S] [--seconds S]
//!                                           # B3 closed loop: tina io_uring, then tina epoll
//! ```
//!
//! Every result is one line `metric <name> <value> <unit> <gate|info>` on stdout (integers;
//! nothing else on stdout starts with `metric`). `gate` marks the metrics a comparison holds
//! to its limit (costs: lower is better); `info` ones are reported only.

use std::process::ExitCode;
use std::time::Duration;

use crate::{intra, named, ring, tcp};

const USAGE: &str = "usage: tina-bench perf pingpong [--messages N]\n       \
                     tina-bench perf pingpong-named [--messages N]\n       \
                     tina-bench perf ring [--messages N]\n       \
                     tina-bench perf tcp [--conns C] [--size B] [--warmup S] [--seconds S]";

/// The options of every `perf` workload (each reads the ones it names).
struct Options {
    messages: Option<u64>,
    conns: usize,
    size: usize,
    warmup: Duration,
    measure: Duration,
}

/// Parses `args` (after the workload's name); `None` after printing what was wrong.
fn parse(args: &[String]) -> Option<Options> {
    let mut o = Options {
        messages: None,
        conns: 64,
        size: 1024,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(5),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next();
        let ok = match arg.as_str() {
            "--messages" => value
                .and_then(|v| v.parse().ok())
                .map(|v| o.messages = Some(v)),
            "--conns" => value.and_then(|v| v.parse().ok()).map(|v| o.conns = v),
            "--size" => value.and_then(|v| v.parse().ok()).map(|v| o.size = v),
            "--warmup" => value.and_then(|v| tcp::seconds(v)).map(|v| o.warmup = v),
            "--seconds" => value.and_then(|v| tcp::seconds(v)).map(|v| o.measure = v),
            _ => None,
        };
        if ok.is_none() {
            eprintln!("bad argument `{arg}`\n{USAGE}");
            return None;
        }
    }
    if o.messages == Some(0) || o.conns == 0 || o.size == 0 || o.measure.is_zero() {
        eprintln!("--messages, --conns, --size and --seconds must be positive\n{USAGE}");
        return None;
    }
    Some(o)
}

/// One result line.
fn metric(name: &str, value: u64, unit: &str, kind: &str) {
    println!("metric {name} {value} {unit} {kind}");
}

/// `tina-bench perf <workload> [options]`.
pub(crate) fn command(args: &[String]) -> ExitCode {
    let Some((workload, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    if matches!(workload.as_str(), "-h" | "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let Some(o) = parse(rest) else {
        return ExitCode::FAILURE;
    };
    match workload.as_str() {
        "pingpong" => {
            let messages = o.messages.unwrap_or(100_000);
            let ns = intra::tina_ping_pong(messages);
            metric("B2.ping-pong", ns * 1000 / messages, "ps/msg", "info");
        }
        "pingpong-named" => {
            let messages = o.messages.unwrap_or(100_000);
            let ns = named::tina_ping_pong_named(messages);
            metric("B2.ping-pong-named", ns * 1000 / messages, "ps/msg", "info");
        }
        "ring" => {
            let messages = o.messages.unwrap_or(1_000_000);
            for (capacity, key, ps) in ring::tina_round(messages) {
                metric(&format!("B1.cap{capacity}.{key}"), ps, "ps/msg", "gate");
            }
        }
        "tcp" => {
            for (system, cpu, rps, client) in tcp::tina_round(o.conns, o.size, o.warmup, o.measure)
            {
                let name = format!("B3.{}conns.{system}", o.conns);
                metric(&format!("{name}.cpu"), cpu, "ns/req", "gate");
                metric(&format!("{name}.rps"), rps, "req/s", "info");
                metric(&format!("{name}.client"), client, "per-mille", "info");
            }
        }
        _ => {
            eprintln!("unknown perf workload `{workload}`\n{USAGE}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
