//! The per-core driver loop on host threads: two "cores" exchanging messages through the
//! rings, sleeping when idle and woken by the peer's publish or by a timer deadline.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use tina_baremetal::host::ThreadBoard;
use tina_baremetal::{Board, Exit, Handoff, WireError, core_platform, run, wire};
use tina_core::memory::RegionBlock;
use tina_core::testing::{TestLog, region_for};
use tina_core::transport::ShardLink;
use tina_core::*;

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Ball {
    hits: u64,
}
impl Payload for Ball {
    const TAG: UserTag = UserTag::new(0x40);
}

const TICK: UserTag = UserTag::new(0x41);

/// On core 0: calls the ponger on core 1 `rounds` times, then sets a timer and stops.
struct Pinger {
    rounds: u64,
    done: u64,
    timer_fired_at: Option<u64>,
}

/// The ponger on core 1, reached by name.
const PONGER: Name<Ponger> = Name::new("ponger");
accepts!(Ponger: Ball);

impl Isolate for Pinger {
    type Args = u64;
    fn init(rounds: &u64, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let me = Pinger {
            rounds: *rounds,
            done: 0,
            timer_fired_at: None,
        };
        Ok((me, serve(0, ctx)))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.tag() == TICK.into() {
            self.timer_fired_at = Some(ctx.now().ticks());
            return Effect::Receive;
        }
        let Some(ball) = msg.decode::<Ball>() else {
            return Effect::Receive;
        };
        self.done += 1;
        if self.done == self.rounds {
            // Both cores go idle now; only the timer (20 ms away) can wake this one.
            let _ = ctx.start_timer(Duration::from_millis(20), TICK);
            return Effect::Receive;
        }
        serve(ball.hits, ctx)
    }
}

fn serve(hits: u64, ctx: &Ctx) -> Effect {
    let ponger = ctx.on_shard(PONGER, ShardId(1));
    Effect::call(ponger, &Ball { hits }, Duration::from_millis(5_000))
}

struct Ponger;
impl Isolate for Ponger {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Ponger, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        match msg.decode::<Ball>() {
            Some(b) if msg.is_call() => Effect::Reply(Outgoing::new(&Ball { hits: b.hits + 1 })),
            _ => Effect::Receive,
        }
    }
}

#[test]
fn two_thread_cores_play_ping_pong_sleep_when_idle_and_wake_on_a_timer() {
    let rounds: u64 = if cfg!(miri) { 10 } else { 3_000 };
    let types = [
        TypeSpec::of::<Pinger>("pinger"),
        TypeSpec::of::<Ponger>("ponger"),
    ];
    let core0 = [ChildSpec::isolate::<Pinger>(&rounds, Restart::Temporary)];
    let core1 = [ChildSpec::named(PONGER, &(), Restart::Permanent)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&core0),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&core1),
        },
    ];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.tick_ns = 1_000_000; // 1 ms ticks
    spec.shard.io_buffer_count = 0;
    let spec = &spec;

    let mut ring_memory: [Vec<RegionBlock>; 2] = core::array::from_fn(|c| {
        let bytes = ring_memory_required(spec, ShardId(c as u8)).unwrap();
        vec![RegionBlock::UNINIT; RegionBlock::blocks_for(bytes)]
    });
    let [m0, m1] = &mut ring_memory;
    let [c0, c1] = wire(spec, [RegionBlock::as_bytes(m0), RegionBlock::as_bytes(m1)]).unwrap();
    let handoff = Handoff::new();
    assert!(handoff.put(c1).is_ok());
    let links = [ShardLink::new(), ShardLink::new()];
    let threads: [OnceLock<Thread>; 2] = Default::default();
    let epoch = std::time::Instant::now();
    let stop = AtomicBool::new(false);
    let core1_steps = AtomicU64::new(0);
    let (links, threads, stop, handoff, core1_steps) =
        (&links, &threads, &stop, &handoff, &core1_steps);

    std::thread::scope(|s| {
        s.spawn(move || {
            let board = ThreadBoard::on_this_thread(1, threads, epoch, spec.tick_ns);
            let mut channels = handoff.take().expect("core 1's channels");
            let platform = core_platform(&board, &mut channels, links, TestLog::default());
            let mut mem = region_for(spec, ShardId(1));
            let mut shard = Shard::new(spec, ShardId(1), mem.bytes(), platform).unwrap();
            let exit = run(&board, &mut shard, |_, _| {
                core1_steps.fetch_add(1, Ordering::Relaxed);
                stop.load(Ordering::Acquire)
            });
            assert_eq!(exit, Exit::Done);
        });
        let board = ThreadBoard::on_this_thread(0, threads, epoch, spec.tick_ns);
        let mut channels = c0;
        let platform = core_platform(&board, &mut channels, links, TestLog::default());
        let mut mem = region_for(spec, ShardId(0));
        let mut shard = Shard::new(spec, ShardId(0), mem.bytes(), platform).unwrap();
        let pinger = shard.handles::<Pinger>().next().unwrap();
        let mut steps_after_done = 0u64;
        let exit = run(&board, &mut shard, |shard, _| {
            let p = shard.state::<Pinger>(pinger).unwrap();
            if p.done == p.rounds {
                steps_after_done += 1;
            }
            p.timer_fired_at.is_some()
        });
        assert_eq!(exit, Exit::Done);
        let p = shard.state::<Pinger>(pinger).unwrap();
        assert_eq!(p.done, rounds, "every round trip completed");
        // While waiting ~20 ms for its timer the core slept instead of spinning: a busy loop
        // would take tens of thousands of steps in that time.
        assert!(steps_after_done < 50, "{steps_after_done} steps while idle");
        stop.store(true, Ordering::Release);
        board.send_event(1);
    });
    // Core 1 slept between messages too: it stepped far fewer times than a busy loop would.
    assert!(core1_steps.load(Ordering::Relaxed) < rounds * 20 + 1_000);
}

#[test]
fn a_handoff_gives_its_value_exactly_once() {
    let h = Handoff::new();
    assert!(h.put(1).is_ok());
    assert_eq!(h.put(2), Err(2));
    assert_eq!(h.take(), Some(1));
    assert_eq!(h.take(), None);
}

#[test]
fn wiring_refuses_a_spec_of_another_core_count_and_memory_too_small() {
    let types = [TypeSpec::of::<Ponger>("ponger")];
    let children = [ChildSpec::isolate::<Ponger>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }; 2];
    let spec = SystemSpec::new(&shards, &types);
    let mut blocks = [vec![RegionBlock::UNINIT; 1], vec![RegionBlock::UNINIT; 1]];
    let [m0, m1, m2] = &mut [
        vec![RegionBlock::UNINIT; 1],
        vec![RegionBlock::UNINIT; 1],
        vec![RegionBlock::UNINIT; 1],
    ];
    let three = wire(
        &spec,
        [
            RegionBlock::as_bytes(m0),
            RegionBlock::as_bytes(m1),
            RegionBlock::as_bytes(m2),
        ],
    );
    assert!(
        matches!(
            three,
            Err(WireError::CoreCount {
                cores: 3,
                shards: 2
            })
        ),
        "three cores for two shards"
    );
    let [b0, b1] = &mut blocks;
    let small = wire(
        &spec,
        [RegionBlock::as_bytes(b0), RegionBlock::as_bytes(b1)],
    );
    assert!(
        matches!(small, Err(WireError::Rings(_))),
        "one block holds no ring of the default capacity"
    );
}
