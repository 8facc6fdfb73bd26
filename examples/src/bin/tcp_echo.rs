//! A multi-shard TCP echo server on tina-linux.
//!
//! ```text
//! cargo run --release -p tina-examples --bin tcp_echo -- --listen 127.0.0.1:7000 --shards 2 [--backend uring|epoll]
//! cargo run --release -p tina-examples --bin tcp_echo -- --demo
//! ```
//!
//! Every shard runs a `Listener` bound with `SO_REUSEPORT` to the same address, so the kernel
//! spreads connections across shards; each connection is a `Connection` isolate echoing
//! every byte back, zero-copy. SIGINT/SIGTERM drain and exit 0; SIGUSR1 prints stats; SIGUSR2
//! revives quarantined shards. The signals are blocked first thing in `main`, so one that
//! arrives while the server starts waits until the runtime handles it. "serving echo on …"
//! is printed once every shard has booted; a server that fails to start says so and exits 1.
//! `--chaos-poison` arms the containment demo's trigger (a received chunk that starts with
//! byte 0xFF panics its connection); without it every byte is echoed.
//!
//! `--demo` runs by itself for about ten seconds and exits: in-process clients echo
//! continuously; on every shard a chaos client connects, sends the poison byte (the server's
//! connection panics — only that one), and crashes on purpose every 2.5 s, restarted each time
//! by supervision; on the last shard the chaos client crash-loops for a while, so the shard
//! recovers, recovers again, and is quarantined — while the other shards keep serving the
//! clients. The demo then revives it (what SIGUSR2 does), shuts down gracefully, and prints a
//! summary.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use tina_core::io::{Domain, Fd, IoKind, IoOp, SocketKind};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart,
    ShardConfig, ShardSpec, SystemSpec, TypeSpec, UserTag,
};
use tina_examples::echo::{Connection, ListenArgs, Listener, POISON_BYTE};
use tina_linux::{Backend, Config, Control, RunError, RunReport, ShardState, run, run_with};

const SYNOPSIS: &str = "\
usage: tcp_echo [--listen ADDR:PORT] [--shards N] [--backend auto|uring|epoll]
                [--connections N] [--chaos-poison]
       tcp_echo --demo [--shards N] [--backend auto|uring|epoll]
       tcp_echo --help";

const DETAILS: &str = "\
  --listen ADDR:PORT  address to serve on (default 127.0.0.1:7000; IPv6 as [::1]:7000)
  --shards N          shards, one thread each (1 to 64, default 2)
  --backend B         auto (io_uring, else epoll), uring or epoll (default auto)
  --connections N     connections per shard (1 to 65471, default 1024); each keeps a
                      16 KiB receive buffer
  --chaos-poison      arm the containment demo's trigger: a received chunk that starts
                      with byte 0xFF panics its connection (by default every byte is echoed)
  --demo              run the self-contained containment demo for about ten seconds

Signals: SIGINT/SIGTERM shut down gracefully (a second one forces), SIGUSR1 prints stats,
SIGUSR2 revives quarantined shards.
Exit status: 0 after a clean shutdown, 1 if the server failed to start or was stopped by
force, 2 for a usage error.";

/// Shards at most.
const SHARDS_MAX: usize = 64;
/// I/O buffers each shard has beyond one per connection.
const BUFFERS_EXTRA: u32 = 64;
/// Connections per shard at most: a shard has at most 65535 I/O buffers.
const CONNECTIONS_MAX: u32 = u16::MAX as u32 - BUFFERS_EXTRA;

/// Every line this program writes to stderr while it runs goes through here: queued for the
/// runtime's log writer, never waiting for stderr (a stalled log reader must not stop the
/// server or its exit; a line it cannot take is dropped and counted).
fn say(args: fmt::Arguments<'_>) {
    tina_linux::log_line!("tcp_echo: {args}");
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
        "tcp_echo: {reason}\n{SYNOPSIS}\n(--help for details)"
    );
    std::process::exit(2);
}

struct Options {
    listen: SocketAddr,
    shards: usize,
    backend: Backend,
    connections: u32,
    chaos_poison: bool,
    demo: bool,
}

