//! The I/O vocabulary, as plain data.
//!
//! The core does not perform I/O; it defines *what* can be asked for and *how* the answer comes
//! back, so every platform (io_uring, epoll, the simulator) executes the same contract.
//!
//! # Two ways to start an operation
//!
//! - **Parked** ([`Effect::Io`](crate::Effect::Io)): the handler returns one [`IoOp`] and the
//!   isolate is parked until that op's completion; no mail is taken meanwhile. Its
//!   completion carries [`IoTicket::PARKED`] and needs no storage beyond the isolate's own
//!   metadata. This is the default and what every type can do.
//! - **Submitted** (`Ctx::submit`): during a handler, an op is queued and the handler goes on;
//!   it returns an [`IoTicket`] naming that op. The isolate keeps running: it takes mail,
//!   its timers fire, it can make a `Call`, submit more ops (a receive and a send on one
//!   socket at once) or park on an `Effect::Io`. Each completion arrives later as its own
//!   `IO_COMPLETED` message naming its ticket ([`IoCompletion::ticket`]), delivered when the
//!   isolate waits for mail (`Effect::Receive`), ahead of its mailbox.
//!
//! A connection that reads and writes at once and takes mail (a chat line to push to its
//! client while a receive is pending):
//!
//! ```
//! use tina_core::io::{Fd, IoKind, IoOp, IoTicket};
//! use tina_core::{CrashReason, Ctx, Effect, Isolate, Message, Payload, TypeSpec, UserTag};
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Line {
//!     bytes: [u8; 64],
//!     len: u32,
//! }
//! impl Payload for Line {
//!     const TAG: UserTag = UserTag::new(0x50);
//! }
//!
//! struct Conn {
//!     socket: Fd,
//!     recv: IoTicket,
//! }
//!
//! impl Isolate for Conn {
//!     type Args = i32; // the connected socket
//!     fn init(fd: &i32, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
//!         let socket = Fd(*fd);
//!         ctx.own_fd(Some(socket));
//!         let recv = ctx
//!             .submit(IoOp::Recv { socket, len: 512 })
//!             .map_err(|_| CrashReason("no room for the receive"))?;
//!         Ok((Conn { socket, recv }, Effect::Receive))
//!     }
//!
//!     fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
//!         if let Some(c) = msg.io_completion() {
//!             match (c.kind, c.result, c.buf) {
//!                 (IoKind::Recv, Ok(n), Some(buf)) if c.ticket == self.recv && n > 0 => {
//!                     let _request = ctx.io_data(buf, n as usize); // parse it here
//!                     match ctx.submit(IoOp::Recv { socket: self.socket, len: 512 }) {
//!                         Ok(t) => self.recv = t,
//!                         Err(_) => return Effect::Crash(CrashReason("no room")),
//!                     }
//!                 }
//!                 (IoKind::Recv, _, _) => return Effect::Done, // EOF or error
//!                 _ => {} // a send completed (check for a partial one in real code)
//!             }
//!             return Effect::Receive;
//!         }
//!         if let Some(line) = msg.decode::<Line>() {
//!             // Mail while the receive is pending: write it on the same socket.
//!             if let Ok(buf) = ctx.io_buffer() {
//!                 let n = (line.len as usize).min(64);
//!                 if let Ok(out) = ctx.io_buffer_mut(buf) {
//!                     out[..n].copy_from_slice(&line.bytes[..n]);
//!                 }
//!                 let send = IoOp::Send { socket: self.socket, buf, len: n as u32 };
//!                 let _ = ctx.submit(send); // refused (bound, queue full): dropped here
//!             }
//!         }
//!         Effect::Receive
//!     }
//! }
//!
//! // One receive and one send submitted at once, plus room for a parked Effect::Io.
//! let _conn = TypeSpec::of::<Conn>("conn").io_in_flight_max(3);
//! ```
//!
//! # Bounds
//!
//! `TypeSpec::io_in_flight_max` (1 to [`IO_IN_FLIGHT_MAX`], default 1) bounds the operations
//! one isolate of the type has in flight at once: up to `io_in_flight_max − 1` submitted ops,
//! plus the one a parked `Effect::Io` holds. The default 1 therefore allows only the parked
//! way (`Ctx::submit` is refused with [`IoError::InFlightLimit`]), exactly the behaviour of
//! one op at a time. The storage for the submitted ops' completions (one slot per ticket) is
//! carved at boot and counted in `memory_required`; nothing queues beyond it: a submission
//! over the bound, with the tick's batch full or the buffer pool empty is refused at once
//! (`InFlightLimit`, `QueueFull`, `NoBuffers`), the isolate keeps its outbound buffer for
//! this handler call, and nothing reaches the platform.
//!
//! # Buffers
//!
//! Data that goes *out* (send, write, sendto, a path to open) lives in a reactor-owned
//! buffer the handler obtained with `Ctx::io_buffer` and filled; naming the buffer in the op
//! hands it to the platform. Data that comes *in* (recv, read, recvfrom) lands in a
//! reactor-owned buffer the core picks when the op is submitted. The completion names it;
//! the handler reads the bytes through `Ctx::io_data` during that one handler call, after
//! which the buffer is freed — unless the handler hands it straight to another op
//! (zero-copy echo).
//!
//! # Completions
//!
//! A completion arrives as a system message (`IO_COMPLETED`) decoded with
//! [`Message::io_completion`](crate::Message::io_completion). It never needs a pool slot: a
//! parked op's lives in the isolate's metadata, a submitted op's in its ticket's slot. Each
//! op completes exactly once. The core routes a completion by its owner's handle (slot and
//! generation) and its ticket (index and sequence number), so a completion for an isolate
//! torn down meanwhile is *stale*: the core frees its buffer, closes a socket it accepted or
//! a file it opened, counts it, and never delivers it to the slot's new occupant (a
//! restarted incarnation has a new generation). Completions already in, but not yet
//! delivered, at teardown are reclaimed the same way.
//!
//! Completions of submitted ops wait in their ticket slots while the isolate is parked (on
//! a `Call`'s reply, an `Effect::Io`) or yielded, and are delivered once it waits for mail
//! again: one per handler call, ahead of the mailbox, lowest ticket slot first (not
//! necessarily in the order they completed).
//!
//! # Cancelling
//!
//! `Ctx::cancel(ticket)` asks the platform to end a submitted op early
//! ([`IoDriver::cancel`](crate::platform::IoDriver::cancel), after this tick's batch). The
//! op still completes exactly once: with `Err(IoError::Canceled)` if the cancel won, or with
//! its normal result if it finished first (a receive that raced delivers its bytes, which
//! the handler must then consume). A platform that cannot cancel lets the op finish
//! normally.
//!
//! Synchronous socket control (socket, bind, listen, setsockopt, shutdown) is the
//! [`Control`] vocabulary, executed at once through the platform's
//! [`SocketControl`](crate::platform::SocketControl).

use crate::model::handle::Handle;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A platform file descriptor (a real one on Linux, a simulated one in tina-sim).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fd(pub i32);

/// A reference to one reactor-owned I/O buffer: index and generation, so a stale reference
/// can never reach a reused buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IoBuf {
    pub(crate) index: u16,
    pub(crate) generation: u16,
}

