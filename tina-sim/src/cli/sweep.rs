//! `sweep` and `soak`: many seeds of one or more scenarios, on one thread or several.
//!
//! Each seed is an independent run (its own world, on whatever thread runs it), so the
//! results do not depend on `--jobs`; only the order of the lines that report failing seeds
//! does. Totals saturate rather than wrap.

use super::{Args, ScenarioEntry, StartFrom, config_for, options_of, replay_command};
use crate::config::FaultKind;
use crate::hash::{TraceHash, digest64};
use crate::sim::Outcome;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// Stack of each worker thread (as large as a main thread's).
const WORKER_STACK_SIZE: usize = 8 << 20;
/// A soak reports progress this often.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(60);
/// Seeds with shutdown leaks a summary names.
const LEAKED_SHOWN_MAX: usize = 10;
/// Failing seeds a soak's summary lists (every one has its replay line above it).
const SUMMARY_FAILURES_MAX: usize = 20;

/// What one seed did (what a sweep reports of it).
struct SeedResult {
    seed: u64,
    outcome: Outcome,
    trace_hash: TraceHash,
    dispatches: u64,
    ticks: u64,
    injected: [u64; FaultKind::COUNT],
    leaked: bool,
}

/// Runs seeds `start..=start + n - 1` of `entry` on `jobs` threads, calling `each` (on this
/// thread) with every result as it comes.
fn run_seeds(entry: &ScenarioEntry, a: &Args, n: u64, each: &mut dyn FnMut(SeedResult)) {
    let one = |seed: u64| {
        let r = (entry.run)(&config_for(a, seed), &options_of(a));
        SeedResult {
            seed,
            leaked: r.shutdown.as_deref().is_some_and(|s| s != "clean"),
            outcome: r.outcome,
            trace_hash: r.trace_hash,
            dispatches: r.dispatches,
            ticks: r.ticks,
            injected: r.injected,
        }
    };
    if a.jobs <= 1 {
        for i in 0..n {
            each(one(a.start + i));
        }
        return;
    }
    // Each worker takes the next seed index until they run out.
    let next = AtomicU64::new(0);
    let take = || Some(next.fetch_add(1, Ordering::Relaxed)).filter(|&i| i < n);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..a.jobs {
            let tx = tx.clone();
            let (take, one) = (&take, &one);
            let worker = std::thread::Builder::new()
                .stack_size(WORKER_STACK_SIZE)
                .spawn_scoped(scope, move || {
                    while let Some(i) = take() {
                        if tx.send(one(a.start + i)).is_err() {
                            break;
                        }
                    }
                });
            if worker.is_err() {
                // No more threads: the ones running take the remaining seeds.
                break;
            }
        }
        drop(tx);
        for r in rx {
            each(r);
        }
    });
    // If no thread could start at all, the seeds run here.
    while let Some(i) = take() {
        each(one(a.start + i));
    }
}

/// What a sweep of one scenario found.
#[derive(Default)]
struct Tally {
    failed: u64,
    first_code: i32,
    failures: Vec<u64>,
    /// Seeds whose final shutdown leaked, and the first few of them.
    leaked: u64,
    leaked_seeds: Vec<u64>,
    covered: [u64; FaultKind::COUNT],
    dispatches: u64,
    ticks: u64,
    done: u64,
}

impl Tally {
    fn leaked_shown(&self) -> String {
        let mut seeds = self.leaked_seeds.clone();
        seeds.sort_unstable();
        let shown: Vec<String> = seeds.iter().map(u64::to_string).collect();
        shown.join(" ")
    }

    fn add(&mut self, r: &SeedResult) {
        self.done = self.done.saturating_add(1);
        self.dispatches = self.dispatches.saturating_add(r.dispatches);
        self.ticks = self.ticks.saturating_add(r.ticks);
        if r.leaked {
            self.leaked = self.leaked.saturating_add(1);
            if self.leaked_seeds.len() < LEAKED_SHOWN_MAX {
                self.leaked_seeds.push(r.seed);
            }
        }
        for k in FaultKind::ALL {
            if r.injected[k.index()] > 0 {
                self.covered[k.index()] = self.covered[k.index()].saturating_add(1);
            }
        }
        if r.outcome != Outcome::Pass {
            self.failed = self.failed.saturating_add(1);
            if self.first_code == 0 {
                self.first_code = r.outcome.exit_code();
            }
            if self.failures.len() < SUMMARY_FAILURES_MAX {
                self.failures.push(r.seed);
            }
        }
    }
}

