//! [`Control`]: a handle on a running system, and the control loop that turns signals into
//! requests (SIGINT/SIGTERM → graceful shutdown, again → forced; SIGUSR1 → stats; SIGUSR2 →
//! revive).
//!
//! The control loop prints through its own log queue ([`crate::log`]): with stderr stalled,
//! its lines are dropped, never waited for, so signals are always handled.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use crate::log::say;
use crate::reactor::ActiveBackend;
use crate::shared::{ShardShared, ShardState, ShardStats};
use crate::sys::{self, OwnedFd};
use tina_core::transport::ShardLink;

pub(crate) struct Inner {
    pub(crate) shards: Vec<ShardShared>,
    /// The control signals, when the runtime handles them (`Config::signals`).
    pub(crate) signal_fd: Option<OwnedFd>,
    /// Rung by each shard thread as it finishes (wakes the control loop).
    pub(crate) done_fd: OwnedFd,
    /// The watchdog thread, once started, and whether it is parked until a shard wakes.
    pub(crate) watchdog: OnceLock<std::thread::Thread>,
    pub(crate) watchdog_parked: AtomicBool,
    /// Every shard's link (sleep flag, status announcements), by shard index.
    pub(crate) links: Vec<ShardLink>,
    pub(crate) _wake_fds: Vec<OwnedFd>,
    pub(crate) backend: ActiveBackend,
    pub(crate) fallback_reason: Option<String>,
    pub(crate) started: Mutex<usize>,
    pub(crate) finished: Mutex<usize>,
    pub(crate) changed: Condvar,
    pub(crate) forced: AtomicBool,
}

impl Inner {
    /// Called by a shard that has just woken from sleep: if the watchdog parked itself
    /// because every shard slept, wake it (see [`crate::watchdog`] for the protocol).
    pub(crate) fn wake_watchdog(&self) {
        fence(Ordering::SeqCst);
        if self.watchdog_parked.load(Ordering::Relaxed)
            && self.watchdog_parked.swap(false, Ordering::Relaxed)
            && let Some(t) = self.watchdog.get()
        {
            t.unpark();
        }
    }
}

/// A handle on a running system, usable from any thread: request shutdown, revive
/// quarantined shards, read stats. Create it, pass it to [`run`](crate::run), use it
/// elsewhere.
#[derive(Default)]
pub struct Control {
    pub(crate) inner: OnceLock<Inner>,
    /// Set when [`run`](crate::run) returns (or fails before booting).
    pub(crate) ended: AtomicBool,
}

impl Control {
    /// A control for one run.
    pub fn new() -> Control {
        Control::default()
    }

    fn shards(&self) -> &[ShardShared] {
        self.inner.get().map_or(&[], |i| &i.shards)
    }

    /// Sets one request flag on every shard (those `wanted`) and wakes the sleeping ones.
    fn request_each(
        &self,
        wanted: impl Fn(&ShardShared) -> bool,
        flag: fn(&ShardShared) -> &AtomicBool,
    ) {
        let Some(inner) = self.inner.get() else {
            return;
        };
        for (s, link) in inner.shards.iter().zip(&inner.links) {
            if wanted(s) {
                s.request(link, flag(s));
            }
        }
    }

    /// Starts a graceful shutdown of every shard.
    pub fn shutdown(&self) {
        self.request_each(|_| true, |s| &s.shutdown_requested);
    }

    /// Stops every shard at once (isolates are torn down without a shutdown message).
    pub fn force_stop(&self) {
        if let Some(i) = self.inner.get() {
            i.forced.store(true, Ordering::Relaxed);
        }
        self.request_each(|_| true, |s| &s.force_requested);
    }

    /// Revives every quarantined shard (what SIGUSR2 does).
    pub fn revive(&self) {
        self.request_each(
            |s| s.state() == ShardState::Quarantined,
            |s| &s.revive_requested,
        );
    }

    /// The backend in use, once booted.
    pub fn backend(&self) -> Option<ActiveBackend> {
        self.inner.get().map(|i| i.backend)
    }

