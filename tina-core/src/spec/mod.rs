//! The boot spec: the whole system as data, validated before anything runs.
//!
//! A [`SystemSpec`] names the isolate types, the per-shard sizes of every bounded structure,
//! the cross-shard ring capacities and, per shard, a supervision tree of groups and children.
//! [`SystemSpec::validate`] checks every structural rule up front; each failure is a
//! [`SpecError`] that names the field (as a path like `shards[1].root.children[0]`), the value
//! and the rule, and whose `Display` says how to fix it.
//!
//! Specs contain only `Copy` data, slices and function pointers, so they can be `static`s on
//! bare metal and built at run time on hosted platforms alike.

use crate::model::handle::{SLOT_MAX, TypeId};
use crate::model::isolate::{INIT_ARGS_SIZE_MAX, InitArgs, Isolate};
use crate::model::time::Duration;
use crate::scheduler::arena::TypeVtable;
use core::fmt;

/// Default mailbox capacity per isolate.
pub const MAILBOX_CAPACITY_DEFAULT: u32 = 256;
/// Dispatches per tick granted to a type per unit of budget weight.
pub const DISPATCHES_PER_WEIGHT: u32 = 256;
/// Largest budget weight a type can have.
pub const BUDGET_WEIGHT_MAX: u32 = 64;
/// Largest alignment an isolate type may require (the shard region's base alignment).
pub const ALIGN_MAX: usize = 128;
/// Deepest nesting of supervision groups.
pub const GROUP_DEPTH_MAX: usize = 8;
/// Smallest cross-shard ring capacity.
pub const RING_CAPACITY_MIN: u32 = 16;
/// Largest cross-shard ring capacity (2^20 messages: 128 MiB of slots per ring).
pub const RING_CAPACITY_MAX: u32 = 1 << 20;
const _: () = assert!(
    RING_CAPACITY_MIN.is_power_of_two()
        && RING_CAPACITY_MAX.is_power_of_two()
        && RING_CAPACITY_MIN <= RING_CAPACITY_MAX
);

/// Largest `io_submissions_per_tick_max` (one tick's batch; platforms size their operation
/// tables from it).
pub const IO_SUBMISSIONS_PER_TICK_MAX: u32 = 1 << 16;
/// Largest restart budget of a group, and largest `recoveries_max` of a system (each entry
/// is a remembered time in the shard's region).
pub const RESTARTS_MAX: u32 = u16::MAX as u32;

/// How a supervision group reacts when a child exits abnormally (or, for `Permanent`
/// children, at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Strategy {
    /// Restart only the child that exited.
    OneForOne,
    /// Stop every child (in reverse order) and restart them all (in order).
    OneForAll,
    /// Stop the children declared after the one that exited (in reverse order) and restart
    /// it and them (in order).
    RestForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Restart {
    /// Always, whether it crashed or returned `Done`.
    Permanent,
    /// Only after a crash.
    Transient,
    /// Never.
    Temporary,
}

/// A restart budget: at most `restarts_max` restarts within any `window` of ticks, else the
/// group escalates to its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RestartBudget {
    /// Restarts allowed in one window.
    pub restarts_max: u32,
    /// The window's length.
    pub window: Duration,
}

impl RestartBudget {
    /// A sensible default: 3 restarts within 5000 ticks.
    pub const DEFAULT: RestartBudget = RestartBudget {
        restarts_max: 3,
        window: Duration::from_ticks(5000),
    };
}

/// Identifies an isolate type by its Rust type, resolved to a [`TypeId`] at validation.
#[derive(Clone, Copy)]
pub struct TypeRef(pub(crate) fn() -> core::any::TypeId);

impl TypeRef {
    /// The type `T`.
    pub const fn of<T: Isolate>() -> TypeRef {
        TypeRef(core::any::TypeId::of::<T>)
    }
}

impl fmt::Debug for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypeRef")
    }
}

