//! B5 — idle and wake: CPU a server uses while nothing happens, and how fast it wakes for a
//! single message.
//!
//! Each server runs in a fresh child process (`tina-bench child idle <system> <port> <cpu>`)
//! pinned to the first CPU; the harness (the client, one thread) is pinned to the second.
//! Systems, run interleaved in every round:
//!
//! - **tina-uring** / **tina-epoll**: `tina_linux::run`, one shard, default `ShardConfig` and
//!   runtime `Config` (watchdog and signal thread included) except the backend and the CPU. A
//!   listener isolate accepts connections and spawns one [`Stamp`] isolate per connection;
//!   `Stamp` receives, reads `CLOCK_MONOTONIC` first thing in its handler, and sends the
//!   message back with that stamp appended.
//! - **tokio**: a current-thread runtime (I/O driver enabled), an accept loop and a task per
//!   connection that reads `CLOCK_MONOTONIC` as soon as `read` returns, then writes back.
//! - **blocking** (the floor, not a peer): one thread blocked in `read` on the accepted socket,
//!   no runtime — what the kernel and the machine cost by themselves.
//!
//! One round of one system:
//!
//! 1. **Idle.** The client connects and does one exchange, so the server is in its realistic
//!    idle state: a connection accepted, a receive pending, the accept loop waiting. After a
//!    100 ms settle the harness sends nothing for the window (10 s; 1 s in quick mode;
//!    `--seconds` overrides) and reads the server's CPU over exactly that window, two ways:
//!    `utime + stime` from `/proc/<pid>/stat` (clock ticks, usually 10 ms: over 10 s that
//!    resolves 0.1% of a core) and the sum over the process's threads of
//!    `/proc/<pid>/task/*/schedstat` (nanoseconds on CPU, and how many times a thread was put
//!    on a CPU — the process's wake-ups).
//! 2. **Wake.** Single 8-byte messages on that connection at random gaps (2–20 ms, a seeded
//!    PRNG, the same sequence for every system of a round). The client writes its
//!    `CLOCK_MONOTONIC` send time into the message; the server stamps its receipt and echoes
//!    both. Wake-up latency = server stamp − client stamp: one way, from the client's `write`
//!    to the server's code running, excluding the client's own wake-up. The round trip (until
//!    the client has read the echo) is reported too.
//!
//! Per system: median (min–max) over rounds of each round's idle CPU and wake p50/p99/max,
//! and the per-round ratio Tina ÷ tokio.

use crate::harness::{self, Common, Row, Spread, Summary};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};
use tina_core::io::{Domain, Fd, IoCompletion, IoError, IoKind, IoOp, SocketKind, SocketOption};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec, UserTag,
};

const SYSTEMS: [&str; 4] = ["tina-uring", "tina-epoll", "tokio", "blocking"];
/// Index of the peer in [`SYSTEMS`] (ratios are against it).
const TOKIO: usize = 2;
/// Bytes the client sends: its send time.
const PING: usize = 8;
/// Bytes the server answers: the client's send time, then its own receive time.
const PONG: usize = 16;
/// Gap between two messages of the wake phase, uniform in this range (nanoseconds).
const GAP_NS: (u64, u64) = (2_000_000, 20_000_000);
/// The wake-up target from the issue.
const WAKE_TARGET_NS: u64 = 50_000;

// ---------------------------------------------------------------------------------------------
// Shared with B6 (connections): clocks, /proc readers, limits, the child process.

/// `CLOCK_MONOTONIC` in nanoseconds (the same clock in every process of the machine).
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sysconf(name: libc::c_int, fallback: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(name) };
    if v > 0 { v as u64 } else { fallback }
}

/// Clock ticks per second of `/proc/<pid>/stat` (`_SC_CLK_TCK`).
pub(crate) fn clock_ticks_per_s() -> u64 {
    sysconf(libc::_SC_CLK_TCK, 100)
}

