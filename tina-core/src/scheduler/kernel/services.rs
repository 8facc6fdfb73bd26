//! Services for the running handler call, on behalf of isolate `me`: timers, I/O and transfer
//! buffers, working memory and scratch, log records, descriptor ownership, shard watching.
//! [`Ctx`](crate::Ctx) forwards to these. Each returns at once with a result and leaves every
//! structure consistent.

use super::Kernel;
use crate::error::{ScratchTooSmall, SendError};
use crate::memory::iobuf::{BufState, WorkChunk};
use crate::memory::pool::Class;
use crate::memory::timer::{TimerId, TimerKind, TimersExhausted};
use crate::model::handle::Handle;
use crate::model::io::{Fd, IoBuf, IoError};
use crate::model::message::{Message, Outgoing, UserTag};
use crate::model::time::Duration;
use crate::model::transfer::{TransferBuf, TransferError};

impl Kernel<'_> {
    /// Starts a one-shot timer: after `after` (rounded up to whole ticks) a message with `tag`
    /// (and no payload) arrives in this isolate's mailbox. Cancel it with
    /// [`crate::Ctx::cancel_timer`].
    pub(crate) fn start_timer(
        &mut self,
        me: Handle,
        after: Duration,
        tag: UserTag,
    ) -> Result<TimerId, TimersExhausted> {
        let Some((ty, slot)) = self.locate(me) else {
            return Err(TimersExhausted);
        };
        let deadline = self.deadline_after(after);
        let mut head = self.meta(ty, slot).timers;
        let r = self.timers.start(
            deadline,
            me,
            TimerKind::User(tag.get()),
            Class::User,
            &mut head,
        );
        self.meta(ty, slot).timers = head;
        if r.is_err() {
            self.counters.timer_exhausted += 1;
        }
        r
    }

    /// Cancels a pending timer. Returns whether it was still pending (a timer that already
    /// fired, or another isolate's timer, is left alone).
    pub(crate) fn cancel_timer(&mut self, me: Handle, id: TimerId) -> bool {
        let Some((ty, slot)) = self.locate(me) else {
            return false;
        };
        let mut head = self.meta(ty, slot).timers;
        let r = self.timers.cancel(id, me, &mut head);
        self.meta(ty, slot).timers = head;
        r
    }

    /// Takes a reactor-owned buffer to fill and hand to an I/O op in the returned effect.
    /// Freed automatically after the running handler call if not handed over.
    pub(crate) fn io_buffer(&mut self, me: Handle) -> Result<IoBuf, IoError> {
        let Some(buf) = self.io.bufs.alloc(me, BufState::Held) else {
            self.counters.io_buffer_exhausted += 1;
            return Err(IoError::NoBuffers);
        };
        if !self.io.bufs.hold(buf) {
            self.io.bufs.free(buf);
            return Err(IoError::NoBuffers);
        }
        Ok(buf)
    }

    /// The writable bytes of a buffer the running handler call holds.
    pub(crate) fn io_buffer_mut(&mut self, me: Handle, buf: IoBuf) -> Result<&mut [u8], IoError> {
        if self.io.bufs.holds(buf) && self.io.bufs.is(buf, me, BufState::Held) {
            Ok(self.io.bufs.bytes_mut(buf))
        } else {
            Err(IoError::BadBuffer)
        }
    }

    /// The bytes of a buffer the running handler call holds (e.g. the one a receive completion
    /// delivered), limited to `len`.
    pub(crate) fn io_data(&self, me: Handle, buf: IoBuf, len: usize) -> Result<&[u8], IoError> {
        if self.io.bufs.holds(buf) && self.io.bufs.is(buf, me, BufState::Held) {
            let bytes = self.io.bufs.bytes(buf);
            Ok(&bytes[..len.min(bytes.len())])
        } else {
            Err(IoError::BadBuffer)
        }
    }

    /// This isolate's working memory: `TypeSpec::working_memory_size` bytes that live as
    /// long as the isolate, zeroed when it is spawned (and so at every restart), 16-byte
    /// aligned. Empty if the type has none.
    pub(crate) fn working_memory(&mut self, me: Handle) -> &mut [u8] {
        let Some((ty, slot)) = self.locate(me) else {
            return &mut [];
        };
        let t = &mut self.types[usize::from(ty)];
        let size = self.spec.types[usize::from(ty)].working_memory_size as usize;
        let per = t.working_chunks;
        let chunks = &mut t.working[slot as usize * per..(slot as usize + 1) * per];
        &mut bytemuck::cast_slice_mut::<WorkChunk, u8>(chunks)[..size]
    }

    /// `len` bytes of the shard's scratch area, zeroed at the first use in each handler call
    /// (nothing survives from another call, of this isolate or any other). At most the type's
    /// `scratch_size`; more is an error, not a panic.
    pub(crate) fn scratch(&mut self, me: Handle, len: usize) -> Result<&mut [u8], ScratchTooSmall> {
        let limit = self.locate(me).map_or(0, |(ty, _)| {
            self.spec.types[usize::from(ty)].scratch_size as usize
        });
        if len > limit {
            return Err(ScratchTooSmall { len, limit });
        }
        let bytes = bytemuck::cast_slice_mut::<WorkChunk, u8>(self.scratch);
        if self.scratch_dirty {
            bytes[..limit].fill(0);
            self.scratch_dirty = false;
        }
        Ok(&mut bytes[..len])
    }

    /// Takes a transfer buffer for a payload of `len` bytes (> 96, shard-local). It is this
    /// handler call's until sent with [`crate::Ctx::send_transfer`]; otherwise freed after the call.
    pub(crate) fn transfer_alloc(
        &mut self,
        me: Handle,
        len: usize,
    ) -> Result<TransferBuf, TransferError> {
        if self.bulk.is_some() {
            return self.bulk_alloc(len);
        }
        if len > self.transfers.buffer_size() {
            return Err(TransferError::TooLarge);
        }
        let Some(buf) = self.transfers.alloc(me, BufState::Held) else {
            self.counters.transfer_exhausted += 1;
            return Err(TransferError::Exhausted);
        };
        if !self.transfers.hold(buf) {
            self.transfers.free(buf);
            self.counters.transfer_exhausted += 1;
            return Err(TransferError::Exhausted);
        }
        self.transfers.set_len(buf, len as u32);
        Ok(TransferBuf(buf, false))
    }

    fn held_transfer(&self, me: Handle, t: TransferBuf) -> Result<(), TransferError> {
        if self.transfers.holds(t.0) && self.transfers.is(t.0, me, BufState::Held) {
            Ok(())
        } else {
            Err(TransferError::Stale)
        }
    }

    /// The writable bytes of a transfer buffer this call holds (its full recorded length).
    pub(crate) fn transfer_mut(
        &mut self,
        me: Handle,
        t: TransferBuf,
    ) -> Result<&mut [u8], TransferError> {
        if let Some(r) = t.bulk() {
            return self.bulk_draft_mut(r);
        }
        self.held_transfer(me, t)?;
        let len = self.transfers.len_of(t.0);
        Ok(&mut self.transfers.bytes_mut(t.0)[..len])
    }

    /// The bytes of a transfer buffer this call holds (e.g. the one attached to the message
    /// being handled).
    pub(crate) fn transfer_data(&self, me: Handle, t: TransferBuf) -> Result<&[u8], TransferError> {
        if let Some(r) = t.bulk() {
            return self.bulk_bytes(r);
        }
        self.held_transfer(me, t)?;
        let len = self.transfers.len_of(t.0);
        Ok(&self.transfers.bytes(t.0)[..len])
    }

    /// Sends a message with tag `tag` and the transfer buffer attached: a bulk slot to any
    /// isolate, a shard-local buffer to a local one. On success the buffer belongs to the
    /// message; on failure it stays this call's.
    pub(crate) fn send_transfer(
        &mut self,
        transport: &mut dyn crate::platform::Transport,
        me: Handle,
        to: Handle,
        tag: UserTag,
        t: TransferBuf,
    ) -> Result<(), SendError> {
        if let Some(r) = t.bulk() {
            return self.bulk_send(transport, me, to, tag, r);
        }
        if self.held_transfer(me, t).is_err() {
            return Err(SendError::StaleHandle);
        }
        if to.shard() != self.shard {
            return Err(SendError::NotLocal);
        }
        let msg = Message::build(me, to, &Outgoing::signal(tag)).with_transfer(t);
        self.deliver_local(&msg, Class::User)?;
        self.counters.sends_local += 1;
        self.transfers.transfer(t.0, to, BufState::InFlight);
        Ok(())
    }

    /// Writes a log record (formatted now into the shard's bounded log ring, flushed to the
    /// platform after dispatch). Returns false, and counts a drop, when the ring is full.
    /// Not rate-limited: the [`log!`](crate::log!) macro, which names its call site, is.
    pub(crate) fn log(
        &mut self,
        me: Handle,
        level: crate::memory::log::Level,
        args: core::fmt::Arguments<'_>,
    ) -> bool {
        let ok = self.log.push(level, me, self.now, args);
        if !ok {
            self.counters.log_drops += 1;
        }
        ok
    }

    /// Writes a log record from call site `site`, subject to the site's rate limit (see
    /// [`mod@crate::log`]). Returns false when the record was suppressed (counted, reported
    /// later) or dropped because the ring is full (counted as a drop). What the
    /// [`log!`](crate::log!) macro calls.
    pub(crate) fn log_at(
        &mut self,
        me: Handle,
        site: &'static crate::memory::log::LogSite,
        level: crate::memory::log::Level,
        args: core::fmt::Arguments<'_>,
    ) -> bool {
        use crate::memory::log::Logged;
        match self.log.push_at(site, level, me, self.now, args) {
            Logged::Written => true,
            Logged::Suppressed => false,
            Logged::RingFull => {
                self.counters.log_drops += 1;
                false
            }
        }
    }

    /// Makes this isolate the owner of a descriptor (or of none): if the isolate is torn down
    /// while owning it — a crash, a panic, a group restart — the shard closes it, so a crashed
    /// connection never leaks its socket. Returning `Io(Close)` on it ends the ownership.
    ///
    /// A descriptor delivered by an `Accept` or `Open` completion belongs to the handler call
    /// that receives it until some isolate owns it this way (e.g. the connection isolate the
    /// handler spawns, from its `init`); if the receiver exits without that happening, the
    /// shard closes the descriptor.
    pub(crate) fn own_fd(&mut self, me: Handle, fd: Option<Fd>) {
        if let Some((ty, slot)) = self.locate(me) {
            self.meta(ty, slot).owned_fd = fd.map_or(-1, |f| f.0);
        }
        if let (Some(fd), Some((pending, claimed))) = (fd, self.pending_fd.as_mut())
            && *pending == fd
        {
            *claimed = true;
        }
    }

    /// Subscribes (or not) this isolate to peer shard status notices: `SHARD_RESTARTED` and
    /// `SHARD_QUARANTINED` system messages whose payload's first byte is the shard id.
    pub(crate) fn watch_shards(&mut self, me: Handle, on: bool) {
        if let Some((ty, slot)) = self.locate(me) {
            self.meta(ty, slot).watches_shards = on;
        }
    }
}
