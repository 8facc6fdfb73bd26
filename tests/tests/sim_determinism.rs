//! Same seed ⇒ same trace hash, for every built-in scenario, over 64 seeds run twice each
//! with swarm faults; different seeds ⇒ different hashes. Runs in-process (in the build
//! profile of the test: debug under `cargo test`, release under `cargo test --release`;
//! `sim_release.rs` compares the two).

use std::collections::BTreeSet;
use tina_sim::cli::{ScenarioEntry, ScenarioOptions};
use tina_sim::{FaultMode, SimConfig};

/// Ticks of the faulty phase per scenario, short enough for a debug build.
pub fn test_ticks(name: &str) -> u64 {
    match name {
        "echo" => 250,
        // Movers restarted by crashes start sending again, 66 KiB payloads checked byte by
        // byte in a debug build.
        "bulk" => 300,
        _ => 1_500,
    }
}

fn entry(name: &str) -> ScenarioEntry {
    tina_examples::sim::scenarios()
        .into_iter()
        .find(|e| e.name == name)
        .expect("scenario exists")
}

fn same_seed_same_hash(name: &str) {
    same_seed_same_hash_over(name, 64);
}

fn same_seed_same_hash_over(name: &str, seeds: u64) {
    let e = entry(name);
    let options = ScenarioOptions::default();
    let mut hashes = BTreeSet::new();
    for seed in 0..seeds {
        let mut config = SimConfig::new(seed);
        config.faults = FaultMode::Swarm;
        config.ticks = test_ticks(name);
        let a = (e.run)(&config, &options);
        let b = (e.run)(&config, &options);
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "{name} seed {seed}: two runs diverged"
        );
        assert_eq!(a.events, b.events);
        assert!(a.outcome.is_pass(), "{name} seed {seed}: {}", a.outcome);
        hashes.insert(a.trace_hash);
    }
    assert_eq!(
        hashes.len() as u64,
        seeds,
        "{name}: different seeds must give different hashes"
    );
}

#[test]
fn sim_echo_same_seed_same_hash_over_64_seeds() {
    same_seed_same_hash("echo");
}

#[test]
fn sim_bank_same_seed_same_hash_over_64_seeds() {
    same_seed_same_hash("bank");
}

#[test]
fn sim_dispatcher_same_seed_same_hash_over_64_seeds() {
    same_seed_same_hash("dispatcher");
}

#[test]
fn sim_bulk_same_seed_same_hash_over_8_seeds() {
    // 8 seeds: every payload is filled and checked byte by byte, slow in a debug build.
    same_seed_same_hash_over("bulk", 8);
}