/// `utime + stime` of process `pid`, in clock ticks.
pub(crate) fn process_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    let close = stat.rfind(')').expect("/proc/<pid>/stat has a `)`");
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let field = |i: usize| -> u64 {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .expect("/proc/<pid>/stat field")
    };
    // Fields 14 and 15 of the man page; `f[0]` is field 3 (the state).
    field(11) + field(12)
}

/// `/proc/<pid>/task/*/schedstat` of every thread of process `pid`: its name, nanoseconds on
/// a CPU and times put on a CPU. Threads that ended before the call are missing, so compare
/// two readings only while the process's set of threads is stable.
pub(crate) fn thread_schedstats(pid: u32) -> Vec<(String, u64, u64)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/task: {e}"));
    let mut threads = Vec::new();
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let f: Vec<u64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        threads.push((
            name.trim().to_string(),
            f.first().copied().unwrap_or(0),
            f.get(2).copied().unwrap_or(0),
        ));
    }
    threads.sort();
    threads
}

/// Resident set of process `pid` (`/proc/<pid>/statm`), in bytes.
pub(crate) fn rss_bytes_of(pid: &str) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/statm: {e}"));
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("/proc/<pid>/statm resident field");
    pages * sysconf(libc::_SC_PAGESIZE, 4096)
}

/// Raises the soft limit of open descriptors to the hard limit; returns the new soft limit.
pub(crate) fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit(RLIMIT_NOFILE) failed");
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid `rlimit` whose soft limit does not exceed its hard limit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_NOFILE) failed");
    lim.rlim_cur
}

/// A free loopback port (bound, read, released; the child binds it with `SO_REUSEADDR`).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    l.local_addr().expect("probe port").port()
}

/// Closes `stream` with a reset (`SO_LINGER` 0): no side keeps the connection in TIME_WAIT,
/// so a later run that happens to get the same server port is not slowed by stale tuples.
pub(crate) fn reset_close(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open (owned by `stream`); `linger` is a valid `linger` of the
    // size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER) failed");
    drop(stream);
}

