//! Read-only views of the kernel for the shard's facade (tests, checkers, the simulator):
//! live handles, typed state, occupancy, and the full invariant check.

use super::{Kernel, Meta, State};
use crate::memory::counters::Counters;
use crate::model::handle::{Handle, TypeId};
use crate::scheduler::supervision::Member;
use core::any::Any;

impl Kernel<'_> {
    /// Handles of every live isolate on this shard, type by type, in slot order.
    pub(crate) fn live_handles(&self) -> impl Iterator<Item = Handle> + '_ {
        self.types.iter().enumerate().flat_map(move |(ty, t)| {
            t.metas
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_live() && m.state != State::Initializing)
                .map(move |(slot, m)| {
                    Handle::pack(self.shard, TypeId(ty as u8), slot as u32, m.generation)
                })
        })
    }

    /// Handles of the live isolates of type `ty` (none if `None`), in slot order.
    pub(crate) fn handles_of(&self, ty: Option<TypeId>) -> impl Iterator<Item = Handle> + '_ {
        let metas: &[Meta] = match ty {
            Some(TypeId(t)) => self.types[usize::from(t)].metas,
            None => &[],
        };
        metas.iter().enumerate().filter_map(move |(slot, m)| {
            let ty = ty?;
            (m.is_live() && m.state != State::Initializing)
                .then(|| Handle::checked(self.shard, ty, slot as u32, m.generation))
                .flatten()
        })
    }

    /// The state of a live isolate, as `&T` of its type.
    pub(crate) fn state(&self, h: Handle) -> Option<&dyn Any> {
        let (ty, slot) = self.locate(h)?;
        self.arenas[usize::from(ty)].as_ref()?.state(slot)
    }

    /// A snapshot of the counters.
    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }

    /// Pool occupancy: (free, in use, total) envelopes.
    pub(crate) fn pool_usage(&self) -> (u32, u32, u32) {
        (
            self.pool.free_count(),
            self.pool.in_use(),
            self.pool.total(),
        )
    }

    /// Checks every structural invariant (O(shard size); for tests and the simulator's
    /// checkers). Returns the first violation found.
    pub(crate) fn check_invariants(&self) -> Result<(), &'static str> {
        let kernel = self;
        kernel.pool.check()?;
        if kernel.pool.free_count() + kernel.pool.in_use() != kernel.pool.total() {
            return Err("pool: free + in use != total");
        }
        let mut queued = 0u32;
        for (ty, t) in kernel.types.iter().enumerate() {
            let mut live = 0;
            for (slot, m) in t.metas.iter().enumerate() {
                if m.is_live() {
                    live += 1;
                    if m.generation == 0 {
                        return Err("a live isolate has generation 0");
                    }
                    let occupied = self.arenas[ty]
                        .as_ref()
                        .is_some_and(|a| a.occupied(slot as u32));
                    if m.state != State::Initializing && !occupied {
                        return Err("a live isolate's arena slot is empty");
                    }
                } else {
                    if m.mailbox.len != 0 || m.reply != crate::memory::pool::NIL {
                        return Err("a dead slot still holds messages");
                    }
                    if self.arenas[ty]
                        .as_ref()
                        .is_some_and(|a| a.occupied(slot as u32))
                    {
                        return Err("a dead slot still holds an isolate");
                    }
                }
                let done = kernel.tickets_done(ty, slot);
                if (done > 0) != (m.notices & super::NOTICE_IO != 0) {
                    return Err("undelivered I/O completions disagree with the isolate's notice");
                }
                if kernel.pool.walk_len(&m.mailbox) != m.mailbox.len {
                    return Err("mailbox length differs from its list");
                }
                if m.mailbox.len > t.mailbox_capacity {
                    return Err("mailbox over capacity");
                }
                queued += m.mailbox.len + u32::from(m.reply != crate::memory::pool::NIL);
            }
            if live != t.live {
                return Err("type live count differs from live slots");
            }
        }
        // Refusals wait in system envelopes until sent (normally within the same transition).
        queued += kernel.refusals.len;
        if queued != kernel.pool.in_use() {
            return Err("pool: envelopes in use != envelopes queued (leak)");
        }
        kernel.timers.check()?;
        kernel.io.bufs.check()?;
        kernel.transfers.check()?;
        for member in kernel.groups.members.iter() {
            if let Member::Isolate(h) = member
                && kernel.locate(*h).is_none()
            {
                return Err("a supervision member points at a dead isolate");
            }
        }
        Ok(())
    }

    /// Resources in use: (message envelopes, timer entries, I/O buffers) — all zero on an
    /// empty, quiet shard.
    pub(crate) fn resources_in_use(&self) -> (u32, u32, u32) {
        (
            self.pool.in_use(),
            self.timers.total() - self.timers.free_count(),
            self.io.bufs.total() - self.io.bufs.free_count(),
        )
    }

    /// Transfer buffers in use.
    pub(crate) fn transfers_in_use(&self) -> u32 {
        self.transfers.total() - self.transfers.free_count()
    }

    /// Drops every isolate (the shard is dropped).
    pub(crate) fn clear_arenas(&mut self) {
        for a in self.arenas.iter_mut().flatten() {
            a.clear();
        }
    }
}
