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

use std::time::Duration as StdDuration;

use tina_core::log::Level;
use tina_core::{ChildSpec, GroupSpec, Restart, ShardSpec, SystemSpec, TypeSpec};
use tina_examples::dispatcher::{Dispatcher, DispatcherArgs, WORKERS_MAX, Worker};
use tina_linux::{Backend, Config, Control, run};

fn usage() -> ! {
    eprintln!(
        "usage: dispatcher [--workers N (1..={WORKERS_MAX})] [--crash-every K] [--seconds S] \
         [--backend auto|uring|epoll] [--verbose]"
    );
    std::process::exit(2);
}

fn main() {
    let mut workers = 4u32;
    let mut crash_every = 5u32;
    let mut seconds = 3u64;
    let mut backend = Backend::Auto;
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--workers" => workers = value().parse().unwrap_or_else(|_| usage()),
            "--crash-every" => crash_every = value().parse().unwrap_or_else(|_| usage()),
            "--seconds" => seconds = value().parse().unwrap_or_else(|_| usage()),
            "--backend" => backend = Backend::parse(&value()).unwrap_or_else(|| usage()),
            "--verbose" => verbose = true,
            _ => usage(),
        }
    }
    if workers == 0 || workers as usize > WORKERS_MAX {
        usage();
    }
    let types = [
        TypeSpec::of::<Dispatcher>("dispatcher"),
        TypeSpec::of::<Worker>("worker").capacity(workers),
    ];
    let children = [ChildSpec::isolate::<Dispatcher>(
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
            .budget(1_000_000, tina_core::Duration::from_ticks(1_000)),
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
            std::process::exit(if report.clean { 0 } else { 1 });
        }
        Ok(Err(e)) => {
            eprintln!("dispatcher: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("dispatcher: the runtime thread panicked");
            std::process::exit(1);
        }
    }
}