/// One registered isolate type and its per-shard sizes.
#[derive(Clone, Copy, Debug)]
pub struct TypeSpec {
    /// A name for logs and errors.
    pub name: &'static str,
    /// Instances per shard (arena slots).
    pub capacity: u32,
    /// Messages each instance's mailbox holds at most.
    pub mailbox_capacity: u32,
    /// Dispatch budget weight: the type gets `weight × 256` handler calls per tick.
    pub budget_weight: u32,
    /// Bytes of working memory each instance owns for its whole life.
    pub working_memory_size: u32,
    /// Bytes of the per-shard scratch area a handler of this type may use.
    pub scratch_size: u32,
    pub(crate) vtable: TypeVtable,
}

impl TypeSpec {
    /// Registers `T` with defaults: capacity 1, mailbox 256, weight 1, no working memory or
    /// scratch.
    pub const fn of<T: Isolate>(name: &'static str) -> TypeSpec {
        const { assert!(core::mem::size_of::<T::Args>() <= INIT_ARGS_SIZE_MAX) };
        TypeSpec {
            name,
            capacity: 1,
            mailbox_capacity: MAILBOX_CAPACITY_DEFAULT,
            budget_weight: 1,
            working_memory_size: 0,
            scratch_size: 0,
            vtable: TypeVtable::of::<T>(),
        }
    }

    /// Sets the instances per shard.
    pub const fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the mailbox capacity.
    pub const fn mailbox_capacity(mut self, n: u32) -> Self {
        self.mailbox_capacity = n;
        self
    }

    /// Sets the budget weight.
    pub const fn budget_weight(mut self, w: u32) -> Self {
        self.budget_weight = w;
        self
    }

    /// Sets the working memory per instance.
    pub const fn working_memory(mut self, bytes: u32) -> Self {
        self.working_memory_size = bytes;
        self
    }

    /// Sets the scratch bytes a handler may use.
    pub const fn scratch(mut self, bytes: u32) -> Self {
        self.scratch_size = bytes;
        self
    }

    pub(crate) fn is_type(&self, r: TypeRef) -> bool {
        (self.vtable.rust_type)() == (r.0)()
    }
}

/// A child of a supervision group.
#[derive(Clone, Copy, Debug)]
pub enum ChildSpec<'s> {
    /// An isolate.
    Isolate {
        /// Its type.
        ty: TypeRef,
        /// Its init arguments (also used for restarts).
        args: InitArgs,
        /// When it is restarted.
        restart: Restart,
    },
    /// A nested group.
    Group(GroupSpec<'s>),
}

impl<'s> ChildSpec<'s> {
    /// An isolate child with typed arguments.
    pub fn isolate<T: Isolate>(args: &T::Args, restart: Restart) -> ChildSpec<'s> {
        ChildSpec::Isolate {
            ty: TypeRef::of::<T>(),
            args: InitArgs::new(args),
            restart,
        }
    }

    /// An isolate child with all-zero arguments (usable in `const`/`static` specs).
    pub const fn isolate_zeroed<T: Isolate>(restart: Restart) -> ChildSpec<'s> {
        ChildSpec::Isolate {
            ty: TypeRef::of::<T>(),
            args: InitArgs::EMPTY,
            restart,
        }
    }
}

/// A supervision group.
#[derive(Clone, Copy, Debug)]
pub struct GroupSpec<'s> {
    /// How the group restarts children.
    pub strategy: Strategy,
    /// How many restarts it may perform before escalating.
    pub budget: RestartBudget,
    /// Static children, spawned at boot in order.
    pub children: &'s [ChildSpec<'s>],
    /// Room for children spawned at run time (one-for-one groups only).
    pub dynamic_capacity: u32,
}

impl<'s> GroupSpec<'s> {
    /// A one-for-one group with the default budget and no dynamic room.
    pub const fn one_for_one(children: &'s [ChildSpec<'s>]) -> GroupSpec<'s> {
        GroupSpec {
            strategy: Strategy::OneForOne,
            budget: RestartBudget::DEFAULT,
            children,
            dynamic_capacity: 0,
        }
    }

    /// Sets the strategy.
    pub const fn strategy(mut self, s: Strategy) -> Self {
        self.strategy = s;
        self
    }

    /// Sets the restart budget.
    pub const fn budget(mut self, restarts_max: u32, window: Duration) -> Self {
        self.budget = RestartBudget {
            restarts_max,
            window,
        };
        self
    }

    /// Sets the room for dynamic children.
    pub const fn dynamic(mut self, capacity: u32) -> Self {
        self.dynamic_capacity = capacity;
        self
    }
}

