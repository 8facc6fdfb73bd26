//! The io_uring backend.
//!
//! Each accepted submission becomes one SQE whose user data is its [`OpTable`] token; the
//! whole tick's batch is handed to the kernel with one `io_uring_enter` (the core calls
//! `submit` once per tick). Completions are read from the CQ ring in shared memory — no
//! syscall — at the start of the next tick. Data moves straight between the socket and the
//! shard's reactor-owned buffers.
//!
//! - `SendFile` is two splices through a per-operation pipe: file → pipe, then pipe → socket
//!   (repeated until the pipe is drained); the core sees one completion.
//! - `SendTo`/`RecvFrom` use `sendmsg`/`recvmsg` with the address in the operation's entry.
//! - The wake eventfd is watched by a one-shot `POLL_ADD`, armed only when the shard is about
//!   to sleep, so the busy path never touches it.
//! - `cancel_all` issues one `ASYNC_CANCEL` per operation in flight.
//! - A full submission queue is handed to the kernel and the push retried a bounded number
//!   of times; if the kernel keeps refusing it, the operation completes with an error and
//!   the failure is counted (`ShardStats::io_submit_failures`). Nothing spins.
//!
//! This is the second of the two modules with `unsafe`: pushing an SQE hands the kernel raw
//! pointers (buffers, addresses, message headers) that must stay valid until the operation
//! completes. They all point into memory that outlives every operation: the shard's I/O
//! buffers (carved once at boot, never moved, and owned by the platform while in flight per
//! the core's contract) and this reactor's [`OpTable`] entries (a `Vec` never resized after
//! boot; an entry is reused only after its completion was reaped).

use io_uring::{IoUring, opcode, squeue, types};

use tina_core::Handle;
use tina_core::io::{IoCompletion, IoError, IoOp};
use tina_core::platform::{CompletionSink, IoBuffers, Submission};

use super::ops::{
    Op, OpTable, Pending, close_now, completion_of, io_error, open_path, uses_fd, waits_for_peer,
};
use crate::sys::{self, Errno, SockAddr};

const WAKE_TOKEN: u64 = u64::MAX;
const CANCEL_TOKEN: u64 = u64::MAX - 1;
const TIMEOUT_TOKEN: u64 = u64::MAX - 2;
/// How long dropping the reactor waits for cancelled operations to finish.
const DRAIN_ON_DROP_NS: u64 = 1_000_000_000;
const SPLICE_CHUNK_MAX: u32 = 64 * 1024;
/// How many times pushing to a full submission queue hands it to the kernel (reaping
/// completions when the kernel is busy) before the push gives up.
const SUBMIT_ATTEMPTS_MAX: u32 = 8;

/// Probes io_uring: a 4-entry ring and one no-op. `Err((step, errno))`.
pub(crate) fn probe() -> Result<(), (&'static str, Errno)> {
    let err = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let mut ring: IoUring = IoUring::new(4).map_err(|e| ("setup", err(e)))?;
    let nop = opcode::Nop::new().build().user_data(7);
    // SAFETY: a no-op references no memory.
    unsafe { ring.submission().push(&nop) }.map_err(|_| ("submit", libc::EBUSY))?;
    ring.submit_and_wait(1).map_err(|e| ("enter", err(e)))?;
    let cqe = ring
        .completion()
        .next()
        .ok_or(("no-op completion", libc::EIO))?;
    if cqe.user_data() != 7 || cqe.result() < 0 {
        return Err(("no-op", -cqe.result()));
    }
    Ok(())
}

/// The io_uring reactor of one shard.
pub struct UringReactor {
    ring: IoUring,
    ops: OpTable,
    pending: Pending,
    wake_fd: i32,
    wake_armed: bool,
    shutting_down: bool,
    /// SQEs pushed since the last `io_uring_enter`.
    unsubmitted: usize,
    /// Whether `io_uring_enter` takes a timeout (kernel 5.11+).
    ext_arg: bool,
    /// The timeout of a `Timeout` op (kernels without `ext_arg`).
    timeout: types::Timespec,
    /// Pushes that failed because the submission queue could not be handed to the kernel
    /// (see [`UringReactor::push`]).
    submit_failures: u64,
    /// Whether completions are being reaped from inside `push` (which then does not reap
    /// again if a reaped completion pushes an SQE itself).
    reaping: bool,
}

