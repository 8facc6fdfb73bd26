//! Executing the core's I/O vocabulary against the simulated kernel, for one shard.
//!
//! An accepted submission becomes a pending operation. At every step of its shard (phase 2,
//! `IoDriver::complete`), each pending operation whose time has come is tried in submission
//! order (shuffled under the `io-reorder` fault): it either completes now — moving real bytes
//! between the core's buffers and the kernel — or stays pending (a receive with nothing to
//! read, a send into a full receive buffer, an accept with an empty queue). Faults are
//! decided here: `io-delay` when the op is submitted, `io-error` once when the op first
//! becomes due, `io-short` on each transfer.

use crate::config::FaultKind;
use crate::kernel::{DATAGRAM_QUEUE_MAX, FdEntry, RECV_BUFFER_SIZE, SockId, TcpState};
use crate::trace::Ev;
use crate::world::{Node, World};
use core::net::SocketAddr;
use tina_core::Handle;
use tina_core::io::{
    Control, ControlOutcome, Fd, IoBuf, IoCompletion, IoError, IoKind, IoOp, IoTicket, OpenFlags,
    ShutdownHow, SocketKind, SocketOption,
};
use tina_core::platform::{CompletionSink, IoBuffers, Submission};

/// Extra delay of a TCP segment lost by the `net-drop` fault (its retransmission).
const TCP_RETRANSMIT_TICKS: u64 = 20;

/// `EIO`, the error injected into file operations.
const EIO: i32 = 5;

/// An operation the platform accepted and has not completed yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingOp {
    pub(crate) owner: Handle,
    pub(crate) op: IoOp,
    pub(crate) buf: Option<IoBuf>,
    /// The core's ticket for the op, echoed in its completion.
    pub(crate) ticket: IoTicket,
    /// Whether the owner asked to cancel it (`IoDriver::cancel`).
    pub(crate) cancel: bool,
    pub(crate) not_before: u64,
    /// Whether the `io-error` fault was already decided for this op.
    pub(crate) error_decided: bool,
    /// Whether the owner was live just before the step that completes it.
    pub(crate) owner_live: bool,
    /// The serial of the op's descriptor at submission: like io_uring, an op acts on the
    /// descriptor as it was when submitted, never on a later reuse of its number.
    pub(crate) fd_serial: Option<u64>,
}

/// The descriptor an op acts on.
fn op_fd(op: &IoOp) -> Option<Fd> {
    Some(match *op {
        IoOp::Accept { listener } => listener,
        IoOp::Connect { socket, .. }
        | IoOp::Recv { socket, .. }
        | IoOp::Send { socket, .. }
        | IoOp::SendTo { socket, .. }
        | IoOp::RecvFrom { socket, .. } => socket,
        IoOp::Read { file, .. } | IoOp::Write { file, .. } => file,
        IoOp::Close { fd } => fd,
        IoOp::SendFile { out, .. } => out,
        IoOp::Open { .. } => return None,
    })
}

fn op_words(op: &IoOp) -> [u64; 3] {
    match *op {
        IoOp::Accept { listener } => [1, listener.0 as u64, 0],
        IoOp::Connect { socket, addr } => [2, socket.0 as u64, addr_word(addr)],
        IoOp::Recv { socket, len } => [3, socket.0 as u64, u64::from(len)],
        IoOp::Send { socket, len, .. } => [4, socket.0 as u64, u64::from(len)],
        IoOp::Read { file, offset, len } => [5, file.0 as u64, offset ^ (u64::from(len) << 40)],
        IoOp::Write {
            file, offset, len, ..
        } => [6, file.0 as u64, offset ^ (u64::from(len) << 40)],
        IoOp::Close { fd } => [7, fd.0 as u64, 0],
        IoOp::SendTo {
            socket, addr, len, ..
        } => [8, socket.0 as u64, addr_word(addr) ^ u64::from(len)],
        IoOp::RecvFrom { socket, len } => [9, socket.0 as u64, u64::from(len)],
        IoOp::Open { path_len, mode, .. } => [10, u64::from(path_len), u64::from(mode)],
        IoOp::SendFile {
            out,
            file,
            offset,
            len,
        } => [
            11,
            out.0 as u64 ^ ((file.0 as u64) << 32),
            offset ^ (u64::from(len) << 40),
        ],
    }
}

fn addr_word(a: SocketAddr) -> u64 {
    let ip = match a.ip() {
        core::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
        core::net::IpAddr::V6(v6) => {
            let b = v6.octets();
            crate::hash::digest64(&b)
        }
    };
    (ip << 16) ^ u64::from(a.port())
}