/// One shard: its supervision tree.
#[derive(Clone, Copy, Debug)]
pub struct ShardSpec<'s> {
    /// The root group.
    pub root: GroupSpec<'s>,
}

/// Sizes of every bounded per-shard structure (the same for all shards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShardConfig {
    /// Message envelopes in the shard's pool.
    pub message_pool_size: u32,
    /// Envelopes only control-plane traffic (timers, replies) may use. `None`: 1% of the pool,
    /// at least 1.
    pub system_reserve: Option<u32>,
    /// Timer entries (user timers and call timeouts).
    pub timer_entries: u32,
    /// Spokes of the timer wheel (a power of two).
    pub timer_spokes: u32,
    /// Timers fired per tick at most; the rest fire on the next ticks.
    pub timer_expirations_per_tick_max: u32,
    /// Reactor-owned I/O buffers.
    pub io_buffer_count: u32,
    /// Bytes per I/O buffer.
    pub io_buffer_size: u32,
    /// I/O operations submitted per tick at most (one batch per tick).
    pub io_submissions_per_tick_max: u32,
    /// Handler calls one isolate gets in a row before the next ready isolate runs.
    pub messages_per_dispatch_max: u32,
    /// Log records buffered per tick (beyond them records are dropped and counted).
    pub log_entries: u32,
    /// Transfer buffers (shard-local payloads larger than 96 bytes).
    pub transfer_buffer_count: u32,
    /// Bytes per transfer buffer.
    pub transfer_buffer_size: u32,
}

impl ShardConfig {
    /// Defaults sized for a small service.
    pub const DEFAULT: ShardConfig = ShardConfig {
        message_pool_size: 4096,
        system_reserve: None,
        timer_entries: 1024,
        timer_spokes: 256,
        timer_expirations_per_tick_max: 1024,
        io_buffer_count: 64,
        io_buffer_size: 16 * 1024,
        io_submissions_per_tick_max: 256,
        messages_per_dispatch_max: 16,
        log_entries: 256,
        transfer_buffer_count: 16,
        transfer_buffer_size: 4096,
    };

    /// The effective system reserve.
    pub fn system_reserve(&self) -> u32 {
        self.system_reserve
            .unwrap_or((self.message_pool_size / 100).max(1))
    }
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig::DEFAULT
    }
}

/// A per-pair override of the ring capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RingOverride {
    /// Producer shard.
    pub from: u8,
    /// Consumer shard.
    pub to: u8,
    /// Capacity (a power of two from 16 to 2^20).
    pub capacity: u32,
}

/// What happens when a shard recovers too often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QuarantinePolicy {
    /// Stop the shard; peers' sends to it fail with `StaleHandle` until it is revived.
    Quarantine,
    /// Abort the whole process (platforms that can).
    Abort,
}

/// The whole system.
#[derive(Clone, Copy, Debug)]
pub struct SystemSpec<'s> {
    /// One entry per shard.
    pub shards: &'s [ShardSpec<'s>],
    /// The isolate types; a type's [`TypeId`] is its index here.
    pub types: &'s [TypeSpec],
    /// Per-shard sizes.
    pub shard: ShardConfig,
    /// Default capacity of each cross-shard ring (a power of two from 16 to 2^20).
    pub ring_capacity: u32,
    /// Per-pair ring capacities.
    pub ring_overrides: &'s [RingOverride],
    /// Nanoseconds per tick (platforms convert wall time with it).
    pub tick_ns: u64,
    /// Shard recoveries allowed within `recovery_window` before the policy applies.
    pub recoveries_max: u32,
    /// The window for `recoveries_max`.
    pub recovery_window: Duration,
    /// Quarantine or abort.
    pub quarantine: QuarantinePolicy,
    /// How long a graceful shutdown may take before it is forced.
    pub shutdown_timeout: Duration,
}

