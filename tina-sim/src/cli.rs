//! A thin command-line front end any binary can use to expose its scenarios.
//!
//! ```text
//! <program> run <scenario> --seed <u64> [--faults none|swarm] [--ticks N] [--liveness-ticks N]
//!                          [--trace-out FILE] [--trace-keep N] [--plant BUG] [--strict-shutdown]
//! <program> sweep <scenario> --seeds <N> [--start <S>] [--faults none|swarm] [--ticks N]
//!                          [--liveness-ticks N] [--plant BUG] [--strict-shutdown] [--jobs N]
//! <program> soak <scenario|all> --seeds <N>
//!                          (--start <S> | --seeds-from-commit <ID> | --seeds-from-date)
//!                          [--faults none|swarm] [--ticks N] [--liveness-ticks N]
//!                          [--plant BUG] [--strict-shutdown] [--jobs N]
//! <program> compare <event-log-a> <event-log-b>
//! <program> list
//! <program> help            (also --help, -h)
//! ```
//!
//! `run` prints a banner (scenario, seed and every fault parameter), the result, a line
//! `trace_hash=<32 hex digits>` and, as its **last line**, the exact command that replays the
//! run. `sweep` runs the seeds `S..S+N-1` of one scenario, prints one line per failing seed
//! with its replay command, a fault-coverage summary (how many seeds injected each kind) and
//! a total. `soak` is the unattended mode: a sweep of every chosen scenario (`all`: every
//! scenario the binary has) with swarm faults by default, its start seed given or derived
//! from a commit id (CI: each commit explores new seeds, reproducibly) or from today's date
//! (a nightly run); it prints the command that repeats it, every failing seed with its
//! replay command, progress once a minute, and a summary. `compare` finds the first event
//! where two event logs (from `--trace-out`) differ. `--plant` switches on a bug a scenario
//! keeps for testing that sweeps find failures (not for normal use); `list` names them.
//!
//! Exit codes: 0 pass (every seed passed; compare: identical logs), 1 compare: the logs
//! differ, 2 usage error or a file that cannot be read or written, 127 panic in the
//! framework, 128 liveness failure, 129 checker violation (sweep and soak: the first failing
//! seed's code). Results go to stdout, errors to stderr.
//!
//! Every number is checked: lengths are at most [`TICKS_MAX`], a seed range must fit in
//! `u64`, and nothing the command line asks for can make the simulator's memory grow with a
//! run's length (the event log keeps its last `--trace-keep` lines; `compare` streams).
//!
//! Wall-clock time is read here, to report speed and date a soak; never inside a simulation.

mod compare;
mod run;
mod sweep;

use crate::config::{EVENT_LOG_MAX_DEFAULT, FaultMode, FaultSet, SimConfig, TICKS_MAX};
use crate::sim::Report;
use std::io::Write;

/// Exit code: the run passed, every seed passed, or two logs are identical.
pub const EXIT_PASS: i32 = 0;
/// Exit code of `compare` when the logs differ.
pub const EXIT_DIFFERENT: i32 = 1;
/// Exit code of a usage error, or of a file that cannot be read or written.
pub const EXIT_USAGE: i32 = 2;

/// Options a scenario gets besides the [`SimConfig`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScenarioOptions {
    /// A planted bug to switch on (test-only; one of the scenario's [`ScenarioEntry::plants`]).
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
    /// The planted bugs `--plant` accepts for it (test-only).
    pub plants: &'static [&'static str],
    /// Builds the system and runs it.
    pub run: fn(&SimConfig, &ScenarioOptions) -> Report,
}

/// Parses the process arguments, runs, and exits with the outcome's code.
pub fn main(program: &str, entries: &[ScenarioEntry]) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = run_cli(program, &args, entries, &mut out, &mut err);
    let _ = out.flush();
    let _ = err.flush();
    std::process::exit(code)
}

/// Runs one command line, writing results to `out` and errors to `err`; returns the exit
/// code.
pub fn run_cli(
    program: &str,
    args: &[String],
    entries: &[ScenarioEntry],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if args.is_empty() {
        let _ = writeln!(err, "error: missing command\n\n{}", usage(program, entries));
        return EXIT_USAGE;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") || args[0] == "help" {
        let _ = write!(out, "{}", usage(program, entries));
        return EXIT_PASS;
    }
    let a = match parse(args).and_then(|a| check(a, entries)) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "error: {e}\n(`{program} --help` shows the usage)");
            return EXIT_USAGE;
        }
    };
    match a.command {
        Command::List => {
            list(out, entries);
            EXIT_PASS
        }
        Command::Compare => compare::compare(&a.files[0], &a.files[1], out, err),
        Command::Run => run::run(out, err, program, &a),
        Command::Sweep => sweep::sweep(out, program, &a),
        Command::Soak => sweep::soak(out, err, program, &a),
    }
}

