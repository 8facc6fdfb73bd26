//! The I/O reactor of one shard: io_uring, or the epoll fallback, behind one [`IoDriver`].
//!
//! Both backends execute the same contract (tina-core's `io` module docs):
//!
//! - every accepted [`Submission`] completes exactly once, echoing its buffer;
//! - data is received straight into the reactor-owned buffer the core chose (no copy);
//! - closes are never refused (the submitter no longer owns the descriptor), and neither is
//!   other `Handle::NONE` reclaim work: if the in-flight table is full a close runs
//!   synchronously; so does an orphan's close that found the core's submission batch full
//!   ([`SocketControl::close_orphan`]), after the operations on that descriptor are
//!   cancelled;
//! - after [`IoDriver::cancel_all`] (shutdown), every operation in flight completes soon
//!   (`Canceled` if it cannot finish), and new operations that wait on the outside world
//!   (accept, connect, recv, recvfrom) complete with `Canceled` at once, so a draining shard
//!   never waits for a peer; sends, writes and closes still run, so replies get out.
//!
//! Operations in flight live in an [`OpTable`](ops::OpTable) sized at boot from the spec (one
//! operation per live isolate at most, plus room for reclaim work), so nothing is allocated
//! afterwards.
//!
//! ## Layout
//!
//! | module | what |
//! |---|---|
//! | this one (the facade) | [`Reactor`]: the shard's [`IoDriver`], dispatching to one backend; [`Backend`], [`ActiveBackend`], the io_uring probe |
//! | [`ops`] | what both backends share: the operation table, pending completions, the errno mapping, synchronous helpers |
//! | [`uring`] | the io_uring backend |
//! | [`epoll`] | the epoll fallback |
//!
//! Imports flow one way: the facade uses the backends, the backends use `ops`, and `ops` uses
//! neither.

pub(crate) mod epoll;
pub(crate) mod ops;
#[allow(unsafe_code)]
pub(crate) mod uring;

use tina_core::Handle;
use tina_core::io::{Control, ControlOutcome, IoError};
use tina_core::platform::{CompletionSink, IoBuffers, IoDriver, SocketControl, Submission};

use crate::sys;
use epoll::EpollReactor;
use ops::control;
use uring::UringReactor;

/// Which I/O backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// io_uring if the probe at boot succeeds, else epoll (the reason is logged).
    Auto,
    /// io_uring only; boot fails with an actionable error if it is unavailable.
    Uring,
    /// epoll only.
    Epoll,
}

impl Backend {
    /// Parses `auto`, `uring`/`io_uring` or `epoll`.
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "auto" => Some(Backend::Auto),
            "uring" | "io_uring" | "io-uring" => Some(Backend::Uring),
            "epoll" => Some(Backend::Epoll),
            _ => None,
        }
    }
}

/// The backend that actually runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveBackend {
    /// io_uring.
    Uring,
    /// epoll.
    Epoll,
}

impl ActiveBackend {
    /// `"io_uring"` or `"epoll"`.
    pub fn name(self) -> &'static str {
        match self {
            ActiveBackend::Uring => "io_uring",
            ActiveBackend::Epoll => "epoll",
        }
    }
}

/// Probes io_uring: sets up a small ring and runs one no-op through it. `Err` carries the
/// reason in words (and the errno).
pub(crate) fn probe_uring() -> Result<(), String> {
    uring::probe().map_err(|(step, e)| {
        let hint = match e {
            libc::EPERM => {
                "denied: a seccomp profile (e.g. a container's default) or \
                 kernel.io_uring_disabled=2 forbids it"
            }
            libc::ENOSYS => "this kernel has no io_uring (older than 5.1 or built without it)",
            libc::EACCES => "kernel.io_uring_disabled=1 and this process is not in io_uring_group",
            libc::ENOMEM => "cannot lock memory for the ring (raise RLIMIT_MEMLOCK)",
            _ => "unexpected error",
        };
        format!(
            "io_uring {step} failed with {} ({e}): {hint}",
            sys::errno_name(e)
        )
    })
}

/// The reactor of one shard.
pub enum Reactor {
    /// io_uring.
    Uring(UringReactor),
    /// epoll.
    Epoll(EpollReactor),
}

