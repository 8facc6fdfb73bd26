//! Spec fuzzing of the core: random specs (extreme sizes included, see `spec_gen`) through
//! `validate`, every memory measure (also as a 32-bit target computes it) and, when a shard
//! fits in a few MiB, the boot of a hand-stepped shard that then runs, shuts down and is
//! checked after every step. Nothing may panic: a spec is refused with an error that names
//! its field, or boots and runs.
//!
//! Seeded and bounded: `TINA_SPEC_FUZZ_CASES` specs (default 400; 6 under Miri) from seed
//! `TINA_SPEC_FUZZ_SEED` (default 0x5EED_C0DE); a failure prints the seed that replays it
//! alone (`TINA_SPEC_FUZZ_SEED=<seed> TINA_SPEC_FUZZ_CASES=1`). Long mode, e.g.:
//! `TINA_SPEC_FUZZ_CASES=200000 cargo test -p tina-core --release --test spec_fuzz`.

mod spec_gen;

use std::panic::{AssertUnwindSafe, catch_unwind};

use spec_gen::{Rng, Settings, SpecPlan};
use tina_core::memory::MemoryError;
use tina_core::testing::{OwnedRegion, TestPlatform};
use tina_core::*;

/// Shards whose region is at most this big are booted and stepped.
const BOOT_BYTES_MAX: usize = 8 << 20;

fn check_spec(spec: &SystemSpec<'_>, plan: &SpecPlan) {
    let validated = spec.validate();
    let shards = spec.shards.len();
    let probe: Vec<u8> = [0, 1, shards.saturating_sub(1), shards, 300]
        .into_iter()
        .filter(|&s| s < 256)
        .map(|s| s as u8)
        .collect();
    if let Err(e) = validated {
        let text = e.to_string();
        assert!(
            text.contains(e.field) && text.contains(&e.value.to_string()),
            "the error names its field and value: {text}"
        );
        for &s in &probe {
            assert_eq!(
                Shard::<TestPlatform>::memory_required(spec, ShardId(s)),
                Err(BootError::Spec(e))
            );
            assert_eq!(
                ring_memory_required(spec, ShardId(s)),
                Err(BootError::Spec(e))
            );
        }
        assert_eq!(SystemMemory::of(spec), Err(BootError::Spec(e)));
        return;
    }
    for &s in &probe {
        let id = ShardId(s);
        let wide = Shard::<TestPlatform>::memory_required(spec, id);
        let narrow = Shard::<TestPlatform>::memory_required_within(spec, id, u32::MAX as usize);
        if usize::from(s) >= shards {
            assert!(
                matches!(wide, Err(BootError::NoSuchShard { .. })),
                "{wide:?}"
            );
            assert!(matches!(
                ring_memory_required(spec, id),
                Err(BootError::NoSuchShard { .. })
            ));
            continue;
        }
        match (wide, narrow) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            // Past 4 GiB a 32-bit target overflows; the full total says why.
            (Ok(a), Err(BootError::Memory(MemoryError::Overflow))) => {
                assert!(a > u32::MAX as usize, "{a}")
            }
            (Err(BootError::Memory(MemoryError::Overflow)), Err(e)) => {
                assert_eq!(e, BootError::Memory(MemoryError::Overflow))
            }
            other => panic!("unexpected measures: {other:?}"),
        }
        ring_memory_required(spec, id).expect("rings of a valid spec are measurable");
    }
    match SystemMemory::of(spec) {
        Ok(m) => assert!(m.total().is_some()),
        Err(e) => assert_eq!(e, BootError::Memory(MemoryError::Overflow)),
    }
    if let Ok(bytes) = Shard::<TestPlatform>::memory_required(spec, ShardId(0))
        && bytes <= BOOT_BYTES_MAX
    {
        boot_and_step(spec, plan, bytes);
    }
}

