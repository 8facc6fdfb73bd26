//! B8 — the simulator's own speed (no peers: absolute numbers).
//!
//! Two scenarios of `tina_examples::sim`, run in this process (release build, one thread),
//! interleaved over rounds with seeds 1, 2, 3, …:
//!
//! - **idle-heavy** — `idle`: 3 shards, one heartbeat per simulated second per shard, crossing
//!   shards, for one simulated hour (a simulated minute in quick mode). Between beats the
//!   simulator jumps straight to the next timer deadline.
//! - **busy** — `echo`: 3 shards serving 12 simulated TCP clients that verify every byte, the
//!   default 5,000 ticks plus the liveness phase, no faults.
//!
//! Reported: simulated dispatches per wall second and simulated time ÷ wall time (1 tick =
//! 1 ms). Every run must pass its own checkers, else the benchmark fails.

use crate::harness::{Common, Row, Spread, Summary, verdict};
use std::time::Instant;
use tina_sim::SimConfig;
use tina_sim::cli::ScenarioOptions;

struct Case {
    name: &'static str,
    scenario: &'static str,
    ticks: fn(bool) -> u64,
    /// Simulated ÷ wall target.
    target: u64,
}

const CASES: [Case; 2] = [
    Case {
        name: "idle-heavy (`idle`)",
        scenario: "idle",
        ticks: |quick| if quick { 60_000 } else { 3_600_000 },
        target: 1_000,
    },
    Case {
        name: "busy (`echo`, 12 clients)",
        scenario: "echo",
        ticks: |_| 5_000,
        target: 10,
    },
];

/// One run: (dispatches per wall second, simulated ÷ wall).
fn run_once(case: &Case, seed: u64, quick: bool) -> (u64, u64) {
    let entry = tina_examples::sim::scenarios()
        .into_iter()
        .find(|e| e.name == case.scenario)
        .expect("scenario exists");
    let mut config = SimConfig::new(seed);
    config.ticks = (case.ticks)(quick);
    let start = Instant::now();
    let report = (entry.run)(&config, &ScenarioOptions::default());
    let wall_ns = (start.elapsed().as_nanos() as u64).max(1);
    assert!(
        report.outcome.is_pass(),
        "B8: scenario {} seed {seed} failed: {}",
        case.scenario,
        report.outcome
    );
    let dispatches_per_s =
        (u128::from(report.dispatches) * 1_000_000_000 / u128::from(wall_ns)) as u64;
    let simulated_ns = u128::from(report.ticks) * u128::from(report.tick_ns);
    (
        dispatches_per_s,
        (simulated_ns / u128::from(wall_ns)) as u64,
    )
}

/// Runs B8 and adds its rows to the summary.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    println!("## B8 — simulator\n");
    println!(
        "Scenarios interleaved over {} rounds (seeds 1–{}), release build, one thread, \
         1 tick = 1 ms; every run passes its checkers.\n",
        common.rounds, common.rounds
    );
    let mut dispatches = vec![Vec::new(); CASES.len()];
    let mut compression = vec![Vec::new(); CASES.len()];
    for round in 0..common.rounds {
        for (i, case) in CASES.iter().enumerate() {
            let (d, c) = run_once(case, round as u64 + 1, common.quick);
            dispatches[i].push(d);
            compression[i].push(c);
        }
    }
    println!(
        "| scenario | simulated ticks | dispatches/s median (min–max) | simulated ÷ wall median (min–max) | target |"
    );
    println!("|---|---:|---:|---:|---|");
    for (i, case) in CASES.iter().enumerate() {
        let d = Spread::of(&dispatches[i]);
        let c = Spread::of(&compression[i]);
        let target = verdict(&format!("≥ {}×", case.target), c.median >= case.target);
        println!(
            "| {} | {} | {} ({}–{}) | {}× ({}×–{}×) | {target} |",
            case.name,
            (case.ticks)(common.quick),
            d.median,
            d.min,
            d.max,
            c.median,
            c.min,
            c.max
        );
        summary.add(Row {
            id: format!("B8 {}", case.scenario),
            metric: "simulated time ÷ wall time".into(),
            tina: format!("{}×", c.median),
            peer: "— (absolute)".into(),
            ratio: "—".into(),
            target,
        });
    }
    println!();
}
