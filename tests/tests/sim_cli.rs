//! The simulator's command line under hostile input, and its unattended soak mode.
//!
//! Most cases call `tina_sim::cli::run_cli` in-process with an argument vector (what the
//! `simulate` binary's `main` does), which keeps results (stdout) and errors (stderr) apart;
//! the memory bound of a long run is measured on the real release binary.
//!
//! Every bad command line is a usage error: exit 2, an `error:` line on stderr, nothing on
//! stdout, and no simulation started.

mod example_bins;

use std::path::PathBuf;
use tina_examples::sim::{PROGRAM, scenarios};
use tina_sim::cli::run_cli;

/// Runs one command line in-process: (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cli(PROGRAM, &args, &scenarios(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("utf-8 stdout"),
        String::from_utf8(err).expect("utf-8 stderr"),
    )
}

/// Asserts a usage error whose message contains `needle`.
fn usage_error(args: &[&str], needle: &str) {
    let (code, out, err) = cli(args);
    assert_eq!(code, 2, "{args:?}: exit code\nstdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "{args:?}: nothing on stdout, got:\n{out}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{args:?}: stderr should say {needle:?}, got:\n{err}"
    );
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tina-sim-cli-{}-{name}", std::process::id()))
}

#[test]
fn sim_cli_seed_range_past_u64_max_is_an_error() {
    let max = u64::MAX.to_string();
    usage_error(
        &["sweep", "echo", "--seeds", "2", "--start", &max],
        "goes past the last seed",
    );
    usage_error(
        &["soak", "echo", "--seeds", "2", "--start", &max],
        "goes past the last seed",
    );
    // The last seed itself is a valid range of one.
    let (code, out, err) = cli(&["sweep", "idle", "--seeds", "1", "--start", &max]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("sweep: 1 seeds, 0 failed"), "{out}");
}

#[test]
fn sim_cli_lengths_beyond_the_limit_are_errors() {
    let max = u64::MAX.to_string();
    usage_error(
        &["run", "echo", "--seed", "1", "--liveness-ticks", &max],
        "--liveness-ticks must be from 1 to",
    );
    usage_error(
        &[
            "run",
            "echo",
            "--seed",
            "1",
            "--ticks",
            "18446744073709551000",
        ],
        "--ticks must be at most",
    );
    usage_error(
        &["run", "echo", "--seed", "1", "--liveness-ticks", "0"],
        "--liveness-ticks must be from 1 to",
    );
    usage_error(
        &["run", "echo", "--seed", "-1"],
        "--seed takes a whole number",
    );
    usage_error(
        &["run", "echo", "--seed", "18446744073709551616"],
        "--seed takes a whole number",
    );
    usage_error(
        &["sweep", "echo", "--seeds", "2", "--jobs", "0"],
        "--jobs must be",
    );
}

#[test]
fn sim_cli_zero_or_missing_seeds_is_an_error() {
    usage_error(
        &["sweep", "echo", "--seeds", "0"],
        "--seeds must be at least 1",
    );
    usage_error(&["sweep", "echo"], "sweep needs --seeds");
    usage_error(&["run", "echo"], "run needs --seed");
}