fn boot_and_step(spec: &SystemSpec<'_>, plan: &SpecPlan, bytes: usize) {
    // One byte short is refused with the exact need.
    if bytes > 0 {
        let mut region = OwnedRegion::with_size(bytes);
        let memory = region.bytes();
        let short = &mut memory[..bytes - 1];
        match Shard::new(spec, ShardId(0), short, TestPlatform::default()) {
            Err(BootError::Memory(MemoryError::Exhausted { needed, .. })) => {
                assert_eq!(needed, bytes)
            }
            other => panic!("a short region: {:?}", other.err()),
        }
    }
    let mut region = OwnedRegion::with_size(bytes);
    let mut shard = match Shard::new(spec, ShardId(0), region.bytes(), TestPlatform::default()) {
        Ok(shard) => shard,
        Err(BootError::RootFailed(failure)) => {
            // A child whose init fails or panics, or one left without a slot because
            // dynamic children spawned at boot took its type's capacity.
            let no_slot = failure.reason.0.starts_with("no free slot");
            assert!(
                plan.has_failing_init() || no_slot,
                "boot failed without a failing init: {failure}"
            );
            assert!(
                failure.type_name != "?" && failure.to_string().contains("shards[0].root"),
                "the failure names the child: {failure}"
            );
            return;
        }
        Err(e) => panic!("a valid spec that fits failed to boot: {e}"),
    };
    shard.check_invariants().expect("after boot");
    let mut now = 0;
    for _ in 0..8 {
        now += 1;
        shard.step(Instant::from_ticks(now));
        shard.check_invariants().expect("after a step");
        // What the shard sends to peers is dropped here (no peers are stepped).
        shard.platform().transport.published.clear();
    }
    shard.shutdown();
    for _ in 0..64 {
        if shard.status() == ShardStatus::Stopped {
            break;
        }
        now += 1;
        shard.step(Instant::from_ticks(now));
        shard.check_invariants().expect("during shutdown");
        shard.platform().transport.published.clear();
    }
    if shard.status() != ShardStatus::Stopped {
        shard.force_stop();
    }
    assert_eq!(shard.status(), ShardStatus::Stopped);
    assert_eq!(shard.live_isolates(), 0);
    shard.check_invariants().expect("after stopping");
}

#[test]
fn random_specs_are_refused_clearly_or_boot_and_run() {
    spec_gen::quiet_expected_panics();
    // Under Miri a handful of specs (each boot is interpreted): the point there is the memory
    // model, not the search.
    let settings = Settings::from_env(0x5EED_C0DE, if cfg!(miri) { 6 } else { 400 });
    eprintln!(
        "spec fuzz (core): {} specs from seed {} (TINA_SPEC_FUZZ_SEED / TINA_SPEC_FUZZ_CASES)",
        settings.cases, settings.first_seed
    );
    let mut valid = 0u64;
    let mut booted = 0u64;
    for case in 0..settings.cases {
        let seed = settings.first_seed.wrapping_add(case);
        let plan = SpecPlan::random(&mut Rng::new(seed), 256);
        let result = catch_unwind(AssertUnwindSafe(|| {
            plan.with_spec(&mut |spec| {
                check_spec(spec, &plan);
                let fits = Shard::<TestPlatform>::memory_required(spec, ShardId(0))
                    .is_ok_and(|b| b <= BOOT_BYTES_MAX);
                (spec.validate().is_ok(), fits)
            })
        }));
        match result {
            Ok((v, b)) => {
                valid += u64::from(v);
                booted += u64::from(b);
            }
            Err(_) => panic!(
                "spec fuzz failed at seed {seed}; replay with TINA_SPEC_FUZZ_SEED={seed} \
                 TINA_SPEC_FUZZ_CASES=1 cargo test -p tina-core --test spec_fuzz\nspec: {}",
                plan.summary()
            ),
        }
    }
    eprintln!(
        "spec fuzz (core): {valid} of {} specs valid, {booted} booted",
        settings.cases
    );
    // The generator must reach both sides (a sanity check of the fuzzer, not of the core).
    if settings.cases >= 100 {
        assert!(valid * 10 >= settings.cases, "too few valid specs: {valid}");
        assert!(booted * 20 >= settings.cases, "too few booted: {booted}");
        assert!(valid < settings.cases, "no invalid spec generated");
    }
}

#[test]
fn a_static_child_whose_init_returns_done_leaves_a_stopped_member_not_a_dead_handle() {
    use spec_gen::Quitter;
    let types = [TypeSpec::of::<Quitter>("quitter")];
    let children = [ChildSpec::isolate::<Quitter>(&0, Restart::Transient)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = SystemSpec::new(&shards, &types);
    let mut region = tina_core::testing::region_for(&spec, ShardId(0));
    let mut shard =
        Shard::new(&spec, ShardId(0), region.bytes(), TestPlatform::default()).expect("boots");
    assert_eq!(shard.live_isolates(), 0);
    shard.check_invariants().expect("after boot");
    shard.step(Instant::from_ticks(1));
    shard.check_invariants().expect("after a step");
}
