//! B6 (connection half) — memory per idle TCP connection.
//!
//! Each server runs in a fresh child process (`tina-bench child conns <system> <port> <cpu>
//! <count>`) pinned to the first CPU; the harness (the client, one thread) is pinned to the
//! second. Both raise their open-descriptor limit to the hard limit. Systems, interleaved in
//! every round:
//!
//! - **tina-uring** / **tina-epoll**: the echo server of `tina_examples::echo` (a listener
//!   isolate, one connection isolate per socket, each parked with a receive pending) on one
//!   shard. Sizes that must allow `count` connections: the connection type's capacity and the
//!   root group's dynamic children are `count + 16`, and `io_buffer_count` is that `+ 64`,
//!   because every idle connection holds a receive buffer. Everything else is
//!   `ShardConfig::DEFAULT`, including `io_buffer_size` (16 KiB).
//! - **tina-uring-4k**: the same with `io_buffer_size` 4 KiB — a knob, shown because the
//!   buffers dominate Tina's memory here.
//! - **tokio**: a current-thread runtime, an accept loop (listen backlog 1024, as Tina's) and a
//!   task per connection with a 16 KiB read buffer (as in B3); **tokio-4k** with 4 KiB.
//!
//! The child prints its resident set before it starts the runtime (and, for Tina, the size of
//! the shard region the runtime will map). The harness connects one probe connection, echoes
//! once, and reads the server's RSS (`/proc/<pid>/statm`): *after boot*. It then opens `count`
//! connections in batches of [`BATCH`] (well under the listen backlog of 1024), echoes 8 bytes
//! on each (proof that each is served), and reads the RSS again with all of them idle.
//!
//! Tina maps its whole shard region at boot and touches every page of it (pre-faulted), so
//! the RSS after boot already holds every connection's slot and buffer: the growth from
//! boot to `count` connections is not the honest cost. The headline is therefore **all-in**:
//! (RSS with `count` idle connections − RSS before the runtime started) ÷ `count`, for every
//! system; the growth after boot ÷ `count` (marginal) is printed next to it. Kernel memory
//! (socket buffers) is not in any process's RSS and is the same for all.

use crate::harness::{self, Common, Row, Spread, Summary};
use crate::idle::{
    Server, pin_child, raise_nofile, ratio_text, reset_close, rss_bytes_of, serve_tina_child,
    spread_with,
};
use crate::tcp::tokio_echo;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant as StdInstant};
use tina_core::testing::TestPlatform;
use tina_core::{
    ChildSpec, GroupSpec, Restart, Shard, ShardConfig, ShardId, ShardSpec, SystemSpec, TypeSpec,
};
use tina_examples::echo::{Connection, ListenArgs, Listener};

const SYSTEMS: [&str; 5] = [
    "tina-uring",
    "tina-epoll",
    "tina-uring-4k",
    "tokio",
    "tokio-4k",
];
/// Connections opened before their echoes are checked.
const BATCH: usize = 256;
/// Room beyond the measured connections (the probe, slack).
const SLACK: u32 = 16;
/// Listen backlog of every server.
const BACKLOG: u32 = 1024;

/// Connections per run.
fn count(quick: bool) -> u32 {
    if quick { 1_000 } else { 10_000 }
}

/// Bytes of a Tina I/O buffer, or of a tokio task's read buffer.
fn buffer_size(system: &str) -> u32 {
    if system.ends_with("-4k") {
        4096
    } else {
        ShardConfig::DEFAULT.io_buffer_size
    }
}

/// Tina's spec sizes for `count` connections, as `(capacity, io_buffer_count)`.
fn tina_sizes(count: u32) -> (u32, u32) {
    let capacity = count + SLACK;
    (capacity, capacity + 64)
}

// ---------------------------------------------------------------------------------------------
// Child side.

fn serve_tina(system: &str, addr: SocketAddr, cpu: Option<usize>, count: u32) {
    let (capacity, buffers) = tina_sizes(count);
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(capacity),
    ];
    let children = [ChildSpec::isolate::<Listener>(
        &ListenArgs::new(addr, BACKLOG),
        Restart::Permanent,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(capacity),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        io_buffer_count: buffers,
        io_buffer_size: buffer_size(system),
        ..ShardConfig::DEFAULT
    };
    let region = Shard::<TestPlatform>::memory_required(&spec, ShardId(0)).expect("valid spec");
    println!("region {region}");
    println!("pre {}", rss_bytes_of("self"));
    let _ = std::io::stdout().flush();
    serve_tina_child(&spec, system, cpu);
}