/// What the command line asks for.
enum Parsed {
    Help,
    Run(Options),
}

/// Parses and checks the arguments; an error names the flag at fault.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut o = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 7000)),
        shards: 2,
        backend: Backend::Auto,
        connections: 1024,
        chaos_poison: false,
        demo: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--listen" => {
                let v = value()?;
                o.listen = v.parse().map_err(|_| {
                    format!("--listen {v}: not an address like 127.0.0.1:7000 or [::1]:7000")
                })?;
            }
            "--shards" => o.shards = number(&flag, &value()?, 1, SHARDS_MAX as u64)? as usize,
            "--backend" => {
                let v = value()?;
                o.backend = Backend::parse(&v)
                    .ok_or_else(|| format!("--backend {v}: expected auto, uring or epoll"))?;
            }
            "--connections" => {
                o.connections = number(&flag, &value()?, 1, u64::from(CONNECTIONS_MAX))? as u32;
            }
            "--chaos-poison" => o.chaos_poison = true,
            "--demo" => o.demo = true,
            _ => return Err(format!("unknown argument '{flag}'")),
        }
    }
    Ok(Parsed::Run(o))
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

/// Per-shard sizes for an echo server with `connections` connection isolates per shard:
/// every connection keeps one receive buffer in flight and may submit once per tick.
fn shard_config(connections: u32) -> ShardConfig {
    ShardConfig {
        io_buffer_count: connections + BUFFERS_EXTRA,
        io_buffer_size: 16 * 1024,
        io_submissions_per_tick_max: connections + BUFFERS_EXTRA,
        ..ShardConfig::DEFAULT
    }
}

fn main() {
    // First of all: a control signal that arrives while the program starts stays pending
    // until the runtime handles it, instead of killing the process.
    tina_linux::block_signals();
    let o = match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            println!("{SYNOPSIS}\n\n{DETAILS}");
            std::process::exit(0);
        }
        Err(reason) => usage_error(&reason),
    };
    if o.demo {
        // The demo stops its runtime itself; Ctrl-C simply ends it.
        tina_linux::unblock_signals();
        demo(&o);
        return;
    }
    serve(&o);
}

/// Runs the echo server until a signal stops it; exits with the status the usage gives.
fn serve(o: &Options) -> ! {
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(o.connections),
    ];
    let mut listen = ListenArgs::new(o.listen, 1024);
    if o.chaos_poison {
        listen = listen.with_poison_trigger();
    }
    let children = [ChildSpec::isolate::<Listener>(&listen, Restart::Permanent)];
    let shard = ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(o.connections),
    };
    let shards = vec![shard; o.shards];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = shard_config(o.connections);
    if let Err(e) = spec.validate() {
        // The flags' ranges keep the spec valid; this names the rule if they ever do not.
        say(format_args!(
            "--shards {} --connections {} make an invalid system: {e}",
            o.shards, o.connections
        ));
        std::process::exit(2);
    }
    let config = Config {
        backend: o.backend,
        ..Config::default()
    };
    let control = Control::new();
    // "serving" is said once every shard has booted, never before: a listener that cannot
    // bind makes `run_with` return the error instead.
    let result = run_with(&spec, &config, &control, |booted| {
        say(format_args!(
            "serving echo on {} with {} shard(s) on the {} backend",
            o.listen,
            o.shards,
            booted.backend.name()
        ));
    });
    exit(report_end(result));
}

/// Says how the run ended; returns the exit status.
fn report_end(result: Result<RunReport, RunError>) -> i32 {
    match result {
        Ok(report) => {
            let served: u64 = report.stats.iter().map(|s| s.counters.spawns).sum();
            say(format_args!(
                "stopped ({} backend, {}); {} isolates spawned in total",
                report.backend.name(),
                if report.clean { "clean" } else { "forced" },
                served
            ));
            if report.clean { 0 } else { 1 }
        }
        Err(e) => {
            say(format_args!("failed to start: {e}"));
            1
        }
    }
}

// ───────────────────────────── the demo ─────────────────────────────

