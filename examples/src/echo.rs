//! A TCP echo server as isolates.
//!
//! ```text
//!   Listener ──Accept──► new socket ──spawn──► Connection ──Recv──► bytes ──Send──► …
//!      │  │               (arena/group full: the socket is closed at once, counted)
//!      │  └── accept fails (e.g. out of descriptors): retry after a back-off of 1, 2, 4 … ms
//!      │      up to ACCEPT_BACKOFF_MAX (100 ms), never every tick
//!      └── one per shard, bound with SO_REUSEPORT so every shard accepts on the same port
//! ```
//!
//! A connection echoes every byte it receives, whatever its value. A connection owns its
//! socket (`Ctx::own_fd`), so if it crashes — or, with the demo's poison trigger armed
//! ([`ListenArgs::with_poison_trigger`]), panics on hostile input — the shard closes the
//! socket for it and nothing else is affected.
//!
//! Refusals and failed accepts come in bursts under overload: the listener logs the first one
//! of a burst and, once accepts have gone on for [`BURST_QUIET`] without one, a line
//! with how many the burst had; refusals are also counted in the shard's `spawn_failures`.

use core::net::SocketAddr;
use tina_core::io::{Domain, Fd, IoCompletion, IoError, IoKind, IoOp, SocketKind, SocketOption};
use tina_core::{
    CrashReason, Ctx, Duration, Effect, Instant, Isolate, Message, Payload, UserTag, log,
};

/// Listener arguments: the address to bind (IPv4 or IPv6), the backlog, and whether the
/// demo's poison trigger is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenArgs {
    /// The address to bind (port 0: any; the bound port is logged).
    pub addr: SocketAddr,
    /// Listen backlog.
    pub backlog: u32,
    /// The connections this listener spawns panic on a received chunk that starts with
    /// [`POISON_BYTE`] (the containment demo). Off: every byte is echoed.
    pub poison: bool,
}

impl ListenArgs {
    /// Arguments for `addr`: an echo server that echoes every byte.
    pub const fn new(addr: SocketAddr, backlog: u32) -> ListenArgs {
        ListenArgs {
            addr,
            backlog,
            poison: false,
        }
    }

    /// The same listener with the demo's poison trigger armed: its connections panic on a
    /// received chunk that starts with [`POISON_BYTE`].
    pub const fn with_poison_trigger(self) -> ListenArgs {
        ListenArgs {
            poison: true,
            ..self
        }
    }
}

/// Connection arguments: the accepted socket, and whether the demo's poison trigger is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnArgs {
    /// The socket.
    pub fd: i32,
    /// Panic on a received chunk that starts with [`POISON_BYTE`].
    pub poison: bool,
}

impl ConnArgs {
    /// A connection on `fd` that echoes every byte.
    pub const fn new(fd: i32) -> ConnArgs {
        ConnArgs { fd, poison: false }
    }
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

/// With the poison trigger armed ([`ListenArgs::with_poison_trigger`]), a received chunk
/// starting with this byte makes a connection panic (the containment demo: "input that makes
/// a connection's handler panic kills only that connection"). Unarmed, it is echoed like any
/// other byte.
pub const POISON_BYTE: u8 = 0xFF;

/// The first retry after a failed accept waits this long; each further failure doubles it.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(1);
/// The longest wait between accept retries.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(100);
/// A burst of refusals or failed accepts ends once accepts have succeeded for this long
/// without one; the next failure starts a new burst (and logs again).
pub const BURST_QUIET: Duration = Duration::from_secs(1);

const _: () = assert!(!ACCEPT_BACKOFF_MIN.is_zero());
const _: () = assert!(ACCEPT_BACKOFF_MIN.as_nanos() <= ACCEPT_BACKOFF_MAX.as_nanos());
const _: () = assert!(ACCEPT_BACKOFF_MAX.as_nanos() < BURST_QUIET.as_nanos());

const RETRY_ACCEPT: UserTag = UserTag::new(0x61);
const RETRY_RECV: UserTag = UserTag::new(0x62);

/// A run of failures of one kind, logged when it starts and when it is over, counted between.
#[derive(Clone, Copy, Debug, Default)]
struct Burst {
    /// Failures in the current burst (0: none going on).
    count: u64,
    /// When the last one happened.
    last: Instant,
}

impl Burst {
    /// Counts a failure at `now`; whether it starts a burst (the caller logs it).
    fn fail(&mut self, now: Instant) -> bool {
        self.count += 1;
        self.last = now;
        self.count == 1
    }