impl IoBuf {
    /// The buffer's index in the shard's buffer pool (what a platform registers with the
    /// kernel).
    pub fn index(self) -> usize {
        usize::from(self.index)
    }

    pub(crate) fn to_bits(self) -> u32 {
        (u32::from(self.index) << 16) | u32::from(self.generation)
    }

    pub(crate) fn from_bits(bits: u32) -> IoBuf {
        IoBuf {
            index: (bits >> 16) as u16,
            generation: bits as u16,
        }
    }
}

/// Operations one isolate may have in flight at most (`TypeSpec::io_in_flight_max`).
pub const IO_IN_FLIGHT_MAX: u8 = 16;

/// Names one submitted I/O operation of an isolate (from `Ctx::submit`); its completion
/// carries the same ticket. An index among the isolate's in-flight slots and a sequence
/// number, so a ticket of an op completed earlier never names a later op in the same slot.
/// [`IoTicket::PARKED`] names the op of a parked `Effect::Io`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IoTicket(pub(crate) u16);

impl IoTicket {
    /// The ticket of a parked `Effect::Io` (and of every completion before tickets existed).
    pub const PARKED: IoTicket = IoTicket(0);

    /// A ticket for in-flight slot `index` (below 16) with sequence number `seq` (1 to 4095).
    pub(crate) fn new(index: usize, seq: u16) -> IoTicket {
        IoTicket((seq << 4) | (index as u16 & 0xF))
    }

