//! B3 — TCP echo ping-pong: Tina (io_uring and epoll) next to tokio current-thread, monoio and
//! glommio.
//!
//! ```text
//! tina-bench tcp                          # 5 rounds × 10 s after 2 s warm-up, 1/16/64/256 conns
//! tina-bench tcp --conns 64 --size 64     # one connection count, 64-byte requests
//! tina-bench tcp --rate 20000 --conns 64  # latency at a fixed offered rate instead
//! tina-bench tcp --quick                  # harness check for CI (not a measurement)
//! ```
//!
//! Each server runs in its own child process (`tina-bench child tcp <system> <port>`) pinned to
//! CPU 0; the load generator (this process, one thread, io_uring) is pinned to CPU 1. Every
//! connection sends a request of `--size` bytes (default 1024) and waits for the whole echo
//! before the next (closed loop). Systems run interleaved (A B C D E A B C D E …); per round
//! the harness reads the server's `utime + stime` from `/proc/<pid>/stat` over the measured
//! window and reports server CPU per request (primary), requests per second, and per-round
//! ratios Tina ÷ peer (median and range). A round whose client thread used over 95% of its
//! core is marked client-bound.
//!
//! `--rate R` switches to latency at a fixed offered rate: request `k` is scheduled at `k / R`
//! seconds and goes out on connection `k mod C` (queued behind that connection's outstanding
//! request if needed); latency is measured from the **scheduled** time, so a slow server
//! cannot hide its queueing (no coordinated omission). Reports p50/p99/p99.9.
//!
//! The load generator allocates everything before the first request (buffers, per-connection
//! queues, the latency log, the completion batch): its hot path does not allocate.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};

use crate::harness::{
    Common, Row, Spread, Summary, cpu_model, milli, pin_current_thread, ratio_spread,
    thread_cpu_ns, verdict,
};
use crate::ring;

/// The systems B3 compares, in the order they run each round.
const SYSTEMS: [&str; 5] = ["tina-uring", "tina-epoll", "tokio", "monoio", "glommio"];
/// How the tables name them.
const LABELS: [&str; 5] = [
    "tina io_uring",
    "tina epoll",
    "tokio current-thread",
    "monoio (io_uring)",
    "glommio 0.9",
];
/// The two Tina rows come first in [`SYSTEMS`]; the peers follow.
const TINA_COUNT: usize = 2;
/// The CPU every server is pinned to.
pub(crate) const SERVER_CPU: usize = 0;
/// The CPU the load generator is pinned to.
pub(crate) const CLIENT_CPU: usize = 1;
/// A client thread above this share of its CPU (per mille) makes the row client-bound.
pub(crate) const CLIENT_BOUND_PER_MILLE: u64 = 950;

/// Settings of one B3 run.
#[derive(Clone)]
struct Options {
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    conns: Vec<usize>,
    size: usize,
    /// Latency mode: requests per second offered (0: closed-loop throughput mode).
    rate: u64,
}

impl Options {
    fn standalone(quick: bool) -> Options {
        if quick {
            Options::quick()
        } else {
            Options {
                rounds: 5,
                warmup: Duration::from_secs(2),
                measure: Duration::from_secs(10),
                conns: vec![1, 16, 64, 256],
                size: 1024,
                rate: 0,
            }
        }
    }

    fn quick() -> Options {
        Options {
            rounds: 1,
            warmup: Duration::from_millis(200),
            measure: Duration::from_millis(500),
            conns: vec![16],
            size: 1024,
            rate: 0,
        }
    }
}

/// Parses a duration in seconds, fractions allowed (`0.5`).
pub(crate) fn seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u64;
    for (i, digit) in fraction.chars().take(9).enumerate() {
        nanos += u64::from(digit.to_digit(10)?) * 10u64.pow(8 - i as u32);
    }
    Some(Duration::from_secs(whole) + Duration::from_nanos(nanos))
}

const TCP_USAGE: &str = "usage: tina-bench tcp [--conns 1,16,64,256] [--size N] [--rate R] \
                         [--seconds S] [--warmup S] [--rounds R] [--quick]";

