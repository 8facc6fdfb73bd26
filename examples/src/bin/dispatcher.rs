//! A job dispatcher with crashing workers, on tina-linux.
//!
//! ```text
//! cargo run --release -p tina-examples --bin dispatcher -- [--workers 4] [--crash-every 5] [--seconds 3] [--backend uring|epoll]
//! ```
//!
//! The dispatcher hands one job per tick to its workers in turn. Each worker crashes on every
//! k-th job; supervision restarts it with a **new handle** and it checks in again. Until it
//! does, the dispatcher's sends to the old handle fail at once with `StaleHandle` — logged and
//! counted, never delivered to the new incarnation. After `--seconds` the program shuts down
//! gracefully and prints the counters; it exits 0 on a clean shutdown.

use std::fmt;
use std::io::Write as _;
use std::time::Duration as StdDuration;

use tina_core::log::Level;
use tina_core::{ChildSpec, GroupSpec, Restart, ShardSpec, SystemSpec, TypeSpec};
use tina_examples::dispatcher::{DISPATCHER, Dispatcher, DispatcherArgs, WORKERS_MAX, Worker};
use tina_linux::{Backend, Config, Control, run};

const SYNOPSIS: &str = "\
usage: dispatcher [--workers N] [--crash-every K] [--seconds S] [--backend auto|uring|epoll]
                  [--verbose]
       dispatcher --help";

/// Every line this program writes to stderr while it runs goes through here: queued for the
/// runtime's log writer, never waiting for stderr (a stalled log reader must not stop the
/// server or its exit; a line it cannot take is dropped and counted).
fn say(args: fmt::Arguments<'_>) {
    tina_linux::log_line!("dispatcher: {args}");
}

/// Ends the process with `code`, after waiting (boundedly) for the queued lines to reach
/// stderr.
fn exit(code: i32) -> ! {
    tina_linux::log::flush(StdDuration::from_millis(500));
    std::process::exit(code);
}

/// A usage error: the reason and the synopsis on stderr, exit status 2.
fn usage_error(reason: &str) -> ! {
    // Before anything runs: a plain write, like any command-line tool.
    let _ = writeln!(
        std::io::stderr().lock(),
        "dispatcher: {reason}\n{SYNOPSIS}\n(--help for details)"
    );
    std::process::exit(2);
}

/// The help text, on stdout.
fn help() -> ! {
    println!(
        "{SYNOPSIS}\n\n  \
         --workers N      worker isolates (1 to {WORKERS_MAX}, default 4)\n  \
         --crash-every K  each worker crashes on every K-th job (0: never; default 5)\n  \
         --seconds S      how long to run (default 3)\n  \
         --backend B      auto (io_uring, else epoll), uring or epoll (default auto)\n  \
         --verbose        log every crash and restart\n\n\
         Exit status: 0 after a clean shutdown, 1 otherwise, 2 for a usage error."
    );
    std::process::exit(0);
}

struct Options {
    workers: u32,
    crash_every: u32,
    seconds: u64,
    backend: Backend,
    verbose: bool,
}

/// Parses and checks the arguments (`None`: help was asked for); an error names the flag.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        workers: 4,
        crash_every: 5,
        seconds: 3,
        backend: Backend::Auto,
        verbose: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--workers" => o.workers = number(&flag, &value()?, 1, WORKERS_MAX as u64)? as u32,
            "--crash-every" => {
                o.crash_every = number(&flag, &value()?, 0, u64::from(u32::MAX))? as u32;
            }
            "--seconds" => o.seconds = number(&flag, &value()?, 0, 1 << 32)?,
            "--backend" => {
                let v = value()?;
                o.backend = Backend::parse(&v)
                    .ok_or_else(|| format!("--backend {v}: expected auto, uring or epoll"))?;
            }
            "--verbose" => o.verbose = true,
            _ => return Err(format!("unknown argument '{flag}'")),
        }
    }
    Ok(Some(o))
}

/// `text` as a number in `min..=max`, or an error naming `flag` and the range.
fn number(flag: &str, text: &str, min: u64, max: u64) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag} {text}: expected a number from {min} to {max}"
        )),
    }
}

fn main() {
    let Options {
        workers,
        crash_every,
        seconds,
        backend,
        verbose,
    } = match parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => help(),
        Err(reason) => usage_error(&reason),
    };
    let types = [
        TypeSpec::of::<Dispatcher>("dispatcher"),
        TypeSpec::of::<Worker>("worker").capacity(workers),
    ];
    let children = [ChildSpec::named(
        DISPATCHER,
        &DispatcherArgs {
            workers,
            crash_every,
            jobs: 0,
        },
        Restart::Permanent,
    )];
    // Workers crash on purpose all the time: give the group a budget that allows it.
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children)
            .dynamic(workers)
            .budget(1_000_000, tina_core::Duration::from_secs(1)),
    }];
    let spec = SystemSpec::new(&shards, &types);
    // The runtime runs beside this thread, which stops it: no signal handling (Ctrl-C
    // simply ends the program).
    let config = Config {
        backend,
        log_level: if verbose { Level::Info } else { Level::Error },
        signals: false,
        ..Config::default()
    };
    let control = Control::new();
    println!(
        "dispatcher: {workers} workers, each crashing every {crash_every} jobs, for {seconds} s"
    );
    let result = std::thread::scope(|scope| {
        let runtime = scope.spawn(|| run(&spec, &config, &control));
        if control.wait_running(StdDuration::from_secs(10)) {
            for _ in 0..seconds {
                std::thread::sleep(StdDuration::from_secs(1));
                let s = control.stats();
                let c = &s[0].counters;
                println!(
                    "dispatcher: {} dispatches, {} worker crashes, {} restarts (new handles), \
                     {} stale sends refused",
                    c.dispatches, c.crashes, c.restarts, c.stale_deliveries
                );
            }
        }
        control.shutdown();
        runtime.join()
    });
    match result {
        Ok(Ok(report)) => {
            let c = &report.stats[0].counters;
            println!(
                "dispatcher: done ({} backend, {} shutdown): {} worker crashes, {} restarts, {} \
                 stale sends refused safely (none reached a new incarnation), {} local messages \
                 delivered (jobs, results, check-ins)",
                report.backend.name(),
                if report.clean { "clean" } else { "forced" },
                c.crashes,
                c.restarts,
                c.stale_deliveries,
                c.sends_local,
            );
            if c.stale_deliveries == 0 {
                println!(
                    "dispatcher: no send went stale this run: supervision restarts a worker \
                     within the tick it crashes, and its check-in reaches the dispatcher \
                     before the dispatcher's next job (a stale send would be refused with \
                     StaleHandle and logged)"
                );
            }
            exit(if report.clean { 0 } else { 1 });
        }
        Ok(Err(e)) => {
            say(format_args!("{e}"));
            exit(1);
        }
        Err(_) => {
            say(format_args!("the runtime thread panicked"));
            exit(1);
        }
    }
}
