//! What one shard shares with its peers, the control loop and the watchdog: the wake
//! doorbell, its status, operator requests, its heartbeat and a stats snapshot.
//!
//! Everything is an atomic written by one side; nothing here is on the busy path except the
//! peer's `sleeping` flag (read once per tick per peer published to) and the shard's own
//! `step_started_ns` (two relaxed stores per tick).
//!
//! # The wake protocol (no lost wake-up, no syscall on the busy path)
//!
//! ```text
//!   consumer (going idle)                      producer (end of its tick)
//!   1. sleeping.store(true)                    a. ring.publish()   (Release store of tail)
//!   2. fence(SeqCst)                           b. fence(SeqCst)
//!   3. rings empty? requests? completions?     c. sleeping.load() → true?
//!      yes → sleeping.store(false), run           then sleeping.swap(false) → true?
//!      no  → block on epoll/io_uring + eventfd       then eventfd write (one syscall)
//!   4. sleeping.store(false) after waking
//! ```
//!
//! The two SeqCst fences order 1 before 3 and a before c in a single total order, so either
//! the consumer sees the published tail in 3 (and does not sleep), or the producer sees
//! `sleeping` in c (and rings the eventfd, which is level-triggered: a ring before the block
//! makes the block return at once). The `swap` makes only one producer pay the syscall per
//! sleep. A busy consumer never sets `sleeping`, so busy producers never make a syscall.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

use tina_core::{Counters, ShardStatus};

use crate::sys;

/// One shard's status as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardState {
    /// Not started yet (or failed to boot).
    Booting,
    /// Serving.
    Running,
    /// Draining after a shutdown request.
    ShuttingDown,
    /// Finished.
    Stopped,
    /// Recovered too often; serves nothing until revived.
    Quarantined,
    /// The shard failed to boot.
    Failed,
}

impl ShardState {
    fn to_u8(self) -> u8 {
        self as u8
    }

    fn from_u8(v: u8) -> ShardState {
        match v {
            1 => ShardState::Running,
            2 => ShardState::ShuttingDown,
            3 => ShardState::Stopped,
            4 => ShardState::Quarantined,
            5 => ShardState::Failed,
            _ => ShardState::Booting,
        }
    }

    pub(crate) fn of(s: ShardStatus) -> ShardState {
        match s {
            ShardStatus::Running => ShardState::Running,
            ShardStatus::ShuttingDown => ShardState::ShuttingDown,
            ShardStatus::Stopped => ShardState::Stopped,
            ShardStatus::Quarantined | ShardStatus::AbortRequested => ShardState::Quarantined,
        }
    }
}

const COUNTER_FIELDS: usize = Counters::FIELD_COUNT;

/// A snapshot of one shard: counters, queue depths and life signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardStats {
    /// The shard.
    pub shard: u8,
    /// Its status.
    pub state: ShardState,
    /// Its counters (monotonic totals).
    pub counters: Counters,
    /// Live isolates.
    pub live_isolates: u32,
    /// Message envelopes queued in mailboxes (the shard's queue depth).
    pub messages_queued: u32,
    /// Timers pending.
    pub timers_pending: u32,
    /// I/O buffers in use.
    pub io_buffers_in_use: u32,
    /// I/O operations in flight in the reactor.
    pub io_in_flight: u32,
    /// Ticks run.
    pub ticks: u64,
    /// Times the shard went to sleep.
    pub sleeps: u64,
    /// CPU time the shard thread used, in nanoseconds.
    pub cpu_ns: u64,
}

/// The stats a shard publishes (each field written by the shard thread alone).
#[derive(Default)]
pub(crate) struct StatsCell {
    counters: [AtomicU64; COUNTER_FIELDS],
    live: AtomicU32,
    queued: AtomicU32,
    timers: AtomicU32,
    buffers: AtomicU32,
    in_flight: AtomicU32,
    ticks: AtomicU64,
    sleeps: AtomicU64,
    cpu_ns: AtomicU64,
}

/// The values a shard publishes, gathered on its thread.
pub(crate) struct Published {
    pub(crate) counters: Counters,
    pub(crate) live: u32,
    pub(crate) resources: (u32, u32, u32),
    pub(crate) in_flight: u32,
    pub(crate) ticks: u64,
    pub(crate) sleeps: u64,
}

/// State of one shard shared across threads.
#[repr(align(128))]
pub(crate) struct ShardShared {
    /// Set by the shard right before it blocks (see the module docs).
    pub(crate) sleeping: AtomicBool,
    /// The shard's doorbell (an eventfd), valid for the runtime's life.
    pub(crate) wake_fd: i32,
    state: AtomicU8,
    /// Bumped on every status announcement; `last_event` holds the latest.
    pub(crate) event_seq: AtomicU32,
    pub(crate) last_event: AtomicU8,
    /// Operator requests.
    pub(crate) shutdown_requested: AtomicBool,
    pub(crate) force_requested: AtomicBool,
    pub(crate) revive_requested: AtomicBool,
    /// Monotonic ns when the current tick started; 0 between ticks and while asleep.
    pub(crate) step_started_ns: AtomicU64,
    /// The isolate whose `init`/`handle` runs now (handle bits; 0: none), and which call
    /// (1: init, 2: handle). Written by the trap around every user call.
    pub(crate) running: AtomicU64,
    pub(crate) running_kind: AtomicU8,
    /// The spec's type names, by type id (for reports).
    pub(crate) type_names: Vec<&'static str>,
    pub(crate) stats: StatsCell,
}

