//! Whole-process behaviour of tina-linux, with the server in a child process (this binary
//! re-executed): graceful shutdown on SIGTERM with open connections (exit 0 within the
//! timeout) on both backends, SIGUSR1 stats, the epoll fallback under a seccomp filter that
//! denies io_uring (with the logged reason), a hardware fault in a handler (diagnostic and a
//! non-zero exit), the watchdog reporting a handler stuck in a loop, and SIGUSR2 reviving a
//! quarantined shard.
//!
//! The binary has no libtest harness because the child runs the runtime on its main thread,
//! where the control signals must be blocked before any other thread exists.

mod linux_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use linux_common::*;
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec, UserTag,
};
use tina_linux::{Backend, Config, Control, WatchdogConfig, WatchdogPolicy, run};

const CHILD_ENV: &str = "TINA_LINUX_TEST_CHILD";
const SHUTDOWN_TIMEOUT: StdDuration = StdDuration::from_secs(3);

const WAKE: UserTag = UserTag::new(0x44);

/// Writes through a null pointer in its first handler call: a hardware fault.
struct Faulty;

impl Isolate for Faulty {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(50), WAKE)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((Faulty, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.tag() == WAKE.into() {
            let p = std::hint::black_box(core::ptr::null_mut::<u64>());
            // SAFETY: deliberately unsound: this test needs a real SIGSEGV inside a handler.
            unsafe { p.write_volatile(1) };
        }
        Effect::Receive
    }
}

/// Spins for 1.5 s in one handler call (a handler "stuck in a loop"), once.
struct Stuck;

impl Isolate for Stuck {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(50), WAKE)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((Stuck, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag() == WAKE.into() {
            let until = StdInstant::now() + StdDuration::from_millis(1_500);
            while StdInstant::now() < until {
                std::hint::spin_loop();
            }
        }
        Effect::Receive
    }
}

/// Crashes on every message: its shard's root group runs out of restarts, the shard recovers
/// until it is quarantined.
struct CrashLoop;

impl Isolate for CrashLoop {
    type Args = ();

    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((CrashLoop, Effect::Yield))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        Effect::Crash(CrashReason("crash loop"))
    }
}

