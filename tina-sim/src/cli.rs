//! A thin command-line front end any binary can use to expose its scenarios.
//!
//! ```text
//! <program> run <scenario> --seed <u64> [--faults none|swarm] [--ticks N]
//!                          [--liveness-ticks N] [--trace-out FILE] [--plant BUG]
//!                          [--strict-shutdown]
//! <program> sweep <scenario> --seeds <N> [--start <S>] [--faults none|swarm] [--ticks N]
//! <program> compare <event-log-a> <event-log-b>
//! <program> list
//! ```
//!
//! `run` prints a banner (scenario, seed and every fault parameter), the result, a line
//! `trace_hash=<32 hex digits>` and, as its **last line**, the exact command that replays the
//! run. Exit codes: 0 pass, 127 panic in the framework, 128 liveness failure, 129 checker
//! violation (2 for usage errors). `sweep` runs many seeds, prints one line per failing seed
//! with its replay command, a fault-coverage summary (how many seeds injected each kind),
//! and exits with the first failure's code if any seed failed. `--plant` switches on a bug
//! a scenario keeps for testing that sweeps find failures (not for normal use).
//!
//! Wall-clock time is read here, to report speed; never inside a simulation.

use crate::config::{FaultKind, FaultMode, FaultSet, SimConfig};
use crate::sim::{Outcome, Report};
use std::io::Write;

/// Options a scenario gets besides the [`SimConfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScenarioOptions {
    /// A planted bug to switch on (test-only; the scenario decides what names it knows).
    pub plant: Option<String>,
}

/// One scenario a binary exposes.
#[derive(Clone, Copy)]
pub struct ScenarioEntry {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// The fault kinds it can exercise (the others are reported as not applicable).
    pub faults: FaultSet,
    /// Builds the system and runs it.
    pub run: fn(&SimConfig, &ScenarioOptions) -> Report,
}

/// Parses the process arguments, runs, and exits with the outcome's code.
pub fn main(program: &str, entries: &[ScenarioEntry]) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let code = run_cli(program, &args, entries, &mut out);
    let _ = out.flush();
    std::process::exit(code)
}

struct Args {
    command: String,
    scenario: Option<String>,
    files: Vec<String>,
    seed: Option<u64>,
    seeds: u64,
    start: u64,
    faults: FaultMode,
    ticks: Option<u64>,
    liveness_ticks: Option<u64>,
    trace_out: Option<String>,
    plant: Option<String>,
    strict_shutdown: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let command = it
        .next()
        .cloned()
        .ok_or("missing command (run, sweep, compare, list)")?;
    let mut a = Args {
        command,
        scenario: None,
        files: Vec::new(),
        seed: None,
        seeds: 0,
        start: 0,
        faults: FaultMode::None,
        ticks: None,
        liveness_ticks: None,
        trace_out: None,
        plant: None,
        strict_shutdown: false,
    };
    let num = |v: Option<&String>, name: &str| -> Result<u64, String> {
        v.ok_or(format!("{name} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{name}: {e}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" => a.seed = Some(num(it.next(), "--seed")?),
            "--seeds" => a.seeds = num(it.next(), "--seeds")?,
            "--start" => a.start = num(it.next(), "--start")?,
            "--ticks" => a.ticks = Some(num(it.next(), "--ticks")?),
            "--liveness-ticks" => a.liveness_ticks = Some(num(it.next(), "--liveness-ticks")?),
            "--trace-out" => {
                a.trace_out = Some(it.next().ok_or("--trace-out needs a file")?.clone())
            }
            "--plant" => a.plant = Some(it.next().ok_or("--plant needs a bug name")?.clone()),
            "--strict-shutdown" => a.strict_shutdown = true,
            "--faults" => {
                a.faults = match it.next().map(String::as_str) {
                    Some("none") => FaultMode::None,
                    Some("swarm") => FaultMode::Swarm,
                    other => return Err(format!("--faults must be none or swarm, not {other:?}")),
                }
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if a.scenario.is_none() && a.command != "compare" => a.scenario = Some(s.to_string()),
            s => a.files.push(s.to_string()),
        }
    }
    Ok(a)
}

/// Runs one command line; returns the exit code.
pub fn run_cli(
    program: &str,
    args: &[String],
    entries: &[ScenarioEntry],
    out: &mut dyn Write,
) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(out, "error: {e}\n{}", usage(program, entries));
            return 2;
        }
    };
    if a.command == "list" {
        for e in entries {
            let _ = writeln!(out, "{:<12} {}", e.name, e.about);
        }
        return 0;
    }
    if a.command == "compare" {
        return compare(&a.files, out);
    }
    let Some(entry) = a
        .scenario
        .as_deref()
        .and_then(|n| entries.iter().find(|e| e.name == n))
    else {
        let _ = writeln!(
            out,
            "error: unknown or missing scenario\n{}",
            usage(program, entries)
        );
        return 2;
    };
    let options = ScenarioOptions {
        plant: a.plant.clone(),
    };
    match a.command.as_str() {
        "run" | "replay" => {
            let Some(seed) = a.seed else {
                let _ = writeln!(out, "error: run needs --seed <u64>");
                return 2;
            };
            let config = config_for(&a, seed);
            let started = std::time::Instant::now();
            let report = (entry.run)(&config, &options);
            let wall = started.elapsed();
            print_run(out, program, entry.name, &a, &config, &report, wall);
            if let (Some(path), Some(log)) = (&a.trace_out, &report.event_log) {
                let mut text = log.join("\n");
                text.push('\n');
                if let Err(e) = std::fs::write(path, text) {
                    let _ = writeln!(out, "error: writing {path}: {e}");
                }
            }
            let _ = writeln!(out, "{}", replay_command(program, entry.name, &a, seed));
            report.outcome.exit_code()
        }
        "sweep" => sweep(out, program, entry, &a, &options),
        other => {
            let _ = writeln!(
                out,
                "error: unknown command {other}\n{}",
                usage(program, entries)
            );
            2
        }
    }
}

