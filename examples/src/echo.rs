//! A TCP echo server as isolates.
//!
//! ```text
//!   Listener ──Accept──► new socket ──spawn──► Connection ──Recv──► bytes ──Send──► …
//!      │                  (arena/group full: the socket is closed at once, counted)
//!      └── one per shard, bound with SO_REUSEPORT so every shard accepts on the same port
//! ```
//!
//! A connection owns its socket (`Ctx::own_fd`), so if it crashes — or panics on hostile
//! input — the shard closes the socket for it and nothing else is affected.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tina_core::io::{Domain, Fd, IoCompletion, IoError, IoKind, IoOp, SocketKind, SocketOption};
use tina_core::{CrashReason, Ctx, Duration, Effect, Isolate, Message, Payload, UserTag, log};

/// Listener arguments: the address to bind (IPv4 or IPv6) and the backlog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct ListenArgs {
    /// 4 or 6.
    pub family: u8,
    /// Bytes of the IP (first 4 for IPv4).
    pub ip: [u8; 16],
    /// Padding (zero).
    pub _pad: u8,
    /// Port (0: any; the bound port is logged).
    pub port: u16,
    /// Listen backlog.
    pub backlog: u32,
}

impl ListenArgs {
    /// Arguments for `addr`.
    pub fn new(addr: SocketAddr, backlog: u32) -> ListenArgs {
        let (family, ip) = match addr.ip() {
            IpAddr::V4(v4) => {
                let mut ip = [0; 16];
                ip[..4].copy_from_slice(&v4.octets());
                (4, ip)
            }
            IpAddr::V6(v6) => (6, v6.octets()),
        };
        ListenArgs {
            family,
            ip,
            _pad: 0,
            port: addr.port(),
            backlog,
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        let ip = if self.family == 6 {
            IpAddr::V6(Ipv6Addr::from(self.ip))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.ip[0], self.ip[1], self.ip[2], self.ip[3],
            ))
        };
        SocketAddr::new(ip, self.port)
    }
}

/// Connection arguments: the accepted socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct ConnArgs {
    /// The socket.
    pub fd: i32,
}

/// Sent to a connection (or a test) to report the listener's bound address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Bound {
    /// The port the listener is bound to.
    pub port: u16,
}

impl Payload for Bound {
    const TAG: UserTag = UserTag::new(0x60);
}

/// A payload starting with this byte makes a connection panic (the containment demo:
/// "input that makes a connection's handler panic kills only that connection").
pub const POISON_BYTE: u8 = 0xFF;

const RETRY_ACCEPT: UserTag = UserTag::new(0x61);
const RETRY_RECV: UserTag = UserTag::new(0x62);

/// The listening isolate (one per shard).
pub struct Listener {
    socket: Fd,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because no connection isolate could be spawned.
    pub refused: u64,
    /// The bound address.
    pub local: Option<SocketAddr>,
    closing_refused: bool,
}

impl Listener {
    fn accept(&self) -> Effect {
        Effect::Io(IoOp::Accept {
            listener: self.socket,
        })
    }
}

impl Isolate for Listener {
    type Args = ListenArgs;

