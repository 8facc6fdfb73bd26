//! Calls and effects: starting a call (correlation, timeout timer) and applying the effect a
//! handler or `init` returned.

use super::{CallFailure, Env, Exit, Kernel, State};
use crate::memory::pool::{Class, NIL};
use crate::memory::timer::TimerKind;
use crate::model::effect::{CrashReason, Effect};
use crate::model::handle::Handle;
use crate::model::io::IoOp;
use crate::model::message::{Message, Outgoing};
use crate::model::time::Duration;
use crate::platform::Transport;

impl<'a> Kernel<'a> {
    /// After a handler call that returned `effect` (a panic arrives as a crash): counts the
    /// dispatch, applies the effect (the common `Receive` is left to
    /// [`Kernel::after_dispatch`]), releases what the call held, and closes a descriptor the
    /// call was given but nobody took when the isolate exits. Returns the exit, if any.
    /// `call` is the call being handled (read only when the effect is not `Receive`).
    #[inline]
    pub(crate) fn finish_call(
        &mut self,
        env: &mut Env<'_>,
        ty: u8,
        slot: u32,
        effect: &Effect,
        call: &Option<(Handle, u64)>,
    ) -> Option<Exit> {
        self.counters.dispatches += 1;
        let exit = if matches!(effect, Effect::Receive) {
            None
        } else {
            self.apply_effect(env.transport, ty, slot, effect, *call)
        };
        self.io.bufs.release_held_from(0);
        self.transfers.release_held_from(0);
        self.bulk_release_held_from(0);
        self.scratch_dirty = true;
        if let Some((fd, claimed)) = self.pending_fd.take()
            && !claimed
            && exit.is_some()
        {
            self.queue_reclaim(IoOp::Close { fd });
            if !self.orphans.is_empty() {
                self.reclaim_orphans(env.control);
            }
        }
        exit
    }

    /// Starts a call from `me`. The caller is parked whatever happens: a failed send or a
    /// missing timer arrives as an immediate `CALL_TIMEOUT`.
    pub(super) fn start_call(
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
            self.deadline_after(timeout),
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
    pub(super) fn apply_effect(
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
}