fn usage(program: &str, entries: &[ScenarioEntry]) -> String {
    let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    format!(
        "usage:\n  {program} run <scenario> --seed <u64> [--faults none|swarm] [--ticks N] [--trace-out FILE]\n  \
         {program} sweep <scenario> --seeds <N> [--start <S>] [--faults none|swarm] [--ticks N]\n  \
         {program} compare <event-log-a> <event-log-b>\nscenarios: {}",
        names.join(", ")
    )
}

fn config_for(a: &Args, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(seed);
    c.faults = a.faults;
    if let Some(t) = a.ticks {
        c.ticks = t;
    }
    if let Some(t) = a.liveness_ticks {
        c.liveness_ticks = t;
    }
    c.record_events = a.trace_out.is_some();
    c.strict_shutdown = a.strict_shutdown;
    c
}

/// The command that replays `seed` with the same options.
fn replay_command(program: &str, scenario: &str, a: &Args, seed: u64) -> String {
    let mut cmd = format!(
        "{program} run {scenario} --seed {seed} --faults {}",
        a.faults.name()
    );
    if let Some(t) = a.ticks {
        cmd.push_str(&format!(" --ticks {t}"));
    }
    if let Some(t) = a.liveness_ticks {
        cmd.push_str(&format!(" --liveness-ticks {t}"));
    }
    if let Some(p) = &a.plant {
        cmd.push_str(&format!(" --plant {p}"));
    }
    if a.strict_shutdown {
        cmd.push_str(" --strict-shutdown");
    }
    cmd
}

fn injected_line(r: &Report) -> String {
    let parts: Vec<String> = FaultKind::ALL
        .iter()
        .filter(|k| r.injected(**k) > 0)
        .map(|k| format!("{}={}", k.name(), r.injected(*k)))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(" ")
    }
}

