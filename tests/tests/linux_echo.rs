//! Echo correctness on loopback, both backends: 200 concurrent connections, random payloads
//! from 1 byte to 64 KiB, every byte echoed in order; and the same echo isolate behind a
//! listener whose sockets have a 4 KiB send buffer while whole payloads of up to 256 KiB
//! arrive in one receive, so the server's sends complete partially and the connection must
//! resend the tail.

mod linux_common;

use std::net::SocketAddr;

use linux_common::*;
use tina_core::io::{Domain, Fd, IoKind, IoOp, SocketKind, SocketOption};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Effect, GroupSpec, Isolate, Message, Restart, ShardConfig,
    ShardSpec, SystemSpec, TypeSpec,
};
use tina_examples::echo::{ConnArgs, Connection};
use tina_linux::Backend;

const THREADS: usize = 8;
const CONNECTIONS_PER_THREAD: usize = 25;
const ROUNDS: usize = 3;
const PAYLOAD_SIZE_MAX: usize = 64 * 1024;

fn echo_many(backend: Backend) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let spec = echo_spec(addr, 2, 512);
    let rt = Running::start(spec, test_config(backend));
    let echoed: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = Rng::new(t as u64 + 1);
                    let mut conns: Vec<_> = (0..CONNECTIONS_PER_THREAD)
                        .map(|k| {
                            let s = connect(addr);
                            if k % 4 == 0 {
                                shrink_receive_buffer(&s, 16 * 1024);
                            }
                            s
                        })
                        .collect();
                    let mut out = vec![0u8; PAYLOAD_SIZE_MAX];
                    let mut back = vec![0u8; PAYLOAD_SIZE_MAX];
                    let mut bytes = 0;
                    for round in 0..ROUNDS {
                        for (k, s) in conns.iter_mut().enumerate() {
                            let len = 1 + (rng.next() as usize % PAYLOAD_SIZE_MAX);
                            rng.fill(&mut out[..len]);
                            echo_once(s, &out[..len], &mut back).unwrap_or_else(|e| {
                                panic!("thread {t} conn {k} round {round} len {len}: {e}")
                            });
                            assert!(
                                out[..len] == back[..len],
                                "thread {t} conn {k} round {round}: bytes differ"
                            );
                            bytes += len;
                        }
                    }
                    bytes
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("client")).sum()
    });
    let report = rt.stop();
    assert!(report.clean, "shutdown was not clean");
    let spawned: u64 = report.stats.iter().map(|s| s.counters.spawns).sum();
    assert!(spawned >= (THREADS * CONNECTIONS_PER_THREAD) as u64);
    let crashes: u64 = report.stats.iter().map(|s| s.counters.crashes).sum();
    assert_eq!(crashes, 0);
    eprintln!(
        "{} echoed {echoed} bytes over {} connections",
        report.backend.name(),
        THREADS * CONNECTIONS_PER_THREAD
    );
}

#[test]
fn echo_200_connections_random_payloads_uring() {
    echo_many(Backend::Uring);
}

#[test]
fn echo_200_connections_random_payloads_epoll() {
    echo_many(Backend::Epoll);
}

/// A listener whose sockets (and so every accepted one) have a 4 KiB send buffer, serving the
/// shared echo `Connection`.
struct TinySendBufferListener {
    socket: Fd,
}

impl Isolate for TinySendBufferListener {
    type Args = u16;

    fn init(port: &u16, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let socket = ctx
            .socket(Domain::Ipv4, SocketKind::Stream)
            .map_err(|_| CrashReason("socket"))?;
        ctx.own_fd(Some(socket));
        ctx.set_option(socket, SocketOption::SendBufferSize(4096))
            .map_err(|_| CrashReason("SO_SNDBUF"))?;
        ctx.bind(socket, SocketAddr::from(([127, 0, 0, 1], *port)))
            .map_err(|_| CrashReason("bind"))?;
        ctx.listen(socket, 128).map_err(|_| CrashReason("listen"))?;
        Ok((
            TinySendBufferListener { socket },
            Effect::Io(IoOp::Accept { listener: socket }),
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Io(IoOp::Close { fd: self.socket });
        }
        if ctx.is_shutting_down() {
            // The pending accept was cancelled: close the listening socket and leave.
            return match msg.io_completion() {
                Some(c) if c.kind == IoKind::Close => Effect::Done,
                _ => Effect::Io(IoOp::Close { fd: self.socket }),
            };
        }
        match msg.io_completion() {
            Some(c) if c.kind == IoKind::Accept => {
                if let Some(fd) = c.fd() {
                    ctx.spawn::<Connection>(&ConnArgs::new(fd.0))
                        .expect("room for the connection");
                }
                Effect::Io(IoOp::Accept {
                    listener: self.socket,
                })
            }
            Some(c) if c.kind == IoKind::Close => Effect::Done,
            _ => Effect::Receive,
        }
    }
}

fn echo_with_partial_sends(backend: Backend) {
    const CONNECTIONS: usize = 8;
    const BIG_PAYLOAD_SIZE_MAX: usize = 256 * 1024;
    let port = free_port();
    let types: &'static [TypeSpec] = Box::leak(Box::new([
        TypeSpec::of::<TinySendBufferListener>("listener"),
        TypeSpec::of::<Connection>("connection").capacity(CONNECTIONS as u32),
    ]));
    let children: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<TinySendBufferListener>(
            &port,
            Restart::Permanent,
        )]));
    let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([ShardSpec {
        root: GroupSpec::one_for_one(children).dynamic(CONNECTIONS as u32),
    }]));
    let mut spec = SystemSpec::new(shards, types);
    // Big buffers: one receive can take a whole payload, which then cannot go out in one
    // send through a 4 KiB send buffer.
    spec.shard = ShardConfig {
        io_buffer_count: CONNECTIONS as u32 + 16,
        io_buffer_size: BIG_PAYLOAD_SIZE_MAX as u32,
        io_submissions_per_tick_max: CONNECTIONS as u32 + 16,
        ..ShardConfig::DEFAULT
    };
    let spec: &'static SystemSpec<'static> = Box::leak(Box::new(spec));
    let rt = Running::start(spec, test_config(backend));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    std::thread::scope(|scope| {
        for t in 0..CONNECTIONS as u64 {
            scope.spawn(move || {
                let mut rng = Rng::new(1000 + t);
                let mut s = connect(addr);
                for _ in 0..3 {
                    let len =
                        BIG_PAYLOAD_SIZE_MAX / 2 + rng.next() as usize % (BIG_PAYLOAD_SIZE_MAX / 2);
                    let mut out = vec![0u8; len];
                    rng.fill(&mut out);
                    // Write and read at once (full duplex), so neither side waits on the other.
                    let mut writer = s.try_clone().expect("clone");
                    let sent = out.clone();
                    let w = std::thread::spawn(move || {
                        std::io::Write::write_all(&mut writer, &sent).expect("write")
                    });
                    let mut back = vec![0u8; len];
                    std::io::Read::read_exact(&mut s, &mut back).expect("read the echo");
                    w.join().expect("writer");
                    assert!(out == back, "bytes differ");
                }
            });
        }
    });
    let stats = rt.control.stats();
    assert_eq!(stats[0].counters.crashes, 0);
    assert!(rt.stop().clean);
}

#[test]
fn echo_with_partial_sends_uring() {
    echo_with_partial_sends(Backend::Uring);
}

#[test]
fn echo_with_partial_sends_epoll() {
    echo_with_partial_sends(Backend::Epoll);
}