fn result_word(r: Result<u32, IoError>) -> u64 {
    match r {
        Ok(v) => u64::from(v),
        Err(e) => (1 << 40) | crate::hash::digest64(format!("{e:?}").as_bytes()) & 0xFF_FFFF,
    }
}

/// The completion of `p` with `result` (no peer address).
fn completion(p: &PendingOp, result: Result<u32, IoError>) -> IoCompletion {
    IoCompletion {
        kind: p.op.kind(),
        result,
        buf: p.buf,
        peer: None,
        ticket: p.ticket,
    }
}

// The core names only buffers of its own pool (an outbound one is checked when the effect
// is submitted, an inbound one is allocated then) and gives every op that fills a buffer
// one (`IoKind::fills_buffer`). A missing buffer is a broken invariant: debug builds stop on
// it; release builds leave the op pending.

/// The bytes of buffer `buf`.
fn buffer<'b>(bufs: &'b IoBuffers<'_>, buf: IoBuf) -> Option<&'b [u8]> {
    let bytes = bufs.get(buf);
    debug_assert!(
        bytes.is_some(),
        "the core names a buffer outside its pool: {buf:?}"
    );
    bytes
}

/// The bytes of buffer `buf`, writable.
fn buffer_mut<'b>(bufs: &'b mut IoBuffers<'_>, buf: IoBuf) -> Option<&'b mut [u8]> {
    let bytes = bufs.get_mut(buf);
    debug_assert!(
        bytes.is_some(),
        "the core names a buffer outside its pool: {buf:?}"
    );
    bytes
}

/// The buffer the core attached to `p`, an op that fills one.
fn inbound_buffer(p: &PendingOp) -> Option<IoBuf> {
    debug_assert!(p.buf.is_some(), "the core attaches no buffer to {:?}", p.op);
    p.buf
}

/// A copy of the first `len` bytes of buffer `buf`.
fn buffer_bytes(sink: &mut dyn CompletionSink, buf: IoBuf, len: u32) -> Option<Vec<u8>> {
    buffer(&sink.buffers(), buf).map(|d| d[..(len as usize).min(d.len())].to_vec())
}

impl World {
    pub(crate) fn io_submit(
        &mut self,
        shard: u8,
        batch: &[Submission],
        buffers: &IoBuffers<'_>,
    ) -> usize {
        for s in batch {
            let out_digest = match (s.op.outbound_buffer(), s.buf) {
                (Some(_), Some(b)) => {
                    let len = match s.op {
                        IoOp::Send { len, .. }
                        | IoOp::Write { len, .. }
                        | IoOp::SendTo { len, .. } => len,
                        IoOp::Open { path_len, .. } => path_len,
                        _ => 0,
                    } as usize;
                    buffer(buffers, b).map_or(0, |d| crate::hash::digest64(&d[..len.min(d.len())]))
                }
                _ => 0,
            };
            let mut not_before = self.now;
            let rng = &mut self.kernel.io_rng[usize::from(shard)];
            if rng.chance(self.faults.io_delay) {
                let d = rng.range(1, u64::from(self.faults.io_delay_ticks_max.max(1)));
                not_before += d;
                self.inject(FaultKind::IoDelay, &[u64::from(shard), d], || {
                    format!("s{shard} +{d} ticks")
                });
            }
            let w = op_words(&s.op);
            self.trace.ev(
                Ev::IoSubmit,
                &[
                    u64::from(shard),
                    s.owner.to_bits(),
                    w[0],
                    w[1],
                    w[2],
                    out_digest,
                ],
                || format!("s{shard} {} {:?} data#{out_digest:016x}", s.owner, s.op),
            );
            let fd_serial = op_fd(&s.op).and_then(|fd| self.kernel.fd_serial(shard, fd));
            self.kernel.pending[usize::from(shard)].push(PendingOp {
                owner: s.owner,
                op: s.op,
                buf: s.buf,
                ticket: s.ticket,
                cancel: false,
                not_before,
                error_decided: false,
                owner_live: true,
                fd_serial,
            });
        }
        batch.len()
    }

