//! A deliberately planted bug (`--plant forget-dedup`: bank branches forget, when they
//! restart, which deposits they already applied) is found by a sweep, and the replay command
//! the sweep prints reproduces the same failure with the same trace hash. The same sweep
//! without the bug passes.

use tina_examples::sim::{PROGRAM, scenarios};
use tina_sim::cli::run_cli;

fn cli(args: &str) -> (i32, String) {
    let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cli(PROGRAM, &args, &scenarios(), &mut out, &mut err);
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
    (code, String::from_utf8(out).expect("utf-8 output"))
}

#[test]
fn sim_sweep_finds_planted_bug_and_replay_reproduces_it() {
    let (code, out) = cli("sweep bank --seeds 24 --faults swarm --ticks 1500 --plant forget-dedup");
    assert_ne!(code, 0, "the sweep must fail:\n{out}");
    let fail = out
        .lines()
        .position(|l| l.starts_with("FAIL seed="))
        .expect("a failing seed is printed");
    let lines: Vec<&str> = out.lines().collect();
    let hash = lines[fail]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("trace_hash="))
        .expect("the failing line has the trace hash");
    let replay = lines[fail + 1]
        .trim()
        .strip_prefix("replay: ")
        .expect("the replay command follows");
    let args = replay
        .strip_prefix(PROGRAM)
        .expect("replay starts with the program");
    assert!(args.contains("--plant forget-dedup"), "{replay}");
    let (code, out) = cli(args);
    assert_eq!(code, 129, "checker violation expected:\n{out}");
    assert!(
        out.contains("CHECKER VIOLATION: money not conserved"),
        "{out}"
    );
    assert!(
        out.contains(&format!("trace_hash={hash}")),
        "same failure, same hash:\n{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some(replay),
        "the last line is the replay command"
    );
}

#[test]
fn sim_sweep_without_the_bug_passes() {
    let (code, out) = cli("sweep bank --seeds 24 --faults swarm --ticks 1500");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("24 seeds, 0 failed"), "{out}");
}
