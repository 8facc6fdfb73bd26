//! I/O bookkeeping: the submission batch, completions coming back, and reclaiming descriptors
//! and buffers whose owner is gone.
//!
//! An isolate has at most one *parked* op (`Effect::Io`: state `AwaitingIo`, the completion
//! kept in `Meta::io_completion`, ticket [`IoTicket::PARKED`]) and up to
//! `TypeSpec::io_in_flight_max − 1` *submitted* ops (`Ctx::submit`), each in one of the
//! isolate's [`TicketSlot`]s (carved per type at boot, `tickets_per` per isolate):
//!
//! ```text
//!   Free ──submit_ticket──> InFlight ──complete_io──> Done(completion) ──delivered──> Free
//!    ^                     (cancel asked: flag)       (NOTICE_IO set)   (next Receiving
//!    │                                                                   dispatch)
//!    └──────────────── teardown: Done reclaimed (buffer freed, descriptor closed); an
//!                      InFlight op's completion comes back stale and is reclaimed then
//! ```
//!
//! A completion is routed by owner handle (slot + generation: a later incarnation never
//! matches) and ticket (index + sequence number: an earlier op in the same slot never
//! matches). A waiting `Done` completion sets the isolate's `NOTICE_IO` bit, so the mailbox
//! fast path (which only runs with no notice pending) is untouched; the slow path delivers
//! completions ahead of mail, one per handler call, whenever the isolate is `Receiving`.
//! Cancels are collected per tick ([`CANCELS_MAX`]) and handed to the platform after the
//! submission batch, so the platform has seen the op they name.

use super::{Kernel, NOTICE_IO, State};
use crate::memory::iobuf::BufState;
use crate::model::effect::CrashReason;
use crate::model::handle::Handle;
use crate::model::io::Submission;
use crate::model::io::{Fd, IoCompletion, IoError, IoOp, IoTicket};
use crate::platform::SocketControl;

/// Orphaned descriptors the kernel holds while the submission batch is full. The shard hands
/// them to the platform (`SocketControl::close_orphan`) after every teardown and every
/// completion pass, so a platform that closes at once never has more than a few held.
pub(crate) const ORPHANS_MAX: usize = 16;

/// Descriptors nobody owns any more whose close found the submission batch full.
pub(crate) type Orphans = heapless::Vec<Fd, ORPHANS_MAX>;

/// Cancels one tick can ask for; more are refused with `QueueFull`.
pub(crate) const CANCELS_MAX: usize = 32;

/// This tick's cancels: (owner, ticket).
pub(crate) type Cancels = heapless::Vec<(Handle, IoTicket), CANCELS_MAX>;

/// Where one submitted op of an isolate is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TicketState {
    Free,
    /// Submitted; `cancel` once a cancel was asked for.
    InFlight {
        cancel: bool,
    },
    /// Completed, waiting to be delivered.
    Done(IoCompletion),
}

/// One completion slot of submitted I/O.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TicketSlot {
    /// Sequence number of the slot's last op (1 to 4095; 0 = never used).
    seq: u16,
    state: TicketState,
}

impl TicketSlot {
    pub(crate) const FREE: TicketSlot = TicketSlot {
        seq: 0,
        state: TicketState::Free,
    };
}

impl<'a> Kernel<'a> {
    /// Queues one I/O op for this tick's batch and parks the isolate on it.
    pub(super) fn submit_io(&mut self, ty: u8, slot: u32, op: IoOp) -> Result<(), CrashReason> {
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
        self.io.subs[self.io.sub_len] = Submission {
            owner: me,
            op,
            buf,
            ticket: IoTicket::PARKED,
        };
        self.io.sub_len += 1;
        self.meta(ty, slot).io_in_flight = true;
        Ok(())
    }

    /// The ticket slots of the isolate in (ty, slot).
    fn tickets(&mut self, ty: u8, slot: u32) -> &mut [TicketSlot] {
        let t = &mut self.types[usize::from(ty)];
        let start = slot as usize * t.tickets_per;
        &mut t.tickets[start..start + t.tickets_per]
    }

