//! The rest of the I/O vocabulary on both backends, driven by one isolate against the test:
//! open (create) → write → read back and compare → socket + connect → sendfile the file to
//! the test over TCP → UDP socket + bind → sendto the test → recvfrom its answer (checking
//! the peer address) → send a status byte → shutdown(write) → close everything.

mod linux_common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration as StdDuration;

use linux_common::*;
use tina_core::io::{
    Domain, Fd, IoBuf, IoCompletion, IoKind, IoOp, OpenFlags, ShutdownHow, SocketKind,
};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec,
};
use tina_linux::Backend;

const FILE_SIZE: usize = 3000;

#[derive(Clone, Copy, Debug)]
struct VocabArgs {
    path: &'static str,
    tcp_port: u16,
    udp_port: u16,
}

fn file_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

struct Vocab {
    args: VocabArgs,
    file: Fd,
    tcp: Fd,
    udp: Fd,
    ok: bool,
    step: u8,
}

impl Vocab {
    fn fail(&mut self, what: &str, c: &IoCompletion) -> Effect {
        eprintln!("vocab: {what} failed: {:?}", c.result);
        self.ok = false;
        Effect::Crash(CrashReason("vocab step failed"))
    }

    fn filled(ctx: &mut Ctx, bytes: &[u8]) -> Option<IoBuf> {
        let buf = ctx.io_buffer().ok()?;
        ctx.io_buffer_mut(buf).ok()?[..bytes.len()].copy_from_slice(bytes);
        Some(buf)
    }
}

impl Isolate for Vocab {
    type Args = VocabArgs;