/// `tina-bench tcp [options]`: B3 on its own, every option available. `quick` is a `--quick`
/// given before the sub-command.
pub(crate) fn command(quick: bool, args: &[String]) -> ExitCode {
    let quick = quick || args.iter().any(|a| a == "--quick");
    let mut o = Options::standalone(quick);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |what: &str| -> Option<String> {
            let v = it.next().cloned();
            if v.is_none() {
                eprintln!("{arg} needs {what}");
            }
            v
        };
        let ok = match arg.as_str() {
            "-h" | "--help" => {
                println!("{TCP_USAGE}");
                return ExitCode::SUCCESS;
            }
            "--quick" => true,
            "--rounds" => value("a count")
                .and_then(|v| v.parse().ok())
                .map(|v| o.rounds = v)
                .is_some(),
            "--seconds" => value("seconds")
                .and_then(|v| seconds(&v))
                .map(|v| o.measure = v)
                .is_some(),
            "--warmup" => value("seconds")
                .and_then(|v| seconds(&v))
                .map(|v| o.warmup = v)
                .is_some(),
            "--size" => value("bytes")
                .and_then(|v| v.parse().ok())
                .map(|v| o.size = v)
                .is_some(),
            "--rate" => value("requests per second")
                .and_then(|v| v.parse().ok())
                .map(|v| o.rate = v)
                .is_some(),
            "--conns" => value("a list like 1,16,64")
                .and_then(|v| v.split(',').map(|c| c.parse().ok()).collect())
                .map(|v| o.conns = v)
                .is_some(),
            _ => false,
        };
        if !ok {
            eprintln!("bad argument `{arg}`\n{TCP_USAGE}");
            return ExitCode::FAILURE;
        }
    }
    if o.rounds == 0 || o.size == 0 || o.conns.is_empty() || o.conns.contains(&0) {
        eprintln!("--rounds, --size and --conns must be positive");
        return ExitCode::FAILURE;
    }
    if o.rate > 0 && o.conns.len() > 1 {
        eprintln!("--rate takes one connection count (--conns C)");
        return ExitCode::FAILURE;
    }
    let mut summary = Summary::default();
    header(&o);
    let active = active_systems();
    if o.rate > 0 {
        latency(&o, o.conns[0], &active, &mut summary);
    } else {
        throughput(&o, &active, &mut summary);
    }
    summary.print();
    ExitCode::SUCCESS
}

/// B3 as `tina-bench all` runs it: bounded cost. 64 connections of 1 KiB, 2 s warm-up + 10 s
/// measure, `common.rounds` rounds; then 20,000 req/s over 64 connections for the latency
/// (1 s warm-up + 5 s). Quick mode: what `tcp --quick` does, plus a short latency run.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    let mut o = if common.quick {
        Options::quick()
    } else {
        Options {
            rounds: common.rounds,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            conns: vec![64],
            size: 1024,
            rate: 0,
        }
    };
    o.rounds = common.rounds;
    if let Some(s) = common.seconds {
        o.measure = Duration::from_secs(s);
    }
    header(&o);
    let active = active_systems();
    throughput(&o, &active, summary);
    let mut l = o.clone();
    l.rate = 20_000;
    if !common.quick {
        l.warmup = Duration::from_secs(1);
        l.measure = Duration::from_secs(common.seconds.unwrap_or(5));
    }
    let conns = l.conns[0];
    latency(&l, conns, &active, summary);
}

fn header(o: &Options) {
    println!("## B3 — TCP echo\n");
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Loopback TCP, {} B requests. Each server runs in its own process pinned to CPU \
         {SERVER_CPU}; the load generator (this process, one thread, io_uring) is pinned to CPU \
         {CLIENT_CPU}. Systems interleaved ({}), {} round(s); server CPU = `utime + stime` of \
         the server process (`/proc/<pid>/stat`) over the measured window. Machine: {nproc} \
         CPUs, {}.\n",
        o.size,
        LABELS.join(", "),
        o.rounds,
        cpu_model()
    );
    println!(
        "Servers: Tina = `tina_examples::echo` (one shard, default `tina_linux::Config` but the \
         backend forced per row; `ShardConfig` sized for 512 connections: {} I/O buffers of \
         16 KiB, as many submissions per tick); tokio current-thread, monoio (io_uring driver) \
         and glommio (one `LocalExecutor` pinned to CPU {SERVER_CPU}): one task per connection, \
         read + write-all with a 16 KiB buffer. `TCP_NODELAY` everywhere.\n",
        TINA_CONNECTIONS + 64
    );
}

