//! Validation of a [`SystemSpec`]: every structural rule, checked before anything runs, and
//! the [`SpecError`] that names the field (by its [`Location`]), the value and the [`Rule`].

use super::*;
use crate::model::handle::{SHARD_COUNT_MAX, TYPE_COUNT_MAX};

impl SystemSpec<'_> {
    /// Checks every structural rule; the first violation is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        let sys = |field, value, rule| SpecError::new(Location::System, field, value, rule);
        if self.shards.is_empty() || self.shards.len() > SHARD_COUNT_MAX {
            return Err(sys(
                "shards.len()",
                self.shards.len() as u64,
                Rule::ShardCount,
            ));
        }
        if self.types.is_empty() || self.types.len() > TYPE_COUNT_MAX {
            return Err(sys("types.len()", self.types.len() as u64, Rule::TypeCount));
        }
        if self.tick_ns == 0 {
            return Err(sys("tick_ns", 0, Rule::AtLeastOne));
        }
        if self.recovery_window.is_zero() {
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
        self.validate_bulk()?;
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
            let mut static_counts = [0u32; TYPE_COUNT_MAX];
            let mut groups = 0u32;
            let mut path = GroupPath::root(s as u16);
            self.validate_group(&shard.root, &mut path, 0, &mut static_counts, &mut groups)?;
            validate_names(s as u16, &shard.root)?;
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

    fn validate_bulk(&self) -> Result<(), SpecError> {
        use crate::bulk::{BULK_SLOT_ALIGN, BULK_SLOT_SIZE_MAX, BULK_SLOTS_MAX};
        let b = &self.bulk;
        let sys = |field, value: u32, rule| {
            SpecError::new(Location::System, field, u64::from(value), rule)
        };
        let classes = [("bulk.small.size", b.small), ("bulk.large.size", b.large)];
        for (field, class) in classes {
            let size_ok = class.size > 0
                && class.size <= BULK_SLOT_SIZE_MAX
                && class.size.is_multiple_of(BULK_SLOT_ALIGN);
            if class.slots > 0 && !size_ok {
                return Err(sys(field, class.size, Rule::BulkSlotSize));
            }
        }
        if b.small.slots.saturating_add(b.large.slots) > BULK_SLOTS_MAX {
            return Err(sys(
                "bulk.small.slots + bulk.large.slots",
                b.small.slots.saturating_add(b.large.slots),
                Rule::BulkSlotCount,
            ));
        }
        if b.small.slots > 0 && b.large.slots > 0 && b.small.size > b.large.size {
            return Err(sys("bulk.small.size", b.small.size, Rule::BulkClassOrder));
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
        if t.capacity == 0 || t.capacity > SLOT_MAX {
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
        if t.io_in_flight_max == 0 || t.io_in_flight_max > crate::io::IO_IN_FLIGHT_MAX {
            return Err(SpecError::new(
                at,
                "io_in_flight_max",
                u64::from(t.io_in_flight_max),
                Rule::IoInFlight,
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
        static_counts: &mut [u32; TYPE_COUNT_MAX],
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
        if g.budget.window.is_zero() {
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
                ChildSpec::Isolate { ty, args, name, .. } => {
                    let id = self.validate_child(*ty, args, *path, c as u16)?;
                    if name.is_some_and(|n| self.resolve(n.ty) != Some(id)) {
                        return Err(SpecError::new(
                            Location::Child(*path, c as u16),
                            "name",
                            c as u64,
                            Rule::NameTypeMismatch,
                        ));
                    }
                    static_counts[usize::from(id.0)] += 1;
                }
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

/// Calls `each` with every named child of the tree under `g`, in depth-first order, with its
/// location; stops at the first error `each` returns.
fn visit_names(
    g: &GroupSpec<'_>,
    path: &mut GroupPath,
    each: &mut dyn FnMut(NameRef, Location) -> Result<(), SpecError>,
) -> Result<(), SpecError> {
    for (c, child) in g.children.iter().enumerate() {
        match child {
            ChildSpec::Isolate { name: Some(n), .. } => each(*n, Location::Child(*path, c as u16))?,
            ChildSpec::Isolate { name: None, .. } => {}
            ChildSpec::Group(inner) => {
                let mut inner_path = *path;
                inner_path.push(c as u16);
                visit_names(inner, &mut inner_path, each)?;
            }
        }
    }
    Ok(())
}

/// Names are unique per shard, and so are their keys (what a named address carries). A
/// quadratic walk over the named children, with no storage: specs name a handful.
fn validate_names(shard: u16, root: &GroupSpec<'_>) -> Result<(), SpecError> {
    let mut index = 0u64;
    visit_names(root, &mut GroupPath::root(shard), &mut |name, at| {
        let mut seen = 0u64;
        let this = index;
        index += 1;
        visit_names(root, &mut GroupPath::root(shard), &mut |earlier, _| {
            if seen >= this {
                return Ok(());
            }
            seen += 1;
            if earlier.text == name.text {
                return Err(SpecError::new(
                    at,
                    "name",
                    this,
                    Rule::DuplicateName { name: name.text },
                ));
            }
            if earlier.key == name.key {
                let rule = Rule::NameKeyCollision {
                    name: name.text,
                    other: earlier.text,
                };
                return Err(SpecError::new(at, "name", u64::from(name.key), rule));
            }
            Ok(())
        })
    })
}

impl SystemSpec<'_> {
    /// An isolate child's type is registered and its arguments are of its `Isolate::Args`.
    fn validate_child(
        &self,
        ty: TypeRef,
        args: &InitArgs,
        path: GroupPath,
        c: u16,
    ) -> Result<TypeId, SpecError> {
        let at = Location::Child(path, c);
        let Some(id) = self.resolve(ty) else {
            return Err(SpecError::new(at, "ty", u64::from(c), Rule::UnknownType));
        };
        let t = &self.types[usize::from(id.0)];
        if args.rust_type() != (t.vtable.args_type)() {
            return Err(SpecError::new(
                at,
                "args",
                u64::from(c),
                Rule::ArgsTypeMismatch {
                    type_name: t.name,
                    args_type_name: args.type_name(),
                },
            ));
        }
        Ok(id)
    }
}

fn valid_ring_capacity(c: u32) -> bool {
    c.is_power_of_two() && (RING_CAPACITY_MIN..=RING_CAPACITY_MAX as usize).contains(&(c as usize))
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
    /// Bulk slot sizes are multiples of 64 from 64 bytes to 1 MiB.
    BulkSlotSize,
    /// At most 4096 bulk slots per shard.
    BulkSlotCount,
    /// Small bulk slots are no larger than large ones.
    BulkClassOrder,
    /// Ring override names two distinct existing shards.
    RingPair,
    /// Type capacity between 1 and 2^20 − 1.
    TypeCapacity,
    /// A child whose name is the name of another isolate type.
    NameTypeMismatch,
    /// Two children of one shard with the same name.
    DuplicateName {
        /// The name.
        name: &'static str,
    },
    /// Two names of one shard whose 28-bit keys are equal (a hash collision).
    NameKeyCollision {
        /// The later name.
        name: &'static str,
        /// The earlier name with the same key.
        other: &'static str,
    },
    /// Budget weight between 1 and 64.
    BudgetWeight,
    /// I/O operations in flight per isolate between 1 and 16.
    IoInFlight,
    /// Alignment at most 128.
    Alignment,
    /// A Rust type registered twice.
    DuplicateType {
        /// Name of the later registration.
        type_name: &'static str,
    },
    /// A budget window of zero.
    BudgetWindow,
    /// Dynamic children only in one-for-one groups.
    DynamicNeedsOneForOne,
    /// Nesting deeper than 8.
    GroupDepth,
    /// More than 65535 groups or children.
    TooManyGroups,
    /// A child's type is not registered.
    UnknownType,
    /// A child's init arguments are not a value of its type's `Isolate::Args`.
    ArgsTypeMismatch {
        /// The child's type (its registered name).
        type_name: &'static str,
        /// The Rust type of the arguments given.
        args_type_name: &'static str,
    },
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
            Rule::BulkSlotSize => f.write_str("a bulk slot holds 64 to 1048576 bytes in multiples of 64 (e.g. 4096, 67584 for 66 KiB); the large class's size is the largest payload a message can carry"),
            Rule::BulkSlotCount => f.write_str("a shard has at most 4096 bulk slots (small and large together)"),
            Rule::BulkClassOrder => f.write_str("bulk.small.size must not exceed bulk.large.size (small slots are tried first)"),
            Rule::RingPair => f.write_str("a ring override names two different shards that exist (value = from << 8 | to)"),
            Rule::TypeCapacity => f.write_str("a type holds 1 to 1048575 instances per shard (20-bit slots; the last slot value marks named addresses)"),
            Rule::BudgetWeight => f.write_str("budget weights are 1 to 64 (weight x 256 dispatches per tick)"),
            Rule::IoInFlight => f.write_str("an isolate has 1 to 16 I/O operations in flight (io_in_flight_max; 1 = only the parked Effect::Io)"),
            Rule::Alignment => f.write_str("isolate types may need at most 128-byte alignment; move big aligned buffers to working memory"),
            Rule::DuplicateType { type_name } => write!(f, "type `{type_name}` is registered twice (value = index of the first registration); remove one"),
            Rule::BudgetWindow => f.write_str("a restart budget window must be longer than zero (e.g. Duration::from_secs(5))"),
            Rule::DynamicNeedsOneForOne => f.write_str("dynamic children are only allowed in OneForOne groups; set dynamic_capacity to 0 or use Strategy::OneForOne"),
            Rule::GroupDepth => f.write_str("supervision groups nest at most 8 deep"),
            Rule::TooManyGroups => f.write_str("at most 65535 groups per shard and children per group"),
            Rule::NameTypeMismatch => f.write_str("the child's name was made for another isolate type (Name<T> must name a child of type T); build the child with ChildSpec::named"),
            Rule::DuplicateName { name } => write!(f, "two children of this shard are named {name:?} (value = the later child's position among the shard's named children); names are unique per shard"),
            Rule::NameKeyCollision { name, other } => write!(f, "names {name:?} and {other:?} have the same 28-bit key (value); rename one of them"),
            Rule::UnknownType => f.write_str("the child's type is not registered; add TypeSpec::of::<T>(..) to SystemSpec::types"),
            Rule::ArgsTypeMismatch { type_name, args_type_name } => write!(f, "the child's args are a `{args_type_name}`, not the `Isolate::Args` of `{type_name}`; build the child with ChildSpec::isolate::<T>(&args, ..)"),
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