/// A test's injected submission error: `errno` for the next `count` submits.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct SubmitFault {
    pub(crate) errno: Errno,
    pub(crate) count: u32,
}

#[cfg(test)]
thread_local! {
    /// Errors the next `io_uring_enter` calls on this thread return instead of entering
    /// (tests only: production builds have no such hook).
    static SUBMIT_FAULT: core::cell::Cell<Option<SubmitFault>> =
        const { core::cell::Cell::new(None) };
}

impl UringReactor {
    pub(crate) fn new(in_flight_max: usize, wake_fd: i32) -> Result<UringReactor, Errno> {
        let sq = (in_flight_max.next_power_of_two() as u32).clamp(64, 4096);
        UringReactor::with_sq(in_flight_max, wake_fd, sq)
    }

    /// A reactor whose submission queue has `sq` entries.
    fn with_sq(in_flight_max: usize, wake_fd: i32, sq: u32) -> Result<UringReactor, Errno> {
        let cq = ((in_flight_max * 2).next_power_of_two() as u32).clamp(2 * sq, 65536);
        let ring = IoUring::builder()
            .setup_cqsize(cq)
            .build(sq)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        Ok(UringReactor {
            ext_arg: ring.params().is_feature_ext_arg(),
            ring,
            ops: OpTable::new(in_flight_max),
            pending: Pending::new(in_flight_max + 16),
            wake_fd,
            wake_armed: false,
            shutting_down: false,
            unsubmitted: 0,
            timeout: types::Timespec::new(),
            submit_failures: 0,
            reaping: false,
        })
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.ops.in_flight()
    }

    /// Pushes that failed because the submission queue could not be handed to the kernel.
    pub(crate) fn submit_failures(&self) -> u64 {
        self.submit_failures
    }

    /// Pushes one SQE. If the queue is full it is handed to the kernel and the push retried,
    /// at most [`SUBMIT_ATTEMPTS_MAX`] times: `EINTR` retries, `EAGAIN`/`EBUSY` (the kernel
    /// is short of memory, or its completion queue overflowed) first reap the completions
    /// ready into [`Pending`]; any other error gives up at once. A push that gives up is
    /// counted in `submit_failures` and returns the error: the SQE never reached the queue,
    /// so the caller completes its operation with an error. It never spins.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid until its completion is reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> Result<(), Errno> {
        let mut last = libc::EBUSY;
        for attempt in 0..=SUBMIT_ATTEMPTS_MAX {
            // SAFETY: the caller guarantees the entry's pointers outlive the operation.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.unsubmitted += 1;
                return Ok(());
            }
            if attempt == SUBMIT_ATTEMPTS_MAX {
                break;
            }
            // The SQ is full: hand it to the kernel and retry.
            match self.enter() {
                Ok(_) => self.unsubmitted = self.ring.submission().len(),
                Err(libc::EINTR) => last = libc::EINTR,
                Err(e @ (libc::EAGAIN | libc::EBUSY)) => {
                    last = e;
                    self.reap_into_pending();
                }
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        self.submit_failures += 1;
        Err(last)
    }

    /// One non-blocking `io_uring_enter` for the queued SQEs.
    fn enter(&mut self) -> Result<usize, Errno> {
        #[cfg(test)]
        if let Some(mut f) = SUBMIT_FAULT.get()
            && f.count > 0
        {
            f.count -= 1;
            SUBMIT_FAULT.set(Some(f));
            return Err(f.errno);
        }
        self.ring
            .submit()
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    }

    /// Moves the completions ready in the CQ ring into [`Pending`] (to be reported at the
    /// next `complete`), freeing room in the CQ ring while a push waits for the kernel.
    fn reap_into_pending(&mut self) {
        if self.reaping {
            return;
        }
        self.reaping = true;
        let budget = self.ring.params().cq_entries() as usize;
        for _ in 0..budget {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            if let Some((owner, c)) = self.on_cqe(cqe.user_data(), cqe.result()) {
                self.pending.push(owner, c);
            }
        }
        self.reaping = false;
    }