    /// Queues one I/O op for this tick's batch without parking the isolate (`Ctx::submit`).
    /// Refused at once, with nothing handed over (an outbound buffer stays held by this
    /// handler call), if the buffer is not this call's, the length exceeds it, every ticket
    /// slot is in use, the batch is full or no buffer is free for the data coming in.
    pub(crate) fn submit_ticket(&mut self, me: Handle, op: IoOp) -> Result<IoTicket, IoError> {
        let (ty, slot) = self.locate(me).ok_or(IoError::BadBuffer)?;
        if let Some(buf) = op.outbound_buffer() {
            if !self.io.bufs.holds(buf) || !self.io.bufs.is(buf, me, BufState::Held) {
                return Err(IoError::BadBuffer);
            }
            let len = match op {
                IoOp::Send { len, .. } | IoOp::Write { len, .. } | IoOp::SendTo { len, .. } => len,
                IoOp::Open { path_len, .. } => path_len,
                _ => 0,
            };
            if len as usize > self.io.bufs.buffer_size() {
                return Err(IoError::InvalidInput);
            }
        }
        let index = self
            .tickets(ty, slot)
            .iter()
            .position(|t| matches!(t.state, TicketState::Free))
            .ok_or(IoError::InFlightLimit)?;
        if self.io.sub_len == self.io.subs.len() {
            self.counters.io_submission_full += 1;
            return Err(IoError::QueueFull);
        }
        let mut inbound = None;
        if op.kind().fills_buffer() {
            inbound = self.io.bufs.alloc(me, BufState::InFlight);
            if inbound.is_none() {
                self.counters.io_buffer_exhausted += 1;
                return Err(IoError::NoBuffers);
            }
        }
        if let Some(buf) = op.outbound_buffer() {
            self.io.bufs.set_state(buf, BufState::InFlight);
        }
        if let IoOp::Close { fd } = op
            && self.meta(ty, slot).owned_fd == fd.0
        {
            self.meta(ty, slot).owned_fd = -1;
        }
        let t = &mut self.tickets(ty, slot)[index];
        t.seq = if t.seq >= 0xFFF { 1 } else { t.seq + 1 };
        t.state = TicketState::InFlight { cancel: false };
        let ticket = IoTicket::new(index, t.seq);
        self.io.subs[self.io.sub_len] = Submission {
            owner: me,
            op,
            buf: inbound.or(op.outbound_buffer()),
            ticket,
        };
        self.io.sub_len += 1;
        Ok(ticket)
    }

    /// Asks the platform to cancel a submitted op of `me` (`Ctx::cancel`): `InFlightLimit`
    /// if `ticket` is not in flight (completed already, or never submitted), `QueueFull` if
    /// this tick's cancels are full. Asking twice is harmless.
    pub(crate) fn cancel_io(&mut self, me: Handle, ticket: IoTicket) -> Result<(), IoError> {
        let (ty, slot) = self.locate(me).ok_or(IoError::InFlightLimit)?;
        let t = self
            .tickets(ty, slot)
            .get(ticket.index())
            .filter(|t| !ticket.is_parked() && IoTicket::new(ticket.index(), t.seq) == ticket)
            .map(|t| t.state);
        match t {
            Some(TicketState::InFlight { cancel: true }) => Ok(()),
            Some(TicketState::InFlight { cancel: false }) => {
                if self.cancels.push((me, ticket)).is_err() {
                    return Err(IoError::QueueFull);
                }
                self.tickets(ty, slot)[ticket.index()].state =
                    TicketState::InFlight { cancel: true };
                Ok(())
            }
            _ => Err(IoError::InFlightLimit),
        }
    }

