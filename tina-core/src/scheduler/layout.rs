//! The boot layout, walked once: the same sequence of slices measures a shard's region (and a
//! consumer's rings) and carves it, so what `Shard::memory_required` reports is exactly what
//! `Shard::new` takes.
//!
//! The walk is generic over [`Carve`], which the measuring pass ([`Measure`]: sizes and
//! padding only, every slice empty) and the real [`Region`] (typed slices of the region)
//! implement. Everything the walk does with what it carved — attaching per-type metadata to
//! its type, say — is written so that it does nothing on the empty slices of a measurement.

use crate::cross_shard::bulk::{BulkPool, BulkSlot};
use crate::cross_shard::ring::{Ring, Slot};
use crate::memory::args::InitArgs;
use crate::memory::iobuf::{BufMeta, WorkChunk};
use crate::memory::log::LogRecord;
use crate::memory::timer::TimerEntry;
use crate::memory::{Measure, MemoryError, Region};
use crate::model::handle::{Handle, ShardId};
use crate::model::io::Submission;
use crate::model::io::{Fd, IoOp};
use crate::model::message::Message;
use crate::scheduler::arena::{ArenaRef, TypeVtable};
use crate::scheduler::kernel::{Meta, TicketSlot, TypeState};
use crate::scheduler::supervision::{GroupState, Groups, Member, NameSlot, TreeSize};
use crate::spec::{DISPATCHES_PER_WEIGHT, GroupSpec, SystemSpec};

/// Something the boot layout can be walked over: a measurement or a real region.
pub(crate) trait Carve<'a> {
    /// `len` values of `T`, each `init(index)` (a measurement only accounts for them and
    /// returns an empty slice).
    fn slice<T: 'a>(
        &mut self,
        len: usize,
        init: impl FnMut(usize) -> T,
    ) -> Result<&'a mut [T], MemoryError>;

    /// `count × per` zeroed bytes (the product is checked).
    fn zeroed_bytes(&mut self, count: usize, per: usize) -> Result<&'a mut [u8], MemoryError>;

    /// The arena of one isolate type with `capacity` slots (`None` when measuring).
    fn arena(&mut self, vtable: &TypeVtable, capacity: u32) -> Result<ArenaRef<'a>, MemoryError>;

    /// The ring over `slots` (`None` when measuring).
    fn ring(
        &mut self,
        slots: &'a mut [Slot<Message>],
    ) -> Result<Option<&'a mut Ring<'a, Message>>, MemoryError>;

    /// Shard `owner`'s bulk pool over its slots and byte areas (`None` when measuring).
    fn bulk_pool(
        &mut self,
        owner: ShardId,
        spec: &SystemSpec<'_>,
        parts: BulkParts<'a>,
    ) -> Result<Option<&'a mut BulkPool<'a>>, MemoryError>;
}

/// What a bulk pool is built over: its slot words and its two byte areas.
pub(crate) type BulkParts<'a> = (&'a mut [BulkSlot], &'a mut [u8], &'a mut [u8]);

impl<'a> Carve<'a> for Measure {
    fn slice<T: 'a>(
        &mut self,
        len: usize,
        _: impl FnMut(usize) -> T,
    ) -> Result<&'a mut [T], MemoryError> {
        Measure::slice::<T>(self, len);
        Ok(Default::default())
    }

    fn zeroed_bytes(&mut self, count: usize, per: usize) -> Result<&'a mut [u8], MemoryError> {
        let len = count.checked_mul(per).ok_or(MemoryError::Overflow)?;
        Measure::slice::<u8>(self, len);
        Ok(Default::default())
    }

    fn arena(&mut self, vtable: &TypeVtable, capacity: u32) -> Result<ArenaRef<'a>, MemoryError> {
        (vtable.measure)(self, capacity);
        Ok(None)
    }

    fn ring(
        &mut self,
        _: &'a mut [Slot<Message>],
    ) -> Result<Option<&'a mut Ring<'a, Message>>, MemoryError> {
        self.one::<Ring<'a, Message>>();
        Ok(None)
    }

    fn bulk_pool(
        &mut self,
        _: ShardId,
        _: &SystemSpec<'_>,
        _: BulkParts<'a>,
    ) -> Result<Option<&'a mut BulkPool<'a>>, MemoryError> {
        self.one::<BulkPool<'a>>();
        Ok(None)
    }
}