    /// Hands the SQEs pushed since the last `io_uring_enter` to the kernel. An error leaves
    /// them queued for the next enter (a full queue then fails pushes, see `push`).
    pub(crate) fn flush(&mut self) {
        if self.unsubmitted > 0 && self.enter().is_ok() {
            self.unsubmitted = self.ring.submission().len();
        }
    }

    /// Builds the SQE of table entry `i`. `Err` completes the op at once with that error.
    fn prepare(&mut self, i: u32, buffers: &mut IoBuffers<'_>) -> Result<squeue::Entry, IoError> {
        let token = self.ops.token(i);
        let size = buffers.buffer_size();
        let op = self.ops.get_mut(i);
        let buf = op.buf;
        let mut buf_ptr = |len: u32| -> Result<(*mut u8, u32), IoError> {
            let b = buf.ok_or(IoError::BadBuffer)?;
            let bytes = buffers.get_mut(b).ok_or(IoError::BadBuffer)?;
            Ok((bytes.as_mut_ptr(), (len as usize).min(size) as u32))
        };
        let fd = types::Fd;
        let entry = match op.op {
            IoOp::Accept { listener } => {
                op.addr = SockAddr::empty();
                opcode::Accept::new(fd(listener.0), op.addr.as_mut_ptr(), &mut op.addr.len)
                    .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    .build()
            }
            IoOp::Connect { socket, addr } => {
                op.addr = SockAddr::from(&addr);
                opcode::Connect::new(fd(socket.0), op.addr.as_ptr(), op.addr.len).build()
            }
            IoOp::Recv { socket, len } => {
                let (p, n) = buf_ptr(len)?;
                opcode::Recv::new(fd(socket.0), p, n).build()
            }
            IoOp::Send { socket, len, .. } => {
                let (p, n) = buf_ptr(len)?;
                opcode::Send::new(fd(socket.0), p, n)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            }
            IoOp::Read { file, offset, len } => {
                let (p, n) = buf_ptr(len)?;
                opcode::Read::new(fd(file.0), p, n).offset(offset).build()
            }
            IoOp::Write {
                file, offset, len, ..
            } => {
                let (p, n) = buf_ptr(len)?;
                opcode::Write::new(fd(file.0), p, n).offset(offset).build()
            }
            IoOp::Close { fd: f } => opcode::Close::new(fd(f.0)).build(),
            IoOp::SendTo {
                socket, addr, len, ..
            } => {
                let (p, n) = buf_ptr(len)?;
                op.addr = SockAddr::from(&addr);
                point_message(op, p, n);
                opcode::SendMsg::new(fd(socket.0), &op.msg)
                    .flags(libc::MSG_NOSIGNAL as u32)
                    .build()
            }
            IoOp::RecvFrom { socket, len } => {
                let (p, n) = buf_ptr(len)?;
                op.addr = SockAddr::empty();
                point_message(op, p, n);
                opcode::RecvMsg::new(fd(socket.0), &mut op.msg).build()
            }
            IoOp::Open {
                path,
                path_len,
                flags,
                mode,
            } => {
                let p = open_path(buffers, path, path_len)?;
                opcode::OpenAt::new(fd(libc::AT_FDCWD), p.as_ptr().cast())
                    .flags(sys::open_flags(flags))
                    .mode(mode)
                    .build()
            }
            IoOp::SendFile {
                file, offset, len, ..
            } => first_splice(op, file.0, offset, len)?,
        };
        Ok(entry.user_data(token))
    }

