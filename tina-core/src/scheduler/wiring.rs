//! Ring wiring: the cross-shard rings carved from memory and split into the halves each shard
//! owns, in one place for every platform.
//!
//! Every consumer shard's inbound rings live in one block of memory of
//! [`ring_memory_required`](crate::ring_memory_required) bytes (128-byte aligned): for each
//! producer shard in order (skipping the consumer itself), its ring's slots, then the ring.
//! [`carve_inbound_rings`] carves them from that block in exactly that order and hands each
//! ring's two halves to the driver, which keeps the consumer half on the consumer's shard and
//! moves the producer half to the producer's shard (Linux: through an exchange between the
//! shard threads; bare metal: into each core's channels before the cores start). A driver never
//! builds or splits a ring by hand, so the single-producer / single-consumer rule holds by
//! construction: each half exists once.

use core::fmt;
use core::mem::MaybeUninit;

use crate::bulk::{BulkOwner, BulkPeer, BulkPool};
use crate::memory::{MemoryError, Region};
use crate::ring::{Consumer, Producer, RingError};
use crate::scheduler::layout::{walk_bulk, walk_rings};
use crate::{Message, ShardId, SystemSpec};

/// Why a consumer's rings could not be carved from its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WiringError {
    /// The consumer is not a shard of the spec.
    NoSuchShard {
        /// The shard asked for.
        consumer: ShardId,
        /// Shards in the spec.
        shard_count: usize,
    },
    /// The memory's base is misaligned (it must be 128-byte aligned).
    Region(MemoryError),
    /// The memory is too small for ring `from → to` (size it with `ring_memory_required`).
    Memory {
        /// The producer shard.
        from: ShardId,
        /// The consumer shard.
        to: ShardId,
        /// What went wrong.
        error: MemoryError,
    },
    /// The memory is too small for shard `owner`'s bulk pool (size it with
    /// `bulk_memory_required`).
    Bulk {
        /// The shard that owns the pool.
        owner: ShardId,
        /// What went wrong.
        error: MemoryError,
    },
    /// The spec's capacity for ring `from → to` is not a valid ring capacity.
    Ring {
        /// The producer shard.
        from: ShardId,
        /// The consumer shard.
        to: ShardId,
        /// What went wrong.
        error: RingError,
    },
}

impl fmt::Display for WiringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WiringError::NoSuchShard {
                consumer,
                shard_count,
            } => write!(
                f,
                "shard {} does not exist (the spec has {shard_count} shards)",
                consumer.0
            ),
            WiringError::Region(e) => e.fmt(f),
            WiringError::Memory { from, to, error } => {
                write!(f, "ring {}→{}: {error}", from.0, to.0)
            }
            WiringError::Bulk { owner, error } => {
                write!(f, "bulk pool of shard {}: {error}", owner.0)
            }
            WiringError::Ring { from, to, error } => {
                write!(f, "ring {}→{}: {error}", from.0, to.0)
            }
        }
    }
}

/// Carves the rings shard `consumer` drains from `bytes` (its ring memory, 128-byte aligned and
/// at least [`ring_memory_required`](crate::ring_memory_required) bytes) and hands each ring's
/// halves to `place(from, producer, consumer_half)`, producer shards in ascending order.
///
/// The carve is the boot-layout walk that `ring_memory_required` measures with (one walk, two
/// passes), so the sizes cannot disagree; a single-shard system has no rings and `place` is
/// never called.
pub fn carve_inbound_rings<'r>(
    spec: &SystemSpec<'_>,
    consumer: ShardId,
    bytes: &'r mut [MaybeUninit<u8>],
    mut place: impl FnMut(ShardId, Producer<'r, Message>, Consumer<'r, Message>),
) -> Result<(), WiringError> {
    let n = spec.shards.len();
    let to = consumer;
    if usize::from(to.0) >= n {
        return Err(WiringError::NoSuchShard {
            consumer,
            shard_count: n,
        });
    }
    let producers = || (0..n).filter(move |&f| f != usize::from(to.0));
    // Capacities first: the walk places only rings a validated spec allows.
    for from in producers() {
        let from = ShardId(from as u8);
        let capacity = spec.ring_capacity_between(from.0, to.0) as usize;
        ring_capacity_check(capacity).map_err(|error| WiringError::Ring { from, to, error })?;
    }
    let mut region = Region::new(bytes).map_err(WiringError::Region)?;
    // The producer whose ring the walk carves next (named by a memory error).
    let mut next = producers().next().unwrap_or(0);
    walk_rings(&mut region, spec, to, |from, ring| {
        let (producer, consumer_half) = ring.split();
        place(from, producer, consumer_half);
        next = producers().find(|&f| f > usize::from(from.0)).unwrap_or(n);
    })
    .map_err(|error| WiringError::Memory {
        from: ShardId(next as u8),
        to,
        error,
    })
}

