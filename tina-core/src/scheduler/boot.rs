//! Booting a shard: the errors that refuse a boot, and the memory a shard and its rings need.

use crate::memory::{Measure, MemoryError};
use crate::model::effect::CrashReason;
use crate::model::handle::ShardId;
use crate::model::io::IoError;
use crate::scheduler::layout::{walk_bulk, walk_rings, walk_shard};
use crate::spec::{Location, SpecError, SystemSpec};
use core::fmt;

/// Why a shard could not boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The spec is invalid.
    Spec(SpecError),
    /// The memory region is too small or misaligned.
    Memory(MemoryError),
    /// The shard id is not in the spec.
    NoSuchShard {
        /// The id asked for.
        shard: u8,
        /// Shards in the spec.
        shard_count: usize,
    },
    /// The supervision tree could not be started: a static child's `init` failed (at boot a
    /// failed `init` is not retried: the whole tree is refused).
    RootFailed(InitFailure),
}

/// The static child whose `init` failed when a supervision tree was started, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitFailure {
    /// Where the child is in the spec (`shards[s].root.children[c]…`).
    pub child: Location,
    /// The name of its type.
    pub type_name: &'static str,
    /// What its `init` returned ([`CrashReason::PANIC`] if it panicked).
    pub reason: CrashReason,
    /// The error of the last socket-control call (`Ctx::socket`, `bind`, `listen`, …) the
    /// `init` made, if that call failed: usually the root cause (a `bind()` whose address is
    /// in use). `None` if the last such call succeeded or there was none.
    pub io_error: Option<IoError>,
}

impl InitFailure {
    /// When no child's failure was recorded (a child that could not even be spawned).
    pub(crate) fn unknown(shard: ShardId) -> InitFailure {
        InitFailure {
            child: Location::Shard(u16::from(shard.0)),
            type_name: "?",
            reason: CrashReason("a static child could not be spawned"),
            io_error: None,
        }
    }
}

impl fmt::Display for InitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (type `{}`) failed to initialise: {}",
            self.child, self.type_name, self.reason
        )?;
        if let Some(e) = self.io_error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Spec(e) => e.fmt(f),
            BootError::Memory(e) => e.fmt(f),
            BootError::NoSuchShard { shard, shard_count } => {
                write!(
                    f,
                    "shard {shard} does not exist (the spec has {shard_count} shards)"
                )
            }
            BootError::RootFailed(failure) => {
                write!(f, "the supervision tree failed to start: {failure}")
            }
        }
    }
}

impl core::error::Error for BootError {}

/// The bytes `Shard::new` carves for `shard` of `spec`: the boot-layout walk, measured by
/// `m` (it needs no platform).
pub(crate) fn region_size(
    spec: &SystemSpec<'_>,
    shard: ShardId,
    mut m: Measure,
) -> Result<usize, BootError> {
    spec.validate().map_err(BootError::Spec)?;
    let root = &spec
        .shards
        .get(usize::from(shard.0))
        .ok_or(BootError::NoSuchShard {
            shard: shard.0,
            shard_count: spec.shards.len(),
        })?
        .root;
    walk_shard(&mut m, spec, root).map_err(BootError::Memory)?;
    m.total().map_err(BootError::Memory)
}

/// Bytes of the cross-shard rings shard `consumer` drains (one from every other shard), laid
/// out one after the other from a 128-aligned base: for each producer in shard order, its
/// slots (`capacity × size_of::<Slot<Message>>()`) and then the [`Ring`](crate::ring::Ring) itself. A platform
/// that maps ring memory per consumer (Linux) carves it in this order; one that keeps rings in
/// `static`s (bare metal) can use it to size them. Checked like [`Shard::memory_required`](crate::Shard::memory_required).
pub fn ring_memory_required(spec: &SystemSpec<'_>, consumer: ShardId) -> Result<usize, BootError> {
    spec.validate().map_err(BootError::Spec)?;
    let n = spec.shards.len();
    if usize::from(consumer.0) >= n {
        return Err(BootError::NoSuchShard {
            shard: consumer.0,
            shard_count: n,
        });
    }
    let mut m = Measure::new();
    walk_rings(&mut m, spec, consumer, |_, _| {}).map_err(BootError::Memory)?;
    m.total().map_err(BootError::Memory)
}

/// Bytes of one shard's bulk pool (the same for every shard; see [`crate::bulk`]), laid out
/// from a 128-aligned base: the slot words ([`BulkSlot`](crate::bulk::BulkSlot), 128 bytes
/// each), the small slots' bytes, the large slots' bytes, then the pool. A platform maps one
/// such block per shard and carves it with [`carve_bulk_pool`](crate::wiring::carve_bulk_pool);
/// the total grows linearly with the number of shards. Checked like
/// [`Shard::memory_required`](crate::Shard::memory_required).
pub fn bulk_memory_required(spec: &SystemSpec<'_>) -> Result<usize, BootError> {
    spec.validate().map_err(BootError::Spec)?;
    let mut m = Measure::new();
    walk_bulk(&mut m, spec, ShardId(0)).map_err(BootError::Memory)?;
    m.total().map_err(BootError::Memory)
}

/// The memory a whole system needs: every shard's region, every cross-shard ring and every
/// shard's bulk pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemMemory {
    /// The sum of every shard's [`Shard::memory_required`](crate::Shard::memory_required).
    pub regions: usize,
    /// The sum of every shard's [`ring_memory_required`] (the N×(N−1) rings).
    pub rings: usize,
    /// Every shard's [`bulk_memory_required`] (one pool per shard).
    pub bulk: usize,
}

impl SystemMemory {
    /// Measures `spec` (checked: a total that does not fit in `usize` is an overflow).
    pub fn of(spec: &SystemSpec<'_>) -> Result<SystemMemory, BootError> {
        spec.validate().map_err(BootError::Spec)?;
        let mut total = SystemMemory {
            regions: 0,
            rings: 0,
            bulk: 0,
        };
        let overflow = BootError::Memory(MemoryError::Overflow);
        for i in 0..spec.shards.len() {
            let shard = ShardId(i as u8);
            let region = region_size(spec, shard, Measure::new())?;
            let rings = ring_memory_required(spec, shard)?;
            total.regions = total.regions.checked_add(region).ok_or(overflow)?;
            total.rings = total.rings.checked_add(rings).ok_or(overflow)?;
        }
        total.bulk = bulk_memory_required(spec)?
            .checked_mul(spec.shards.len())
            .ok_or(overflow)?;
        total.total().ok_or(overflow)?;
        Ok(total)
    }

    /// Regions, rings and bulk pools together (`None` if that overflows `usize`).
    pub fn total(&self) -> Option<usize> {
        self.regions.checked_add(self.rings)?.checked_add(self.bulk)
    }
}