    pub(crate) fn submit(&mut self, batch: &[Submission], mut buffers: IoBuffers<'_>) -> usize {
        for (k, s) in batch.iter().enumerate() {
            if self.shutting_down && waits_for_peer(&s.op) {
                self.pending
                    .push(s.owner, completion_of(s, Err(IoError::Canceled)));
                continue;
            }
            if let IoOp::Close { fd } = s.op {
                self.cancel_ops_on(fd.0);
            }
            let Some((i, _)) = self.ops.insert(s) else {
                if let IoOp::Close { fd } = s.op {
                    // A close is never refused (the isolate no longer owns the descriptor):
                    // with the table full it runs at once.
                    let r = close_now(fd.0);
                    self.pending.push(s.owner, completion_of(s, r));
                    continue;
                }
                // Table full: refuse this and the rest (the core completes them).
                return k;
            };
            match self.prepare(i, &mut buffers) {
                Ok(entry) => {
                    // SAFETY: the entry points into the shard's I/O buffers and this table
                    // entry, both valid until the completion is reaped (module docs).
                    if let Err(e) = unsafe { self.push(&entry) } {
                        // The SQE never reached the queue: the op fails now, and a reclaim
                        // close runs at once instead.
                        if let (IoOp::Close { fd }, true) = (s.op, s.owner.is_none()) {
                            let _ = close_now(fd.0);
                        }
                        let c = self.ops.get(i).completion(Err(push_error(e)));
                        self.ops.remove(i);
                        self.pending.push(s.owner, c);
                    }
                }
                Err(e) => {
                    let c = self.ops.get(i).completion(Err(e));
                    self.ops.remove(i);
                    self.pending.push(s.owner, c);
                }
            }
        }
        // The batch reaches the kernel at the end of the tick: with the next wait's
        // `io_uring_enter` when the shard goes idle (one syscall for both), else by `flush`.
        batch.len()
    }

    /// Whether anything can be reported without waiting.
    pub(crate) fn has_ready(&mut self) -> bool {
        !self.pending.is_empty() || !self.ring.completion().is_empty()
    }