fn print_run(
    out: &mut dyn Write,
    program: &str,
    scenario: &str,
    a: &Args,
    config: &SimConfig,
    r: &Report,
    wall: std::time::Duration,
) {
    let _ = program;
    let _ = writeln!(
        out,
        "tina-sim: scenario={scenario} seed={} faults={} ticks={} liveness-ticks={} check-every={} latency={}{}",
        config.seed,
        a.faults.name(),
        config.ticks,
        config.liveness_ticks,
        config.check_every_rounds,
        config.net_latency_ticks,
        a.plant
            .as_ref()
            .map(|p| format!(" plant={p}"))
            .unwrap_or_default(),
    );
    let _ = writeln!(out, "fault parameters: {}", r.faults);
    let _ = writeln!(out, "result: {}", r.outcome);
    let _ = writeln!(
        out,
        "rounds={} ticks={} liveness-from={} dispatches={} events={}",
        r.rounds,
        r.ticks,
        r.liveness_at.map_or("-".to_string(), |t| format!("t{t}")),
        r.dispatches,
        r.events
    );
    let _ = writeln!(out, "injected: {}", injected_line(r));
    if !r.summary.is_empty() {
        let _ = writeln!(out, "summary: {}", r.summary);
    }
    if let Some(s) = &r.shutdown {
        let _ = writeln!(out, "shutdown: {s}");
    }
    let secs = wall.as_secs_f64().max(1e-9);
    let sim_ms = (r.ticks as f64) * (r.tick_ns as f64) / 1e6;
    let _ = writeln!(
        out,
        "speed: wall={:.1}ms dispatches/s={:.0} simulated/wall={:.0}x",
        secs * 1e3,
        r.dispatches as f64 / secs,
        sim_ms / (secs * 1e3)
    );
    if !r.outcome.is_pass() && !r.log_tail.is_empty() {
        let _ = writeln!(out, "last log lines:");
        for l in &r.log_tail {
            let _ = writeln!(out, "  {l}");
        }
    }
    let _ = writeln!(out, "trace_hash={}", r.trace_hash);
}

fn sweep(
    out: &mut dyn Write,
    program: &str,
    entry: &ScenarioEntry,
    a: &Args,
    options: &ScenarioOptions,
) -> i32 {
    let n = a.seeds.max(1);
    let mut covered = [0u64; FaultKind::COUNT];
    let mut failed = 0u64;
    let mut leaky = Vec::new();
    let mut first_code = 0;
    let mut dispatches = 0u64;
    let mut ticks = 0u64;
    let started = std::time::Instant::now();
    let _ = writeln!(
        out,
        "tina-sim sweep: scenario={} seeds={}..{} faults={}{}",
        entry.name,
        a.start,
        a.start + n - 1,
        a.faults.name(),
        a.plant
            .as_ref()
            .map(|p| format!(" plant={p}"))
            .unwrap_or_default()
    );
    for seed in a.start..a.start + n {
        let config = config_for(a, seed);
        let r = (entry.run)(&config, options);
        dispatches += r.dispatches;
        ticks += r.ticks;
        if r.shutdown.as_deref().is_some_and(|s| s != "clean") {
            leaky.push(seed);
        }
        for k in FaultKind::ALL {
            if r.injected(k) > 0 {
                covered[k.index()] += 1;
            }
        }
        if r.outcome != Outcome::Pass {
            failed += 1;
            if first_code == 0 {
                first_code = r.outcome.exit_code();
            }
            let _ = writeln!(
                out,
                "FAIL seed={seed} exit={} {} trace_hash={}\n  replay: {}",
                r.outcome.exit_code(),
                r.outcome,
                r.trace_hash,
                replay_command(program, entry.name, a, seed)
            );
        }
    }
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "fault coverage (seeds that injected each kind, of {n}):"
    );
    for k in FaultKind::ALL {
        let c = covered[k.index()];
        if entry.faults.contains(k) {
            let _ = writeln!(out, "  {:<14} {:>5}  {:>3}%", k.name(), c, c * 100 / n);
        } else {
            let _ = writeln!(
                out,
                "  {:<14}   n/a  (the scenario cannot exercise it)",
                k.name()
            );
        }
    }
    if !leaky.is_empty() {
        let shown: Vec<String> = leaky.iter().take(10).map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "shutdown leaks (reported, not failed; --strict-shutdown fails on them): {} seeds, e.g. {}",
            leaky.len(),
            shown.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "sweep: {} seeds, {} failed; {dispatches} dispatches, {ticks} simulated ticks in {:.2}s",
        n, failed, wall
    );
    first_code
}

fn compare(files: &[String], out: &mut dyn Write) -> i32 {
    let [a, b] = files else {
        let _ = writeln!(out, "error: compare needs two event logs");
        return 2;
    };
    let read = |p: &String| {
        std::fs::read_to_string(p).map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
    };
    let (la, lb) = match (read(a), read(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(out, "error: {e}");
            return 2;
        }
    };
    match crate::trace::first_difference(&la, &lb) {
        None => {
            let _ = writeln!(out, "identical: {} events", la.len());
            0
        }
        Some((i, x, y)) => {
            let _ = writeln!(
                out,
                "first difference at event {i}:\n  {a}: {x}\n  {b}: {y}"
            );
            1
        }
    }
}