// ───────────────────────────── servers ─────────────────────────────

/// Connections a Tina server can hold (arena capacity of the connection isolate type).
const TINA_CONNECTIONS: u32 = 512;

/// `tina-bench child tcp <system> <port>`: runs one echo server until SIGTERM.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let system = args.first().map(String::as_str).unwrap_or_default();
    let Some(port) = args.get(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: tina-bench child tcp <system> <port>");
        return ExitCode::FAILURE;
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // The harness pinned itself (and so this child) to the client's CPU: move to the server's.
    pin_current_thread(SERVER_CPU);
    match system {
        "tina-uring" => serve_tina(addr, tina_linux::Backend::Uring),
        "tina-epoll" => serve_tina(addr, tina_linux::Backend::Epoll),
        "tokio" => serve_tokio(addr),
        "monoio" => serve_monoio(addr),
        "glommio" => serve_glommio(addr),
        _ => {
            eprintln!("unknown system `{system}`");
            ExitCode::FAILURE
        }
    }
}

fn serve_tina(addr: SocketAddr, backend: tina_linux::Backend) -> ExitCode {
    use tina_core::{ChildSpec, GroupSpec, Restart, ShardConfig, ShardSpec, SystemSpec, TypeSpec};
    use tina_examples::echo::{Connection, ListenArgs, Listener};
    let connections = TINA_CONNECTIONS;
    let types = [
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(connections),
    ];
    let children = [ChildSpec::isolate::<Listener>(
        &ListenArgs::new(addr, 1024),
        Restart::Permanent,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(connections),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        io_buffer_count: connections + 64,
        io_buffer_size: 16 * 1024,
        io_submissions_per_tick_max: connections + 64,
        ..ShardConfig::DEFAULT
    };
    let config = tina_linux::Config {
        backend,
        cpus: Some(vec![SERVER_CPU]),
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

fn serve_tokio(addr: SocketAddr) -> ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        tokio_echo(listener, 16 * 1024).await
    })
}

/// The tokio peer's echo server, shared by B3, B6 and B7: accepts on `listener` forever, one
/// task per connection, `read` + `write_all` through a `buffer`-byte buffer, `TCP_NODELAY`.
pub(crate) async fn tokio_echo(listener: tokio::net::TcpListener, buffer: usize) -> ! {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; buffer];
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
}

fn serve_monoio(addr: SocketAddr) -> ExitCode {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(1024)
        .build()
        .expect("monoio runtime");
    rt.block_on(async move {
        let listener = monoio::net::TcpListener::bind(addr).expect("bind");
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            monoio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let (r, b) = s.read(buf).await;
                    buf = b;
                    let n = match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let (r, b) = s
                        .write_all(monoio::buf::IoBufMut::slice_mut(buf, 0..n))
                        .await;
                    buf = b.into_inner();
                    if r.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

fn serve_glommio(addr: SocketAddr) -> ExitCode {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(SERVER_CPU))
        .name("glommio-echo")
        .spawn(move || async move {
            let listener = glommio::net::TcpListener::bind(addr).expect("bind");
            loop {
                let Ok(mut s) = listener.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                glommio::spawn_local(async move {
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
                })
                .detach();
            }
        });
    match executor.map(|e| e.join()) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) | Err(e) => {
            eprintln!("glommio server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// ───────────────────────────── the load generator ─────────────────────────────

/// CPU time (`utime + stime`) of process `pid` so far, in nanoseconds (clock-tick resolution).
pub(crate) fn process_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    let close = stat
        .rfind(')')
        .expect("/proc/<pid>/stat has a command name");
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let field = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .expect("utime/stime in /proc/<pid>/stat")
    };
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as u64 } else { 100 };
    (field(11) + field(12)) * 1_000_000_000 / tck
}

/// A server child process and the address it listens on.
pub(crate) struct Server {
    child: Child,
    /// The server's address.
    pub(crate) addr: SocketAddr,
    /// Where the child's stderr goes; passed on (less the expected shutdown notice) when the
    /// server stops.
    stderr: std::path::PathBuf,
}

impl Server {
    /// Starts `tina-bench child <workload> <system> <port>` on a free loopback port and waits
    /// until it accepts connections.
    pub(crate) fn start(workload: &str, system: &str) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let stderr = std::env::temp_dir().join(format!(
            "tina-bench-{}-{workload}-{system}-{port}.stderr",
            std::process::id()
        ));
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["child", workload, system, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("server stderr file"))
            .spawn()
            .expect("spawn server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("{workload} server {system} exited before listening: {status}\n{text}");
            }
            assert!(Instant::now() < deadline, "{system} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            addr,
            stderr,
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it has not exited within 5 s. Panics if the server died
    /// during the measurement (a crash must not pass as a result).
    pub(crate) fn stop(mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            panic!("server died during the run: {status}\n{text}");
        }
        // SAFETY: kill(2) on our own child's pid, which has not been reaped (checked above).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while !exited && Instant::now() < deadline {
            exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if !exited {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let _ = std::fs::remove_file(&self.stderr);
        for line in text
            .lines()
            .filter(|l| !l.contains("SIGTERM: graceful shutdown"))
        {
            eprintln!("server: {line}");
        }
    }
}

fn connect(addr: SocketAddr, conns: usize) -> Vec<TcpStream> {
    (0..conns)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            s
        })
        .collect()
}

