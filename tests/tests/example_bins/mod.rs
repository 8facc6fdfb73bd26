//! Shared helpers for the tests that run the example binaries (`tcp_echo`, `dispatcher`,
//! `ping_pong`) as child processes: where the binaries are, and a child whose stderr lines are
//! collected on a thread.
//!
//! The binaries are built once per test process with `cargo build --release -p tina-examples
//! --bins` into the usual target directory (`CARGO_TARGET_DIR` if set). Set
//! `TINA_EXAMPLES_BIN_DIR` to a directory holding already built binaries to use those instead.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any single wait in these tests may take before it fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The path of example binary `name`, building the binaries first (once per process).
pub(crate) fn binary(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("TINA_EXAMPLES_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace.join("target"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "--release", "-p", "tina-examples", "--bins"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the example binaries failed");
        target.join("release")
    })
    .join(name)
}

/// The release `simulate` binary: `TINA_SIM_RELEASE_BIN` if set (e.g. another commit's
/// build), else the one [`binary`] builds.
pub(crate) fn simulate_release() -> PathBuf {
    std::env::var("TINA_SIM_RELEASE_BIN").map_or_else(|_| binary("simulate"), PathBuf::from)
}

/// The outcome of a binary run to completion.
pub(crate) struct Output {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs example binary `name` with `args` to completion (bounded by [`WAIT`]).
pub(crate) fn run_to_end(name: &str, args: &[&str]) -> Output {
    let mut child = Command::new(binary(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the binary");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = wait_exit(&mut child, WAIT);
    Output {
        code,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Waits (bounded) for `child` to exit and returns its exit code (`None`: killed by a
/// signal); kills it and fails the test if it does not exit in time.
pub(crate) fn wait_exit(child: &mut Child, bound: Duration) -> Option<i32> {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = status.signal() {
                    eprintln!("the child was killed by signal {sig}");
                }
                return status.code();
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child did not exit within {bound:?}");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Sends `sig` to `pid` (our own child).
pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    let r = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill failed");
}

/// A running example binary and the lines of its stderr (read on a thread).
pub(crate) struct Process {
    pub(crate) child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line received so far.
    pub(crate) seen: Vec<String>,
}

impl Process {
    /// Starts example binary `name` with `args`, stderr piped to a reader thread.
    pub(crate) fn spawn(name: &str, args: &[&str]) -> Process {
        let mut child = Command::new(binary(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the binary");
        let stderr = child.stderr.take().expect("piped stderr");
        Process::with_stderr(child, stderr)
    }

    /// A process whose stderr is read from `stderr`.
    pub(crate) fn with_stderr(child: Child, stderr: impl Read + Send + 'static) -> Process {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a stderr line containing `needle` and returns it.
    pub(crate) fn wait_line(&mut self, needle: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => {
                    let ended = match self.child.try_wait() {
                        Ok(Some(status)) => format!(" (the process ended: {status})"),
                        _ => String::new(),
                    };
                    panic!(
                        "no stderr line containing {needle:?} within {WAIT:?}{ended}; got:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Takes every stderr line that has arrived so far into `seen`.
    pub(crate) fn collect(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    /// How many stderr lines received so far contain `needle`.
    pub(crate) fn count(&mut self, needle: &str) -> usize {
        self.collect();
        self.seen.iter().filter(|l| l.contains(needle)).count()
    }

    /// Sends `sig` to the process.
    pub(crate) fn signal(&self, sig: i32) {
        signal(self.child.id(), sig);
    }

    /// SIGTERM, then waits (bounded) for the exit; returns the exit code.
    pub(crate) fn terminate(mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let code = wait_exit(&mut self.child, WAIT);
        self.collect();
        if code != Some(0) {
            eprintln!("stderr of the child:\n{}", self.seen.join("\n"));
        }
        code
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that failed half-way leaves no server behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Connects with bounded timeouts (connect, read, write), retrying while the server is not
/// accepting yet.
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => {
                s.set_read_timeout(Some(WAIT)).unwrap();
                s.set_write_timeout(Some(WAIT)).unwrap();
                s.set_nodelay(true).unwrap();
                return s;
            }
            Err(e) if Instant::now() >= deadline => panic!("cannot connect to {addr}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `tcp_echo` arguments for a server on `addr` with `shards` shards and `backend`.
pub(crate) fn echo_args(addr: SocketAddr, shards: usize, backend: &str) -> Vec<String> {
    vec![
        "--listen".into(),
        addr.to_string(),
        "--shards".into(),
        shards.to_string(),
        "--backend".into(),
        backend.into(),
    ]
}

/// `args` as `&str`s.
pub(crate) fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