/// Prints a failing seed and its replay command (`soak` names the scenario too).
fn print_failure(out: &mut dyn Write, program: &str, name: &str, a: &Args, r: &SeedResult) {
    let scenario = if a.command == super::Command::Soak {
        format!("scenario={name} ")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "FAIL {scenario}seed={} exit={} {} trace_hash={}\n  replay: {}",
        r.seed,
        r.outcome.exit_code(),
        r.outcome,
        r.trace_hash,
        replay_command(program, name, a, r.seed)
    );
    let _ = out.flush();
}

fn percent(part: u64, whole: u64) -> u128 {
    u128::from(part) * 100 / u128::from(whole.max(1))
}

fn plant_suffix(a: &Args) -> String {
    a.plant
        .as_ref()
        .map(|p| format!(" plant={p}"))
        .unwrap_or_default()
}

/// `sweep`: the seeds of one scenario, a coverage summary and a total.
pub(super) fn sweep(out: &mut dyn Write, program: &str, a: &Args) -> i32 {
    let entry = &a.entries[0];
    let n = a.seeds;
    let _ = writeln!(
        out,
        "tina-sim sweep: scenario={} seeds={}..{} faults={}{}",
        entry.name,
        a.start,
        a.start + (n - 1),
        a.faults.name(),
        plant_suffix(a)
    );
    let started = Instant::now();
    let mut t = Tally::default();
    run_seeds(entry, a, n, &mut |r| {
        t.add(&r);
        if r.outcome != Outcome::Pass {
            print_failure(out, program, entry.name, a, &r);
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let _ = writeln!(
        out,
        "fault coverage (seeds that injected each kind, of {n}):"
    );
    for k in FaultKind::ALL {
        let c = t.covered[k.index()];
        if entry.faults.contains(k) {
            let _ = writeln!(out, "  {:<14} {:>5}  {:>3}%", k.name(), c, percent(c, n));
        } else {
            let _ = writeln!(
                out,
                "  {:<14}   n/a  (the scenario cannot exercise it)",
                k.name()
            );
        }
    }
    if t.leaked > 0 {
        let _ = writeln!(
            out,
            "shutdown leaks (reported, not failed; --strict-shutdown fails on them): {} seeds, e.g. {}",
            t.leaked,
            t.leaked_shown()
        );
    }
    let _ = writeln!(
        out,
        "sweep: {n} seeds, {} failed; {} dispatches, {} simulated ticks in {wall:.2}s",
        t.failed, t.dispatches, t.ticks
    );
    t.first_code
}

/// `soak`: a sweep of every chosen scenario, with progress and a summary.
pub(super) fn soak(out: &mut dyn Write, err: &mut dyn Write, program: &str, a: &Args) -> i32 {
    soak_banner(out, program, a);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut first_code = 0;
    let mut failed_total = 0u64;
    let mut failures: Vec<(&str, u64)> = Vec::new();
    for entry in &a.entries {
        let mut t = soak_scenario(out, program, a, entry, started, &mut last_progress);
        failed_total = failed_total.saturating_add(t.failed);
        if first_code == 0 {
            first_code = t.first_code;
        }
        t.failures.sort_unstable();
        failures.extend(t.failures.iter().map(|&s| (entry.name, s)));
    }
    let _ = writeln!(
        out,
        "soak: {} scenario{} x {} seeds, {failed_total} failed in {:.1}s",
        a.entries.len(),
        if a.entries.len() == 1 { "" } else { "s" },
        a.seeds,
        started.elapsed().as_secs_f64()
    );
    if failed_total > 0 {
        let shown: Vec<String> = failures
            .iter()
            .take(SUMMARY_FAILURES_MAX)
            .map(|(name, seed)| format!("{name}:{seed}"))
            .collect();
        let _ = writeln!(
            err,
            "soak failed: {failed_total} seeds, e.g. {} (replay commands above)",
            shown.join(" ")
        );
    }
    first_code
}

/// A soak's first lines: what it runs, and the command that repeats it.
fn soak_banner(out: &mut dyn Write, program: &str, a: &Args) {
    let n = a.seeds;
    let names: Vec<&str> = a.entries.iter().map(|e| e.name).collect();
    let from = match &a.start_from {
        StartFrom::Given => String::new(),
        StartFrom::Commit(id) => format!(" (start derived from commit {id})"),
        StartFrom::Date(d) => format!(" (start derived from the date {d}, UTC)"),
    };
    let _ = writeln!(
        out,
        "tina-sim soak: scenarios={} seeds={}..{} ({n} per scenario) faults={} jobs={}{}{from}",
        names.join(","),
        a.start,
        a.start + (n - 1),
        a.faults.name(),
        a.jobs,
        plant_suffix(a),
    );
    let _ = writeln!(out, "repeat: {}", repeat_command(program, a));
    let _ = out.flush();
}

/// One scenario of a soak: its seeds (failures and progress printed as they come), then
/// its summary line and any shutdown leaks.
fn soak_scenario(
    out: &mut dyn Write,
    program: &str,
    a: &Args,
    entry: &ScenarioEntry,
    started: Instant,
    last_progress: &mut Instant,
) -> Tally {
    let n = a.seeds;
    let began = Instant::now();
    let mut t = Tally::default();
    run_seeds(entry, a, n, &mut |r| {
        t.add(&r);
        if r.outcome != Outcome::Pass {
            print_failure(out, program, entry.name, a, &r);
        }
        if last_progress.elapsed() >= PROGRESS_INTERVAL {
            *last_progress = Instant::now();
            let _ = writeln!(
                out,
                "progress: {} {}/{n} seeds, {} failed; {:.0}s so far",
                entry.name,
                t.done,
                t.failed,
                started.elapsed().as_secs_f64()
            );
            let _ = out.flush();
        }
    });
    let coverage: Vec<String> = FaultKind::ALL
        .iter()
        .filter(|k| entry.faults.contains(**k))
        .map(|k| format!("{}={}%", k.name(), percent(t.covered[k.index()], n)))
        .collect();
    let _ = writeln!(
        out,
        "soak {}: {n} seeds, {} failed; {} dispatches, {} simulated ticks in {:.1}s; coverage: {}",
        entry.name,
        t.failed,
        t.dispatches,
        t.ticks,
        began.elapsed().as_secs_f64(),
        if coverage.is_empty() {
            "no faults apply".to_string()
        } else {
            coverage.join(" ")
        }
    );
    if t.leaked > 0 {
        let _ = writeln!(
            out,
            "soak {}: shutdown leaks (reported, not failed; --strict-shutdown fails on them): {} seeds, e.g. {}",
            entry.name,
            t.leaked,
            t.leaked_shown()
        );
    }
    let _ = out.flush();
    t
}

/// The command that runs the same soak again (with the start seed spelled out).
fn repeat_command(program: &str, a: &Args) -> String {
    let scenario = if a.entries.len() == 1 {
        a.entries[0].name
    } else {
        "all"
    };
    let mut cmd = format!(
        "{program} soak {scenario} --seeds {} --start {} --faults {}",
        a.seeds,
        a.start,
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
    if a.jobs > 1 {
        cmd.push_str(&format!(" --jobs {}", a.jobs));
    }
    cmd
}

/// The first seed of a soak derived from `kind` (`commit`, `date`) and `value`: a digest,
/// below 2^63 so that any seed count fits after it.
pub(super) fn start_seed_for(kind: &str, value: &str) -> u64 {
    digest64(format!("tina-sim soak {kind}:{value}").as_bytes()) >> 1
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub(super) fn today_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs / 86_400)
}

/// The proleptic Gregorian date `days` days after 1970-01-01 (H. Hinnant's algorithm).
fn civil_date(days: u64) -> String {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_date_matches_known_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(59), "1970-03-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_454), "2026-01-01");
    }

    #[test]
    fn start_seed_depends_on_the_commit_and_leaves_room_for_seeds() {
        let a = start_seed_for("commit", "c49ef2b");
        let b = start_seed_for("commit", "317f3ef");
        assert_ne!(a, b);
        assert_eq!(a, start_seed_for("commit", "c49ef2b"));
        assert!(a < 1 << 63 && b < 1 << 63);
        assert_ne!(a, start_seed_for("date", "c49ef2b"));
    }
}