    /// Whether this names the op of a parked `Effect::Io`.
    #[inline]
    pub fn is_parked(self) -> bool {
        self.0 == 0
    }

    /// The in-flight slot this ticket uses.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0 & 0xF)
    }

    /// The raw value (for a platform's user data or traces).
    pub fn to_bits(self) -> u16 {
        self.0
    }

    /// A ticket from its raw value (as a platform stored it).
    pub fn from_bits(bits: u16) -> IoTicket {
        IoTicket(bits)
    }
}

/// Flags for [`IoOp::Open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpenFlags {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Create if missing.
    pub create: bool,
    /// Truncate to zero length.
    pub truncate: bool,
    /// Writes go to the end.
    pub append: bool,
}

/// One asynchronous I/O operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IoOp {
    /// Accept one connection on a listening socket; completes with the new socket and peer.
    Accept {
        /// The listening socket.
        listener: Fd,
    },
    /// Connect a socket; completes with 0.
    Connect {
        /// The socket.
        socket: Fd,
        /// The peer address.
        #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
        addr: SocketAddr,
    },
    /// Receive up to `len` bytes (at most the buffer size); 0 bytes means end of stream.
    Recv {
        /// The socket.
        socket: Fd,
        /// Bytes wanted at most.
        len: u32,
    },
    /// Send `len` bytes of `buf`; completes with the bytes sent (may be fewer).
    Send {
        /// The socket.
        socket: Fd,
        /// The data.
        buf: IoBuf,
        /// Bytes of `buf` to send.
        len: u32,
    },
    /// Read up to `len` bytes at `offset`.
    Read {
        /// The file.
        file: Fd,
        /// Byte offset.
        offset: u64,
        /// Bytes wanted at most.
        len: u32,
    },
    /// Write `len` bytes of `buf` at `offset`.
    Write {
        /// The file.
        file: Fd,
        /// Byte offset.
        offset: u64,
        /// The data.
        buf: IoBuf,
        /// Bytes of `buf` to write.
        len: u32,
    },
    /// Close a descriptor.
    Close {
        /// The descriptor.
        fd: Fd,
    },
    /// Send a datagram.
    SendTo {
        /// The socket.
        socket: Fd,
        /// The destination.
        #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
        addr: SocketAddr,
        /// The data.
        buf: IoBuf,
        /// Bytes of `buf` to send.
        len: u32,
    },
    /// Receive a datagram; completes with its length and sender.
    RecvFrom {
        /// The socket.
        socket: Fd,
        /// Bytes wanted at most.
        len: u32,
    },
    /// Open a file whose path (UTF-8, no NUL) is the first `path_len` bytes of `path`.
    Open {
        /// Buffer holding the path.
        path: IoBuf,
        /// Path length in bytes.
        path_len: u32,
        /// How to open.
        flags: OpenFlags,
        /// Permission bits for a created file.
        mode: u32,
    },
    /// Copy `len` bytes from `file` at `offset` to the socket `out` in the kernel
    /// (sendfile / splice).
    SendFile {
        /// Destination socket.
        out: Fd,
        /// Source file.
        file: Fd,
        /// Offset in the source.
        offset: u64,
        /// Bytes to copy at most.
        len: u32,
    },
}