    fn init(args: &VocabArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let n = args.path.len();
        let path = Vocab::filled(ctx, args.path.as_bytes()).ok_or(CrashReason("no buffer"))?;
        let me = Vocab {
            args: *args,
            file: Fd(-1),
            tcp: Fd(-1),
            udp: Fd(-1),
            ok: true,
            step: 0,
        };
        let flags = OpenFlags {
            read: true,
            write: true,
            create: true,
            truncate: true,
            append: false,
        };
        Ok((
            me,
            Effect::Io(IoOp::Open {
                path,
                path_len: n as u32,
                flags,
                mode: 0o600,
            }),
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        self.step += 1;
        match c.kind {
            IoKind::Open => {
                let Some(fd) = c.fd() else {
                    return self.fail("open", &c);
                };
                self.file = fd;
                let data: Vec<u8> = (0..FILE_SIZE).map(file_byte).collect();
                let Some(buf) = Vocab::filled(ctx, &data) else {
                    return self.fail("buffer", &c);
                };
                Effect::Io(IoOp::Write {
                    file: fd,
                    offset: 0,
                    buf,
                    len: FILE_SIZE as u32,
                })
            }
            IoKind::Write => match c.result {
                Ok(n) if n as usize == FILE_SIZE => Effect::Io(IoOp::Read {
                    file: self.file,
                    offset: 0,
                    len: FILE_SIZE as u32,
                }),
                _ => self.fail("write", &c),
            },
            IoKind::Read => {
                let good = match (c.result, c.buf) {
                    (Ok(n), Some(buf)) if n as usize == FILE_SIZE => ctx
                        .io_data(buf, FILE_SIZE)
                        .is_ok_and(|d| d.iter().enumerate().all(|(i, &b)| b == file_byte(i))),
                    _ => false,
                };
                if !good {
                    return self.fail("read back", &c);
                }
                let Ok(tcp) = ctx.socket(Domain::Ipv4, SocketKind::Stream) else {
                    return self.fail("socket", &c);
                };
                self.tcp = tcp;
                let addr = SocketAddr::from(([127, 0, 0, 1], self.args.tcp_port));
                Effect::Io(IoOp::Connect { socket: tcp, addr })
            }
            IoKind::Connect => {
                if c.result.is_err() {
                    return self.fail("connect", &c);
                }
                Effect::Io(IoOp::SendFile {
                    out: self.tcp,
                    file: self.file,
                    offset: 0,
                    len: FILE_SIZE as u32,
                })
            }
            IoKind::SendFile => {
                if c.result != Ok(FILE_SIZE as u32) {
                    return self.fail("sendfile", &c);
                }
                let Ok(udp) = ctx.socket(Domain::Ipv4, SocketKind::Datagram) else {
                    return self.fail("udp socket", &c);
                };
                self.udp = udp;
                if ctx
                    .bind(udp, SocketAddr::from(([127, 0, 0, 1], 0)))
                    .is_err()
                {
                    return self.fail("bind", &c);
                }
                let Some(buf) = Vocab::filled(ctx, b"ping") else {
                    return self.fail("buffer", &c);
                };
                let addr = SocketAddr::from(([127, 0, 0, 1], self.args.udp_port));
                Effect::Io(IoOp::SendTo {
                    socket: udp,
                    addr,
                    buf,
                    len: 4,
                })
            }
            IoKind::SendTo => {
                if c.result != Ok(4) {
                    return self.fail("sendto", &c);
                }
                Effect::Io(IoOp::RecvFrom {
                    socket: self.udp,
                    len: 64,
                })
            }
            IoKind::RecvFrom => {
                let from_test =
                    c.peer == Some(SocketAddr::from(([127, 0, 0, 1], self.args.udp_port)));
                let pong = match (c.result, c.buf) {
                    (Ok(4), Some(buf)) => ctx.io_data(buf, 4).is_ok_and(|d| d == b"pong"),
                    _ => false,
                };
                self.ok &= from_test && pong;
                let status = if self.ok { b"K" } else { b"F" };
                let Some(buf) = Vocab::filled(ctx, status) else {
                    return self.fail("buffer", &c);
                };
                Effect::Io(IoOp::Send {
                    socket: self.tcp,
                    buf,
                    len: 1,
                })
            }
            IoKind::Send => {
                let _ = ctx.shutdown(self.tcp, ShutdownHow::Write);
                Effect::Io(IoOp::Close { fd: self.tcp })
            }
            IoKind::Close if self.step == 10 => Effect::Io(IoOp::Close { fd: self.udp }),
            IoKind::Close if self.step == 11 => Effect::Io(IoOp::Close { fd: self.file }),
            _ => Effect::Receive,
        }
    }
}

fn vocabulary(backend: Backend) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    // The spec outlives this function (like the type and children lists below).
    let path: &'static str =
        Box::leak(format!("/tmp/tina-vocab-{}-{backend:?}", std::process::id()).into_boxed_str());
    let args = VocabArgs {
        path,
        tcp_port: tcp.local_addr().unwrap().port(),
        udp_port: udp.local_addr().unwrap().port(),
    };
    let types: &'static [TypeSpec] = Box::leak(Box::new([TypeSpec::of::<Vocab>("vocab")]));
    let children: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<Vocab>(
            &args,
            Restart::Temporary,
        )]));
    let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([ShardSpec {
        root: GroupSpec::one_for_one(children),
    }]));
    let spec: &'static SystemSpec<'static> = Box::leak(Box::new(SystemSpec::new(shards, types)));
    let rt = Running::start(spec, test_config(backend));

    let (mut conn, _) = tcp.accept().expect("the isolate connects");
    conn.set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    let mut file = vec![0u8; FILE_SIZE];
    conn.read_exact(&mut file).expect("sendfile bytes");
    assert!(
        file.iter().enumerate().all(|(i, &b)| b == file_byte(i)),
        "{backend:?}: sendfile delivered the file"
    );
    let mut ping = [0u8; 16];
    let (n, from) = udp.recv_from(&mut ping).expect("the isolate's datagram");
    assert_eq!(&ping[..n], b"ping");
    udp.send_to(b"pong", from).unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)
        .expect("status, then EOF from shutdown(write)");
    assert_eq!(
        rest, b"K",
        "{backend:?}: every step of the isolate succeeded"
    );
    let stats = rt.control.stats();
    assert_eq!(stats[0].counters.crashes, 0);
    let report = rt.stop();
    assert!(report.clean);
    let _ = std::fs::remove_file(path);
}

#[test]
fn whole_io_vocabulary_on_both_backends() {
    for backend in BACKENDS {
        vocabulary(backend);
    }
}
