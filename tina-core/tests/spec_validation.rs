//! Every structural spec error is caught before anything runs, naming field, value and rule.
mod common;
use common::*;
use tina_core::spec::{Location, RingOverride, Rule};
use tina_core::testing::{OwnedRegion, TestPlatform, region_for};
use tina_core::*;

struct Other;
impl Isolate for Other {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Other, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Receive
    }
}

#[repr(align(256))]
struct OverAligned(#[allow(dead_code)] u8);
impl Isolate for OverAligned {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((OverAligned(0), Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Receive
    }
}

fn check(spec: &SystemSpec<'_>, field: &str, value: u64, rule: Rule) -> SpecError {
    let e = spec.validate().expect_err("spec must be rejected");
    assert_eq!((e.field, e.value, e.rule), (field, value, rule), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(field) && text.contains(&value.to_string()),
        "{text}"
    );
    // Booting refuses it with the same error.
    let r = Shard::<TestPlatform>::memory_required(spec, ShardId(0));
    assert_eq!(r, Err(BootError::Spec(e)));
    e
}

fn one_actor() -> [ChildSpec<'static>; 1] {
    [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)]
}

#[test]
fn a_valid_spec_passes_and_boots_in_exactly_the_measured_memory() {
    let types = [
        TypeSpec::of::<Actor>("actor").capacity(5),
        TypeSpec::of::<Other>("other").capacity(3),
    ];
    let inner = [ChildSpec::isolate::<Other>(&(), Restart::Transient)];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::Group(GroupSpec::one_for_one(&inner).strategy(Strategy::RestForOne)),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(2),
    }];
    let spec = SystemSpec::new(&shards, &types);
    spec.validate().unwrap();
    let need = Shard::<TestPlatform>::memory_required(&spec, ShardId(0)).unwrap();
    // One byte less is refused with a clear error…
    let mut small = OwnedRegion::with_size(need);
    let bytes = small.bytes();
    let short = bytes.len() - (bytes.len() - need) - 1;
    let r = Shard::new(
        &spec,
        ShardId(0),
        &mut bytes[..short],
        TestPlatform::default(),
    );
    assert!(matches!(
        r.err(),
        Some(BootError::Memory(memory::MemoryError::Exhausted { needed, .. })) if needed == need
    ));
    // …and exactly `need` bytes boot.
    let mut region = region_for(&spec, ShardId(0));
    let bytes = region.bytes();
    let shard = Shard::new(
        &spec,
        ShardId(0),
        &mut bytes[..need],
        TestPlatform::default(),
    );
    assert_eq!(shard.unwrap().live_isolates(), 2);
}

#[test]
fn shard_and_type_counts() {
    let types = [TypeSpec::of::<Actor>("actor")];
    let spec = SystemSpec::new(&[], &types);
    check(&spec, "shards.len()", 0, Rule::ShardCount);
    let c = one_actor();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let spec = SystemSpec::new(&shards, &[]);
    check(&spec, "types.len()", 0, Rule::TypeCount);
}

#[test]
fn type_fields() {
    let c = one_actor();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let cases: [(TypeSpec, &str, u64, Rule); 4] = [
        (
            TypeSpec::of::<Actor>("a").capacity(0),
            "capacity",
            0,
            Rule::TypeCapacity,
        ),
        (
            TypeSpec::of::<Actor>("a").capacity(1 << 21),
            "capacity",
            1 << 21,
            Rule::TypeCapacity,
        ),
        (
            TypeSpec::of::<Actor>("a").mailbox_capacity(0),
            "mailbox_capacity",
            0,
            Rule::AtLeastOne,
        ),
        (
            TypeSpec::of::<Actor>("a").budget_weight(65),
            "budget_weight",
            65,
            Rule::BudgetWeight,
        ),
    ];
    for (t, field, value, rule) in cases {
        let types = [t];
        let spec = SystemSpec::new(&shards, &types);
        let e = check(&spec, field, value, rule);
        assert_eq!(e.location, Location::Type(0));
    }
    let types = [TypeSpec::of::<Actor>("a"), TypeSpec::of::<Actor>("again")];
    let spec = SystemSpec::new(&shards, &types);
    let e = check(
        &spec,
        "Rust type",
        0,
        Rule::DuplicateType { type_name: "again" },
    );
    assert_eq!(e.location, Location::Type(1));
    let types = [
        TypeSpec::of::<Actor>("a"),
        TypeSpec::of::<OverAligned>("big"),
    ];
    let spec = SystemSpec::new(&shards, &types);
    check(&spec, "align_of::<T>()", 256, Rule::Alignment);
}