impl ShardShared {
    pub(crate) fn new(wake_fd: i32, type_names: Vec<&'static str>) -> ShardShared {
        ShardShared {
            sleeping: AtomicBool::new(false),
            wake_fd,
            state: AtomicU8::new(ShardState::Booting.to_u8()),
            event_seq: AtomicU32::new(0),
            last_event: AtomicU8::new(0),
            shutdown_requested: AtomicBool::new(false),
            force_requested: AtomicBool::new(false),
            revive_requested: AtomicBool::new(false),
            step_started_ns: AtomicU64::new(0),
            running: AtomicU64::new(0),
            running_kind: AtomicU8::new(0),
            type_names,
            stats: StatsCell::default(),
        }
    }

    /// The user call running now: (isolate, type name, "init"/"handle"), if any.
    pub(crate) fn running_call(&self) -> Option<(tina_core::Handle, &'static str, &'static str)> {
        let bits = self.running.load(Ordering::Relaxed);
        if bits == 0 {
            return None;
        }
        let h = tina_core::Handle::from_bits(bits);
        let name = self
            .type_names
            .get(usize::from(h.type_id().0))
            .copied()
            .unwrap_or("?");
        let kind = match self.running_kind.load(Ordering::Relaxed) {
            1 => "init",
            _ => "handle",
        };
        Some((h, name, kind))
    }

    pub(crate) fn state(&self) -> ShardState {
        ShardState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, s: ShardState) {
        self.state.store(s.to_u8(), Ordering::Release);
    }

    /// Wakes the shard if it sleeps (producer side, step c of the protocol; the caller has
    /// issued the SeqCst fence after its stores).
    pub(crate) fn wake_if_sleeping(&self) {
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed) {
            sys::eventfd_signal(self.wake_fd);
        }
    }

    /// Sets a request flag and wakes the shard (for the control loop; not on a hot path).
    pub(crate) fn request(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.wake_if_sleeping();
    }

    /// Whether any operator request is pending.
    pub(crate) fn has_request(&self) -> bool {
        self.shutdown_requested.load(Ordering::Relaxed)
            || self.force_requested.load(Ordering::Relaxed)
            || self.revive_requested.load(Ordering::Relaxed)
    }

    pub(crate) fn publish(&self, p: &Published) {
        let r = Ordering::Relaxed;
        for (cell, v) in self
            .stats
            .counters
            .iter()
            .zip(Counters::to_array(&p.counters))
        {
            cell.store(v, r);
        }
        self.stats.live.store(p.live, r);
        self.stats.queued.store(p.resources.0, r);
        self.stats.timers.store(p.resources.1, r);
        self.stats.buffers.store(p.resources.2, r);
        self.stats.in_flight.store(p.in_flight, r);
        self.stats.ticks.store(p.ticks, r);
        self.stats.sleeps.store(p.sleeps, r);
        self.stats.cpu_ns.store(sys::thread_cpu_ns(), r);
    }

    pub(crate) fn snapshot(&self, shard: u8) -> ShardStats {
        let r = Ordering::Relaxed;
        let mut a = [0u64; COUNTER_FIELDS];
        for (v, cell) in a.iter_mut().zip(self.stats.counters.iter()) {
            *v = cell.load(r);
        }
        ShardStats {
            shard,
            state: self.state(),
            counters: Counters::from_array(&a),
            live_isolates: self.stats.live.load(r),
            messages_queued: self.stats.queued.load(r),
            timers_pending: self.stats.timers.load(r),
            io_buffers_in_use: self.stats.buffers.load(r),
            io_in_flight: self.stats.in_flight.load(r),
            ticks: self.stats.ticks.load(r),
            sleeps: self.stats.sleeps.load(r),
            cpu_ns: self.stats.cpu_ns.load(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_roundtrip_through_the_stats_cell() {
        let mut a = [0u64; COUNTER_FIELDS];
        for (i, v) in a.iter_mut().enumerate() {
            *v = i as u64 * 7 + 1;
        }
        let c = Counters::from_array(&a);
        assert_eq!(Counters::to_array(&c), a);
    }

    #[test]
    fn wake_rings_the_eventfd_only_for_a_sleeping_shard_and_only_once() {
        let fd = sys::eventfd().unwrap();
        let s = ShardShared::new(fd.0, vec!["t"]);
        s.wake_if_sleeping();
        assert_eq!(
            sys::eventfd_drain(fd.0),
            0,
            "a busy shard is never signalled"
        );
        s.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        s.wake_if_sleeping();
        s.wake_if_sleeping();
        assert_eq!(sys::eventfd_drain(fd.0), 1, "one producer pays the syscall");
        assert!(!s.sleeping.load(Ordering::Relaxed));
    }

    #[test]
    fn running_call_names_the_isolate_and_type() {
        let s = ShardShared::new(-1, vec!["listener", "connection"]);
        assert_eq!(s.running_call(), None);
        let h = tina_core::Handle::new(tina_core::ShardId(0), tina_core::TypeId(1), 5, 2).unwrap();
        s.running.store(h.to_bits(), Ordering::Relaxed);
        s.running_kind.store(2, Ordering::Relaxed);
        assert_eq!(s.running_call(), Some((h, "connection", "handle")));
    }
}