    pub(crate) fn io_complete(&mut self, shard: u8, sink: &mut dyn CompletionSink) {
        let sh = usize::from(shard);
        let mut pending = core::mem::take(&mut self.kernel.pending[sh]);
        let cancel = core::mem::take(&mut self.kernel.cancel[sh]);
        let mut order: Vec<usize> = (0..pending.len())
            .filter(|&i| cancel || pending[i].cancel || pending[i].not_before <= self.now)
            .collect();
        if order.len() > 1 && self.kernel.io_rng[sh].chance(self.faults.io_reorder) {
            self.kernel.io_rng[sh].shuffle(&mut order);
            let n = order.len() as u64;
            self.inject(FaultKind::IoReorder, &[u64::from(shard), n], || {
                format!("s{shard} {n} ops")
            });
        }
        let mut done = vec![false; pending.len()];
        for i in order {
            let p = &mut pending[i];
            let completion = if cancel || (p.cancel && p.not_before > self.now) {
                Some(self.cancel_op(shard, p))
            } else if p.cancel {
                // The cancel races the op: what can finish now finishes normally.
                self.execute(shard, p, sink)
                    .or_else(|| Some(self.cancel_op(shard, p)))
            } else {
                self.execute(shard, p, sink)
            };
            let Some(c) = completion else { continue };
            done[i] = true;
            let digest = match (c.kind.fills_buffer(), c.result, c.buf) {
                (true, Ok(n), Some(b)) => buffer(&sink.buffers(), b).map_or(0, |d| {
                    crate::hash::digest64(&d[..(n as usize).min(d.len())])
                }),
                _ => 0,
            };
            let owner = p.owner;
            let tally = &mut self.tallies[sh];
            if !owner.is_none() {
                if p.owner_live {
                    tally.to_live += 1;
                } else {
                    tally.to_dead += 1;
                }
            }
            self.trace.ev(
                Ev::IoDone,
                &[
                    u64::from(shard),
                    owner.to_bits(),
                    c.kind as u64,
                    result_word(c.result),
                    digest,
                ],
                || {
                    format!(
                        "s{shard} {owner} {:?} {:?} data#{digest:016x}",
                        c.kind, c.result
                    )
                },
            );
            sink.complete(owner, c);
        }
        let mut k = 0;
        pending.retain(|_| {
            k += 1;
            !done[k - 1]
        });
        // Nothing is submitted during `complete`, so the list is ours to put back.
        self.kernel.pending[sh] = pending;
    }

    /// Marks `owner`'s submitted op `ticket` cancelled if it is still pending: at the next
    /// completion pass it finishes normally if it can, else completes with `Canceled`.
    pub(crate) fn io_cancel(&mut self, shard: u8, owner: Handle, ticket: IoTicket) {
        if ticket.is_parked() {
            return;
        }
        if let Some(p) = self.kernel.pending[usize::from(shard)]
            .iter_mut()
            .find(|p| p.owner == owner && p.ticket == ticket)
        {
            p.cancel = true;
        }
    }

    fn cancel_op(&mut self, shard: u8, p: &PendingOp) -> IoCompletion {
        if let IoOp::Close { fd } = p.op {
            let _ = self.close_fd(shard, fd);
            return IoCompletion {
                kind: IoKind::Close,
                result: Ok(0),
                buf: p.buf,
                peer: None,
                ticket: p.ticket,
            };
        }
        IoCompletion {
            kind: p.op.kind(),
            result: Err(IoError::Canceled),
            buf: p.buf,
            peer: None,
            ticket: p.ticket,
        }
    }

    /// Decides the `io-error` fault once per op; returns the error to complete with.
    fn injected_error(&mut self, shard: u8, p: &mut PendingOp) -> Option<IoError> {
        if p.error_decided {
            return None;
        }
        p.error_decided = true;
        let applies = !matches!(
            p.op,
            IoOp::Close { .. } | IoOp::SendTo { .. } | IoOp::RecvFrom { .. }
        );
        if !applies || !self.kernel.io_rng[usize::from(shard)].chance(self.faults.io_error) {
            return None;
        }
        let e = match p.op {
            IoOp::Accept { .. } => IoError::TooManyOpenFiles,
            IoOp::Connect { .. } => IoError::TimedOut,
            IoOp::Recv { socket, .. }
            | IoOp::Send { socket, .. }
            | IoOp::SendFile { out: socket, .. } => {
                if let Ok(id) = self.kernel.fd_socket(shard, socket) {
                    self.kernel.reset_pair(id);
                }
                IoError::ConnectionReset
            }
            _ => IoError::Os(EIO),
        };
        let w = op_words(&p.op);
        self.inject(FaultKind::IoError, &[u64::from(shard), w[0], w[1]], || {
            format!("s{shard} {:?} -> {e:?}", p.op)
        });
        Some(e)
    }

    /// Fewer bytes than `n` under the `io-short` fault.
    fn maybe_short(&mut self, shard: u8, n: usize) -> usize {
        if n > 1 && self.kernel.io_rng[usize::from(shard)].chance(self.faults.io_short) {
            let m = self.kernel.io_rng[usize::from(shard)].range(1, n as u64 - 1) as usize;
            self.inject(
                FaultKind::IoShort,
                &[u64::from(shard), n as u64, m as u64],
                || format!("s{shard} {m} of {n} bytes"),
            );
            return m;
        }
        n
    }

