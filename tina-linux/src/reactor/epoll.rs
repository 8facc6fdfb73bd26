//! The epoll fallback: the same contract as io_uring, built on readiness.
//!
//! An operation is first attempted at once, without blocking. If the descriptor is not ready
//! (`EAGAIN`, or a connect in progress), the operation waits in the descriptor's slot — one
//! reader (accept, recv, recvfrom) and one writer (send, sendto, connect, sendfile) per
//! descriptor — and the descriptor is registered with epoll, edge-triggered, once for its
//! lifetime. A readiness event retries the waiting operation; since it was attempted after
//! the registration and saw `EAGAIN`, the next edge cannot be missed. Operations on regular
//! files (read, write, open) and closes never wait: they run synchronously.
//!
//! Results are reported at the next `complete`, in the order they were obtained. Received
//! bytes go straight into the reactor-owned buffer, exactly as with io_uring. Rare cases that
//! do not fit a slot (a second reader on one descriptor, descriptors beyond the slot table)
//! are retried every tick, and the shard then sleeps at most a millisecond.

use std::collections::VecDeque;

use tina_core::io::{IoError, IoOp};
use tina_core::platform::{CompletionSink, IoBuffers, Submission};

use super::ops::{
    OpTable, Pending, close_now, completion_of, io_error, open_path, uses_fd, waits_for_peer,
};
use crate::sys::{self, Epoll, EpollEvent, Errno, SockAddr};

const WAKE_DATA: u64 = u64::MAX;
const NIL: u32 = u32::MAX;
const EVENTS_MAX: usize = 256;
/// Descriptors with a slot (higher ones are polled; see the module docs).
const FD_SLOTS_MAX: u64 = 1 << 16;

#[derive(Clone, Copy)]
struct FdSlot {
    registered: bool,
    reader: u32,
    writer: u32,
}

const FD_SLOT_EMPTY: FdSlot = FdSlot {
    registered: false,
    reader: NIL,
    writer: NIL,
};

/// The epoll reactor of one shard.
pub struct EpollReactor {
    ep: Epoll,
    wake_fd: i32,
    ops: OpTable,
    pending: Pending,
    fds: Vec<FdSlot>,
    /// Operations that wait without a slot: retried every tick.
    polled: VecDeque<u32>,
    events: Vec<EpollEvent>,
    events_len: usize,
    waiting: usize,
    shutting_down: bool,
}

/// Outcome of one non-blocking attempt.
enum Attempt {
    Done(Result<u32, IoError>),
    WouldBlock,
}

/// The descriptor an op waits on, and whether as its reader (else its writer).
fn waits_on(op: &IoOp) -> (i32, bool) {
    match *op {
        IoOp::Accept { listener } => (listener.0, true),
        IoOp::Recv { socket, .. } | IoOp::RecvFrom { socket, .. } => (socket.0, true),
        IoOp::Connect { socket, .. } | IoOp::Send { socket, .. } | IoOp::SendTo { socket, .. } => {
            (socket.0, false)
        }
        IoOp::SendFile { out, .. } => (out.0, false),
        _ => (-1, true),
    }
}

fn done(r: Result<usize, Errno>) -> Attempt {
    match r {
        Ok(n) => Attempt::Done(Ok(n.min(u32::MAX as usize) as u32)),
        Err(libc::EAGAIN) => Attempt::WouldBlock,
        Err(e) => Attempt::Done(Err(io_error(e))),
    }
}

impl EpollReactor {
    pub(crate) fn new(in_flight_max: usize, wake_fd: i32) -> Result<EpollReactor, Errno> {
        let ep = Epoll::new()?;
        ep.add_level(wake_fd, WAKE_DATA)?;
        let slots = sys::open_files_limit().clamp(1024, FD_SLOTS_MAX) as usize;
        Ok(EpollReactor {
            ep,
            wake_fd,
            ops: OpTable::new(in_flight_max),
            pending: Pending::new(in_flight_max + 16),
            fds: vec![FD_SLOT_EMPTY; slots],
            polled: VecDeque::with_capacity(in_flight_max),
            events: vec![sys::EPOLL_EVENT_EMPTY; EVENTS_MAX],
            events_len: 0,
            waiting: 0,
            shutting_down: false,
        })
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.ops.in_flight()
    }

    /// Forgets what was known about a descriptor number (it was closed, or is new).
    pub(crate) fn forget_fd(&mut self, fd: i32) {
        if let Some(slot) = self.fds.get_mut(fd as usize) {
            *slot = FD_SLOT_EMPTY;
        }
    }

