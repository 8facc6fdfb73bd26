//! Several I/O operations in flight per isolate in the simulator, under I/O delays, short
//! transfers and reordered completions: a client with a receive pending on its socket gets
//! a mailbox message (a timer) and sends on the same socket before the receive completes
//! (the server writes only after it has read that send); then a second receive is
//! cancelled. The client reports `K` (everything in order) or `F` as one byte to the server.

use tina_core::io::{Domain, Fd, IoBuf, IoCompletion, IoError, IoKind, IoOp, IoTicket, SocketKind};
use tina_core::*;
use tina_sim::{FaultConfig, FaultKind, FaultMode, Outcome, Ratio, Scenario, SimConfig, SimView};

use core::net::SocketAddr;

const SERVER_ADDR: &str = "192.0.2.50:9000";
const TICK: UserTag = UserTag::new(0x70);

/// Sends `bytes[from..]` from `buf` (a held buffer whose start holds `bytes[from..]`
/// after the copy).
fn send_tail(ctx: &mut Ctx, buf: IoBuf, bytes: &[u8], from: usize, socket: Fd) -> IoOp {
    let tail = &bytes[from..];
    ctx.io_buffer_mut(buf).unwrap()[..tail.len()].copy_from_slice(tail);
    IoOp::Send {
        socket,
        buf,
        len: tail.len() as u32,
    }
}

/// Shard 0: accepts one connection, reads `hello`, then writes `world`, then reads the
/// client's status byte.
struct Server {
    conn: Fd,
    got: Vec<u8>,
    sent: usize,
    status: Option<u8>,
}

impl Server {
    fn recv(&self) -> Effect {
        Effect::Io(IoOp::Recv {
            socket: self.conn,
            len: 16,
        })
    }
}

impl Isolate for Server {
    type Args = u8;
    fn init(_: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let listener = ctx
            .socket(Domain::Ipv4, SocketKind::Stream)
            .map_err(|_| CrashReason("socket"))?;
        ctx.own_fd(Some(listener));
        ctx.bind(listener, SERVER_ADDR.parse().unwrap())
            .map_err(|_| CrashReason("bind"))?;
        ctx.listen(listener, 4).map_err(|_| CrashReason("listen"))?;
        let me = Server {
            conn: Fd(-1),
            got: Vec::new(),
            sent: 0,
            status: None,
        };
        Ok((me, Effect::Io(IoOp::Accept { listener })))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        match (c.kind, c.result) {
            (IoKind::Accept, Ok(_)) => {
                self.conn = c.fd().unwrap();
                ctx.own_fd(Some(self.conn));
                self.recv()
            }
            (IoKind::Recv, Ok(n)) if n > 0 => {
                let data = ctx.io_data(c.buf.unwrap(), n as usize).unwrap().to_vec();
                if self.sent == 5 {
                    self.status = Some(data[0]);
                    return Effect::Io(IoOp::Close { fd: self.conn });
                }
                self.got.extend_from_slice(&data);
                if self.got.len() < 5 {
                    return self.recv();
                }
                let op = send_tail(ctx, c.buf.unwrap(), b"world", 0, self.conn);
                Effect::Io(op)
            }
            (IoKind::Send, Ok(n)) => {
                self.sent += n as usize;
                if self.sent < 5 {
                    return Effect::Io(send_tail(
                        ctx,
                        c.buf.unwrap(),
                        b"world",
                        self.sent,
                        self.conn,
                    ));
                }
                self.recv()
            }
            // Stays, holding the status for the scenario (the listener closes at teardown).
            (IoKind::Close, _) => Effect::Receive,
            _ => Effect::Done,
        }
    }
}

/// Shard 1: the client with a receive and a send in flight at once.
struct Duplex {
    fd: Fd,
    recv: Option<IoTicket>,
    send: Option<IoTicket>,
    cancelled: Option<IoTicket>,
    got: Vec<u8>,
    sent: usize,
    /// `r` receive submitted, `m` mail while it was pending, `s` send submitted, `S` send
    /// done, `R` the peer's bytes received, `c` second receive cancelled, `C` its
    /// completion came as cancelled; `x` anything unexpected.
    log: Vec<u8>,
}

impl Duplex {
    fn status(&self) -> u8 {
        let without_s: Vec<u8> = self.log.iter().copied().filter(|&b| b != b'S').collect();
        let pos = |b: u8| self.log.iter().position(|&x| x == b);
        if without_s == b"rmsRcC" && pos(b'S') > pos(b's') && self.log.len() == 7 {
            b'K'
        } else {
            b'F'
        }
    }

    fn all_done(&self) -> bool {
        self.log.contains(&b'S') && self.log.contains(&b'C')
    }

    fn next(&mut self, ctx: &mut Ctx) -> Effect {
        if !self.all_done() {
            return Effect::Receive;
        }
        let buf = ctx.io_buffer().unwrap();
        ctx.io_buffer_mut(buf).unwrap()[0] = self.status();
        Effect::Io(IoOp::Send {
            socket: self.fd,
            buf,
            len: 1,
        })
    }

    fn submit_recv(&mut self, ctx: &mut Ctx) -> Option<IoTicket> {
        ctx.submit(IoOp::Recv {
            socket: self.fd,
            len: 16,
        })
        .ok()
    }