fn serve_tokio(addr: SocketAddr, buffer: usize) {
    println!("region 0");
    println!("pre {}", rss_bytes_of("self"));
    let _ = std::io::stdout().flush();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        // `TcpListener::bind` listens with a backlog of 128; use Tina's instead.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(addr).expect("bind");
        let listener = socket.listen(BACKLOG).expect("listen");
        tokio_echo(listener, buffer).await
    });
}

/// The child-process side of B6 (connections): `child conns <system> <port> <cpu|-> <count>`;
/// serves until killed.
pub(crate) fn child(args: &[String]) -> ExitCode {
    raise_nofile();
    let system = args.first().map(String::as_str).unwrap_or("");
    let (addr, cpu) = pin_child(args);
    let count: u32 = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(0);
    match system {
        "tina-uring" | "tina-epoll" | "tina-uring-4k" => serve_tina(system, addr, cpu, count),
        "tokio" | "tokio-4k" => serve_tokio(addr, buffer_size(system) as usize),
        _ => {
            eprintln!("unknown B6 connections system `{system}`");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Harness side.

/// One run of one system, in bytes.
#[derive(Clone, Copy)]
struct Run {
    /// The child's RSS before its runtime started.
    pre: u64,
    /// After boot, with the probe connection served.
    boot: u64,
    /// With every connection idle.
    idle: u64,
    /// Tina's shard region (0 for tokio).
    region: u64,
    /// Wall time to open and check every connection.
    setup_ms: u64,
}

/// The 8 bytes connection `i` sends: its index above a first byte of 1 (a first byte of
/// `echo::POISON_BYTE` would make Tina's echo connection panic on purpose).
fn ping(i: usize) -> u64 {
    ((i as u64) << 8) | 1
}

fn echo_batch(streams: &mut [TcpStream], first: usize) {
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&ping(first + i).to_le_bytes())
            .expect("send on an idle connection");
    }
    for (i, s) in streams.iter_mut().enumerate() {
        let mut back = [0u8; 8];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("connection {}: no echo: {e}", first + i));
        assert_eq!(
            u64::from_le_bytes(back),
            ping(first + i),
            "connection {}: wrong echo",
            first + i
        );
    }
}

