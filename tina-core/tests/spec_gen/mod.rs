//! Random system specs for the spec fuzzers (tina-core's `spec_fuzz` and tina-linux's
//! `spec_fuzz`, which includes this file by path): every field from a mix of sane values and
//! extremes (0, 1, powers of two and their neighbours, 2^20 ± 1, 2^31, `u32::MAX`, …),
//! supervision trees up to one level deeper than allowed, unknown and duplicate types,
//! over-aligned types, and isolates whose `init` succeeds, exits, fails or panics.
//!
//! Seeded and reproducible: the same seed gives the same spec. The run length and the first
//! seed come from `TINA_SPEC_FUZZ_CASES` and `TINA_SPEC_FUZZ_SEED` (see [`Settings`]).
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::fmt::Write as _;

use tina_core::spec::{QuarantinePolicy, RingOverride};
use tina_core::*;

/// splitmix64 (tiny, fast, good enough to pick spec fields), plus how wild this spec is.
pub struct Rng {
    state: u64,
    /// Percent chance that a field leaves its sane value.
    wild: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut rng = Rng {
            state: seed,
            wild: 0,
        };
        // Most specs are sane but for a field or two; some are wild throughout.
        rng.wild = rng.pick(&[1, 2, 4, 8, 30]);
        rng
    }

    /// Whether this field leaves its sane value.
    pub fn deviate(&mut self) -> bool {
        self.chance(self.wild)
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Values at and around every edge a `u32` size field has.
pub const EXTREMES: [u32; 24] = [
    0,
    1,
    2,
    3,
    15,
    16,
    17,
    255,
    256,
    1023,
    1024,
    4096,
    65_535,
    65_536,
    65_537,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    1 << 24,
    1 << 31,
    (1 << 31) + 1,
    u32::MAX / 2,
    u32::MAX - 1,
    u32::MAX,
];

/// `sane`, unless this field deviates: then an extreme, a small value or anything.
pub fn field(rng: &mut Rng, sane: u32) -> u32 {
    if !rng.deviate() {
        return sane;
    }
    match rng.below(4) {
        0 | 1 => rng.pick(&EXTREMES),
        2 => rng.below(64) as u32,
        _ => rng.next() as u32,
    }
}

/// A small value (1..=max), unless this field deviates: then an extreme.
pub fn small(rng: &mut Rng, max: u32) -> u32 {
    if rng.deviate() {
        rng.pick(&EXTREMES)
    } else {
        1 + rng.below(u64::from(max)) as u32
    }
}

/// `sane`, or one of `wild` when this field deviates.
pub fn one_of<T: Copy>(rng: &mut Rng, sane: T, wild: &[T]) -> T {
    if rng.deviate() { rng.pick(wild) } else { sane }
}

// ─────────────────────────────── isolates ───────────────────────────────

/// Parks; stops at shutdown.
pub struct Quiet;
impl Isolate for Quiet {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Quiet, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            Effect::Done
        } else {
            Effect::Receive
        }
    }
}

/// Exits from `init`.
pub struct Quitter;
impl Isolate for Quitter {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Quitter, Effect::Done))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Done
    }
}

/// `init` fails.
pub struct Failer;
impl Isolate for Failer {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Err(CrashReason("spec fuzz: init fails"))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Done
    }
}

/// `init` panics.
pub struct Panicker;
impl Isolate for Panicker {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        panic!("spec fuzz: init panics")
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Done
    }
}

/// Yields every tick; stops at shutdown.
pub struct Yielder;
impl Isolate for Yielder {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Yielder, Effect::Yield))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            Effect::Done
        } else {
            Effect::Yield
        }
    }
}