    pub(crate) fn complete(&mut self, sink: &mut dyn CompletionSink) {
        self.pending.flush(sink);
        let mut budget = self.ring.params().cq_entries() as usize * 2;
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            budget = budget.saturating_sub(1);
            if let Some((owner, c)) = self.on_cqe(cqe.user_data(), cqe.result()) {
                sink.complete(owner, c);
            }
            if budget == 0 {
                break;
            }
        }
    }

    /// Handles one CQE; returns the completion to report, if it ends an operation.
    fn on_cqe(&mut self, token: u64, res: i32) -> Option<(Handle, IoCompletion)> {
        if token == WAKE_TOKEN {
            self.wake_armed = false;
            sys::eventfd_drain(self.wake_fd);
            return None;
        }
        if token == CANCEL_TOKEN || token == TIMEOUT_TOKEN {
            return None;
        }
        let i = self.ops.lookup(token)?;
        let shutting_down = self.shutting_down;
        let op = self.ops.get_mut(i);
        if let IoOp::SendFile { out, .. } = op.op
            && res > 0
            && !shutting_down
        {
            // Stage 1 (file → pipe) moved `res` bytes, or stage 2 (pipe → socket) did.
            if op.spliced_in == 0 {
                op.spliced_in = res as u32;
            } else {
                op.spliced_out += res as u32;
            }
            if op.spliced_out < op.spliced_in {
                let rest = op.spliced_in - op.spliced_out;
                let entry =
                    opcode::Splice::new(types::Fd(op.pipe.0), -1, types::Fd(out.0), -1, rest)
                        .build()
                        .user_data(token);
                // SAFETY: a splice between descriptors references no memory.
                match unsafe { self.push(&entry) } {
                    Ok(()) => return None,
                    Err(e) => {
                        // Report what was sent, or the failure if nothing was.
                        let op = self.ops.get(i);
                        let result = match op.spliced_out {
                            0 => Err(push_error(e)),
                            n => Ok(n),
                        };
                        return Some(self.finish(i, result));
                    }
                }
            }
            let done = op.spliced_out;
            return Some(self.finish(i, Ok(done)));
        }
        if let IoOp::RecvFrom { .. } = op.op {
            op.addr.len = op.msg.msg_namelen;
        }
        let result = if res >= 0 {
            match op.op {
                // A splice that hit the end of the file, or moved part of it before an error.
                IoOp::SendFile { .. } => Ok(op.spliced_out),
                _ => Ok(res as u32),
            }
        } else if matches!(op.op, IoOp::SendFile { .. }) && op.spliced_out > 0 {
            Ok(op.spliced_out)
        } else {
            Err(io_error(-res))
        };
        Some(self.finish(i, result))
    }

    /// Ends table entry `i` with `result`: its completion and owner.
    fn finish(&mut self, i: u32, result: Result<u32, IoError>) -> (Handle, IoCompletion) {
        let op = self.ops.get(i);
        let c = op.completion(result);
        let owner = op.owner;
        self.ops.remove(i);
        (owner, c)
    }

    /// Blocks in `io_uring_enter` until one completion (an I/O, or the wake eventfd's poll)
    /// or the timeout.
    pub(crate) fn wait(&mut self, timeout_ns: Option<u64>) {
        if !self.wake_armed {
            let entry = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
                .build()
                .user_data(WAKE_TOKEN);
            // SAFETY: a poll on a descriptor references no memory.
            if unsafe { self.push(&entry) }.is_err() {
                // Without the wake poll a sleep could miss a wake-up: do not sleep now.
                return;
            }
            self.wake_armed = true;
        }
        let ts = timeout_ns.map(|ns| {
            types::Timespec::new()
                .sec(ns / 1_000_000_000)
                .nsec((ns % 1_000_000_000) as u32)
        });
        if let Some(ts) = ts
            && !self.ext_arg
        {
            // Kernels before 5.11 cannot pass a timeout to io_uring_enter: use a timeout op.
            // A late one from an earlier wait only causes a spurious wake.
            self.timeout = ts;
            let entry = opcode::Timeout::new(&self.timeout)
                .build()
                .user_data(TIMEOUT_TOKEN);
            // SAFETY: `self.timeout` lives in this reactor, which outlives the ring's use of
            // it (the kernel copies the timespec when it prepares the request).
            if unsafe { self.push(&entry) }.is_err() {
                // Without the timeout op the sleep would not end on time: do not sleep now.
                return;
            }
        }
        self.unsubmitted = 0;
        let submitter = self.ring.submitter();
        let _ = match ts {
            Some(ts) if self.ext_arg => {
                let args = types::SubmitArgs::new().timespec(&ts);
                submitter.submit_with_args(1, &args)
            }
            _ => submitter.submit_and_wait(1),
        };
    }

    /// Cancels the operations in flight on `fd` before it is closed. An operation holds its
    /// own reference to the file, so without this a receive of a torn-down isolate would keep
    /// the socket open (the peer never sees it close) until data arrived. The cancelled
    /// operations complete with `Canceled` and the core reclaims them as stale.
    fn cancel_ops_on(&mut self, fd: i32) {
        for i in 0..self.ops.capacity() as u32 {
            if !self.ops.is_live(i) || !uses_fd(&self.ops.get(i).op, fd) {
                continue;
            }
            self.push_cancel(i);
        }
    }

    /// Queues the cancel of entry `i` (its completion then arrives as `Canceled`, or with
    /// its normal result if it finished first).
    fn push_cancel(&mut self, i: u32) {
        let entry = opcode::AsyncCancel::new(self.ops.token(i))
            .build()
            .user_data(CANCEL_TOKEN);
        // SAFETY: a cancel request references no memory (the token is a plain number).
        // If it cannot be queued (counted in `push`), the operation ends by itself.
        let _ = unsafe { self.push(&entry) };
    }

    /// Cancels `owner`'s submitted op `ticket` if it is still in flight (see
    /// `IoDriver::cancel`).
    pub(crate) fn cancel(&mut self, owner: tina_core::Handle, ticket: tina_core::io::IoTicket) {
        if let Some(i) = self.ops.find(owner, ticket) {
            self.push_cancel(i);
        }
    }

    /// Closes a descriptor nobody owns at once (see `SocketControl::close_orphan`): the
    /// operations in flight on it are cancelled first, as for a submitted close, and every
    /// queued SQE reaches the kernel before the number is freed (so none can name a new
    /// descriptor that reuses it). A rare path: one extra `io_uring_enter`.
    pub(crate) fn close_orphan(&mut self, fd: i32) {
        self.cancel_ops_on(fd);
        self.flush();
        let _ = close_now(fd);
    }

    pub(crate) fn cancel_all(&mut self) {
        self.shutting_down = true;
        for i in 0..self.ops.capacity() as u32 {
            if !self.ops.is_live(i) {
                continue;
            }
            self.push_cancel(i);
        }
        self.flush();
    }
}