    /// Tries `p` once: `Some` with its completion, or `None` while it must wait. An
    /// injected `io-error` and a descriptor closed since submission complete it first; each
    /// operation then runs against the kernel in its own step below.
    fn execute(
        &mut self,
        shard: u8,
        p: &mut PendingOp,
        sink: &mut dyn CompletionSink,
    ) -> Option<IoCompletion> {
        if let Some(e) = self.injected_error(shard, p) {
            return Some(completion(p, Err(e)));
        }
        if let Some(fd) = op_fd(&p.op)
            && self.kernel.fd_serial(shard, fd) != p.fd_serial
        {
            // The descriptor was closed after submission (its number may be reused now).
            return Some(completion(p, Err(IoError::BadDescriptor)));
        }
        let p = &*p;
        match p.op {
            IoOp::Close { fd } => Some(completion(p, self.close_fd(shard, fd))),
            IoOp::Accept { listener } => self.exec_accept(shard, p, listener),
            IoOp::Connect { socket, addr } => self.exec_connect(shard, p, socket, addr),
            IoOp::Recv { socket, len } => self.exec_recv(shard, p, socket, len, sink),
            IoOp::Send { socket, buf, len } => {
                let data = buffer_bytes(sink, buf, len)?;
                self.stream_send(shard, socket, &data)
                    .map(|r| completion(p, r.map(|n| n as u32)))
            }
            IoOp::SendFile {
                out,
                file,
                offset,
                len,
            } => self.exec_send_file(shard, p, out, file, offset, len),
            IoOp::Read { file, offset, len } => self.exec_read(shard, p, file, offset, len, sink),
            IoOp::Write {
                file,
                offset,
                buf,
                len,
            } => {
                let data = buffer_bytes(sink, buf, len)?;
                let n = self.maybe_short(shard, data.len());
                Some(completion(
                    p,
                    self.file_write(shard, file, offset, &data[..n])
                        .map(|n| n as u32),
                ))
            }
            IoOp::Open {
                path,
                path_len,
                flags,
                ..
            } => {
                let bytes = buffer_bytes(sink, path, path_len)?;
                Some(completion(p, self.exec_open(shard, bytes, flags)))
            }
            IoOp::SendTo {
                socket,
                addr,
                buf,
                len,
            } => {
                let id = match self.kernel.fd_socket(shard, socket) {
                    Ok(id) => id,
                    Err(e) => return Some(completion(p, Err(e))),
                };
                let data = buffer_bytes(sink, buf, len)?;
                self.udp_send(id, addr, data);
                Some(completion(p, Ok(len)))
            }
            IoOp::RecvFrom { socket, len } => self.exec_recv_from(shard, p, socket, len, sink),
        }
    }

    /// Accept: the next connection of the listener's queue gets a descriptor (wait while the
    /// queue is empty; a full descriptor table resets the connection).
    fn exec_accept(&mut self, shard: u8, p: &PendingOp, listener: Fd) -> Option<IoCompletion> {
        let id = match self.kernel.fd_socket(shard, listener) {
            Ok(id) => id,
            Err(e) => return Some(completion(p, Err(e))),
        };
        let server = match &mut self.kernel.sock_mut(id).state {
            TcpState::Listening { queue, .. } => queue.pop_front()?,
            TcpState::Closed => return Some(completion(p, Err(IoError::BadDescriptor))),
            _ => return Some(completion(p, Err(IoError::InvalidInput))),
        };
        match self.kernel.fd_alloc(shard, FdEntry::Socket(server)) {
            Ok(fd) => {
                let peer = self.kernel.sock(server).remote;
                Some(IoCompletion {
                    peer,
                    ..completion(p, Ok(fd.0 as u32))
                })
            }
            Err(e) => {
                self.kernel.reset_pair(server);
                self.kernel.set_closed(server);
                Some(completion(p, Err(e)))
            }
        }
    }

    /// Connect: starts the handshake on first try, then completes once it is established or
    /// has failed (`ready_at` models the round trip).
    fn exec_connect(
        &mut self,
        shard: u8,
        p: &PendingOp,
        socket: Fd,
        addr: SocketAddr,
    ) -> Option<IoCompletion> {
        let now = self.now;
        let id = match self.kernel.fd_socket(shard, socket) {
            Ok(id) => id,
            Err(e) => return Some(completion(p, Err(e))),
        };
        if matches!(self.kernel.sock(id).state, TcpState::Idle) {
            self.tcp_connect(id, addr);
        }
        match self.kernel.sock(id).state {
            TcpState::Established { ready_at, .. } if ready_at <= now => Some(completion(p, Ok(0))),
            TcpState::Failed { error, ready_at } if ready_at <= now => {
                self.kernel.sock_mut(id).state = TcpState::Idle;
                Some(completion(p, Err(error)))
            }
            TcpState::Established { .. } | TcpState::Failed { .. } => None,
            _ => Some(completion(p, Err(IoError::InvalidInput))),
        }
    }