/// Uses the whole of its working memory and scratch, sends to itself, starts a timer and
/// spawns a dynamic `Quiet` sibling; every failure is tolerated (the spec may be tiny).
pub struct Busy;
impl Isolate for Busy {
    type Args = u64;
    fn init(n: &u64, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.working_memory().fill(0xA5);
        let me = ctx.me();
        let _ = ctx.send_bytes(me, UserTag::new(0x40), &[1, 2, 3]);
        let _ = ctx.start_timer(Duration::from_millis(1 + n % 3), UserTag::new(0x41));
        let _ = ctx.spawn::<Quiet>(n);
        Ok((Busy, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        let limit = ctx
            .scratch(usize::MAX)
            .err()
            .map_or(0, |e| e.limit.min(1 << 16));
        if let Ok(s) = ctx.scratch(limit) {
            s.fill(1);
        }
        Effect::Receive
    }
}

/// Needs more alignment than a shard region offers.
#[repr(align(256))]
pub struct OverAligned;
impl Isolate for OverAligned {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((OverAligned, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Done
    }
}

/// The isolate kinds a spec is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Quiet,
    Quitter,
    Failer,
    Panicker,
    Yielder,
    Busy,
    OverAligned,
}

pub const KINDS: [Kind; 7] = [
    Kind::Quiet,
    Kind::Quitter,
    Kind::Failer,
    Kind::Panicker,
    Kind::Yielder,
    Kind::Busy,
    Kind::OverAligned,
];

impl Kind {
    fn type_spec(self, name: &'static str) -> TypeSpec {
        match self {
            Kind::Quiet => TypeSpec::of::<Quiet>(name),
            Kind::Quitter => TypeSpec::of::<Quitter>(name),
            Kind::Failer => TypeSpec::of::<Failer>(name),
            Kind::Panicker => TypeSpec::of::<Panicker>(name),
            Kind::Yielder => TypeSpec::of::<Yielder>(name),
            Kind::Busy => TypeSpec::of::<Busy>(name),
            Kind::OverAligned => TypeSpec::of::<OverAligned>(name),
        }
    }

    fn child(self, arg: u64, restart: Restart) -> ChildSpec<'static> {
        match self {
            Kind::Quiet => ChildSpec::isolate::<Quiet>(&arg, restart),
            Kind::Quitter => ChildSpec::isolate::<Quitter>(&arg, restart),
            Kind::Failer => ChildSpec::isolate::<Failer>(&arg, restart),
            Kind::Panicker => ChildSpec::isolate::<Panicker>(&arg, restart),
            Kind::Yielder => ChildSpec::isolate::<Yielder>(&arg, restart),
            Kind::Busy => ChildSpec::isolate::<Busy>(&arg, restart),
            Kind::OverAligned => ChildSpec::isolate::<OverAligned>(&arg, restart),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Quiet => "quiet",
            Kind::Quitter => "quitter",
            Kind::Failer => "failer",
            Kind::Panicker => "panicker",
            Kind::Yielder => "yielder",
            Kind::Busy => "busy",
            Kind::OverAligned => "over_aligned",
        }
    }
}

// ─────────────────────────────── plans ───────────────────────────────

/// One group of the tree, as plain data: its isolates, leaf groups of isolates, and at most
/// one nested group (so a tree can be as deep as the plan, one level past the limit).
#[derive(Clone, Debug)]
pub struct GroupPlan {
    pub strategy: Strategy,
    pub restarts_max: u32,
    pub window: u64,
    pub dynamic: u32,
    pub isolates: Vec<(Kind, Restart, u64)>,
    pub leaves: Vec<Vec<(Kind, Restart, u64)>>,
    pub nested: Option<Box<GroupPlan>>,
    pub nested_at: usize,
}

/// A whole spec as plain data.
#[derive(Clone, Debug)]
pub struct SpecPlan {
    pub shards: usize,
    /// `(kind, capacity, mailbox, weight, working memory, scratch)`; kinds may repeat.
    pub types: Vec<(Kind, u32, u32, u32, u32, u32)>,
    pub root: GroupPlan,
    /// Shards past the first use a one-`Quiet` tree instead of `root` when set.
    pub simple_peers: bool,
    pub config: ShardConfig,
    pub ring_capacity: u32,
    pub overrides: Vec<RingOverride>,
    pub tick_ns: u64,
    pub recoveries_max: u32,
    pub recovery_window: u64,
    pub abort: bool,
    pub shutdown_timeout: u64,
}

fn restart(rng: &mut Rng) -> Restart {
    rng.pick(&[Restart::Permanent, Restart::Transient, Restart::Temporary])
}

fn kind(rng: &mut Rng, registered: &[Kind]) -> Kind {
    // Registered kinds, unless this child deviates (then maybe one the spec lacks).
    if !registered.is_empty() && !rng.deviate() {
        rng.pick(registered)
    } else {
        rng.pick(&KINDS)
    }
}

fn group_plan(rng: &mut Rng, registered: &[Kind], depth: usize) -> GroupPlan {
    let strategy = rng.pick(&[
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
    ]);
    let mut isolates = Vec::new();
    for _ in 0..rng.below(4) {
        isolates.push((kind(rng, registered), restart(rng), rng.next()));
    }
    let mut leaves = Vec::new();
    for _ in 0..rng.below(3) {
        let mut leaf = Vec::new();
        for _ in 0..rng.below(3) {
            leaf.push((kind(rng, registered), restart(rng), rng.next()));
        }
        leaves.push(leaf);
    }
    // Depth 9 (one past the limit) is reachable, rarely.
    let nested = (depth < 9 && rng.chance(if depth < 2 { 40 } else { 25 }))
        .then(|| Box::new(group_plan(rng, registered, depth + 1)));
    GroupPlan {
        strategy,
        restarts_max: if rng.deviate() {
            rng.pick(&EXTREMES)
        } else {
            rng.below(5) as u32
        },
        window: one_of(rng, 5000, &[0, 1, 10, u64::MAX]),
        dynamic: if strategy == Strategy::OneForOne || rng.deviate() {
            small(rng, 4)
        } else {
            0
        },
        nested_at: rng.below(8) as usize,
        isolates,
        leaves,
        nested,
    }
}

impl SpecPlan {
    pub fn random(rng: &mut Rng, shards_max: usize) -> SpecPlan {
        let shards = if rng.deviate() {
            rng.pick(&[0, 255, 256, 257])
        } else {
            match rng.below(10) {
                0..=4 => 1,
                5..=7 => 2,
                _ => 1 + rng.below(shards_max.max(1) as u64) as usize,
            }
        };
        let shards = if shards > shards_max && shards <= 256 {
            shards_max
        } else {
            shards
        };
        let type_count = if rng.deviate() && rng.chance(20) {
            rng.pick(&[0, 257])
        } else {
            1 + rng.below(5) as usize
        };
        let mut types = Vec::new();
        for i in 0..type_count {
            let k = if i < KINDS.len() && !(rng.deviate() && rng.chance(20)) {
                // Distinct kinds, never the over-aligned one by chance alone.
                let mut k = rng.pick(&KINDS[..6]);
                while types
                    .iter()
                    .any(|t: &(Kind, u32, u32, u32, u32, u32)| t.0 == k)
                    && types.len() < 6
                {
                    k = rng.pick(&KINDS[..6]);
                }
                k
            } else {
                rng.pick(&KINDS)
            };
            types.push((
                k,
                small(rng, 8),
                field(rng, 16),
                small(rng, 4),
                if rng.chance(70) { 0 } else { field(rng, 64) },
                if rng.chance(70) { 0 } else { field(rng, 256) },
            ));
        }
        let registered: Vec<Kind> = types.iter().map(|t| t.0).collect();
        let root = group_plan(rng, &registered, 0);
        let d = ShardConfig::DEFAULT;
        // Small sane sizes keep most specs bootable in a few MiB.
        let config = ShardConfig {
            message_pool_size: field(rng, 64),
            system_reserve: if rng.deviate() {
                Some(field(rng, 1))
            } else {
                None
            },
            timer_entries: field(rng, 32),
            timer_spokes: field(rng, 16),
            timer_expirations_per_tick_max: field(rng, 16),
            io_buffer_count: field(rng, 4),
            io_buffer_size: field(rng, 256),
            io_submissions_per_tick_max: field(rng, 16),
            messages_per_dispatch_max: field(rng, d.messages_per_dispatch_max),
            log_entries: field(rng, 16),
            transfer_buffer_count: field(rng, 2),
            transfer_buffer_size: field(rng, 256),
        };
        let ring_capacity = if rng.deviate() {
            rng.pick(&EXTREMES)
        } else {
            rng.pick(&[16, 64, 1024])
        };
        let mut overrides = Vec::new();
        if rng.chance(10) {
            for _ in 0..1 + rng.below(3) {
                overrides.push(RingOverride {
                    from: rng.below(shards.clamp(1, 256) as u64 + 1) as u8,
                    to: rng.below(shards.clamp(1, 256) as u64 + 1) as u8,
                    capacity: if rng.deviate() {
                        rng.pick(&EXTREMES)
                    } else {
                        16 << rng.below(8)
                    },
                });
            }
        }
        SpecPlan {
            shards,
            types,
            root,
            simple_peers: rng.chance(30),
            config,
            ring_capacity,
            overrides,
            tick_ns: one_of(rng, 1_000_000, &[0, 1, 1_000, u64::MAX]),
            recoveries_max: if rng.deviate() {
                rng.pick(&EXTREMES)
            } else {
                rng.below(4) as u32
            },
            recovery_window: one_of(rng, 60_000, &[0, 1, u64::MAX]),
            abort: rng.chance(5),
            shutdown_timeout: one_of(rng, 5_000, &[0, 1, 100, u64::MAX]),
        }
    }

