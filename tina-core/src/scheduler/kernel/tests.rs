//! Kernel tests that need states no public call reaches quickly (a slot at the end of its
//! generations).

use crate::error::{SendError, SpawnError};
use crate::memory::args::InitArgs;
use crate::model::effect::{CrashReason, Effect};
use crate::model::handle::{GENERATION_MAX, Handle, ShardId};
use crate::model::isolate::Isolate;
use crate::model::message::{Message, Outgoing, Payload, UserTag};
use crate::model::time::Instant;
use crate::scheduler::ctx::Ctx;
use crate::scheduler::shard::Shard;
use crate::spec::{ChildSpec, GroupSpec, Restart, ShardSpec, SystemSpec, TypeSpec};
use crate::testing::{TestPlatform, region_for};

/// Asks the spawner for a new worker, or a worker to exit.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Go {
    n: u32,
}

impl Payload for Go {
    const TAG: UserTag = UserTag::new(0x40);
}

/// Spawns a `Worker` for every message.
struct Spawner;

impl Isolate for Spawner {
    type Args = ();
    fn init(_: &(), _: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        Ok((Spawner, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        match ctx.spawn::<Worker>(&()) {
            Ok(_) => Effect::Receive,
            Err(_) => Effect::Crash(CrashReason("worker spawn failed")),
        }
    }
}

/// Exits at its first message.
struct Worker;

impl Isolate for Worker {
    type Args = ();
    fn init(_: &(), _: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        Ok((Worker, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx<'_, '_>) -> Effect {
        Effect::Done
    }
}

/// Spawns one worker through the spawner and returns its handle.
fn spawn_worker(shard: &mut Shard<'_, TestPlatform>, spawner: Handle, now: &mut u64) -> Handle {
    shard
        .deliver(spawner, &Outgoing::new(&Go { n: 0 }))
        .unwrap();
    *now += 1;
    shard.step(Instant::from_ticks(*now));
    let mut workers = shard.handles::<Worker>();
    let worker = workers.next().expect("a live worker");
    assert!(workers.next().is_none(), "one worker at a time");
    worker
}

/// Makes the worker exit, freeing its slot.
fn stop_worker(shard: &mut Shard<'_, TestPlatform>, worker: Handle, now: &mut u64) {
    shard.deliver(worker, &Outgoing::new(&Go { n: 1 })).unwrap();
    *now += 1;
    shard.step(Instant::from_ticks(*now));
    assert!(!shard.is_live(worker));
}

const TYPES: [TypeSpec; 2] = [
    TypeSpec::of::<Spawner>("spawner"),
    TypeSpec::of::<Worker>("worker"),
];
const CHILDREN: [ChildSpec<'static>; 1] = [ChildSpec::isolate::<Spawner>(&(), Restart::Permanent)];
static SHARDS: [ShardSpec<'static>; 1] = [ShardSpec {
    root: GroupSpec::one_for_one(&CHILDREN).dynamic(1),
}];
/// A spawner (static) and room for one dynamic worker, of capacity 1.
static SPEC: SystemSpec<'static> = SystemSpec::new(&SHARDS, &TYPES);

#[test]
fn init_with_args_of_another_type_fails_and_reads_nothing() {
    let spec = &SPEC;
    let mut memory = region_for(spec, ShardId(0));
    let mut shard = Shard::new(spec, ShardId(0), memory.bytes(), TestPlatform::default()).unwrap();
    let worker_ty = spec.type_id_of::<Worker>().unwrap();
    let before = shard.counters();
    // The worker's Args is `()`; a `(u8, u64)` (with padding) must never reach its init.
    let r = shard.with_kernel_for_test(|k, env| {
        let args = InitArgs::new(&(1u8, 2u64));
        let r = k.spawn_dynamic(env, None, worker_ty.0, args, 0, Restart::Permanent);
        (r, k.init_failure.map(|f| f.reason))
    });
    assert_eq!(r.0, Err(SpawnError::InitFailed));
    assert_eq!(
        r.1,
        Some(CrashReason("init args are not of the type's Isolate::Args"))
    );
    assert_eq!(shard.handles::<Worker>().count(), 0);
    let after = shard.counters();
    assert_eq!(after.spawn_failures, before.spawn_failures + 1);
    assert_eq!(after.spawns, before.spawns);
    // The slot and the group's dynamic room were given back: a typed spawn succeeds.
    let spawner = shard.handles::<Spawner>().next().unwrap();
    let mut now = 0;
    let worker = spawn_worker(&mut shard, spawner, &mut now);
    assert_eq!(worker.type_id(), worker_ty);
    shard.check_invariants().unwrap();
}

#[test]
fn generation_wraps_from_max_to_one_and_pre_wrap_handles_stay_stale() {
    let spec = &SPEC;
    let mut memory = region_for(spec, ShardId(0));
    let mut shard = Shard::new(spec, ShardId(0), memory.bytes(), TestPlatform::default()).unwrap();
    let spawner = shard.handles::<Spawner>().next().unwrap();
    let worker_ty = spec.type_id_of::<Worker>().unwrap();
    // The worker type's only slot, still free, as if spawned into GENERATION_MAX - 1 times.
    shard.with_kernel_for_test(|k, _| {
        let slot = &mut k.types[usize::from(worker_ty.0)].metas[0];
        assert!(!slot.is_live());
        slot.generation = GENERATION_MAX - 1;
    });
    let mut now = 0;

    let at_max = spawn_worker(&mut shard, spawner, &mut now);
    assert_eq!(at_max.generation(), GENERATION_MAX);
    assert_eq!(
        (at_max.shard(), at_max.type_id(), at_max.slot()),
        (ShardId(0), worker_ty, 0),
        "the generation field does not spill into the slot or type"
    );
    assert_eq!(shard.counters().generation_wraps, 0);
    stop_worker(&mut shard, at_max, &mut now);

    let first = spawn_worker(&mut shard, spawner, &mut now);
    assert_eq!(
        first.generation(),
        1,
        "after GENERATION_MAX comes 1, never 0"
    );
    assert_eq!((first.type_id(), first.slot()), (worker_ty, 0));
    assert_eq!(shard.counters().generation_wraps, 1);
    stop_worker(&mut shard, first, &mut now);

    let second = spawn_worker(&mut shard, spawner, &mut now);
    assert_eq!(second.generation(), 2);
    assert_eq!(shard.counters().generation_wraps, 1, "one wrap only");

    let stale_before = shard.counters().stale_deliveries;
    for stale in [at_max, first] {
        assert!(!shard.is_live(stale), "{stale:?}");
        assert_eq!(
            shard.deliver(stale, &Outgoing::new(&Go { n: 1 })),
            Err(SendError::StaleHandle),
            "{stale:?}"
        );
    }
    assert_eq!(shard.counters().stale_deliveries, stale_before + 2);
    assert!(shard.is_live(second));
    assert_eq!(shard.counters().spawns, 4, "the spawner and three workers");
    shard.check_invariants().unwrap();
}
