//! Shared helpers for the tina-linux integration tests: an echo system from the shared
//! isolates, a runtime on a background thread, and bounded loopback clients.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration as StdDuration;

use tina_core::{ChildSpec, GroupSpec, Restart, ShardConfig, ShardSpec, SystemSpec, TypeSpec};
use tina_examples::echo::{Connection, ListenArgs, Listener};
use tina_linux::{Backend, Config, Control, RunError, RunReport, ShardStats, run};

/// Both backends, for tests that run on each.
pub(crate) const BACKENDS: [Backend; 2] = [Backend::Uring, Backend::Epoll];

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// An echo system: `shards` shards, each a listener on `addr` (SO_REUSEPORT) and up to
/// `connections` connection isolates, with the poison trigger armed (for the containment
/// tests). Leaked: tests run it once.
pub(crate) fn echo_spec(
    addr: SocketAddr,
    shards: usize,
    connections: u32,
) -> &'static SystemSpec<'static> {
    let types: &'static [TypeSpec] = Box::leak(Box::new([
        TypeSpec::of::<Listener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(connections),
    ]));
    let children: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<Listener>(
            &ListenArgs::new(addr, 1024).with_poison_trigger(),
            Restart::Permanent,
        )]));
    let shard_specs: &'static [ShardSpec<'static>] = Box::leak(
        vec![
            ShardSpec {
                root: GroupSpec::one_for_one(children).dynamic(connections),
            };
            shards
        ]
        .into_boxed_slice(),
    );
    let mut spec = SystemSpec::new(shard_specs, types);
    spec.shard = ShardConfig {
        io_buffer_count: connections + 64,
        io_buffer_size: 16 * 1024,
        io_submissions_per_tick_max: connections + 64,
        ..ShardConfig::DEFAULT
    };
    Box::leak(Box::new(spec))
}

/// A config for in-process runtimes: no signal handling (the test harness owns signals).
pub(crate) fn test_config(backend: Backend) -> Config {
    Config {
        backend,
        signals: false,
        ..Config::default()
    }
}

/// A runtime running on a background thread.
pub(crate) struct Running {
    pub(crate) control: &'static Control,
    thread: std::thread::JoinHandle<Result<RunReport, RunError>>,
}

impl Running {
    /// Boots `spec` and waits (bounded) until every shard runs.
    pub(crate) fn start(spec: &'static SystemSpec<'static>, config: Config) -> Running {
        let control: &'static Control = Box::leak(Box::new(Control::new()));
        let thread = std::thread::Builder::new()
            .name("tina-control".into())
            .spawn(move || run(spec, &config, control))
            .expect("spawn the runtime thread");
        if !control.wait_running(StdDuration::from_secs(10)) {
            if thread.is_finished() {
                let ended = thread.join();
                panic!("the runtime ended before it ran: {ended:?}");
            }
            panic!("the runtime did not boot within 10 s");
        }
        Running { control, thread }
    }

    /// The shards' published stats once `settled` holds, or after 10 s (the last snapshot
    /// either way, so the caller's assertion reports what was seen). Shards publish when
    /// they go to sleep and every 10 ms while busy, so a count can lag the traffic that
    /// caused it by up to one publication.
    #[allow(dead_code)]
    pub(crate) fn stats_when(&self, settled: impl Fn(&[ShardStats]) -> bool) -> Vec<ShardStats> {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            let stats = self.control.stats();
            if settled(&stats) || std::time::Instant::now() >= deadline {
                return stats;
            }
            std::thread::yield_now();
        }
    }

    /// Graceful shutdown; returns the report.
    pub(crate) fn stop(self) -> RunReport {
        self.control.shutdown();
        self.thread
            .join()
            .expect("runtime thread")
            .expect("runtime result")
    }
}

/// A tiny deterministic PRNG (xorshift64*), so payloads are reproducible per seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Random bytes, never the echo server's poison byte (0xFF, which makes it panic).
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        for b in buf.iter_mut() {
            if *b == tina_examples::echo::POISON_BYTE {
                *b = 0;
            }
        }
    }
}

/// Connects with bounded timeouts (connect, read, write).
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, StdDuration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    s.set_write_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Writes `out` and reads exactly as many bytes back into `back`.
pub(crate) fn echo_once(s: &mut TcpStream, out: &[u8], back: &mut [u8]) -> std::io::Result<()> {
    s.write_all(out)?;
    s.read_exact(&mut back[..out.len()])
}

/// Whether the peer closed the connection (EOF or reset) within the read timeout.
pub(crate) fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
        }
    }
}

/// Sets a small receive buffer on a client socket so the server's sends go out in pieces.
pub(crate) fn shrink_receive_buffer(s: &TcpStream, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a live socket with a pointer to a live i32 and its size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            core::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// CPU time (user + system) of this process so far, in clock ticks, from /proc/self/stat.
pub(crate) fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// How many times the runtime's threads (named `tina-*`: shards, watchdog, and the thread
/// [`Running`] calls `run` on) have been switched out so far: each wake-up from a sleep is
/// one voluntary switch, from /proc/self/task/*/status.
#[allow(dead_code)]
pub(crate) fn runtime_thread_switches() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = task.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("tina-") {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}

/// Clock ticks per second for /proc CPU times.
pub(crate) fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}