    /// Recv: moves the readable bytes (at most `len`, one buffer, maybe short) into the
    /// op's buffer; waits while nothing is readable.
    fn exec_recv(
        &mut self,
        shard: u8,
        p: &PendingOp,
        socket: Fd,
        len: u32,
        sink: &mut dyn CompletionSink,
    ) -> Option<IoCompletion> {
        let now = self.now;
        let id = match self.kernel.fd_socket(shard, socket) {
            Ok(id) => id,
            Err(e) => return Some(completion(p, Err(e))),
        };
        let buf = inbound_buffer(p)?;
        let n = match self.stream_readable(id, now)? {
            Err(e) => return Some(completion(p, Err(e))),
            Ok(0) => return Some(completion(p, Ok(0))),
            Ok(n) => n,
        };
        let size = sink.buffers().buffer_size();
        let want = n.min(len as usize).min(size);
        let want = self.maybe_short(shard, want);
        let mut bufs = sink.buffers();
        let dst = buffer_mut(&mut bufs, buf)?;
        let got = self.kernel.take_bytes(id, now, &mut dst[..want]);
        Some(completion(p, Ok(got as u32)))
    }

    /// SendFile: reads from the file and sends what the peer's receive buffer takes.
    fn exec_send_file(
        &mut self,
        shard: u8,
        p: &PendingOp,
        out: Fd,
        file: Fd,
        offset: u64,
        len: u32,
    ) -> Option<IoCompletion> {
        let data = match self.file_read(shard, file, offset, len as usize) {
            Ok(d) => d,
            Err(e) => return Some(completion(p, Err(e))),
        };
        if data.is_empty() {
            return Some(completion(p, Ok(0)));
        }
        self.stream_send(shard, out, &data)
            .map(|r| completion(p, r.map(|n| n as u32)))
    }

    /// Read: copies file bytes (at most one buffer, maybe short) into the op's buffer.
    fn exec_read(
        &mut self,
        shard: u8,
        p: &PendingOp,
        file: Fd,
        offset: u64,
        len: u32,
        sink: &mut dyn CompletionSink,
    ) -> Option<IoCompletion> {
        let buf = inbound_buffer(p)?;
        let size = sink.buffers().buffer_size();
        let data = match self.file_read(shard, file, offset, (len as usize).min(size)) {
            Ok(d) => d,
            Err(e) => return Some(completion(p, Err(e))),
        };
        let n = self.maybe_short(shard, data.len());
        let mut bufs = sink.buffers();
        buffer_mut(&mut bufs, buf)?[..n].copy_from_slice(&data[..n]);
        Some(completion(p, Ok(n as u32)))
    }

    /// Open: looks the UTF-8 `path` up on the shard's disk (creating or truncating it as
    /// `flags` say) and allocates a descriptor for it.
    fn exec_open(&mut self, shard: u8, path: Vec<u8>, flags: OpenFlags) -> Result<u32, IoError> {
        let Ok(path) = String::from_utf8(path) else {
            return Err(IoError::InvalidInput);
        };
        let disk = &mut self.kernel.disks[usize::from(shard)];
        match disk.get_mut(&path) {
            None if !flags.create => return Err(IoError::NotFound),
            None => {
                disk.insert(path.clone(), Vec::new());
            }
            Some(data) if flags.truncate => data.clear(),
            Some(_) => {}
        }
        let entry = FdEntry::File {
            path,
            read: flags.read || !flags.write,
            write: flags.write || flags.append,
            append: flags.append,
        };
        self.kernel.fd_alloc(shard, entry).map(|fd| fd.0 as u32)
    }

    /// RecvFrom: the next due datagram (cut to `len` and the buffer) with its sender; waits
    /// while none is due.
    fn exec_recv_from(
        &mut self,
        shard: u8,
        p: &PendingOp,
        socket: Fd,
        len: u32,
        sink: &mut dyn CompletionSink,
    ) -> Option<IoCompletion> {
        let now = self.now;
        let id = match self.kernel.fd_socket(shard, socket) {
            Ok(id) => id,
            Err(e) => return Some(completion(p, Err(e))),
        };
        let buf = inbound_buffer(p)?;
        let s = self.kernel.sock_mut(id);
        let d = s.dgrams.pop_front_if(|d| d.ready_at <= now)?;
        let mut bufs = sink.buffers();
        let dst = buffer_mut(&mut bufs, buf)?;
        let n = d.bytes.len().min(len as usize).min(dst.len());
        dst[..n].copy_from_slice(&d.bytes[..n]);
        Some(IoCompletion {
            peer: Some(d.from),
            ..completion(p, Ok(n as u32))
        })
    }

