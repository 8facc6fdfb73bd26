//! The simulated kernel: descriptors, TCP and UDP sockets with real bytes, and files.
//!
//! Every shard has its own descriptor table (numbers start at 3, lowest free first, as on
//! POSIX) and its own disk (a map from path to bytes that survives shard recovery, so
//! isolates can keep durable state). Sockets live in one world-wide table, so a connection
//! joins two nodes: a shard and a simulated client, or two shards.
//!
//! ```text
//!  client ──connect(addr)──► listeners bound to addr (SO_REUSEPORT group, one picked by
//!                            the SOCKETS stream) ── accept queue full / none ──► refused
//!                                  │
//!                    accept queue ─┴─► Accept op ──► new descriptor on the shard
//!
//!  a ──write──► b.rx (segments with a ready time: latency + net-delay; held while a
//!               partition separates a and b) ──read──► bytes, or EOF after FIN, or reset
//! ```
//!
//! TCP is modelled at the byte-stream level: no segments on a wire, but everything the
//! socket API shows — partial reads and writes (bounded receive buffers, the `io-short`
//! fault), end of stream after the peer's FIN, `ECONNRESET` after a reset or after closing
//! with unread data, `ECONNREFUSED` when nobody listens or the backlog is full, `EPIPE` /
//! reset on writes to a closed peer.
//!
//! Socket ids are handed out in order and never reused (they appear in the trace). A closed
//! socket is forgotten as soon as nothing can refer to it any more — both ends of its
//! connection are closed, or it never had a peer — so the table holds only the sockets in
//! use, however long a run lasts. A forgotten id reads as a closed, empty socket.

use crate::rng::{Domain, SimRng};
use crate::world::Node;
use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tina_core::io::{Fd, IoError};

/// Bytes a socket's receive buffer holds at most.
pub const RECV_BUFFER_SIZE: usize = 64 * 1024;
/// Datagrams a UDP socket queues at most.
pub const DATAGRAM_QUEUE_MAX: usize = 64;
/// Descriptors one shard may have open at once.
pub const FDS_PER_SHARD_MAX: usize = 4096;
/// First ephemeral port.
const EPHEMERAL_PORT_MIN: u16 = 40_000;

/// Identifies a socket in the world-wide table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SockId(pub(crate) usize);

#[derive(Debug)]
pub(crate) enum TcpState {
    /// Created, perhaps bound.
    Idle,
    Listening {
        backlog: usize,
        queue: VecDeque<SockId>,
    },
    /// Connected to `peer`; usable by its owner from `ready_at` on.
    Established {
        peer: SockId,
        ready_at: u64,
    },
    /// A connection attempt that failed (the error is reported once usable).
    Failed {
        error: IoError,
        ready_at: u64,
    },
    Closed,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) ready_at: u64,
    pub(crate) bytes: Vec<u8>,
    /// Bytes of `bytes` already read.
    pub(crate) read: usize,
}

impl Segment {
    fn len(&self) -> usize {
        self.bytes.len() - self.read
    }
}

#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) ready_at: u64,
    pub(crate) from: SocketAddr,
    pub(crate) bytes: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Socket {
    pub(crate) owner: Node,
    pub(crate) udp: bool,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) reuse_port: bool,
    /// Bound by `bind`/`listen`/an implicit bind (accepted connections share the listener's
    /// port without holding it).
    pub(crate) bound: bool,
    pub(crate) state: TcpState,
    pub(crate) rx: VecDeque<Segment>,
    pub(crate) rx_len: usize,
    /// The peer shut its writing side; EOF once `rx` is drained and this time has come.
    pub(crate) fin_at: Option<u64>,
    pub(crate) reset: bool,
    pub(crate) write_shut: bool,
    pub(crate) read_shut: bool,
    pub(crate) dgrams: VecDeque<Datagram>,
}

impl Socket {
    /// What a forgotten socket reads as (only the scenario's clients can still name one).
    const FORGOTTEN: Socket = Socket {
        owner: Node::Outside,
        udp: false,
        local: None,
        remote: None,
        reuse_port: false,
        bound: false,
        state: TcpState::Closed,
        rx: VecDeque::new(),
        rx_len: 0,
        fin_at: None,
        reset: false,
        write_shut: false,
        read_shut: false,
        dgrams: VecDeque::new(),
    };

