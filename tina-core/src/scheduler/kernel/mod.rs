//! The kernel: the shard's tables and every transition on them.
//!
//! [`Kernel`] owns the per-type isolate metadata (structure of arrays), the typed arenas, the
//! message pool, the timer wheel, the I/O buffers and submission batch, the transfer buffers,
//! the supervision tree, the log ring and the counters. Its fields are private to this
//! folder: everything else — the [`Shard`](crate::Shard) facade, [`Ctx`](crate::Ctx),
//! supervision's tree — changes the shard only through its named verbs, one file per
//! concern:
//!
//! | file | verbs |
//! |---|---|
//! | `delivery` | `send`, `send_typed`, `deliver_local` (and a named address's `resolve_name`), `deliver_inbound`, `deliver_reply`, `send_refusals` |
//! | `dispatch` | `next_ready`, `after_dispatch`, `next_message` (the mailbox-head fast path) |
//! | `calls` | `finish_call`, `apply_effect`, `start_call` |
//! | `io` | `submit_io`, `submit_ticket`, `cancel_io`, `complete_io`, `take_ticket_completion`, `queue_reclaim`, `reclaim_orphans` |
//! | `timers` | `advance_timers` |
//! | `teardown` | `teardown` |
//! | `peers` | `on_peer_event` |
//! | `spawn` | `spawn`, `spawn_dynamic`, `place`, `stop` |
//! | `supervise` | `exit`, `on_exit`, `start_group`, `stop_group`, `stop_all` |
//! | `services` | what a handler asks for through `Ctx`: timers, buffers, scratch, log, … |
//! | `step` | the kernel's side of `Shard::step` and of shutdown |
//! | `inspect` | read-only views and `check_invariants` |
//!
//! Every verb leaves every structure consistent when it returns: user code (which may panic)
//! only ever runs *between* these calls (or inside `spawn`'s trapped `init`, after the slot
//! was reserved and before anything else changed), never in the middle of one.

use crate::memory::args::InitArgs;
use crate::memory::counters::Counters;
use crate::memory::iobuf::{BufferPool, IoState, WorkChunk};
use crate::memory::log::LogRing;
use crate::memory::pool::{Fifo, NIL, Pool};
use crate::memory::timer::{TimerId, TimerWheel};
use crate::model::effect::CrashReason;
use crate::model::handle::{GENERATION_MAX, Handle, ShardId, ShardSet, TypeId};
use crate::model::io::{IoCompletion, IoError};
use crate::model::time::{Duration, Instant, WallTime};
use crate::platform::{SocketControl, Transport, Trap};
use crate::scheduler::arena::ArenaRef;
use crate::scheduler::layout::ShardLayout;
use crate::scheduler::supervision::Groups;
use crate::spec::{Restart, SystemSpec};

mod bulk;
mod calls;
mod delivery;
mod dispatch;
mod inspect;
mod io;
mod peers;
mod services;
mod spawn;
mod step;
mod supervise;
mod teardown;
#[cfg(test)]
mod tests;
mod timers;

pub(crate) use io::{Orphans, TicketSlot};

/// The platform parts a transition may need besides the kernel's own tables: borrowed from
/// the platform for one step (or one boot, shutdown or revival).
pub(crate) struct Env<'p> {
    pub(crate) transport: &'p mut dyn Transport,
    pub(crate) control: &'p mut dyn SocketControl,
    pub(crate) trap: &'p dyn Trap,
}

/// Where an isolate is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Slot empty, on the free list.
    Free,
    /// Slot reserved, `init` running. Messages to it queue.
    Initializing,
    /// Parked until its mailbox or a notice has something.
    Receiving,
    /// Runs again next tick with a `RESUMED` notice (or `SHUTDOWN`, if a shutdown started).
    Yielded,
    /// Parked until its call's reply or timeout.
    AwaitingReply,
    /// Parked until its I/O completion.
    AwaitingIo,
}

/// Why a call ended without a reply (payload of `CALL_TIMEOUT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum CallFailure {
    TimedOut = 0,
    SendFailed = 1,
}

/// Pending system notice bits.
pub(crate) const NOTICE_SHUTDOWN: u8 = 1 << 0;
/// A submitted I/O op's completion waits in one of the isolate's ticket slots.
pub(crate) const NOTICE_IO: u8 = 1 << 1;