impl<'s> SystemSpec<'s> {
    /// A spec with default sizes (1 ms ticks, rings of 1024).
    pub const fn new(shards: &'s [ShardSpec<'s>], types: &'s [TypeSpec]) -> SystemSpec<'s> {
        SystemSpec {
            shards,
            types,
            shard: ShardConfig::DEFAULT,
            ring_capacity: 1024,
            ring_overrides: &[],
            tick_ns: 1_000_000,
            recoveries_max: 3,
            recovery_window: Duration::from_ticks(60_000),
            quarantine: QuarantinePolicy::Quarantine,
            shutdown_timeout: Duration::from_ticks(5_000),
        }
    }

    /// The ring capacity from shard `from` to shard `to`.
    pub fn ring_capacity_between(&self, from: u8, to: u8) -> u32 {
        self.ring_overrides
            .iter()
            .rev()
            .find(|o| o.from == from && o.to == to)
            .map_or(self.ring_capacity, |o| o.capacity)
    }

    /// The [`TypeId`] of `T`, if registered.
    pub fn type_id_of<T: Isolate>(&self) -> Option<TypeId> {
        self.resolve(TypeRef::of::<T>())
    }

    pub(crate) fn resolve(&self, r: TypeRef) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.is_type(r))
            .map(|i| TypeId(i as u8))
    }

    /// Checks every structural rule; the first violation is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        let sys = |field, value, rule| SpecError::new(Location::System, field, value, rule);
        if self.shards.is_empty() || self.shards.len() > 256 {
            return Err(sys(
                "shards.len()",
                self.shards.len() as u64,
                Rule::ShardCount,
            ));
        }
        if self.types.is_empty() || self.types.len() > 256 {
            return Err(sys("types.len()", self.types.len() as u64, Rule::TypeCount));
        }
        if self.tick_ns == 0 {
            return Err(sys("tick_ns", 0, Rule::AtLeastOne));
        }
        if self.recovery_window.ticks() == 0 {
            return Err(sys("recovery_window", 0, Rule::AtLeastOne));
        }
        if self.recoveries_max > RESTARTS_MAX {
            return Err(sys(
                "recoveries_max",
                u64::from(self.recoveries_max),
                Rule::RestartsMax,
            ));
        }
        self.validate_config()?;
        if !valid_ring_capacity(self.ring_capacity) {
            return Err(sys(
                "ring_capacity",
                u64::from(self.ring_capacity),
                Rule::RingCapacity,
            ));
        }
        for (i, o) in self.ring_overrides.iter().enumerate() {
            let at = Location::RingOverride(i as u16);
            let n = self.shards.len();
            if usize::from(o.from) >= n || usize::from(o.to) >= n || o.from == o.to {
                let v = (u64::from(o.from) << 8) | u64::from(o.to);
                return Err(SpecError::new(at, "from/to", v, Rule::RingPair));
            }
            if !valid_ring_capacity(o.capacity) {
                return Err(SpecError::new(
                    at,
                    "capacity",
                    u64::from(o.capacity),
                    Rule::RingCapacity,
                ));
            }
        }
        for (i, t) in self.types.iter().enumerate() {
            self.validate_type(i, t)?;
        }
        for (s, shard) in self.shards.iter().enumerate() {
            let mut static_counts = [0u32; 256];
            let mut groups = 0u32;
            let mut path = GroupPath::root(s as u16);
            self.validate_group(&shard.root, &mut path, 0, &mut static_counts, &mut groups)?;
            for (i, t) in self.types.iter().enumerate() {
                if static_counts[i] > t.capacity {
                    return Err(SpecError::new(
                        Location::Shard(s as u16),
                        "static children of one type",
                        u64::from(static_counts[i]),
                        Rule::StaticChildrenExceedCapacity {
                            type_name: t.name,
                            capacity: t.capacity,
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_config(&self) -> Result<(), SpecError> {
        let c = &self.shard;
        let cfg = |field, value: u32, rule| {
            SpecError::new(Location::ShardConfig, field, u64::from(value), rule)
        };
        if c.message_pool_size == 0 || c.message_pool_size > SLOT_MAX {
            return Err(cfg(
                "message_pool_size",
                c.message_pool_size,
                Rule::PoolSize,
            ));
        }
        if c.system_reserve() >= c.message_pool_size {
            return Err(cfg(
                "system_reserve",
                c.system_reserve(),
                Rule::ReserveBelowPool,
            ));
        }
        if c.timer_entries == 0 || c.timer_entries > SLOT_MAX {
            return Err(cfg("timer_entries", c.timer_entries, Rule::TimerEntries));
        }
        if !c.timer_spokes.is_power_of_two() || c.timer_spokes > 1 << 16 {
            return Err(cfg("timer_spokes", c.timer_spokes, Rule::PowerOfTwo));
        }
        if c.timer_expirations_per_tick_max == 0 {
            return Err(cfg("timer_expirations_per_tick_max", 0, Rule::AtLeastOne));
        }
        if c.io_buffer_count > u32::from(u16::MAX) {
            return Err(cfg(
                "io_buffer_count",
                c.io_buffer_count,
                Rule::IoBufferCount,
            ));
        }
        if c.io_buffer_count > 0 && c.io_buffer_size == 0 {
            return Err(cfg("io_buffer_size", 0, Rule::AtLeastOne));
        }
        if c.transfer_buffer_count > u32::from(u16::MAX) {
            return Err(cfg(
                "transfer_buffer_count",
                c.transfer_buffer_count,
                Rule::IoBufferCount,
            ));
        }
        if c.transfer_buffer_count > 0 && c.transfer_buffer_size == 0 {
            return Err(cfg("transfer_buffer_size", 0, Rule::AtLeastOne));
        }
        if c.io_submissions_per_tick_max == 0
            || c.io_submissions_per_tick_max > IO_SUBMISSIONS_PER_TICK_MAX
        {
            return Err(cfg(
                "io_submissions_per_tick_max",
                c.io_submissions_per_tick_max,
                Rule::IoSubmissions,
            ));
        }
        if c.messages_per_dispatch_max == 0 {
            return Err(cfg("messages_per_dispatch_max", 0, Rule::AtLeastOne));
        }
        Ok(())
    }

    fn validate_type(&self, i: usize, t: &TypeSpec) -> Result<(), SpecError> {
        let at = Location::Type(i as u16);
        if t.capacity == 0 || t.capacity > SLOT_MAX + 1 {
            return Err(SpecError::new(
                at,
                "capacity",
                u64::from(t.capacity),
                Rule::TypeCapacity,
            ));
        }
        if t.mailbox_capacity == 0 {
            return Err(SpecError::new(at, "mailbox_capacity", 0, Rule::AtLeastOne));
        }
        if t.budget_weight == 0 || t.budget_weight > BUDGET_WEIGHT_MAX {
            return Err(SpecError::new(
                at,
                "budget_weight",
                u64::from(t.budget_weight),
                Rule::BudgetWeight,
            ));
        }
        if t.vtable.align > ALIGN_MAX {
            return Err(SpecError::new(
                at,
                "align_of::<T>()",
                t.vtable.align as u64,
                Rule::Alignment,
            ));
        }
        let first = self
            .types
            .iter()
            .position(|o| (o.vtable.rust_type)() == (t.vtable.rust_type)());
        if first != Some(i) {
            return Err(SpecError::new(
                at,
                "Rust type",
                first.unwrap_or(0) as u64,
                Rule::DuplicateType { type_name: t.name },
            ));
        }
        Ok(())
    }

    fn validate_group(
        &self,
        g: &GroupSpec<'_>,
        path: &mut GroupPath,
        depth: usize,
        static_counts: &mut [u32; 256],
        groups: &mut u32,
    ) -> Result<(), SpecError> {
        *groups += 1;
        if *groups > u32::from(u16::MAX) {
            return Err(SpecError::new(
                Location::Group(*path),
                "group count",
                u64::from(*groups),
                Rule::TooManyGroups,
            ));
        }
        if depth >= GROUP_DEPTH_MAX {
            return Err(SpecError::new(
                Location::Group(*path),
                "depth",
                depth as u64,
                Rule::GroupDepth,
            ));
        }
        if g.budget.restarts_max > RESTARTS_MAX {
            return Err(SpecError::new(
                Location::Group(*path),
                "budget.restarts_max",
                u64::from(g.budget.restarts_max),
                Rule::RestartsMax,
            ));
        }
        if g.budget.window.ticks() == 0 {
            return Err(SpecError::new(
                Location::Group(*path),
                "budget.window",
                0,
                Rule::BudgetWindow,
            ));
        }
        if g.dynamic_capacity > 0 && g.strategy != Strategy::OneForOne {
            return Err(SpecError::new(
                Location::Group(*path),
                "dynamic_capacity",
                u64::from(g.dynamic_capacity),
                Rule::DynamicNeedsOneForOne,
            ));
        }
        if g.children.len() > u16::MAX as usize {
            return Err(SpecError::new(
                Location::Group(*path),
                "children.len()",
                g.children.len() as u64,
                Rule::TooManyGroups,
            ));
        }
        for (c, child) in g.children.iter().enumerate() {
            match child {
                ChildSpec::Isolate { ty, .. } => match self.resolve(*ty) {
                    Some(id) => static_counts[usize::from(id.0)] += 1,
                    None => {
                        return Err(SpecError::new(
                            Location::Child(*path, c as u16),
                            "ty",
                            c as u64,
                            Rule::UnknownType,
                        ));
                    }
                },
                ChildSpec::Group(inner) => {
                    let mut inner_path = *path;
                    inner_path.push(c as u16);
                    self.validate_group(inner, &mut inner_path, depth + 1, static_counts, groups)?;
                }
            }
        }
        Ok(())
    }
}

fn valid_ring_capacity(c: u32) -> bool {
    c.is_power_of_two() && (RING_CAPACITY_MIN..=RING_CAPACITY_MAX).contains(&c)
}

/// Path of a group inside a shard's tree: `shards[s].root.children[a].children[b]…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPath {
    shard: u16,
    steps: [u16; GROUP_DEPTH_MAX],
    depth: u8,
}

impl GroupPath {
    fn root(shard: u16) -> GroupPath {
        GroupPath {
            shard,
            steps: [0; GROUP_DEPTH_MAX],
            depth: 0,
        }
    }

    /// The path of the group reached from shard `shard`'s root through `steps` (child
    /// indices, outermost first; at most [`GROUP_DEPTH_MAX`] are kept).
    pub(crate) fn from_steps(shard: u16, steps: impl IntoIterator<Item = u16>) -> GroupPath {
        let mut path = GroupPath::root(shard);
        for s in steps {
            path.push(s);
        }
        path
    }

    fn push(&mut self, child: u16) {
        if usize::from(self.depth) < GROUP_DEPTH_MAX {
            self.steps[usize::from(self.depth)] = child;
            self.depth += 1;
        }
    }
}

impl fmt::Display for GroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shards[{}].root", self.shard)?;
        for s in &self.steps[..usize::from(self.depth)] {
            write!(f, ".children[{s}]")?;
        }
        Ok(())
    }
}

/// Where in the spec an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A top-level field of [`SystemSpec`].
    System,
    /// A field of [`SystemSpec::shard`].
    ShardConfig,
    /// `types[i]`.
    Type(u16),
    /// `ring_overrides[i]`.
    RingOverride(u16),
    /// `shards[i]`.
    Shard(u16),
    /// A group.
    Group(GroupPath),
    /// A group's child.
    Child(GroupPath, u16),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::System => f.write_str("spec"),
            Location::ShardConfig => f.write_str("spec.shard"),
            Location::Type(i) => write!(f, "types[{i}]"),
            Location::RingOverride(i) => write!(f, "ring_overrides[{i}]"),
            Location::Shard(i) => write!(f, "shards[{i}]"),
            Location::Group(p) => write!(f, "{p}"),
            Location::Child(p, c) => write!(f, "{p}.children[{c}]"),
        }
    }
}