/// The chaos client's arguments.
#[derive(Clone, Copy, Debug)]
struct ChaosArgs {
    /// The echo server.
    server: SocketAddr,
    /// The doomed shard's client: crash-loop while the clock is in `[from, until)` ticks.
    crash_loop: Option<(u64, u64)>,
}

const CHAOS_CRASH: UserTag = UserTag::new(0x50);
/// A chaos client crashes this often (well within its group's restart budget).
const CHAOS_PERIOD: Duration = Duration::from_millis(2_500);

/// Connects to the echo server, sends the poison byte (so a server connection panics), and
/// crashes on purpose a little later. On the doomed shard, during its window, it crashes at
/// once instead, exhausting the restart budget until the shard is quarantined.
struct Chaos {
    args: ChaosArgs,
    socket: Fd,
}

impl Isolate for Chaos {
    type Args = ChaosArgs;

    fn init(args: &ChaosArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let now = ctx.now().ticks();
        if args
            .crash_loop
            .is_some_and(|(from, until)| (from..until).contains(&now))
        {
            // Crash on the first message: a tight crash loop.
            return Ok((
                Chaos {
                    args: *args,
                    socket: Fd(-1),
                },
                Effect::Yield,
            ));
        }
        let socket = ctx
            .socket(Domain::Ipv4, SocketKind::Stream)
            .map_err(|_| CrashReason("chaos: socket() failed"))?;
        ctx.own_fd(Some(socket));
        Ok((
            Chaos {
                args: *args,
                socket,
            },
            Effect::Io(IoOp::Connect {
                socket,
                addr: args.server,
            }),
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if self.socket.0 < 0 || msg.tag() == CHAOS_CRASH.into() {
            return Effect::Crash(CrashReason("chaos client crashes on purpose"));
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        match (c.kind, c.result) {
            (IoKind::Connect, Ok(_)) => {
                let Ok(buf) = ctx.io_buffer() else {
                    return Effect::Crash(CrashReason("chaos: no buffer"));
                };
                if let Ok(bytes) = ctx.io_buffer_mut(buf) {
                    bytes[0] = POISON_BYTE;
                }
                Effect::Io(IoOp::Send {
                    socket: self.socket,
                    buf,
                    len: 1,
                })
            }
            _ => {
                let _ = ctx.start_timer(CHAOS_PERIOD, CHAOS_CRASH);
                let _ = self.args;
                Effect::Receive
            }
        }
    }
}

struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    stop: AtomicBool,
}

/// One client thread: connect, echo 1 KiB a few times, reconnect; count outcomes.
fn client(addr: SocketAddr, tally: &Tally, seed: u8) {
    let mut out = [0u8; 1024];
    let mut back = [0u8; 1024];
    let mut round = 0u32;
    while !tally.stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, StdDuration::from_millis(500)) else {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(StdDuration::from_millis(20));
            continue;
        };
        let _ = s.set_read_timeout(Some(StdDuration::from_millis(500)));
        let _ = s.set_nodelay(true);
        for _ in 0..20 {
            round = round.wrapping_add(1);
            for (i, b) in out.iter_mut().enumerate() {
                *b = (i as u32 ^ round ^ u32::from(seed)) as u8 & 0x7F;
            }
            let ok = s.write_all(&out).is_ok() && s.read_exact(&mut back).is_ok() && back == out;
            if ok {
                tally.ok.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(StdDuration::from_millis(5));
        }
    }
}

fn demo(o: &Options) {
    let shards_n = o.shards.max(2);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(7000);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let connections = 256;
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(connections),
        TypeSpec::of::<Chaos>("chaos"),
    ];
    let normal = ChaosArgs {
        server: addr,
        crash_loop: None,
    };
    let doomed = ChaosArgs {
        crash_loop: Some((3_000, 6_000)),
        ..normal
    };
    let listen = ListenArgs::new(addr, 1024).with_poison_trigger();
    let calm_children = [
        ChildSpec::isolate::<Listener>(&listen, Restart::Permanent),
        ChildSpec::isolate::<Chaos>(&normal, Restart::Permanent),
    ];
    let doomed_children = [
        ChildSpec::isolate::<Listener>(&listen, Restart::Permanent),
        ChildSpec::isolate::<Chaos>(&doomed, Restart::Permanent),
    ];
    let mut shards: Vec<ShardSpec> = (0..shards_n - 1)
        .map(|_| ShardSpec {
            root: GroupSpec::one_for_one(&calm_children).dynamic(connections),
        })
        .collect();
    shards.push(ShardSpec {
        root: GroupSpec::one_for_one(&doomed_children).dynamic(connections),
    });
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = shard_config(connections);
    // The runtime runs beside this thread, which stops it: no signal handling (Ctrl-C
    // simply ends the demo).
    let config = Config {
        backend: o.backend,
        signals: false,
        ..Config::default()
    };
    let control = Control::new();
    let tally = Tally {
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    println!(
        "demo: echo on {addr} with {shards_n} shards; chaos clients crash every 2.5 s; shard {} \
         crash-loops from t=3 s to t=6 s",
        shards_n - 1
    );
    let result = std::thread::scope(|scope| {
        let runtime = scope.spawn(|| run(&spec, &config, &control));
        if !control.wait_running(StdDuration::from_secs(10)) {
            control.shutdown();
            return runtime.join().ok();
        }
        println!(
            "demo: booted on the {} backend",
            control.backend().map_or("?", |b| b.name())
        );
        for seed in 0..4u8 {
            let tally = &tally;
            scope.spawn(move || client(addr, tally, seed));
        }
        let start = StdInstant::now();
        let mut revived = false;
        let mut quarantine_seen = false;
        let mut last_ok = 0;
        for second in 1..=11u32 {
            std::thread::sleep(StdDuration::from_secs(1));
            let ok = tally.ok.load(Ordering::Relaxed);
            let stats = control.stats();
            let states: Vec<String> = stats
                .iter()
                .map(|s| {
                    format!(
                        "s{}={:?}(crashes {}, panics {}, restarts {}, recoveries {})",
                        s.shard,
                        s.state,
                        s.counters.crashes,
                        s.counters.panics,
                        s.counters.restarts,
                        s.counters.shard_recoveries
                    )
                })
                .collect();
            println!(
                "demo t={second:>2}s: {} echoes in the last second; {}",
                ok - last_ok,
                states.join(" ")
            );
            last_ok = ok;
            let quarantined = stats.iter().any(|s| s.state == ShardState::Quarantined);
            if quarantined && !quarantine_seen {
                quarantine_seen = true;
                println!(
                    "demo: shard {} is quarantined; the other shards keep serving",
                    shards_n - 1
                );
            }
            if quarantine_seen && !revived && second >= 8 {
                println!("demo: reviving the quarantined shard (what SIGUSR2 does)");
                control.revive();
                revived = true;
            }
        }
        tally.stop.store(true, Ordering::Relaxed);
        println!(
            "demo: graceful shutdown after {:.1} s",
            start.elapsed().as_secs_f64()
        );
        control.shutdown();
        runtime.join().ok()
    });
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    match result {
        Some(Ok(report)) => {
            let c = |f: fn(&tina_core::Counters) -> u64| -> u64 {
                report.stats.iter().map(|s| f(&s.counters)).sum()
            };
            println!(
                "demo: done ({} backend, {} shutdown): {ok} echoes ok, {failed} interrupted \
                 (connections cut by crashes and recoveries); server: {} panics trapped, {} \
                 crashes, {} restarts, {} shard recoveries",
                report.backend.name(),
                if report.clean { "clean" } else { "forced" },
                c(|c| c.panics),
                c(|c| c.crashes),
                c(|c| c.restarts),
                c(|c| c.shard_recoveries),
            );
            let _ = (o.listen, o.connections);
            exit(if report.clean && ok > 0 { 0 } else { 1 });
        }
        Some(Err(e)) => {
            say(format_args!("demo: {e}"));
            exit(1);
        }
        None => {
            say(format_args!("demo: the runtime thread panicked"));
            exit(1);
        }
    }
}
