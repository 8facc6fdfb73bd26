//! The shard's state outside the typed arenas, and the transitions on it.
//!
//! `Core` owns per-type isolate metadata (structure of arrays), the message pool, the timer
//! wheel, the I/O buffers and submission batch, and the counters. Every function here leaves
//! every structure consistent when it returns: user code (which may panic) only ever runs
//! *between* these calls, never inside one.

use crate::counters::Counters;
use crate::effect::{CrashReason, Effect};
use crate::handle::{GENERATION_MAX, Handle, ShardId, TypeId};
use crate::io::{IoCompletion, IoError, IoOp};
use crate::iobuf::{BufState, BufferPool, IoState, WorkChunk};
use crate::isolate::InitArgs;
use crate::log::LogRing;
use crate::message::{Message, Outgoing, Payload, system_tag};
use crate::platform::PeerEvent;
use crate::platform::{SocketControl, Submission, Transport};
use crate::pool::{Class, Fifo, NIL, Pool};
use crate::shard::SendError;
use crate::spec::{Restart, SystemSpec};
use crate::supervision::Groups;
use crate::time::{Duration, Instant};
use crate::timer::{TimerId, TimerKind, TimerWheel};

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
    /// Generation exhausted: never used again.
    Retired,
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

/// Orphaned descriptors the core holds while the submission batch is full. The shard hands
/// them to the platform (`SocketControl::close_orphan`) after every teardown and every
/// completion pass, so a platform that closes at once never has more than a few held.
pub(crate) const ORPHANS_MAX: usize = 16;

/// Descriptors nobody owns any more whose close found the submission batch full.
#[derive(Clone, Copy)]
pub(crate) struct Orphans {
    fds: [crate::io::Fd; ORPHANS_MAX],
    len: usize,
}

impl Orphans {
    pub(crate) const EMPTY: Orphans = Orphans {
        fds: [crate::io::Fd(-1); ORPHANS_MAX],
        len: 0,
    };

    /// Holds `fd`; `false` if the list is full.
    #[must_use]
    fn push(&mut self, fd: crate::io::Fd) -> bool {
        let Some(slot) = self.fds.get_mut(self.len) else {
            return false;
        };
        *slot = fd;
        self.len += 1;
        true
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

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
    pub(crate) args: InitArgs,
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
        args: InitArgs::EMPTY,
    };

    pub(crate) fn is_live(&self) -> bool {
        !matches!(self.state, State::Free | State::Retired)
    }

    /// Whether the isolate has something to be dispatched with right now.
    pub(crate) fn has_work(&self) -> bool {
        match self.state {
            State::Receiving => self.notices != 0 || !self.mailbox.is_empty(),
            State::Yielded => true,
            State::AwaitingReply => self.reply != NIL || self.call_failure.is_some(),
            State::AwaitingIo => self.io_completion.is_some(),
            State::Free | State::Initializing | State::Retired => false,
        }
    }
}

