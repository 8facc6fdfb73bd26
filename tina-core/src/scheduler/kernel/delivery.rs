//! Delivery: putting a message into a local mailbox (or handing it to the transport), and
//! accepting replies and inbound envelopes from other shards.

use super::{CallFailure, Kernel, State, TypeState};
use crate::error::SendError;
use crate::memory::counters::Counters;
use crate::memory::pool::{Class, NIL, Pool};
use crate::model::handle::Handle;
use crate::model::message::{Message, Payload};
use crate::platform::Transport;
use crate::scheduler::supervision::Member;

impl<'a> Kernel<'a> {
    /// Queues a message in a local mailbox (a named address is resolved first).
    #[inline]
    pub(crate) fn deliver_local(&mut self, msg: &Message, class: Class) -> Result<(), SendError> {
        match self.deliver_local_with(msg.dst(), class, |slot| *slot = *msg) {
            Err(SendError::UnknownName) => self.deliver_local_named(msg, class),
            r => r,
        }
    }

    /// [`Kernel::deliver_local`] of a message to a named address: to its running incarnation.
    #[cold]
    #[inline(never)]
    fn deliver_local_named(&mut self, msg: &Message, class: Class) -> Result<(), SendError> {
        let h = self.resolve_name(msg.dst())?;
        self.deliver_local_with(h, class, |slot| {
            *slot = *msg;
            slot.set_dst(h);
        })
    }

    /// Queues a message for `dst` in a local mailbox, written by `write` straight into its
    /// pool envelope (which must end up addressed to `dst`). Nothing is written when the
    /// delivery is refused. A named address never locates (its slot value is reserved): it
    /// is refused with `UnknownName`, uncounted, for the caller to resolve (see
    /// [`Kernel::not_located`]).
    #[inline]
    pub(super) fn deliver_local_with(
        &mut self,
        dst: Handle,
        class: Class,
        write: impl FnOnce(&mut Message),
    ) -> Result<(), SendError> {
        let Some((t, slot)) = Self::locate_mut(self.types, self.shard, dst) else {
            return Err(self.not_located(dst));
        };
        Self::enqueue(t, slot, &mut self.pool, &mut self.counters, class, write)
    }

    /// Why `dst` did not locate: a plain handle is stale (counted); a named address answers
    /// `UnknownName` uncounted, which [`Kernel::deliver_local_with`]'s callers take as "resolve
    /// the name and deliver again" (they are the only ones who see it: resolution itself
    /// happens outside, in [`Kernel::resolve_name`]). Out of line, so the fast path stays as
    /// small as it was before names existed.
    #[cold]
    #[inline(never)]
    fn not_located(&mut self, dst: Handle) -> SendError {
        if dst.is_named() {
            return SendError::UnknownName;
        }
        self.counters.stale_deliveries += 1;
        SendError::StaleHandle
    }

    /// The running incarnation a named address on this shard stands for; a plain handle
    /// that did not locate is stale. Every refusal is counted.
    pub(crate) fn resolve_name(&mut self, dst: Handle) -> Result<Handle, SendError> {
        let Some(key) = dst.name_key().filter(|_| dst.shard() == self.shard) else {
            self.counters.stale_deliveries += 1;
            return Err(SendError::StaleHandle);
        };
        match self.groups.named(key) {
            Some(Member::Isolate(h)) => Ok(h),
            Some(Member::Stopped | Member::Empty) => {
                self.counters.named_not_running += 1;
                Err(SendError::NotRunning)
            }
            _ => {
                self.counters.stale_deliveries += 1;
                Err(SendError::UnknownName)
            }
        }
    }

    /// Puts a message, written by `write` into a pool envelope of `class`, into the mailbox
    /// of the isolate in `slot` of `t`, and makes it ready.
    #[inline]
    fn enqueue(
        t: &mut TypeState<'a>,
        slot: usize,
        pool: &mut Pool<'a>,
        counters: &mut Counters,
        class: Class,
        write: impl FnOnce(&mut Message),
    ) -> Result<(), SendError> {
        let m = &mut t.metas[slot];
        if m.mailbox.len >= t.mailbox_capacity {
            counters.mailbox_full += 1;
            return Err(SendError::MailboxFull);
        }
        let Some(i) = pool.alloc_with(class, write) else {
            counters.pool_exhausted += 1;
            return Err(SendError::PoolExhausted);
        };
        debug_assert_eq!(pool.get(i).dst().slot() as usize, slot);
        pool.push(&mut m.mailbox, i);
        if m.state == State::Receiving && !m.queued {
            // What `make_ready` decides for a waiting isolate that now has mail.
            m.queued = true;
            TypeState::push(t.metas, &mut t.ready, slot as u32);
        } else {
            t.make_ready(slot as u32);
        }
        Ok(())
    }