    fn on_send(&mut self, c: IoCompletion, ctx: &mut Ctx) -> Effect {
        let Ok(n) = c.result else {
            self.log.push(b'x');
            return self.next(ctx);
        };
        self.sent += n as usize;
        if self.sent < 5 {
            let op = send_tail(ctx, c.buf.unwrap(), b"hello", self.sent, self.fd);
            self.send = ctx.submit(op).ok();
            return Effect::Receive;
        }
        self.log.push(b'S');
        self.next(ctx)
    }

    fn on_recv(&mut self, c: IoCompletion, ctx: &mut Ctx) -> Effect {
        match (c.result, c.buf) {
            (Ok(n), Some(b)) if n > 0 => {
                self.got
                    .extend_from_slice(ctx.io_data(b, n as usize).unwrap());
            }
            _ => {
                self.log.push(b'x');
                return self.next(ctx);
            }
        }
        if self.got.len() < 5 {
            self.recv = self.submit_recv(ctx);
            return Effect::Receive;
        }
        self.log
            .push(if self.got == b"world" { b'R' } else { b'x' });
        self.cancelled = self.submit_recv(ctx);
        if let Some(t) = self.cancelled
            && ctx.cancel(t).is_ok()
        {
            self.log.push(b'c');
        }
        Effect::Receive
    }
}

impl Isolate for Duplex {
    type Args = u8;
    fn init(_: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let fd = ctx
            .socket(Domain::Ipv4, SocketKind::Stream)
            .map_err(|_| CrashReason("socket"))?;
        ctx.own_fd(Some(fd));
        let addr: SocketAddr = SERVER_ADDR.parse().unwrap();
        let me = Duplex {
            fd,
            recv: None,
            send: None,
            cancelled: None,
            got: Vec::new(),
            sent: 0,
            log: Vec::new(),
        };
        Ok((me, Effect::Io(IoOp::Connect { socket: fd, addr })))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag() == TICK.into() {
            self.log.push(b'm');
            let buf = ctx.io_buffer().unwrap();
            let op = send_tail(ctx, buf, b"hello", 0, self.fd);
            self.send = ctx.submit(op).ok();
            if self.send.is_some() {
                self.log.push(b's');
            }
            return Effect::Receive;
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        match c.kind {
            IoKind::Connect if c.result.is_ok() => {
                self.recv = self.submit_recv(ctx);
                self.log.push(if self.recv.is_some() { b'r' } else { b'x' });
                let _ = ctx.start_timer(Duration::from_millis(1), TICK);
                Effect::Receive
            }
            IoKind::Connect => Effect::Io(IoOp::Connect {
                socket: self.fd,
                addr: SERVER_ADDR.parse().unwrap(),
            }),
            IoKind::Send if Some(c.ticket) == self.send => self.on_send(c, ctx),
            IoKind::Recv if Some(c.ticket) == self.recv => self.on_recv(c, ctx),
            IoKind::Recv if Some(c.ticket) == self.cancelled => {
                let ok = c.result == Err(IoError::Canceled);
                self.log.push(if ok { b'C' } else { b'x' });
                self.next(ctx)
            }
            IoKind::Send if c.ticket.is_parked() => Effect::Io(IoOp::Close { fd: self.fd }),
            _ => Effect::Done,
        }
    }
}

struct ServerGotK;
impl Scenario for ServerGotK {
    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        view.isolates::<Server>()
            .iter()
            .any(|(_, s)| s.status == Some(b'K'))
    }
    fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
        match view
            .isolates::<Server>()
            .first()
            .and_then(|(_, s)| s.status)
        {
            Some(b'F') => Err("the client saw its operations out of order".into()),
            _ => Ok(()),
        }
    }
}

#[test]
fn sim_a_pending_receive_does_not_stop_mail_or_a_send_under_io_faults() {
    let types = [
        TypeSpec::of::<Server>("server"),
        TypeSpec::of::<Duplex>("duplex").io_in_flight_max(3),
    ];
    let c0 = [ChildSpec::isolate::<Server>(&0u8, Restart::Temporary)];
    let c1 = [ChildSpec::isolate::<Duplex>(&1u8, Restart::Temporary)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&c0),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&c1),
        },
    ];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard.io_buffer_count = 8;
    spec.shard.io_buffer_size = 64;
    let faults = FaultConfig::NONE
        .with(FaultKind::IoDelay, Ratio::new(1, 3))
        .with(FaultKind::IoShort, Ratio::new(1, 3))
        .with(FaultKind::IoReorder, Ratio::new(1, 2))
        .with(FaultKind::NetDelay, Ratio::new(1, 4));
    let mut hashes = std::collections::BTreeSet::new();
    let mut injected = [0u64; FaultKind::COUNT];
    for seed in 0..24 {
        let mut config = SimConfig::new(seed);
        config.faults = FaultMode::Custom(faults);
        config.ticks = 400;
        let a = tina_sim::run(&spec, &config, &mut ServerGotK);
        assert_eq!(a.outcome, Outcome::Pass, "seed {seed}: {:?}", a.log_tail);
        let b = tina_sim::run(&spec, &config, &mut ServerGotK);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}: deterministic");
        hashes.insert(a.trace_hash);
        for (t, n) in injected.iter_mut().zip(a.injected) {
            *t += n;
        }
    }
    for kind in [FaultKind::IoShort, FaultKind::IoReorder, FaultKind::IoDelay] {
        assert!(injected[kind.index()] > 0, "{kind:?} was exercised");
    }
    assert!(hashes.len() > 1, "the faults change the runs");
}
