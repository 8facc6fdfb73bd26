//! I/O bookkeeping: the submission batch, completions coming back, and reclaiming descriptors
//! and buffers whose owner is gone.

use super::{Kernel, State};
use crate::memory::iobuf::BufState;
use crate::model::effect::CrashReason;
use crate::model::handle::Handle;
use crate::model::io::Submission;
use crate::model::io::{Fd, IoCompletion, IoError, IoOp};
use crate::platform::SocketControl;

/// Orphaned descriptors the kernel holds while the submission batch is full. The shard hands
/// them to the platform (`SocketControl::close_orphan`) after every teardown and every
/// completion pass, so a platform that closes at once never has more than a few held.
pub(crate) const ORPHANS_MAX: usize = 16;

/// Descriptors nobody owns any more whose close found the submission batch full.
pub(crate) type Orphans = heapless::Vec<Fd, ORPHANS_MAX>;

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
    pub(super) fn complete_io(&mut self, owner: Handle, c: IoCompletion) {
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