    /// Hands this tick's cancels to the platform (after the batch: it has seen their ops).
    pub(super) fn flush_cancels<I: crate::platform::IoDriver + ?Sized>(&mut self, io: &mut I) {
        for &(owner, ticket) in &self.cancels {
            io.cancel(owner, ticket);
        }
        self.cancels.clear();
    }

    /// Takes a completion of a submitted op into its ticket slot and tells the isolate
    /// (`NOTICE_IO`); a completion naming no op in flight is rejected as
    /// [`Kernel::reject_completion`] says.
    fn complete_ticket(&mut self, owner: Handle, c: IoCompletion) {
        let buf_ok = c
            .buf
            .is_none_or(|b| self.io.bufs.is(b, owner, BufState::InFlight));
        let target = self.locate(owner).filter(|&(ty, slot)| {
            let t = &self.types[usize::from(ty)];
            let i = slot as usize * t.tickets_per + c.ticket.index();
            c.ticket.index() < t.tickets_per
                && IoTicket::new(c.ticket.index(), t.tickets[i].seq) == c.ticket
                && matches!(t.tickets[i].state, TicketState::InFlight { .. })
        });
        let Some((ty, slot)) = target.filter(|_| buf_ok) else {
            self.reject_completion(owner, c, buf_ok);
            return;
        };
        self.tickets(ty, slot)[c.ticket.index()].state = TicketState::Done(c);
        self.meta(ty, slot).notices |= NOTICE_IO;
        self.counters.io_completed += 1;
        self.wake(ty, slot);
    }

    /// Takes the next waiting completion of a submitted op of the isolate in (ty, slot)
    /// (lowest ticket slot first), clearing `NOTICE_IO` when none is left.
    pub(super) fn take_ticket_completion(&mut self, ty: u8, slot: u32) -> Option<IoCompletion> {
        let mut found = None;
        let mut more = false;
        for t in self.tickets(ty, slot).iter_mut() {
            if let TicketState::Done(c) = t.state {
                if found.is_some() {
                    more = true;
                    break;
                }
                found = Some(c);
                t.state = TicketState::Free;
            }
        }
        if !more {
            self.meta(ty, slot).notices &= !NOTICE_IO;
        }
        found
    }

    /// Teardown of the isolate in (ty, slot): completions waiting undelivered give back
    /// their buffer and descriptor; every slot is freed (an op still in flight comes back
    /// stale and is reclaimed then).
    pub(super) fn reclaim_tickets(&mut self, ty: u8, slot: u32) {
        for i in 0..self.types[usize::from(ty)].tickets_per {
            let t = &mut self.tickets(ty, slot)[i];
            let state = core::mem::replace(&mut t.state, TicketState::Free);
            if let TicketState::Done(c) = state {
                if let Some(b) = c.buf {
                    self.io.bufs.free(b);
                }
                if let Some(fd) = c.fd() {
                    self.queue_reclaim(IoOp::Close { fd });
                }
            }
        }
    }

    /// Completions of submitted ops waiting in the ticket slots of (ty, slot) (for
    /// `check_invariants`).
    pub(super) fn tickets_done(&self, ty: usize, slot: usize) -> usize {
        let t = &self.types[ty];
        let start = slot * t.tickets_per;
        t.tickets[start..start + t.tickets_per]
            .iter()
            .filter(|s| matches!(s.state, TicketState::Done(_)))
            .count()
    }

    /// Completes an op without the platform (refused before submission).
    fn finish_io_locally(&mut self, ty: u8, slot: u32, op: &IoOp, e: IoError) {
        if let Some(buf) = op.outbound_buffer() {
            self.io.bufs.free(buf);
        }
        self.meta(ty, slot).io_completion = Some(IoCompletion::new(op.kind(), Err(e)));
    }

