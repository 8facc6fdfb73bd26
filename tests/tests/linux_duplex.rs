//! Several I/O operations in flight per isolate on both backends: an isolate with a receive
//! pending on its socket gets a mailbox message (a timer) and sends on the same socket
//! before the receive completes; the peer only writes after it has read that send, so the
//! receive is pending all along. Then a second receive is cancelled. The isolate reports
//! `K` (everything in order) or `F` as its last byte, then closes.

mod linux_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration as StdDuration;

use linux_common::*;
use tina_core::io::{Domain, Fd, IoError, IoKind, IoOp, IoTicket, SocketKind};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec, UserTag,
};
use tina_linux::Backend;

const TICK: UserTag = UserTag::new(0x70);

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct DuplexArgs {
    port: u16,
}

struct Duplex {
    fd: Fd,
    recv: Option<IoTicket>,
    send: Option<IoTicket>,
    cancelled: Option<IoTicket>,
    /// What happened, in order: `r` receive submitted, `m` mail while it was pending,
    /// `s` send submitted, `S` send completed, `R` receive completed with the peer's
    /// bytes, `c` second receive cancelled, `C` its completion came as cancelled.
    log: Vec<u8>,
}

impl Duplex {
    /// `K` if the log is `r m s R c C` in that order with `S` somewhere after `s` (the
    /// send's completion may come before or after the receive's), else `F`.
    fn status(&self) -> u8 {
        let without_s: Vec<u8> = self.log.iter().copied().filter(|&b| b != b'S').collect();
        let pos = |b: u8| self.log.iter().position(|&x| x == b);
        let in_order = without_s == b"rmsRcC" && pos(b'S') > pos(b's');
        if in_order && self.log.len() == 7 {
            b'K'
        } else {
            b'F'
        }
    }

    /// Whether both the send and the cancelled receive are done.
    fn all_done(&self) -> bool {
        self.log.contains(&b'S') && self.log.contains(&b'C')
    }

    fn finish(&mut self, ctx: &mut Ctx) -> Effect {
        let status = self.status();
        if status != b'K' {
            eprintln!("duplex: log {:?}", String::from_utf8_lossy(&self.log));
        }
        match ctx.io_buffer() {
            Ok(buf) => {
                ctx.io_buffer_mut(buf).unwrap()[0] = status;
                Effect::Io(IoOp::Send {
                    socket: self.fd,
                    buf,
                    len: 1,
                })
            }
            Err(_) => Effect::Crash(CrashReason("no buffer")),
        }
    }

    fn on_completion(&mut self, c: tina_core::io::IoCompletion, ctx: &mut Ctx) -> Effect {
        match c.kind {
            IoKind::Connect => {
                self.recv = ctx
                    .submit(IoOp::Recv {
                        socket: self.fd,
                        len: 64,
                    })
                    .ok();
                self.log.push(b'r');
                let _ = ctx.start_timer(Duration::from_millis(1), TICK);
                Effect::Receive
            }
            IoKind::Send if Some(c.ticket) == self.send => {
                self.log.push(if c.result == Ok(5) { b'S' } else { b'x' });
                if self.all_done() {
                    return self.finish(ctx);
                }
                Effect::Receive
            }
            IoKind::Recv if Some(c.ticket) == self.cancelled => {
                let ok = c.result == Err(IoError::Canceled);
                self.log.push(if ok { b'C' } else { b'x' });
                if self.all_done() {
                    return self.finish(ctx);
                }
                Effect::Receive
            }
            IoKind::Recv if Some(c.ticket) == self.recv => {
                let got = match (c.result, c.buf) {
                    (Ok(n), Some(b)) => ctx.io_data(b, n as usize).unwrap_or(&[]).to_vec(),
                    _ => Vec::new(),
                };
                self.log.push(if got == b"world" { b'R' } else { b'x' });
                // A second receive, cancelled at once: its completion still comes, once.
                match ctx.submit(IoOp::Recv {
                    socket: self.fd,
                    len: 64,
                }) {
                    Ok(t) => {
                        self.cancelled = Some(t);
                        if ctx.cancel(t).is_ok() {
                            self.log.push(b'c');
                        }
                    }
                    Err(_) => self.log.push(b'x'),
                }
                Effect::Receive
            }
            // The status byte went out (parked): close.
            IoKind::Send if c.ticket.is_parked() => Effect::Io(IoOp::Close { fd: self.fd }),
            _ => Effect::Done,
        }
    }
}

impl Isolate for Duplex {
    type Args = DuplexArgs;

    fn init(args: &DuplexArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let fd = ctx
            .socket(Domain::Ipv4, SocketKind::Stream)
            .map_err(|_| CrashReason("socket"))?;
        ctx.own_fd(Some(fd));
        let addr: SocketAddr = ([127, 0, 0, 1], args.port).into();
        let me = Duplex {
            fd,
            recv: None,
            send: None,
            cancelled: None,
            log: Vec::new(),
        };
        Ok((me, Effect::Io(IoOp::Connect { socket: fd, addr })))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if let Some(c) = msg.io_completion() {
            return self.on_completion(c, ctx);
        }
        if msg.tag() == TICK.into() {
            // Mail while the receive is pending: send on the same socket.
            self.log.push(b'm');
            let Ok(buf) = ctx.io_buffer() else {
                return Effect::Crash(CrashReason("no buffer"));
            };
            ctx.io_buffer_mut(buf).unwrap()[..5].copy_from_slice(b"hello");
            self.send = ctx
                .submit(IoOp::Send {
                    socket: self.fd,
                    buf,
                    len: 5,
                })
                .ok();
            if self.send.is_some() {
                self.log.push(b's');
            }
        }
        Effect::Receive
    }
}

fn duplex(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = DuplexArgs {
        port: listener.local_addr().unwrap().port(),
    };
    let types: &'static [TypeSpec] = Box::leak(Box::new([
        TypeSpec::of::<Duplex>("duplex").io_in_flight_max(3)
    ]));
    let children: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<Duplex>(
            &args,
            Restart::Temporary,
        )]));
    let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([ShardSpec {
        root: GroupSpec::one_for_one(children),
    }]));
    let spec: &'static SystemSpec<'static> = Box::leak(Box::new(SystemSpec::new(shards, types)));
    let rt = Running::start(spec, test_config(backend));

    let (mut conn, _) = listener.accept().expect("the isolate connects");
    conn.set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    let mut hello = [0u8; 5];
    conn.read_exact(&mut hello)
        .expect("the isolate sends while its receive is pending");
    assert_eq!(&hello, b"hello");
    conn.write_all(b"world").unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("status, then EOF");
    assert_eq!(rest, b"K", "{backend:?}: everything happened in order");
    let report = rt.stop();
    assert!(report.clean);
}

#[test]
fn a_pending_receive_does_not_stop_mail_or_a_send_on_both_backends() {
    for backend in BACKENDS {
        duplex(backend);
    }
}
