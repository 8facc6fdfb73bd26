//! The Tina system the two cores run, as data: one shard per core, the isolate types, each
//! shard's supervision tree, and every size (rings, pools, timers, shard regions).
//!
//! Everything here is a `static` built at compile time, so both cores read the same spec and
//! nothing is allocated: `Shard::new` carves each shard's structures from its region in
//! `wiring`, and the region size below is checked against `Shard::memory_required` at boot.
//!
//! ```text
//!   shard 0 (core 0)                      shard 1 (core 1)
//!   one_for_one                           one_for_one
//!   └── Driver (temporary)   ── ring ──►  ├── Ponger  (permanent)
//!                            ◄─ ring ──   ├── Silent  (permanent)
//!                                         └── Phoenix (permanent)
//! ```

use tina_core::memory::RegionBlock;
use tina_core::ring::RING_CAPACITY_MIN;
use tina_core::{ChildSpec, GroupSpec, Restart, ShardConfig, ShardSpec, SystemSpec, TypeSpec};

use crate::deadline::WAKE_TICK_PERIOD_MS;
use crate::isolates::{Driver, PHOENIX, PONGER, Phoenix, Ponger, SILENT, Silent};

/// Cores, and so shards: one shard per core.
pub const CORE_COUNT: usize = 2;

/// Envelopes per ring (each direction has its own ring). The driver has one call in flight at
/// a time, so a small ring is plenty; it must be a power of two of at least 16.
pub const RING_CAPACITY: usize = 64;
const _: () = assert!(RING_CAPACITY.is_power_of_two() && RING_CAPACITY >= RING_CAPACITY_MIN);

/// Length of Tina's tick: 1 ms, the period of each core's SysTick (so an idle core wakes at
/// most one tick after a timer deadline).
pub const TICK_NS: u64 = 1_000_000;
const _: () = assert!(TICK_NS == WAKE_TICK_PERIOD_MS as u64 * 1_000_000);

/// 128-byte blocks in each shard's memory region. `Shard::memory_required` is not a `const fn`,
/// so the size is fixed here and checked at boot (the boot line prints what is used).
pub const REGION_BLOCK_COUNT: usize = 160;
/// Bytes in each shard's memory region.
pub const REGION_SIZE: usize = REGION_BLOCK_COUNT * size_of::<RegionBlock>();

/// Per-shard sizes: small pools (one call in flight), no I/O buffers (there is no I/O on this
/// board), no transfer buffers (every payload fits in an envelope).
const SHARD_CONFIG: ShardConfig = ShardConfig {
    message_pool_size: 64,
    system_reserve: None,
    timer_entries: 32,
    timer_spokes: 64,
    timer_expirations_per_tick_max: 16,
    io_buffer_count: 0,
    io_buffer_size: 0,
    io_submissions_per_tick_max: 1,
    messages_per_dispatch_max: 16,
    log_entries: 16,
    transfer_buffer_count: 0,
    transfer_buffer_size: 0,
};

/// Every isolate type of the system (both shards carve room for each).
static TYPES: [TypeSpec; 4] = [
    TypeSpec::of::<Driver>("driver").capacity(1),
    TypeSpec::of::<Ponger>("ponger").capacity(1),
    TypeSpec::of::<Silent>("silent").capacity(1),
    // Capacity 1: the restarted Phoenix reuses the same slot with a new generation, which is
    // what makes its old handle a stale one rather than an unknown one.
    TypeSpec::of::<Phoenix>("phoenix").capacity(1),
];

/// Shard 0: the driver, which finishes once and is not restarted.
static SHARD0_CHILDREN: [ChildSpec<'static>; 1] =
    [ChildSpec::isolate::<Driver>(&(), Restart::Temporary)];

/// Shard 1: the three services, named so the driver reaches them by name.
static SHARD1_CHILDREN: [ChildSpec<'static>; 3] = [
    ChildSpec::named(PONGER, &(), Restart::Permanent),
    ChildSpec::named(SILENT, &(), Restart::Permanent),
    ChildSpec::named(PHOENIX, &(), Restart::Permanent),
];

static SHARDS: [ShardSpec<'static>; CORE_COUNT] = [
    ShardSpec {
        root: GroupSpec::one_for_one(&SHARD0_CHILDREN),
    },
    ShardSpec {
        root: GroupSpec::one_for_one(&SHARD1_CHILDREN),
    },
];

/// The whole system. Both cores boot their shard from it.
pub static SPEC: SystemSpec<'static> = {
    let mut spec = SystemSpec::new(&SHARDS, &TYPES);
    spec.shard = SHARD_CONFIG;
    spec.ring_capacity = RING_CAPACITY as u32;
    spec.tick_ns = TICK_NS;
    spec
};