/// Which kind of operation a completion answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum IoKind {
    /// [`IoOp::Accept`]
    Accept = 1,
    /// [`IoOp::Connect`]
    Connect,
    /// [`IoOp::Recv`]
    Recv,
    /// [`IoOp::Send`]
    Send,
    /// [`IoOp::Read`]
    Read,
    /// [`IoOp::Write`]
    Write,
    /// [`IoOp::Close`]
    Close,
    /// [`IoOp::SendTo`]
    SendTo,
    /// [`IoOp::RecvFrom`]
    RecvFrom,
    /// [`IoOp::Open`]
    Open,
    /// [`IoOp::SendFile`]
    SendFile,
}

impl IoKind {
    fn from_u8(v: u8) -> Option<IoKind> {
        use IoKind::*;
        Some(match v {
            1 => Accept,
            2 => Connect,
            3 => Recv,
            4 => Send,
            5 => Read,
            6 => Write,
            7 => Close,
            8 => SendTo,
            9 => RecvFrom,
            10 => Open,
            11 => SendFile,
            _ => return None,
        })
    }

    /// Whether a successful completion of this kind delivers bytes in a buffer.
    pub fn fills_buffer(self) -> bool {
        matches!(self, IoKind::Recv | IoKind::Read | IoKind::RecvFrom)
    }

    /// Whether a successful completion yields a new descriptor the isolate now owns.
    pub fn yields_fd(self) -> bool {
        matches!(self, IoKind::Accept | IoKind::Open)
    }
}

impl IoOp {
    /// The kind of this operation.
    pub fn kind(&self) -> IoKind {
        match self {
            IoOp::Accept { .. } => IoKind::Accept,
            IoOp::Connect { .. } => IoKind::Connect,
            IoOp::Recv { .. } => IoKind::Recv,
            IoOp::Send { .. } => IoKind::Send,
            IoOp::Read { .. } => IoKind::Read,
            IoOp::Write { .. } => IoKind::Write,
            IoOp::Close { .. } => IoKind::Close,
            IoOp::SendTo { .. } => IoKind::SendTo,
            IoOp::RecvFrom { .. } => IoKind::RecvFrom,
            IoOp::Open { .. } => IoKind::Open,
            IoOp::SendFile { .. } => IoKind::SendFile,
        }
    }