    /// Whether some isolate of the tree fails or panics in `init` (boot may then fail).
    pub fn has_failing_init(&self) -> bool {
        fn walk(g: &GroupPlan) -> bool {
            let bad = |k: &Kind| matches!(k, Kind::Failer | Kind::Panicker);
            g.isolates.iter().any(|i| bad(&i.0))
                || g.leaves.iter().flatten().any(|i| bad(&i.0))
                || g.nested.as_deref().is_some_and(walk)
        }
        walk(&self.root)
    }

    /// Builds the spec and hands it to `f`.
    pub fn with_spec<R>(&self, f: &mut dyn FnMut(&SystemSpec<'_>) -> R) -> R {
        let names: Vec<&'static str> = self.types.iter().map(|t| t.0.name()).collect();
        let types: Vec<TypeSpec> = self
            .types
            .iter()
            .zip(&names)
            .map(|(&(k, cap, mailbox, weight, working, scratch), name)| {
                k.type_spec(name)
                    .capacity(cap)
                    .mailbox_capacity(mailbox)
                    .budget_weight(weight)
                    .working_memory(working)
                    .scratch(scratch)
            })
            .collect();
        let simple_children = [Kind::Quiet.child(0, Restart::Permanent)];
        with_group(&self.root, &mut |root| {
            let simple = GroupSpec::one_for_one(&simple_children);
            let shards: Vec<ShardSpec<'_>> = (0..self.shards)
                .map(|i| ShardSpec {
                    root: if i > 0 && self.simple_peers {
                        simple
                    } else {
                        root
                    },
                })
                .collect();
            let mut spec = SystemSpec::new(&shards, &types);
            spec.shard = self.config;
            spec.ring_capacity = self.ring_capacity;
            spec.ring_overrides = &self.overrides;
            spec.tick_ns = self.tick_ns;
            spec.recoveries_max = self.recoveries_max;
            spec.recovery_window = Duration::from_millis(self.recovery_window);
            spec.quarantine = if self.abort {
                QuarantinePolicy::Abort
            } else {
                QuarantinePolicy::Quarantine
            };
            spec.shutdown_timeout = Duration::from_millis(self.shutdown_timeout);
            f(&spec)
        })
    }

    /// A one-line summary for failure reports.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{} shard(s), types {:?}, ring {} (+{} overrides), config {:?}",
            self.shards,
            self.types,
            self.ring_capacity,
            self.overrides.len(),
            self.config
        );
        s
    }
}

