//! `run`: one seed, reported in full, with the command that replays it last.

use super::{Args, EXIT_USAGE, compare, config_for, options_of, replay_command};
use crate::config::{FaultKind, SimConfig};
use crate::sim::Report;
use std::io::Write;

/// `run`: one seed.
pub(super) fn run(out: &mut dyn Write, err: &mut dyn Write, program: &str, a: &Args) -> i32 {
    let entry = &a.entries[0];
    // Open the trace file first: a bad path fails at once, not after the run.
    let mut trace_file = match &a.trace_out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some((path, std::io::BufWriter::new(f))),
            Err(e) => {
                let _ = writeln!(err, "error: cannot create {path}: {e}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let config = config_for(a, a.seed);
    let started = std::time::Instant::now();
    let report = (entry.run)(&config, &options_of(a));
    let wall = started.elapsed();
    print_run(out, entry.name, a, &config, &report, wall);
    let mut code = report.outcome.exit_code();
    if let (Some((path, file)), Some(log)) = (&mut trace_file, &report.event_log) {
        if let Err(e) = write_event_log(file, log, report.event_log_dropped, a.trace_keep) {
            let _ = writeln!(err, "error: writing {path}: {e}");
            code = EXIT_USAGE;
        } else if report.event_log_dropped > 0 {
            let _ = writeln!(
                out,
                "event log: {path} holds the last {} events ({} earlier ones not kept; --trace-keep sets how many)",
                log.len(),
                report.event_log_dropped
            );
        }
    }
    let _ = writeln!(out, "{}", replay_command(program, entry.name, a, a.seed));
    code
}

fn write_event_log(
    file: &mut std::io::BufWriter<std::fs::File>,
    log: &[String],
    dropped: u64,
    keep: usize,
) -> std::io::Result<()> {
    if dropped > 0 {
        writeln!(file, "{}", compare::dropped_header(dropped, keep))?;
    }
    for line in log {
        writeln!(file, "{line}")?;
    }
    file.flush()
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
    scenario: &str,
    a: &Args,
    config: &SimConfig,
    r: &Report,
    wall: std::time::Duration,
) {
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
