//! What one shard shares with its peers, the control loop and the watchdog: the wake
//! doorbell, its status, operator requests, its heartbeat and a stats snapshot.
//!
//! Everything is an atomic written by one side; nothing here is on the busy path except the
//! shard's own `step_started_ns` (two relaxed stores per tick).
//!
//! # The wake protocol (no lost wake-up, no syscall on the busy path)
//!
//! The protocol is tina-core's ([`tina_core::transport`]): the shard announces sleep on its
//! [`ShardLink`] (flag, then `SeqCst` fence) and re-checks its rings, requests and
//! completions before blocking; a producer publishes, fences, and wakes the shard only if it
//! sees the flag. Linux adds the doorbell: an eventfd the shard's `io_uring_enter` or
//! `epoll_wait` also waits on, and a `rung` flag so that one waker per sleep pays the
//! `write(2)`:
//!
//! ```text
//!   shard (going idle)                          waker (producer or control loop)
//!   1. rung.store(false)                        a. publish / set request flag
//!   2. link.sleeping = true; fence(SeqCst)      b. fence(SeqCst)
//!   3. rings? requests? completions?            c. link asleep?  → rung.swap(true) was false?
//!      yes → link.woke(), run                                     → eventfd write
//!      no  → block on io_uring/epoll + eventfd
//!   4. link.woke() after waking
//! ```
//!
//! Steps 1–4 run through tina-core's sleep guard ([`tina_core::sleep::sleep_unless`]):
//! `LinuxTransport`'s `SleepLink::prepare_sleep` does 1 and 2, the guard re-checks the rings
//! and asks the shard loop for requests and completions (3), and marks the shard awake (4).
//!
//! The eventfd is level-triggered, so a ring that lands before the block makes the block
//! return at once. `rung` is cleared in 1, before the fence in 2, so a waker that sees the
//! flag of this sleep also sees `rung` cleared and rings.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

use tina_core::platform::HandleBits;
use tina_core::transport::ShardLink;
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
    /// Pushes the reactor gave up on because the kernel would not take its submission queue
    /// (each failed an operation, or skipped a cancel, with a counted error).
    pub io_submit_failures: u64,
    /// Ticks run.
    pub ticks: u64,
    /// Times the shard went to sleep.
    pub sleeps: u64,
    /// CPU time the shard thread used, in nanoseconds.
    pub cpu_ns: u64,
}

/// The stats a shard publishes (each field written by the shard thread alone).
pub(crate) struct StatsCell {
    counters: [AtomicU64; COUNTER_FIELDS],
    live: AtomicU32,
    queued: AtomicU32,
    timers: AtomicU32,
    buffers: AtomicU32,
    in_flight: AtomicU32,
    submit_failures: AtomicU64,
    ticks: AtomicU64,
    sleeps: AtomicU64,
    cpu_ns: AtomicU64,
}

impl Default for StatsCell {
    fn default() -> Self {
        StatsCell {
            counters: core::array::from_fn(|_| AtomicU64::new(0)),
            live: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            timers: AtomicU32::new(0),
            buffers: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            submit_failures: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
        }
    }
}

/// The values a shard publishes, gathered on its thread.
pub(crate) struct Published {
    pub(crate) counters: Counters,
    pub(crate) live: u32,
    pub(crate) resources: (u32, u32, u32),
    pub(crate) in_flight: u32,
    pub(crate) submit_failures: u64,
    pub(crate) ticks: u64,
    pub(crate) sleeps: u64,
}

/// State of one shard shared across threads.
#[repr(align(128))]
pub(crate) struct ShardShared {
    /// The shard's doorbell (an eventfd), valid for the runtime's life.
    pub(crate) wake_fd: i32,
    /// Whether someone rang the doorbell during the current sleep: cleared by the shard
    /// before it announces sleep, set by the first waker (who alone writes the eventfd).
    rung: AtomicBool,
    state: AtomicU8,
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
            wake_fd,
            rung: AtomicBool::new(false),
            state: AtomicU8::new(ShardState::Booting.to_u8()),
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
    pub(crate) fn running_call(&self) -> Option<(HandleBits, &'static str, &'static str)> {
        let bits = self.running.load(Ordering::Relaxed);
        if bits == 0 {
            return None;
        }
        let h = HandleBits::from_bits(bits);
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

    /// The shard's half of going to sleep: re-arm the doorbell, then announce sleep on its
    /// link (which fences). Afterwards re-check everything that can wake it.
    pub(crate) fn prepare_sleep(&self, link: &ShardLink) {
        self.rung.store(false, Ordering::Relaxed);
        link.prepare_sleep();
    }

    /// Rings the doorbell: the first call per sleep writes the eventfd, later ones return.
    /// Called by a waker that saw the shard's link asleep after its `SeqCst` fence.
    pub(crate) fn ring_doorbell(&self) {
        if !self.rung.swap(true, Ordering::Relaxed) {
            sys::eventfd_signal(self.wake_fd);
        }
    }

    /// Sets a request flag and wakes the shard if it sleeps (for the control loop; not on a
    /// hot path). `link` is this shard's link.
    pub(crate) fn request(&self, link: &ShardLink, flag: &AtomicBool) {
        flag.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if link.is_sleeping() {
            self.ring_doorbell();
        }
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
        self.stats.submit_failures.store(p.submit_failures, r);
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
            io_submit_failures: self.stats.submit_failures.load(r),
            ticks: self.stats.ticks.load(r),
            sleeps: self.stats.sleeps.load(r),
            cpu_ns: self.stats.cpu_ns.load(r),
        }
    }
}

/// The fault reporter and the panic hook name the running call through this.
impl sys::RunningCall for ShardShared {
    fn running_call(&self) -> Option<(HandleBits, &'static str, &'static str)> {
        ShardShared::running_call(self)
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
    fn doorbell_rings_only_for_a_sleeping_shard_and_only_once_per_sleep() {
        let fd = sys::eventfd().unwrap();
        let s = ShardShared::new(fd.0, vec!["t"]);
        let link = ShardLink::new();
        let flag = AtomicBool::new(false);
        s.request(&link, &flag);
        assert_eq!(
            sys::eventfd_drain(fd.0),
            0,
            "a busy shard is never signalled"
        );
        s.prepare_sleep(&link);
        s.request(&link, &flag);
        s.request(&link, &flag);
        s.ring_doorbell();
        assert_eq!(sys::eventfd_drain(fd.0), 1, "one waker pays the syscall");
        link.woke();
        s.prepare_sleep(&link);
        s.ring_doorbell();
        assert_eq!(sys::eventfd_drain(fd.0), 1, "the next sleep is rung again");
    }

    #[test]
    fn running_call_names_the_isolate_and_type() {
        let s = ShardShared::new(-1, vec!["listener", "connection"]);
        assert_eq!(s.running_call(), None);
        let h = tina_core::Handle::new(tina_core::ShardId(0), tina_core::TypeId(1), 5, 2).unwrap();
        s.running.store(h.to_bits(), Ordering::Relaxed);
        s.running_kind.store(2, Ordering::Relaxed);
        assert_eq!(
            s.running_call(),
            Some((HandleBits::of(h), "connection", "handle"))
        );
    }
}