    fn new(owner: Node, udp: bool) -> Socket {
        Socket {
            owner,
            udp,
            local: None,
            remote: None,
            reuse_port: false,
            bound: false,
            state: TcpState::Idle,
            rx: VecDeque::new(),
            rx_len: 0,
            fin_at: None,
            reset: false,
            write_shut: false,
            read_shut: false,
            dgrams: VecDeque::new(),
        }
    }
}

/// What a forgotten socket id reads as.
static FORGOTTEN: Socket = Socket::FORGOTTEN;

/// What a shard's descriptor refers to.
#[derive(Debug)]
pub(crate) enum FdEntry {
    Socket(SockId),
    File {
        path: String,
        read: bool,
        write: bool,
        append: bool,
    },
}

/// Sockets, descriptor tables and disks.
pub(crate) struct Kernel {
    /// Sockets something may still refer to, by id.
    sockets: BTreeMap<usize, Socket>,
    /// The id the next socket gets.
    socket_next: usize,
    /// Where writes to a forgotten socket go (reset before each use, never read back).
    forgotten: Socket,
    /// The most sockets the table held at once.
    sockets_peak: usize,
    /// Sockets not closed yet (the ones scans need to look at), in id order.
    pub(crate) active: BTreeSet<usize>,
    /// Per shard: descriptor → (entry, serial). The serial tells a reused number apart.
    pub(crate) fds: Vec<Vec<Option<(FdEntry, u64)>>>,
    fd_serial_next: u64,
    pub(crate) disks: Vec<BTreeMap<String, Vec<u8>>>,
    pub(crate) io_rng: Vec<SimRng>,
    ephemeral_next: u16,
    /// Connections that changed in a way a client may want to see (data, FIN, reset).
    pub(crate) client_events: u64,
    /// Per shard: operations accepted and not completed yet, in submission order.
    pub(crate) pending: Vec<Vec<crate::ops::PendingOp>>,
    /// Per shard: complete everything pending with `Canceled` at the next step (shutdown).
    pub(crate) cancel: Vec<bool>,
}

impl Kernel {
    pub(crate) fn new(seed: u64, shard_count: usize) -> Kernel {
        Kernel {
            sockets: BTreeMap::new(),
            socket_next: 0,
            forgotten: Socket::FORGOTTEN,
            sockets_peak: 0,
            active: BTreeSet::new(),
            fds: (0..shard_count).map(|_| Vec::new()).collect(),
            fd_serial_next: 1,
            disks: (0..shard_count).map(|_| BTreeMap::new()).collect(),
            io_rng: (0..shard_count)
                .map(|s| SimRng::stream(seed, Domain::shard_io(s as u8)))
                .collect(),
            ephemeral_next: EPHEMERAL_PORT_MIN,
            client_events: 0,
            pending: (0..shard_count).map(|_| Vec::new()).collect(),
            cancel: vec![false; shard_count],
        }
    }

    pub(crate) fn new_socket(&mut self, owner: Node, udp: bool) -> SockId {
        let id = self.socket_next;
        self.socket_next += 1;
        self.sockets.insert(id, Socket::new(owner, udp));
        self.sockets_peak = self.sockets_peak.max(self.sockets.len());
        self.active.insert(id);
        SockId(id)
    }

    /// Marks a socket closed for good (its peer, if any, may still refer to it).
    pub(crate) fn set_closed(&mut self, id: SockId) {
        self.sock_mut(id).state = TcpState::Closed;
        self.active.remove(&id.0);
    }

    /// Closes a socket nothing refers to (no descriptor, no peer) and forgets it.
    pub(crate) fn discard(&mut self, id: SockId) {
        self.set_closed(id);
        self.forget(id);
    }

    /// Drops a closed socket from the table.
    fn forget(&mut self, id: SockId) {
        debug_assert!(matches!(self.sock(id).state, TcpState::Closed));
        self.sockets.remove(&id.0);
    }

    /// The most sockets the table held at once (open ones, and closed ones a peer still
    /// refers to).
    pub(crate) fn sockets_peak(&self) -> usize {
        self.sockets_peak
    }

    pub(crate) fn sock(&self, id: SockId) -> &Socket {
        self.sockets.get(&id.0).unwrap_or(&FORGOTTEN)
    }

    pub(crate) fn sock_mut(&mut self, id: SockId) -> &mut Socket {
        match self.sockets.get_mut(&id.0) {
            Some(s) => s,
            None => {
                self.forgotten = Socket::FORGOTTEN;
                &mut self.forgotten
            }
        }
    }