#[test]
fn sim_cli_unknown_planted_bug_is_an_error_naming_the_valid_ones() {
    usage_error(
        &["run", "bank", "--seed", "1", "--plant", "nosuchbug"],
        "unknown planted bug \"nosuchbug\" for scenario bank (valid: forget-dedup)",
    );
    usage_error(
        &["sweep", "echo", "--seeds", "1", "--plant", "forget-dedup"],
        "scenario echo has none",
    );
    let (code, out, _) = cli(&["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("forget-dedup"),
        "list names the planted bugs:\n{out}"
    );
}

#[test]
fn sim_cli_unknown_commands_options_and_scenarios_are_errors() {
    usage_error(&["frobnicate"], "unknown command");
    usage_error(&["run", "nosuch", "--seed", "1"], "unknown scenario");
    usage_error(
        &["run", "echo", "--seed", "1", "--bogus"],
        "unknown option --bogus",
    );
    usage_error(
        &["run", "echo", "--seed", "1", "--seeds", "3"],
        "run does not take --seeds",
    );
    usage_error(
        &["run", "echo", "extra", "--seed", "1"],
        "unexpected argument",
    );
    usage_error(
        &["run", "echo", "--seed", "1", "--faults", "lots"],
        "--faults takes",
    );
    usage_error(&["compare", "only-one"], "compare takes two event logs");
    usage_error(&["run", "echo", "--seed"], "--seed needs a value");
}

#[test]
fn sim_cli_trace_out_to_a_bad_path_fails_before_running() {
    let (code, out, err) = cli(&[
        "run",
        "idle",
        "--seed",
        "1",
        "--trace-out",
        "/nonexistent/dir/trace.log",
    ]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("cannot create /nonexistent/dir/trace.log"),
        "{err}"
    );
    assert!(out.is_empty(), "no run happened:\n{out}");
}

#[test]
fn sim_cli_trace_out_write_failure_exits_non_zero() {
    // /dev/full opens, then every write fails with ENOSPC.
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let (code, out, err) = cli(&["run", "idle", "--seed", "1", "--trace-out", "/dev/full"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(err.starts_with("error: writing /dev/full"), "{err}");
    assert!(
        out.contains("result: PASS"),
        "the run itself is reported:\n{out}"
    );
}

#[test]
fn sim_cli_help_prints_usage_with_exit_codes_on_stdout() {
    for args in [&["--help"][..], &["-h"], &["help"], &["run", "--help"]] {
        let (code, out, err) = cli(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(out.starts_with("usage:"), "{args:?}: {out}");
        for needle in [
            "soak <scenario|all>",
            "exit codes:",
            "128 liveness failure",
            "129 checker violation",
            "2 usage error",
        ] {
            assert!(
                out.contains(needle),
                "{args:?}: usage lacks {needle:?}:\n{out}"
            );
        }
    }
    // No command at all: the usage, as an error.
    let (code, out, err) = cli(&[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: missing command") && err.contains("usage:"),
        "{err}"
    );
}

#[test]
fn sim_cli_compare_refuses_what_is_not_an_event_log() {
    // One 100 KiB line without a newline (what /dev/zero would give, but finite).
    let blob = temp_path("blob");
    std::fs::write(&blob, vec![b'0'; 100 * 1024]).unwrap();
    let blob = blob.to_str().unwrap();
    usage_error(&["compare", blob, blob], "a line longer than 65536 bytes");
    // Bytes that are not text.
    let binary = temp_path("binary");
    std::fs::write(&binary, [0xFFu8, 0xFE, b'\n']).unwrap();
    let binary = binary.to_str().unwrap();
    usage_error(&["compare", binary, binary], "not UTF-8");
    usage_error(
        &["compare", "/nonexistent/a", "/nonexistent/b"],
        "cannot open",
    );
    let _ = std::fs::remove_file(blob);
    let _ = std::fs::remove_file(binary);
}

#[test]
fn sim_cli_trace_keep_bounds_the_log_and_compare_aligns_a_cut_log() {
    let full = temp_path("full.log");
    let cut = temp_path("cut.log");
    let (full_s, cut_s) = (full.to_str().unwrap(), cut.to_str().unwrap());
    let base = [
        "run", "bank", "--seed", "3", "--faults", "swarm", "--ticks", "600",
    ];
    let (code, out, err) = cli(&[&base[..], &["--trace-out", full_s]].concat());
    assert_eq!(code, 0, "{out}{err}");
    let (code, out_cut, err) =
        cli(&[&base[..], &["--trace-out", cut_s, "--trace-keep", "50"]].concat());
    assert_eq!(code, 0, "{out_cut}{err}");
    let full_lines = std::fs::read_to_string(&full).unwrap().lines().count();
    let cut_text = std::fs::read_to_string(&cut).unwrap();
    let cut_lines: Vec<&str> = cut_text.lines().collect();
    assert_eq!(cut_lines.len(), 51, "a header and the last 50 events");
    let dropped = full_lines - 50;
    assert!(
        cut_lines[0].starts_with(&format!("# {dropped} earlier events not kept")),
        "{}",
        cut_lines[0]
    );
    assert!(
        out_cut.contains(&format!("{dropped} earlier ones not kept")),
        "{out_cut}"
    );
    // The kept lines are the full log's last ones, and compare lines them up.
    let full_text = std::fs::read_to_string(&full).unwrap();
    let tail: Vec<&str> = full_text.lines().skip(dropped).collect();
    assert_eq!(&cut_lines[1..], &tail[..]);
    let (code, out, err) = cli(&["compare", full_s, cut_s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("identical: 50 events (from event {dropped})")),
        "{out}"
    );
    // A different seed differs, and compare says where (exit 1).
    let other = temp_path("other.log");
    let other_s = other.to_str().unwrap();
    let (code, _, _) = cli(&[
        "run",
        "bank",
        "--seed",
        "4",
        "--faults",
        "swarm",
        "--ticks",
        "600",
        "--trace-out",
        other_s,
    ]);
    assert_eq!(code, 0);
    let (code, out, err) = cli(&["compare", full_s, other_s]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("first difference at event "), "{out}");
    for p in [full, cut, other] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn sim_soak_finds_the_planted_bug_and_its_replay_reproduces_it() {
    let soak = [
        "soak",
        "bank",
        "--seeds",
        "8",
        "--start",
        "0",
        "--ticks",
        "1500",
        "--plant",
        "forget-dedup",
    ];
    let (code, out, err) = cli(&soak);
    assert_eq!(code, 129, "the first failure's code:\n{out}{err}");
    assert!(out.contains("soak bank: 8 seeds, "), "{out}");
    assert!(err.starts_with("soak failed: "), "{err}");
    let replay = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .expect("a replay command");
    let args: Vec<&str> = replay
        .strip_prefix(PROGRAM)
        .expect("replay starts with the program")
        .split_whitespace()
        .collect();
    let (code, out, _) = cli(&args);
    assert_eq!(code, 129, "{out}");
    // The same soak on two threads finds the same seeds.
    let failing = |out: &str| {
        let mut seeds: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with("FAIL "))
            .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
            .collect();
        seeds.sort();
        seeds
    };
    let (_, one, _) = cli(&soak);
    let (code, two, _) = cli(&[&soak[..], &["--jobs", "2"]].concat());
    assert_eq!(code, 129);
    assert!(!failing(&one).is_empty());
    assert_eq!(failing(&one), failing(&two));
}

#[test]
fn sim_soak_from_a_commit_prints_its_start_and_a_repeat_command() {
    let commit = "c49ef2b0123456789abcdef0123456789abcdef0";
    let (code, out, err) = cli(&[
        "soak",
        "all",
        "--seeds",
        "2",
        "--seeds-from-commit",
        commit,
        "--ticks",
        "300",
        "--strict-shutdown",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "{err}");
    for e in scenarios() {
        assert!(
            out.contains(&format!("soak {}: 2 seeds, 0 failed", e.name)),
            "{}: {out}",
            e.name
        );
    }
    assert!(
        out.contains(&format!("start derived from commit {commit}")),
        "{out}"
    );
    let total = format!("soak: {} scenarios x 2 seeds, 0 failed", scenarios().len());
    assert!(out.contains(&total), "{out}");
    let repeat = out
        .lines()
        .find_map(|l| l.strip_prefix("repeat: "))
        .expect("a repeat command");
    let start = repeat
        .split_whitespace()
        .skip_while(|w| *w != "--start")
        .nth(1)
        .expect("the start seed");
    // The banner's range starts there, and another commit starts elsewhere.
    assert!(out.contains(&format!("seeds={start}..")), "{out}");
    let (code, other, _) = cli(&[
        "soak",
        "idle",
        "--seeds",
        "1",
        "--seeds-from-commit",
        "317f3ef",
    ]);
    assert_eq!(code, 0);
    assert!(!other.contains(&format!("seeds={start}..")), "{other}");
    // A nightly soak derives its start from today's date and says which.
    let (code, nightly, err) = cli(&["soak", "idle", "--seeds", "1", "--seeds-from-date"]);
    assert_eq!(code, 0, "{nightly}{err}");
    let date = nightly
        .split("(start derived from the date ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("the date is printed");
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "{date}"
    );
    // Exactly one source of the start seed.
    usage_error(
        &[
            "soak",
            "all",
            "--seeds",
            "2",
            "--start",
            "1",
            "--seeds-from-date",
        ],
        "exactly one of",
    );
    usage_error(&["soak", "all", "--seeds", "2"], "exactly one of");
    usage_error(
        &["soak", "all", "--seeds", "2", "--seeds-from-commit", ""],
        "takes a commit id",
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the child runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("a VmRSS line")
}

#[test]
fn sim_long_run_memory_stays_flat() {
    // The longest run the command line allows never ends in a test's time; its memory must
    // not grow with the ticks it has simulated (it grew by tens of MB a second when closed
    // sockets were kept forever).
    let bin = example_bins::simulate_release();
    let mut child = std::process::Command::new(&bin)
        .args([
            "run",
            "echo",
            "--seed",
            "1",
            "--ticks",
            "4611686018427387904",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("simulate starts");
    let pid = child.id();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let early = rss_kib(pid);
    std::thread::sleep(std::time::Duration::from_secs(5));
    let late = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        late < early + 16 * 1024,
        "RSS grew from {early} KiB to {late} KiB in 5 s of simulation"
    );
}

#[test]
fn sim_socket_table_is_bounded_by_open_connections() {
    use tina_sim::SimConfig;
    let echo = scenarios().into_iter().find(|e| e.name == "echo").unwrap();
    let options = tina_sim::cli::ScenarioOptions::default();
    let mut config = SimConfig::new(5);
    config.ticks = 20_000;
    let r = (echo.run)(&config, &options);
    assert!(r.outcome.is_pass(), "{}", r.outcome);
    // Every client session opens two sockets; a few hundred sessions ran.
    let verified: u64 = r
        .summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("verified="))
        .and_then(|n| n.parse().ok())
        .expect("the summary counts verified sessions");
    let bound =
        (tina_examples::sim::echo::SHARD_COUNT + 2 * tina_examples::sim::echo::CLIENT_COUNT) as u64;
    assert!(
        verified > 10 * bound,
        "{verified} sessions: too few to tell"
    );
    assert!(
        r.sockets_peak <= bound,
        "{} sockets held at once (listeners + two per client at most: {bound})",
        r.sockets_peak
    );
}

#[test]
fn sim_huge_lengths_in_the_library_are_bounded_not_overflowed() {
    use tina_sim::SimConfig;
    let options = tina_sim::cli::ScenarioOptions::default();
    for e in scenarios().into_iter().filter(|e| e.name != "echo") {
        // A liveness bound of u64::MAX: the goal is reached, no overflow.
        let mut config = SimConfig::new(2);
        config.ticks = 1_000;
        config.liveness_ticks = u64::MAX;
        let r = (e.run)(&config, &options);
        assert!(
            r.outcome.is_pass(),
            "{} liveness u64::MAX: {}",
            e.name,
            r.outcome
        );
    }
    // A faulty phase of u64::MAX ticks: time jumps to its (bounded) end once the system is
    // idle, and the liveness phase still has its full length.
    for name in ["bank", "dispatcher"] {
        let e = scenarios().into_iter().find(|e| e.name == name).unwrap();
        let mut config = SimConfig::new(1);
        config.faults = tina_sim::FaultMode::Swarm;
        config.ticks = u64::MAX;
        let r = (e.run)(&config, &options);
        assert!(r.outcome.is_pass(), "{name} ticks u64::MAX: {}", r.outcome);
        assert!(
            r.liveness_at.is_some_and(|t| t >= tina_sim::TICKS_MAX),
            "{name}: {:?}",
            r.liveness_at
        );
    }
}

#[test]
fn sim_event_log_ring_keeps_the_last_lines_and_counts_the_rest() {
    use tina_sim::SimConfig;
    let bank = scenarios().into_iter().find(|e| e.name == "bank").unwrap();
    let options = tina_sim::cli::ScenarioOptions::default();
    let mut config = SimConfig::new(9);
    config.ticks = 500;
    config.record_events = true;
    let full = (bank.run)(&config, &options);
    config.event_log_max = 64;
    let cut = (bank.run)(&config, &options);
    assert_eq!(
        full.trace_hash, cut.trace_hash,
        "the log's size changes nothing else"
    );
    let full_log = full.event_log.unwrap();
    let cut_log = cut.event_log.unwrap();
    assert_eq!(full.event_log_dropped, 0);
    assert_eq!(full_log.len() as u64, full.events);
    assert_eq!(cut_log.len(), 64);
    assert_eq!(cut.event_log_dropped, cut.events - 64);
    assert_eq!(&full_log[full_log.len() - 64..], &cut_log[..]);
}
