//! An idle runtime sleeps: under 2% of a core over seconds (from /proc/self/stat), its threads
//! do not wake periodically (context switches from /proc/self/task), and it still
//! wakes for a timer (shard 0 sleeps until its deadline) and for a cross-shard message (shard
//! 1 sleeps with no deadline at all until shard 0's ring publish rings its eventfd). Both
//! backends, one after the other (the CPU reading covers the whole process).

mod linux_common;

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use linux_common::*;
use tina_core::io::{Domain, Fd, IoKind, IoOp, SocketKind};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Name, Payload,
    Restart, ShardId, ShardSpec, SystemSpec, TypeSpec, UserTag, accepts,
};
use tina_linux::Backend;

/// How long shard 0's timer waits (1 tick = 1 ms).
const WAKE_AFTER_TICKS: u32 = 3_000;
const FIRE: UserTag = UserTag::new(0x41);

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Ping {
    n: u32,
}

impl Payload for Ping {
    const TAG: UserTag = UserTag::new(0x42);
}

#[derive(Clone, Copy, Debug)]
struct WakeArgs {
    port: u16,
    after_ticks: u32,
}

/// Shard 0: sleeps until its timer, then pings the reporter on shard 1.
struct Timekeeper;

impl Isolate for Timekeeper {
    type Args = WakeArgs;

    fn init(args: &WakeArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(u64::from(args.after_ticks)), FIRE)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((Timekeeper, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.tag() == FIRE.into() {
            let reporter = ctx.on_shard(REPORTER, ShardId(1));
            ctx.send(reporter, &Ping { n: 1 })
                .expect("cross-shard send");
        }
        if msg.is_shutdown() {
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Shard 1: on a ping, connects to the test's listener (that is how the test sees the wake).
/// Reached by name from shard 0.
const REPORTER: Name<Reporter> = Name::new("reporter");
accepts!(Reporter: Ping);

struct Reporter {
    port: u16,
    socket: Fd,
}

impl Isolate for Reporter {
    type Args = WakeArgs;

    fn init(args: &WakeArgs, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((
            Reporter {
                port: args.port,
                socket: Fd(-1),
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.decode::<Ping>().is_some() {
            let Ok(socket) = ctx.socket(Domain::Ipv4, SocketKind::Stream) else {
                return Effect::Crash(CrashReason("socket"));
            };
            ctx.own_fd(Some(socket));
            self.socket = socket;
            let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
            return Effect::Io(IoOp::Connect { socket, addr });
        }
        match msg.io_completion().map(|c| c.kind) {
            Some(IoKind::Connect) => Effect::Io(IoOp::Close { fd: self.socket }),
            _ => Effect::Receive,
        }
    }
}

fn idle_then_wake(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let args = WakeArgs {
        port,
        after_ticks: WAKE_AFTER_TICKS,
    };
    let types: &'static [TypeSpec] = Box::leak(Box::new([
        TypeSpec::of::<Timekeeper>("timekeeper"),
        TypeSpec::of::<Reporter>("reporter"),
    ]));
    let c0: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<Timekeeper>(
            &args,
            Restart::Permanent,
        )]));
    let c1: &'static [ChildSpec<'static>] = Box::leak(Box::new([ChildSpec::named(
        REPORTER,
        &args,
        Restart::Permanent,
    )]));
    let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([
        ShardSpec {
            root: GroupSpec::one_for_one(c0),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(c1),
        },
    ]));
    let spec: &'static SystemSpec<'static> = Box::leak(Box::new(SystemSpec::new(shards, types)));

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|_| StdInstant::now()));
    });
    let rt = Running::start(spec, test_config(backend));
    let booted = StdInstant::now();
    let cpu_before = process_cpu_ticks();
    let switches_before = runtime_thread_switches();
    let woke = rx
        .recv_timeout(StdDuration::from_secs(15))
        .expect("the reporter connected within 15 s")
        .expect("accept");
    let cpu_after = process_cpu_ticks();
    let switches = runtime_thread_switches() - switches_before;
    let idle = woke.duration_since(booted);
    let stats = rt.control.stats();
    let report = rt.stop();
    assert!(report.clean);

    let used = cpu_after - cpu_before;
    let budget = idle.as_secs_f64() * clock_ticks_per_second() as f64 * 0.02;
    eprintln!(
        "{}: idle {:.2} s, CPU {used} ticks (budget {budget:.1}), {switches} thread switches; shard ticks {} / {}, sleeps {} / {}",
        backend_name(backend),
        idle.as_secs_f64(),
        stats[0].ticks,
        stats[1].ticks,
        stats[0].sleeps,
        stats[1].sleeps,
    );
    assert!(
        idle >= StdDuration::from_millis(u64::from(WAKE_AFTER_TICKS) - 500),
        "woke too early ({idle:?}): the timer did not hold"
    );
    assert!(
        idle <= StdDuration::from_millis(u64::from(WAKE_AFTER_TICKS) + 1_500),
        "woke too late ({idle:?}): the timer or the cross-shard wake was missed"
    );
    assert!(
        (used as f64) < budget.max(1.0),
        "an idle runtime used {used} CPU ticks over {idle:?} (over 2% of a core)"
    );
    // Sleeping, not polling: a handful of ticks per shard over seconds.
    assert!(stats[0].ticks < 100 && stats[1].ticks < 100, "{stats:?}");
    // No thread of the runtime wakes periodically: over the idle seconds the only wake-ups
    // are the timer, the cross-shard message, the watchdog they unpark, and the last boot
    // ticks (a 100 ms poll anywhere would alone be 30).
    assert!(
        switches <= 12,
        "the runtime's threads were switched out {switches} times over {idle:?} of idleness"
    );
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Epoll => "epoll",
        _ => "io_uring",
    }
}

#[test]
fn idle_runtime_sleeps_and_wakes_for_timer_and_cross_shard_message() {
    for backend in BACKENDS {
        idle_then_wake(backend);
    }
}
