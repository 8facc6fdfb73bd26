//! The toolbox both backends share: the table of operations in flight ([`OpTable`]), the
//! queue of completions obtained but not yet reported ([`Pending`]), the OS-error mapping,
//! synchronous helpers (close, open, socket control) and [`completion_of`].
//!
//! It imports nothing from the backends or the facade: `uring` and `epoll` build on it, and
//! the facade ([`super`]) picks one of them.

use std::collections::VecDeque;

use tina_core::Handle;
use tina_core::io::{
    Control, ControlOutcome, IoBuf, IoCompletion, IoError, IoKind, IoOp, IoTicket,
};
use tina_core::platform::{CompletionSink, IoBuffers, Submission};

use crate::sys::{self, Errno, SockAddr};

/// The OS error as a core I/O error.
pub(crate) fn io_error(e: Errno) -> IoError {
    match e {
        libc::ECONNREFUSED => IoError::ConnectionRefused,
        libc::ECONNRESET => IoError::ConnectionReset,
        libc::ECONNABORTED => IoError::ConnectionAborted,
        libc::EPIPE => IoError::BrokenPipe,
        libc::ENOTCONN => IoError::NotConnected,
        libc::EADDRINUSE => IoError::AddrInUse,
        libc::EADDRNOTAVAIL => IoError::AddrNotAvailable,
        libc::ENOENT => IoError::NotFound,
        libc::EACCES | libc::EPERM => IoError::PermissionDenied,
        libc::EEXIST => IoError::AlreadyExists,
        libc::EINVAL => IoError::InvalidInput,
        libc::ETIMEDOUT => IoError::TimedOut,
        libc::EMFILE | libc::ENFILE => IoError::TooManyOpenFiles,
        libc::EBADF => IoError::BadDescriptor,
        libc::ECANCELED | libc::EINTR => IoError::Canceled,
        libc::EOPNOTSUPP | libc::ENOSYS => IoError::Unsupported,
        e => IoError::Os(e),
    }
}

/// Whether `op` waits for the outside world (and so is cancelled at once during shutdown).
pub(crate) fn waits_for_peer(op: &IoOp) -> bool {
    matches!(
        op,
        IoOp::Accept { .. } | IoOp::Connect { .. } | IoOp::Recv { .. } | IoOp::RecvFrom { .. }
    )
}

/// Whether `op` works on descriptor `fd`.
pub(crate) fn uses_fd(op: &IoOp, fd: i32) -> bool {
    match *op {
        IoOp::Accept { listener } => listener.0 == fd,
        IoOp::Connect { socket, .. }
        | IoOp::Recv { socket, .. }
        | IoOp::Send { socket, .. }
        | IoOp::SendTo { socket, .. }
        | IoOp::RecvFrom { socket, .. } => socket.0 == fd,
        IoOp::Read { file, .. } | IoOp::Write { file, .. } => file.0 == fd,
        IoOp::SendFile { out, file, .. } => out.0 == fd || file.0 == fd,
        IoOp::Close { .. } | IoOp::Open { .. } => false,
    }
}

/// One operation in flight.
pub(crate) struct Op {
    pub(crate) owner: Handle,
    pub(crate) op: IoOp,
    pub(crate) buf: Option<IoBuf>,
    /// The core's ticket for the op, echoed in its completion.
    pub(crate) ticket: IoTicket,
    /// Peer address (accept, recvfrom) or destination (connect, sendto).
    pub(crate) addr: SockAddr,
    /// io_uring: the message header of sendmsg/recvmsg and its one iovec.
    pub(crate) msg: libc::msghdr,
    pub(crate) iov: libc::iovec,
    /// sendfile over splice: the pipe, bytes moved into it, bytes moved out.
    pub(crate) pipe: (i32, i32),
    pub(crate) spliced_in: u32,
    pub(crate) spliced_out: u32,
    /// epoll: a non-blocking connect was started (later attempts read its outcome).
    pub(crate) started: bool,
    pub(crate) generation: u32,
    pub(crate) live: bool,
}

impl Op {
    fn empty() -> Op {
        Op {
            owner: Handle::NONE,
            op: IoOp::Close {
                fd: tina_core::io::Fd(-1),
            },
            buf: None,
            ticket: IoTicket::PARKED,
            addr: SockAddr::empty(),
            msg: empty_msghdr(),
            iov: libc::iovec {
                iov_base: core::ptr::null_mut(),
                iov_len: 0,
            },
            pipe: (-1, -1),
            spliced_in: 0,
            spliced_out: 0,
            started: false,
            generation: 0,
            live: false,
        }
    }

