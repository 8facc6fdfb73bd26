//! B7 — latency isolation: light requests next to handlers that burn 50 ms of CPU each.
//!
//! The server process owns both CPUs. One side serves B3's echo at a fixed offered rate (the
//! light requests); the other runs heavy work: handler calls that each burn 50 ms of CPU
//! (measured on the thread's CPU clock, not slept), back to back, in one loop (one core's
//! worth) or in two loops (more than the heavy side's core: overcommitted).
//!
//! - **tina**: two shards via `tina_linux::run`, shard 0 on CPU 0 with the echo listener
//!   (`tina_examples::echo`), shard 1 on CPU 1 with the heavy isolates: each burns 50 ms in
//!   every handler call and returns `Effect::Yield` (run again next tick), so it is never idle.
//!   Default `ShardConfig` and `Config` (io_uring backend).
//! - **tokio**: a multi-thread runtime with 2 workers (threads not pinned: the process may use
//!   CPUs 0 and 1), one task per connection echoing, plus heavy tasks looping
//!   `burn 50 ms; yield_now().await` — the same mix done naively in tasks.
//!
//! Each system also runs a baseline without the heavy work, so the effect of the heavy load is
//! visible. Rounds interleave all six runs (one loop, two loops, baseline; Tina then tokio).
//! The load generator is B3's fixed-rate client (latency from the scheduled send time); since
//! both CPUs belong to the server, it is pinned to CPU 0, the light side's CPU.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tina_core::{CrashReason, Ctx, Effect, Isolate, Message};

use crate::harness::{Common, Row, Spread, Summary, pin_current_thread, thread_cpu_ns, verdict};
use crate::tcp::{
    CLIENT_BOUND_PER_MILLE, Latency, Server, fixed_rate, micros_whole_spread, per_round, tokio_echo,
};

/// CPU of the light side (Tina's shard 0; the load generator runs here too).
const LIGHT_CPU: usize = 0;
/// CPU of the heavy side (Tina's shard 1).
const HEAVY_CPU: usize = 1;
/// CPU time every heavy handler call burns.
const BURN: Duration = Duration::from_millis(50);
/// Light requests per second offered.
const RATE: u64 = 4_000;
/// Connections the light requests are spread over.
const CONNS: usize = 16;
/// Bytes per light request.
const SIZE: usize = 1024;

/// A heavy variant whose server used less CPU than this (per mille of one core) over a round
/// did not run its heavy work: the benchmark fails.
const HEAVY_PER_MILLE_MIN: u64 = 500;

/// The six server variants, in the order one round runs them: pairs (Tina, tokio) with one
/// heavy loop, two heavy loops, none.
const SYSTEMS: [&str; 6] = [
    "tina-heavy1",
    "tokio-heavy1",
    "tina-heavy2",
    "tokio-heavy2",
    "tina-heavy0",
    "tokio-heavy0",
];
const LABELS: [&str; 6] = [
    "tina, 1 heavy loop on shard 1",
    "tokio multi-thread, 1 heavy task",
    "tina, 2 heavy loops on shard 1",
    "tokio multi-thread, 2 heavy tasks",
    "tina, baseline (no heavy work)",
    "tokio multi-thread, baseline (no heavy work)",
];
/// Most heavy loops a variant runs.
const HEAVY_LOOPS_MAX: usize = 2;

