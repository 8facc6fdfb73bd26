//! A stalled stderr (a pipe nobody reads) stops nothing: with the pipe full, a flood of
//! refused connections does not stop the server serving its clients, one SIGTERM stops it
//! with exit 0 within the shutdown timeout, and a hardware fault or the watchdog's abort
//! still ends the process. The server runs in a child process (this binary re-executed, and
//! the `tcp_echo` binary as a user runs it) whose stderr is a pipe the test fills and then
//! never reads. And with stderr read, a
//! refusal flood gives a bounded number of lines that account for every refusal.
//!
//! The binary has no libtest harness because the child runs the runtime on its main thread,
//! where the control signals must be blocked before any other thread exists.

mod example_bins;
mod linux_common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, PipeReader, PipeWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use linux_common::*;
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec, UserTag,
};
use tina_linux::{Config, Control, WatchdogConfig, WatchdogPolicy, run};

const CHILD_ENV: &str = "TINA_STDERR_TEST_CHILD";
const SHUTDOWN_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Connection isolates per shard (the issue's `tcp_echo --connections 4`).
const CONNECTIONS: u32 = 4;
const SHARDS: usize = 2;
/// Connections refused while stderr is stalled.
const FLOOD: usize = 1_500;

const WAKE: UserTag = UserTag::new(0x44);

/// Writes through a null pointer in its first handler call: a hardware fault.
struct Faulty;

impl Isolate for Faulty {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(20), WAKE)
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

/// Spins in one handler call until the process ends (the watchdog aborts it).
struct Stuck;

impl Isolate for Stuck {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(20), WAKE)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((Stuck, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.tag() == WAKE.into() {
            let until = StdInstant::now() + StdDuration::from_secs(30);
            while StdInstant::now() < until {
                std::hint::spin_loop();
            }
        }
        Effect::Receive
    }
}

/// Runs a one-shard system of one isolate `T` (neither logs), the watchdog aborting after
/// 300 ms.
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
            policy: WatchdogPolicy::Abort,
        }),
        shutdown_timeout: Some(SHUTDOWN_TIMEOUT),
        // No boot lines: the process-ending path is the first to meet the stalled pipe.
        announce: false,
        ..Config::default()
    };
    let code = match run(&spec, &config, &Control::new()) {
        Ok(r) => i32::from(!r.clean),
        Err(e) => {
            tina_linux::log_line!("child: {e}");
            2
        }
    };
    tina_linux::log::flush(StdDuration::from_millis(200));
    std::process::exit(code);
}

/// The child: an echo server with signal handling and its own lines printed through
/// `tina_linux::log`, as a service whose stderr may stall should print them.
fn child(mode: &str) -> ! {
    let mut parts = mode.split(':');
    match parts.next().unwrap_or("") {
        "segv" => run_single::<Faulty>("faulty"),
        "stuck" => run_single::<Stuck>("stuck"),
        _ => {}
    }
    let port: u16 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let spec = echo_spec(
        SocketAddr::from(([127, 0, 0, 1], port)),
        SHARDS,
        CONNECTIONS,
    );
    let config = Config {
        shutdown_timeout: Some(SHUTDOWN_TIMEOUT),
        ..Config::default()
    };
    tina_linux::log_line!("child: serving echo on port {port}");
    let code = match run(spec, &config, &Control::new()) {
        Ok(r) => {
            tina_linux::log_line!("child: stopped, clean={}", r.clean);
            i32::from(!r.clean)
        }
        Err(e) => {
            tina_linux::log_line!("child: {e}");
            2
        }
    };
    // Bounded: a stalled stderr must not keep the process from exiting.
    tina_linux::log::flush(StdDuration::from_millis(200));
    std::process::exit(code);
}

/// A pipe for a child's stderr, and a second, non-blocking description of its write end
/// with which the test fills it.
struct StderrPipe {
    reader: PipeReader,
    writer: PipeWriter,
    filler: File,
}