    /// The completion of this op with `result`, echoing its buffer.
    pub(crate) fn completion(&self, result: Result<u32, IoError>) -> IoCompletion {
        let peer = match (self.op.kind(), result) {
            (IoKind::Accept | IoKind::RecvFrom, Ok(_)) => self.addr.socket_addr(),
            _ => None,
        };
        IoCompletion {
            kind: self.op.kind(),
            result,
            buf: self.buf,
            peer,
            ticket: self.ticket,
        }
    }
}

fn empty_msghdr() -> libc::msghdr {
    libc::msghdr {
        msg_name: core::ptr::null_mut(),
        msg_namelen: 0,
        msg_iov: core::ptr::null_mut(),
        msg_iovlen: 0,
        msg_control: core::ptr::null_mut(),
        msg_controllen: 0,
        msg_flags: 0,
    }
}

/// The in-flight operations of one shard: a fixed slab with a free list. An operation's
/// token (the io_uring user data or epoll data word) is `index | generation << 32`, so a
/// late event for a reused entry is recognised and ignored.
pub(crate) struct OpTable {
    ops: Vec<Op>,
    free: Vec<u32>,
}

impl OpTable {
    pub(crate) fn new(capacity: usize) -> OpTable {
        let capacity = capacity.clamp(1, u32::MAX as usize - 2);
        OpTable {
            ops: (0..capacity).map(|_| Op::empty()).collect(),
            free: (0..capacity as u32).rev().collect(),
        }
    }

    /// Takes an entry for `s`, or `None` when the table is full.
    pub(crate) fn insert(&mut self, s: &Submission) -> Option<(u32, u64)> {
        let i = self.free.pop()?;
        let op = &mut self.ops[i as usize];
        op.generation = op.generation.wrapping_add(1);
        op.live = true;
        op.owner = s.owner;
        op.op = s.op;
        op.buf = s.buf;
        op.ticket = s.ticket;
        op.spliced_in = 0;
        op.spliced_out = 0;
        op.started = false;
        op.pipe = (-1, -1);
        Some((i, token(i, op.generation)))
    }

    /// The live entry a token names.
    pub(crate) fn lookup(&self, token: u64) -> Option<u32> {
        let i = (token & 0xFFFF_FFFF) as u32;
        let op = self.ops.get(i as usize)?;
        (op.live && op.generation == (token >> 32) as u32).then_some(i)
    }

    pub(crate) fn get(&self, i: u32) -> &Op {
        &self.ops[i as usize]
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> &mut Op {
        &mut self.ops[i as usize]
    }

    pub(crate) fn token(&self, i: u32) -> u64 {
        token(i, self.ops[i as usize].generation)
    }

    /// Frees an entry (closing a splice pipe it holds).
    pub(crate) fn remove(&mut self, i: u32) {
        let op = &mut self.ops[i as usize];
        if !op.live {
            return;
        }
        op.live = false;
        for fd in [op.pipe.0, op.pipe.1] {
            if fd >= 0 {
                let _ = sys::close(fd);
            }
        }
        op.pipe = (-1, -1);
        self.free.push(i);
    }

    /// The live entry of `owner`'s submitted op `ticket` (a linear scan: cancels are rare).
    pub(crate) fn find(&self, owner: Handle, ticket: IoTicket) -> Option<u32> {
        if ticket.is_parked() {
            return None;
        }
        self.ops
            .iter()
            .position(|o| o.live && o.owner == owner && o.ticket == ticket)
            .map(|i| i as u32)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.ops.len() - self.free.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.ops.len()
    }

    pub(crate) fn is_live(&self, i: u32) -> bool {
        self.ops.get(i as usize).is_some_and(|o| o.live)
    }
}

fn token(i: u32, generation: u32) -> u64 {
    u64::from(i) | (u64::from(generation) << 32)
}

/// Completions produced without the kernel (refusals during shutdown, synchronous reclaim),
/// reported at the next `complete`. Bounded by the op table size (each submission completes
/// once), so it never grows after boot.
pub(crate) struct Pending {
    queue: VecDeque<(Handle, IoCompletion)>,
}

impl Pending {
    pub(crate) fn new(capacity: usize) -> Pending {
        Pending {
            queue: VecDeque::with_capacity(capacity),
        }
    }

    pub(crate) fn push(&mut self, owner: Handle, c: IoCompletion) {
        if owner.is_none() {
            return; // reclaim work needs no answer
        }
        debug_assert!(self.queue.len() < self.queue.capacity());
        self.queue.push_back((owner, c));
    }

