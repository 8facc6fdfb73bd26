//! A hashed timer wheel with a bounded entry pool, cancellation and bounded expirations.
//!
//! ```text
//!   spokes (power of two)        entries (bounded pool, doubly linked per spoke)
//!   [0] -> e7 -> e2
//!   [1]
//!   [2] -> e5                    deadline d lives in spoke d & (spokes - 1)
//!   ...
//! ```
//!
//! `advance(now)` walks the spokes for every tick not yet processed (at most one full turn,
//! however far time jumped) and fires entries whose deadline is due, at most
//! `expirations_per_tick_max` per call; what is left fires on the next calls, never lost.
//! Entries are also linked per owner so tearing an isolate down cancels all of its timers in
//! O(its timers). A [`TimerId`] carries the entry's generation, so cancelling a timer that
//! already fired (and whose entry was reused) is a harmless no-op.
//!
//! The last `reserve` entries are kept for call timeouts, so user timers cannot make calls
//! lose their timeout.

use crate::memory::pool::{Class, NIL};
use crate::model::handle::Handle;
use crate::model::time::Instant;

/// Identifies one started timer (for cancellation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimerId {
    index: u32,
    generation: u32,
}

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// Deliver a message with this tag to the owner.
    User(u16),
    /// Time out the owner's call with this correlation.
    CallTimeout(u64),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerEntry {
    deadline: u64,
    owner: Handle,
    kind: TimerKind,
    generation: u32,
    live: bool,
    prev: u32,
    next: u32,
    owner_prev: u32,
    owner_next: u32,
}

impl TimerEntry {
    pub(crate) const FREE: TimerEntry = TimerEntry {
        deadline: 0,
        owner: Handle::NONE,
        kind: TimerKind::User(0),
        generation: 0,
        live: false,
        prev: NIL,
        next: NIL,
        owner_prev: NIL,
        owner_next: NIL,
    };
}

/// A fired timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fired {
    pub(crate) owner: Handle,
    pub(crate) kind: TimerKind,
}

/// The timer pool is exhausted (counted by the shard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimersExhausted;

/// The shard's timers: a hashed wheel of spokes over one pool of entries.
///
/// Hand-written, not a heapless container: entries sit on per-isolate intrusive
/// lists (teardown cancels them all) and in wheel spokes at once, over a pool sized by the
/// boot spec and carved from the region.
pub(crate) struct TimerWheel<'a> {
    entries: &'a mut [TimerEntry],
    spokes: &'a mut [u32],
    free_head: u32,
    free_count: u32,
    reserve: u32,
    /// Every tick before this one has been fully processed.
    processed_until: u64,
    earliest: Option<u64>,
    earliest_dirty: bool,
}