    /// The buffer whose bytes this op sends (owned by the isolate until submitted).
    pub fn outbound_buffer(&self) -> Option<IoBuf> {
        match *self {
            IoOp::Send { buf, .. } | IoOp::Write { buf, .. } | IoOp::SendTo { buf, .. } => {
                Some(buf)
            }
            IoOp::Open { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Why an I/O operation or a socket-control call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IoError {
    /// The peer refused the connection.
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection was aborted.
    ConnectionAborted,
    /// Writing to a closed connection.
    BrokenPipe,
    /// The socket is not connected.
    NotConnected,
    /// The address is in use.
    AddrInUse,
    /// The address is not available.
    AddrNotAvailable,
    /// No such file or directory.
    NotFound,
    /// Permission denied.
    PermissionDenied,
    /// The file already exists.
    AlreadyExists,
    /// An argument was invalid.
    InvalidInput,
    /// The operation timed out.
    TimedOut,
    /// Too many open descriptors (process or system limit).
    TooManyOpenFiles,
    /// The descriptor is not valid.
    BadDescriptor,
    /// The operation was cancelled (e.g. shutdown).
    Canceled,
    /// The operation is not supported by this platform or descriptor.
    Unsupported,
    /// The shard's I/O buffer pool is exhausted (counted).
    NoBuffers,
    /// The shard's submission queue for this tick is full (counted).
    QueueFull,
    /// A buffer reference is stale or not owned by this isolate.
    BadBuffer,
    /// The isolate already has `io_in_flight_max − 1` submitted operations in flight (or
    /// the ticket named is not in flight).
    InFlightLimit,
    /// Another OS error, by number.
    Os(i32),
}

impl IoError {
    fn to_code(self) -> (u8, i32) {
        use IoError::*;
        match self {
            ConnectionRefused => (1, 0),
            ConnectionReset => (2, 0),
            ConnectionAborted => (3, 0),
            BrokenPipe => (4, 0),
            NotConnected => (5, 0),
            AddrInUse => (6, 0),
            AddrNotAvailable => (7, 0),
            NotFound => (8, 0),
            PermissionDenied => (9, 0),
            AlreadyExists => (10, 0),
            InvalidInput => (11, 0),
            TimedOut => (12, 0),
            TooManyOpenFiles => (13, 0),
            BadDescriptor => (14, 0),
            Canceled => (15, 0),
            Unsupported => (16, 0),
            NoBuffers => (17, 0),
            QueueFull => (18, 0),
            BadBuffer => (19, 0),
            Os(e) => (20, e),
            InFlightLimit => (21, 0),
        }
    }

    fn from_code(code: u8, os: i32) -> IoError {
        use IoError::*;
        match code {
            1 => ConnectionRefused,
            2 => ConnectionReset,
            3 => ConnectionAborted,
            4 => BrokenPipe,
            5 => NotConnected,
            6 => AddrInUse,
            7 => AddrNotAvailable,
            8 => NotFound,
            9 => PermissionDenied,
            10 => AlreadyExists,
            11 => InvalidInput,
            12 => TimedOut,
            13 => TooManyOpenFiles,
            14 => BadDescriptor,
            15 => Canceled,
            16 => Unsupported,
            17 => NoBuffers,
            18 => QueueFull,
            19 => BadBuffer,
            21 => InFlightLimit,
            _ => Os(os),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::NoBuffers => {
                f.write_str("I/O buffer pool exhausted (raise io_buffer_count in the shard spec)")
            }
            IoError::QueueFull => f.write_str(
                "I/O submission queue full this tick (raise io_submissions_per_tick_max)",
            ),
            IoError::BadBuffer => f.write_str("I/O buffer reference is stale or not owned"),
            IoError::InFlightLimit => f.write_str(
                "too many I/O operations in flight for this isolate (raise io_in_flight_max in its TypeSpec), or the ticket is not in flight",
            ),
            IoError::Os(e) => write!(f, "OS error {e}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The answer to one [`IoOp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IoCompletion {
    /// Which operation this answers.
    pub kind: IoKind,
    /// Bytes transferred, or for `Accept`/`Open` the new descriptor number.
    pub result: Result<u32, IoError>,
    /// For `Recv`/`Read`/`RecvFrom`: the buffer holding the bytes (read it with
    /// `Ctx::io_data`).
    pub buf: Option<IoBuf>,
    /// For `Accept`/`RecvFrom`: the peer.
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub peer: Option<SocketAddr>,
    /// The op this completes: the ticket `Ctx::submit` returned, or [`IoTicket::PARKED`].
    /// A platform echoes the submission's ticket.
    pub ticket: IoTicket,
}

impl IoCompletion {
    /// A completion without buffer or peer.
    pub fn new(kind: IoKind, result: Result<u32, IoError>) -> IoCompletion {
        IoCompletion {
            kind,
            result,
            buf: None,
            peer: None,
            ticket: IoTicket::PARKED,
        }
    }

    /// The new descriptor of a successful `Accept` or `Open`.
    pub fn fd(&self) -> Option<Fd> {
        match (self.kind.yields_fd(), self.result) {
            (true, Ok(fd)) => Some(Fd(fd as i32)),
            _ => None,
        }
    }

    /// Size of the encoded form inside a message payload.
    pub(crate) const ENCODED_SIZE: usize = 40;

    pub(crate) fn encode(&self) -> [u8; Self::ENCODED_SIZE] {
        let mut b = [0u8; Self::ENCODED_SIZE];
        b[0] = self.kind as u8;
        match self.result {
            Ok(v) => b[2..6].copy_from_slice(&v.to_le_bytes()),
            Err(e) => {
                let (code, os) = e.to_code();
                b[1] = code;
                b[2..6].copy_from_slice(&os.to_le_bytes());
            }
        }
        if let Some(buf) = self.buf {
            b[6] = 1;
            b[7..11].copy_from_slice(&buf.to_bits().to_le_bytes());
        }
        encode_addr(self.peer, &mut b[11..38]);
        b[38..40].copy_from_slice(&self.ticket.0.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<IoCompletion> {
        if b.len() < Self::ENCODED_SIZE {
            return None;
        }
        let kind = IoKind::from_u8(b[0])?;
        let word = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let result = if b[1] == 0 {
            Ok(word)
        } else {
            Err(IoError::from_code(b[1], word as i32))
        };
        let buf =
            (b[6] == 1).then(|| IoBuf::from_bits(u32::from_le_bytes([b[7], b[8], b[9], b[10]])));
        Some(IoCompletion {
            kind,
            result,
            buf,
            peer: decode_addr(&b[11..]),
            ticket: IoTicket(u16::from_le_bytes([b[38], b[39]])),
        })
    }
}

/// Encodes an optional socket address into 29 bytes.
fn encode_addr(addr: Option<SocketAddr>, out: &mut [u8]) {
    match addr {
        None => out[0] = 0,
        Some(SocketAddr::V4(a)) => {
            out[0] = 4;
            out[1..3].copy_from_slice(&a.port().to_le_bytes());
            out[3..7].copy_from_slice(&a.ip().octets());
        }
        Some(SocketAddr::V6(a)) => {
            out[0] = 6;
            out[1..3].copy_from_slice(&a.port().to_le_bytes());
            out[3..19].copy_from_slice(&a.ip().octets());
            out[19..23].copy_from_slice(&a.flowinfo().to_le_bytes());
            out[23..27].copy_from_slice(&a.scope_id().to_le_bytes());
        }
    }
}

fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_le_bytes([b[1], b[2]]);
    match b[0] {
        4 => Some(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::new(b[3], b[4], b[5], b[6]),
            port,
        ))),
        6 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[3..19]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                u32::from_le_bytes([b[19], b[20], b[21], b[22]]),
                u32::from_le_bytes([b[23], b[24], b[25], b[26]]),
            )))
        }
        _ => None,
    }
}

/// Address family for [`Control::Socket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Domain {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Domain {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Domain {
        match addr.ip() {
            IpAddr::V4(_) => Domain::Ipv4,
            IpAddr::V6(_) => Domain::Ipv6,
        }
    }
}