/// Per-isolate metadata, kept apart from the isolate's own memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub(crate) generation: u32,
    pub(crate) state: State,
    pub(crate) mailbox: Fifo,
    pub(crate) queued: bool,
    pub(crate) queue_next: u32,
    pub(crate) free_next: u32,
    pub(crate) notices: u8,
    pub(crate) call_correlation: u64,
    pub(crate) call_target: Handle,
    pub(crate) owned_fd: i32,
    pub(crate) watches_shards: bool,
    pub(crate) call_timer: Option<TimerId>,
    pub(crate) call_failure: Option<(CallFailure, u8)>,
    pub(crate) reply: u32,
    pub(crate) io_completion: Option<IoCompletion>,
    pub(crate) io_in_flight: bool,
    pub(crate) timers: u32,
    pub(crate) group: u16,
    pub(crate) member: u16,
    pub(crate) restart: Restart,
}

impl Meta {
    pub(crate) const FREE: Meta = Meta {
        generation: 0,
        state: State::Free,
        mailbox: Fifo::EMPTY,
        queued: false,
        queue_next: NIL,
        free_next: NIL,
        notices: 0,
        call_correlation: 0,
        call_target: Handle::NONE,
        owned_fd: -1,
        watches_shards: false,
        call_timer: None,
        call_failure: None,
        reply: NIL,
        io_completion: None,
        io_in_flight: false,
        timers: NIL,
        group: 0,
        member: 0,
        restart: Restart::Temporary,
    };

    fn is_live(&self) -> bool {
        !matches!(self.state, State::Free)
    }

    /// Whether the isolate has something to be dispatched with right now.
    fn has_work(&self) -> bool {
        match self.state {
            State::Receiving => self.notices != 0 || !self.mailbox.is_empty(),
            State::Yielded => true,
            State::AwaitingReply => self.reply != NIL || self.call_failure.is_some(),
            State::AwaitingIo => self.io_completion.is_some(),
            State::Free | State::Initializing => false,
        }
    }
}

/// An intrusive queue of slots linked through `Meta::queue_next`.
///
/// Hand-written, not a heapless container: a queue of slots linked through their
/// own metadata costs no storage beyond the metadata array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotQueue {
    head: u32,
    tail: u32,
}

impl SlotQueue {
    pub(crate) const EMPTY: SlotQueue = SlotQueue {
        head: NIL,
        tail: NIL,
    };

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// Scheduler state of one isolate type on this shard.
pub(crate) struct TypeState<'a> {
    pub(crate) metas: &'a mut [Meta],
    pub(crate) ready: SlotQueue,
    pub(crate) yielded: SlotQueue,
    free: SlotQueue,
    pub(crate) live: u32,
    pub(crate) mailbox_capacity: u32,
    pub(crate) quota: u32,
    /// Each slot's init args (what a restart runs `init` with), apart from the metadata the
    /// dispatch loop reads: only spawns and exits touch them.
    pub(crate) args: &'a mut [InitArgs],
    /// Working memory: `working_chunks` chunks per slot.
    pub(crate) working: &'a mut [WorkChunk],
    pub(crate) working_chunks: usize,
    /// Completion slots of submitted I/O ops: `tickets_per` per slot.
    pub(crate) tickets: &'a mut [TicketSlot],
    pub(crate) tickets_per: usize,
}

impl<'a> TypeState<'a> {
    pub(crate) fn new(metas: &'a mut [Meta], mailbox_capacity: u32, quota: u32) -> Self {
        let n = metas.len() as u32;
        for (i, m) in metas.iter_mut().enumerate() {
            *m = Meta::FREE;
            m.free_next = if (i as u32) + 1 < n {
                i as u32 + 1
            } else {
                NIL
            };
        }
        TypeState {
            metas,
            ready: SlotQueue::EMPTY,
            yielded: SlotQueue::EMPTY,
            free: SlotQueue {
                head: if n > 0 { 0 } else { NIL },
                tail: if n > 0 { n - 1 } else { NIL },
            },
            live: 0,
            mailbox_capacity,
            quota,
            args: &mut [],
            working: &mut [],
            working_chunks: 0,
            tickets: &mut [],
            tickets_per: 0,
        }
    }

    #[inline]
    fn push(metas: &mut [Meta], q: &mut SlotQueue, slot: u32) {
        metas[slot as usize].queue_next = NIL;
        if q.tail == NIL {
            q.head = slot;
        } else {
            metas[q.tail as usize].queue_next = slot;
        }
        q.tail = slot;
    }

    #[inline]
    fn pop(metas: &mut [Meta], q: &mut SlotQueue) -> Option<u32> {
        let slot = q.head;
        if slot == NIL {
            return None;
        }
        q.head = metas[slot as usize].queue_next;
        if q.head == NIL {
            q.tail = NIL;
        }
        metas[slot as usize].queue_next = NIL;
        Some(slot)
    }

    /// Pops the next ready slot (its `queued` flag cleared).
    #[inline]
    fn pop_ready(&mut self) -> Option<u32> {
        let slot = Self::pop(self.metas, &mut self.ready)?;
        self.metas[slot as usize].queued = false;
        Some(slot)
    }

