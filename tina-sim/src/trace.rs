//! The trace: every event the simulator observes, folded into the 128-bit trace hash and,
//! when asked, written out as an event log.
//!
//! The core exposes no per-dispatch hook, so the trace records what the **platform** sees,
//! which is everything that crosses the seam, in the order it happens:
//!
//! | event | words hashed |
//! |---|---|
//! | `round` | round number, virtual time, phase |
//! | `step` | shard, dispatches, timers fired, work left, next deadline, live isolates, status, and a digest of the shard's counters (so every dispatch, crash, restart, drop is reflected) |
//! | `trap` | shard, call kind (handler/init), outcome (ran, crashed, panicked, injected) |
//! | `send` / `deliver` / `drop` | shards, source and destination handles, tag, flags, correlation, payload digest, result |
//! | `peer` | announcing shard, receiving shard, event |
//! | `io-submit` / `io-done` | shard, owner handle, op fields, digest of the bytes sent; result, digest of the bytes received |
//! | `control` | shard, owner, call, result |
//! | `log` | shard, isolate, level, digest of the text |
//! | `fault` | kind and its parameters (partition sides, shard, connection) |
//! | `client` | the scenario's client-side socket calls and their results, with byte digests |
//! | `check` | checker runs and their verdicts |
//!
//! Each event becomes an event code and a few 64-bit words; the event log line is only
//! formatted when recording is on, so hashing costs a few multiplications per event.

use crate::hash::{Hasher128, TraceHash};
use std::collections::VecDeque;

/// What kind of event a trace line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Ev {
    Round = 1,
    Step,
    Trap,
    Send,
    Deliver,
    NetDrop,
    Peer,
    IoSubmit,
    IoDone,
    Control,
    Log,
    Fault,
    Client,
    Check,
    Phase,
    Boot,
}

impl Ev {
    fn name(self) -> &'static str {
        match self {
            Ev::Round => "round",
            Ev::Step => "step",
            Ev::Trap => "trap",
            Ev::Send => "send",
            Ev::Deliver => "deliver",
            Ev::NetDrop => "drop",
            Ev::Peer => "peer",
            Ev::IoSubmit => "io-submit",
            Ev::IoDone => "io-done",
            Ev::Control => "control",
            Ev::Log => "log",
            Ev::Fault => "fault",
            Ev::Client => "client",
            Ev::Check => "check",
            Ev::Phase => "phase",
            Ev::Boot => "boot",
        }
    }
}

/// The running trace of one simulation: the hash of every event and, when recording, a ring
/// of the last `log_max` event-log lines (so memory stays bounded however long a run is).
pub(crate) struct Trace {
    hasher: Hasher128,
    events: u64,
    log: Option<VecDeque<String>>,
    log_max: usize,
    /// Lines dropped from the front of the log to keep it within `log_max`.
    dropped: u64,
}

impl Trace {
    pub(crate) fn new(record: bool, log_max: usize) -> Trace {
        Trace {
            hasher: Hasher128::new(),
            events: 0,
            log: record.then(VecDeque::new),
            log_max,
            dropped: 0,
        }
    }

    /// Records one event. `text` is only called when the event log is being kept.
    pub(crate) fn ev(&mut self, ev: Ev, words: &[u64], text: impl FnOnce() -> String) {
        self.events += 1;
        self.hasher.word(ev as u64);
        for &w in words {
            self.hasher.word(w);
        }
        if let Some(log) = &mut self.log {
            if self.log_max == 0 {
                self.dropped += 1;
            } else {
                if log.len() >= self.log_max {
                    log.pop_front();
                    self.dropped += 1;
                }
                log.push_back(format!("{} {}", ev.name(), text()));
            }
        }
    }

    pub(crate) fn hash(&self) -> TraceHash {
        self.hasher.finish()
    }

    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// The event log (its last lines) and how many lines before them were dropped.
    pub(crate) fn take_log(&mut self) -> (Option<Vec<String>>, u64) {
        (self.log.take().map(Vec::from), self.dropped)
    }
}

/// Where two event logs first differ: `(index, left line, right line)`; `None` if equal.
/// A missing line (one log is shorter) is reported as `"<end of log>"`.
pub fn first_difference(a: &[String], b: &[String]) -> Option<(usize, String, String)> {
    let end = || "<end of log>".to_string();
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                return Some((
                    i,
                    x.cloned().unwrap_or_else(end),
                    y.cloned().unwrap_or_else(end),
                ));
            }
        }
    }
    None
}