/// Socket type for [`Control::Socket`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SocketKind {
    /// TCP.
    Stream,
    /// UDP.
    Datagram,
}

/// A socket option for [`Control::SetOption`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SocketOption {
    /// `SO_REUSEADDR`
    ReuseAddr(bool),
    /// `SO_REUSEPORT`
    ReusePort(bool),
    /// `TCP_NODELAY`
    NoDelay(bool),
    /// `SO_KEEPALIVE`
    KeepAlive(bool),
    /// `SO_RCVBUF`
    RecvBufferSize(u32),
    /// `SO_SNDBUF`
    SendBufferSize(u32),
}

/// Which half of a connection [`Control::Shutdown`] closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShutdownHow {
    /// No more reads.
    Read,
    /// No more writes (sends FIN).
    Write,
    /// Both.
    Both,
}

/// A synchronous socket-control call, executed at once by the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Control {
    /// Create a socket; returns its descriptor.
    Socket {
        /// Address family.
        domain: Domain,
        /// Stream or datagram.
        kind: SocketKind,
    },
    /// Bind a socket to an address.
    Bind {
        /// The socket.
        socket: Fd,
        /// The address.
        #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
        addr: SocketAddr,
    },
    /// Start listening.
    Listen {
        /// The socket.
        socket: Fd,
        /// Accept backlog.
        backlog: u32,
    },
    /// Set an option.
    SetOption {
        /// The socket.
        socket: Fd,
        /// The option.
        option: SocketOption,
    },
    /// Shut down one or both directions.
    Shutdown {
        /// The socket.
        socket: Fd,
        /// Which direction.
        how: ShutdownHow,
    },
    /// The local address a socket is bound to (returned through `Ctx::local_addr`).
    LocalAddr {
        /// The socket.
        socket: Fd,
    },
}