fn isolate_children(items: &[(Kind, Restart, u64)]) -> Vec<ChildSpec<'static>> {
    items.iter().map(|&(k, r, a)| k.child(a, r)).collect()
}

/// Materialises `plan` (its nested group first, deepest first) and hands the group to `f`.
fn with_group<R>(plan: &GroupPlan, f: &mut dyn FnMut(GroupSpec<'_>) -> R) -> R {
    let leaves: Vec<Vec<ChildSpec<'static>>> =
        plan.leaves.iter().map(|l| isolate_children(l)).collect();
    match &plan.nested {
        Some(nested) => with_group(nested, &mut |inner| build(plan, &leaves, Some(inner), f)),
        None => build(plan, &leaves, None, f),
    }
}

fn build<R>(
    plan: &GroupPlan,
    leaves: &[Vec<ChildSpec<'static>>],
    nested: Option<GroupSpec<'_>>,
    f: &mut dyn FnMut(GroupSpec<'_>) -> R,
) -> R {
    let mut children: Vec<ChildSpec<'_>> = isolate_children(&plan.isolates);
    for leaf in leaves {
        children.push(ChildSpec::Group(GroupSpec::one_for_one(leaf)));
    }
    if let Some(inner) = nested {
        let at = plan.nested_at.min(children.len());
        children.insert(at, ChildSpec::Group(inner));
    }
    let group = GroupSpec::one_for_one(&children)
        .strategy(plan.strategy)
        .budget(plan.restarts_max, Duration::from_millis(plan.window))
        .dynamic(plan.dynamic);
    f(group)
}

/// Keeps the expected panics of `Panicker::init` out of the output (the platform's trap
/// catches them); every other panic is reported as usual.
pub fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.contains("spec fuzz: init panics"));
        if !expected {
            default(info);
        }
    }));
}

/// How long a fuzz run is and where it starts.
pub struct Settings {
    pub first_seed: u64,
    pub cases: u64,
}

impl Settings {
    /// `TINA_SPEC_FUZZ_SEED` (the first seed, default `default_seed`) and
    /// `TINA_SPEC_FUZZ_CASES` (how many, default `default_cases`).
    pub fn from_env(default_seed: u64, default_cases: u64) -> Settings {
        let read = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
                })
                .unwrap_or(default)
        };
        Settings {
            first_seed: read("TINA_SPEC_FUZZ_SEED", default_seed),
            cases: read("TINA_SPEC_FUZZ_CASES", default_cases),
        }
    }
}