/// An intrusive queue of slots linked through `Meta::queue_next`.
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
    /// Working memory: `working_chunks` chunks per slot.
    pub(crate) working: &'a mut [WorkChunk],
    pub(crate) working_chunks: usize,
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
            working: &mut [],
            working_chunks: 0,
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
    pub(crate) fn pop_ready(&mut self) -> Option<u32> {
        let slot = Self::pop(self.metas, &mut self.ready)?;
        self.metas[slot as usize].queued = false;
        Some(slot)
    }

    /// Queues a slot that has work, unless it is queued already.
    #[inline]
    pub(crate) fn make_ready(&mut self, slot: u32) {
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

    /// Takes a free slot, bumping its generation. Slots whose generation is exhausted are
    /// retired. Returns the slot and its new generation.
    pub(crate) fn reserve(&mut self, counters: &mut Counters) -> Option<(u32, u32)> {
        loop {
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
                m.state = State::Retired;
                counters.slots_retired += 1;
                continue;
            }
            m.generation += 1;
            m.state = State::Initializing;
            self.live += 1;
            return Some((slot, m.generation));
        }
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
pub(crate) struct Core<'a> {
    pub(crate) shard: ShardId,
    pub(crate) spec: &'a SystemSpec<'a>,
    pub(crate) types: &'a mut [TypeState<'a>],
    pub(crate) pool: Pool<'a>,
    pub(crate) timers: TimerWheel<'a>,
    pub(crate) due: &'a mut [u32],
    pub(crate) io: IoState<'a>,
    pub(crate) counters: Counters,
    pub(crate) now: Instant,
    pub(crate) correlation_next: u64,
    pub(crate) shutting_down: bool,
    pub(crate) groups: Groups<'a>,
    pub(crate) log: LogRing<'a>,
    pub(crate) scratch: &'a mut [WorkChunk],
    /// Whether the scratch area may hold bytes from an earlier handler call.
    pub(crate) scratch_dirty: bool,
    pub(crate) transfers: BufferPool<'a>,
    /// Peers announced as quarantined (bit per shard): sends to them fail at once.
    pub(crate) quarantined_peers: [u64; 4],
    /// A descriptor delivered to the running handler call by an Accept/Open completion, and
    /// whether an isolate took ownership of it (`Ctx::own_fd`) during the call. Unclaimed
    /// when the receiver exits, it is closed instead of leaking.
    pub(crate) pending_fd: Option<(crate::io::Fd, bool)>,
    /// The error of the last socket-control call, if it failed (cleared when an `init`
    /// starts): the likely root cause when that `init` fails.
    pub(crate) control_error: Option<crate::io::IoError>,
    /// The last `init` that failed, for the boot error.
    pub(crate) init_failure: Option<crate::shard::InitFailure>,
    /// Closes of orphaned descriptors that found the submission batch full (see
    /// [`Core::queue_reclaim`]).
    pub(crate) orphans: Orphans,
}

