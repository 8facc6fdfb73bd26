//! Transfers through the bulk pools ([`crate::bulk`]), when the platform attached them: the
//! same `Ctx` calls as shard-local transfer buffers, to an isolate of any shard.
//!
//! A slot is the handler call's from `transfer_alloc` until sent (or cancelled when the call
//! ends); a sent one is the receiving shard's from the moment its envelope enters that shard
//! (accepted out of the ring, or at once for a local send) until the receiving call ends, or
//! until the message is dropped or its receiver torn down: every path gives it back.

use super::Kernel;
use crate::bulk::{BulkError, BulkRef};
use crate::error::SendError;
use crate::memory::pool::Class;
use crate::model::handle::Handle;
use crate::model::io::IoBuf;
use crate::model::message::{Message, Outgoing, UserTag};
use crate::model::transfer::{TransferBuf, TransferError};
use crate::platform::Transport;

impl<'a> Kernel<'a> {
    /// Gives this shard its view of every bulk pool (before the first handler call uses a
    /// transfer). `Err` gives the ports back if they are another shard's or some are attached.
    pub(crate) fn attach_bulk(
        &mut self,
        ports: crate::bulk::BulkPorts<'a>,
    ) -> Result<(), crate::bulk::BulkPorts<'a>> {
        if ports.shard() != self.shard || self.bulk.is_some() {
            return Err(ports);
        }
        self.bulk = Some(ports);
        Ok(())
    }

    /// Slots of this shard's own pool not free.
    pub(crate) fn bulk_in_use(&self) -> usize {
        self.bulk.as_ref().map_or(0, |b| b.own_in_use())
    }

    pub(super) fn bulk_alloc(&mut self, len: usize) -> Result<TransferBuf, TransferError> {
        let Some(ports) = self.bulk.as_mut() else {
            return Err(TransferError::Exhausted);
        };
        match ports.call_alloc(len) {
            Ok(r) => Ok(TransferBuf(IoBuf::from_bits(r.to_bits()), true)),
            Err(BulkError::TooLarge { .. }) => Err(TransferError::TooLarge),
            Err(BulkError::Exhausted) => {
                self.counters.transfer_exhausted += 1;
                Err(TransferError::Exhausted)
            }
        }
    }

    pub(super) fn bulk_draft_mut(&mut self, r: BulkRef) -> Result<&mut [u8], TransferError> {
        self.bulk
            .as_mut()
            .and_then(|p| p.call_draft_mut(r))
            .ok_or(TransferError::Stale)
    }

    pub(super) fn bulk_bytes(&self, r: BulkRef) -> Result<&[u8], TransferError> {
        self.bulk
            .as_ref()
            .and_then(|p| p.call_bytes(r))
            .ok_or(TransferError::Stale)
    }

    /// Sends draft `r` to `to` (any shard) as the payload of a message tagged `tag`: the
    /// envelope is queued or staged first, then the slot lent; on failure the draft stays the
    /// call's.
    pub(super) fn bulk_send(
        &mut self,
        transport: &mut dyn Transport,
        me: Handle,
        to: Handle,
        tag: UserTag,
        r: BulkRef,
    ) -> Result<(), SendError> {
        let held = self
            .bulk
            .as_mut()
            .is_some_and(|p| p.call_draft_mut(r).is_some());
        if !held {
            return Err(SendError::StaleHandle);
        }
        let t = TransferBuf(IoBuf::from_bits(r.to_bits()), true);
        let msg = Message::build(me, to, &Outgoing::signal(tag)).with_transfer(t);
        self.send(transport, &msg)?;
        if let Some(p) = self.bulk.as_mut() {
            let lent = p.call_lend(r, to.shard());
            debug_assert!(lent, "a held draft is lent");
        }
        Ok(())
    }

    /// A dequeued message's slot is the handler call's (given back when it ends).
    pub(super) fn bulk_hold(&mut self, t: TransferBuf) {
        if let (Some(r), Some(p)) = (t.bulk(), self.bulk.as_mut())
            && !p.call_hold(r)
        {
            self.counters.stale_deliveries += 1;
        }
    }

    pub(super) fn bulk_held_mark(&self) -> usize {
        self.bulk.as_ref().map_or(0, |p| p.held_mark())
    }

    pub(super) fn bulk_release_held_from(&mut self, mark: usize) {
        if let Some(p) = self.bulk.as_mut() {
            p.release_held_from(mark);
        }
    }

    /// Frees the payload of a queued message that will never be handled.
    pub(super) fn free_transfer(&mut self, t: TransferBuf) {
        match (t.bulk(), self.bulk.as_mut()) {
            (Some(r), Some(p)) => {
                p.give_back(r);
            }
            (Some(_), None) => {}
            (None, _) => self.transfers.free(t.0),
        }
    }

    /// A message from another shard with a payload attached: its slot is accepted (this shard
    /// holds it from now on) and the message delivered, or the slot given back at once.
    /// Shard-local transfer buffers never leave their shard: such a message is malformed.
    pub(super) fn deliver_inbound_transfer(&mut self, msg: &Message) {
        let accepted = match (
            msg.transfer().and_then(TransferBuf::bulk),
            self.bulk.as_mut(),
        ) {
            (Some(r), Some(p)) => p.accept(r).then_some(r),
            _ => None,
        };
        let Some(r) = accepted else {
            self.counters.stale_deliveries += 1;
            return;
        };
        if !msg.is_reply() && self.deliver_local(msg, Class::User).is_ok() {
            self.counters.inbound_delivered += 1;
            return;
        }
        if msg.is_reply() {
            self.counters.stale_deliveries += 1;
        }
        if let Some(p) = self.bulk.as_mut() {
            p.give_back(r);
        }
    }

    /// A message from another shard that will not be delivered (this shard is quarantined):
    /// its slot, if any, goes back to its owner.
    pub(super) fn refuse_inbound_transfer(&mut self, msg: &Message) {
        if let (Some(r), Some(p)) = (
            msg.transfer().and_then(TransferBuf::bulk),
            self.bulk.as_mut(),
        ) {
            p.refuse(r);
        }
    }
}
