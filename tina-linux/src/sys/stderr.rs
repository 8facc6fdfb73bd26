//! Writing to stderr without ever blocking.
//!
//! Setting `O_NONBLOCK` on descriptor 2 itself would change the open file description it
//! shares with the rest of the process (and with the parent's shell): std's `eprintln!` would
//! then panic on `EAGAIN`. So [`prepare`] looks at what descriptor 2 is, once, and picks a
//! way to write to it that never blocks and leaves descriptor 2 alone:
//!
//! - a pipe, FIFO or terminal: `write(2)` on a second description of the same file, opened
//!   with `O_NONBLOCK` through `/proc/self/fd/2`;
//! - a socket: `send(2)` with `MSG_DONTWAIT` (a per-call flag; nothing changes on the socket);
//! - a regular file or a block device: `write(2)` on descriptor 2 (such writes do not wait
//!   for a reader);
//! - closed: nothing is written.
//!
//! When `/proc` is not mounted the second description cannot be opened; writes then check
//! `poll(POLLOUT)` with a zero timeout first, which cannot block unless another thread fills
//! the pipe between the check and the write (documented best effort). The second
//! description is kept open for the life of the process (the fault handler may use it at
//! any moment); a program that later points descriptor 2 elsewhere (`dup2`) keeps writing
//! to the old stderr through it.
//!
//! [`write_now`] is async-signal-safe (atomics, `write`/`send`/`poll`), for the paths that end
//! the process: the fault reporter, the watchdog's abort, a forced exit.

use core::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::Once;

use super::{Errno, check_size, errno};

/// How descriptor 2 is written without blocking (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum StderrMode {
    /// Not looked at yet (or being looked at): poll-then-write on descriptor 2.
    Unknown = 0,
    /// A regular file or block device: write on descriptor 2.
    Direct = 1,
    /// A socket: `send` with `MSG_DONTWAIT`.
    Socket = 2,
    /// A pipe, FIFO or terminal: the second, non-blocking description.
    Separate = 3,
    /// No second description could be opened: poll-then-write on descriptor 2.
    PollFirst = 4,
    /// Descriptor 2 is closed.
    Closed = 5,
}

static MODE: AtomicU8 = AtomicU8::new(StderrMode::Unknown as u8);
/// The second, non-blocking description of stderr (`Separate`), else -1.
static SEPARATE_FD: AtomicI32 = AtomicI32::new(-1);
static PREPARE: Once = Once::new();

/// The descriptor a write goes to, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Standard error, in whatever way [`prepare`] chose.
    Stderr,
    /// A descriptor the caller opened with `O_NONBLOCK` (tests give the logger a pipe).
    #[cfg(test)]
    Fd(i32),
}

/// Looks at descriptor 2 and chooses how to write to it without blocking (once per
/// process; later calls return at once). Not async-signal-safe: call it at boot.
pub(crate) fn prepare() {
    PREPARE.call_once(|| {
        let (mode, fd) = classify();
        SEPARATE_FD.store(fd, Ordering::Relaxed);
        MODE.store(mode as u8, Ordering::Release);
    });
}

/// How stderr is written (after [`prepare`]).
pub(crate) fn mode() -> StderrMode {
    match MODE.load(Ordering::Acquire) {
        1 => StderrMode::Direct,
        2 => StderrMode::Socket,
        3 => StderrMode::Separate,
        4 => StderrMode::PollFirst,
        5 => StderrMode::Closed,
        _ => StderrMode::Unknown,
    }
}

fn classify() -> (StderrMode, i32) {
    // SAFETY: `stat` is plain data; all-zero is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return (StderrMode::Closed, -1);
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFBLK => (StderrMode::Direct, -1),
        libc::S_IFSOCK => (StderrMode::Socket, -1),
        _ => {
            let path = c"/proc/self/fd/2";
            let flags = libc::O_WRONLY
                | libc::O_NONBLOCK
                | libc::O_APPEND
                | libc::O_CLOEXEC
                | libc::O_NOCTTY;
            // SAFETY: `path` is a NUL-terminated string that outlives the call.
            let fd = unsafe { libc::open(path.as_ptr(), flags) };
            if fd >= 0 {
                (StderrMode::Separate, fd)
            } else {
                (StderrMode::PollFirst, -1)
            }
        }
    }
}