impl StderrPipe {
    fn new() -> StderrPipe {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let filler = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(format!("/proc/self/fd/{}", writer.as_raw_fd()))
            .expect("a second description of the pipe's write end");
        StderrPipe {
            reader,
            writer,
            filler,
        }
    }

    /// Writes until the pipe takes no more; returns the bytes written.
    fn fill(&mut self) -> usize {
        let chunk = [b'.'; 4096];
        let mut filled = 0;
        loop {
            match self.filler.write(&chunk) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return filled,
                Err(e) => panic!("filling the pipe: {e}"),
            }
        }
    }

    /// Spawns the child in `mode` with this pipe as its stderr.
    fn spawn(&self, mode: &str) -> ChildGuard {
        ChildGuard(Some(
            Command::new(std::env::current_exe().expect("own path"))
                .env(CHILD_ENV, mode)
                .stdout(Stdio::null())
                .stderr(self.writer.try_clone().expect("dup the write end"))
                .spawn()
                .expect("spawn the child"),
        ))
    }
}

/// A child process, killed if a failed assertion leaves it running.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    fn take(mut self) -> Child {
        self.0.take().expect("the child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads the child's stderr until `ready` holds for the lines read (at most 15 s), then
/// stops reading for good; returns the lines.
fn read_until(
    reader: &PipeReader,
    ready: impl Fn(&[String]) -> bool + Send + 'static,
) -> Vec<String> {
    let reader = reader.try_clone().expect("dup the read end");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            lines.push(line);
            if ready(&lines) {
                break;
            }
        }
        // The duplicate of the read end closes here; the test's own stays open, unread.
        let _ = tx.send(lines);
    });
    rx.recv_timeout(StdDuration::from_secs(15))
        .expect("the child's startup lines within 15 s")
}

/// Waits (bounded) for the child's exit; returns its status code (`None`: killed by a
/// signal, whose number is returned second) and how long it took.
fn wait_exit(child: ChildGuard, bound: StdDuration) -> (Option<i32>, Option<i32>, StdDuration) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = child.take();
    let start = StdInstant::now();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(bound) {
        Ok(Ok(status)) => (status.code(), status.signal(), start.elapsed()),
        _ => {
            // SAFETY: killing our own child; no memory-safety preconditions.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("the child did not exit within {bound:?} (blocked on its stalled stderr?)");
        }
    }
}

/// Connects until `count` connections are served (echo answered); returns them and how many
/// other connections were refused on the way (the kernel spreads connections over the
/// shards, so one shard can refuse while another still has room).
fn served_clients(addr: SocketAddr, count: usize) -> (Vec<TcpStream>, usize) {
    let mut served = Vec::new();
    let mut refused = 0;
    let mut back = [0u8; 64];
    for _ in 0..20 * count {
        if served.len() == count {
            break;
        }
        let mut s = connect(addr);
        s.set_read_timeout(Some(StdDuration::from_secs(2))).unwrap();
        if echo_once(&mut s, b"before the stall", &mut back).is_ok() {
            assert_eq!(&back[..16], b"before the stall");
            served.push(s);
        } else {
            refused += 1;
        }
    }
    assert_eq!(served.len(), count, "every connection slot serves a client");
    (served, refused)
}

fn stalled_stderr_does_not_stop_serving_and_one_sigterm_exits_cleanly() {
    let port = free_port();
    let pipe = StderrPipe::new();
    let child = pipe.spawn(&format!("server:{port}"));
    stalled_flood_then_sigterm(pipe, child, port, "child: serving echo");
}