impl Drop for UringReactor {
    /// The kernel may still write into the shard's buffers for operations in flight, and the
    /// shard's memory is unmapped right after: cancel everything and reap the completions
    /// (bounded) before the ring goes away.
    fn drop(&mut self) {
        if self.ops.in_flight() == 0 {
            return;
        }
        self.cancel_all();
        let deadline = sys::monotonic_ns() + DRAIN_ON_DROP_NS;
        while self.ops.in_flight() > 0 && sys::monotonic_ns() < deadline {
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            while let Some(cqe) = self.ring.completion().next() {
                if let Some(i) = self.ops.lookup(cqe.user_data()) {
                    self.ops.remove(i);
                }
            }
        }
    }
}

/// The error an operation whose SQE could not be queued completes with: `QueueFull` if the
/// kernel stayed busy, else the kernel's error.
/// Points the entry's message header at its address and at `len` bytes from `p` (one iovec),
/// for `sendmsg`/`recvmsg`. Both live in the entry, which stays put until the completion.
fn point_message(op: &mut Op, p: *mut u8, len: u32) {
    op.iov = libc::iovec {
        iov_base: p.cast(),
        iov_len: len as usize,
    };
    op.msg.msg_name = op.addr.as_mut_ptr().cast();
    op.msg.msg_namelen = op.addr.len;
    op.msg.msg_iov = &mut op.iov;
    op.msg.msg_iovlen = 1;
}

/// The first step of a `SendFile`: a pipe for the entry, and the splice of up to
/// `SPLICE_CHUNK_MAX` bytes from `file` at `offset` into it (`on_cqe` splices them on to the
/// socket and repeats).
fn first_splice(op: &mut Op, file: i32, offset: u64, len: u32) -> Result<squeue::Entry, IoError> {
    let (r, w) = sys::pipe().map_err(io_error)?;
    op.pipe = (r, w);
    Ok(opcode::Splice::new(
        types::Fd(file),
        offset as i64,
        types::Fd(w),
        -1,
        len.min(SPLICE_CHUNK_MAX),
    )
    .build())
}