#[test]
fn shard_config_fields() {
    let c = one_actor();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let types = [TypeSpec::of::<Actor>("a")];
    let base = SystemSpec::new(&shards, &types);
    let mut s = base;
    s.shard.message_pool_size = 0;
    check(&s, "message_pool_size", 0, Rule::PoolSize);
    let mut s = base;
    s.shard.system_reserve = Some(5000);
    check(&s, "system_reserve", 5000, Rule::ReserveBelowPool);
    let mut s = base;
    s.shard.timer_spokes = 100;
    check(&s, "timer_spokes", 100, Rule::PowerOfTwo);
    let mut s = base;
    s.shard.timer_entries = 0;
    check(&s, "timer_entries", 0, Rule::TimerEntries);
    let mut s = base;
    s.shard.timer_expirations_per_tick_max = 0;
    check(&s, "timer_expirations_per_tick_max", 0, Rule::AtLeastOne);
    let mut s = base;
    s.shard.io_buffer_count = 70_000;
    check(&s, "io_buffer_count", 70_000, Rule::IoBufferCount);
    let mut s = base;
    s.shard.io_buffer_size = 0;
    check(&s, "io_buffer_size", 0, Rule::AtLeastOne);
    let mut s = base;
    s.shard.io_submissions_per_tick_max = 0;
    check(&s, "io_submissions_per_tick_max", 0, Rule::IoSubmissions);
    let mut s = base;
    s.shard.io_submissions_per_tick_max = u32::MAX;
    check(
        &s,
        "io_submissions_per_tick_max",
        u64::from(u32::MAX),
        Rule::IoSubmissions,
    );
    let mut s = base;
    s.recoveries_max = 1 << 16;
    check(&s, "recoveries_max", 1 << 16, Rule::RestartsMax);
    let mut s = base;
    s.shard.messages_per_dispatch_max = 0;
    check(&s, "messages_per_dispatch_max", 0, Rule::AtLeastOne);
    let mut s = base;
    s.tick_ns = 0;
    check(&s, "tick_ns", 0, Rule::AtLeastOne);
    let mut s = base;
    s.recovery_window = Duration::ZERO;
    check(&s, "recovery_window", 0, Rule::AtLeastOne);
    let mut s = base;
    s.shard.transfer_buffer_count = 70_000;
    check(&s, "transfer_buffer_count", 70_000, Rule::IoBufferCount);
    let mut s = base;
    s.shard.transfer_buffer_size = 0;
    check(&s, "transfer_buffer_size", 0, Rule::AtLeastOne);
}

#[test]
fn ring_capacities() {
    let c = one_actor();
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&c),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&c),
        },
    ];
    let types = [TypeSpec::of::<Actor>("a")];
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_capacity = 8;
    check(&s, "ring_capacity", 8, Rule::RingCapacity);
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_capacity = 1000;
    check(&s, "ring_capacity", 1000, Rule::RingCapacity);
    // A power of two too large to allocate (2^31 slots of 128 bytes per ring) is refused up
    // front with the field's name, not left to abort the process at boot.
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_capacity = 1 << 31;
    let e = check(&s, "ring_capacity", 1 << 31, Rule::RingCapacity);
    assert!(e.to_string().contains("1048576"), "names the bound: {e}");
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_capacity = spec::RING_CAPACITY_MAX;
    s.validate().unwrap();
    let too_big = [RingOverride {
        from: 0,
        to: 1,
        capacity: spec::RING_CAPACITY_MAX * 2,
    }];
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_overrides = &too_big;
    check(
        &s,
        "capacity",
        u64::from(spec::RING_CAPACITY_MAX * 2),
        Rule::RingCapacity,
    );
    let bad_pair = [RingOverride {
        from: 1,
        to: 1,
        capacity: 64,
    }];
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_overrides = &bad_pair;
    let e = check(&s, "from/to", (1 << 8) | 1, Rule::RingPair);
    assert_eq!(e.location, Location::RingOverride(0));
    let bad_cap = [RingOverride {
        from: 0,
        to: 1,
        capacity: 24,
    }];
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_overrides = &bad_cap;
    check(&s, "capacity", 24, Rule::RingCapacity);
    let good = [RingOverride {
        from: 0,
        to: 1,
        capacity: 64,
    }];
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_overrides = &good;
    s.validate().unwrap();
    assert_eq!(s.ring_capacity_between(0, 1), 64);
    assert_eq!(s.ring_capacity_between(1, 0), 1024);
}

