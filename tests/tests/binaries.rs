//! The example binaries as a user runs them (child processes):
//!
//! - `tcp_echo` survives a SIGUSR1 sent while it starts (before the runtime runs) and handles
//!   it once the runtime does, then serves and exits 0 on SIGTERM;
//! - every binary prints its usage on stdout and exits 0 for `--help`, and rejects an unknown
//!   argument with a message naming it and the usage on stderr, exit status 2;
//! - a flag out of range is reported by the flag's name (`--connections 65536`, not the spec
//!   field it would have set);
//! - `tcp_echo` on an address it cannot bind exits 1 without claiming to serve;
//! - a spec error from `tina_linux::run` says "invalid spec" once.

mod example_bins;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use example_bins::*;
use tina_core::{
    ChildSpec, CrashReason, Ctx, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec,
};

const BINARIES: [&str; 3] = ["tcp_echo", "dispatcher", "ping_pong"];

// ───────────────────────────── SIGUSR1 while starting ─────────────────────────────

/// Fills the pipe behind `w` to capacity, so the next write to it blocks until the reader
/// drains it.
fn fill_pipe(w: &mut std::io::PipeWriter) {
    // SAFETY: fcntl(F_GETPIPE_SZ) on a live pipe descriptor has no memory effects.
    let capacity = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(capacity > 0, "F_GETPIPE_SZ failed");
    let mut filler = vec![b'#'; capacity as usize];
    filler[capacity as usize - 1] = b'\n';
    // Exactly the capacity: the write completes without blocking and leaves no room.
    w.write_all(&filler).expect("fill the pipe");
}

/// Whether a thread of `pid` is blocked writing to its stderr (descriptor 2), from
/// /proc/PID/task/*/syscall (unreadable entries count as no).
fn blocked_writing_stderr(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|task| {
        let text = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
        let mut fields = text.split_whitespace();
        let number = fields.next().and_then(|n| n.parse::<i64>().ok());
        let fd = fields.next();
        matches!(number, Some(n) if n == libc::SYS_write || n == libc::SYS_writev)
            && fd == Some("0x2")
    })
}

/// Whether `pid` blocks SIGUSR1 (its main thread's mask, from /proc/PID/status).
fn blocks_sigusr1(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGUSR1 - 1)) != 0)
}

/// `tcp_echo` is sent SIGUSR1 while it starts: its stderr is a full pipe, so it stops at its
/// first message — before the runtime runs — and the signal arrives then (or as soon as the
/// process blocks SIGUSR1, if a thread of it reaches that first). The process must survive,
/// handle the signal once the runtime runs (the stats lines), serve, and exit 0 on SIGTERM.
/// (A signal that arrives before `main` runs at all — while the dynamic loader works — ends
/// any process whose parent did not block it: that is outside a program's reach.)
fn survives_sigusr1_while_starting(backend: &str) {
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    fill_pipe(&mut writer);
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(binary("tcp_echo"))
        .args(echo_args(addr, 1, backend))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer)
        .spawn()
        .expect("spawn tcp_echo");
    let pid = child.id();
    let deadline = Instant::now() + WAIT;
    while !blocked_writing_stderr(pid) && !blocks_sigusr1(pid) {
        assert!(
            Instant::now() < deadline,
            "tcp_echo neither blocked on stderr nor blocked SIGUSR1 within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(pid, libc::SIGUSR1);
    let mut server = Process::with_stderr(child, reader);
    server.wait_line("serving echo on");
    server.wait_line("stats shard 0");
    let mut s = connect(addr);
    let mut back = [0u8; 5];
    s.write_all(b"alive").unwrap();
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"alive");
    drop(s);
    assert_eq!(
        server.terminate(),
        Some(0),
        "{backend}: tcp_echo must survive the early SIGUSR1 and exit 0 on SIGTERM"
    );
}

#[test]
fn tcp_echo_survives_sigusr1_while_starting() {
    for backend in ["uring", "epoll", "auto"] {
        survives_sigusr1_while_starting(backend);
    }
}

// ───────────────────────────── usage ─────────────────────────────