/// Pushes `e`, submitting first if the submission queue is full.
///
/// # Safety
/// Every buffer `e` points to must stay valid until its completion is reaped.
unsafe fn push(ring: &mut IoUring, e: &squeue::Entry) {
    // SAFETY: forwarded to the caller.
    while unsafe { ring.submission().push(e) }.is_err() {
        ring.submit().expect("io_uring submit");
    }
}

/// Per-connection send/receive state of the load generator (allocated before the run).
///
/// The kernel writes into `replies` (and reads `request`) until each operation completes, and
/// closing a socket does not end an io_uring operation on it, so dropping a `Wire` first shuts
/// every socket down and reaps every operation still in flight (see `Drop`).
struct Wire {
    /// Operations pushed and not yet reaped.
    in_flight: usize,
    streams: Vec<TcpStream>,
    size: usize,
    request: Vec<u8>,
    replies: Vec<u8>,
    sent: Vec<usize>,
    got: Vec<usize>,
    ring: IoUring,
    completions: Vec<(u64, i32)>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        // Shut the sockets down so every pending receive and send completes (with 0 or an
        // error), then wait for all of them: only then may the buffers be freed.
        for s in &self.streams {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.in_flight > 0 {
            if Instant::now() >= deadline {
                // The kernel still holds pointers into our buffers: leaking them is the only
                // safe way out.
                eprintln!(
                    "tcp load generator: {} operations never completed",
                    self.in_flight
                );
                std::mem::forget(std::mem::take(&mut self.replies));
                std::mem::forget(std::mem::take(&mut self.request));
                return;
            }
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            self.reap();
        }
    }
}

/// What a completion finished.
enum Done {
    /// Nothing whole yet (a partial send or receive was re-armed, or a send finished and the
    /// receive of the echo was armed).
    Nothing,
    /// Connection `i` received the whole echo of its request.
    Reply(usize),
}

impl Wire {
    fn new(addr: SocketAddr, conns: usize, size: usize) -> Wire {
        Wire {
            in_flight: 0,
            streams: connect(addr, conns),
            size,
            request: vec![0x5A; size],
            replies: vec![0; size * conns],
            sent: vec![0; conns],
            got: vec![0; conns],
            ring: IoUring::new((conns * 2).next_power_of_two().max(8) as u32).expect("io_uring"),
            completions: Vec::with_capacity((conns * 2).next_power_of_two().max(8) * 2),
        }
    }

    /// Sends connection `i`'s request from byte `from`.
    fn send(&mut self, i: usize, from: usize) {
        let e = opcode::Send::new(
            types::Fd(self.streams[i].as_raw_fd()),
            self.request[from..].as_ptr(),
            (self.size - from) as u32,
        )
        .build()
        .user_data((i as u64) << 1);
        // SAFETY: `request` is not touched until the operation is reaped: `Drop` reaps every
        // operation before the buffers are freed.
        unsafe { push(&mut self.ring, &e) };
        self.in_flight += 1;
    }