/// Carves shard `owner`'s bulk pool from `bytes` (128-byte aligned, at least
/// [`bulk_memory_required`](crate::bulk_memory_required) bytes; it must outlive every shard,
/// since all of them read it) and splits it: `place(shard, peer)` gets the peer half of every
/// shard (the owner's own included, for sends inside the shard), and the owner's half is
/// returned. Like the rings' halves, each exists once, so the pool's single-writer rules
/// hold by construction.
pub fn carve_bulk_pool<'r>(
    spec: &SystemSpec<'_>,
    owner: ShardId,
    bytes: &'r mut [MaybeUninit<u8>],
    place: impl FnMut(ShardId, BulkPeer<'r>),
) -> Result<BulkOwner<'r>, WiringError> {
    let n = spec.shards.len();
    if usize::from(owner.0) >= n {
        return Err(WiringError::NoSuchShard {
            consumer: owner,
            shard_count: n,
        });
    }
    let mut region = Region::new(bytes).map_err(WiringError::Region)?;
    let pool = walk_bulk(&mut region, spec, owner)
        .map_err(|error| WiringError::Bulk { owner, error })?
        .ok_or(WiringError::Bulk {
            owner,
            error: MemoryError::Overflow,
        })?;
    let pool: &'r BulkPool<'r> = pool;
    Ok(pool.split(n, place))
}

/// Whether `capacity` slots make a valid ring (the rule [`Ring::new`] applies).
fn ring_capacity_check(capacity: usize) -> Result<(), RingError> {
    if capacity < crate::ring::RING_CAPACITY_MIN {
        Err(RingError::CapacityTooSmall { capacity })
    } else if !capacity.is_power_of_two() {
        Err(RingError::CapacityNotPowerOfTwo { capacity })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionBlock;
    use crate::{ChildSpec, GroupSpec, Isolate, Restart, ShardSpec, TypeSpec};
    use crate::{CrashReason, Ctx, Effect};
    use std::vec;
    use std::vec::Vec;

    struct Idle;
    impl Isolate for Idle {
        type Args = ();
        fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
            Ok((Idle, Effect::Receive))
        }
        fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
            Effect::Receive
        }
    }

    fn blocks_for(spec: &SystemSpec<'_>, consumer: ShardId) -> (usize, Vec<RegionBlock>) {
        let bytes = crate::ring_memory_required(spec, consumer).unwrap();
        (
            bytes,
            vec![RegionBlock::UNINIT; RegionBlock::blocks_for(bytes)],
        )
    }

    #[test]
    fn each_consumer_gets_one_ring_per_peer_and_the_carve_fills_the_measure_exactly() {
        let types = [TypeSpec::of::<Idle>("idle")];
        let children = [ChildSpec::isolate::<Idle>(&(), Restart::Permanent)];
        let shards = [ShardSpec {
            root: GroupSpec::one_for_one(&children),
        }; 3];
        let mut spec = SystemSpec::new(&shards, &types);
        spec.ring_capacity = 32;
        for consumer in 0..3u8 {
            let (needed, mut blocks) = blocks_for(&spec, ShardId(consumer));
            let bytes = RegionBlock::as_bytes(&mut blocks);
            // Exactly the measured size: one byte less must fail.
            let mut froms = Vec::new();
            carve_inbound_rings(
                &spec,
                ShardId(consumer),
                &mut bytes[..needed],
                |from, p, c| {
                    let mut p = p;
                    let mut c = c;
                    assert!(p.try_push(Message::default()).is_ok());
                    assert!(p.publish());
                    assert_eq!(c.drain(1, |_| {}), 1, "the halves are of one ring");
                    assert_eq!(c.capacity(), 32);
                    froms.push(from.0);
                },
            )
            .unwrap();
            let expected: Vec<u8> = (0..3).filter(|&f| f != consumer).collect();
            assert_eq!(froms, expected);
            let short = carve_inbound_rings(
                &spec,
                ShardId(consumer),
                &mut bytes[..needed - 1],
                |_, _, _| {},
            );
            assert!(
                matches!(
                    short,
                    Err(WiringError::Memory {
                        error: MemoryError::Exhausted { .. },
                        ..
                    })
                ),
                "{short:?}"
            );
        }
    }

    #[test]
    fn a_missing_shard_and_an_invalid_capacity_are_errors() {
        let types = [TypeSpec::of::<Idle>("idle")];
        let children = [ChildSpec::isolate::<Idle>(&(), Restart::Permanent)];
        let shards = [ShardSpec {
            root: GroupSpec::one_for_one(&children),
        }; 2];
        let mut spec = SystemSpec::new(&shards, &types);
        let mut blocks = vec![RegionBlock::UNINIT; 64];
        let bytes = RegionBlock::as_bytes(&mut blocks);
        let missing = carve_inbound_rings(&spec, ShardId(2), bytes, |_, _, _| {});
        assert_eq!(
            missing,
            Err(WiringError::NoSuchShard {
                consumer: ShardId(2),
                shard_count: 2
            })
        );
        spec.ring_capacity = 24;
        let bad = carve_inbound_rings(&spec, ShardId(1), bytes, |_, _, _| {});
        assert!(
            matches!(
                bad,
                Err(WiringError::Ring {
                    from: ShardId(0),
                    to: ShardId(1),
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}
