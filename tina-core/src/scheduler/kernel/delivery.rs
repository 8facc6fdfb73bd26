//! Delivery: putting a message into a local mailbox (or handing it to the transport), and
//! accepting replies and inbound envelopes from other shards.

use super::{Kernel, State, TypeState};
use crate::error::SendError;
use crate::memory::pool::{Class, NIL};
use crate::model::handle::Handle;
use crate::model::message::{Message, Payload};
use crate::platform::Transport;

impl<'a> Kernel<'a> {
    /// Queues a message in a local mailbox.
    #[inline]
    pub(crate) fn deliver_local(&mut self, msg: &Message, class: Class) -> Result<(), SendError> {
        self.deliver_local_with(msg.dst(), class, |slot| *slot = *msg)
    }

    /// Queues a message for `dst` in a local mailbox, written by `write` straight into its
    /// pool envelope (which must end up addressed to `dst`). Nothing is written when the
    /// delivery is refused.
    #[inline]
    pub(super) fn deliver_local_with(
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
    pub(super) fn deliver_inbound(&mut self, msg: &Message) {
        if msg.transfer().is_some() {
            self.deliver_inbound_transfer(msg);
            return;
        }
        if msg.is_reply() {
            self.deliver_reply(msg);
        } else if self.deliver_local(msg, Class::User).is_ok() {
            self.counters.inbound_delivered += 1;
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