    /// Installs `entry` at the lowest free descriptor of `shard`.
    pub(crate) fn fd_alloc(&mut self, shard: u8, entry: FdEntry) -> Result<Fd, IoError> {
        let table = &mut self.fds[usize::from(shard)];
        let i = match table.iter().position(Option::is_none) {
            Some(i) => i,
            None if table.len() < FDS_PER_SHARD_MAX => {
                table.push(None);
                table.len() - 1
            }
            None => return Err(IoError::TooManyOpenFiles),
        };
        table[i] = Some((entry, self.fd_serial_next));
        self.fd_serial_next += 1;
        Ok(Fd(i as i32 + 3))
    }

    pub(crate) fn fd(&self, shard: u8, fd: Fd) -> Option<&FdEntry> {
        let i = usize::try_from(fd.0.checked_sub(3)?).ok()?;
        self.fds[usize::from(shard)]
            .get(i)?
            .as_ref()
            .map(|(e, _)| e)
    }

    /// The serial of the open descriptor `fd` (it changes when the number is reused).
    pub(crate) fn fd_serial(&self, shard: u8, fd: Fd) -> Option<u64> {
        let i = usize::try_from(fd.0.checked_sub(3)?).ok()?;
        self.fds[usize::from(shard)]
            .get(i)?
            .as_ref()
            .map(|(_, s)| *s)
    }

    pub(crate) fn fd_take(&mut self, shard: u8, fd: Fd) -> Option<FdEntry> {
        let i = usize::try_from(fd.0.checked_sub(3)?).ok()?;
        self.fds[usize::from(shard)]
            .get_mut(i)?
            .take()
            .map(|(e, _)| e)
    }

    pub(crate) fn fd_socket(&self, shard: u8, fd: Fd) -> Result<SockId, IoError> {
        match self.fd(shard, fd) {
            Some(FdEntry::Socket(id)) => Ok(*id),
            Some(FdEntry::File { .. }) => Err(IoError::InvalidInput),
            None => Err(IoError::BadDescriptor),
        }
    }

    /// Open descriptors of a shard.
    pub(crate) fn open_fds(&self, shard: u8) -> usize {
        self.fds[usize::from(shard)].iter().flatten().count()
    }

    pub(crate) fn ephemeral_port(&mut self) -> u16 {
        let p = self.ephemeral_next;
        self.ephemeral_next = if p == u16::MAX {
            EPHEMERAL_PORT_MIN
        } else {
            p + 1
        };
        p
    }

    /// Whether binding `addr` conflicts with another socket.
    pub(crate) fn addr_in_use(&self, me: SockId, addr: SocketAddr, udp: bool) -> bool {
        let mine = self.sock(me).reuse_port;
        self.active
            .iter()
            .map(|&i| (i, &self.sockets[&i]))
            .any(|(i, s)| {
                i != me.0
                    && s.udp == udp
                    && s.bound
                    && !matches!(s.state, TcpState::Closed)
                    && s.local.is_some_and(|l| {
                        l.port() == addr.port()
                            && (l.ip() == addr.ip()
                                || l.ip().is_unspecified()
                                || addr.ip().is_unspecified())
                            && !(mine && s.reuse_port)
                    })
            })
    }

    /// Listening sockets that accept connections to `addr`, in table order.
    pub(crate) fn listeners_for(&self, addr: SocketAddr) -> Vec<SockId> {
        self.active
            .iter()
            .copied()
            .filter(|&i| {
                let s = &self.sockets[&i];
                !s.udp
                    && matches!(s.state, TcpState::Listening { .. })
                    && s.local
                        .is_some_and(|l| l.port() == addr.port() && ip_matches(l.ip(), addr.ip()))
            })
            .map(SockId)
            .collect()
    }

    /// The UDP socket bound to `addr`.
    pub(crate) fn udp_bound(&self, addr: SocketAddr) -> Option<SockId> {
        self.active
            .iter()
            .copied()
            .find(|&i| {
                let s = &self.sockets[&i];
                s.udp
                    && !matches!(s.state, TcpState::Closed)
                    && s.local
                        .is_some_and(|l| l.port() == addr.port() && ip_matches(l.ip(), addr.ip()))
            })
            .map(SockId)
    }

    /// Bytes readable now from `id` (ready segments; a partition holds them back).
    pub(crate) fn readable(&self, id: SockId, now: u64, cut: bool) -> usize {
        if cut {
            return 0;
        }
        self.sock(id)
            .rx
            .iter()
            .take_while(|s| s.ready_at <= now)
            .map(Segment::len)
            .sum()
    }

