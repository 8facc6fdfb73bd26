//! Timers: firing due entries (user timers and call timeouts), bounded per tick.

use super::{CallFailure, Kernel, State};
use crate::memory::pool::{Class, NIL};
use crate::memory::timer::TimerKind;
use crate::model::message::Message;
use crate::model::time::Instant;

impl<'a> Kernel<'a> {
    /// Fires due timers (bounded per tick).
    pub(crate) fn advance_timers(&mut self, now: Instant) -> u32 {
        let n = self.timers.collect_due(now, self.due);
        for k in 0..n {
            let i = self.due[k];
            let fired = self.timers.fired(i);
            let Some((ty, slot)) = self.locate(fired.owner) else {
                // Teardown cancels all of an isolate's timers; in release builds the entry is
                // freed anyway to keep the pool conserved.
                debug_assert!(
                    false,
                    "a due timer's owner is live (teardown cancels timers)"
                );
                let mut scratch = i;
                self.timers.fire(i, &mut scratch);
                continue;
            };
            let mut head = self.meta(ty, slot).timers;
            self.timers.fire(i, &mut head);
            self.meta(ty, slot).timers = head;
            self.counters.timers_fired += 1;
            match fired.kind {
                TimerKind::User(tag) => {
                    let msg = Message::timer(fired.owner, crate::model::message::Tag(tag));
                    if self.deliver_local(&msg, Class::System).is_err() {
                        self.counters.timer_drops += 1;
                    }
                }
                TimerKind::CallTimeout(correlation) => {
                    let m = self.meta(ty, slot);
                    if m.state == State::AwaitingReply
                        && m.call_correlation == correlation
                        && m.reply == NIL
                    {
                        m.call_timer = None;
                        m.call_failure = Some((CallFailure::TimedOut, 0));
                        self.counters.call_timeouts += 1;
                        self.wake(ty, slot);
                    }
                }
            }
        }
        n as u32
    }
}