/// The rule a spec broke; its `Display` explains the rule and the fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// 1 to 256 shards.
    ShardCount,
    /// 1 to 256 types.
    TypeCount,
    /// Must be at least 1.
    AtLeastOne,
    /// Must be a power of two.
    PowerOfTwo,
    /// Pool between 1 and 2^20 − 1.
    PoolSize,
    /// Reserve smaller than the pool.
    ReserveBelowPool,
    /// Timer entries between 1 and 2^20 − 1.
    TimerEntries,
    /// At most 65535 I/O buffers.
    IoBufferCount,
    /// Ring capacity a power of two from 16 to 2^20.
    RingCapacity,
    /// At most 65535 restarts (or shard recoveries) per window.
    RestartsMax,
    /// I/O submissions per tick between 1 and 65536.
    IoSubmissions,
    /// Ring override names two distinct existing shards.
    RingPair,
    /// Type capacity between 1 and 2^20.
    TypeCapacity,
    /// Budget weight between 1 and 64.
    BudgetWeight,
    /// Alignment at most 128.
    Alignment,
    /// A Rust type registered twice.
    DuplicateType {
        /// Name of the later registration.
        type_name: &'static str,
    },
    /// Budget window of zero ticks.
    BudgetWindow,
    /// Dynamic children only in one-for-one groups.
    DynamicNeedsOneForOne,
    /// Nesting deeper than 8.
    GroupDepth,
    /// More than 65535 groups or children.
    TooManyGroups,
    /// A child's type is not registered.
    UnknownType,
    /// More static children of a type than its capacity.
    StaticChildrenExceedCapacity {
        /// The type.
        type_name: &'static str,
        /// Its capacity.
        capacity: u32,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::ShardCount => f.write_str("a system has 1 to 256 shards; list one ShardSpec per shard"),
            Rule::TypeCount => f.write_str("a system registers 1 to 256 isolate types; add TypeSpec::of::<T>(..) entries"),
            Rule::AtLeastOne => f.write_str("must be at least 1"),
            Rule::PowerOfTwo => f.write_str("must be a power of two (at most 65536)"),
            Rule::PoolSize => f.write_str("the message pool holds 1 to 1048575 envelopes"),
            Rule::ReserveBelowPool => f.write_str("the system reserve must be smaller than message_pool_size, or user traffic could never send"),
            Rule::TimerEntries => f.write_str("timer entries must be between 1 and 1048575"),
            Rule::IoBufferCount => f.write_str("at most 65535 buffers of a kind per shard"),
            Rule::RingCapacity => f.write_str("ring capacities are powers of two from 16 to 1048576 (e.g. 16, 64, 1024)"),
            Rule::RestartsMax => f.write_str("at most 65535 restarts (or shard recoveries) per window"),
            Rule::IoSubmissions => f.write_str("a shard submits 1 to 65536 I/O operations per tick"),
            Rule::RingPair => f.write_str("a ring override names two different shards that exist (value = from << 8 | to)"),
            Rule::TypeCapacity => f.write_str("a type holds 1 to 1048576 instances per shard (20-bit slots)"),
            Rule::BudgetWeight => f.write_str("budget weights are 1 to 64 (weight x 256 dispatches per tick)"),
            Rule::Alignment => f.write_str("isolate types may need at most 128-byte alignment; move big aligned buffers to working memory"),
            Rule::DuplicateType { type_name } => write!(f, "type `{type_name}` is registered twice (value = index of the first registration); remove one"),
            Rule::BudgetWindow => f.write_str("a restart budget window must span at least 1 tick"),
            Rule::DynamicNeedsOneForOne => f.write_str("dynamic children are only allowed in OneForOne groups; set dynamic_capacity to 0 or use Strategy::OneForOne"),
            Rule::GroupDepth => f.write_str("supervision groups nest at most 8 deep"),
            Rule::TooManyGroups => f.write_str("at most 65535 groups per shard and children per group"),
            Rule::UnknownType => f.write_str("the child's type is not registered; add TypeSpec::of::<T>(..) to SystemSpec::types"),
            Rule::StaticChildrenExceedCapacity { type_name, capacity } => write!(f, "more static children of `{type_name}` than its capacity {capacity}; raise TypeSpec::capacity"),
        }
    }
}

/// A structural error in a [`SystemSpec`]: the field, its value, and the rule it broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Where.
    pub location: Location,
    /// Which field.
    pub field: &'static str,
    /// Its value.
    pub value: u64,
    /// The rule it broke.
    pub rule: Rule,
}

impl SpecError {
    fn new(location: Location, field: &'static str, value: u64, rule: Rule) -> SpecError {
        SpecError {
            location,
            field,
            value,
            rule,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid spec: {}.{} = {}: {}",
            self.location, self.field, self.value, self.rule
        )
    }
}

impl core::error::Error for SpecError {}