    /// A success now: the size of the burst if it is over (quiet for [`BURST_QUIET`]), which
    /// the caller logs once.
    fn succeed(&mut self, ctx: &Ctx) -> Option<u64> {
        if self.count == 0 || ctx.elapsed_since(self.last) < BURST_QUIET {
            return None;
        }
        let n = self.count;
        self.count = 0;
        Some(n)
    }
}

/// The listening isolate (one per shard).
pub struct Listener {
    socket: Fd,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because no connection isolate could be spawned.
    pub refused: u64,
    /// The bound address.
    pub local: Option<SocketAddr>,
    poison: bool,
    closing_refused: bool,
    /// The wait before the next accept retry (zero: the last accept succeeded).
    backoff: Duration,
    accept_failures: Burst,
    refusals: Burst,
}

impl Listener {
    fn accept(&self) -> Effect {
        Effect::Io(IoOp::Accept {
            listener: self.socket,
        })
    }

    /// A new socket: hand it to a new connection isolate, or refuse it (close it) when none
    /// can be spawned.
    fn on_accepted(&mut self, fd: Fd, ctx: &mut Ctx) -> Effect {
        let now = ctx.now();
        self.backoff = Duration::ZERO;
        if let Some(n) = self.accept_failures.succeed(ctx) {
            log!(ctx, Info, "accepting again after {n} failed accepts");
        }
        let args = ConnArgs {
            poison: self.poison,
            ..ConnArgs::new(fd.0)
        };
        match ctx.spawn::<Connection>(&args) {
            Ok(_) => {
                self.accepted += 1;
                if let Some(n) = self.refusals.succeed(ctx) {
                    log!(ctx, Info, "accepting again after refusing {n} connections");
                }
                self.accept()
            }
            Err(e) => {
                // Over capacity: refuse cleanly by closing the new socket (the shard counts
                // it in `spawn_failures`).
                self.refused += 1;
                if self.refusals.fail(now) {
                    log!(ctx, Warn, "refusing connections: {e}");
                }
                self.closing_refused = true;
                Effect::Io(IoOp::Close { fd })
            }
        }
    }

    /// A failed accept. One that concerns only the connection it would have returned (the
    /// client gave up first) is followed by the next accept at once; any other (out of
    /// descriptors, buffers or memory) by a retry after a back-off, so a listener never
    /// spins while the process is out of resources.
    fn on_accept_failed(&mut self, e: IoError, ctx: &mut Ctx) -> Effect {
        if matches!(e, IoError::ConnectionAborted | IoError::ConnectionReset) {
            return self.accept();
        }
        if self.accept_failures.fail(ctx.now()) {
            log!(
                ctx,
                Warn,
                "accept failed: {e}; retrying after a back-off of up to {ACCEPT_BACKOFF_MAX}"
            );
        }
        self.backoff = (self.backoff + self.backoff).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
        match ctx.start_timer(self.backoff, RETRY_ACCEPT) {
            Ok(_) => Effect::Receive,
            // No timer to wait with: retry next tick.
            Err(_) => Effect::Yield,
        }
    }

    /// A completion while the shard shuts down. The listener ends once its listening socket
    /// is closed: the shutdown notice closes it when the listener was waiting for messages
    /// (e.g. during a back-off); otherwise the operation in flight completes here first — an
    /// accept cancelled by the shutdown, a socket accepted just before it (closed, not
    /// served), the close of a refused socket — and the listening socket is closed after it.
    fn on_completion_shutting_down(&mut self, c: IoCompletion) -> Effect {
        match c.kind {
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
        }
    }
}

impl Isolate for Listener {
    type Args = ListenArgs;

    fn init(args: &ListenArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let addr = args.addr;
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
            poison: args.poison,
            closing_refused: false,
            backoff: Duration::ZERO,
            accept_failures: Burst::default(),
            refusals: Burst::default(),
        };
        let first = me.accept();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Io(IoOp::Close { fd: self.socket });
        }
        // The back-off timer fired, or the tick after a back-off without a timer (RESUMED).
        if msg.tag() == RETRY_ACCEPT.into() || msg.tag() == tina_core::system_tag::RESUMED {
            return self.accept();
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        if ctx.is_shutting_down() {
            return self.on_completion_shutting_down(c);
        }
        match (c.kind, c.result) {
            (IoKind::Accept, Ok(_)) => self.on_accepted(c.fd().unwrap_or(Fd(-1)), ctx),
            (IoKind::Close, _) => {
                self.closing_refused = false;
                self.accept()
            }
            (IoKind::Accept, Err(e)) => self.on_accept_failed(e, ctx),
            _ => self.accept(),
        }
    }
}

/// One client connection: echoes everything back, zero-copy.
pub struct Connection {
    socket: Fd,
    /// Whether the demo's poison trigger is armed.
    poison: bool,
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
                if self.poison
                    && ctx.io_data(buf, 1).ok().and_then(|d| d.first().copied())
                        == Some(POISON_BYTE)
                {
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
                match ctx.start_timer(Duration::from_millis(1), RETRY_RECV) {
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
            poison: args.poison,
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
