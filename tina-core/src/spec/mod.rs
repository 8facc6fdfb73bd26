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

use crate::memory::args::InitArgs;
use crate::model::address::{Name, NameRef};
use crate::model::handle::{SLOT_MAX, TypeId};
use crate::model::isolate::{INIT_ARGS_SIZE_MAX, Isolate};
use crate::model::time::Duration;
use crate::scheduler::arena::TypeVtable;
use core::fmt;

mod validate;

pub use validate::{GroupPath, Location, Rule, SpecError};

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
/// Smallest cross-shard ring capacity (the ring's own limit).
pub use crate::cross_shard::ring::RING_CAPACITY_MIN;
/// Largest cross-shard ring capacity (2^20 messages: 128 MiB of slots per ring).
pub const RING_CAPACITY_MAX: u32 = 1 << 20;
const _: () = assert!(
    RING_CAPACITY_MIN.is_power_of_two()
        && RING_CAPACITY_MAX.is_power_of_two()
        && RING_CAPACITY_MIN <= RING_CAPACITY_MAX as usize
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

/// A restart budget: at most `restarts_max` restarts within any `window`, else the group
/// escalates to its parent. The window is converted to ticks with the shard's `tick_ns`,
/// rounding up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RestartBudget {
    /// Restarts allowed in one window.
    pub restarts_max: u32,
    /// The window's length.
    pub window: Duration,
}

impl RestartBudget {
    /// A sensible default: 3 restarts within 5 seconds.
    pub const DEFAULT: RestartBudget = RestartBudget {
        restarts_max: 3,
        window: Duration::from_secs(5),
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
    /// I/O operations each instance may have in flight at once, counting a parked
    /// `Effect::Io`: up to `io_in_flight_max − 1` submitted with `Ctx::submit`, plus the
    /// parked one (1 to [`IO_IN_FLIGHT_MAX`](crate::io::IO_IN_FLIGHT_MAX); default 1: only
    /// `Effect::Io`). Each submitted slot costs one completion slot per instance.
    pub io_in_flight_max: u8,
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
            io_in_flight_max: 1,
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

    /// Sets the I/O operations each instance may have in flight at once (see
    /// [`TypeSpec::io_in_flight_max`]; e.g. 3 for a receive and a send submitted at once
    /// plus a parked `Effect::Io`).
    pub const fn io_in_flight_max(mut self, n: u8) -> Self {
        self.io_in_flight_max = n;
        self
    }

    /// Submitted operations (tickets) each instance may have in flight.
    pub(crate) fn io_tickets(&self) -> usize {
        usize::from(self.io_in_flight_max.saturating_sub(1))
    }

    /// Whether this registration is of the type `r` names: the same function (the usual
    /// case, one comparison) or, failing that, the same `core::any::TypeId` (a function may
    /// exist twice, one per codegen unit).
    pub(crate) fn is_type(&self, r: TypeRef) -> bool {
        core::ptr::fn_addr_eq(self.vtable.rust_type, r.0) || (self.vtable.rust_type)() == (r.0)()
    }
}

/// A child of a supervision group.
#[derive(Clone, Copy, Debug)]
pub enum ChildSpec<'s> {
    /// An isolate.
    Isolate {
        /// Its type.
        ty: TypeRef,
        /// Its init arguments (also used for restarts): a value of `ty`'s `Isolate::Args`
        /// (validation refuses any other type, see `Rule::ArgsTypeMismatch`).
        args: InitArgs,
        /// When it is restarted.
        restart: Restart,
        /// Its name, if it is reachable by name from every shard ([`ChildSpec::named`]).
        name: Option<NameRef>,
    },
    /// A nested group.
    Group(GroupSpec<'s>),
}

impl<'s> ChildSpec<'s> {
    /// An isolate child with typed arguments (a copy is kept for restarts). A `const fn`, so
    /// specs can be `static`s.
    pub const fn isolate<T: Isolate>(args: &T::Args, restart: Restart) -> ChildSpec<'s> {
        ChildSpec::Isolate {
            ty: TypeRef::of::<T>(),
            args: InitArgs::new(args),
            restart,
            name: None,
        }
    }

    /// A static isolate child with a name: any shard can address it as "the isolate named
    /// `name` on this shard" ([`Ctx::on_shard`](crate::Ctx::on_shard),
    /// [`Ctx::by_key`](crate::Ctx::by_key)), whatever incarnation is running. Names are
    /// unique per shard (checked by validation). A `const fn`, like [`ChildSpec::isolate`].
    pub const fn named<T: Isolate>(
        name: Name<T>,
        args: &T::Args,
        restart: Restart,
    ) -> ChildSpec<'s> {
        ChildSpec::Isolate {
            ty: TypeRef::of::<T>(),
            args: InitArgs::new(args),
            restart,
            name: Some(name.erase()),
        }
    }

    /// The child's name, if it has one.
    pub fn name(&self) -> Option<NameRef> {
        match self {
            ChildSpec::Isolate { name, .. } => *name,
            ChildSpec::Group(_) => None,
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
    /// Every shard's pool of bulk slots, for payloads larger than an envelope sent to any
    /// shard (see [`crate::bulk`]); memory outside the shard's region, like the rings.
    pub bulk: crate::bulk::BulkConfig,
    /// Nanoseconds per tick (platforms convert wall time with it).
    pub tick_ns: u64,
    /// Shard recoveries allowed within `recovery_window` before the policy applies.
    pub recoveries_max: u32,
    /// The window for `recoveries_max` (converted to ticks with `tick_ns`, rounding up).
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
            bulk: crate::bulk::BulkConfig::DEFAULT,
            tick_ns: 1_000_000,
            recoveries_max: 3,
            recovery_window: Duration::from_secs(60),
            quarantine: QuarantinePolicy::Quarantine,
            shutdown_timeout: Duration::from_secs(5),
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
}