    pub(crate) fn flush(&mut self, sink: &mut dyn CompletionSink) {
        while let Some((owner, c)) = self.queue.pop_front() {
            sink.complete(owner, c);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Runs a close at once (reclaim work when the table is full; never refused).
pub(crate) fn close_now(fd: i32) -> Result<u32, IoError> {
    sys::close(fd).map(|()| 0).map_err(io_error)
}

/// The NUL-terminated path of an `Open` op, written into its own buffer right after the path.
pub(crate) fn open_path<'b>(
    buffers: &'b mut IoBuffers<'_>,
    path: IoBuf,
    path_len: u32,
) -> Result<&'b mut [u8], IoError> {
    let bytes = buffers.get_mut(path).ok_or(IoError::BadBuffer)?;
    let n = path_len as usize;
    if n == 0 || n >= bytes.len() || bytes[..n].contains(&0) {
        return Err(IoError::InvalidInput);
    }
    bytes[n] = 0;
    Ok(&mut bytes[..=n])
}

/// Synchronous socket control, shared by both backends.
pub(crate) fn control(op: Control) -> Result<ControlOutcome, IoError> {
    match op {
        Control::Socket { domain, kind } => sys::socket(domain, kind)
            .map(|fd| ControlOutcome::Fd(tina_core::io::Fd(fd)))
            .map_err(io_error),
        Control::Bind { socket, addr } => sys::bind(socket.0, &addr)
            .map(|()| ControlOutcome::Done)
            .map_err(io_error),
        Control::Listen { socket, backlog } => sys::listen(socket.0, backlog)
            .map(|()| ControlOutcome::Done)
            .map_err(io_error),
        Control::SetOption { socket, option } => sys::set_option(socket.0, option)
            .map(|()| ControlOutcome::Done)
            .map_err(io_error),
        Control::Shutdown { socket, how } => sys::shutdown(socket.0, how)
            .map(|()| ControlOutcome::Done)
            .map_err(io_error),
        Control::LocalAddr { socket } => sys::local_addr(socket.0)
            .map(ControlOutcome::Addr)
            .map_err(io_error),
    }
}

/// The completion of submission `s` with `result` (no peer address), echoing its buffer.
pub(crate) fn completion_of(s: &Submission, result: Result<u32, IoError>) -> IoCompletion {
    IoCompletion {
        kind: s.op.kind(),
        result,
        buf: s.buf,
        peer: None,
        ticket: s.ticket,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tina_core::io::Fd;

    fn sub(fd: i32) -> Submission {
        Submission {
            owner: Handle::NONE,
            op: IoOp::Close { fd: Fd(fd) },
            buf: None,
            ticket: tina_core::io::IoTicket::PARKED,
        }
    }

    #[test]
    fn op_table_tokens_go_stale_when_an_entry_is_reused() {
        let mut t = OpTable::new(2);
        let (i, token) = t.insert(&sub(3)).unwrap();
        let (_, other) = t.insert(&sub(4)).unwrap();
        assert!(t.insert(&sub(5)).is_none(), "full");
        assert_eq!(t.lookup(token), Some(i));
        t.remove(i);
        assert_eq!(t.lookup(token), None, "freed");
        let (j, reused) = t.insert(&sub(6)).unwrap();
        assert_eq!(j, i);
        assert_ne!(reused, token, "a new generation");
        assert_eq!(t.lookup(token), None, "the old token stays stale");
        assert!(t.lookup(other).is_some());
        assert_eq!(t.in_flight(), 2);
    }

    #[test]
    fn errors_map_to_the_core_vocabulary() {
        assert_eq!(io_error(libc::ECONNRESET), IoError::ConnectionReset);
        assert_eq!(io_error(libc::ECANCELED), IoError::Canceled);
        assert_eq!(io_error(libc::EMFILE), IoError::TooManyOpenFiles);
        assert_eq!(io_error(libc::ENOSPC), IoError::Os(libc::ENOSPC));
    }

    #[test]
    fn socket_control_creates_binds_and_reports_the_address() {
        assert!(control(Control::LocalAddr { socket: Fd(-1) }).is_err());
        let fd = match control(Control::Socket {
            domain: tina_core::io::Domain::Ipv4,
            kind: tina_core::io::SocketKind::Stream,
        }) {
            Ok(ControlOutcome::Fd(fd)) => fd,
            other => panic!("socket: {other:?}"),
        };
        let any = core::net::SocketAddr::from(([127, 0, 0, 1], 0));
        assert_eq!(
            control(Control::Bind {
                socket: fd,
                addr: any
            }),
            Ok(ControlOutcome::Done)
        );
        match control(Control::LocalAddr { socket: fd }) {
            Ok(ControlOutcome::Addr(a)) => assert_ne!(a.port(), 0),
            other => panic!("local addr: {other:?}"),
        }
        assert!(close_now(fd.0).is_ok());
    }
}