    /// Queues a slot that has work, unless it is queued already.
    #[inline]
    fn make_ready(&mut self, slot: u32) {
        let m = &mut self.metas[slot as usize];
        if m.queued || !m.has_work() {
            return;
        }
        m.queued = true;
        if m.state == State::Yielded {
            Self::push(self.metas, &mut self.yielded, slot);
        } else {
            Self::push(self.metas, &mut self.ready, slot);
        }
    }

    /// Moves everything that yielded last tick to the back of the ready queue.
    pub(crate) fn promote_yielded(&mut self) {
        while let Some(slot) = Self::pop(self.metas, &mut self.yielded) {
            Self::push(self.metas, &mut self.ready, slot);
        }
    }

    /// Takes a free slot, bumping its generation: after [`GENERATION_MAX`] the next one is 1
    /// (0 stays "never live"; counted in `generation_wraps`). Returns the slot and its new
    /// generation. Slots come off the free list in FIFO order (see [`TypeState::release`]),
    /// so a slot is reused only after every slot freed before it.
    fn reserve(&mut self, counters: &mut Counters) -> Option<(u32, u32)> {
        let slot = self.free.head;
        if slot == NIL {
            return None;
        }
        self.free.head = self.metas[slot as usize].free_next;
        if self.free.head == NIL {
            self.free.tail = NIL;
        }
        let m = &mut self.metas[slot as usize];
        m.free_next = NIL;
        if m.generation >= GENERATION_MAX {
            m.generation = 1;
            counters.generation_wraps += 1;
        } else {
            m.generation += 1;
        }
        m.state = State::Initializing;
        self.live += 1;
        Some((slot, m.generation))
    }

    /// Returns a torn-down slot to the free list (FIFO, so generations wear evenly).
    pub(crate) fn release(&mut self, slot: u32) {
        let m = &mut self.metas[slot as usize];
        debug_assert!(m.is_live());
        m.state = State::Free;
        m.free_next = NIL;
        self.live -= 1;
        if self.free.tail == NIL {
            self.free.head = slot;
        } else {
            self.metas[self.free.tail as usize].free_next = slot;
        }
        self.free.tail = slot;
    }
}

/// How an isolate left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Normal,
    Crashed(CrashReason),
}

/// The shard state outside the arenas.
pub(crate) struct Kernel<'a> {
    shard: ShardId,
    /// The typed arenas, one per type. While a type's handlers run, its entry is lent out
    /// (`None` here) and its free slots are reached through the running call's
    /// [`SlotPlacer`] instead.
    arenas: &'a mut [ArenaRef<'a>],
    spec: &'a SystemSpec<'a>,
    types: &'a mut [TypeState<'a>],
    pool: Pool<'a>,
    timers: TimerWheel<'a>,
    due: &'a mut [u32],
    io: IoState<'a>,
    counters: Counters,
    now: Instant,
    /// The calendar time the platform supplied with the current step, if any.
    wall: Option<WallTime>,
    correlation_next: u64,
    shutting_down: bool,
    groups: Groups<'a>,
    log: LogRing<'a>,
    scratch: &'a mut [WorkChunk],
    /// Whether the scratch area may hold bytes from an earlier handler call.
    scratch_dirty: bool,
    transfers: BufferPool<'a>,
    /// The bulk pools, when the platform gave them ([`crate::Shard::attach_bulk`]): then
    /// transfers use them and may go to any shard.
    bulk: Option<crate::bulk::BulkPorts<'a>>,
    /// Peers announced as quarantined (bit per shard): sends to them fail at once.
    quarantined_peers: ShardSet,
    /// A descriptor delivered to the running handler call by an Accept/Open completion, and
    /// whether an isolate took ownership of it (`Ctx::own_fd`) during the call. Unclaimed
    /// when the receiver exits, it is closed instead of leaking.
    pending_fd: Option<(crate::model::io::Fd, bool)>,
    /// The error of the last socket-control call, if it failed (cleared when an `init`
    /// starts): the likely root cause when that `init` fails.
    control_error: Option<crate::model::io::IoError>,
    /// The last `init` that failed, for the boot error.
    init_failure: Option<crate::scheduler::boot::InitFailure>,
    /// Closes of orphaned descriptors that found the submission batch full (see
    /// [`Kernel::queue_reclaim`]).
    orphans: Orphans,
    /// Cancels of submitted I/O ops asked for this tick, handed to the platform after the
    /// submission batch.
    cancels: io::Cancels,
    /// Refusals of undeliverable calls from other shards, queued while the inbound rings
    /// drain and sent right after (empty between steps).
    refusals: Fifo,
}