impl<'a> Carve<'a> for Region<'a> {
    fn slice<T: 'a>(
        &mut self,
        len: usize,
        init: impl FnMut(usize) -> T,
    ) -> Result<&'a mut [T], MemoryError> {
        Region::slice(self, len, init)
    }

    fn zeroed_bytes(&mut self, count: usize, per: usize) -> Result<&'a mut [u8], MemoryError> {
        let len = count.checked_mul(per).ok_or(MemoryError::Overflow)?;
        Region::zeroed_bytes(self, len)
    }

    fn arena(&mut self, vtable: &TypeVtable, capacity: u32) -> Result<ArenaRef<'a>, MemoryError> {
        Ok(Some((vtable.build)(self, capacity)?))
    }

    fn ring(
        &mut self,
        slots: &'a mut [Slot<Message>],
    ) -> Result<Option<&'a mut Ring<'a, Message>>, MemoryError> {
        match Ring::new(slots) {
            Ok(ring) => Ok(Some(self.one(ring)?)),
            Err(_) => {
                debug_assert!(false, "a validated spec's ring capacities are valid");
                Ok(None)
            }
        }
    }

    fn bulk_pool(
        &mut self,
        owner: ShardId,
        spec: &SystemSpec<'_>,
        (slots, small, large): BulkParts<'a>,
    ) -> Result<Option<&'a mut BulkPool<'a>>, MemoryError> {
        match BulkPool::new(owner, spec.bulk, slots, small, large) {
            Some(pool) => Ok(Some(self.one(pool)?)),
            None => {
                debug_assert!(false, "the walk carves exactly the pool's sizes");
                Ok(None)
            }
        }
    }
}

/// Everything a shard carves from its region, in carve order (all empty when measured).
pub(crate) struct ShardLayout<'a> {
    /// Per-type scheduler state, its metadata and working memory attached.
    pub(crate) types: &'a mut [TypeState<'a>],
    pub(crate) arenas: &'a mut [ArenaRef<'a>],
    pub(crate) pool_slots: &'a mut [Message],
    pub(crate) pool_next: &'a mut [u32],
    pub(crate) timer_entries: &'a mut [TimerEntry],
    pub(crate) timer_spokes: &'a mut [u32],
    pub(crate) due: &'a mut [u32],
    pub(crate) io_bytes: &'a mut [u8],
    pub(crate) io_metas: &'a mut [BufMeta],
    pub(crate) submissions: &'a mut [Submission],
    pub(crate) groups: Groups<'a>,
    pub(crate) recoveries: &'a mut [u64],
    pub(crate) log: &'a mut [LogRecord],
    pub(crate) scratch: &'a mut [WorkChunk],
    pub(crate) transfer_bytes: &'a mut [u8],
    pub(crate) transfer_metas: &'a mut [BufMeta],
}

/// Walks shard `root`'s layout over `c` (the spec is valid and the shard exists).
pub(crate) fn walk_shard<'a, C: Carve<'a>>(
    c: &mut C,
    spec: &'a SystemSpec<'a>,
    root: &'a GroupSpec<'a>,
) -> Result<ShardLayout<'a>, MemoryError> {
    let types = walk_types(c, spec)?;
    let arenas = c.slice(spec.types.len(), |_| None)?;
    for (i, t) in spec.types.iter().enumerate() {
        let arena = c.arena(&t.vtable, t.capacity)?;
        if let Some(a) = arenas.get_mut(i) {
            *a = arena;
        }
    }
    let s = &spec.shard;
    let pool_slots = c.slice(s.message_pool_size as usize, |_| Message::EMPTY)?;
    let pool_next = c.slice(s.message_pool_size as usize, |_| 0u32)?;
    let timer_entries = c.slice(s.timer_entries as usize, |_| TimerEntry::FREE)?;
    let timer_spokes = c.slice(s.timer_spokes as usize, |_| 0u32)?;
    let due = c.slice(s.timer_expirations_per_tick_max as usize, |_| 0u32)?;
    let io_bytes = c.zeroed_bytes(s.io_buffer_count as usize, s.io_buffer_size as usize)?;
    let io_metas = c.slice(s.io_buffer_count as usize, |_| BufMeta::FREE)?;
    let submissions = c.slice(s.io_submissions_per_tick_max as usize, |_| Submission {
        owner: Handle::NONE,
        op: IoOp::Close { fd: Fd(-1) },
        buf: None,
        ticket: crate::model::io::IoTicket::PARKED,
    })?;
    let groups = walk_tree(c, root)?;
    let recoveries = c.slice(spec.recoveries_max as usize, |_| 0u64)?;
    let log = c.slice(s.log_entries as usize, |_| LogRecord::EMPTY)?;
    for (i, t) in spec.types.iter().enumerate() {
        let per = WorkChunk::count_for(t.working_memory_size);
        let chunks = (t.capacity as usize)
            .checked_mul(per)
            .ok_or(MemoryError::Overflow)?;
        let working = c.slice(chunks, |_| WorkChunk::ZERO)?;
        if let Some(t) = types.get_mut(i) {
            t.working = working;
            t.working_chunks = per;
        }
    }
    let scratch = c.slice(WorkChunk::count_for(scratch_size_max(spec)), |_| {
        WorkChunk::ZERO
    })?;
    let transfer_bytes = c.zeroed_bytes(
        s.transfer_buffer_count as usize,
        s.transfer_buffer_size as usize,
    )?;
    let transfer_metas = c.slice(s.transfer_buffer_count as usize, |_| BufMeta::FREE)?;
    Ok(ShardLayout {
        types,
        arenas,
        pool_slots,
        pool_next,
        timer_entries,
        timer_spokes,
        due,
        io_bytes,
        io_metas,
        submissions,
        groups,
        recoveries,
        log,
        scratch,
        transfer_bytes,
        transfer_metas,
    })
}

