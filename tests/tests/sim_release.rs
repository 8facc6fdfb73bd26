//! The simulator in a release build:
//!
//! 1. the same seed gives the same trace hash in the debug build (this test, in-process) and
//!    the release build (the `simulate` binary, built here with `cargo build --release`);
//! 2. `sweep` over 200 seeds of every scenario with `--faults swarm --strict-shutdown` passes
//!    (no envelope, timer, buffer or descriptor leaked at the final shutdown), and every fault
//!    kind a scenario can exercise is injected in at least 20% of the seeds (read from the
//!    coverage summary the sweep prints);
//! 3. the planted bug is found by a release sweep and its printed replay command reproduces
//!    the failure.
//!
//! The release binary goes to the usual target directory (`CARGO_TARGET_DIR` if set). Set
//! `TINA_SIM_RELEASE_BIN` to use an already built binary instead.

mod example_bins;

use std::path::PathBuf;
use std::process::Command;
use tina_sim::cli::ScenarioOptions;
use tina_sim::{FaultMode, SimConfig};

fn simulate(bin: &PathBuf, args: &str) -> (i32, String) {
    let out = Command::new(bin)
        .args(args.split_whitespace())
        .output()
        .expect("simulate runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn hash_of(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("trace_hash="))
        .expect("a trace_hash line")
}

#[test]
fn sim_release_build_matches_debug_and_sweeps_pass() {
    let bin = example_bins::simulate_release();
    let debug = cfg!(debug_assertions);

    // 1. Same hash in this build and in the release binary.
    for e in tina_examples::sim::scenarios() {
        for seed in [0u64, 1, 7, 42, 1_000_003] {
            let mut config = SimConfig::new(seed);
            config.faults = FaultMode::Swarm;
            config.ticks = 400;
            let here = (e.run)(&config, &ScenarioOptions::default());
            let (code, out) = simulate(
                &bin,
                &format!("run {} --seed {seed} --faults swarm --ticks 400", e.name),
            );
            assert_eq!(
                code,
                here.outcome.exit_code(),
                "{} seed {seed}:\n{out}",
                e.name
            );
            assert_eq!(
                hash_of(&out),
                here.trace_hash.to_string(),
                "{} seed {seed}: this build (debug={debug}) and release disagree",
                e.name
            );
        }
    }

    // 2. Sweeps of 200 seeds with swarm faults pass, with every applicable kind covered.
    for e in tina_examples::sim::scenarios() {
        let (code, out) = simulate(
            &bin,
            &format!(
                "sweep {} --seeds 200 --faults swarm --strict-shutdown",
                e.name
            ),
        );
        assert_eq!(code, 0, "{} sweep failed:\n{out}", e.name);
        assert!(out.contains("200 seeds, 0 failed"), "{out}");
        for kind in tina_sim::FaultKind::ALL {
            let line = out
                .lines()
                .find(|l| l.split_whitespace().next() == Some(kind.name()))
                .unwrap_or_else(|| panic!("{}: no coverage line for {}", e.name, kind.name()));
            if !e.faults.contains(kind) {
                assert!(line.contains("n/a"), "{line}");
                continue;
            }
            let seeds: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .expect("a count");
            assert!(
                seeds * 5 >= 200,
                "{}: {} injected in only {seeds} of 200 seeds",
                e.name,
                kind.name()
            );
        }
    }

    // 3. The planted bug: found by a release sweep, reproduced by the printed command.
    let (code, out) = simulate(
        &bin,
        "sweep bank --seeds 50 --faults swarm --plant forget-dedup",
    );
    assert_ne!(code, 0, "{out}");
    let replay = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .expect("a replay command");
    let args = replay
        .split(" -- ")
        .nth(1)
        .expect("the command has the binary's arguments after --");
    let (code, out) = simulate(&bin, args);
    assert_eq!(code, 129, "{out}");
}