    /// Moves up to `out.len()` readable bytes into `out`.
    pub(crate) fn take_bytes(&mut self, id: SockId, now: u64, out: &mut [u8]) -> usize {
        let s = self.sock_mut(id);
        let mut n = 0;
        while n < out.len() {
            let Some(seg) = s.rx.front_mut() else { break };
            if seg.ready_at > now {
                break;
            }
            let k = seg.len().min(out.len() - n);
            out[n..n + k].copy_from_slice(&seg.bytes[seg.read..seg.read + k]);
            seg.read += k;
            n += k;
            if seg.len() == 0 {
                s.rx.pop_front();
            }
        }
        s.rx_len -= n;
        n
    }

    /// Whether EOF is visible on `id` now (FIN arrived and every byte before it was read).
    pub(crate) fn at_eof(&self, id: SockId, now: u64, cut: bool) -> bool {
        let s = self.sock(id);
        !cut && s.rx.is_empty() && s.fin_at.is_some_and(|t| t <= now)
    }

    /// Appends bytes to `to`'s receive buffer, readable from `ready_at`.
    pub(crate) fn push_bytes(&mut self, to: SockId, ready_at: u64, bytes: &[u8]) {
        let s = self.sock_mut(to);
        s.rx_len += bytes.len();
        match s.rx.back_mut() {
            Some(last) if last.ready_at == ready_at => last.bytes.extend_from_slice(bytes),
            _ => s.rx.push_back(Segment {
                ready_at,
                bytes: bytes.to_vec(),
                read: 0,
            }),
        }
        if s.owner == Node::Outside {
            self.client_events += 1;
        }
    }

    /// Resets both ends of a connection.
    pub(crate) fn reset_pair(&mut self, id: SockId) {
        let peer = match self.sock(id).state {
            TcpState::Established { peer, .. } => Some(peer),
            _ => None,
        };
        for s in [Some(id), peer].into_iter().flatten() {
            let sock = self.sock_mut(s);
            if !matches!(sock.state, TcpState::Closed) {
                sock.reset = true;
                sock.rx.clear();
                sock.rx_len = 0;
            }
            if sock.owner == Node::Outside {
                self.client_events += 1;
            }
        }
    }

    /// Closes a socket: a listener resets its unaccepted connections; a connection sends FIN
    /// (or RST when unread data is left, as Linux does). The socket is forgotten once nothing
    /// refers to it: at once without a peer, else when both ends are closed.
    pub(crate) fn close_socket(&mut self, id: SockId, fin_at: u64) {
        let state = core::mem::replace(&mut self.sock_mut(id).state, TcpState::Closed);
        self.active.remove(&id.0);
        // The closed sockets nothing refers to any more.
        let mut forget = [None, None];
        match state {
            TcpState::Listening { queue, .. } => {
                for pending in queue {
                    self.reset_pair(pending);
                    self.set_closed(pending);
                }
                forget[0] = Some(id);
            }
            TcpState::Idle | TcpState::Failed { .. } => forget[0] = Some(id),
            // Closed twice: its peer (if still open) refers to it.
            TcpState::Closed => {}
            TcpState::Established { peer, .. } => {
                if matches!(self.sock(peer).state, TcpState::Closed) {
                    forget = [Some(id), Some(peer)];
                }
                let unread = self.sock(id).rx_len > 0;
                let was_shut = self.sock(id).write_shut;
                let p = self.sock_mut(peer);
                if !matches!(p.state, TcpState::Closed) {
                    if unread {
                        p.reset = true;
                        p.rx.clear();
                        p.rx_len = 0;
                    } else if !was_shut {
                        p.fin_at = Some(fin_at);
                    }
                }
                if p.owner == Node::Outside {
                    self.client_events += 1;
                }
            }
        }
        let s = self.sock_mut(id);
        s.rx.clear();
        s.rx_len = 0;
        s.dgrams.clear();
        for f in forget.into_iter().flatten() {
            self.forget(f);
        }
    }

    /// Established connections with a shard on at least one end (for the `tcp-reset` fault).
    pub(crate) fn established(&self) -> Vec<SockId> {
        self.active
            .iter()
            .copied()
            .filter(|&i| {
                let s = &self.sockets[&i];
                matches!(s.owner, Node::Shard(_))
                    && !s.reset
                    && matches!(s.state, TcpState::Established { .. })
            })
            .map(SockId)
            .collect()
    }
}

fn ip_matches(bound: IpAddr, wanted: IpAddr) -> bool {
    bound == wanted || bound.is_unspecified()
}