    fn recv(&mut self, i: usize) {
        let buf = &mut self.replies[i * self.size + self.got[i]..(i + 1) * self.size];
        let e = opcode::Recv::new(
            types::Fd(self.streams[i].as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len() as u32,
        )
        .build()
        .user_data(((i as u64) << 1) | 1);
        // SAFETY: this part of `replies` is not touched until the operation is reaped (see
        // `send`).
        unsafe { push(&mut self.ring, &e) };
        self.in_flight += 1;
    }

    /// Moves the ready completions into `self.completions` (no allocation: reserved up front).
    fn reap(&mut self) {
        self.completions.clear();
        self.completions
            .extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        self.in_flight -= self.completions.len();
    }

    /// Handles one completion.
    fn on_completion(&mut self, user_data: u64, result: i32) -> Done {
        let i = (user_data >> 1) as usize;
        assert!(result > 0, "connection {i} failed: {result}");
        let n = result as usize;
        if user_data & 1 == 0 {
            self.sent[i] += n;
            if self.sent[i] < self.size {
                self.send(i, self.sent[i]);
                return Done::Nothing;
            }
            self.sent[i] = 0;
        } else {
            self.got[i] += n;
            if self.got[i] >= self.size {
                assert_eq!(
                    self.got[i], self.size,
                    "connection {i}: echo longer than request"
                );
                self.got[i] = 0;
                return Done::Reply(i);
            }
        }
        self.recv(i);
        Done::Nothing
    }
}

/// One closed-loop round of one system.
#[derive(Clone, Copy)]
struct Throughput {
    requests: u64,
    elapsed_ns: u64,
    server_cpu_ns: u64,
    client_cpu_ns: u64,
}

impl Throughput {
    fn per_second(&self) -> u64 {
        (u128::from(self.requests) * 1_000_000_000 / u128::from(self.elapsed_ns.max(1))) as u64
    }
    fn server_ns_per_request(&self) -> u64 {
        self.server_cpu_ns / self.requests.max(1)
    }
    fn client_per_mille(&self) -> u64 {
        self.client_cpu_ns * 1000 / self.elapsed_ns.max(1)
    }
}

/// The closed-loop ping-pong on `conns` connections.
fn closed_loop(server: &Server, conns: usize, o: &Options) -> Throughput {
    let mut wire = Wire::new(server.addr, conns, o.size);
    for i in 0..conns {
        wire.send(i, 0);
    }
    let start = Instant::now();
    let warm_end = start + o.warmup;
    let end = warm_end + o.measure;
    let mut count = 0u64;
    let mut first: Option<(u64, u64, u64, Instant)> = None;
    loop {
        wire.ring.submit_and_wait(1).expect("io_uring enter");
        let now = Instant::now();
        if first.is_none() && now >= warm_end {
            first = Some((count, process_cpu_ns(server.pid()), thread_cpu_ns(), now));
        }
        if now >= end {
            let (count0, server0, client0, t0) = first.expect("measuring");
            return Throughput {
                requests: count - count0,
                elapsed_ns: now.duration_since(t0).as_nanos() as u64,
                server_cpu_ns: process_cpu_ns(server.pid()) - server0,
                client_cpu_ns: thread_cpu_ns() - client0,
            };
        }
        wire.reap();
        for k in 0..wire.completions.len() {
            let (user_data, result) = wire.completions[k];
            if let Done::Reply(i) = wire.on_completion(user_data, result) {
                count += 1;
                wire.send(i, 0);
            }
        }
    }
}

/// One closed-loop round of Tina's B3 servers, io_uring then epoll, for `tina-bench perf tcp`:
/// `conns` connections of `size`-byte requests, `warmup` then `measure`, the load generator
/// (the calling thread) pinned to [`CLIENT_CPU`]. Returns, per server, (system key, server CPU
/// ns per request, requests per second, client CPU per mille of the window).
pub(crate) fn tina_round(
    conns: usize,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> Vec<(&'static str, u64, u64, u64)> {
    pin_current_thread(CLIENT_CPU);
    let o = Options {
        rounds: 1,
        warmup,
        measure,
        conns: vec![conns],
        size,
        rate: 0,
    };
    SYSTEMS[..TINA_COUNT]
        .iter()
        .map(|&system| {
            let server = Server::start("tcp", system);
            let t = closed_loop(&server, conns, &o);
            server.stop();
            (
                system,
                t.server_ns_per_request(),
                t.per_second(),
                t.client_per_mille(),
            )
        })
        .collect()
}

/// Latency at a fixed offered rate, one round of one system.
#[derive(Clone, Copy)]
pub(crate) struct Latency {
    /// Median latency from the scheduled send time, ns.
    pub(crate) p50_ns: u64,
    /// 99th percentile, ns.
    pub(crate) p99_ns: u64,
    /// 99.9th percentile, ns.
    pub(crate) p999_ns: u64,
    /// Server CPU per answered request over the window, ns.
    pub(crate) server_ns_per_request: u64,
    /// The load generator thread's CPU over the window, per mille of the window.
    pub(crate) client_per_mille: u64,
    /// The server process's CPU over the window, per mille of the window (1000: one core).
    pub(crate) server_per_mille: u64,
    /// Requests scheduled in the window (each counted: answered, or at its age at the end).
    pub(crate) requests: u64,
}

/// The fixed-rate load: `rate` requests per second of `size` bytes over `conns` connections
/// to `server`, `warmup` then `measure`. Request `k` is due at `k / rate` s on connection
/// `k mod conns`; its latency counts from that scheduled time. Requests still unanswered at
/// the end count at their age then (they are the tail). The calling thread is the load
/// generator (pin it before calling).
pub(crate) fn fixed_rate(
    server: &Server,
    conns: usize,
    size: usize,
    rate: u64,
    warmup: Duration,
    measure: Duration,
) -> Latency {
    let mut wire = Wire::new(server.addr, conns, size);
    let period_ns = 1_000_000_000 / rate.max(1);
    let warm_ns = warmup.as_nanos() as u64;
    let end_ns = warm_ns + measure.as_nanos() as u64;
    let total = (end_ns / period_ns + 1) as usize;
    // Per connection: scheduled times of requests not yet answered (front: in flight).
    let mut queues: Vec<VecDeque<u64>> = (0..conns)
        .map(|_| VecDeque::with_capacity(total / conns + 2))
        .collect();
    let mut latencies: Vec<u64> = Vec::with_capacity(total);
    let start = Instant::now();
    let ns = |t: Instant| t.duration_since(start).as_nanos() as u64;
    let mut next_k = 0u64;
    let mut first: Option<(u64, u64, u64)> = None; // (server cpu, client cpu, answered)
    let mut answered = 0u64;
    loop {
        let now = ns(Instant::now());
        if first.is_none() && now >= warm_ns {
            first = Some((process_cpu_ns(server.pid()), thread_cpu_ns(), answered));
        }
        if now >= end_ns {
            break;
        }
        while next_k * period_ns <= now && next_k * period_ns < end_ns {
            let i = (next_k % conns as u64) as usize;
            queues[i].push_back(next_k * period_ns);
            if queues[i].len() == 1 {
                wire.send(i, 0);
            }
            next_k += 1;
        }
        let due = (next_k * period_ns).min(end_ns);
        let wait = due.saturating_sub(ns(Instant::now()));
        let ts = types::Timespec::new()
            .sec(wait / 1_000_000_000)
            .nsec((wait % 1_000_000_000) as u32);
        let args = types::SubmitArgs::new().timespec(&ts);
        match wire.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => panic!("io_uring enter: {e}"),
        }
        wire.reap();
        for k in 0..wire.completions.len() {
            let (user_data, result) = wire.completions[k];
            if let Done::Reply(i) = wire.on_completion(user_data, result) {
                let scheduled = queues[i].pop_front().expect("a request in flight");
                answered += 1;
                if scheduled >= warm_ns {
                    latencies.push(ns(Instant::now()) - scheduled);
                }
                if !queues[i].is_empty() {
                    wire.send(i, 0);
                }
            }
        }
    }
    let (server0, client0, answered0) = first.expect("measuring");
    let server_cpu = process_cpu_ns(server.pid()) - server0;
    let client_cpu = thread_cpu_ns() - client0;
    let now = ns(Instant::now());
    for q in &queues {
        latencies.extend(q.iter().filter(|&&t| t >= warm_ns).map(|&t| now - t));
    }
    let scheduled_in_window = (warm_ns.div_ceil(period_ns)..next_k).count() as u64;
    assert_eq!(
        latencies.len() as u64,
        scheduled_in_window,
        "every request scheduled in the window is counted once"
    );
    latencies.sort_unstable();
    let pct = |per_100k: usize| {
        let k = (latencies.len() * per_100k / 100_000).min(latencies.len().saturating_sub(1));
        latencies.get(k).copied().unwrap_or(0)
    };
    Latency {
        p50_ns: pct(50_000),
        p99_ns: pct(99_000),
        p999_ns: pct(99_900),
        server_ns_per_request: server_cpu / (answered - answered0).max(1),
        client_per_mille: client_cpu * 1000 / (end_ns - warm_ns).max(1),
        server_per_mille: server_cpu * 1000 / (end_ns - warm_ns).max(1),
        requests: latencies.len() as u64,
    }
}

// ───────────────────────────── reports ─────────────────────────────

/// Nanoseconds printed as microseconds with two decimals.
pub(crate) fn micros2(ns: u64) -> String {
    let hundredths = (ns + 5) / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// `median (min–max)` of nanoseconds, printed in µs with two decimals.
fn micros_spread(values: &[u64]) -> String {
    let s = Spread::of(values);
    format!(
        "{} ({}–{})",
        micros2(s.median),
        micros2(s.min),
        micros2(s.max)
    )
}

/// `median (min–max)` of nanoseconds, printed in whole µs.
pub(crate) fn micros_whole_spread(values: &[u64]) -> String {
    let s = Spread::of(values);
    let us = |ns: u64| (ns + 500) / 1000;
    format!("{} ({}–{})", us(s.median), us(s.min), us(s.max))
}

/// Per-round ratios `a[r] / b[r]` in per mille.
pub(crate) fn per_round(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| a * 1000 / b.max(1))
        .collect()
}

/// The peers among the active systems.
fn peers(active: &[usize]) -> impl Iterator<Item = usize> + '_ {
    active.iter().copied().filter(|&k| k >= TINA_COUNT)
}