/// Writes as much of `bytes` as the target takes now. `Err(EAGAIN)` when it takes nothing
/// (a full pipe); a write of at most `PIPE_BUF` bytes to a pipe is all or nothing.
/// Never blocks (up to the `PollFirst` race described in the module docs).
/// Async-signal-safe.
pub(crate) fn try_write(target: Target, bytes: &[u8]) -> Result<usize, Errno> {
    let fd = match target {
        #[cfg(test)]
        Target::Fd(fd) => return write_fd(fd, bytes),
        Target::Stderr => match mode() {
            StderrMode::Direct => 2,
            StderrMode::Separate => SEPARATE_FD.load(Ordering::Relaxed),
            StderrMode::Closed => return Ok(bytes.len()),
            StderrMode::Socket => {
                // SAFETY: `bytes` is a live slice of the length passed.
                let n = unsafe {
                    libc::send(
                        2,
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                return check_size(n);
            }
            StderrMode::Unknown | StderrMode::PollFirst => {
                if !writable(2, 0) {
                    return Err(libc::EAGAIN);
                }
                2
            }
        },
    };
    write_fd(fd, bytes)
}

fn write_fd(fd: i32, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `bytes` is a live slice of the length passed.
    check_size(unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) })
}

/// Blocks until the target can take a write (or reports an error or hang-up), at most
/// `timeout_ms` (-1: no limit). Returns whether it became writable or failed (a write will
/// then not block); false on timeout.
pub(crate) fn wait_writable(target: Target, timeout_ms: i32) -> bool {
    let fd = match target {
        #[cfg(test)]
        Target::Fd(fd) => fd,
        Target::Stderr => match mode() {
            StderrMode::Separate => SEPARATE_FD.load(Ordering::Relaxed),
            StderrMode::Closed => return true,
            _ => 2,
        },
    };
    writable(fd, timeout_ms)
}

fn writable(fd: i32, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        // Writable, or an error/hang-up (the write will fail at once): either way it will not
        // block. A poll failure is treated the same, so callers make progress.
        return n != 0;
    }
}

/// Writes `bytes` to stderr now if it can be done without waiting; whatever does not fit is
/// lost (returns false). Async-signal-safe: for the fault handler and the paths that end
/// the process.
pub(crate) fn write_now(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        match try_write(Target::Stderr, rest) {
            Ok(0) => return false,
            Ok(n) => rest = &rest[n.min(rest.len())..],
            Err(libc::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Test support: waits at most `timeout_ms` for `fd` to be readable, then reads what is there
/// into `buf` (0: nothing).
#[cfg(test)]
pub(crate) fn read_some(fd: i32, buf: &mut [u8], timeout_ms: i32) -> usize {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one live pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
    // SAFETY: reads into a live buffer of the length passed.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    n.max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pipe_refuses_a_write_instead_of_blocking() {
        let (r, w) = crate::sys::pipe().unwrap();
        let chunk = [b'x'; 4096];
        let mut filled = 0;
        while let Ok(n) = try_write(Target::Fd(w), &chunk) {
            filled += n;
        }
        assert!(filled >= 4096, "the pipe took something before filling up");
        assert_eq!(try_write(Target::Fd(w), b"line\n"), Err(libc::EAGAIN));
        assert!(
            !wait_writable(Target::Fd(w), 0),
            "a full pipe is not writable"
        );
        let mut sink = [0u8; 8192];
        assert!(read_some(r, &mut sink, 1000) > 0);
        assert!(wait_writable(Target::Fd(w), 0), "room again after a read");
        assert_eq!(try_write(Target::Fd(w), b"line\n"), Ok(5));
        crate::sys::close(r).unwrap();
        crate::sys::close(w).unwrap();
    }

    #[test]
    fn stderr_is_classified_once() {
        prepare();
        let first = mode();
        assert_ne!(first, StderrMode::Unknown);
        prepare();
        assert_eq!(mode(), first);
    }
}