    /// One non-blocking attempt at table entry `i`.
    fn attempt(&mut self, i: u32, buffers: &mut IoBuffers<'_>) -> Attempt {
        let size = buffers.buffer_size();
        let op = self.ops.get_mut(i);
        let buf = op.buf;
        macro_rules! bytes_mut {
            ($len:expr) => {
                match buf.and_then(|b| buffers.get_mut(b)) {
                    Some(bytes) => &mut bytes[..($len as usize).min(size)],
                    None => return Attempt::Done(Err(IoError::BadBuffer)),
                }
            };
        }
        match op.op {
            IoOp::Accept { listener } => {
                let r = sys::accept(listener.0, &mut op.addr);
                if let Ok(fd) = r
                    && let Some(slot) = self.fds.get_mut(fd as usize)
                {
                    *slot = FD_SLOT_EMPTY;
                }
                done(r.map(|fd| fd as usize))
            }
            IoOp::Connect { socket, addr } => {
                if !op.started {
                    op.started = true;
                    op.addr = SockAddr::from(&addr);
                    match sys::connect(socket.0, &op.addr) {
                        Ok(()) => Attempt::Done(Ok(0)),
                        Err(libc::EINPROGRESS | libc::EAGAIN) => Attempt::WouldBlock,
                        Err(e) => Attempt::Done(Err(io_error(e))),
                    }
                } else {
                    Attempt::Done(
                        sys::take_socket_error(socket.0)
                            .map(|()| 0)
                            .map_err(io_error),
                    )
                }
            }
            IoOp::Recv { socket, len } => done(sys::recv(socket.0, bytes_mut!(len))),
            IoOp::Send { socket, len, .. } => done(sys::send(socket.0, bytes_mut!(len))),
            IoOp::SendTo {
                socket, addr, len, ..
            } => {
                let to = SockAddr::from(&addr);
                done(sys::send_to(socket.0, bytes_mut!(len), &to))
            }
            IoOp::RecvFrom { socket, len } => {
                let mut from = SockAddr::empty();
                let r = sys::recv_from(socket.0, bytes_mut!(len), &mut from);
                self.ops.get_mut(i).addr = from;
                done(r)
            }
            IoOp::Read { file, offset, len } => done(sys::pread(file.0, bytes_mut!(len), offset)),
            IoOp::Write {
                file, offset, len, ..
            } => done(sys::pwrite(file.0, bytes_mut!(len), offset)),
            IoOp::Open {
                path,
                path_len,
                flags,
                mode,
            } => match open_path(buffers, path, path_len) {
                Ok(p) => done(sys::open(p, sys::open_flags(flags), mode).map(|fd| fd as usize)),
                Err(e) => Attempt::Done(Err(e)),
            },
            IoOp::SendFile {
                out,
                file,
                offset,
                len,
            } => done(sys::sendfile(out.0, file.0, offset, len as usize)),
            IoOp::Close { fd } => Attempt::Done(close_now(fd.0)),
        }
    }

    /// Parks entry `i` until its descriptor is ready.
    fn park(&mut self, i: u32) {
        self.waiting += 1;
        let (fd, reader) = waits_on(&self.ops.get(i).op);
        let Some(slot) = self.fds.get_mut(fd as usize) else {
            self.polled.push_back(i);
            return;
        };
        let dir = if reader {
            &mut slot.reader
        } else {
            &mut slot.writer
        };
        if *dir != NIL {
            self.polled.push_back(i);
            return;
        }
        *dir = i;
        if !slot.registered {
            match self.ep.add(fd, fd as u64) {
                Ok(()) | Err(libc::EEXIST) => slot.registered = true,
                Err(_) => {
                    // Not pollable (e.g. a regular file): retry every tick instead.
                    if reader {
                        slot.reader = NIL;
                    } else {
                        slot.writer = NIL;
                    }
                    self.polled.push_back(i);
                }
            }
        }
    }

    pub(crate) fn submit(&mut self, batch: &[Submission], mut buffers: IoBuffers<'_>) -> usize {
        for (k, s) in batch.iter().enumerate() {
            if self.shutting_down && waits_for_peer(&s.op) {
                self.pending
                    .push(s.owner, completion_of(s, Err(IoError::Canceled)));
                continue;
            }
            if let IoOp::Close { fd } = s.op {
                self.cancel_waiters_on(fd.0);
                let r = close_now(fd.0);
                self.forget_fd(fd.0);
                self.pending.push(s.owner, completion_of(s, r));
                continue;
            }
            let Some((i, _)) = self.ops.insert(s) else {
                return k;
            };
            match self.attempt(i, &mut buffers) {
                Attempt::Done(r) => {
                    let c = self.ops.get(i).completion(r);
                    self.ops.remove(i);
                    self.pending.push(s.owner, c);
                }
                Attempt::WouldBlock => self.park(i),
            }
        }
        batch.len()
    }

    /// Closes a descriptor nobody owns at once (see `SocketControl::close_orphan`): its
    /// waiting operations complete with `Canceled` first, as for a submitted close.
    pub(crate) fn close_orphan(&mut self, fd: i32) {
        self.cancel_waiters_on(fd);
        let _ = close_now(fd);
        self.forget_fd(fd);
    }