/// The systems that can run here (indices into [`SYSTEMS`]); prints a loud `SKIPPED` line for
/// a peer that cannot (glommio needs io_uring and locked memory).
fn active_systems() -> Vec<usize> {
    let glommio = ring::glommio_unavailable();
    if let Some(reason) = &glommio {
        println!("**SKIPPED: glommio: {reason}**\n");
    }
    (0..SYSTEMS.len())
        .filter(|&k| SYSTEMS[k] != "glommio" || glommio.is_none())
        .collect()
}

/// Index (among the peers) of the peer with the lowest median of `metric`.
fn best_peer(samples: &[Vec<u64>], active: &[usize]) -> usize {
    peers(active)
        .min_by_key(|&k| Spread::of(&samples[k]).median)
        .expect("at least one peer")
}

fn throughput(o: &Options, active: &[usize], summary: &mut Summary) {
    pin_current_thread(CLIENT_CPU);
    println!(
        "**Closed loop**: every connection sends {} B and waits for the whole echo; {} s \
         warm-up + {} s measured per system per round. Server CPU per request is the primary \
         metric (lower is better).\n",
        o.size,
        milli(o.warmup.as_millis() as u64),
        milli(o.measure.as_millis() as u64),
    );
    println!(
        "| conns | system | server CPU µs/req, median (min–max) | req/s, median (min–max) | \
         client CPU (max) |"
    );
    println!("|---:|---|---:|---:|---:|");
    let mut ratio_lines = Vec::new();
    for &conns in &o.conns {
        let mut samples: Vec<Vec<Throughput>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
        for _ in 0..o.rounds {
            for &k in active {
                let server = Server::start("tcp", SYSTEMS[k]);
                samples[k].push(closed_loop(&server, conns, o));
                server.stop();
            }
        }
        let cpu: Vec<Vec<u64>> = samples
            .iter()
            .map(|s| s.iter().map(Throughput::server_ns_per_request).collect())
            .collect();
        let rps: Vec<Vec<u64>> = samples
            .iter()
            .map(|s| s.iter().map(Throughput::per_second).collect())
            .collect();
        for &k in active {
            let label = LABELS[k];
            let client = samples[k]
                .iter()
                .map(Throughput::client_per_mille)
                .max()
                .unwrap_or(0);
            let r = Spread::of(&rps[k]);
            println!(
                "| {conns} | {label} | {} | {} ({}–{}) | {}%{} |",
                micros_spread(&cpu[k]),
                r.median,
                r.min,
                r.max,
                client / 10,
                if client > CLIENT_BOUND_PER_MILLE {
                    " **client-bound**"
                } else {
                    ""
                }
            );
        }
        let best = best_peer(&cpu, active);
        for t in 0..TINA_COUNT {
            for p in peers(active) {
                ratio_lines.push(format!(
                    "| {conns} | {} ÷ {} | {} | {} |",
                    LABELS[t],
                    LABELS[p],
                    ratio_spread(&per_round(&cpu[t], &cpu[p])),
                    ratio_spread(&per_round(&rps[t], &rps[p])),
                ));
            }
            let ratios = per_round(&cpu[t], &cpu[best]);
            let met = Spread::of(&ratios).median <= 800;
            summary.add(Row {
                id: format!("B3 {conns} conns, {} B", o.size),
                metric: format!("server CPU µs/request, {}", LABELS[t]),
                tina: micros2(Spread::of(&cpu[t]).median),
                peer: format!(
                    "{} {} (best peer)",
                    LABELS[best],
                    micros2(Spread::of(&cpu[best]).median)
                ),
                ratio: ratio_spread(&ratios),
                target: verdict("≤ 0.8× best peer", met),
            });
        }
    }
    println!(
        "\nPer-round ratios Tina ÷ peer, median (min–max); below 1.00 Tina uses less CPU per \
         request / serves fewer requests per second:\n"
    );
    println!("| conns | pair | server CPU per request | req/s |");
    println!("|---:|---|---:|---:|");
    for line in ratio_lines {
        println!("{line}");
    }
    println!(
        "\nA system whose client column reads **client-bound** had the load generator above \
         95% of its CPU in some round: its req/s measure the client as much as the server \
         (CPU per request stays valid).\n"
    );
}