    fn init(args: &ListenArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let addr = args.addr();
        let socket = ctx
            .socket(Domain::of(&addr), SocketKind::Stream)
            .map_err(|_| CrashReason("socket() failed"))?;
        ctx.own_fd(Some(socket));
        let _ = ctx.set_option(socket, SocketOption::ReuseAddr(true));
        ctx.set_option(socket, SocketOption::ReusePort(true))
            .map_err(|_| CrashReason("SO_REUSEPORT failed"))?;
        ctx.bind(socket, addr)
            .map_err(|_| CrashReason("bind() failed"))?;
        ctx.listen(socket, args.backlog.max(1))
            .map_err(|_| CrashReason("listen() failed"))?;
        let local = ctx.local_addr(socket).ok();
        if let Some(local) = local {
            log!(ctx, Info, "listening on {local}");
        }
        let me = Listener {
            socket,
            accepted: 0,
            refused: 0,
            local,
            closing_refused: false,
        };
        let first = me.accept();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Io(IoOp::Close { fd: self.socket });
        }
        if msg.tag() == RETRY_ACCEPT.into() {
            return self.accept();
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        if ctx.is_shutting_down() {
            return match c.kind {
                IoKind::Close if !self.closing_refused => Effect::Done,
                _ => {
                    // An accepted socket arriving during shutdown is closed, not served.
                    self.closing_refused = false;
                    match c.fd() {
                        Some(fd) => {
                            self.closing_refused = true;
                            Effect::Io(IoOp::Close { fd })
                        }
                        None => Effect::Io(IoOp::Close { fd: self.socket }),
                    }
                }
            };
        }
        match (c.kind, c.result) {
            (IoKind::Accept, Ok(_)) => {
                let fd = c.fd().unwrap_or(Fd(-1));
                match ctx.spawn::<Connection>(&ConnArgs { fd: fd.0 }) {
                    Ok(_) => {
                        self.accepted += 1;
                        self.accept()
                    }
                    Err(e) => {
                        // Over capacity: refuse cleanly by closing the new socket.
                        self.refused += 1;
                        log!(ctx, Warn, "refusing connection: {e}");
                        self.closing_refused = true;
                        Effect::Io(IoOp::Close { fd })
                    }
                }
            }
            (IoKind::Close, _) => {
                self.closing_refused = false;
                self.accept()
            }
            (IoKind::Accept, Err(e)) => {
                // e.g. too many open files: back off one tick instead of spinning.
                log!(ctx, Warn, "accept failed: {e}");
                match ctx.start_timer(Duration::from_ticks(1), RETRY_ACCEPT) {
                    Ok(_) => Effect::Receive,
                    Err(_) => self.accept(),
                }
            }
            _ => self.accept(),
        }
    }
}

/// One client connection: echoes everything back, zero-copy.
pub struct Connection {
    socket: Fd,
    /// Bytes echoed so far.
    pub echoed: u64,
    closing: bool,
    pending_len: u32,
}

impl Connection {
    fn recv(&self) -> Effect {
        Effect::Io(IoOp::Recv {
            socket: self.socket,
            len: u32::MAX,
        })
    }

    fn close(&mut self) -> Effect {
        self.closing = true;
        Effect::Io(IoOp::Close { fd: self.socket })
    }

    fn on_completion(&mut self, c: IoCompletion, ctx: &mut Ctx) -> Effect {
        match (c.kind, c.result) {
            (IoKind::Close, _) => Effect::Done,
            (IoKind::Recv, Ok(0)) => self.close(),
            (IoKind::Recv, Ok(n)) => {
                let Some(buf) = c.buf else {
                    return self.close();
                };
                if ctx.io_data(buf, 1).ok().and_then(|d| d.first().copied()) == Some(POISON_BYTE) {
                    panic!("poisoned input");
                }
                self.pending_len = n;
                Effect::Io(IoOp::Send {
                    socket: self.socket,
                    buf,
                    len: n,
                })
            }
            (IoKind::Send, Ok(sent)) => {
                self.echoed += u64::from(sent);
                // A partial send gets its buffer back: move the unsent tail to the front.
                let Some(buf) = c.buf else {
                    return self.recv();
                };
                let total = self.pending_len;
                if sent < total {
                    let Ok(bytes) = ctx.io_buffer_mut(buf) else {
                        return self.close();
                    };
                    bytes.copy_within(sent as usize..total as usize, 0);
                    self.pending_len = total - sent;
                    return Effect::Io(IoOp::Send {
                        socket: self.socket,
                        buf,
                        len: total - sent,
                    });
                }
                self.recv()
            }
            (_, Err(IoError::Canceled)) => self.close(),
            // The shard is short of buffers or submission slots this tick: transient, so try
            // the receive again next tick instead of dropping the client.
            (IoKind::Recv, Err(IoError::NoBuffers | IoError::QueueFull)) => {
                match ctx.start_timer(Duration::from_ticks(1), RETRY_RECV) {
                    Ok(_) => Effect::Receive,
                    Err(_) => self.close(),
                }
            }
            (_, Err(_)) => self.close(),
            _ => self.recv(),
        }
    }
}

impl Isolate for Connection {
    type Args = ConnArgs;

    fn init(args: &ConnArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let socket = Fd(args.fd);
        ctx.own_fd(Some(socket));
        let _ = ctx.set_option(socket, SocketOption::NoDelay(true));
        let me = Connection {
            socket,
            echoed: 0,
            closing: false,
            pending_len: 0,
        };
        let first = me.recv();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return self.close();
        }
        if msg.tag() == RETRY_RECV.into() {
            return self.recv();
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        if self.closing {
            return Effect::Done;
        }
        if ctx.is_shutting_down() && c.kind == IoKind::Recv {
            return self.close();
        }
        self.on_completion(c, ctx)
    }
}