#[test]
fn supervision_tree_rules() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(2)];
    let c = one_actor();
    // Dynamic children in a one-for-all group.
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c)
            .strategy(Strategy::OneForAll)
            .dynamic(4),
    }];
    let e = check(
        &SystemSpec::new(&shards, &types),
        "dynamic_capacity",
        4,
        Rule::DynamicNeedsOneForOne,
    );
    assert!(
        e.to_string().contains("OneForOne"),
        "says how to fix it: {e}"
    );
    // A zero budget window, in a nested group: the path names it.
    let inner = [ChildSpec::Group(
        GroupSpec::one_for_one(&c).budget(3, Duration::ZERO),
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&inner),
    }];
    let e = check(
        &SystemSpec::new(&shards, &types),
        "budget.window",
        0,
        Rule::BudgetWindow,
    );
    assert_eq!(e.to_string().split(':').next().unwrap(), "invalid spec");
    assert!(
        e.to_string()
            .contains("shards[0].root.children[0].budget.window"),
        "{e}"
    );
    // A restart budget larger than the bound.
    let big = [ChildSpec::Group(
        GroupSpec::one_for_one(&c).budget(u32::MAX, Duration::from_millis(1)),
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&big),
    }];
    check(
        &SystemSpec::new(&shards, &types),
        "budget.restarts_max",
        u64::from(u32::MAX),
        Rule::RestartsMax,
    );
    // An unregistered child type.
    let stranger = [ChildSpec::isolate::<Other>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&stranger),
    }];
    check(
        &SystemSpec::new(&shards, &types),
        "ty",
        0,
        Rule::UnknownType,
    );
    // A child whose args are not its type's `Isolate::Args` (the fields are public).
    let mismatched = [
        c[0],
        ChildSpec::Isolate {
            ty: TypeRef::of::<Actor>(),
            args: InitArgs::new(&(1u8, 2u64)),
            restart: Restart::Permanent,
            name: None,
        },
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&mismatched),
    }];
    let e = check(
        &SystemSpec::new(&shards, &types),
        "args",
        1,
        Rule::ArgsTypeMismatch {
            type_name: "actor",
            args_type_name: std::any::type_name::<(u8, u64)>(),
        },
    );
    assert_eq!(e.location.to_string(), "shards[0].root.children[1]");
    let text = e.to_string();
    assert!(
        text.contains("u64") && text.contains("actor") && text.contains("Isolate::Args"),
        "{text}"
    );
    // More static children than capacity.
    let three = [c[0], c[0], c[0]];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&three),
    }];
    check(
        &SystemSpec::new(&shards, &types),
        "static children of one type",
        3,
        Rule::StaticChildrenExceedCapacity {
            type_name: "actor",
            capacity: 2,
        },
    );
}

#[test]
fn nesting_deeper_than_the_limit_is_rejected() {
    let types = [TypeSpec::of::<Actor>("actor")];
    let leaf = one_actor();
    let g8 = [ChildSpec::Group(GroupSpec::one_for_one(&leaf))];
    let g7 = [ChildSpec::Group(GroupSpec::one_for_one(&g8))];
    let g6 = [ChildSpec::Group(GroupSpec::one_for_one(&g7))];
    let g5 = [ChildSpec::Group(GroupSpec::one_for_one(&g6))];
    let g4 = [ChildSpec::Group(GroupSpec::one_for_one(&g5))];
    let g3 = [ChildSpec::Group(GroupSpec::one_for_one(&g4))];
    let g2 = [ChildSpec::Group(GroupSpec::one_for_one(&g3))];
    let g1 = [ChildSpec::Group(GroupSpec::one_for_one(&g2))];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&g1),
    }];
    check(
        &SystemSpec::new(&shards, &types),
        "depth",
        8,
        Rule::GroupDepth,
    );
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&g2),
    }];
    SystemSpec::new(&shards, &types).validate().unwrap();
}

