//! The kernel's side of `Shard::step` and of the shard's life cycle: taking inbound
//! envelopes and I/O completions, handing the submission batch and the log to the platform,
//! lending a type's arena to a dispatch batch, and starting a shutdown.

use super::{Kernel, NOTICE_SHUTDOWN};
use crate::model::handle::Handle;
use crate::model::io::{IoCompletion, IoOp};
use crate::model::message::Message;
use crate::model::time::{Clock, Instant};
use crate::platform::{CompletionSink, IoBuffers, IoDriver, LogSink, Transport};
use crate::scheduler::arena::ArenaRef;
use crate::scheduler::boot::InitFailure;

impl<'a> Kernel<'a> {
    /// A step starts at `clock`.
    #[inline]
    pub(crate) fn begin_step(&mut self, clock: Clock) {
        self.now = clock.now;
        self.wall = clock.wall;
    }

    /// Moves the clock to `now` unless it is already later (a revival).
    pub(crate) fn advance_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Phase 1: peer events, then every inbound envelope (dropped and counted while the
    /// shard is quarantined).
    pub(crate) fn receive<T: Transport + ?Sized>(&mut self, transport: &mut T, quarantined: bool) {
        transport.peer_events(&mut |peer, event| self.on_peer_event(peer, event));
        transport.receive(&mut |msg: &Message| {
            if quarantined {
                self.counters.quarantine_drops += 1;
                self.refuse_inbound_transfer(msg);
            } else {
                self.deliver_inbound(msg);
            }
        });
        if !self.refusals.is_empty() {
            self.send_refusals(transport);
        }
    }

    /// Phase 2: the platform's completions, then held orphaned descriptors to close.
    pub(crate) fn take_completions<I: IoDriver>(&mut self, io: &mut I) {
        io.complete(&mut Sink { kernel: self });
        if !self.orphans.is_empty() {
            self.reclaim_orphans(io);
        }
    }

    /// Before dispatch: what yielded last tick goes to the back of its ready queue.
    #[inline]
    pub(crate) fn promote_yielded(&mut self) {
        for t in self.types.iter_mut() {
            t.promote_yielded();
        }
    }

    /// Registered isolate types.
    #[inline]
    pub(crate) fn type_count(&self) -> u8 {
        // At most TYPE_COUNT_MAX types (validated), so the last index fits a u8; the count
        // itself is only compared against.
        self.types.len() as u8
    }

    /// Handler calls type `ty` may make per tick.
    #[inline]
    pub(crate) fn quota(&self, ty: u8) -> u32 {
        self.types[usize::from(ty)].quota
    }

    /// Queues the isolate in (ty, slot) again if it has work.
    #[inline]
    pub(crate) fn requeue(&mut self, ty: u8, slot: u32) {
        self.types[usize::from(ty)].make_ready(slot);
    }

    /// Lends type `ty`'s arena to a dispatch batch (its entry is empty until
    /// [`Kernel::return_arena`]).
    #[inline]
    pub(crate) fn lend_arena(&mut self, ty: u8) -> Option<ArenaRef<'a>> {
        self.arenas.get_mut(usize::from(ty)).map(Option::take)
    }

    /// Takes back the arena lent by [`Kernel::lend_arena`].
    #[inline]
    pub(crate) fn return_arena(&mut self, ty: u8, arena: ArenaRef<'a>) {
        self.arenas[usize::from(ty)] = arena;
    }

    /// A handler call panicked.
    #[inline]
    pub(crate) fn count_panic(&mut self) {
        self.counters.panics += 1;
    }

    /// The shard recovered (its tree was rebuilt).
    pub(crate) fn count_recovery(&mut self) {
        self.counters.shard_recoveries += 1;
    }

    /// The last failed `init` (taken), or a placeholder if none was recorded.
    pub(crate) fn take_init_failure(&mut self) -> InitFailure {
        self.init_failure
            .take()
            .unwrap_or_else(|| InitFailure::unknown(self.shard))
    }

    /// Phase 4: hands this tick's submission batch to the platform; what it does not accept
    /// completes at once with its rejection. Held orphans go into the next batch.
    pub(crate) fn submit_batch<I: IoDriver>(&mut self, io: &mut I) {
        let n = self.io.sub_len;
        if n == 0 {
            if !self.orphans.is_empty() {
                self.reclaim_orphans(io);
            }
            if !self.cancels.is_empty() {
                self.flush_cancels(io);
            }
            return;
        }
        let (subs, buffers) = self.io.split();
        let accepted = io.submit(&subs[..n], buffers).min(n);
        self.counters.io_submitted += accepted as u64;
        let rejection = io.rejection();
        for i in accepted..n {
            let s = self.io.subs[i];
            if s.owner.is_none() {
                // Reclaim work the platform refused: the close of a descriptor nobody owns
                // is held and retried, never dropped.
                if let IoOp::Close { fd } = s.op {
                    self.hold_orphan(fd);
                }
                continue;
            }
            let completion = IoCompletion {
                kind: s.op.kind(),
                result: Err(rejection),
                buf: s.buf,
                peer: None,
                ticket: s.ticket,
            };
            self.complete_io(s.owner, completion);
        }
        self.io.sub_len = 0;
        if !self.cancels.is_empty() {
            self.flush_cancels(io);
        }
        // Held orphans (a platform that cannot close at once) go into the next batch.
        if !self.orphans.is_empty() {
            self.reclaim_orphans(io);
        }
    }

    /// Phase 7: the log ring's records to the platform's sink.
    pub(crate) fn flush_log<L: LogSink>(&mut self, log: &mut L) {
        self.log.flush(self.shard, self.now, log);
    }

    /// When an idle shard must step again: its earliest timer, or the end of a rate-limit
    /// window with a report pending, whichever comes first.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        match (self.timers.next_deadline(), self.log.report_deadline()) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        }
    }

    /// Starts a graceful shutdown: every live isolate gets a `SHUTDOWN` notice (no pool
    /// slot needed) and is queued; nothing is restarted any more.
    pub(crate) fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        for t in self.types.iter_mut() {
            for slot in 0..t.metas.len() as u32 {
                if t.metas[slot as usize].is_live() {
                    t.metas[slot as usize].notices |= NOTICE_SHUTDOWN;
                    t.make_ready(slot);
                }
            }
        }
    }
}

/// The kernel as the platform's completion sink.
struct Sink<'x, 'a> {
    kernel: &'x mut Kernel<'a>,
}

impl CompletionSink for Sink<'_, '_> {
    fn complete(&mut self, owner: Handle, completion: IoCompletion) {
        self.kernel.complete_io(owner, completion);
    }

    fn buffers(&mut self) -> IoBuffers<'_> {
        self.kernel.io.bufs.view()
    }
}