    /// For a receive on `id`: `None` to wait, `Some(Ok(0))` at EOF, `Some(Ok(n))` when `n`
    /// bytes are readable, or an error.
    fn stream_readable(&mut self, id: SockId, now: u64) -> Option<Result<usize, IoError>> {
        let s = self.kernel.sock(id);
        if s.udp {
            return Some(Err(IoError::InvalidInput));
        }
        if s.reset {
            return Some(Err(IoError::ConnectionReset));
        }
        let peer = match s.state {
            TcpState::Established { peer, ready_at } if ready_at <= now => peer,
            TcpState::Established { .. } => return None,
            TcpState::Closed => return Some(Err(IoError::BadDescriptor)),
            _ => return Some(Err(IoError::NotConnected)),
        };
        let cut = self.partitioned(s.owner, self.kernel.sock(peer).owner);
        let n = self.kernel.readable(id, now, cut);
        if n > 0 {
            Some(Ok(n))
        } else if self.kernel.at_eof(id, now, cut) || s.read_shut {
            Some(Ok(0))
        } else {
            None
        }
    }

    /// Writes as much of `data` as the peer's receive buffer takes (`None`: nothing fits
    /// yet, wait).
    pub(crate) fn stream_send_id(
        &mut self,
        id: SockId,
        data: &[u8],
        shard: Option<u8>,
    ) -> Option<Result<usize, IoError>> {
        let now = self.now;
        let s = self.kernel.sock(id);
        if s.udp {
            return Some(Err(IoError::InvalidInput));
        }
        if s.reset {
            return Some(Err(IoError::ConnectionReset));
        }
        if s.write_shut {
            return Some(Err(IoError::BrokenPipe));
        }
        let peer = match s.state {
            TcpState::Established { peer, ready_at } if ready_at <= now => peer,
            TcpState::Established { .. } => return None,
            TcpState::Closed => return Some(Err(IoError::BadDescriptor)),
            _ => return Some(Err(IoError::NotConnected)),
        };
        if matches!(self.kernel.sock(peer).state, TcpState::Closed) {
            self.kernel.reset_pair(id);
            self.kernel.sock_mut(id).reset = true;
            return Some(Err(IoError::ConnectionReset));
        }
        let space = RECV_BUFFER_SIZE.saturating_sub(self.kernel.sock(peer).rx_len);
        if data.is_empty() {
            return Some(Ok(0));
        }
        if space == 0 {
            return None;
        }
        let mut n = data.len().min(space);
        if let Some(shard) = shard {
            n = self.maybe_short(shard, n);
        }
        let mut at = now + self.transmission_delay();
        if self.rng_drop.chance(self.faults.net_drop) {
            // TCP is reliable: a lost segment costs a retransmission timeout.
            at += TCP_RETRANSMIT_TICKS;
            self.inject(FaultKind::NetDrop, &[id.0 as u64, n as u64], || {
                format!("segment of {n} bytes lost, retransmitted")
            });
        }
        self.kernel.push_bytes(peer, at, &data[..n]);
        Some(Ok(n))
    }

    fn stream_send(
        &mut self,
        shard: u8,
        socket: Fd,
        data: &[u8],
    ) -> Option<Result<usize, IoError>> {
        match self.kernel.fd_socket(shard, socket) {
            Ok(id) => self.stream_send_id(id, data, Some(shard)),
            Err(e) => Some(Err(e)),
        }
    }

    pub(crate) fn udp_send(&mut self, from: SockId, addr: SocketAddr, data: Vec<u8>) {
        let owner = self.kernel.sock(from).owner;
        if self.kernel.sock(from).local.is_none() {
            let port = self.kernel.ephemeral_port();
            let s = self.kernel.sock_mut(from);
            s.local = Some(SocketAddr::new(owner.ip(), port));
            s.bound = true;
        }
        let Some(src) = self.kernel.sock(from).local else {
            return;
        };
        let Some(dst) = self.kernel.udp_bound(addr) else {
            return;
        };
        if self.partitioned(owner, self.kernel.sock(dst).owner) {
            return;
        }
        if self.rng_drop.chance(self.faults.net_drop) {
            self.inject(FaultKind::NetDrop, &[addr_word(addr)], || {
                format!("datagram to {addr}")
            });
            return;
        }
        let at = self.now + self.transmission_delay();
        let d = self.kernel.sock_mut(dst);
        if d.dgrams.len() < DATAGRAM_QUEUE_MAX {
            d.dgrams.push_back(crate::kernel::Datagram {
                ready_at: at,
                from: src,
                bytes: data,
            });
            if d.owner == Node::Outside {
                self.kernel.client_events += 1;
            }
        }
    }

