//! The smallest Tina program: two isolates playing ping-pong on one shard, stepped by hand.
//!
//! `cargo run -p tina-examples --bin ping_pong [rounds]`
//!
//! It builds a system from a spec, boots one shard on the test platform (no threads, no OS
//! I/O) and calls `step` in a loop, printing what the isolates log.

use tina_core::testing::{TestPlatform, region_for};
use tina_core::*;
use tina_examples::ping_pong::{Pinger, PingerArgs, Ponger};

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
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
            eprintln!("boot failed: {e}");
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