    /// Why io_uring was not used, if the runtime fell back to epoll.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.inner.get().and_then(|i| i.fallback_reason.as_deref())
    }

    /// Number of shards (0 before boot).
    pub fn shard_count(&self) -> usize {
        self.shards().len()
    }

    /// Fills `out` with a snapshot of each shard (no allocation); returns how many.
    pub fn stats_into(&self, out: &mut [ShardStats]) -> usize {
        let shards = self.shards();
        let n = shards.len().min(out.len());
        for (i, (o, s)) in out.iter_mut().zip(shards).enumerate().take(n) {
            *o = s.snapshot(i as u8);
        }
        n
    }

    /// A snapshot of every shard.
    pub fn stats(&self) -> Vec<ShardStats> {
        self.shards()
            .iter()
            .enumerate()
            .map(|(i, s)| s.snapshot(i as u8))
            .collect()
    }

    /// Blocks until every shard has booted (or failed to), at most `timeout`. Returns whether
    /// all are running.
    pub fn wait_running(&self, timeout: StdDuration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(inner) = self.inner.get() {
                let mut started = inner.started.lock().unwrap_or_else(|e| e.into_inner());
                while *started < inner.shards.len() {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    started = inner
                        .changed
                        .wait_timeout(started, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                return inner
                    .shards
                    .iter()
                    .all(|s| s.state() == ShardState::Running);
            }
            if std::time::Instant::now() >= deadline || self.ended.load(Ordering::Acquire) {
                return false;
            }
            // `run` has not published its state yet (it validates the spec and probes
            // io_uring first): a short bounded wait at boot only.
            std::thread::sleep(StdDuration::from_millis(1));
        }
    }

    /// Prints every shard's stats on stderr (what SIGUSR1 does). Allocation-free.
    pub fn print_stats(&self) {
        for (i, s) in self.shards().iter().enumerate() {
            let st = s.snapshot(i as u8);
            let c = &st.counters;
            say!(
                "stats shard {} {:?}: live={} queued={} timers={} io_bufs={} io_in_flight={} \
                 ticks={} sleeps={} cpu={}ms dispatches={} sends(local/remote)={}/{} \
                 io(submitted/completed/stale)={}/{}/{} crashes={} panics={} restarts={} \
                 recoveries={} drops(mailbox/pool/ring/stale/quarantine)={}/{}/{}/{}/{} \
                 spawn_failures={}",
                i,
                st.state,
                st.live_isolates,
                st.messages_queued,
                st.timers_pending,
                st.io_buffers_in_use,
                st.io_in_flight,
                st.ticks,
                st.sleeps,
                st.cpu_ns / 1_000_000,
                c.dispatches,
                c.sends_local,
                c.sends_remote,
                c.io_submitted,
                c.io_completed,
                c.io_stale_completions,
                c.crashes,
                c.panics,
                c.restarts,
                c.shard_recoveries,
                c.mailbox_full,
                c.pool_exhausted,
                c.ring_full,
                c.stale_deliveries,
                c.quarantine_drops,
                c.spawn_failures,
            );
        }
    }
}

/// Waits for the shards to finish, handling signals if configured. Blocks without a timeout
/// (an idle process stays idle) until a signal arrives or a shard thread finishes.
pub(crate) fn control_loop(control: &Control, n: usize, timeout_ns: u64) {
    let Some(inner) = control.inner.get() else {
        return;
    };
    let mut terms = 0u32;
    let mut hard_deadline: Option<std::time::Instant> = None;
    loop {
        if *inner.finished.lock().unwrap_or_else(|e| e.into_inner()) >= n {
            return;
        }
        if let Some(d) = hard_deadline
            && std::time::Instant::now() >= d
        {
            crate::log::last_line(format_args!(
                "shards did not stop after a forced stop; exiting now"
            ));
            std::process::exit(1);
        }
        let Some(signal_fd) = &inner.signal_fd else {
            // No signals to handle: sleep until a shard thread finishes.
            let f = inner.finished.lock().unwrap_or_else(|e| e.into_inner());
            if *f < n {
                drop(inner.changed.wait(f).unwrap_or_else(|e| e.into_inner()));
            }
            continue;
        };
        // Only a forced stop sets a deadline.
        let timeout_ms = hard_deadline.map(|d| {
            d.saturating_duration_since(std::time::Instant::now())
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32
        });
        sys::poll_readable(&[signal_fd.0, inner.done_fd.0], timeout_ms);
        sys::eventfd_drain(inner.done_fd.0);
        while let Some(signal) = sys::read_signal(signal_fd.0) {
            on_signal(control, signal, &mut terms, &mut hard_deadline, timeout_ns);
        }
    }
}

/// What the control loop does with one signal.
fn on_signal(
    control: &Control,
    signal: i32,
    terms: &mut u32,
    hard_deadline: &mut Option<std::time::Instant>,
    timeout_ns: u64,
) {
    match signal {
        libc::SIGINT | libc::SIGTERM => {
            *terms += 1;
            if *terms == 1 {
                say!(
                    "{}: graceful shutdown (bounded by {} ms; send it again to force)",
                    sys::signal_name(signal),
                    timeout_ns / 1_000_000
                );
                control.shutdown();
            } else {
                say!(
                    "{} again: forcing the shards to stop",
                    sys::signal_name(signal)
                );
                control.force_stop();
                *hard_deadline = Some(std::time::Instant::now() + StdDuration::from_secs(1));
            }
        }
        libc::SIGUSR1 => control.print_stats(),
        libc::SIGUSR2 => {
            say!("SIGUSR2: reviving quarantined shards");
            control.revive();
        }
        other => debug_assert!(
            false,
            "signal {other} read from a signalfd that only watches the control signals"
        ),
    }
}