fn push_error(e: Errno) -> IoError {
    match e {
        libc::EINTR | libc::EAGAIN | libc::EBUSY => IoError::QueueFull,
        e => io_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use tina_core::io::Fd;
    use tina_core::platform::CompletionSink;

    /// A reactor with a 4-entry submission queue, or `None` where io_uring is unavailable.
    fn small_ring(wake: &sys::OwnedFd) -> Option<UringReactor> {
        if let Err(e) = probe() {
            eprintln!("io_uring unavailable ({e:?}): skipped");
            return None;
        }
        Some(UringReactor::with_sq(16, wake.0, 4).expect("a 4-entry ring"))
    }

    fn nop() -> squeue::Entry {
        opcode::Nop::new().build().user_data(CANCEL_TOKEN)
    }

    fn owner(k: u32) -> Handle {
        Handle::new(tina_core::ShardId(0), tina_core::TypeId(0), k, 1).expect("a handle")
    }

    #[derive(Default)]
    struct Collect {
        got: Vec<(Handle, IoCompletion)>,
        bytes: Vec<u8>,
    }

    impl CompletionSink for Collect {
        fn complete(&mut self, owner: Handle, completion: IoCompletion) {
            self.got.push((owner, completion));
        }

        fn buffers(&mut self) -> IoBuffers<'_> {
            IoBuffers::new(&mut self.bytes, 64)
        }
    }

    #[test]
    fn push_to_a_full_queue_gives_up_on_a_hard_submit_error_and_counts_it() {
        let wake = sys::eventfd().unwrap();
        let Some(mut r) = small_ring(&wake) else {
            return;
        };
        SUBMIT_FAULT.set(Some(SubmitFault {
            errno: libc::EIO,
            count: u32::MAX,
        }));
        for _ in 0..4 {
            // SAFETY: a no-op references no memory.
            assert_eq!(unsafe { r.push(&nop()) }, Ok(()));
        }
        // The queue is full and the kernel refuses it: before, this retried forever.
        // SAFETY: as above.
        assert_eq!(unsafe { r.push(&nop()) }, Err(libc::EIO));
        assert_eq!(r.submit_failures(), 1);
        assert_eq!(
            SUBMIT_FAULT.get().map(|f| f.count),
            Some(u32::MAX - 1),
            "a hard error is not retried"
        );
        SUBMIT_FAULT.set(None);
        r.flush();
        // SAFETY: as above.
        assert_eq!(unsafe { r.push(&nop()) }, Ok(()), "the queue drained");
    }

    #[test]
    fn push_retries_a_busy_kernel_a_bounded_number_of_times() {
        let wake = sys::eventfd().unwrap();
        let Some(mut r) = small_ring(&wake) else {
            return;
        };
        for _ in 0..4 {
            // SAFETY: a no-op references no memory.
            unsafe { r.push(&nop()) }.unwrap();
        }
        // Transient: three refusals, then the kernel takes the queue.
        SUBMIT_FAULT.set(Some(SubmitFault {
            errno: libc::EBUSY,
            count: 3,
        }));
        // SAFETY: as above.
        assert_eq!(unsafe { r.push(&nop()) }, Ok(()));
        assert_eq!(r.submit_failures(), 0);
        r.flush();
        for _ in 0..4 {
            // SAFETY: as above.
            unsafe { r.push(&nop()) }.unwrap();
        }
        // Persistent: every attempt refused; the push ends after the bounded attempts.
        SUBMIT_FAULT.set(Some(SubmitFault {
            errno: libc::EAGAIN,
            count: u32::MAX,
        }));
        // SAFETY: as above.
        assert_eq!(unsafe { r.push(&nop()) }, Err(libc::EAGAIN));
        assert_eq!(
            u32::MAX - SUBMIT_FAULT.get().map_or(0, |f| f.count),
            SUBMIT_ATTEMPTS_MAX,
            "the queue was handed to the kernel a bounded number of times"
        );
        assert_eq!(r.submit_failures(), 1);
        SUBMIT_FAULT.set(None);
    }

    #[test]
    fn operations_that_cannot_be_queued_complete_with_a_counted_error() {
        let wake = sys::eventfd().unwrap();
        let Some(mut r) = small_ring(&wake) else {
            return;
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let fd = Fd(listener.as_raw_fd());
        SUBMIT_FAULT.set(Some(SubmitFault {
            errno: libc::EIO,
            count: u32::MAX,
        }));
        let batch: Vec<Submission> = (1..=6)
            .map(|k| Submission {
                owner: owner(k),
                op: IoOp::Accept { listener: fd },
                buf: None,
                ticket: tina_core::io::IoTicket::PARKED,
            })
            .collect();
        let mut sink = Collect {
            bytes: vec![0; 64],
            ..Collect::default()
        };
        assert_eq!(r.submit(&batch, sink.buffers()), 6, "the batch is taken");
        assert_eq!(r.in_flight(), 4, "four reached the queue");
        assert_eq!(r.submit_failures(), 2);
        r.complete(&mut sink);
        let failed: Vec<_> = sink.got.iter().map(|(h, c)| (*h, c.result)).collect();
        assert_eq!(
            failed,
            vec![
                (owner(5), Err(IoError::Os(libc::EIO))),
                (owner(6), Err(IoError::Os(libc::EIO)))
            ]
        );
        // The kernel takes the queue again: the four queued accepts are cancelled and
        // complete once each when dropped (bounded).
        SUBMIT_FAULT.set(None);
        drop(r);
    }
}