/// The commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Run,
    Sweep,
    Soak,
    Compare,
    List,
}

impl Command {
    fn from_name(name: &str) -> Option<Command> {
        Some(match name {
            "run" | "replay" => Command::Run,
            "sweep" => Command::Sweep,
            "soak" => Command::Soak,
            "compare" => Command::Compare,
            "list" => Command::List,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Sweep => "sweep",
            Command::Soak => "soak",
            Command::Compare => "compare",
            Command::List => "list",
        }
    }

    /// Whether the command takes `option`.
    fn takes(self, option: &str) -> bool {
        const RUN_OPTIONS: [&str; 5] = [
            "--faults",
            "--ticks",
            "--liveness-ticks",
            "--plant",
            "--strict-shutdown",
        ];
        let own: &[&str] = match self {
            Command::Run => &["--seed", "--trace-out", "--trace-keep"],
            Command::Sweep => &["--seeds", "--start", "--jobs"],
            Command::Soak => &[
                "--seeds",
                "--start",
                "--seeds-from-commit",
                "--seeds-from-date",
                "--jobs",
            ],
            Command::Compare | Command::List => return false,
        };
        RUN_OPTIONS.contains(&option) || own.contains(&option)
    }
}

/// Where a sweep's or soak's first seed comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StartFrom {
    Given,
    Commit(String),
    Date(String),
}

/// A parsed and checked command line.
struct Args {
    command: Command,
    /// The scenarios to run (one, or every one for `soak all`).
    entries: Vec<ScenarioEntry>,
    files: Vec<String>,
    seed: u64,
    seeds: u64,
    start: u64,
    start_from: StartFrom,
    faults: FaultMode,
    ticks: Option<u64>,
    liveness_ticks: Option<u64>,
    trace_out: Option<String>,
    trace_keep: usize,
    plant: Option<String>,
    strict_shutdown: bool,
    jobs: usize,
    /// The options given, for the per-command check.
    given: Vec<&'static str>,
    positional: Vec<String>,
    commit: Option<String>,
    date: bool,
}

impl Args {
    fn has(&self, option: &str) -> bool {
        self.given.contains(&option)
    }
}

/// Every option, with whether it takes a value (`--help` and `-h` are handled first).
const OPTIONS: [(&str, bool); 13] = [
    ("--seed", true),
    ("--seeds", true),
    ("--start", true),
    ("--seeds-from-commit", true),
    ("--seeds-from-date", false),
    ("--faults", true),
    ("--ticks", true),
    ("--liveness-ticks", true),
    ("--trace-out", true),
    ("--trace-keep", true),
    ("--plant", true),
    ("--strict-shutdown", false),
    ("--jobs", true),
];

/// Threads `--jobs` may ask for.
const JOBS_MAX: usize = 256;

fn number(name: &str, value: &str) -> Result<u64, String> {
    value.parse::<u64>().map_err(|_| {
        format!(
            "{name} takes a whole number from 0 to {}, not {value:?}",
            u64::MAX
        )
    })
}