impl<'a> Core<'a> {
    pub(crate) fn handle(&self, ty: u8, slot: u32) -> Handle {
        let generation = self.types[usize::from(ty)].metas[slot as usize].generation;
        // Slots and generations stay in range by construction (capacity is validated, and
        // slots retire at GENERATION_MAX); generation 0 means "never used".
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

    pub(crate) fn meta(&mut self, ty: u8, slot: u32) -> &mut Meta {
        &mut self.types[usize::from(ty)].metas[slot as usize]
    }

    fn wake(&mut self, ty: u8, slot: u32) {
        self.types[usize::from(ty)].make_ready(slot);
    }

    /// The type state and slot of a live local isolate (as [`Core::locate`], one lookup).
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

    /// Queues a message in a local mailbox.
    #[inline]
    pub(crate) fn deliver_local(&mut self, msg: &Message, class: Class) -> Result<(), SendError> {
        self.deliver_local_with(msg.dst(), class, |slot| *slot = *msg)
    }

    /// Queues a message for `dst` in a local mailbox, written by `write` straight into its
    /// pool envelope (which must end up addressed to `dst`). Nothing is written when the
    /// delivery is refused.
    #[inline]
    pub(crate) fn deliver_local_with(
        &mut self,
        dst: Handle,
        class: Class,
        write: impl FnOnce(&mut Message),
    ) -> Result<(), SendError> {
        let Some((t, slot)) = Self::locate_mut(self.types, self.shard, dst) else {
            self.counters.stale_deliveries += 1;
            return Err(SendError::StaleHandle);
        };
        let m = &mut t.metas[slot];
        if m.mailbox.len >= t.mailbox_capacity {
            self.counters.mailbox_full += 1;
            return Err(SendError::MailboxFull);
        }
        let Some(i) = self.pool.alloc_with(class, write) else {
            self.counters.pool_exhausted += 1;
            return Err(SendError::PoolExhausted);
        };
        debug_assert_eq!(self.pool.get(i).dst(), dst);
        self.pool.push(&mut m.mailbox, i);
        if m.state == State::Receiving && !m.queued {
            // What `make_ready` decides for a waiting isolate that now has mail.
            m.queued = true;
            TypeState::push(t.metas, &mut t.ready, slot as u32);
        } else {
            t.make_ready(slot as u32);
        }
        Ok(())
    }

    /// Accepts a reply only if the caller is waiting for exactly this correlation.
    pub(crate) fn deliver_reply(&mut self, msg: &Message) {
        let waiting = self.locate(msg.dst()).filter(|&(ty, slot)| {
            let m = &self.types[usize::from(ty)].metas[slot as usize];
            m.state == State::AwaitingReply
                && m.call_correlation == msg.correlation()
                && m.reply == NIL
                && m.call_failure.is_none()
        });
        let Some((ty, slot)) = waiting else {
            self.counters.stale_replies += 1;
            return;
        };
        let Some(i) = self.pool.alloc(Class::System, msg) else {
            self.counters.pool_exhausted += 1;
            return;
        };
        let m = self.meta(ty, slot);
        m.reply = i;
        let timer = m.call_timer.take();
        let owner = self.handle(ty, slot);
        if let Some(id) = timer {
            let mut head = self.meta(ty, slot).timers;
            self.timers.cancel(id, owner, &mut head);
            self.meta(ty, slot).timers = head;
        }
        self.wake(ty, slot);
    }

    /// Delivers a message from another shard.
    pub(crate) fn deliver_inbound(&mut self, msg: &Message) {
        if msg.transfer().is_some() {
            // Transfer buffers never leave their shard; such a message is malformed.
            self.counters.stale_deliveries += 1;
            return;
        }
        if msg.is_reply() {
            self.deliver_reply(msg);
        } else if self.deliver_local(msg, Class::User).is_ok() {
            self.counters.inbound_delivered += 1;
        }
    }

    /// Sends a typed user message from `src`: a local one is written straight into its pool
    /// envelope, a remote one goes through [`Core::send`].
    #[inline]
    pub(crate) fn send_typed<T: Payload>(
        &mut self,
        transport: &mut dyn Transport,
        src: Handle,
        to: Handle,
        value: &T,
    ) -> Result<(), SendError> {
        if to.shard() != self.shard {
            return self.send_remote_typed(transport, src, to, value);
        }
        let r = self.deliver_local_with(to, Class::User, |slot| slot.write_typed(src, to, value));
        if r.is_ok() {
            self.counters.sends_local += 1;
        }
        r
    }

    #[inline(never)]
    fn send_remote_typed<T: Payload>(
        &mut self,
        transport: &mut dyn Transport,
        src: Handle,
        to: Handle,
        value: &T,
    ) -> Result<(), SendError> {
        self.send(transport, &Message::typed(src, to, value))
    }

    /// Sends a user message from `from`.
    pub(crate) fn send(
        &mut self,
        transport: &mut dyn Transport,
        msg: &Message,
    ) -> Result<(), SendError> {
        let to = msg.dst();
        if to.shard() == self.shard {
            let r = if msg.is_reply() {
                self.deliver_reply(msg);
                Ok(())
            } else {
                self.deliver_local(msg, Class::User)
            };
            if r.is_ok() {
                self.counters.sends_local += 1;
            }
            r
        } else if usize::from(to.shard().0) >= self.spec.shards.len() || to.is_none() {
            self.counters.stale_deliveries += 1;
            Err(SendError::StaleHandle)
        } else if self.is_quarantined_peer(to.shard()) {
            self.counters.quarantine_drops += 1;
            Err(SendError::StaleHandle)
        } else {
            match transport.send(to.shard(), msg) {
                Ok(()) => {
                    self.counters.sends_remote += 1;
                    Ok(())
                }
                Err(SendError::MailboxFull) => {
                    self.counters.ring_full += 1;
                    Err(SendError::MailboxFull)
                }
                Err(e) => {
                    self.counters.quarantine_drops += 1;
                    Err(e)
                }
            }
        }
    }

    /// Takes the next thing to dispatch to an isolate into `out` when it is anything but a
    /// plain mailbox message (notices, replies, completions; see [`Core::next_message`]), and
    /// returns the isolate's generation and group.
    #[cold]
    #[inline(never)]
    fn next_message_slow(&mut self, ty: u8, slot: u32, out: &mut Message) -> Option<(u32, u16)> {
        *out = self.next_message(ty, slot)?;
        let m = self.meta(ty, slot);
        Some((m.generation, m.group))
    }

    /// Pops the next ready isolate of type `ty` and takes its first message into `out` (the
    /// head of its mailbox when it simply waits for messages, else through
    /// [`Core::next_message_slow`]), with the lookup that popped it. Returns the slot
    /// and, if a message was taken, the isolate's generation and group; if none was, the
    /// slot is queued again if it has work (as at the end of a run).
    #[inline]
    pub(crate) fn next_ready(
        &mut self,
        ty: u8,
        out: &mut Message,
    ) -> Option<(u32, Option<(u32, u16)>)> {
        let t = &mut self.types[usize::from(ty)];
        let slot = t.pop_ready()?;
        let m = &mut t.metas[slot as usize];
        if m.state == State::Receiving && m.notices == 0 {
            if self.pool.take_from(&mut m.mailbox, out) {
                let found = (m.generation, m.group);
                if out.transfer().is_some() {
                    self.hold_transfer(ty, slot, out);
                }
                return Some((slot, Some(found)));
            }
            // Waiting, no notice, empty mailbox: no work, nothing to queue.
            return Some((slot, None));
        }
        let found = self.next_message_slow(ty, slot, out);
        if found.is_none() {
            self.types[usize::from(ty)].make_ready(slot);
        }
        Some((slot, found))
    }

    /// After a handler call of the isolate in `slot` that did not end it: parks it as
    /// `Receiving` if it returned `Receive`, then — if it may run again (`more`), is still
    /// the same incarnation and waits for messages — takes its next message into `out` as
    /// [`Core::next_ready`] does, with the same metadata lookup. When it returns
    /// `None` the run is over and the slot is queued again if it has work.
    #[inline]
    pub(crate) fn after_dispatch(
        &mut self,
        ty: u8,
        slot: u32,
        generation: u32,
        receive: bool,
        more: bool,
        out: &mut Message,
    ) -> Option<(u32, u16)> {
        let t = &mut self.types[usize::from(ty)];
        let m = &mut t.metas[slot as usize];
        if receive {
            m.state = State::Receiving;
        }
        if more && m.generation == generation && m.state == State::Receiving {
            if m.notices == 0 {
                if self.pool.take_from(&mut m.mailbox, out) {
                    let found = (m.generation, m.group);
                    if out.transfer().is_some() {
                        self.hold_transfer(ty, slot, out);
                    }
                    return Some(found);
                }
                // Waiting, no notice, empty mailbox: no work, nothing to queue.
                return None;
            } else {
                let found = self.next_message_slow(ty, slot, out);
                if found.is_some() {
                    return found;
                }
                self.types[usize::from(ty)].make_ready(slot);
                return None;
            }
        }
        self.types[usize::from(ty)].make_ready(slot);
        None
    }

    /// The next thing to dispatch to an isolate, by its state: notices, replies,
    /// completions, resumption, or the head of its mailbox.
    #[cold]
    pub(crate) fn next_message(&mut self, ty: u8, slot: u32) -> Option<Message> {
        let me = self.handle(ty, slot);
        let m = self.meta(ty, slot);
        match m.state {
            State::Receiving => {
                if m.notices & NOTICE_SHUTDOWN != 0 {
                    m.notices &= !NOTICE_SHUTDOWN;
                    return Some(Message::system(me, system_tag::SHUTDOWN, &[]));
                }
                let mut mailbox = m.mailbox;
                let i = self.pool.pop_from(&mut mailbox)?;
                self.meta(ty, slot).mailbox = mailbox;
                let msg = *self.pool.get(i);
                self.pool.release(i);
                self.hold_transfer(ty, slot, &msg);
                Some(msg)
            }
            State::Yielded => {
                // A shutdown that started while it yielded is told in place of the resume
                // (every isolate gets its notice; it resumes the isolate all the same).
                if m.notices & NOTICE_SHUTDOWN != 0 {
                    m.notices &= !NOTICE_SHUTDOWN;
                    return Some(Message::system(me, system_tag::SHUTDOWN, &[]));
                }
                Some(Message::system(me, system_tag::RESUMED, &[]))
            }
            State::AwaitingReply => {
                if m.reply != NIL {
                    let i = m.reply;
                    m.reply = NIL;
                    let msg = *self.pool.get(i);
                    self.pool.release(i);
                    return Some(msg);
                }
                let (why, detail) = m.call_failure.take()?;
                let mut notice =
                    Message::system(me, system_tag::CALL_TIMEOUT, &[why as u8, detail]);
                notice = notice.with_reply(m.call_correlation);
                Some(notice)
            }
            State::AwaitingIo => {
                let c = m.io_completion.take()?;
                if let Some(fd) = c.fd() {
                    // The new descriptor belongs to this handler call until someone owns it.
                    self.pending_fd = Some((fd, false));
                }
                if let Some(buf) = c.buf {
                    // The delivered buffer belongs to this one handler call.
                    self.io.bufs.set_state(buf, BufState::Held);
                    let _ = self.io.bufs.hold(buf);
                }
                Some(Message::system(me, system_tag::IO_COMPLETED, &c.encode()))
            }
            State::Free | State::Initializing | State::Retired => None,
        }
    }

    /// Makes the transfer buffer attached to a dequeued message readable during this one
    /// handler call (only if it really is in flight to this isolate).
    fn hold_transfer(&mut self, ty: u8, slot: u32, msg: &Message) {
        let me = self.handle(ty, slot);
        if let Some(t) = msg.transfer()
            && self.transfers.is(t.0, me, BufState::InFlight)
        {
            self.transfers.set_state(t.0, BufState::Held);
            if !self.transfers.hold(t.0) {
                self.transfers.free(t.0);
            }
        }
    }

    /// Starts a call from `me`. The caller is parked whatever happens: a failed send or a
    /// missing timer arrives as an immediate `CALL_TIMEOUT`.
    pub(crate) fn start_call(
        &mut self,
        transport: &mut dyn Transport,
        ty: u8,
        slot: u32,
        to: Handle,
        out: &Outgoing,
        timeout: Duration,
    ) {
        let me = self.handle(ty, slot);
        self.correlation_next += 1;
        let correlation =
            (u64::from(self.shard.0) << 56) | (self.correlation_next & ((1 << 56) - 1));
        let m = self.meta(ty, slot);
        m.state = State::AwaitingReply;
        m.call_target = to;
        m.call_correlation = correlation;
        m.reply = NIL;
        m.call_failure = None;
        let msg = Message::build(me, to, out).with_call(correlation);
        if let Err(e) = self.send(transport, &msg) {
            self.counters.call_timeouts += 1;
            self.meta(ty, slot).call_failure = Some((CallFailure::SendFailed, e as u8));
            self.wake(ty, slot);
            return;
        }
        let mut head = self.meta(ty, slot).timers;
        let timer = self.timers.start(
            self.now + timeout,
            me,
            TimerKind::CallTimeout(correlation),
            Class::System,
            &mut head,
        );
        let m = self.meta(ty, slot);
        m.timers = head;
        match timer {
            Ok(id) => m.call_timer = Some(id),
            Err(_) => {
                // No timer to bound the wait: fail fast rather than wait forever.
                m.call_failure = Some((CallFailure::TimedOut, 0));
                self.counters.timer_exhausted += 1;
                self.counters.call_timeouts += 1;
                self.wake(ty, slot);
            }
        }
    }

    /// Applies the effect returned by a handler (or `init`). `call` is the call being handled
    /// (source, correlation), if any. Returns the exit if the isolate must be torn down. The
    /// caller queues the isolate afterwards if it has work (`TypeState::make_ready`).
    pub(crate) fn apply_effect(
        &mut self,
        transport: &mut dyn Transport,
        ty: u8,
        slot: u32,
        effect: &Effect,
        call: Option<(Handle, u64)>,
    ) -> Option<Exit> {
        match *effect {
            Effect::Done => return Some(Exit::Normal),
            Effect::Crash(reason) => return Some(Exit::Crashed(reason)),
            Effect::Yield => self.meta(ty, slot).state = State::Yielded,
            Effect::Receive => self.meta(ty, slot).state = State::Receiving,
            Effect::Call {
                to,
                ref message,
                timeout,
            } => self.start_call(transport, ty, slot, to, message, timeout),
            Effect::Reply(ref out) => {
                let Some((caller, correlation)) = call else {
                    return Some(Exit::Crashed(CrashReason::REPLY_WITHOUT_CALL));
                };
                let me = self.handle(ty, slot);
                let msg = Message::build(me, caller, out).with_reply(correlation);
                // A reply that cannot be delivered is the caller's timeout; it is counted.
                let _ = self.send(transport, &msg);
                self.meta(ty, slot).state = State::Receiving;
            }
            Effect::Io(op) => {
                if let Err(reason) = self.submit_io(ty, slot, op) {
                    return Some(Exit::Crashed(reason));
                }
            }
        }
        None
    }

    /// Queues one I/O op for this tick's batch and parks the isolate on it.
    fn submit_io(&mut self, ty: u8, slot: u32, op: IoOp) -> Result<(), CrashReason> {
        let me = self.handle(ty, slot);
        if let Some(buf) = op.outbound_buffer() {
            if !self.io.bufs.holds(buf) || !self.io.bufs.is(buf, me, BufState::Held) {
                return Err(CrashReason::BAD_IO_BUFFER);
            }
            let len = match op {
                IoOp::Send { len, .. } | IoOp::Write { len, .. } | IoOp::SendTo { len, .. } => len,
                IoOp::Open { path_len, .. } => path_len,
                _ => 0,
            };
            if len as usize > self.io.bufs.buffer_size() {
                return Err(CrashReason("Io effect length exceeds the buffer size"));
            }
        }
        self.meta(ty, slot).state = State::AwaitingIo;
        if self.io.sub_len == self.io.subs.len() {
            // Refused before the platform saw it: an owned descriptor stays owned (a close
            // refused here must not leave the descriptor to nobody).
            self.counters.io_submission_full += 1;
            self.finish_io_locally(ty, slot, &op, IoError::QueueFull);
            return Ok(());
        }
        if let IoOp::Close { fd } = op
            && self.meta(ty, slot).owned_fd == fd.0
        {
            self.meta(ty, slot).owned_fd = -1;
        }
        let mut inbound = None;
        if op.kind().fills_buffer() {
            match self.io.bufs.alloc(me, BufState::InFlight) {
                Some(b) => inbound = Some(b),
                None => {
                    self.counters.io_buffer_exhausted += 1;
                    self.finish_io_locally(ty, slot, &op, IoError::NoBuffers);
                    return Ok(());
                }
            }
        }
        if let Some(buf) = op.outbound_buffer() {
            self.io.bufs.set_state(buf, BufState::InFlight);
        }
        let buf = inbound.or(op.outbound_buffer());
        self.io.subs[self.io.sub_len] = Submission { owner: me, op, buf };
        self.io.sub_len += 1;
        self.meta(ty, slot).io_in_flight = true;
        Ok(())
    }

    /// Completes an op without the platform (refused before submission).
    fn finish_io_locally(&mut self, ty: u8, slot: u32, op: &IoOp, e: IoError) {
        if let Some(buf) = op.outbound_buffer() {
            self.io.bufs.free(buf);
        }
        self.meta(ty, slot).io_completion = Some(IoCompletion::new(op.kind(), Err(e)));
    }

    /// Takes a completion from the platform.
    pub(crate) fn complete_io(&mut self, owner: Handle, mut c: IoCompletion) {
        let target = self.locate(owner).filter(|&(ty, slot)| {
            let m = &self.types[usize::from(ty)].metas[slot as usize];
            m.state == State::AwaitingIo && m.io_in_flight
        });
        let buf_ok = c
            .buf
            .is_none_or(|b| self.io.bufs.is(b, owner, BufState::InFlight));
        let Some((ty, slot)) = target.filter(|_| buf_ok) else {
            if owner.is_none() {
                return; // reclaim work (e.g. a close) finished
            }
            if !buf_ok || self.locate(owner).is_some() {
                // A stale buffer reference, or a completion for a live isolate with nothing
                // in flight (a duplicate): the buffer and descriptor it names are someone's
                // now, so nothing is reclaimed.
                self.counters.io_bogus_completions += 1;
                return;
            }
            // The owner is gone: reclaim what the completion carries.
            self.counters.io_stale_completions += 1;
            if let Some(b) = c.buf {
                self.io.bufs.free(b);
            }
            if let Some(fd) = c.fd() {
                self.queue_reclaim(IoOp::Close { fd });
            }
            return;
        };
        // The op's buffer (received data, or the data that was sent — so a partial send can
        // resend its tail) comes back with the completion and is held for that one handler
        // call, then freed unless handed to the next op.
        let _ = &mut c;
        let m = self.meta(ty, slot);
        m.io_in_flight = false;
        m.io_completion = Some(c);
        self.counters.io_completed += 1;
        self.wake(ty, slot);
    }

    /// Queues reclaim work with no owner (closing a descriptor nobody owns any more).
    ///
    /// Never dropped silently. If the batch is full, a submission in it whose owner is gone
    /// and that works on the same descriptor gives its place up (its buffer is freed: no
    /// completion will name it); otherwise the descriptor is held in [`Core::orphans`] until
    /// [`Core::reclaim_orphans`] hands it to the platform. No submission in the batch uses
    /// a held descriptor, so closing it ahead of the batch cannot let a late operation act
    /// on a new descriptor that reuses the number. Both ways count `io_reclaims_deferred`;
    /// a full hold list counts `io_reclaims_lost`.
    pub(crate) fn queue_reclaim(&mut self, op: IoOp) {
        let reclaim = Submission {
            owner: Handle::NONE,
            op,
            buf: None,
        };
        if self.io.sub_len < self.io.subs.len() {
            self.io.subs[self.io.sub_len] = reclaim;
            self.io.sub_len += 1;
            return;
        }
        self.counters.io_reclaims_deferred += 1;
        let IoOp::Close { fd } = op else {
            self.counters.io_reclaims_lost += 1;
            return;
        };
        let stale = (0..self.io.sub_len).find(|&i| {
            let s = self.io.subs[i];
            !s.owner.is_none()
                && !matches!(s.op, IoOp::Close { .. })
                && op_uses_fd(&s.op, fd)
                && self.locate(s.owner).is_none()
        });
        if let Some(i) = stale {
            if let Some(b) = self.io.subs[i].buf {
                self.io.bufs.free(b);
            }
            self.io.subs[i] = reclaim;
        } else {
            self.hold_orphan(fd);
        }
    }

    /// Holds the close of `fd` (nobody owns it) until the platform or a later batch takes
    /// it; counted as lost only if the hold list is full.
    pub(crate) fn hold_orphan(&mut self, fd: crate::io::Fd) {
        if !self.orphans.push(fd) {
            self.counters.io_reclaims_lost += 1;
        }
    }

    /// Hands the held orphaned descriptors to the platform to close at once, or to the
    /// submission batch if it has room again; keeps the rest.
    pub(crate) fn reclaim_orphans(&mut self, control: &mut dyn SocketControl) {
        let held = core::mem::replace(&mut self.orphans, Orphans::EMPTY);
        for &fd in &held.fds[..held.len] {
            if control.close_orphan(fd) {
                continue;
            }
            if self.io.sub_len < self.io.subs.len() {
                self.queue_reclaim(IoOp::Close { fd });
            } else {
                // Room for it: the list was emptied above and is refilled from `held` only.
                let _ = self.orphans.push(fd);
            }
        }
    }

    /// Tears an isolate down: generation bumped (so every old handle is stale), mailbox and
    /// reply returned to the pool, call and timers cancelled, in-flight I/O left to be
    /// reclaimed on completion. The caller drops the isolate value from its arena. Only
    /// returns resources, so it works when every pool is full.
    pub(crate) fn teardown(&mut self, ty: u8, slot: u32) {
        let m = self.meta(ty, slot);
        let mut mailbox = core::mem::replace(&mut m.mailbox, Fifo::EMPTY);
        let reply = core::mem::replace(&mut m.reply, NIL);
        let mut timers = core::mem::replace(&mut m.timers, NIL);
        m.call_timer = None;
        m.call_failure = None;
        let undelivered = m.io_completion.take();
        m.io_in_flight = false;
        m.notices = 0;
        m.watches_shards = false;
        let owned_fd = core::mem::replace(&mut m.owned_fd, -1);
        while let Some(i) = self.pool.pop_from(&mut mailbox) {
            if let Some(t) = self.pool.get(i).transfer() {
                self.transfers.free(t.0);
            }
            self.pool.release(i);
        }
        let mut undelivered_fd = None;
        if let Some(c) = undelivered {
            // Completed but never handled: its buffer and descriptor have no owner now.
            if let Some(b) = c.buf {
                self.io.bufs.free(b);
            }
            undelivered_fd = c.fd();
        }
        if reply != NIL {
            self.pool.release(reply);
        }
        self.timers.cancel_all(&mut timers);
        self.types[usize::from(ty)].release(slot);
        // Queued once the slot is free, so this isolate's own submissions still in the
        // batch count as stale (see `queue_reclaim`).
        if owned_fd >= 0 {
            self.queue_reclaim(IoOp::Close {
                fd: crate::io::Fd(owned_fd),
            });
        }
        if let Some(fd) = undelivered_fd {
            self.queue_reclaim(IoOp::Close { fd });
        }
    }

    /// Fires due timers (bounded per tick).
    pub(crate) fn advance_timers(&mut self, now: Instant) -> u32 {
        let n = self.timers.collect_due(now, self.due);
        for k in 0..n {
            let i = self.due[k];
            let fired = self.timers.fired(i);
            let Some((ty, slot)) = self.locate(fired.owner) else {
                // Teardown cancels all of an isolate's timers, so this cannot happen; free
                // the entry anyway to keep the pool conserved.
                let mut scratch = i;
                self.timers.fire(i, &mut scratch);
                continue;
            };
            let mut head = self.meta(ty, slot).timers;
            self.timers.fire(i, &mut head);
            self.meta(ty, slot).timers = head;
            self.counters.timers_fired += 1;
            match fired.kind {
                TimerKind::User(tag) => {
                    let msg = Message::timer(fired.owner, crate::message::Tag(tag));
                    if self.deliver_local(&msg, Class::System).is_err() {
                        self.counters.timer_drops += 1;
                    }
                }
                TimerKind::CallTimeout(correlation) => {
                    let m = self.meta(ty, slot);
                    if m.state == State::AwaitingReply
                        && m.call_correlation == correlation
                        && m.reply == NIL
                    {
                        m.call_timer = None;
                        m.call_failure = Some((CallFailure::TimedOut, 0));
                        self.counters.call_timeouts += 1;
                        self.wake(ty, slot);
                    }
                }
            }
        }
        n as u32
    }

    /// A peer shard changed status: calls waiting on it fail fast (as if their request had
    /// gone to a stale handle), and isolates that watch shards get a notice.
    pub(crate) fn on_peer_event(&mut self, peer: crate::handle::ShardId, event: PeerEvent) {
        let (word, bit) = (usize::from(peer.0 / 64), 1u64 << (peer.0 % 64));
        let tag = match event {
            PeerEvent::Restarted => {
                self.quarantined_peers[word] &= !bit;
                system_tag::SHARD_RESTARTED
            }
            PeerEvent::Quarantined => {
                self.quarantined_peers[word] |= bit;
                system_tag::SHARD_QUARANTINED
            }
        };
        for ty in 0..self.types.len() as u8 {
            for slot in 0..self.types[usize::from(ty)].metas.len() as u32 {
                let m = &self.types[usize::from(ty)].metas[slot as usize];
                if !m.is_live() {
                    continue;
                }
                let waiting = m.state == State::AwaitingReply
                    && m.call_target.shard() == peer
                    && m.reply == NIL
                    && m.call_failure.is_none();
                let watches = m.watches_shards;
                if waiting {
                    let owner = self.handle(ty, slot);
                    let m = self.meta(ty, slot);
                    m.call_failure = Some((CallFailure::SendFailed, SendError::StaleHandle as u8));
                    let timer = m.call_timer.take();
                    let mut head = m.timers;
                    if let Some(id) = timer {
                        self.timers.cancel(id, owner, &mut head);
                    }
                    self.meta(ty, slot).timers = head;
                    self.counters.call_timeouts += 1;
                    self.wake(ty, slot);
                }
                if watches {
                    let me = self.handle(ty, slot);
                    let notice = Message::system(me, tag, &[peer.0]);
                    // A full mailbox or pool drops the notice; deliver_local counted it.
                    let _ = self.deliver_local(&notice, Class::System);
                }
            }
        }
    }

    pub(crate) fn is_quarantined_peer(&self, peer: crate::handle::ShardId) -> bool {
        self.quarantined_peers[usize::from(peer.0 / 64)] & (1u64 << (peer.0 % 64)) != 0
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

/// Whether `op` works on descriptor `fd`.
fn op_uses_fd(op: &IoOp, fd: crate::io::Fd) -> bool {
    match *op {
        IoOp::Accept { listener } => listener == fd,
        IoOp::Connect { socket, .. }
        | IoOp::Recv { socket, .. }
        | IoOp::Send { socket, .. }
        | IoOp::SendTo { socket, .. }
        | IoOp::RecvFrom { socket, .. } => socket == fd,
        IoOp::Read { file, .. } | IoOp::Write { file, .. } => file == fd,
        IoOp::SendFile { out, file, .. } => out == fd || file == fd,
        IoOp::Close { fd: f } => f == fd,
        IoOp::Open { .. } => false,
    }
}
