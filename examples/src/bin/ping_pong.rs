//! The smallest Tina program: two isolates playing ping-pong on one shard, stepped by hand.
//!
//! `cargo run -p tina-examples --bin ping_pong [rounds]`
//!
//! It builds a system from a spec, boots one shard on the test platform (no threads, no OS
//! I/O) and calls `step` in a loop, printing what the isolates log.

use std::fmt;
use std::io::Write as _;

use tina_core::testing::{TestPlatform, region_for};
use tina_core::*;
use tina_examples::ping_pong::{Pinger, PingerArgs, Ponger};

const SYNOPSIS: &str = "\
usage: ping_pong [ROUNDS]
       ping_pong --help";

/// Every line this program writes to stderr goes through here (write errors are ignored).
fn say(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "ping_pong: {args}");
}

/// A usage error: the reason and the synopsis on stderr, exit status 2.
fn usage_error(reason: &str) -> ! {
    say(format_args!("{reason}\n{SYNOPSIS}\n(--help for details)"));
    std::process::exit(2);
}

/// The rounds to play (`None`: help was asked for); an error says which argument is wrong.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<u64>, String> {
    let mut rounds = None;
    for a in args {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            _ if a.starts_with('-') => return Err(format!("unknown argument '{a}'")),
            _ if rounds.is_some() => return Err(format!("unexpected argument '{a}'")),
            _ => match a.parse::<u64>() {
                Ok(n) if n >= 1 => rounds = Some(n),
                _ => return Err(format!("ROUNDS {a}: expected a number of at least 1")),
            },
        }
    }
    Ok(Some(rounds.unwrap_or(10_000)))
}

fn main() {
    let rounds = match parse(std::env::args().skip(1)) {
        Ok(Some(rounds)) => rounds,
        Ok(None) => {
            println!(
                "{SYNOPSIS}\n\n  \
                 ROUNDS  round trips to play (default 10000)\n\n\
                 Exit status: 0 when the game is over, 1 if the shard failed to boot, 2 for a \
                 usage error."
            );
            std::process::exit(0);
        }
        Err(reason) => usage_error(&reason),
    };
    let types = [
        TypeSpec::of::<Pinger>("pinger"),
        TypeSpec::of::<Ponger>("ponger"),
    ];
    let children = [ChildSpec::isolate::<Pinger>(
        &PingerArgs {
            rounds,
            log_every: (rounds / 5).max(1),
        },
        Restart::Transient,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(1),
    }];
    let spec = SystemSpec::new(&shards, &types);
    let mut memory = region_for(&spec, ShardId(0));
    let mut shard = match Shard::new(&spec, ShardId(0), memory.bytes(), TestPlatform::default()) {
        Ok(s) => s,
        Err(e) => {
            say(format_args!("boot failed: {e}"));
            std::process::exit(1);
        }
    };
    let start = std::time::Instant::now();
    let mut tick = 0u64;
    let mut dispatched = 0u64;
    while shard.handles::<Pinger>().next().is_some() {
        tick += 1;
        let report = shard.step(Instant::from_ticks(tick));
        dispatched += u64::from(report.dispatched);
        for (_, record) in shard.platform().log.records.drain(..) {
            println!(
                "[t{:>5} {}] {}",
                record.tick.ticks(),
                record.isolate,
                record.text()
            );
        }
    }
    let elapsed = start.elapsed();
    let c = shard.counters();
    println!(
        "{rounds} round trips in {tick} ticks: {dispatched} dispatches in {:.1} ms \
         ({:.0} ns per dispatch); crashes={} stale={}",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / dispatched.max(1) as f64,
        c.crashes,
        c.stale_deliveries,
    );
}