    /// Takes a completion from the platform.
    pub(super) fn complete_io(&mut self, owner: Handle, c: IoCompletion) {
        if !c.ticket.is_parked() {
            self.complete_ticket(owner, c);
            return;
        }
        let target = self.locate(owner).filter(|&(ty, slot)| {
            let m = &self.types[usize::from(ty)].metas[slot as usize];
            m.state == State::AwaitingIo && m.io_in_flight
        });
        let buf_ok = c
            .buf
            .is_none_or(|b| self.io.bufs.is(b, owner, BufState::InFlight));
        let Some((ty, slot)) = target.filter(|_| buf_ok) else {
            self.reject_completion(owner, c, buf_ok);
            return;
        };
        // The op's buffer (received data, or the data that was sent — so a partial send can
        // resend its tail) comes back with the completion and is held for that one handler
        // call, then freed unless handed to the next op.
        let m = self.meta(ty, slot);
        m.io_in_flight = false;
        m.io_completion = Some(c);
        self.counters.io_completed += 1;
        self.wake(ty, slot);
    }

    /// A completion no live op waits for: reclaim work finishing (no owner), a duplicate or
    /// a stale buffer reference (counted bogus, nothing reclaimed: what it names is someone
    /// else's now), or a completion for an owner gone meanwhile (counted stale; its buffer
    /// is freed and a descriptor it yields is closed).
    fn reject_completion(&mut self, owner: Handle, c: IoCompletion, buf_ok: bool) {
        if owner.is_none() {
            return; // reclaim work (e.g. a close) finished
        }
        if !buf_ok || self.locate(owner).is_some() {
            self.counters.io_bogus_completions += 1;
            return;
        }
        self.counters.io_stale_completions += 1;
        if let Some(b) = c.buf {
            self.io.bufs.free(b);
        }
        if let Some(fd) = c.fd() {
            self.queue_reclaim(IoOp::Close { fd });
        }
    }

    /// Queues reclaim work with no owner (closing a descriptor nobody owns any more).
    ///
    /// Never dropped silently. If the batch is full, a submission in it whose owner is gone
    /// and that works on the same descriptor gives its place up (its buffer is freed: no
    /// completion will name it); otherwise the descriptor is held in [`Kernel::orphans`] until
    /// [`Kernel::reclaim_orphans`] hands it to the platform. No submission in the batch uses
    /// a held descriptor, so closing it ahead of the batch cannot let a late operation act
    /// on a new descriptor that reuses the number. Both ways count `io_reclaims_deferred`;
    /// a full hold list counts `io_reclaims_lost`.
    pub(super) fn queue_reclaim(&mut self, op: IoOp) {
        let reclaim = Submission {
            owner: Handle::NONE,
            op,
            buf: None,
            ticket: IoTicket::PARKED,
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
    pub(super) fn hold_orphan(&mut self, fd: Fd) {
        if self.orphans.push(fd).is_err() {
            self.counters.io_reclaims_lost += 1;
        }
    }

    /// Whether closes of descriptors nobody owns wait for a later step: held in
    /// [`Kernel::orphans`], or queued into the next submission batch (outside a step the
    /// batch holds only such reclaim work).
    pub(crate) fn reclaims_held(&self) -> bool {
        !self.orphans.is_empty() || self.io.sub_len > 0
    }

    /// Hands the held orphaned descriptors to the platform to close at once, or to the
    /// submission batch if it has room again; keeps the rest.
    pub(super) fn reclaim_orphans(&mut self, control: &mut dyn SocketControl) {
        let held = core::mem::take(&mut self.orphans);
        for &fd in &held {
            if control.close_orphan(fd) {
                continue;
            }
            if self.io.sub_len < self.io.subs.len() {
                self.queue_reclaim(IoOp::Close { fd });
            } else {
                // Room for it: the list was emptied above and is refilled from `held` only.
                let kept = self.orphans.push(fd);
                debug_assert!(
                    kept.is_ok(),
                    "the emptied hold list has room for what it held"
                );
            }
        }
    }
}

/// Whether `op` works on descriptor `fd`.
fn op_uses_fd(op: &IoOp, fd: Fd) -> bool {
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
