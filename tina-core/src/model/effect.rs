//! Effects: the state transition a handler returns.
//!
//! ```text
//!                 ┌───────────── message / notice ─────────────┐
//!                 v                                            │
//!   init ──> [handler runs] ──Receive──> (parked: mailbox) ────┘
//!                 │  │  │ ──Yield────> (runnable next tick) ─> RESUMED notice
//!                 │  │  └──Call─────> (parked: reply | timeout) ─> reply / CALL_TIMEOUT
//!                 │  └─────Io───────> (parked: completion) ─────> IO_COMPLETED
//!                 │  Reply(m): answer the call being handled, then park as Receive
//!                 └──Done / Crash──> torn down; its supervisor decides
//! ```
//!
//! Everything that is not a transition (send, spawn, timers, logging, I/O buffers, I/O
//! submitted without parking with `Ctx::submit`) is a call on the context during the
//! handler. A submitted op's completion arrives later as an `IO_COMPLETED` message naming
//! its ticket, while the isolate waits for mail (see [`crate::io`]).

use crate::model::address::Recipient;
use crate::model::handle::Handle;
use crate::model::io::IoOp;
use crate::model::message::{Outgoing, Payload};
use crate::model::time::Duration;
use core::fmt;

/// Why an isolate crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CrashReason(pub &'static str);

impl fmt::Display for CrashReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl CrashReason {
    /// The handler panicked (the platform trapped it).
    pub const PANIC: CrashReason = CrashReason("handler panicked");
    /// The handler returned `Reply` while not handling a call.
    pub const REPLY_WITHOUT_CALL: CrashReason = CrashReason("Reply returned outside a call");
    /// The handler returned an I/O operation that names a buffer it does not own.
    pub const BAD_IO_BUFFER: CrashReason =
        CrashReason("Io effect names a buffer this isolate does not own");
}

/// What happens to the isolate after its handler returns.
#[derive(Clone, Copy, Debug)]
#[must_use = "an Effect does nothing unless returned to the scheduler"]
pub enum Effect {
    /// Clean exit: tear me down; supervision decides about a restart.
    Done,
    /// Voluntary failure: tear me down as crashed.
    Crash(CrashReason),
    /// Run me again next tick (I get a `RESUMED` notice then; if a graceful shutdown started
    /// meanwhile, the `SHUTDOWN` notice comes in its place, once).
    Yield,
    /// Park me until my mailbox (or a system notice) has something for me.
    Receive,
    /// Send `message` to `to` as a request and park until its reply or `timeout`.
    Call {
        /// The callee.
        to: Handle,
        /// The request.
        message: Outgoing,
        /// How long to wait before a `CALL_TIMEOUT` notice arrives instead (converted to
        /// ticks with the shard's tick length, rounding up, like a timer).
        timeout: Duration,
    },
    /// Answer the call being handled, then park as `Receive`.
    Reply(Outgoing),
    /// Submit one I/O operation and park until its completion arrives (its ticket is
    /// [`IoTicket::PARKED`](crate::io::IoTicket::PARKED)). Ops submitted earlier with
    /// `Ctx::submit` stay in flight; their completions wait until the isolate takes mail
    /// again.
    Io(IoOp),
}

impl Effect {
    /// A call of `to` with a typed request (checked at compile time against what `to`'s
    /// type accepts): park until its reply, a refusal, or `timeout`. Whatever ends it
    /// without a reply arrives as a `CALL_TIMEOUT` notice
    /// ([`Message::call_failed_to_send`](crate::Message::call_failed_to_send) tells a
    /// refusal — `StaleHandle`, `NotRunning`, `MailboxFull`, … — from a timeout).
    pub fn call<M: Payload>(to: impl Recipient<M>, request: &M, timeout: Duration) -> Effect {
        Effect::Call {
            to: to.to_handle(),
            message: Outgoing::new(request),
            timeout,
        }
    }

    /// Answers the call being handled with a typed reply, then parks as `Receive`.
    pub fn reply<M: Payload>(reply: &M) -> Effect {
        Effect::Reply(Outgoing::new(reply))
    }

    /// A short name for traces and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Done => "Done",
            Effect::Crash(_) => "Crash",
            Effect::Yield => "Yield",
            Effect::Receive => "Receive",
            Effect::Call { .. } => "Call",
            Effect::Reply(_) => "Reply",
            Effect::Io(_) => "Io",
        }
    }

    /// A small stable code for trace hashing.
    pub fn code(&self) -> u8 {
        match self {
            Effect::Done => 0,
            Effect::Crash(_) => 1,
            Effect::Yield => 2,
            Effect::Receive => 3,
            Effect::Call { .. } => 4,
            Effect::Reply(_) => 5,
            Effect::Io(_) => 6,
        }
    }
}