    fn file_read(
        &mut self,
        shard: u8,
        file: Fd,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, IoError> {
        let path = match self.kernel.fd(shard, file) {
            Some(FdEntry::File {
                path, read: true, ..
            }) => path.clone(),
            Some(FdEntry::File { .. }) => return Err(IoError::PermissionDenied),
            Some(FdEntry::Socket(_)) => return Err(IoError::InvalidInput),
            None => return Err(IoError::BadDescriptor),
        };
        let data = self.kernel.disks[usize::from(shard)]
            .get(&path)
            .map_or(&[][..], Vec::as_slice);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn file_write(
        &mut self,
        shard: u8,
        file: Fd,
        offset: u64,
        data: &[u8],
    ) -> Result<usize, IoError> {
        let (path, append) = match self.kernel.fd(shard, file) {
            Some(FdEntry::File {
                path,
                write: true,
                append,
                ..
            }) => (path.clone(), *append),
            Some(FdEntry::File { .. }) => return Err(IoError::PermissionDenied),
            Some(FdEntry::Socket(_)) => return Err(IoError::InvalidInput),
            None => return Err(IoError::BadDescriptor),
        };
        let content = self.kernel.disks[usize::from(shard)]
            .entry(path)
            .or_default();
        let start = if append {
            content.len()
        } else {
            usize::try_from(offset).map_err(|_| IoError::InvalidInput)?
        };
        if start.saturating_add(data.len()) > 1 << 30 {
            return Err(IoError::InvalidInput);
        }
        if content.len() < start + data.len() {
            content.resize(start + data.len(), 0);
        }
        content[start..start + data.len()].copy_from_slice(data);
        Ok(data.len())
    }

    pub(crate) fn close_fd(&mut self, shard: u8, fd: Fd) -> Result<u32, IoError> {
        match self.kernel.fd_take(shard, fd) {
            Some(FdEntry::Socket(id)) => {
                let at = self.now + self.latency;
                self.kernel.close_socket(id, at);
                Ok(0)
            }
            Some(FdEntry::File { .. }) => Ok(0),
            None => Err(IoError::BadDescriptor),
        }
    }

    /// Connects socket `from` to `addr` (a listener somewhere); the outcome is visible after
    /// one round trip.
    pub(crate) fn tcp_connect(&mut self, from: SockId, addr: SocketAddr) {
        let node = self.kernel.sock(from).owner;
        if self.kernel.sock(from).local.is_none() {
            let port = self.kernel.ephemeral_port();
            self.kernel.sock_mut(from).local = Some(SocketAddr::new(node.ip(), port));
        }
        let all = self.kernel.listeners_for(addr);
        let reachable: Vec<SockId> = all
            .iter()
            .copied()
            .filter(|&l| !self.partitioned(node, self.kernel.sock(l).owner))
            .collect();
        let open: Vec<SockId> = reachable
            .iter()
            .copied()
            .filter(|&l| match &self.kernel.sock(l).state {
                TcpState::Listening { backlog, queue } => queue.len() < *backlog,
                _ => false,
            })
            .collect();
        let rtt = self.transmission_delay() * 2;
        let ready_at = self.now + rtt.max(1);
        let Some(&listener) = self.rng_sockets.pick(&open) else {
            let error = if !all.is_empty() && reachable.is_empty() {
                IoError::TimedOut
            } else {
                IoError::ConnectionRefused
            };
            self.kernel.sock_mut(from).state = TcpState::Failed { error, ready_at };
            return;
        };
        let owner = self.kernel.sock(listener).owner;
        let server = self.kernel.new_socket(owner, false);
        let local = self.kernel.sock(from).local;
        {
            let s = self.kernel.sock_mut(server);
            s.local = Some(addr);
            s.remote = local;
            s.state = TcpState::Established {
                peer: from,
                ready_at: self.now,
            };
        }
        let c = self.kernel.sock_mut(from);
        c.remote = Some(addr);
        c.state = TcpState::Established {
            peer: server,
            ready_at,
        };
        if let TcpState::Listening { queue, .. } = &mut self.kernel.sock_mut(listener).state {
            queue.push_back(server);
        }
    }

    pub(crate) fn control(
        &mut self,
        shard: u8,
        owner: Handle,
        op: Control,
    ) -> Result<ControlOutcome, IoError> {
        self.observe_live(owner);
        let r = self.control_inner(shard, op);
        let code = match r {
            Ok(ControlOutcome::Fd(fd)) => fd.0 as u64,
            Ok(ControlOutcome::Addr(a)) => addr_word(a),
            Ok(ControlOutcome::Done) => 0,
            Err(e) => result_word(Err(e)),
        };
        self.trace.ev(
            Ev::Control,
            &[u64::from(shard), owner.to_bits(), code],
            || format!("s{shard} {owner} {op:?} -> {r:?}"),
        );
        r
    }

    fn control_inner(&mut self, shard: u8, op: Control) -> Result<ControlOutcome, IoError> {
        let node = Node::Shard(shard);
        match op {
            Control::Socket { kind, .. } => {
                let id = self.kernel.new_socket(node, kind == SocketKind::Datagram);
                match self.kernel.fd_alloc(shard, FdEntry::Socket(id)) {
                    Ok(fd) => Ok(ControlOutcome::Fd(fd)),
                    Err(e) => {
                        self.kernel.discard(id);
                        Err(e)
                    }
                }
            }
            Control::Bind { socket, addr } => {
                let id = self.kernel.fd_socket(shard, socket)?;
                if self.kernel.sock(id).local.is_some() {
                    return Err(IoError::InvalidInput);
                }
                let addr = if addr.port() == 0 {
                    SocketAddr::new(addr.ip(), self.kernel.ephemeral_port())
                } else {
                    addr
                };
                let udp = self.kernel.sock(id).udp;
                if self.kernel.addr_in_use(id, addr, udp) {
                    return Err(IoError::AddrInUse);
                }
                let s = self.kernel.sock_mut(id);
                s.local = Some(addr);
                s.bound = true;
                Ok(ControlOutcome::Done)
            }
            Control::Listen { socket, backlog } => {
                let id = self.kernel.fd_socket(shard, socket)?;
                if self.kernel.sock(id).udp {
                    return Err(IoError::Unsupported);
                }
                if self.kernel.sock(id).local.is_none() {
                    let port = self.kernel.ephemeral_port();
                    self.kernel.sock_mut(id).local = Some(SocketAddr::new(node.ip(), port));
                }
                let s = self.kernel.sock_mut(id);
                s.bound = true;
                if !matches!(s.state, TcpState::Idle) {
                    return Err(IoError::InvalidInput);
                }
                s.state = TcpState::Listening {
                    backlog: (backlog as usize).clamp(1, 4096),
                    queue: Default::default(),
                };
                Ok(ControlOutcome::Done)
            }
            Control::SetOption { socket, option } => {
                let id = self.kernel.fd_socket(shard, socket)?;
                if let SocketOption::ReusePort(on) = option {
                    self.kernel.sock_mut(id).reuse_port = on;
                }
                Ok(ControlOutcome::Done)
            }
            Control::Shutdown { socket, how } => {
                let id = self.kernel.fd_socket(shard, socket)?;
                let at = self.now + self.latency;
                self.shutdown_socket(id, how, at)?;
                Ok(ControlOutcome::Done)
            }
            Control::LocalAddr { socket } => {
                let id = self.kernel.fd_socket(shard, socket)?;
                let unbound =
                    SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0);
                Ok(ControlOutcome::Addr(
                    self.kernel.sock(id).local.unwrap_or(unbound),
                ))
            }
        }
    }

    pub(crate) fn shutdown_socket(
        &mut self,
        id: SockId,
        how: ShutdownHow,
        fin_at: u64,
    ) -> Result<(), IoError> {
        let peer = match self.kernel.sock(id).state {
            TcpState::Established { peer, .. } => peer,
            _ => return Err(IoError::NotConnected),
        };
        if matches!(how, ShutdownHow::Read | ShutdownHow::Both) {
            self.kernel.sock_mut(id).read_shut = true;
        }
        if matches!(how, ShutdownHow::Write | ShutdownHow::Both) && !self.kernel.sock(id).write_shut
        {
            self.kernel.sock_mut(id).write_shut = true;
            let p = self.kernel.sock_mut(peer);
            if !matches!(p.state, TcpState::Closed) {
                p.fin_at = Some(fin_at);
            }
            if p.owner == Node::Outside {
                self.kernel.client_events += 1;
            }
        }
        Ok(())
    }

    /// The earliest tick a pending op of any shard waits for (delays, connects).
    pub(crate) fn next_io_time(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        let mut consider = |t: u64| {
            if t > self.now {
                best = Some(best.map_or(t, |b: u64| b.min(t)));
            }
        };
        for ops in &self.kernel.pending {
            for p in ops {
                consider(p.not_before);
            }
        }
        for s in self
            .kernel
            .active
            .iter()
            .map(|&i| self.kernel.sock(SockId(i)))
        {
            if let TcpState::Established { ready_at, .. } | TcpState::Failed { ready_at, .. } =
                s.state
            {
                consider(ready_at);
            }
            if let Some(seg) = s.rx.front() {
                consider(seg.ready_at);
            }
            if let Some(t) = s.fin_at {
                consider(t);
            }
            if let Some(d) = s.dgrams.front() {
                consider(d.ready_at);
            }
        }
        best
    }
}