impl<'a> TimerWheel<'a> {
    pub(crate) fn new(
        entries: &'a mut [TimerEntry],
        spokes: &'a mut [u32],
        reserve: u32,
    ) -> TimerWheel<'a> {
        debug_assert!(spokes.len().is_power_of_two());
        let n = entries.len() as u32;
        for (i, e) in entries.iter_mut().enumerate() {
            *e = TimerEntry::FREE;
            e.next = if (i as u32) + 1 < n {
                i as u32 + 1
            } else {
                NIL
            };
        }
        spokes.fill(NIL);
        TimerWheel {
            entries,
            spokes,
            free_head: if n > 0 { 0 } else { NIL },
            free_count: n,
            reserve: reserve.min(n),
            processed_until: 0,
            earliest: None,
            earliest_dirty: false,
        }
    }

    pub(crate) fn total(&self) -> u32 {
        self.entries.len() as u32
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free_count
    }

    fn spoke_of(&self, deadline: u64) -> usize {
        (deadline as usize) & (self.spokes.len() - 1)
    }

    /// Starts a timer firing at `deadline` (clamped so it is never in an already-processed
    /// tick). `owner_head` is the owner's list of timers.
    pub(crate) fn start(
        &mut self,
        deadline: Instant,
        owner: Handle,
        kind: TimerKind,
        class: Class,
        owner_head: &mut u32,
    ) -> Result<TimerId, TimersExhausted> {
        if self.free_head == NIL || (class == Class::User && self.free_count <= self.reserve) {
            return Err(TimersExhausted);
        }
        let i = self.free_head;
        self.free_head = self.entries[i as usize].next;
        self.free_count -= 1;
        let deadline = deadline.ticks().max(self.processed_until);
        let spoke = self.spoke_of(deadline);
        let head = self.spokes[spoke];
        let generation = self.entries[i as usize].generation.wrapping_add(1);
        self.entries[i as usize] = TimerEntry {
            deadline,
            owner,
            kind,
            generation,
            live: true,
            prev: NIL,
            next: head,
            owner_prev: NIL,
            owner_next: *owner_head,
        };
        if head != NIL {
            self.entries[head as usize].prev = i;
        }
        self.spokes[spoke] = i;
        if *owner_head != NIL {
            self.entries[*owner_head as usize].owner_prev = i;
        }
        *owner_head = i;
        if !self.earliest_dirty && self.earliest.is_none_or(|e| deadline < e) {
            self.earliest = Some(deadline);
        }
        Ok(TimerId {
            index: i,
            generation,
        })
    }

    /// Cancels a timer if it is still pending. Returns whether it was.
    pub(crate) fn cancel(&mut self, id: TimerId, owner: Handle, owner_head: &mut u32) -> bool {
        let Some(e) = self.entries.get(id.index as usize) else {
            return false;
        };
        if !e.live || e.generation != id.generation || e.owner != owner {
            return false;
        }
        self.remove(id.index, owner_head);
        true
    }

    /// Cancels every timer in an owner's list.
    pub(crate) fn cancel_all(&mut self, owner_head: &mut u32) -> u32 {
        let mut n = 0;
        while *owner_head != NIL {
            let i = *owner_head;
            self.remove(i, owner_head);
            n += 1;
        }
        n
    }

    /// Unlinks entry `i` from its spoke and its owner list and frees it.
    fn remove(&mut self, i: u32, owner_head: &mut u32) {
        let e = self.entries[i as usize];
        debug_assert!(e.live);
        if e.prev != NIL {
            self.entries[e.prev as usize].next = e.next;
        } else {
            let spoke = self.spoke_of(e.deadline);
            self.spokes[spoke] = e.next;
        }
        if e.next != NIL {
            self.entries[e.next as usize].prev = e.prev;
        }
        if e.owner_prev != NIL {
            self.entries[e.owner_prev as usize].owner_next = e.owner_next;
        } else {
            debug_assert_eq!(*owner_head, i);
            *owner_head = e.owner_next;
        }
        if e.owner_next != NIL {
            self.entries[e.owner_next as usize].owner_prev = e.owner_prev;
        }
        let entry = &mut self.entries[i as usize];
        entry.live = false;
        entry.prev = NIL;
        entry.owner_prev = NIL;
        entry.owner_next = NIL;
        entry.next = self.free_head;
        self.free_head = i;
        self.free_count += 1;
        if self.earliest == Some(e.deadline) {
            self.earliest_dirty = true;
        }
    }

    /// Collects up to `due.len()` due entries into `due` and returns how many. The caller
    /// then fires each with [`TimerWheel::fire`], which unlinks it from the owner's list.
    /// Ticks whose entries were all collected count as processed; if `due` fills up in the
    /// middle of a tick, that tick is walked again next time.
    pub(crate) fn collect_due(&mut self, now: Instant, due: &mut [u32]) -> usize {
        let now = now.ticks();
        if now < self.processed_until {
            return 0;
        }
        let mut n = 0;
        let turn = self.spokes.len() as u64;
        let last = now.min(self.processed_until.saturating_add(turn - 1));
        let mut tick = self.processed_until;
        while tick <= last {
            let mut i = self.spokes[self.spoke_of(tick)];
            while i != NIL {
                let e = &self.entries[i as usize];
                if e.deadline <= now {
                    if n == due.len() {
                        self.processed_until = tick;
                        return n;
                    }
                    due[n] = i;
                    n += 1;
                }
                i = e.next;
            }
            tick += 1;
        }
        self.processed_until = now + 1;
        n
    }

    /// The owner and action of a collected entry.
    pub(crate) fn fired(&self, i: u32) -> Fired {
        let e = &self.entries[i as usize];
        Fired {
            owner: e.owner,
            kind: e.kind,
        }
    }

    /// Frees a collected entry, unlinking it from its owner's list.
    pub(crate) fn fire(&mut self, i: u32, owner_head: &mut u32) {
        self.remove(i, owner_head);
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        if self.earliest_dirty {
            self.earliest = self
                .entries
                .iter()
                .filter(|e| e.live)
                .map(|e| e.deadline)
                .min();
            self.earliest_dirty = false;
        }
        self.earliest.map(Instant::from_ticks)
    }

    /// Checks the free count against the live entries.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let live = self.entries.iter().filter(|e| e.live).count() as u32;
        if live + self.free_count != self.total() {
            return Err("timer pool: live + free != total");
        }
        Ok(())
    }
}