fn latency(o: &Options, conns: usize, active: &[usize], summary: &mut Summary) {
    pin_current_thread(CLIENT_CPU);
    println!(
        "**Latency at a fixed offered rate**: {} requests/s of {} B over {conns} connections, \
         open loop (request `k` due at `k / {}` s on connection `k mod {conns}`), latency from \
         the scheduled send time (no coordinated omission); {} s warm-up + {} s measured per \
         system per round, {} round(s), systems interleaved. Server on CPU {SERVER_CPU}, load \
         generator on CPU {CLIENT_CPU}.\n",
        o.rate,
        o.size,
        o.rate,
        milli(o.warmup.as_millis() as u64),
        milli(o.measure.as_millis() as u64),
        o.rounds,
    );
    let mut samples: Vec<Vec<Latency>> = SYSTEMS.iter().map(|_| Vec::new()).collect();
    for _ in 0..o.rounds {
        for &k in active {
            let server = Server::start("tcp", SYSTEMS[k]);
            samples[k].push(fixed_rate(
                &server, conns, o.size, o.rate, o.warmup, o.measure,
            ));
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
    let server = column(|l| l.server_ns_per_request);
    println!(
        "| system | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | client CPU (max) | \
         requests per round |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &k in active {
        let label = LABELS[k];
        let client = samples[k]
            .iter()
            .map(|l| l.client_per_mille)
            .max()
            .unwrap_or(0);
        println!(
            "| {label} | {} | {} | {} | {} | {}%{} | {} |",
            micros_whole_spread(&p50[k]),
            micros_whole_spread(&p99[k]),
            micros_whole_spread(&p999[k]),
            micros2(Spread::of(&server[k]).median),
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
    println!("| pair | p99 ratio per round, median (min–max) |");
    println!("|---|---:|");
    let best = best_peer(&p99, active);
    for t in 0..TINA_COUNT {
        for p in peers(active) {
            println!(
                "| {} ÷ {} | {} |",
                LABELS[t],
                LABELS[p],
                ratio_spread(&per_round(&p99[t], &p99[p]))
            );
        }
        let ratios = per_round(&p99[t], &p99[best]);
        let met = Spread::of(&ratios).median <= 1000;
        summary.add(Row {
            id: format!("B3 {} req/s, {conns} conns", o.rate),
            metric: format!("p99 µs at a fixed rate, {}", LABELS[t]),
            tina: ((Spread::of(&p99[t]).median + 500) / 1000).to_string(),
            peer: format!(
                "{} {} (best peer)",
                LABELS[best],
                (Spread::of(&p99[best]).median + 500) / 1000
            ),
            ratio: ratio_spread(&ratios),
            target: verdict("no worse than best peer", met),
        });
    }
    println!();
}
