//! Overload at the listener of `tcp_echo` (the real binary, in a child process), both backends:
//!
//! - out of descriptors (the child's `RLIMIT_NOFILE` lowered to what it has open plus two
//!   while it runs) with a flood of clients waiting in the backlog: the listener backs off
//!   instead of retrying every tick, logs the burst once instead of once per attempt, and
//!   serves again once the flood is gone; a SIGTERM while it backs off stops it cleanly;
//! - more clients than `--connections`: each extra one is refused (closed at once), the burst
//!   of refusals is logged once, not once per client, and the server serves again afterwards.
//!
//! The child's stderr is read on a thread and its lines counted.

mod example_bins;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use example_bins::*;

/// Clients in each flood.
const FLOOD: usize = 100;

/// How long the descriptor flood is held once the listener has started failing: the listener
/// of the base version logged one line per tick (1 ms) through all of it.
const HOLD: Duration = Duration::from_millis(1_000);

/// Echoes `msg` on a fresh connection, retrying (bounded) while the server is still working
/// through the flood.
fn serves_again(addr: SocketAddr, msg: &[u8]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = connect(addr);
        let mut back = vec![0u8; msg.len()];
        if s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() {
            assert_eq!(back, msg, "the echo after the flood");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server does not serve again after the flood"
        );
    }
}

/// The number of descriptors `pid` has open.
fn open_descriptors(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count() as u64
}

/// Sets `pid`'s soft descriptor limit to `soft` (its hard limit stays).
fn set_descriptor_limit(pid: u32, soft: u64) {
    // SAFETY: rlimit is plain data for which all-zero is valid.
    let mut old: libc::rlimit = unsafe { core::mem::zeroed() };
    // SAFETY: prlimit on our own child, reading into the live `old`.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            core::ptr::null(),
            &mut old,
        )
    };
    assert_eq!(r, 0, "prlimit (read) failed");
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: old.rlim_max,
    };
    // SAFETY: prlimit on our own child with a pointer to the live `new`.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            core::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit (write) failed");
}

fn descriptor_exhaustion_backs_off_and_logs_once(backend: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut args = echo_args(addr, 1, backend);
    args.extend(["--connections".into(), "64".into()]);
    let mut server = Process::spawn("tcp_echo", &strs(&args));
    server.wait_line("serving echo on");
    let pid = server.child.id();
    // Room for two more descriptors: two clients are served, the rest wait in the backlog.
    set_descriptor_limit(pid, open_descriptors(pid) + 2);
    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| connect(addr)).collect();
    server.wait_line("accept failed");
    std::thread::sleep(HOLD);
    let during = server.count("accept failed");
    assert!(
        during <= 2,
        "{backend}: {during} 'accept failed' lines while out of descriptors for {HOLD:?} \
         (one per burst expected); got:\n{}",
        server.seen.join("\n")
    );
    drop(flood);
    serves_again(addr, b"still serving after running out of descriptors");
    let total = server.count("accept failed") + server.count("accepting again");
    assert!(
        total <= 4,
        "{backend}: {total} lines about failed accepts for a flood of {FLOOD}; got:\n{}",
        server.seen.join("\n")
    );
    assert_eq!(server.terminate(), Some(0), "{backend}: a clean shutdown");
}

fn shutdown_while_backing_off_is_clean(backend: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = Process::spawn("tcp_echo", &strs(&echo_args(addr, 1, backend)));
    server.wait_line("serving echo on");
    let pid = server.child.id();
    set_descriptor_limit(pid, open_descriptors(pid));
    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| connect(addr)).collect();
    server.wait_line("accept failed");
    assert_eq!(
        server.terminate(),
        Some(0),
        "{backend}: SIGTERM while the listener backs off stops the server cleanly"
    );
    drop(flood);
}

fn refusal_flood_is_logged_once_per_burst(backend: &str) {
    const CAPACITY: usize = 4;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut args = echo_args(addr, 1, backend);
    args.extend(["--connections".into(), CAPACITY.to_string()]);
    let mut server = Process::spawn("tcp_echo", &strs(&args));
    server.wait_line("serving echo on");
    let mut held: Vec<TcpStream> = (0..CAPACITY).map(|_| connect(addr)).collect();
    let mut back = [0u8; 4];
    for s in held.iter_mut() {
        s.write_all(b"held").unwrap();
        s.read_exact(&mut back).unwrap();
    }
    for k in 0..FLOOD {
        let mut s = connect(addr);
        let mut b = [0u8; 16];
        // Refused: the server closes the socket at once (end of stream or a reset).
        assert!(
            matches!(s.read(&mut b), Ok(0) | Err(_)),
            "{backend}: client {k} beyond capacity was not refused"
        );
    }
    server.wait_line("refusing connection");
    drop(held);
    serves_again(addr, b"serving again after the refusals");
    let lines = server.count("refusing connection") + server.count("accepting again");
    assert!(
        lines <= 2,
        "{backend}: {lines} lines for {FLOOD} refused clients (one per burst expected); got:\n{}",
        server.seen.join("\n")
    );
    assert_eq!(server.terminate(), Some(0), "{backend}: a clean shutdown");
}

#[test]
fn descriptor_exhaustion_backs_off_and_logs_once_uring() {
    descriptor_exhaustion_backs_off_and_logs_once("uring");
}

#[test]
fn descriptor_exhaustion_backs_off_and_logs_once_epoll() {
    descriptor_exhaustion_backs_off_and_logs_once("epoll");
}

#[test]
fn shutdown_while_backing_off_is_clean_both_backends() {
    for backend in ["uring", "epoll"] {
        shutdown_while_backing_off_is_clean(backend);
    }
}

#[test]
fn refusal_flood_is_logged_once_per_burst_uring() {
    refusal_flood_is_logged_once_per_burst("uring");
}

#[test]
fn refusal_flood_is_logged_once_per_burst_epoll() {
    refusal_flood_is_logged_once_per_burst("epoll");
}