fn one_run(system: &str, cpu: Option<usize>, count: u32) -> Run {
    let mut server = Server::start("conns", system, cpu, &[count.to_string()]);
    let value = |server: &mut Server, key: &str| -> u64 {
        let line = server.line();
        let v = line.strip_prefix(key).and_then(|v| v.trim().parse().ok());
        v.unwrap_or_else(|| panic!("expected `{key} N` from the child, got `{line}`"))
    };
    let region = value(&mut server, "region");
    let pre = value(&mut server, "pre");
    let mut probe = server.connect();
    probe
        .set_read_timeout(Some(StdDuration::from_secs(5)))
        .expect("read timeout");
    echo_batch(std::slice::from_mut(&mut probe), 0);
    std::thread::sleep(StdDuration::from_millis(100));
    server.check_alive("after boot");
    let pid = server.pid().to_string();
    let boot = rss_bytes_of(&pid);

    let start = StdInstant::now();
    let mut streams: Vec<TcpStream> = Vec::with_capacity(count as usize);
    while streams.len() < count as usize {
        let first = streams.len();
        let n = BATCH.min(count as usize - first);
        for i in 0..n {
            let s = TcpStream::connect(server.addr)
                .unwrap_or_else(|e| panic!("connection {}: connect failed: {e}", first + i));
            s.set_read_timeout(Some(StdDuration::from_secs(5)))
                .expect("read timeout");
            streams.push(s);
        }
        echo_batch(&mut streams[first..], first);
    }
    let setup_ms = start.elapsed().as_millis() as u64;
    std::thread::sleep(StdDuration::from_millis(200));
    server.check_alive("with every connection idle");
    let idle = rss_bytes_of(&pid);
    // Reset, so neither side keeps thousands of tuples in TIME_WAIT for the next run.
    streams.into_iter().for_each(reset_close);
    reset_close(probe);
    drop(server);
    Run {
        pre,
        boot,
        idle,
        region,
        setup_ms,
    }
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

/// Runs B6 (connections) and adds its row to the summary.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    let n = count(common.quick);
    let limit = raise_nofile();
    assert!(
        limit >= u64::from(n) + 64,
        "RLIMIT_NOFILE hard limit {limit} is below {} (raise it: ulimit -Hn)",
        u64::from(n) + 64
    );
    let cpus = harness::two_cpus();
    if let Some([_, client]) = cpus {
        harness::pin_current_thread(client);
    }
    let (capacity, buffers) = tina_sizes(n);
    println!("## B6 — memory per idle TCP connection\n");
    match cpus {
        Some([server, client]) => println!(
            "Server in a fresh child process pinned to CPU {server}; client (this process, one \
             thread) pinned to CPU {client}."
        ),
        None => println!("Fewer than two CPUs allowed: nothing is pinned."),
    }
    println!(
        "{n} connections opened in batches of {BATCH} (listen backlog {BACKLOG}), one 8-byte \
         echo on each, then idle; RSS from /proc/<pid>/statm. {} interleaved rounds. Tina: \
         `tina_examples::echo` on one shard, connection capacity and dynamic children {capacity}, \
         io_buffer_count {buffers} (each idle connection holds a receive buffer), io_buffer_size \
         16 KiB (default) or 4 KiB (`-4k`), the rest `ShardConfig::DEFAULT`. tokio: \
         current-thread, a task per connection with a read buffer of 16 KiB (as in B3) or \
         4 KiB (`-4k`). Ratios: each Tina row against the tokio row with the same buffer size.\n",
        common.rounds,
    );

    let mut results: Vec<Vec<Run>> = vec![Vec::new(); SYSTEMS.len()];
    for _ in 0..common.rounds {
        for (i, system) in SYSTEMS.iter().enumerate() {
            results[i].push(one_run(system, cpus.map(|c| c[0]), n));
        }
    }

    let per = |runs: &[Run], f: fn(&Run) -> u64| -> Vec<u64> {
        runs.iter().map(|r| f(r) / u64::from(n)).collect()
    };
    let total = |runs: &[Run], f: fn(&Run) -> u64| -> Vec<u64> { runs.iter().map(f).collect() };
    let all_in = |r: &Run| r.idle.saturating_sub(r.pre);
    let marginal = |r: &Run| r.idle.saturating_sub(r.boot);
    let peer_of = |system: &str| if buffer_size(system) == 4096 { 4 } else { 3 };
    let tokio = &results[3];
    println!(
        "| system | RSS before the runtime | after boot (+1 probe) | with {n} idle | marginal \
         B/conn (idle − boot) | **all-in B/conn (idle − before)** | all-in tina ÷ tokio | \
         setup |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, system) in SYSTEMS.iter().enumerate() {
        let r = &results[i];
        let ratio = if system.starts_with("tokio") {
            "—".to_string()
        } else {
            ratio_text(&per(r, all_in), &per(&results[peer_of(system)], all_in))
        };
        println!(
            "| {system} | {} | {} | {} | {} | {} | {ratio} | {} ms |",
            spread_with(&total(r, |x| x.pre), kib),
            spread_with(&total(r, |x| x.boot), kib),
            spread_with(&total(r, |x| x.idle), kib),
            spread_with(&per(r, marginal), |v| v.to_string()),
            spread_with(&per(r, all_in), |v| v.to_string()),
            Spread::of(&total(r, |x| x.setup_ms)).median,
        );
    }
    println!();
    for (i, system) in SYSTEMS.iter().enumerate() {
        let region = results[i][0].region;
        if region > 0 {
            println!(
                "- {system}: shard region {} ({} B per connection), mapped and pre-faulted at \
                 boot (rounded up to 2 MiB when transparent huge pages apply), so it is in the \
                 RSS after boot.",
                kib(region),
                region / u64::from(n)
            );
        }
    }
    println!(
        "- The marginal column is what the connections add after boot: near zero for Tina \
         because its memory was reserved and touched at boot; the all-in column counts that \
         reservation. Kernel socket memory is in no process's RSS.\n"
    );

    let tina = &results[0];
    let t_all = Spread::of(&per(tina, all_in));
    let t_marg = Spread::of(&per(tina, marginal));
    let k_all = Spread::of(&per(tokio, all_in));
    let k_marg = Spread::of(&per(tokio, marginal));
    summary.add(Row {
        id: "B6 connections".into(),
        metric: format!("RSS bytes per idle TCP connection ({n}), all-in (marginal)"),
        tina: format!("{} ({})", t_all.median, t_marg.median),
        peer: format!("tokio {} ({})", k_all.median, k_marg.median),
        ratio: ratio_text(&per(tina, all_in), &per(tokio, all_in)),
        target: "lower is better".into(),
    });
}