#[test]
fn booting_a_shard_that_is_not_in_the_spec_is_an_error() {
    let c = one_actor();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let types = [TypeSpec::of::<Actor>("a")];
    let spec = SystemSpec::new(&shards, &types);
    assert_eq!(
        Shard::<TestPlatform>::memory_required(&spec, ShardId(3)),
        Err(BootError::NoSuchShard {
            shard: 3,
            shard_count: 1
        })
    );
}

#[test]
fn ring_memory_is_counted_per_consumer_and_in_the_system_total() {
    let c = one_actor();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }; 3];
    let types = [TypeSpec::of::<Actor>("a")];
    let overrides = [RingOverride {
        from: 2,
        to: 0,
        capacity: 4096,
    }];
    let mut s = SystemSpec::new(&shards, &types);
    s.ring_capacity = 64;
    s.ring_overrides = &overrides;
    let slot = core::mem::size_of::<ring::Slot<Message>>();
    let ring = core::mem::size_of::<ring::Ring<'static, Message>>();
    // Shard 0 drains 1→0 (64) and 2→0 (4096); shard 1 drains 0→1 and 2→1 (64 each).
    assert_eq!(
        ring_memory_required(&s, ShardId(0)),
        Ok((64 + 4096) * slot + 2 * ring)
    );
    assert_eq!(
        ring_memory_required(&s, ShardId(1)),
        Ok(2 * 64 * slot + 2 * ring)
    );
    assert!(matches!(
        ring_memory_required(&s, ShardId(3)),
        Err(BootError::NoSuchShard { shard: 3, .. })
    ));
    let total = SystemMemory::of(&s).unwrap();
    let regions: usize = (0..3)
        .map(|i| Shard::<TestPlatform>::memory_required(&s, ShardId(i)).unwrap())
        .sum();
    assert_eq!(total.regions, regions);
    assert_eq!(total.rings, (64 * 5 + 4096) * slot + 6 * ring);
    assert_eq!(total.total(), Some(regions + total.rings + total.bulk));
    // One shard: no rings at all.
    let one = SystemSpec::new(&shards[..1], &types);
    assert_eq!(SystemMemory::of(&one).unwrap().rings, 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "arithmetic over 256 × 255 rings: minutes interpreted, no unsafe code"
)]
fn a_256_shard_system_counts_its_8_gb_of_default_rings() {
    let c = one_actor();
    let shards = vec![
        ShardSpec {
            root: GroupSpec::one_for_one(&c),
        };
        256
    ];
    let types = [TypeSpec::of::<Actor>("a")];
    let s = SystemSpec::new(&shards, &types);
    let total = SystemMemory::of(&s).unwrap();
    // 256 × 255 rings of 1024 slots of 128 bytes: 8.56 GB that the regions do not include.
    assert!(total.rings >= 256 * 255 * 1024 * 128, "{total:?}");
    assert!(total.total().unwrap() > total.rings + total.regions - 1);
}

#[test]
fn region_sizes_are_checked_as_a_32_bit_target_computes_them() {
    let c = one_actor();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let mut types = [TypeSpec::of::<Actor>("a")];
    let limit = u32::MAX as usize;
    // The default spec fits in 32 bits and gives the same answer either way.
    let s = SystemSpec::new(&shards, &types);
    let wide = Shard::<TestPlatform>::memory_required(&s, ShardId(0)).unwrap();
    assert_eq!(
        Shard::<TestPlatform>::memory_required_within(&s, ShardId(0), limit),
        Ok(wide)
    );
    // io_buffer_count × io_buffer_size above 2^32: an overflow on a 32-bit target.
    let mut s = SystemSpec::new(&shards, &types);
    s.shard.io_buffer_count = 65_535;
    s.shard.io_buffer_size = 65_538;
    s.validate().unwrap();
    assert_eq!(
        Shard::<TestPlatform>::memory_required_within(&s, ShardId(0), limit),
        Err(BootError::Memory(memory::MemoryError::Overflow))
    );
    if cfg!(target_pointer_width = "64") {
        let n = Shard::<TestPlatform>::memory_required(&s, ShardId(0)).unwrap();
        assert!(n > 65_535 * 65_538);
    }
    // capacity × working-memory chunks above 2^32.
    types[0] = TypeSpec::of::<Actor>("a")
        .capacity((1 << 20) - 1)
        .working_memory(1 << 13);
    let s = SystemSpec::new(&shards, &types);
    s.validate().unwrap();
    assert_eq!(
        Shard::<TestPlatform>::memory_required_within(&s, ShardId(0), limit),
        Err(BootError::Memory(memory::MemoryError::Overflow))
    );
    // Transfer buffers likewise.
    let types = [TypeSpec::of::<Actor>("a")];
    let mut s = SystemSpec::new(&shards, &types);
    s.shard.transfer_buffer_count = 65_535;
    s.shard.transfer_buffer_size = u32::MAX;
    assert_eq!(
        Shard::<TestPlatform>::memory_required_within(&s, ShardId(0), limit),
        Err(BootError::Memory(memory::MemoryError::Overflow))
    );
}