/// Burns `BURN` of this thread's CPU time (no sleeping: the core is really busy).
fn burn() {
    let until = thread_cpu_ns() + BURN.as_nanos() as u64;
    let mut x = 0u64;
    while thread_cpu_ns() < until {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// Tina's heavy isolate: every handler call burns 50 ms of CPU, then yields so it runs again
/// next tick. With argument 0 it only waits (the baseline).
struct Heavy {
    busy: bool,
    calls: u64,
}

impl Isolate for Heavy {
    type Args = u32;

    fn init(busy: &u32, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let me = Heavy {
            busy: *busy != 0,
            calls: 0,
        };
        let first = if me.busy {
            Effect::Yield
        } else {
            Effect::Receive
        };
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        // A yielding isolate is resumed, not sent the shutdown notice: ask the shard too.
        if msg.is_shutdown() || ctx.is_shutting_down() {
            return Effect::Done;
        }
        if !self.busy {
            return Effect::Receive;
        }
        burn();
        self.calls += 1;
        std::hint::black_box(self.calls);
        Effect::Yield
    }
}

/// Lets the calling thread (and the threads it starts) run on both CPUs again: the child
/// inherits the harness's pinning to the load generator's CPU.
fn allow_both_cpus() {
    // SAFETY: the all-zero `cpu_set_t` is the empty set; `CPU_SET` writes inside it (both CPUs
    // are below `CPU_SETSIZE`); pid 0 is the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(LIGHT_CPU, &mut set);
        libc::CPU_SET(HEAVY_CPU, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc, 0,
        "sched_setaffinity(CPUs {LIGHT_CPU}, {HEAVY_CPU}) failed"
    );
}

/// The child-process side of B7: `tina-bench child isolation <system> <port>`.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let system = args.first().map(String::as_str).unwrap_or_default();
    let Some(port) = args.get(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: tina-bench child isolation <system> <port>");
        return ExitCode::FAILURE;
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    allow_both_cpus();
    let parsed = system.split_once("-heavy").and_then(|(name, loops)| {
        let loops: usize = loops.parse().ok()?;
        (loops <= HEAVY_LOOPS_MAX).then_some((name, loops))
    });
    match parsed {
        Some(("tina", loops)) => serve_tina(addr, loops),
        Some(("tokio", loops)) => serve_tokio(addr, loops),
        _ => {
            eprintln!("unknown system `{system}`");
            ExitCode::FAILURE
        }
    }
}

fn serve_tina(addr: SocketAddr, loops: usize) -> ExitCode {
    use tina_core::{ChildSpec, GroupSpec, Restart, ShardSpec, SystemSpec, TypeSpec};
    use tina_examples::echo::{Connection, ListenArgs, Listener};
    let connections = 64;
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(connections),
        TypeSpec::of::<Heavy>("heavy").capacity(HEAVY_LOOPS_MAX as u32),
    ];
    let light = [ChildSpec::isolate::<Listener>(
        &ListenArgs::new(addr, 1024),
        Restart::Permanent,
    )];
    // Always the same isolates; the baseline's stay parked in `Receive`.
    let flags: [u32; HEAVY_LOOPS_MAX] = std::array::from_fn(|i| u32::from(i < loops));
    let busy = flags.map(|flag| ChildSpec::isolate::<Heavy>(&flag, Restart::Permanent));
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&light).dynamic(connections),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&busy),
        },
    ];
    let spec = SystemSpec::new(&shards, &types);
    let config = tina_linux::Config {
        cpus: Some(vec![LIGHT_CPU, HEAVY_CPU]),
        announce: false,
        log_level: tina_core::log::Level::Warn,
        ..tina_linux::Config::default()
    };
    match tina_linux::run(&spec, &config, &tina_linux::Control::new()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tina server failed: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn serve_tokio(addr: SocketAddr, loops: usize) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        for _ in 0..loops {
            tokio::spawn(async {
                loop {
                    burn();
                    tokio::task::yield_now().await;
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        tokio_echo(listener, 16 * 1024).await
    })
}

/// Runs B7 and adds its rows to the summary.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    let (warmup, measure) = if common.quick {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (Duration::from_secs(2), Duration::from_secs(10))
    };
    let measure = common.seconds.map_or(measure, Duration::from_secs);
    println!("## B7 — latency isolation\n");
    println!(
        "Light requests: {RATE} requests/s of {SIZE} B over {CONNS} connections at a fixed \
         offered rate (B3's open-loop client, latency from the scheduled send time). Heavy \
         work: handler calls that each burn {} ms of CPU, back to back (one core's worth). \
         Tina: two shards, shard 0 on CPU {LIGHT_CPU} serves the echo, shard 1 on CPU \
         {HEAVY_CPU} runs the heavy isolates (`Effect::Yield` after every burn); default \
         `ShardConfig` and `Config`. Tokio: multi-thread runtime with 2 workers (not pinned, \
         both CPUs allowed), one task per connection plus the heavy tasks (`burn; \
         yield_now().await`). One heavy loop is one core's worth of heavy work (the headline); \
         two loops offer more than one core (Tina keeps them on shard 1's core; tokio spreads \
         them over both workers). The server owns both CPUs, so the load generator (one thread) is \
         pinned to CPU {LIGHT_CPU}, the light side's CPU, sharing it with Tina's shard 0. \
         {} round(s) of {} ms warm-up + {} ms measured, the six runs interleaved per round.\n",
        BURN.as_millis(),
        common.rounds,
        warmup.as_millis(),
        measure.as_millis(),
    );
    pin_current_thread(LIGHT_CPU);
    let mut samples: Vec<Vec<Latency>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
    for _ in 0..common.rounds {
        for (k, system) in SYSTEMS.iter().enumerate() {
            let server = Server::start("isolation", system);
            samples[k].push(fixed_rate(&server, CONNS, SIZE, RATE, warmup, measure));
            server.stop();
        }
    }
    let column = |f: fn(&Latency) -> u64| -> Vec<Vec<u64>> {
        samples.iter().map(|s| s.iter().map(f).collect()).collect()
    };
    let (p50, p99, p999) = (
        column(|l| l.p50_ns),
        column(|l| l.p99_ns),
        column(|l| l.p999_ns),
    );
    println!(
        "| system | p50 µs | p99 µs | p99.9 µs | server CPU, % of one core (min) | client CPU \
         (max) | requests per round |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (k, label) in LABELS.iter().enumerate() {
        let client = samples[k]
            .iter()
            .map(|l| l.client_per_mille)
            .max()
            .unwrap_or(0);
        let server = samples[k]
            .iter()
            .map(|l| l.server_per_mille)
            .min()
            .unwrap_or(0);
        println!(
            "| {label} | {} | {} | {} | {}% | {}%{} | {} |",
            micros_whole_spread(&p50[k]),
            micros_whole_spread(&p99[k]),
            micros_whole_spread(&p999[k]),
            server / 10,
            client / 10,
            if client > CLIENT_BOUND_PER_MILLE {
                " **client-bound**"
            } else {
                ""
            },
            Spread::of(&samples[k].iter().map(|l| l.requests).collect::<Vec<_>>()).median,
        );
    }
    println!("\nLatencies: median (min–max) over the rounds, in µs.\n");
    // The heavy variants must really have burned about a core: else the row compares nothing.
    for k in [0, 1, 2, 3] {
        for (round, l) in samples[k].iter().enumerate() {
            assert!(
                l.server_per_mille >= HEAVY_PER_MILLE_MIN,
                "{}: round {round}: the server used only {}‰ of a core; the heavy work did \
                 not run",
                LABELS[k],
                l.server_per_mille
            );
        }
    }
    println!("| ratio tina ÷ tokio, per round | p50 | p99 | p99.9 |");
    println!("|---|---:|---:|---:|");
    for (name, t, k) in [
        ("1 heavy loop", 0, 1),
        ("2 heavy loops", 2, 3),
        ("baseline", 4, 5),
    ] {
        println!(
            "| {name} | {} | {} | {} |",
            crate::harness::ratio_spread(&per_round(&p50[t], &p50[k])),
            crate::harness::ratio_spread(&per_round(&p99[t], &p99[k])),
            crate::harness::ratio_spread(&per_round(&p999[t], &p999[k])),
        );
    }
    println!(
        "\nBelow 1.00 Tina's light requests are faster. The baseline rows show what the heavy \
         work adds for each system.\n"
    );
    let us = |v: &[u64]| (Spread::of(v).median + 500) / 1000;
    for (loops, t, k) in [(1, 0, 1), (2, 2, 3)] {
        let ratios = per_round(&p99[t], &p99[k]);
        summary.add(Row {
            id: format!(
                "B7 isolation, {loops} heavy loop{}",
                if loops > 1 { "s" } else { "" }
            ),
            metric: format!("p99 µs of light requests ({RATE}/s) beside 50 ms CPU burns"),
            tina: format!("{} (baseline {})", us(&p99[t]), us(&p99[4])),
            peer: format!(
                "tokio multi-thread (2 workers) {} (baseline {})",
                us(&p99[k]),
                us(&p99[5])
            ),
            ratio: crate::harness::ratio_spread(&ratios),
            target: verdict("lower than tokio", Spread::of(&ratios).median < 1000),
        });
    }
}