/// A server child process; killed (SIGKILL) and reaped when dropped, panic or not.
pub(crate) struct Server {
    child: Child,
    /// The child's standard output, if it was asked for.
    pub(crate) stdout: Option<BufReader<ChildStdout>>,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `tina-bench child <workload> <system> <port> <cpu> <extra…>`.
    /// `cpu` `None` leaves the child unpinned.
    pub(crate) fn start(
        workload: &str,
        system: &str,
        cpu: Option<usize>,
        extra: &[String],
    ) -> Server {
        let port = free_port();
        let cpu = cpu.map_or_else(|| "-".to_string(), |c| c.to_string());
        let exe = std::env::current_exe().expect("own executable");
        let mut child = Command::new(exe)
            .args(["child", workload, system, &port.to_string(), &cpu])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server child");
        let stdout = child.stdout.take().map(BufReader::new);
        Server {
            child,
            stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics if the child has exited.
    pub(crate) fn check_alive(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the server child exited ({status}) {what}");
        }
    }

    /// The next line the child printed (panics at end of file).
    pub(crate) fn line(&mut self) -> String {
        let mut line = String::new();
        let out = self.stdout.as_mut().expect("child stdout");
        let n = out.read_line(&mut line).expect("read the child's stdout");
        assert!(n > 0, "the server child closed its stdout early");
        line.trim().to_string()
    }

    /// Connects to the server, retrying for up to 10 s while it boots.
    pub(crate) fn connect(&mut self) -> TcpStream {
        let deadline = StdInstant::now() + StdDuration::from_secs(10);
        loop {
            match TcpStream::connect(self.addr) {
                Ok(s) => {
                    s.set_nodelay(true).expect("TCP_NODELAY");
                    return s;
                }
                Err(e) => {
                    self.check_alive("before accepting a connection");
                    assert!(
                        StdInstant::now() < deadline,
                        "cannot connect to {}: {e}",
                        self.addr
                    );
                    std::thread::sleep(StdDuration::from_millis(5));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pins the whole child process (its later threads inherit the mask) to `cpu`.
pub(crate) fn pin_child(args: &[String]) -> (SocketAddr, Option<usize>) {
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("port");
    let cpu: Option<usize> = args.get(2).and_then(|c| c.parse().ok());
    if let Some(cpu) = cpu {
        harness::pin_current_thread(cpu);
    }
    (SocketAddr::from(([127, 0, 0, 1], port)), cpu)
}

/// The runtime configuration every Tina child uses: defaults, except the backend, the CPU
/// and the boot lines (not printed).
fn tina_config(system: &str, cpu: Option<usize>) -> tina_linux::Config {
    tina_linux::Config {
        backend: if system.starts_with("tina-epoll") {
            tina_linux::Backend::Epoll
        } else {
            tina_linux::Backend::Uring
        },
        cpus: cpu.map(|c| vec![c]),
        announce: false,
        log_level: tina_core::log::Level::Warn,
        ..tina_linux::Config::default()
    }
}

/// Runs a Tina server child (`tina-uring…` or `tina-epoll…`, on `cpu`) until it is stopped;
/// exits the process if the runtime refuses to boot.
pub(crate) fn serve_tina_child(spec: &SystemSpec<'_>, system: &str, cpu: Option<usize>) {
    if let Err(e) = tina_linux::run(spec, &tina_config(system, cpu), &tina_linux::Control::new()) {
        eprintln!("tina: {e}");
        std::process::exit(1);
    }
}

/// `samples[q‰]` of sorted samples.
pub(crate) fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

/// `median (min–max)` of `v` formatted by `f`.
pub(crate) fn spread_with(v: &[u64], f: impl Fn(u64) -> String) -> String {
    let s = Spread::of(v);
    format!("{} ({}–{})", f(s.median), f(s.min), f(s.max))
}

/// Per-round `a ÷ b` as `median (min–max)`, or why there is no ratio.
pub(crate) fn ratio_text(a: &[u64], b: &[u64]) -> String {
    if b.contains(&0) {
        "— (peer 0)".to_string()
    } else {
        harness::ratio_spread(&ratios(a, b))
    }
}

/// Per-round `a ÷ b` in per mille.
pub(crate) fn ratios(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| a * 1000 / b.max(1))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Child side: the servers.

const RETRY_ACCEPT: UserTag = UserTag::new(0x71);

/// Accepts connections and spawns a [`Stamp`] for each.
struct Acceptor {
    socket: Fd,
}

impl Acceptor {
    fn accept(&self) -> Effect {
        Effect::Io(IoOp::Accept {
            listener: self.socket,
        })
    }
}

impl Isolate for Acceptor {
    type Args = tina_examples::echo::ListenArgs;

    fn init(args: &Self::Args, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let addr = args.addr;
        let socket = ctx
            .socket(Domain::of(&addr), SocketKind::Stream)
            .map_err(|_| CrashReason("socket() failed"))?;
        ctx.own_fd(Some(socket));
        let _ = ctx.set_option(socket, SocketOption::ReuseAddr(true));
        ctx.bind(socket, addr)
            .map_err(|_| CrashReason("bind() failed"))?;
        ctx.listen(socket, args.backlog.max(1))
            .map_err(|_| CrashReason("listen() failed"))?;
        let me = Acceptor { socket };
        let first = me.accept();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.tag() == RETRY_ACCEPT.into() {
            return self.accept();
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        match (c.kind, c.result, c.fd()) {
            (IoKind::Accept, Ok(_), Some(fd)) => {
                if ctx.spawn::<Stamp>(&fd.0).is_err() {
                    panic!("cannot spawn a connection isolate");
                }
                self.accept()
            }
            (IoKind::Accept, Err(_), _) => {
                match ctx.start_timer(Duration::from_millis(1), RETRY_ACCEPT) {
                    Ok(_) => Effect::Receive,
                    Err(_) => self.accept(),
                }
            }
            _ => self.accept(),
        }
    }
}

/// One connection: stamps every 8-byte message with its receive time and sends both back.
struct Stamp {
    socket: Fd,
}

impl Stamp {
    fn recv(&self) -> Effect {
        Effect::Io(IoOp::Recv {
            socket: self.socket,
            len: PING as u32,
        })
    }

    fn on_completion(&mut self, c: IoCompletion, now_ns: u64, ctx: &mut Ctx) -> Effect {
        match (c.kind, c.result, c.buf) {
            (IoKind::Recv, Ok(n), Some(buf)) if n as usize == PING => {
                let Ok(bytes) = ctx.io_buffer_mut(buf) else {
                    panic!("the receive buffer is not held");
                };
                bytes[PING..PONG].copy_from_slice(&now_ns.to_le_bytes());
                Effect::Io(IoOp::Send {
                    socket: self.socket,
                    buf,
                    len: PONG as u32,
                })
            }
            // The client left (it resets the connection at the end of a round).
            (IoKind::Recv, Ok(0) | Err(_), _) => Effect::Io(IoOp::Close { fd: self.socket }),
            (IoKind::Recv, Ok(n), _) => panic!("received {n} bytes, expected {PING}"),
            (IoKind::Send, Ok(n), _) if n as usize == PONG => self.recv(),
            (IoKind::Close, _, _) => Effect::Done,
            (kind, result, _) => panic!("unexpected completion {kind:?} {result:?}"),
        }
    }
}

impl Isolate for Stamp {
    type Args = i32;

    fn init(fd: &i32, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let socket = Fd(*fd);
        ctx.own_fd(Some(socket));
        let _ = ctx.set_option(socket, SocketOption::NoDelay(true));
        let me = Stamp { socket };
        let first = me.recv();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        // First thing: the time this handler saw the message.
        let now_ns = monotonic_ns();
        match msg.io_completion() {
            Some(c) if !matches!(c.result, Err(IoError::Canceled)) => {
                self.on_completion(c, now_ns, ctx)
            }
            Some(_) => Effect::Io(IoOp::Close { fd: self.socket }),
            None => Effect::Receive,
        }
    }
}

fn serve_tina(system: &str, addr: SocketAddr, cpu: Option<usize>) {
    let connections = 16;
    let types = [
        TypeSpec::of::<Acceptor>("acceptor"),
        TypeSpec::of::<Stamp>("stamp").capacity(connections),
    ];
    let children = [ChildSpec::isolate::<Acceptor>(
        &tina_examples::echo::ListenArgs::new(addr, 128),
        Restart::Permanent,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(connections),
    }];
    let spec = SystemSpec::new(&shards, &types);
    serve_tina_child(&spec, system, cpu);
}

fn serve_tokio(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; PONG];
                loop {
                    let n = match s.read(&mut buf[..PING]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let now_ns = monotonic_ns();
                    assert_eq!(n, PING, "received {n} bytes, expected {PING}");
                    buf[PING..].copy_from_slice(&now_ns.to_le_bytes());
                    if s.write_all(&buf).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// The floor: one thread blocked in `read` on the accepted socket, no runtime at all.
fn serve_blocking(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).expect("bind");
    for stream in listener.incoming() {
        let Ok(mut s) = stream else {
            continue;
        };
        let _ = s.set_nodelay(true);
        let mut buf = [0u8; PONG];
        while s.read_exact(&mut buf[..PING]).is_ok() {
            let now_ns = monotonic_ns();
            buf[PING..].copy_from_slice(&now_ns.to_le_bytes());
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    }
}

/// The child-process side of B5: `child idle <system> <port> <cpu|->`; serves until killed.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let system = args.first().map(String::as_str).unwrap_or("");
    let (addr, cpu) = pin_child(args);
    match system {
        "tina-uring" | "tina-epoll" => serve_tina(system, addr, cpu),
        "tokio" => serve_tokio(addr),
        "blocking" => serve_blocking(addr),
        _ => {
            eprintln!("unknown B5 system `{system}`");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Harness side: the client.

/// SplitMix64: a small seeded generator, the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One round of one system.
#[derive(Clone, Default)]
struct Round {
    /// `utime + stime` over the idle window, in nanoseconds (tick resolution).
    idle_tick_ns: u64,
    /// Nanoseconds on a CPU over the idle window (schedstat).
    idle_sched_ns: u64,
    /// Times a thread of the server was put on a CPU over the idle window.
    idle_wakeups: u64,
    /// Threads of the server process.
    threads: usize,
    /// Each thread's name and wake-ups over the idle window.
    thread_wakeups: Vec<(String, u64)>,
    wake_p50: u64,
    wake_p99: u64,
    wake_max: u64,
    rtt_p50: u64,
    rtt_p99: u64,
    /// The client thread's CPU over the wake phase, in per mille of the phase.
    client_cpu_per_mille: u64,
}

fn exchange(stream: &mut TcpStream, stamp: u64) -> (u64, u64) {
    stream
        .write_all(&stamp.to_le_bytes())
        .expect("send a wake-up message");
    let mut pong = [0u8; PONG];
    stream.read_exact(&mut pong).expect("read the answer");
    let received = monotonic_ns();
    let word = |i: usize| u64::from_le_bytes(pong[i..i + 8].try_into().expect("8 bytes"));
    assert_eq!(word(0), stamp, "the server answered another message");
    (word(PING), received)
}

fn one_round(
    system: &str,
    cpu: Option<usize>,
    window: StdDuration,
    messages: usize,
    seed: u64,
) -> Round {
    let mut server = Server::start("idle", system, cpu, &[]);
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(StdDuration::from_secs(5)))
        .expect("read timeout");
    // The realistic idle state: a connection served once, its receive pending.
    exchange(&mut stream, monotonic_ns());
    std::thread::sleep(StdDuration::from_millis(100));
    server.check_alive("before the idle window");

    let pid = server.pid();
    let (ticks0, sched0) = (process_cpu_ticks(pid), thread_schedstats(pid));
    let start = monotonic_ns();
    std::thread::sleep(window);
    let (ticks1, sched1) = (process_cpu_ticks(pid), thread_schedstats(pid));
    let window_ns = monotonic_ns() - start;
    let names = |v: &[(String, u64, u64)]| v.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&sched0),
        names(&sched1),
        "the server's threads changed during the idle window (schedstat would miss some)"
    );
    let thread_wakeups: Vec<(String, u64)> = sched0
        .iter()
        .zip(&sched1)
        .map(|(a, b)| (a.0.clone(), b.2 - a.2))
        .collect();
    let sum = |v: &[(String, u64, u64)]| v.iter().fold((0, 0), |(n, s), t| (n + t.1, s + t.2));
    let (sched0, sched1) = (sum(&sched0), sum(&sched1));
    let tick_ns = 1_000_000_000 / clock_ticks_per_s();
    let per_window = |ns: u64| ns * window.as_nanos() as u64 / window_ns.max(1);
    let mut round = Round {
        idle_tick_ns: per_window((ticks1 - ticks0) * tick_ns),
        idle_sched_ns: per_window(sched1.0 - sched0.0),
        idle_wakeups: sched1.1 - sched0.1,
        threads: thread_wakeups.len(),
        thread_wakeups,
        ..Round::default()
    };

    let mut rng = Rng(seed);
    let mut wake = Vec::with_capacity(messages);
    let mut rtt = Vec::with_capacity(messages);
    let (phase_start, client_cpu0) = (monotonic_ns(), harness::thread_cpu_ns());
    for _ in 0..messages {
        std::thread::sleep(StdDuration::from_nanos(rng.between(GAP_NS.0, GAP_NS.1)));
        let sent = monotonic_ns();
        let (seen, received) = exchange(&mut stream, sent);
        assert!(
            sent <= seen && seen <= received,
            "stamps out of order: sent {sent}, seen {seen}, received {received}"
        );
        wake.push(seen - sent);
        rtt.push(received - sent);
    }
    let phase_ns = monotonic_ns() - phase_start;
    round.client_cpu_per_mille = (harness::thread_cpu_ns() - client_cpu0) * 1000 / phase_ns.max(1);
    server.check_alive("during the wake phase");
    reset_close(stream);
    wake.sort_unstable();
    rtt.sort_unstable();
    round.wake_p50 = percentile(&wake, 500);
    round.wake_p99 = percentile(&wake, 990);
    round.wake_max = wake[wake.len() - 1];
    round.rtt_p50 = percentile(&rtt, 500);
    round.rtt_p99 = percentile(&rtt, 990);
    round
}

/// Nanoseconds as microseconds with one decimal.
fn us(ns: u64) -> String {
    harness::milli(ns)
}

/// Runs B5 and adds its rows to the summary.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    let window =
        StdDuration::from_secs(common.seconds.unwrap_or(if common.quick { 1 } else { 10 }));
    let messages = if common.quick { 20 } else { 200 };
    let cpus = harness::two_cpus();
    if let Some([_, client]) = cpus {
        harness::pin_current_thread(client);
    }
    println!("## B5 — idle CPU and wake-up latency\n");
    match cpus {
        Some([server, client]) => println!(
            "Server in a child process pinned to CPU {server}; client (this process, one thread) \
             pinned to CPU {client}."
        ),
        None => println!("Fewer than two CPUs allowed: nothing is pinned."),
    }
    println!(
        "Idle: one connection accepted and served once, a receive pending; nothing sent for {} s; \
         server CPU over exactly that window. Wake: {messages} single 8-byte messages on that \
         connection at random gaps of {}–{} ms (seeded, the same for every system of a round); \
         wake-up = server's CLOCK_MONOTONIC on receipt − client's just before `write` (one way). \
         {} interleaved rounds. Tina: one shard, default ShardConfig and runtime Config (watchdog \
         and signal-handling thread included). tokio: current-thread runtime, task per \
         connection. blocking: one thread blocked in `read`, no runtime — the floor, not a \
         peer.\n",
        window.as_secs(),
        GAP_NS.0 / 1_000_000,
        GAP_NS.1 / 1_000_000,
        common.rounds
    );

    let mut results: Vec<Vec<Round>> = vec![Vec::new(); SYSTEMS.len()];
    for round in 0..common.rounds {
        let seed = 0xB5 + round as u64;
        for (i, system) in SYSTEMS.iter().enumerate() {
            results[i].push(one_round(
                system,
                cpus.map(|c| c[0]),
                window,
                messages,
                seed,
            ));
        }
    }

    let tick_ms = 1000 / clock_ticks_per_s();
    let window_ns = window.as_nanos() as u64;
    // Percent of a core with two decimals (`ratio` prints per mille as x.yy).
    let pct = |ns: u64| format!("{} %", harness::ratio(ns * 100_000 / window_ns.max(1)));
    // Microseconds of CPU per second of window.
    let per_s = |ns: u64| format!("{} µs/s", ns * 1_000_000 / window_ns.max(1));
    let tokio = &results[TOKIO];
    let col =
        |rounds: &[Round], f: fn(&Round) -> u64| -> Vec<u64> { rounds.iter().map(f).collect() };

    println!(
        "Idle CPU: `utime + stime` is counted in {tick_ms} ms clock ticks (over {} s one tick is \
         {} of a core); schedstat is the kernel's nanosecond run time of every thread. Wake-ups: \
         times any thread of the server was put on a CPU during the window.\n",
        window.as_secs(),
        pct(tick_ms * 1_000_000)
    );
    println!(
        "| system | threads | CPU idle, utime+stime | CPU idle, schedstat | wake-ups/s | \
         schedstat CPU tina ÷ tokio |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, system) in SYSTEMS.iter().enumerate() {
        let r = &results[i];
        let wakeups: Vec<u64> = r
            .iter()
            .map(|x| x.idle_wakeups * 1_000_000_000 / window_ns.max(1))
            .collect();
        let ratio = if i >= TOKIO {
            "—".to_string()
        } else {
            ratio_text(
                &col(r, |x| x.idle_sched_ns),
                &col(tokio, |x| x.idle_sched_ns),
            )
        };
        println!(
            "| {system} | {} | {} | {} | {} | {ratio} |",
            r[0].threads,
            spread_with(&col(r, |x| x.idle_tick_ns), pct),
            spread_with(&col(r, |x| x.idle_sched_ns), per_s),
            spread_with(&wakeups, |v| v.to_string()),
        );
    }
    println!();
    println!("Wake-ups per thread over the idle window (last round):\n");
    for (i, system) in SYSTEMS.iter().enumerate() {
        let last = &results[i][results[i].len() - 1];
        let threads: Vec<String> = last
            .thread_wakeups
            .iter()
            .map(|(name, n)| format!("`{name}` {n}"))
            .collect();
        println!("- {system}: {}", threads.join(", "));
    }
    println!();

    println!("Wake-up latency (µs), one way, per round then median (min–max) over rounds:\n");
    println!(
        "| system | wake p50 | wake p99 | wake max | round trip p50 | round trip p99 | \
         p50 tina ÷ tokio | p99 tina ÷ tokio | client CPU |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, system) in SYSTEMS.iter().enumerate() {
        let r = &results[i];
        let (r50, r99) = if i >= TOKIO {
            ("—".to_string(), "—".to_string())
        } else {
            (
                ratio_text(&col(r, |x| x.wake_p50), &col(tokio, |x| x.wake_p50)),
                ratio_text(&col(r, |x| x.wake_p99), &col(tokio, |x| x.wake_p99)),
            )
        };
        let client = Spread::of(&col(r, |x| x.client_cpu_per_mille));
        println!(
            "| {system} | {} | {} | {} | {} | {} | {r50} | {r99} | {}‰ |",
            spread_with(&col(r, |x| x.wake_p50), us),
            spread_with(&col(r, |x| x.wake_p99), us),
            spread_with(&col(r, |x| x.wake_max), us),
            spread_with(&col(r, |x| x.rtt_p50), us),
            spread_with(&col(r, |x| x.rtt_p99), us),
            client.max,
        );
    }
    println!();
    if messages < 100 {
        println!("({messages} messages per round: p99 is the largest but one or the largest.)\n");
    }

    let tina = &results[0];
    let idle_tina = Spread::of(&col(tina, |x| x.idle_sched_ns));
    let idle_tokio = Spread::of(&col(tokio, |x| x.idle_sched_ns));
    let idle_ticks = Spread::of(&col(tina, |x| x.idle_tick_ns));
    summary.add(Row {
        id: "B5 idle".into(),
        metric: format!(
            "server CPU while idle, % of a core ({} s, schedstat)",
            window.as_secs()
        ),
        tina: format!(
            "{} = {} (ticks {})",
            pct(idle_tina.median),
            per_s(idle_tina.median),
            pct(idle_ticks.median)
        ),
        peer: format!(
            "tokio {} = {}",
            pct(idle_tokio.median),
            per_s(idle_tokio.median)
        ),
        ratio: ratio_text(
            &col(tina, |x| x.idle_sched_ns),
            &col(tokio, |x| x.idle_sched_ns),
        ),
        target: harness::verdict(
            "< 1% of a core",
            idle_tina.median.max(idle_ticks.median) * 100 < window_ns,
        ),
    });
    let (p50, p99) = (
        Spread::of(&col(tina, |x| x.wake_p50)),
        Spread::of(&col(tina, |x| x.wake_p99)),
    );
    let (k50, k99) = (
        Spread::of(&col(tokio, |x| x.wake_p50)),
        Spread::of(&col(tokio, |x| x.wake_p99)),
    );
    summary.add(Row {
        id: "B5 wake".into(),
        metric: "wake-up latency p50 / p99, µs (one way)".into(),
        tina: format!("{} / {}", us(p50.median), us(p99.median)),
        peer: format!("tokio {} / {}", us(k50.median), us(k99.median)),
        ratio: format!(
            "p50 {} · p99 {}",
            ratio_text(&col(tina, |x| x.wake_p50), &col(tokio, |x| x.wake_p50)),
            ratio_text(&col(tina, |x| x.wake_p99), &col(tokio, |x| x.wake_p99))
        ),
        target: harness::verdict("p99 < 50 µs", p99.median < WAKE_TARGET_NS),
    });
}
