//! The simulated platform end to end with small isolates: UDP datagrams and files carry
//! real bytes, panics are trapped, and each outcome maps to its exit code.

use tina_core::io::{Domain, Fd, IoKind, IoOp, OpenFlags, SocketKind};
use tina_core::*;
use tina_sim::{FaultConfig, FaultKind, FaultMode, Outcome, Ratio, Scenario, SimConfig, SimView};

use core::net::SocketAddr;

const PORT_ADDR: &str = "192.0.2.50:9000";

/// Shard 0: receives one datagram and appends it to a file. Shard 1: sends it.
struct Udp {
    socket: Fd,
    received: Vec<u8>,
    file: Fd,
}

impl Isolate for Udp {
    type Args = u8;
    fn init(shard: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let socket = ctx
            .socket(Domain::Ipv4, SocketKind::Datagram)
            .map_err(|_| CrashReason("socket"))?;
        ctx.own_fd(Some(socket));
        let me = Udp {
            socket,
            received: Vec::new(),
            file: Fd(-1),
        };
        if *shard == 0 {
            ctx.bind(socket, PORT_ADDR.parse().unwrap())
                .map_err(|_| CrashReason("bind"))?;
            return Ok((me, Effect::Io(IoOp::RecvFrom { socket, len: 512 })));
        }
        let buf = ctx.io_buffer().map_err(|_| CrashReason("buffer"))?;
        ctx.io_buffer_mut(buf).unwrap()[..5].copy_from_slice(b"hello");
        let addr: SocketAddr = PORT_ADDR.parse().unwrap();
        Ok((
            me,
            Effect::Io(IoOp::SendTo {
                socket,
                addr,
                buf,
                len: 5,
            }),
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        match (c.kind, c.result) {
            (IoKind::RecvFrom, Ok(n)) => {
                self.received = ctx.io_data(c.buf.unwrap(), n as usize).unwrap().to_vec();
                let path = ctx.io_buffer().unwrap();
                ctx.io_buffer_mut(path).unwrap()[..4].copy_from_slice(b"dump");
                let flags = OpenFlags {
                    write: true,
                    create: true,
                    append: true,
                    ..Default::default()
                };
                Effect::Io(IoOp::Open {
                    path,
                    path_len: 4,
                    flags,
                    mode: 0o600,
                })
            }
            (IoKind::Open, Ok(_)) => {
                self.file = c.fd().unwrap();
                let buf = ctx.io_buffer().unwrap();
                let n = self.received.len();
                ctx.io_buffer_mut(buf).unwrap()[..n].copy_from_slice(&self.received);
                Effect::Io(IoOp::Write {
                    file: self.file,
                    offset: 0,
                    buf,
                    len: n as u32,
                })
            }
            (IoKind::Write, Ok(_)) => Effect::Io(IoOp::Close { fd: self.file }),
            (IoKind::SendTo, Ok(_)) => Effect::Io(IoOp::Close { fd: self.socket }),
            _ => Effect::Receive,
        }
    }
}

struct FileHasHello;
impl Scenario for FileHasHello {
    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        view.file(0, "dump") == Some(&b"hello"[..])
    }
}

fn two_shards<T: Isolate<Args = u8>>(run: impl FnOnce(&SystemSpec<'_>)) {
    let types = [TypeSpec::of::<T>("t")];
    let c0 = [ChildSpec::isolate::<T>(&0u8, Restart::Temporary)];
    let c1 = [ChildSpec::isolate::<T>(&1u8, Restart::Temporary)];
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
    spec.shard.io_buffer_size = 512;
    run(&spec);
}

#[test]
fn sim_udp_datagram_lands_in_a_file_with_real_bytes() {
    two_shards::<Udp>(|spec| {
        let mut config = SimConfig::new(1);
        config.ticks = 100;
        let report = tina_sim::run(spec, &config, &mut FileHasHello);
        assert_eq!(report.outcome, Outcome::Pass, "{:?}", report.log_tail);
        // The final shutdown (forced: these isolates ignore it) leaves nothing behind.
        assert_eq!(report.shutdown.as_deref(), Some("clean"));
    });
}

/// Panics when its timer fires, the first time only (the restarted one sees `now` past it).
struct Panicky;
impl Isolate for Panicky {
    type Args = u8;
    fn init(_: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        if ctx.now().ticks() < 3 {
            let _ = ctx.start_timer(Duration::from_millis(5), UserTag::new(0x41));
        }
        Ok((Panicky, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        panic!("boom");
    }
}

struct CountsPanics;
impl Scenario for CountsPanics {
    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        view.quiescent() && view.counters_total().panics == 2
    }
}

#[test]
fn sim_handler_panic_is_trapped_and_supervised() {
    let types = [TypeSpec::of::<Panicky>("p")];
    let c = [ChildSpec::isolate::<Panicky>(&0u8, Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }; 2];
    let spec = SystemSpec::new(&shards, &types);
    let report = tina_sim::run(&spec, &SimConfig::new(5), &mut CountsPanics);
    assert_eq!(report.outcome, Outcome::Pass, "{:?}", report.counters);
    assert!(
        report
            .counters
            .iter()
            .all(|c| c.panics == 1 && c.restarts == 1)
    );
}

struct Verdict(u8);
impl Scenario for Verdict {
    fn check(&mut self, _: &SimView<'_, '_>) -> Result<(), String> {
        match self.0 {
            1 => Err("broken on purpose".into()),
            2 => panic!("a bug in the checker"),
            _ => Ok(()),
        }
    }
    fn goal(&mut self, _: &SimView<'_, '_>) -> bool {
        self.0 != 3
    }
}

#[test]
fn sim_outcomes_map_to_exit_codes() {
    two_shards::<Panicky>(|spec| {
        let mut config = SimConfig::new(2);
        config.ticks = 50;
        config.liveness_ticks = 50;
        let code = |v| {
            tina_sim::run(spec, &config, &mut Verdict(v))
                .outcome
                .exit_code()
        };
        assert_eq!(code(0), 0);
        assert_eq!(code(1), 129);
        assert_eq!(code(2), 127);
        assert_eq!(code(3), 128);
    });
}

#[test]
fn sim_every_injected_fault_is_counted_and_deterministic() {
    let faults = FaultConfig::NONE
        .with(FaultKind::IsolateCrash, Ratio::new(1, 3))
        .with(FaultKind::NetDrop, Ratio::new(1, 2));
    two_shards::<Udp>(|spec| {
        let mut config = SimConfig::new(11);
        config.faults = FaultMode::Custom(faults);
        config.ticks = 200;
        config.liveness_ticks = 50;
        let a = tina_sim::run(spec, &config, &mut FileHasHello);
        let b = tina_sim::run(spec, &config, &mut FileHasHello);
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.injected, b.injected);
        assert_eq!(a.faults, faults);
    });
}

#[test]
fn sim_event_logs_compare_equal_for_a_seed_and_differ_across_seeds() {
    two_shards::<Udp>(|spec| {
        let run = |seed| {
            let mut config = SimConfig::new(seed);
            config.ticks = 50;
            config.record_events = true;
            config.faults = FaultMode::Swarm;
            tina_sim::run(spec, &config, &mut FileHasHello)
        };
        let (a, b, c) = (run(3), run(3), run(4));
        let (la, lb, lc) = (
            a.event_log.unwrap(),
            b.event_log.unwrap(),
            c.event_log.unwrap(),
        );
        assert!(!la.is_empty());
        assert_eq!(tina_sim::first_difference(&la, &lb), None);
        let (i, x, y) = tina_sim::first_difference(&la, &lc).expect("seeds differ");
        assert_ne!(x, y, "event {i}");
    });
}