fn parse(args: &[String]) -> Result<Args, String> {
    let command = Command::from_name(&args[0]).ok_or_else(|| {
        format!(
            "unknown command {:?} (commands: run, sweep, soak, compare, list, help)",
            args[0]
        )
    })?;
    let mut a = Args {
        command,
        entries: Vec::new(),
        files: Vec::new(),
        seed: 0,
        seeds: 0,
        start: 0,
        start_from: StartFrom::Given,
        faults: if command == Command::Soak {
            FaultMode::Swarm
        } else {
            FaultMode::None
        },
        ticks: None,
        liveness_ticks: None,
        trace_out: None,
        trace_keep: EVENT_LOG_MAX_DEFAULT,
        plant: None,
        strict_shutdown: false,
        jobs: 1,
        given: Vec::new(),
        positional: Vec::new(),
        commit: None,
        date: false,
    };
    let mut it = args[1..].iter();
    while let Some(arg) = it.next() {
        let Some(&(name, takes_value)) = OPTIONS.iter().find(|(n, _)| n == arg) else {
            if arg.starts_with('-') && arg.len() > 1 {
                return Err(format!("unknown option {arg}"));
            }
            a.positional.push(arg.clone());
            continue;
        };
        if !a.given.contains(&name) {
            a.given.push(name);
        }
        let value = if takes_value {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .as_str()
        } else {
            ""
        };
        match name {
            "--seed" => a.seed = number(name, value)?,
            "--seeds" => a.seeds = number(name, value)?,
            "--start" => a.start = number(name, value)?,
            "--seeds-from-commit" => a.commit = Some(value.to_string()),
            "--seeds-from-date" => a.date = true,
            "--faults" => {
                a.faults = match value {
                    "none" => FaultMode::None,
                    "swarm" => FaultMode::Swarm,
                    other => return Err(format!("--faults takes none or swarm, not {other:?}")),
                }
            }
            "--ticks" => a.ticks = Some(number(name, value)?),
            "--liveness-ticks" => a.liveness_ticks = Some(number(name, value)?),
            "--trace-out" => a.trace_out = Some(value.to_string()),
            "--trace-keep" => {
                a.trace_keep = usize::try_from(number(name, value)?).unwrap_or(usize::MAX);
            }
            "--plant" => a.plant = Some(value.to_string()),
            "--strict-shutdown" => a.strict_shutdown = true,
            "--jobs" => a.jobs = usize::try_from(number(name, value)?).unwrap_or(usize::MAX),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

/// Checks the options against the command and the scenarios; fills in what they imply.
fn check(mut a: Args, entries: &[ScenarioEntry]) -> Result<Args, String> {
    let command = a.command.name();
    if let Some(o) = a.given.iter().find(|o| !a.command.takes(o)) {
        return Err(format!("{command} does not take {o}"));
    }
    if let Some(t) = a.ticks
        && t > TICKS_MAX
    {
        return Err(format!("--ticks must be at most {TICKS_MAX}, not {t}"));
    }
    if let Some(t) = a.liveness_ticks
        && !(1..=TICKS_MAX).contains(&t)
    {
        return Err(format!(
            "--liveness-ticks must be from 1 to {TICKS_MAX}, not {t}"
        ));
    }
    if !(1..=JOBS_MAX).contains(&a.jobs) {
        return Err(format!(
            "--jobs must be from 1 to {JOBS_MAX}, not {}",
            a.jobs
        ));
    }
    match a.command {
        Command::List => {
            if let Some(p) = a.positional.first() {
                return Err(format!("list takes no arguments, not {p:?}"));
            }
        }
        Command::Compare => {
            if a.positional.len() != 2 {
                return Err(format!(
                    "compare takes two event logs, not {}",
                    a.positional.len()
                ));
            }
            a.files = core::mem::take(&mut a.positional);
        }
        Command::Run | Command::Sweep | Command::Soak => {
            a.entries = scenarios_named(&a, entries)?;
            check_run_options(&mut a)?;
        }
    }
    Ok(a)
}

/// The scenarios the positional argument names (`all` for every one, `soak` only).
fn scenarios_named(a: &Args, entries: &[ScenarioEntry]) -> Result<Vec<ScenarioEntry>, String> {
    let command = a.command.name();
    let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    let name = match a.positional.as_slice() {
        [] => {
            return Err(format!(
                "{command} needs a scenario ({})",
                if a.command == Command::Soak {
                    format!("all, {}", names.join(", "))
                } else {
                    names.join(", ")
                }
            ));
        }
        [name] => name.as_str(),
        [_, extra, ..] => return Err(format!("unexpected argument {extra:?}")),
    };
    if a.command == Command::Soak && name == "all" {
        return Ok(entries.to_vec());
    }
    match entries.iter().find(|e| e.name == name) {
        Some(e) => Ok(vec![*e]),
        None => Err(format!(
            "unknown scenario {name:?} (scenarios: {})",
            names.join(", ")
        )),
    }
}

fn check_run_options(a: &mut Args) -> Result<(), String> {
    if let Some(p) = &a.plant {
        for e in &a.entries {
            if !e.plants.contains(&p.as_str()) {
                return Err(if e.plants.is_empty() {
                    format!("unknown planted bug {p:?}: scenario {} has none", e.name)
                } else {
                    format!(
                        "unknown planted bug {p:?} for scenario {} (valid: {})",
                        e.name,
                        e.plants.join(", ")
                    )
                });
            }
        }
    }
    match a.command {
        Command::Run => {
            if !a.has("--seed") {
                return Err("run needs --seed <u64>".to_string());
            }
            if a.has("--trace-keep") && a.trace_out.is_none() {
                return Err("--trace-keep needs --trace-out".to_string());
            }
            if a.trace_keep == 0 {
                return Err("--trace-keep must be at least 1".to_string());
            }
        }
        Command::Sweep | Command::Soak => {
            if !a.has("--seeds") {
                return Err(format!("{} needs --seeds <N>", a.command.name()));
            }
            if a.seeds == 0 {
                return Err("--seeds must be at least 1".to_string());
            }
            if a.command == Command::Soak {
                a.start_from = soak_start(a)?;
            }
            if a.start.checked_add(a.seeds - 1).is_none() {
                return Err(format!(
                    "--start {} with --seeds {} goes past the last seed, {}",
                    a.start,
                    a.seeds,
                    u64::MAX
                ));
            }
        }
        Command::Compare | Command::List => {}
    }
    Ok(())
}

/// A soak's first seed: given, or derived from a commit id or today's date.
fn soak_start(a: &mut Args) -> Result<StartFrom, String> {
    let sources =
        usize::from(a.has("--start")) + usize::from(a.commit.is_some()) + usize::from(a.date);
    if sources != 1 {
        return Err(
            "soak takes exactly one of --start <S>, --seeds-from-commit <ID>, --seeds-from-date"
                .to_string(),
        );
    }
    if let Some(id) = &a.commit {
        let id = id.trim().to_ascii_lowercase();
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            return Err(format!(
                "--seeds-from-commit takes a commit id (e.g. `git rev-parse HEAD`), not {id:?}"
            ));
        }
        a.start = sweep::start_seed_for("commit", &id);
        return Ok(StartFrom::Commit(id));
    }
    if a.date {
        let today = sweep::today_utc();
        a.start = sweep::start_seed_for("date", &today);
        return Ok(StartFrom::Date(today));
    }
    Ok(StartFrom::Given)
}

fn list(out: &mut dyn Write, entries: &[ScenarioEntry]) {
    for e in entries {
        let _ = writeln!(out, "{:<12} {}", e.name, e.about);
        if !e.plants.is_empty() {
            let _ = writeln!(
                out,
                "{:<12} planted bugs (test-only): {}",
                "",
                e.plants.join(", ")
            );
        }
    }
}

fn usage(program: &str, entries: &[ScenarioEntry]) -> String {
    let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    format!(
        "usage:
  {program} run <scenario> --seed <u64> [--faults none|swarm] [--ticks N]
      [--liveness-ticks N] [--trace-out FILE] [--trace-keep N] [--plant BUG] [--strict-shutdown]
  {program} sweep <scenario> --seeds <N> [--start <S>] [--faults none|swarm] [--ticks N]
      [--liveness-ticks N] [--plant BUG] [--strict-shutdown] [--jobs N]
  {program} soak <scenario|all> --seeds <N> (--start <S> | --seeds-from-commit <ID> | --seeds-from-date)
      [--faults none|swarm] [--ticks N] [--liveness-ticks N] [--plant BUG] [--strict-shutdown] [--jobs N]
  {program} compare <event-log-a> <event-log-b>
  {program} list
  {program} help

run      one seed; prints the result, trace_hash=... and, last, the command that replays it
sweep    seeds S..S+N-1 (default S=0); prints each failing seed with its replay command
soak     the unattended mode: sweeps every chosen scenario (faults swarm unless --faults none),
         from a start seed given or derived from a commit id or today's date (UTC); prints
         the command that repeats it, failing seeds with replay commands, and a summary
compare  the first event where two event logs written by --trace-out differ

--ticks N           faulty phase length (default 5000; at most {TICKS_MAX})
--liveness-ticks N  ticks to reach the goal after faults stop (default 20000; 1 to {TICKS_MAX})
--trace-out FILE    write the event log (its last --trace-keep lines, default {EVENT_LOG_MAX_DEFAULT})
--strict-shutdown   a resource leaked at the final shutdown fails the run
--jobs N            seeds run on N threads (default 1; output order may vary)
--plant BUG         switch on a scenario's planted bug (test-only; `list` names them)

exit codes: 0 pass (every seed passed; compare: identical), 1 compare: the logs differ,
  2 usage error or unreadable/unwritable file, 127 framework panic, 128 liveness failure,
  129 checker violation (sweep, soak: the first failing seed's code)
scenarios: {}
",
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
    c.event_log_max = a.trace_keep;
    c.strict_shutdown = a.strict_shutdown;
    c
}

/// The command that replays `seed` of `scenario` with the same options.
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

fn options_of(a: &Args) -> ScenarioOptions {
    ScenarioOptions {
        plant: a.plant.clone(),
    }
}