    /// Completes (with `Canceled`) operations waiting on a descriptor about to be closed, so
    /// none of them can later act on a new descriptor that reuses the number.
    fn cancel_waiters_on(&mut self, fd: i32) {
        if let Some(slot) = self.fds.get(fd as usize).copied() {
            for i in [slot.reader, slot.writer] {
                if i != NIL {
                    self.finish_parked(i, Err(IoError::Canceled));
                }
            }
        }
        for _ in 0..self.polled.len() {
            let Some(i) = self.polled.pop_front() else {
                debug_assert!(false, "the polled queue shrank while it was being rotated");
                break;
            };
            if uses_fd(&self.ops.get(i).op, fd) {
                self.finish_parked(i, Err(IoError::Canceled));
            } else {
                self.polled.push_back(i);
            }
        }
    }

    /// Cancels `owner`'s submitted op `ticket` if it still waits (see `IoDriver::cancel`):
    /// it leaves its descriptor slot or the polled queue and completes with `Canceled`. An
    /// op that already finished (its result pending report) is left alone.
    pub(crate) fn cancel(&mut self, owner: tina_core::Handle, ticket: tina_core::io::IoTicket) {
        let Some(i) = self.ops.find(owner, ticket) else {
            return;
        };
        let mut found = false;
        let (fd, _) = waits_on(&self.ops.get(i).op);
        if let Some(slot) = self.fds.get_mut(fd as usize) {
            for dir in [&mut slot.reader, &mut slot.writer] {
                if *dir == i {
                    *dir = NIL;
                    found = true;
                }
            }
        }
        if let Some(k) = self.polled.iter().position(|&p| p == i) {
            self.polled.remove(k);
            found = true;
        }
        if found {
            self.finish_parked(i, Err(IoError::Canceled));
        }
    }

    fn finish_parked(&mut self, i: u32, r: Result<u32, IoError>) {
        let op = self.ops.get(i);
        let c = op.completion(r);
        let owner = op.owner;
        self.ops.remove(i);
        self.waiting -= 1;
        self.pending.push(owner, c);
    }

    pub(crate) fn has_ready(&mut self) -> bool {
        !self.pending.is_empty() || self.events_len > 0
    }

    pub(crate) fn complete(&mut self, sink: &mut dyn CompletionSink) {
        if self.events_len == 0 && self.waiting > self.polled.len() {
            self.events_len = self.ep.wait(&mut self.events, 0);
        }
        for k in 0..self.events_len {
            let ev = self.events[k];
            let data = ev.u64;
            if data == WAKE_DATA {
                sys::eventfd_drain(self.wake_fd);
                continue;
            }
            let fd = data as usize;
            let (readable, writable) = sys::epoll_flags(&ev);
            let Some(slot) = self.fds.get(fd).copied() else {
                debug_assert!(
                    false,
                    "epoll reported fd {fd} without a slot: only descriptors with one are registered"
                );
                continue;
            };
            if readable && slot.reader != NIL {
                self.retry(slot.reader, sink, |s| &mut s.reader, fd);
            }
            if writable && slot.writer != NIL {
                self.retry(slot.writer, sink, |s| &mut s.writer, fd);
            }
        }
        self.events_len = 0;
        for _ in 0..self.polled.len() {
            let Some(i) = self.polled.pop_front() else {
                debug_assert!(false, "the polled queue shrank while it was being rotated");
                break;
            };
            match self.attempt(i, &mut sink.buffers()) {
                Attempt::Done(r) => self.finish_parked(i, r),
                Attempt::WouldBlock => self.polled.push_back(i),
            }
        }
        self.pending.flush(sink);
    }

    fn retry(
        &mut self,
        i: u32,
        sink: &mut dyn CompletionSink,
        dir: fn(&mut FdSlot) -> &mut u32,
        fd: usize,
    ) {
        if let Attempt::Done(r) = self.attempt(i, &mut sink.buffers()) {
            *dir(&mut self.fds[fd]) = NIL;
            self.finish_parked(i, r);
        }
    }

    /// Blocks in `epoll_wait` until readiness, the wake eventfd, or the timeout.
    pub(crate) fn wait(&mut self, timeout_ns: Option<u64>) {
        if !self.pending.is_empty() || self.events_len > 0 {
            return;
        }
        let mut ms = match timeout_ns {
            Some(ns) => ns.div_ceil(1_000_000).min(i32::MAX as u64) as i32,
            None => -1,
        };
        if !self.polled.is_empty() {
            ms = if ms < 0 { 1 } else { ms.min(1) };
        }
        self.events_len = self.ep.wait(&mut self.events, ms);
    }

    pub(crate) fn cancel_all(&mut self) {
        self.shutting_down = true;
        for i in 0..self.ops.capacity() as u32 {
            if self.ops.is_live(i) {
                let op = self.ops.get(i);
                let c = op.completion(Err(IoError::Canceled));
                let owner = op.owner;
                self.ops.remove(i);
                self.pending.push(owner, c);
            }
        }
        for slot in self.fds.iter_mut() {
            slot.reader = NIL;
            slot.writer = NIL;
        }
        self.polled.clear();
        self.waiting = 0;
    }
}