impl Reactor {
    /// Builds the reactor for `backend` with room for `in_flight_max` operations, woken by
    /// `wake_fd` (an eventfd) when it sleeps.
    pub(crate) fn new(
        backend: ActiveBackend,
        in_flight_max: usize,
        wake_fd: i32,
    ) -> Result<Reactor, String> {
        Ok(match backend {
            ActiveBackend::Uring => Reactor::Uring(
                UringReactor::new(in_flight_max, wake_fd)
                    .map_err(|e| format!("io_uring setup failed: {} ({e})", sys::errno_name(e)))?,
            ),
            ActiveBackend::Epoll => Reactor::Epoll(
                EpollReactor::new(in_flight_max, wake_fd)
                    .map_err(|e| format!("epoll setup failed: {} ({e})", sys::errno_name(e)))?,
            ),
        })
    }

    /// Whether completions are ready to be reported without waiting.
    pub(crate) fn has_ready(&mut self) -> bool {
        match self {
            Reactor::Uring(r) => r.has_ready(),
            Reactor::Epoll(r) => r.has_ready(),
        }
    }

    /// Sleeps until an I/O event, the wake eventfd, or `timeout_ns` (None: no timeout).
    pub(crate) fn wait(&mut self, timeout_ns: Option<u64>) {
        match self {
            Reactor::Uring(r) => r.wait(timeout_ns),
            Reactor::Epoll(r) => r.wait(timeout_ns),
        }
    }

    /// Hands queued submissions to the kernel (io_uring; epoll runs them at submit). The
    /// driver calls it at the end of every tick that does not end in [`Reactor::wait`].
    pub(crate) fn flush(&mut self) {
        if let Reactor::Uring(r) = self {
            r.flush();
        }
    }

    /// Operations that failed because their submission could not be handed to the kernel
    /// (io_uring; always 0 with epoll, which submits nothing ahead).
    pub fn submit_failures(&self) -> u64 {
        match self {
            Reactor::Uring(r) => r.submit_failures(),
            Reactor::Epoll(_) => 0,
        }
    }

    /// Operations in flight.
    pub fn in_flight(&self) -> usize {
        match self {
            Reactor::Uring(r) => r.in_flight(),
            Reactor::Epoll(r) => r.in_flight(),
        }
    }
}

impl SocketControl for Reactor {
    fn control(&mut self, _owner: Handle, op: Control) -> Result<ControlOutcome, IoError> {
        let r = control(op);
        if let (Reactor::Epoll(e), Ok(ControlOutcome::Fd(fd))) = (&mut *self, &r) {
            e.forget_fd(fd.0);
        }
        r
    }

    fn close_orphan(&mut self, fd: tina_core::io::Fd) -> bool {
        match self {
            Reactor::Uring(r) => r.close_orphan(fd.0),
            Reactor::Epoll(r) => r.close_orphan(fd.0),
        }
        true
    }
}

impl IoDriver for Reactor {
    fn submit(&mut self, batch: &[Submission], buffers: IoBuffers<'_>) -> usize {
        match self {
            Reactor::Uring(r) => r.submit(batch, buffers),
            Reactor::Epoll(r) => r.submit(batch, buffers),
        }
    }

    fn complete(&mut self, sink: &mut dyn CompletionSink) {
        match self {
            Reactor::Uring(r) => r.complete(sink),
            Reactor::Epoll(r) => r.complete(sink),
        }
    }

    fn cancel(&mut self, owner: Handle, ticket: tina_core::io::IoTicket) {
        match self {
            Reactor::Uring(r) => r.cancel(owner, ticket),
            Reactor::Epoll(r) => r.cancel(owner, ticket),
        }
    }

    fn cancel_all(&mut self) {
        match self {
            Reactor::Uring(r) => r.cancel_all(),
            Reactor::Epoll(r) => r.cancel_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse() {
        assert_eq!(Backend::parse("uring"), Some(Backend::Uring));
        assert_eq!(Backend::parse("io_uring"), Some(Backend::Uring));
        assert_eq!(Backend::parse("epoll"), Some(Backend::Epoll));
        assert_eq!(Backend::parse("auto"), Some(Backend::Auto));
        assert_eq!(Backend::parse("kqueue"), None);
    }
}