/// An I/O driver whose `bind` always fails with "address in use".
#[derive(Default)]
struct BindInUse;

impl platform::SocketControl for BindInUse {
    fn control(&mut self, _: Handle, op: io::Control) -> Result<io::ControlOutcome, io::IoError> {
        match op {
            io::Control::Socket { .. } => Ok(io::ControlOutcome::Fd(io::Fd(7))),
            io::Control::Bind { .. } => Err(io::IoError::AddrInUse),
            _ => Ok(io::ControlOutcome::Done),
        }
    }
}

impl platform::IoDriver for BindInUse {
    fn submit(&mut self, _: &[platform::Submission], _: platform::IoBuffers<'_>) -> usize {
        0
    }
    fn complete(&mut self, _: &mut dyn platform::CompletionSink) {}
}

/// Binds a socket in `init`; a failure is `CrashReason("bind() failed")`.
struct Binder;
impl Isolate for Binder {
    type Args = ();
    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let s = ctx
            .socket(io::Domain::Ipv4, io::SocketKind::Stream)
            .map_err(|_| CrashReason("socket() failed"))?;
        ctx.own_fd(Some(s));
        let _ = ctx.set_option(s, io::SocketOption::ReuseAddr(true));
        ctx.bind(s, "127.0.0.1:1".parse().unwrap())
            .map_err(|_| CrashReason("bind() failed"))?;
        Ok((Binder, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Receive
    }
}

type BindPlatform =
    platform::Bundle<testing::TestTransport, BindInUse, testing::CatchPanic, testing::TestLog>;

#[test]
fn a_static_child_whose_init_fails_names_itself_its_reason_and_its_socket_error() {
    let types = [
        TypeSpec::of::<Actor>("actor"),
        TypeSpec::of::<Binder>("binder"),
    ];
    let inner = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::isolate::<Binder>(&(), Restart::Permanent),
    ];
    let children = [ChildSpec::Group(GroupSpec::one_for_one(&inner))];
    let first = one_actor();
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&first),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
    ];
    let spec = SystemSpec::new(&shards, &types);
    let mut region = region_for(&spec, ShardId(1));
    let err = Shard::new(&spec, ShardId(1), region.bytes(), BindPlatform::default())
        .err()
        .expect("boot must fail");
    let BootError::RootFailed(failure) = err else {
        panic!("not a tree failure: {err:?}");
    };
    // shards[1].root.children[0] is the group; the binder is its child 1.
    assert_eq!(
        failure.child.to_string(),
        "shards[1].root.children[0].children[1]"
    );
    assert!(matches!(failure.child, Location::Child(_, 1)));
    assert_eq!(failure.type_name, "binder");
    assert_eq!(failure.reason, CrashReason("bind() failed"));
    assert_eq!(failure.io_error, Some(io::IoError::AddrInUse));
    let text = err.to_string();
    assert!(
        text.contains("shards[1].root.children[0].children[1]")
            && text.contains("binder")
            && text.contains("bind() failed")
            && text.contains("AddrInUse"),
        "{text}"
    );
    // An init that fails without a failed socket call carries no I/O error.
    let failing = [ChildSpec::isolate::<Actor>(
        &ActorArgs {
            fail_init: true,
            ..args(0)
        },
        Restart::Permanent,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&failing),
    }];
    let types = [TypeSpec::of::<Actor>("actor")];
    let spec = SystemSpec::new(&shards, &types);
    let mut region = region_for(&spec, ShardId(0));
    let err = Shard::new(&spec, ShardId(0), region.bytes(), TestPlatform::default())
        .err()
        .expect("boot must fail");
    assert!(
        matches!(
            err,
            BootError::RootFailed(InitFailure {
                io_error: None,
                type_name: "actor",
                reason: CrashReason("init told to fail"),
                ..
            })
        ),
        "{err:?}"
    );
}