/// The same with the `tcp_echo` binary as a user runs it (`--connections 4`, 2 shards): its
/// own lines ("serving", "stopped") go through the runtime's log queue too, so neither its
/// serving nor its exit waits for the stalled reader.
fn tcp_echo_with_stalled_stderr_serves_and_exits_0_on_one_sigterm() {
    let port = free_port();
    let pipe = StderrPipe::new();
    let child = ChildGuard(Some(
        Command::new(example_bins::binary("tcp_echo"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--shards",
                &SHARDS.to_string(),
                "--connections",
                &CONNECTIONS.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(pipe.writer.try_clone().expect("dup the write end"))
            .spawn()
            .expect("spawn tcp_echo"),
    ));
    stalled_flood_then_sigterm(pipe, child, port, "tcp_echo: serving echo");
}

/// With `child` an echo server on `port` (2 shards × 4 connections) whose stderr is `pipe`:
/// reads its startup lines until both shards listen and `serving` was said, takes every
/// connection slot, stops reading and fills the pipe, floods it with refused connections,
/// checks the served clients are still echoed, then sends one SIGTERM and expects exit 0
/// within the shutdown timeout.
fn stalled_flood_then_sigterm(mut pipe: StderrPipe, child: ChildGuard, port: u16, serving: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let serving_owned = serving.to_string();
    let lines = read_until(&pipe.reader, move |lines| {
        let listening = |s: &str| {
            lines
                .iter()
                .any(|l| l.contains(s) && l.contains("listening on"))
        };
        listening("tina[s0 ")
            && listening("tina[s1 ")
            && lines.iter().any(|l| l.contains(&serving_owned))
    });
    assert!(lines.iter().any(|l| l.contains(serving)));
    // Every connection slot taken: from now on each new connection is refused with a WARN.
    let (mut served, _) = served_clients(addr, SHARDS * CONNECTIONS as usize);
    // The reader stops reading, and the pipe fills up.
    assert!(pipe.fill() > 0);
    let mut refused = 0;
    for _ in 0..FLOOD {
        if let Ok(s) = TcpStream::connect_timeout(&addr, StdDuration::from_secs(1)) {
            refused += 1;
            drop(s);
        }
    }
    assert!(
        refused > FLOOD / 2,
        "only {refused} flood connections got through"
    );
    // The shards log the refusals into a stalled stderr and keep serving.
    let mut back = [0u8; 64];
    for s in served.iter_mut() {
        s.set_read_timeout(Some(StdDuration::from_secs(5))).unwrap();
        echo_once(s, b"during the stall", &mut back)
            .expect("a client is served while stderr is stalled");
        assert_eq!(&back[..16], b"during the stall");
    }
    // One SIGTERM: the control loop handles it without printing into the stalled pipe
    // first, the shards drain, and the process exits 0.
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (code, _, took) = wait_exit(child, SHUTDOWN_TIMEOUT + StdDuration::from_secs(5));
    assert_eq!(code, Some(0), "a graceful shutdown exits 0");
    assert!(took < SHUTDOWN_TIMEOUT, "shutdown took {took:?}");
    for s in served.iter_mut() {
        assert!(closed_by_peer(s), "the server closed the connection");
    }
}

/// Numbers in the listener's lines about refusals: (lines that start a burst of refusals,
/// refusals reported by the lines that end one).
fn refusals_logged(lines: &[String]) -> (u64, u64) {
    let mut bursts = 0;
    let mut reported = 0;
    for l in lines {
        if l.contains("refusing connections") {
            bursts += 1;
        }
        if let Some(rest) = l.split("accepting again after refusing ").nth(1) {
            reported += rest
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    (bursts, reported)
}

/// With stderr read, a flood of refused connections gives a line when a burst starts and one
/// when accepting resumes, which counts every refusal of the burst — not a line per refusal.
fn refusal_flood_is_logged_per_burst_and_every_refusal_accounted_for() {
    const REFUSALS: usize = 500;
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let pipe = StderrPipe::new();
    let child = pipe.spawn(&format!("server:{port}"));
    // Every stderr line, as it comes.
    let (tx, lines) = mpsc::channel();
    let reader = pipe.reader.try_clone().expect("dup the read end");
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let take = |seen: &mut Vec<String>| {
        while let Ok(l) = lines.try_recv() {
            seen.push(l);
        }
    };
    let deadline = StdInstant::now() + StdDuration::from_secs(15);
    while seen.iter().filter(|l| l.contains("listening on")).count() < SHARDS {
        assert!(StdInstant::now() < deadline, "both listeners within 15 s");
        take(&mut seen);
        std::thread::yield_now();
    }
    let (served, refused_first) = served_clients(addr, SHARDS * CONNECTIONS as usize);
    for _ in 0..REFUSALS {
        let mut s = TcpStream::connect_timeout(&addr, StdDuration::from_secs(5)).expect("connect");
        // Refused: the server closes it (so it is not waiting in the backlog when the slots
        // are freed below).
        assert!(
            closed_by_peer(&mut s),
            "a connection over capacity is refused"
        );
    }
    // Free the slots; new clients are served, and once accepting has gone on without a
    // refusal for the listener's quiet period, each shard reports the refusals it counted.
    // A client that comes before a freed slot's connection isolate has exited is refused
    // too; those are counted as well.
    drop(served);
    let mut refused_later = 0;
    let deadline = StdInstant::now() + StdDuration::from_secs(20);
    loop {
        take(&mut seen);
        if refusals_logged(&seen).1 >= (refused_first + REFUSALS + refused_later) as u64 {
            break;
        }
        assert!(
            StdInstant::now() < deadline,
            "every refusal reported within 20 s; got:\n{}",
            seen.join("\n")
        );
        let mut s = connect(addr);
        let mut back = [0u8; 8];
        if echo_once(&mut s, b"resumed?", &mut back).is_err() {
            refused_later += 1;
        }
    }
    let (bursts, reported) = refusals_logged(&seen);
    assert_eq!(
        reported,
        (refused_first + REFUSALS + refused_later) as u64,
        "each refusal reported once"
    );
    assert!(
        (1..=2 * SHARDS as u64).contains(&bursts),
        "{bursts} burst lines for one flood"
    );
    eprintln!("{REFUSALS} refusals: {bursts} burst lines, {reported} refusals reported");
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (code, _, _) = wait_exit(child, SHUTDOWN_TIMEOUT + StdDuration::from_secs(5));
    assert_eq!(code, Some(0));
}

fn hardware_fault_ends_the_process_with_stderr_stalled() {
    let mut pipe = StderrPipe::new();
    assert!(pipe.fill() > 0);
    let child = pipe.spawn("segv");
    let (code, _, _) = wait_exit(child, StdDuration::from_secs(15));
    assert_eq!(code, Some(128 + libc::SIGSEGV), "exit status 128 + SIGSEGV");
}

fn watchdog_abort_ends_the_process_with_stderr_stalled() {
    let mut pipe = StderrPipe::new();
    assert!(pipe.fill() > 0);
    let child = pipe.spawn("stuck");
    let (code, signal, _) = wait_exit(child, StdDuration::from_secs(15));
    assert_eq!((code, signal), (None, Some(libc::SIGABRT)), "aborted");
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child(&mode);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [(&str, fn()); 5] = [
        (
            "stalled_stderr_does_not_stop_serving_and_one_sigterm_exits_cleanly",
            stalled_stderr_does_not_stop_serving_and_one_sigterm_exits_cleanly,
        ),
        (
            "tcp_echo_with_stalled_stderr_serves_and_exits_0_on_one_sigterm",
            tcp_echo_with_stalled_stderr_serves_and_exits_0_on_one_sigterm,
        ),
        (
            "refusal_flood_is_logged_per_burst_and_every_refusal_accounted_for",
            refusal_flood_is_logged_per_burst_and_every_refusal_accounted_for,
        ),
        (
            "hardware_fault_ends_the_process_with_stderr_stalled",
            hardware_fault_ends_the_process_with_stderr_stalled,
        ),
        (
            "watchdog_abort_ends_the_process_with_stderr_stalled",
            watchdog_abort_ends_the_process_with_stderr_stalled,
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
