//! Taking the next thing to dispatch: the mailbox head on the fast path, otherwise notices,
//! replies, completions and resumptions by the isolate's state.

use super::{Kernel, Meta, NOTICE_IO, NOTICE_SHUTDOWN, State};
use crate::memory::iobuf::BufState;
use crate::memory::pool::{NIL, Pool};
use crate::model::io::IoCompletion;
use crate::model::message::{Message, system_tag};

impl<'a> Kernel<'a> {
    /// Takes the next thing to dispatch to an isolate into `out` when it is anything but a
    /// plain mailbox message (notices, replies, completions; see [`Kernel::next_message`]), and
    /// returns the isolate's generation and group.
    #[cold]
    #[inline(never)]
    fn next_message_slow(&mut self, ty: u8, slot: u32, out: &mut Message) -> Option<(u32, u16)> {
        *out = self.next_message(ty, slot)?;
        let m = self.meta(ty, slot);
        Some((m.generation, m.group))
    }

    /// Pops the next ready isolate of type `ty` and takes its first message into `out`: the
    /// head of its mailbox when it simply waits for messages ([`take_mailbox_head`]), else
    /// through [`Kernel::next_message_slow`], with the lookup that popped it. Returns the
    /// slot and, if a message was taken, the isolate's generation and group; if none was, the
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
            // Waiting, no notice: the mailbox head, or no work (nothing to queue).
            let found = take_mailbox_head(&mut self.pool, m, out);
            return Some((slot, self.hold_taken(ty, slot, found, out)));
        }
        Some((slot, self.next_or_queue(ty, slot, out)))
    }

    /// After a handler call of the isolate in `slot` that did not end it: parks it as
    /// `Receiving` if it returned `Receive`, then — if it may run again (`more`), is still
    /// the same incarnation and waits for messages — takes its next message into `out` as
    /// [`Kernel::next_ready`] does, with the same metadata lookup. When it returns
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
                // Waiting, no notice: the mailbox head, or no work (nothing to queue).
                let found = take_mailbox_head(&mut self.pool, m, out);
                return self.hold_taken(ty, slot, found, out);
            }
            return self.next_or_queue(ty, slot, out);
        }
        self.types[usize::from(ty)].make_ready(slot);
        None
    }

    /// Finishes the mailbox-head fast path ([`take_mailbox_head`]): a taken message gets its
    /// transfer buffer held.
    #[inline(always)]
    fn hold_taken(
        &mut self,
        ty: u8,
        slot: u32,
        found: Option<(u32, u16)>,
        out: &Message,
    ) -> Option<(u32, u16)> {
        if found.is_some() && out.transfer().is_some() {
            self.hold_transfer(ty, slot, out);
        }
        found
    }

    /// The slow path for an isolate not simply waiting for messages (a notice, a reply, a
    /// completion, a resumption): [`Kernel::next_message_slow`]; the slot is queued again if
    /// that found nothing but it has work.
    #[inline(always)]
    fn next_or_queue(&mut self, ty: u8, slot: u32, out: &mut Message) -> Option<(u32, u16)> {
        let found = self.next_message_slow(ty, slot, out);
        if found.is_none() {
            self.types[usize::from(ty)].make_ready(slot);
        }
        found
    }

    /// The next thing to dispatch to an isolate, by its state: notices, replies,
    /// completions, resumption, or the head of its mailbox.
    #[cold]
    pub(super) fn next_message(&mut self, ty: u8, slot: u32) -> Option<Message> {
        let me = self.handle(ty, slot);
        let m = self.meta(ty, slot);
        match m.state {
            State::Receiving => {
                if m.notices & NOTICE_SHUTDOWN != 0 {
                    m.notices &= !NOTICE_SHUTDOWN;
                    return Some(Message::system(me, system_tag::SHUTDOWN, &[]));
                }
                if m.notices & NOTICE_IO != 0
                    && let Some(c) = self.take_ticket_completion(ty, slot)
                {
                    return Some(self.deliver_completion(me, c));
                }
                let mut mailbox = self.meta(ty, slot).mailbox;
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
                Some(self.deliver_completion(me, c))
            }
            State::Free | State::Initializing => None,
        }
    }

    /// The `IO_COMPLETED` message of `c` for `me`: its buffer and a descriptor it yields
    /// belong to this one handler call.
    fn deliver_completion(&mut self, me: crate::model::handle::Handle, c: IoCompletion) -> Message {
        if let Some(fd) = c.fd() {
            // The new descriptor belongs to this handler call until someone owns it.
            self.pending_fd = Some((fd, false));
        }
        if let Some(buf) = c.buf {
            // The delivered buffer belongs to this one handler call.
            self.io.bufs.set_state(buf, BufState::Held);
            let _ = self.io.bufs.hold(buf);
        }
        Message::system(me, system_tag::IO_COMPLETED, &c.encode())
    }

    /// Makes the transfer buffer attached to a dequeued message readable during this one
    /// handler call (only if it really is in flight to this isolate).
    fn hold_transfer(&mut self, ty: u8, slot: u32, msg: &Message) {
        let me = self.handle(ty, slot);
        if let Some(t) = msg.transfer()
            && t.is_bulk()
        {
            self.bulk_hold(t);
        } else if let Some(t) = msg.transfer()
            && self.transfers.is(t.0, me, BufState::InFlight)
        {
            self.transfers.set_state(t.0, BufState::Held);
            if !self.transfers.hold(t.0) {
                self.transfers.free(t.0);
            }
        }
    }
}

/// The mailbox-head fast path, shared by the first message of a run and every following one,
/// for an isolate the caller found waiting for messages with no notice: takes the head of its
/// mailbox into `out` through the metadata lookup the caller already made, and returns the
/// isolate's generation and group, or `None` if the mailbox is empty (no work, nothing to
/// queue).
#[inline(always)]
fn take_mailbox_head(pool: &mut Pool<'_>, m: &mut Meta, out: &mut Message) -> Option<(u32, u16)> {
    if pool.take_from(&mut m.mailbox, out) {
        Some((m.generation, m.group))
    } else {
        None
    }
}