    /// Accepts a reply only if the caller is waiting for exactly this correlation. A
    /// refusal (the callee's shard could not deliver the call) ends the call at once with
    /// the reason, as a failed send would have.
    pub(super) fn deliver_reply(&mut self, msg: &Message) {
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
        if let Some(why) = msg.refused() {
            self.counters.call_refusals_received += 1;
            self.meta(ty, slot).call_failure = Some((CallFailure::SendFailed, why as u8));
        } else {
            let Some(i) = self.pool.alloc(Class::System, msg) else {
                self.counters.pool_exhausted += 1;
                return;
            };
            self.meta(ty, slot).reply = i;
        }
        let timer = self.meta(ty, slot).call_timer.take();
        let owner = self.handle(ty, slot);
        if let Some(id) = timer {
            let mut head = self.meta(ty, slot).timers;
            self.timers.cancel(id, owner, &mut head);
            self.meta(ty, slot).timers = head;
        }
        self.wake(ty, slot);
    }

    /// Delivers a message from another shard.
    pub(super) fn deliver_inbound(&mut self, msg: &Message) {
        if msg.transfer().is_some() {
            self.deliver_inbound_transfer(msg);
            return;
        }
        if msg.is_reply() {
            self.deliver_reply(msg);
            return;
        }
        match self.deliver_local(msg, Class::User) {
            Ok(()) => self.counters.inbound_delivered += 1,
            Err(why) if msg.is_call() => self.refuse_call(msg, why),
            Err(_) => {}
        }
    }

    /// Refuses a call that cannot be delivered (or never will be handled): a local caller's
    /// call ends at once; a remote caller's refusal is kept (in a system envelope) until
    /// [`Kernel::send_refusals`] sends it back — without an envelope it is dropped and
    /// counted, and the caller waits out its timeout.
    pub(super) fn refuse_call(&mut self, call: &Message, why: SendError) {
        let refusal = Message::refusal(call, why);
        if refusal.dst().shard() == self.shard {
            self.deliver_reply(&refusal);
            return;
        }
        match self.pool.alloc(Class::System, &refusal) {
            Some(i) => self.pool.push(&mut self.refusals, i),
            None => self.counters.call_refusals_dropped += 1,
        }
    }

    /// Whether refusals wait to be sent.
    pub(crate) fn has_refusals(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// Sends the queued refusals back to their callers' shards (a full ring drops one,
    /// counted). Called after the inbound rings drain and after every transition that may
    /// tear isolates down.
    pub(crate) fn send_refusals<T: Transport + ?Sized>(&mut self, transport: &mut T) {
        let mut refusal = Message::EMPTY;
        while self.pool.take_from(&mut self.refusals, &mut refusal) {
            match transport.send(refusal.dst().shard(), &refusal) {
                Ok(()) => self.counters.call_refusals_sent += 1,
                Err(_) => self.counters.call_refusals_dropped += 1,
            }
        }
    }

    /// Sends a typed user message from `src`: a local one is written straight into its pool
    /// envelope, a remote one goes through [`Kernel::send`].
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
        match r {
            Ok(()) => self.counters.sends_local += 1,
            Err(SendError::UnknownName) => return self.send_named_typed(src, to, value),
            Err(_) => {}
        }
        r
    }

    /// [`Kernel::send_typed`] to a local named address: to its running incarnation.
    #[cold]
    #[inline(never)]
    fn send_named_typed<T: Payload>(
        &mut self,
        src: Handle,
        to: Handle,
        value: &T,
    ) -> Result<(), SendError> {
        let h = self.resolve_name(to)?;
        let r = self.deliver_local_with(h, Class::User, |slot| slot.write_typed(src, h, value));
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
}
