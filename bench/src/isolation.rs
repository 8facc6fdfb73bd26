//! B7 — latency isolation: light requests next to handlers that burn 50 ms of CPU each.
//!
//! The server process owns both CPUs. One side serves B3's echo at a fixed offered rate (the
//! light requests); the other runs heavy work: handler calls that each burn 50 ms of CPU
//! (measured on the thread's CPU clock, not slept), back to back, one core's worth.
//!
//! - **tina**: two shards via `tina_linux::run`, shard 0 on CPU 0 with the echo listener
//!   (`tina_examples::echo`), shard 1 on CPU 1 with one heavy isolate that burns 50 ms in
//!   every handler call and returns `Effect::Yield` (run again next tick), so it is never idle.
//!   Default `ShardConfig` and `Config` (io_uring backend).
//! - **tokio**: a multi-thread runtime with 2 workers (threads not pinned: the process may use
//!   CPUs 0 and 1), one task per connection echoing, plus one heavy task looping
//!   `burn 50 ms; yield_now().await` — the same mix done naively in tasks.
//!
//! Each system also runs a baseline without the heavy work, so the effect of the heavy load is
//! visible. Rounds interleave all four (tina + heavy, tokio + heavy, tina, tokio). The load
//! generator is B3's fixed-rate client (latency from the scheduled send time); since both CPUs
//! belong to the server, it is pinned to CPU 0, the light side's CPU.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tina_core::{CrashReason, Ctx, Effect, Isolate, Message};

use crate::harness::{Common, Row, Spread, Summary, pin_current_thread, thread_cpu_ns, verdict};
use crate::tcp::{
    CLIENT_BOUND_PER_MILLE, Latency, Server, fixed_rate, micros_whole_spread, per_round,
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

/// The four server variants, in the order one round runs them.
const SYSTEMS: [&str; 4] = ["tina-heavy", "tokio-heavy", "tina", "tokio"];
const LABELS: [&str; 4] = [
    "tina, heavy shard busy",
    "tokio multi-thread, heavy task busy",
    "tina, baseline (no heavy work)",
    "tokio multi-thread, baseline (no heavy work)",
];

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

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
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
    match system {
        "tina-heavy" => serve_tina(addr, true),
        "tina" => serve_tina(addr, false),
        "tokio-heavy" => serve_tokio(addr, true),
        "tokio" => serve_tokio(addr, false),
        _ => {
            eprintln!("unknown system `{system}`");
            ExitCode::FAILURE
        }
    }
}

fn serve_tina(addr: SocketAddr, heavy: bool) -> ExitCode {
    use tina_core::{ChildSpec, GroupSpec, Restart, ShardSpec, SystemSpec, TypeSpec};
    use tina_examples::echo::{Connection, ListenArgs, Listener};
    let connections = 64;
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(connections),
        TypeSpec::of::<Heavy>("heavy"),
    ];
    let light = [ChildSpec::isolate::<Listener>(
        &ListenArgs::new(addr, 1024),
        Restart::Permanent,
    )];
    let busy = [ChildSpec::isolate::<Heavy>(
        &u32::from(heavy),
        Restart::Permanent,
    )];
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

fn serve_tokio(addr: SocketAddr, heavy: bool) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        if heavy {
            tokio::spawn(async {
                loop {
                    burn();
                    tokio::task::yield_now().await;
                }
            });
        }
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    })
}

/// Runs B7 and adds its rows to the summary.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    let (warmup, measure) = if common.quick {
        (Duration::from_millis(300), Duration::from_secs(1))
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
         {HEAVY_CPU} runs one heavy isolate (`Effect::Yield` after every burn); default \
         `ShardConfig` and `Config`. Tokio: multi-thread runtime with 2 workers (not pinned, \
         both CPUs allowed), one task per connection plus one heavy task (`burn; \
         yield_now().await`). The server owns both CPUs, so the load generator (one thread) is \
         pinned to CPU {LIGHT_CPU}, the light side's CPU, sharing it with Tina's shard 0. \
         {} round(s) of {} ms warm-up + {} ms measured, the four runs interleaved per round.\n",
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
    println!("| system | p50 µs | p99 µs | p99.9 µs | client CPU (max) | requests per round |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (k, label) in LABELS.iter().enumerate() {
        let client = samples[k]
            .iter()
            .map(|l| l.client_per_mille)
            .max()
            .unwrap_or(0);
        println!(
            "| {label} | {} | {} | {} | {}%{} | {} |",
            micros_whole_spread(&p50[k]),
            micros_whole_spread(&p99[k]),
            micros_whole_spread(&p999[k]),
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
    println!("| ratio tina ÷ tokio, per round | p50 | p99 | p99.9 |");
    println!("|---|---:|---:|---:|");
    for (name, t, k) in [("heavy work running", 0, 1), ("baseline", 2, 3)] {
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
    let ratios = per_round(&p99[0], &p99[1]);
    let us = |v: &[u64]| (Spread::of(v).median + 500) / 1000;
    summary.add(Row {
        id: "B7 isolation".into(),
        metric: format!("p99 µs of light requests ({RATE}/s) beside 50 ms CPU burns"),
        tina: format!("{} (baseline {})", us(&p99[0]), us(&p99[2])),
        peer: format!(
            "tokio multi-thread (2 workers) {} (baseline {})",
            us(&p99[1]),
            us(&p99[3])
        ),
        ratio: crate::harness::ratio_spread(&ratios),
        target: verdict("lower than tokio", Spread::of(&ratios).median < 1000),
    });
}