impl<'a> Kernel<'a> {
    /// The kernel of shard `shard` over the structures carved for it.
    pub(crate) fn new(spec: &'a SystemSpec<'a>, shard: ShardId, layout: ShardLayout<'a>) -> Self {
        let c = &spec.shard;
        let bufs = BufferPool::new(layout.io_bytes, c.io_buffer_size as usize, layout.io_metas);
        Kernel {
            shard,
            arenas: layout.arenas,
            spec,
            types: layout.types,
            pool: Pool::new(layout.pool_slots, layout.pool_next, c.system_reserve()),
            // Call timeouts may use the last eighth of the timer pool; user timers may not.
            timers: TimerWheel::new(
                layout.timer_entries,
                layout.timer_spokes,
                c.timer_entries / 8,
            ),
            due: layout.due,
            io: IoState::new(bufs, layout.submissions),
            counters: Counters::default(),
            now: Instant::ZERO,
            wall: None,
            correlation_next: 0,
            shutting_down: false,
            groups: layout.groups,
            log: LogRing::new(layout.log, spec.tick_ns),
            scratch: layout.scratch,
            scratch_dirty: true,
            transfers: BufferPool::new(
                layout.transfer_bytes,
                c.transfer_buffer_size as usize,
                layout.transfer_metas,
            ),
            bulk: None,
            quarantined_peers: ShardSet::EMPTY,
            pending_fd: None,
            control_error: None,
            init_failure: None,
            orphans: Orphans::new(),
            cancels: io::Cancels::new(),
            refusals: Fifo::EMPTY,
        }
    }

    /// This shard's id.
    #[inline]
    pub(crate) fn shard(&self) -> ShardId {
        self.shard
    }

    /// The system's spec.
    #[inline]
    pub(crate) fn spec(&self) -> &'a SystemSpec<'a> {
        self.spec
    }

    /// The time of the current step.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// The calendar time of the current step, if the platform supplied one.
    #[inline]
    pub(crate) fn wall(&self) -> Option<WallTime> {
        self.wall
    }

    /// The tick at which a span of `d` from now ends, rounded up to whole ticks.
    #[inline]
    pub(crate) fn deadline_after(&self, d: Duration) -> Instant {
        self.now.after_ticks(d.to_ticks(self.spec.tick_ns))
    }

    /// Whether a shutdown has started.
    #[inline]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Bytes per I/O buffer.
    #[inline]
    pub(crate) fn io_buffer_size(&self) -> usize {
        self.io.bufs.buffer_size()
    }

    /// Records the outcome of a socket-control call (its error is the likely root cause if
    /// the `init` that made it fails).
    pub(crate) fn record_control(&mut self, error: Option<IoError>) {
        self.control_error = error;
    }

    pub(crate) fn handle(&self, ty: u8, slot: u32) -> Handle {
        let generation = self.types[usize::from(ty)].metas[slot as usize].generation;
        // Slots and generations stay in range by construction (capacity is validated, and
        // generations wrap from GENERATION_MAX to 1); generation 0 means "never used".
        Handle::pack(self.shard, TypeId(ty), slot, generation)
    }

    /// The (type, slot) of a live local isolate, or `None` if the handle is stale, foreign
    /// or malformed.
    pub(crate) fn locate(&self, h: Handle) -> Option<(u8, u32)> {
        if h.shard() != self.shard || h.is_none() {
            return None;
        }
        let ty = h.type_id().0;
        let m = self
            .types
            .get(usize::from(ty))?
            .metas
            .get(h.slot() as usize)?;
        (m.generation == h.generation() && m.is_live()).then_some((ty, h.slot()))
    }

    fn meta(&mut self, ty: u8, slot: u32) -> &mut Meta {
        &mut self.types[usize::from(ty)].metas[slot as usize]
    }

    fn wake(&mut self, ty: u8, slot: u32) {
        self.types[usize::from(ty)].make_ready(slot);
    }

    /// The type state and slot of a live local isolate (as [`Kernel::locate`], one lookup).
    #[inline]
    fn locate_mut<'t>(
        types: &'t mut [TypeState<'a>],
        shard: ShardId,
        h: Handle,
    ) -> Option<(&'t mut TypeState<'a>, usize)> {
        if h.shard() != shard || h.is_none() {
            return None;
        }
        let t = types.get_mut(usize::from(h.type_id().0))?;
        let slot = h.slot() as usize;
        let m = t.metas.get(slot)?;
        (m.generation == h.generation() && m.is_live()).then_some((t, slot))
    }

    /// Whether any isolate has work now.
    pub(crate) fn has_ready(&self) -> bool {
        self.types
            .iter()
            .any(|t| !t.ready.is_empty() || !t.yielded.is_empty())
    }

    /// Counts live isolates.
    pub(crate) fn live(&self) -> u32 {
        self.types.iter().map(|t| t.live).sum()
    }
}
