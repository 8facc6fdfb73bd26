//! Where the shards' memory and rings live, and how each core gets its share of them.
//!
//! Every piece is a `static`, handed out once (`static_cell`; no `static mut`):
//!
//! | static | what | taken by |
//! |---|---|---|
//! | `RING_MEMORY[c]` | core `c`'s inbound rings: 128-byte aligned `RegionBlock`s | core 0, in `wire_rings` |
//! | `CORE_CHANNELS[c]` | core `c`'s producer/consumer halves (`tina_baremetal::CoreChannels`) | core `c` |
//! | `SHARD_REGIONS[c]` | core `c`'s shard region: 128-byte aligned `RegionBlock`s | core `c` |
//! | `LINKS` | one `ShardLink` per shard (sleep flag, status), shared by all | every core |
//! | `CORE1_CHANNELS` | the `Handoff` that moves core 1's halves from core 0 to core 1 | core 0 puts, core 1 takes |
//!
//! Core 0 carves every core's inbound rings from its ring memory and splits them with
//! `tina_baremetal::wire` (the core's ring wiring, sized by `ring_memory_required`, checked at
//! boot) before it releases core 1, so each producer and each consumer half exists once and moves to exactly one core:
//! the single-producer / single-consumer rule is kept by ownership, not by convention.

use core::mem::MaybeUninit;

use static_cell::{ConstStaticCell, StaticCell};
use tina_baremetal::{CoreChannels, Handoff, wire};
use tina_core::Message;
use tina_core::memory::RegionBlock;
use tina_core::ring::{Ring, Slot};
use tina_core::transport::ShardLink;

use crate::report::fail;
use crate::system::{CORE_COUNT, REGION_BLOCK_COUNT, RING_CAPACITY, SPEC};

/// 128-byte blocks of each core's ring memory: the one ring from its peer (its slots, then the
/// ring itself), plus a block for alignment padding. `ring_memory_required` is not a
/// `const fn`; `wire` checks the size at boot.
const RING_BLOCK_COUNT: usize = RegionBlock::blocks_for(
    RING_CAPACITY * size_of::<Slot<Message>>() + size_of::<Ring<'static, Message>>(),
) + 1;

/// One core's ring halves, borrowed from the statics for the whole run.
pub type Channels = CoreChannels<'static, CORE_COUNT>;

static RING_MEMORY: [ConstStaticCell<[RegionBlock; RING_BLOCK_COUNT]>; CORE_COUNT] =
    [const { ConstStaticCell::new([RegionBlock::UNINIT; RING_BLOCK_COUNT]) }; CORE_COUNT];

static CORE_CHANNELS: [StaticCell<Channels>; CORE_COUNT] =
    [const { StaticCell::new() }; CORE_COUNT];

static SHARD_REGIONS: [ConstStaticCell<[RegionBlock; REGION_BLOCK_COUNT]>; CORE_COUNT] =
    [const { ConstStaticCell::new([RegionBlock::UNINIT; REGION_BLOCK_COUNT]) }; CORE_COUNT];

/// Every shard's link; the ring transport of each core reads all of them.
pub static LINKS: [ShardLink; CORE_COUNT] = [const { ShardLink::new() }; CORE_COUNT];

/// Core 1's ring halves, from core 0 (which wires everything) to core 1.
pub static CORE1_CHANNELS: Handoff<Channels> = Handoff::new();

/// Carves every core's inbound rings from its static ring memory and splits them into each
/// core's halves. Core 0 only, once (a second call finds the statics taken and fails the run).
pub fn wire_rings() -> [Channels; CORE_COUNT] {
    let memory = core::array::from_fn(|core| {
        let blocks = RING_MEMORY[core]
            .try_take()
            .unwrap_or_else(|| fail!("core {core}'s ring memory was already taken"));
        RegionBlock::as_bytes(blocks)
    });
    wire(&SPEC, memory).unwrap_or_else(|error| fail!("wiring the rings: {error}"))
}

/// Moves `channels` into core `core`'s static, for the lifetime the ring transport needs.
pub fn keep_channels(core: usize, channels: Channels) -> &'static mut Channels {
    CORE_CHANNELS[core]
        .try_init(channels)
        .unwrap_or_else(|| fail!("core {core}'s channels were already installed"))
}

/// Core `core`'s shard region (128-byte aligned, `REGION_SIZE` bytes), handed out once.
pub fn shard_region(core: usize) -> &'static mut [MaybeUninit<u8>] {
    let blocks = SHARD_REGIONS[core]
        .try_take()
        .unwrap_or_else(|| fail!("core {core}'s shard region was already taken"));
    RegionBlock::as_bytes(blocks)
}
