//! Teardown: returning everything an isolate held, so its slot can be reused.

use super::Kernel;
use crate::error::SendError;
use crate::memory::pool::{Fifo, NIL};
use crate::model::io::IoOp;

impl<'a> Kernel<'a> {
    /// Tears an isolate down: generation bumped (so every old handle is stale), mailbox and
    /// reply returned to the pool, call and timers cancelled, in-flight I/O left to be
    /// reclaimed on completion. Calls still queued in its mailbox are refused back to their
    /// callers (`StaleHandle`), so none waits out its timeout for an answer that cannot
    /// come. The caller drops the isolate value from its arena. Only returns resources (a
    /// refusal to another shard takes the envelope the call just gave back), so it works when
    /// every pool is full.
    pub(super) fn teardown(&mut self, ty: u8, slot: u32) {
        let me = self.handle(ty, slot);
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
            let msg = *self.pool.get(i);
            if let Some(t) = msg.transfer() {
                self.free_transfer(t);
            }
            self.pool.release(i);
            if msg.is_call() && msg.src() != me {
                self.refuse_call(&msg, SendError::StaleHandle);
            }
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
                fd: crate::model::io::Fd(owned_fd),
            });
        }
        if let Some(fd) = undelivered_fd {
            self.queue_reclaim(IoOp::Close { fd });
        }
        // Completions of submitted ops not yet delivered give back their buffer and
        // descriptor; submitted ops still in flight are reclaimed on completion, as above.
        self.reclaim_tickets(ty, slot);
    }
}