/// The per-type scheduler state, each with its metadata slots attached.
fn walk_types<'a, C: Carve<'a>>(
    c: &mut C,
    spec: &'a SystemSpec<'a>,
) -> Result<&'a mut [TypeState<'a>], MemoryError> {
    let types = c.slice(spec.types.len(), |_| TypeState::new(&mut [], 1, 1))?;
    for (i, t) in spec.types.iter().enumerate() {
        let metas = c.slice(t.capacity as usize, |_| Meta::FREE)?;
        let args = c.slice(t.capacity as usize, |_| InitArgs::EMPTY)?;
        // The completion slots of submitted I/O ops (none for the default of one op, the
        // parked one, whose completion lives in `Meta`).
        let per = t.io_tickets();
        let tickets = if per == 0 {
            &mut []
        } else {
            let n = (t.capacity as usize)
                .checked_mul(per)
                .ok_or(MemoryError::Overflow)?;
            c.slice(n, |_| TicketSlot::FREE)?
        };
        if let Some(state) = types.get_mut(i) {
            *state = TypeState::new(
                metas,
                t.mailbox_capacity,
                t.budget_weight * DISPATCHES_PER_WEIGHT,
            );
            state.args = args;
            state.tickets = tickets;
            state.tickets_per = per;
        }
    }
    Ok(types)
}

/// The flattened supervision tree of `root` (flattened only when really carved).
fn walk_tree<'a, C: Carve<'a>>(
    c: &mut C,
    root: &'a GroupSpec<'a>,
) -> Result<Groups<'a>, MemoryError> {
    let tree = TreeSize::of(root);
    let groups: &'a mut [GroupState<'a>] = c.slice(tree.groups, |_| Groups::placeholder(root))?;
    let members = c.slice(tree.members, |_| Member::Empty)?;
    let history = c.slice(tree.history, |_| 0u64)?;
    let names = c.slice(tree.name_table_len(), |_| NameSlot::EMPTY)?;
    Ok(Groups::new(root, groups, members, history, names))
}

/// Walks the rings consumer shard `consumer` drains, one from every other shard in shard
/// order: each one's slots, then the ring itself, handed to `each` with its producer (when
/// really carved).
pub(crate) fn walk_rings<'a, C: Carve<'a>>(
    c: &mut C,
    spec: &SystemSpec<'_>,
    consumer: ShardId,
    mut each: impl FnMut(ShardId, &'a mut Ring<'a, Message>),
) -> Result<(), MemoryError> {
    for from in 0..spec.shards.len() {
        if from == usize::from(consumer.0) {
            continue;
        }
        let capacity = spec.ring_capacity_between(from as u8, consumer.0);
        let slots = c.slice(capacity as usize, |_| Slot::new())?;
        if let Some(ring) = c.ring(slots)? {
            each(ShardId(from as u8), ring);
        }
    }
    Ok(())
}

/// Walks shard `owner`'s bulk pool (the same size for every shard): the slot words, the
/// small slots' bytes, the large slots' bytes, then the pool itself (when really carved).
pub(crate) fn walk_bulk<'a, C: Carve<'a>>(
    c: &mut C,
    spec: &SystemSpec<'_>,
    owner: ShardId,
) -> Result<Option<&'a mut BulkPool<'a>>, MemoryError> {
    let b = spec.bulk;
    let slots = c.slice(b.slot_count() as usize, |_| BulkSlot::new())?;
    let small = c.zeroed_bytes(b.small.slots as usize, b.small.size as usize)?;
    let large = c.zeroed_bytes(b.large.slots as usize, b.large.size as usize)?;
    c.bulk_pool(owner, spec, (slots, small, large))
}

/// The largest scratch area any type asks for (the shard has one, shared).
pub(crate) fn scratch_size_max(spec: &SystemSpec<'_>) -> u32 {
    spec.types.iter().map(|t| t.scratch_size).max().unwrap_or(0)
}