/// Runs a one-shard system of one isolate `T` (for the fault and watchdog children).
fn run_single<T: Isolate<Args = ()>>(name: &'static str) -> ! {
    let types = [TypeSpec::of::<T>(name)];
    let children = [ChildSpec::isolate::<T>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = SystemSpec::new(&shards, &types);
    let config = Config {
        watchdog: Some(WatchdogConfig {
            stall_after: StdDuration::from_millis(300),
            policy: WatchdogPolicy::Report,
        }),
        shutdown_timeout: Some(SHUTDOWN_TIMEOUT),
        ..Config::default()
    };
    match run(&spec, &config, &Control::new()) {
        Ok(r) => std::process::exit(if r.clean { 0 } else { 1 }),
        Err(e) => {
            eprintln!("child: {e}");
            std::process::exit(2);
        }
    }
}

/// The child: an echo server with signal handling, as a real service runs it (or one of the
/// single-isolate systems).
fn child(mode: &str) -> ! {
    let mut parts = mode.split(':');
    let kind = parts.next().unwrap_or("");
    match kind {
        "segv" => run_single::<Faulty>("faulty"),
        "stuck" => run_single::<Stuck>("stuck"),
        "crashloop" => run_single::<CrashLoop>("crashloop"),
        _ => {}
    }
    let backend = Backend::parse(parts.next().unwrap_or("auto")).unwrap_or(Backend::Auto);
    let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if kind == "seccomp"
        && let Err(e) = tina_linux::deny_io_uring_with_seccomp()
    {
        eprintln!("child: cannot install the seccomp filter: errno {e}");
        std::process::exit(3);
    }
    let spec = echo_spec(SocketAddr::from(([127, 0, 0, 1], port)), 2, 64);
    let config = Config {
        backend,
        shutdown_timeout: Some(SHUTDOWN_TIMEOUT),
        ..Config::default()
    };
    match run(spec, &config, &Control::new()) {
        Ok(r) => {
            eprintln!("child: stopped, clean={}", r.clean);
            std::process::exit(if r.clean { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("child: {e}");
            std::process::exit(2);
        }
    }
}

/// A child server and its stderr lines (read on a thread, delivered through a channel).
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn spawn(mode: &str) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(CHILD_ENV, mode)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child server");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a stderr line containing `needle` and returns it.
    fn wait_line(&mut self, needle: &str) -> String {
        self.wait_line_with(&[needle])
    }

    /// Waits (bounded) for a stderr line containing every one of `needles` and returns it.
    fn wait_line_with(&mut self, needles: &[&str]) -> String {
        let matches = |l: &String| needles.iter().all(|n| l.contains(n));
        let deadline = StdInstant::now() + StdDuration::from_secs(10);
        if let Some(l) = self.seen.iter().find(|l| matches(l)) {
            return l.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(StdInstant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if matches(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no stderr line containing {needles:?} within 10 s; got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let r = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(r, 0, "kill failed");
    }

    /// Waits (bounded) for the child's exit; returns its code and how long it took.
    fn wait_exit(mut self, bound: StdDuration) -> (Option<i32>, StdDuration) {
        let start = StdInstant::now();
        let (tx, rx) = mpsc::channel();
        let pid = self.child.id();
        std::thread::spawn(move || {
            let status = self.child.wait();
            let _ = tx.send(status);
        });
        match rx.recv_timeout(bound) {
            Ok(Ok(status)) => (status.code(), start.elapsed()),
            _ => {
                // SAFETY: killing our own child; no memory-safety preconditions.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                panic!("the child did not exit within {bound:?}");
            }
        }
    }
}

fn graceful_shutdown_with_open_connections(backend: &str) {
    let port = free_port();
    let mut server = Server::spawn(&format!("server:{backend}:{port}"));
    // Both shards are up once each listener has logged.
    server.wait_line_with(&["tina[s0 ", "listening on"]);
    server.wait_line_with(&["tina[s1 ", "listening on"]);
    server.wait_line(&format!("with the {} backend", backend_name(backend)));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut clients: Vec<_> = (0..8).map(|_| connect(addr)).collect();
    let mut back = [0u8; 64];
    for s in clients.iter_mut() {
        echo_once(s, b"open and idle", &mut back).expect("echo");
    }
    server.signal(libc::SIGUSR1);
    let stats = server.wait_line("stats shard 1");
    assert!(
        stats.contains("Running"),
        "SIGUSR1 prints each shard's stats: {stats}"
    );
    // The connections stay open and idle (parked on a receive) while we ask for shutdown.
    server.signal(libc::SIGTERM);
    server.wait_line("graceful shutdown");
    for s in clients.iter_mut() {
        assert!(
            closed_by_peer(s),
            "the server closes open connections on shutdown"
        );
    }
    let (code, took) = server.wait_exit(SHUTDOWN_TIMEOUT + StdDuration::from_secs(5));
    assert_eq!(code, Some(0), "a clean shutdown exits 0");
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "shutdown took {took:?}, over the timeout"
    );
}

fn backend_name(b: &str) -> &'static str {
    if b == "epoll" { "epoll" } else { "io_uring" }
}

fn seccomp_denies_io_uring_falls_back_to_epoll() {
    let port = free_port();
    let mut server = Server::spawn(&format!("seccomp:auto:{port}"));
    let reason = server.wait_line("falling back to epoll");
    assert!(
        reason.contains("EPERM") && reason.contains("seccomp"),
        "the fallback line names the reason: {reason}"
    );
    server.wait_line("with the epoll backend");
    server.wait_line("listening on");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = connect(addr);
    let mut back = [0u8; 64];
    echo_once(&mut s, b"served over epoll", &mut back).expect("echo over the fallback");
    assert_eq!(&back[..16], b"served over epoll"[..16].as_ref());
    drop(s);
    server.signal(libc::SIGTERM);
    let (code, _) = server.wait_exit(SHUTDOWN_TIMEOUT + StdDuration::from_secs(5));
    assert_eq!(code, Some(0));
    eprintln!("fallback reason logged: {reason}");
}

fn hardware_fault_in_a_handler_is_reported_and_exits_nonzero() {
    let mut child = Server::spawn("segv");
    let line = child.wait_line("fatal SIGSEGV");
    assert!(
        line.contains("on shard 0"),
        "the diagnostic names the shard: {line}"
    );
    let (code, _) = child.wait_exit(StdDuration::from_secs(10));
    assert_eq!(code, Some(128 + libc::SIGSEGV), "exit status 128 + SIGSEGV");
}

fn watchdog_reports_a_handler_stuck_in_a_loop() {
    let mut child = Server::spawn("stuck");
    let line = child.wait_line("tina watchdog: shard 0 has been stuck");
    assert!(
        line.contains("stuck"),
        "the report names the types on the shard: {line}"
    );
    child.wait_line("making progress again");
    child.signal(libc::SIGTERM);
    let (code, _) = child.wait_exit(SHUTDOWN_TIMEOUT + StdDuration::from_secs(5));
    assert_eq!(code, Some(0));
}

fn sigusr2_revives_a_quarantined_shard() {
    let mut child = Server::spawn("crashloop");
    child.wait_line("shard 0: quarantined");
    child.signal(libc::SIGUSR2);
    child.wait_line("SIGUSR2: reviving");
    child.wait_line("shard 0: revived");
    // It crash-loops again and is quarantined again; a quarantined shard stops at once.
    child.signal(libc::SIGTERM);
    let (code, _) = child.wait_exit(SHUTDOWN_TIMEOUT + StdDuration::from_secs(5));
    assert_eq!(code, Some(0));
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child(&mode);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [(&str, fn()); 6] = [
        ("graceful_shutdown_with_open_connections_uring", || {
            graceful_shutdown_with_open_connections("uring")
        }),
        ("graceful_shutdown_with_open_connections_epoll", || {
            graceful_shutdown_with_open_connections("epoll")
        }),
        (
            "seccomp_denies_io_uring_falls_back_to_epoll",
            seccomp_denies_io_uring_falls_back_to_epoll,
        ),
        (
            "hardware_fault_in_a_handler_is_reported_and_exits_nonzero",
            hardware_fault_in_a_handler_is_reported_and_exits_nonzero,
        ),
        (
            "watchdog_reports_a_handler_stuck_in_a_loop",
            watchdog_reports_a_handler_stuck_in_a_loop,
        ),
        (
            "sigusr2_revives_a_quarantined_shard",
            sigusr2_revives_a_quarantined_shard,
        ),
    ];
    let start = StdInstant::now();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|w| name.contains(w.as_str())) {
            filtered += 1;
            continue;
        }
        let ok = std::panic::catch_unwind(f).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} \
         filtered out; finished in {:.2}s\n",
        if failed == 0 { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    std::process::exit(if failed == 0 { 0 } else { 101 });
}