#[test]
fn every_binary_prints_help_on_stdout_and_exits_0() {
    for bin in BINARIES {
        for flag in ["--help", "-h"] {
            let out = run_to_end(bin, &[flag]);
            assert_eq!(out.code, Some(0), "{bin} {flag}: exit status");
            assert!(
                out.stdout.starts_with(&format!("usage: {bin}")),
                "{bin} {flag}: the usage on stdout; got {:?}",
                out.stdout
            );
            assert!(
                out.stdout.contains("Exit status"),
                "{bin} {flag}: the usage gives the exit statuses"
            );
            assert!(
                out.stderr.is_empty(),
                "{bin} {flag}: nothing on stderr; got {:?}",
                out.stderr
            );
        }
    }
}

#[test]
fn every_binary_rejects_unknown_arguments_with_exit_2() {
    for bin in BINARIES {
        for arg in ["--no-such-flag", "stray"] {
            let out = run_to_end(bin, &[arg]);
            assert_eq!(out.code, Some(2), "{bin} {arg}: exit status");
            assert!(
                out.stderr.contains(arg) && out.stderr.contains(&format!("usage: {bin}")),
                "{bin} {arg}: the argument and the usage on stderr; got {:?}",
                out.stderr
            );
            assert!(
                out.stdout.is_empty(),
                "{bin} {arg}: nothing on stdout; got {:?}",
                out.stdout
            );
        }
    }
}

#[test]
fn ping_pong_takes_one_number_of_rounds() {
    for args in [&["0"][..], &["12x"], &["10", "20"], &["-5"]] {
        let out = run_to_end("ping_pong", args);
        assert_eq!(out.code, Some(2), "ping_pong {args:?}: exit status");
        assert!(
            out.stderr.contains("usage: ping_pong"),
            "ping_pong {args:?}: the usage on stderr; got {:?}",
            out.stderr
        );
    }
    let out = run_to_end("ping_pong", &["50"]);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains("50 round trips"),
        "ping_pong 50 plays 50 rounds; got {:?}",
        out.stdout
    );
}

#[test]
fn flags_out_of_range_are_reported_by_the_flag_given() {
    let cases: [(&str, &[&str], &str); 9] = [
        (
            "tcp_echo",
            &["--connections", "65536"],
            "--connections 65536",
        ),
        ("tcp_echo", &["--connections", "0"], "--connections 0"),
        ("tcp_echo", &["--connections", "many"], "--connections many"),
        ("tcp_echo", &["--shards", "0"], "--shards 0"),
        ("tcp_echo", &["--shards", "65"], "--shards 65"),
        ("tcp_echo", &["--listen", "nowhere"], "--listen nowhere"),
        ("tcp_echo", &["--backend", "io"], "--backend io"),
        ("tcp_echo", &["--shards"], "--shards needs a value"),
        ("dispatcher", &["--workers", "0"], "--workers 0"),
    ];
    for (bin, args, says) in cases {
        let out = run_to_end(bin, args);
        assert_eq!(out.code, Some(2), "{bin} {args:?}: exit status");
        assert!(
            out.stderr.contains(says),
            "{bin} {args:?}: the error names the flag ({says:?}); got {:?}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("spec.") && !out.stderr.contains("serving"),
            "{bin} {args:?}: refused before building a system; got {:?}",
            out.stderr
        );
    }
}

#[test]
fn tcp_echo_that_cannot_bind_exits_1_without_claiming_to_serve() {
    // Held without SO_REUSEPORT: the server's bind fails.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("local address");
    let out = run_to_end("tcp_echo", &strs(&echo_args(addr, 2, "auto")));
    assert_eq!(out.code, Some(1), "exit status; stderr: {}", out.stderr);
    assert!(
        !out.stderr.contains("serving echo"),
        "a server that did not start must not say it serves; got {:?}",
        out.stderr
    );
}

// ───────────────────────────── run's spec error ─────────────────────────────

struct Idle;

impl Isolate for Idle {
    type Args = ();

    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Idle, Effect::Receive))
    }

    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Done
    }
}

#[test]
fn run_error_for_an_invalid_spec_says_invalid_spec_once() {
    let types = [TypeSpec::of::<Idle>("idle")];
    let children = [ChildSpec::isolate::<Idle>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard.io_buffer_count = 70_000;
    let config = tina_linux::Config {
        signals: false,
        ..tina_linux::Config::default()
    };
    let e = tina_linux::run(&spec, &config, &tina_linux::Control::new())
        .expect_err("an invalid spec is refused");
    let text = e.to_string();
    assert!(
        text.starts_with("invalid spec: ") && text.contains("io_buffer_count = 70000"),
        "{text}"
    );
    assert_eq!(text.matches("invalid spec").count(), 1, "{text}");
}