/// What a [`Control`] call returns on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ControlOutcome {
    /// Nothing to return.
    Done,
    /// A new descriptor.
    Fd(Fd),
    /// An address.
    Addr(#[cfg_attr(feature = "defmt", defmt(Debug2Format))] SocketAddr),
}

/// One I/O operation handed to the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submission {
    /// The isolate that asked for it (`Handle::NONE` for reclaim work such as closing a
    /// descriptor whose owner is gone). Use it as the operation's user data.
    pub owner: Handle,
    /// The operation.
    pub op: IoOp,
    /// For operations that receive data, the buffer to fill (the core chose it).
    pub buf: Option<IoBuf>,
    /// The op's ticket ([`IoTicket::PARKED`] for a parked `Effect::Io`): its completion
    /// must carry it back.
    pub ticket: IoTicket,
}

/// The shard's reactor-owned buffers, as seen by the platform.
pub struct IoBuffers<'x> {
    pub(crate) bytes: &'x mut [u8],
    pub(crate) size: usize,
}

impl<'x> IoBuffers<'x> {
    /// A view of `bytes` as buffers of `size` bytes each (the core builds the real one; this
    /// is for a platform's own tests of its driver).
    pub fn new(bytes: &'x mut [u8], size: usize) -> IoBuffers<'x> {
        IoBuffers { bytes, size }
    }

    /// The bytes of one buffer.
    pub fn get(&self, buf: IoBuf) -> Option<&[u8]> {
        let start = buf.index().checked_mul(self.size)?;
        self.bytes.get(start..start + self.size)
    }

    /// The bytes of one buffer, writable.
    pub fn get_mut(&mut self, buf: IoBuf) -> Option<&mut [u8]> {
        let start = buf.index().checked_mul(self.size)?;
        self.bytes.get_mut(start..start + self.size)
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.size
    }

    /// All buffers as one contiguous region (for registering with the kernel). The region
    /// lives as long as the shard and does not move.
    pub fn region(&mut self) -> &mut [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_completion_roundtrips_through_bytes() {
        let cases = [
            IoCompletion {
                kind: IoKind::Accept,
                result: Ok(17),
                buf: None,
                peer: Some("127.0.0.1:4040".parse().unwrap()),
                ticket: IoTicket::PARKED,
            },
            IoCompletion {
                kind: IoKind::RecvFrom,
                result: Ok(1200),
                buf: Some(IoBuf {
                    index: 513,
                    generation: 65535,
                }),
                peer: Some("[fe80::1%3]:53".parse().unwrap()),
                ticket: IoTicket::new(15, 4095),
            },
            IoCompletion::new(IoKind::Connect, Err(IoError::ConnectionRefused)),
            IoCompletion::new(IoKind::Write, Err(IoError::Os(-28))),
            IoCompletion::new(IoKind::Recv, Err(IoError::InFlightLimit)),
        ];
        for c in cases {
            assert_eq!(IoCompletion::decode(&c.encode()), Some(c));
        }
        assert_eq!(IoCompletion::decode(&[0u8; 40]), None, "kind 0 is invalid");
        assert_eq!(
            IoCompletion::decode(&[1u8; 10]),
            None,
            "short input is rejected"
        );
    }

    #[test]
    fn io_completion_fd_only_for_fd_yielding_kinds() {
        assert_eq!(IoCompletion::new(IoKind::Accept, Ok(9)).fd(), Some(Fd(9)));
        assert_eq!(IoCompletion::new(IoKind::Recv, Ok(9)).fd(), None);
        assert_eq!(
            IoCompletion::new(IoKind::Open, Err(IoError::NotFound)).fd(),
            None
        );
    }
}
