//! One shard thread: pin, alternate signal stack, map and pre-fault the region, pre-fault and
//! carve its inbound rings (the core's ring wiring), wait at the [`BootGate`] until every shard
//! has its memory, build the platform (a `tina_core::platform::Bundle` of transport, reactor,
//! trap and log), boot the shard, then loop:
//!
//! ```text
//!   loop {
//!       take_requests   force stop, graceful shutdown, its deadline
//!       tick            one step at the current time (a requested revive right after it),
//!                       the shard's state published when it changed
//!       stopped?        leave the loop (Stopped), or abort the process (quarantine policy)
//!       stats           every STATS_PERIOD_NS while busy
//!       work left?      hand the I/O batch to the kernel and go round again
//!       sleep           the core's sleep guard: announce, re-check rings, requests and I/O,
//!                       block in the reactor until I/O, a deadline or a peer's eventfd
//!   }
//! ```

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, OnceLock};

use tina_core::platform::Bundle;
use tina_core::ring::{Consumer, Producer};
use tina_core::sleep::sleep_unless;
use tina_core::transport::ShardLink;
use tina_core::{
    Clock, Instant, Message, Shard, ShardId, ShardStatus, StepReport, SystemSpec, WallTime,
};

use crate::config::Config;
use crate::control::Inner;
use crate::error::BootFailure;
use crate::log::{StderrLog, say};
use crate::reactor::{ActiveBackend, Reactor};
use crate::shared::{Published, ShardShared, ShardState};
use crate::sys;
use crate::transport::{Exchange, LinuxTransport, wire_inbound_rings};
use crate::trap::CatchPanic;

/// The Linux platform of one shard: the core's four-part bundle.
pub(crate) type LinuxPlatform<'r> = Bundle<LinuxTransport<'r>, Reactor, CatchPanic<'r>, StderrLog>;

/// How often a busy shard publishes its stats (an idle one publishes before it sleeps).
const STATS_PERIOD_NS: u64 = 10_000_000;

/// The shard loop's own state.
struct Serving {
    /// When a graceful shutdown turns into a forced stop.
    shutdown_deadline: Option<u64>,
    /// Whether the shard has stopped only gracefully so far.
    clean: bool,
    ticks: u64,
    sleeps: u64,
    /// When the stats were last published.
    last_publish: u64,
    /// The state last published.
    state: ShardState,
}

/// Operations one shard can have in flight at once: one per isolate, plus reclaim work.
pub(crate) fn in_flight_max(spec: &SystemSpec<'_>) -> usize {
    let isolates: usize = spec.types.iter().map(|t| t.capacity as usize).sum();
    isolates + 2 * spec.shard.io_submissions_per_tick_max as usize + 64
}

/// A shard's consumer halves, by producer shard.
type Inbound<'r> = Vec<Option<Consumer<'r, Message>>>;

/// Everything one shard thread needs.
pub(crate) struct ShardThread<'s, 'x> {
    pub(crate) index: usize,
    pub(crate) spec: &'x SystemSpec<'s>,
    pub(crate) peers: &'x [ShardShared],
    /// Every shard's sleep flag and status (the core's ring protocol).
    pub(crate) links: &'x [ShardLink],
    pub(crate) backend: ActiveBackend,
    pub(crate) cpu: usize,
    pub(crate) config: &'x Config,
    pub(crate) epoch_ns: u64,
    pub(crate) timeout_ns: u64,
    pub(crate) inner: &'x Inner,
    /// Where every shard waits until all have their memory (no isolate runs before).
    pub(crate) gate: &'x BootGate,
    /// Why this shard failed to boot, if it did (read by `run` once every shard started).
    pub(crate) failure: &'x OnceLock<BootFailure>,
}

impl<'x> ShardThread<'_, 'x> {
    fn mark_started(&self, state: ShardState) {
        self.peers[self.index].set_state(state);
        *self.inner.started.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.inner.changed.notify_all();
    }

    /// Records why this shard did not boot and marks it failed.
    fn fail(&self, failure: BootFailure) {
        let _ = self.failure.set(failure);
        self.mark_started(ShardState::Failed);
    }

    /// Boots the shard on this thread and runs its loop. Returns whether it ended cleanly.
    ///
    /// Boot has two phases. First the memory: this shard's region is mapped and pre-faulted,
    /// then its inbound rings (`rings`, mapped by `run`) are pre-faulted here, on the pinned
    /// thread that drains them, and carved; their producer halves go to the exchange. Every
    /// shard then waits at the gate: if any failed, none boots and no isolate runs. Then the
    /// shard takes its producer halves, builds its platform and starts its tree.
    pub(crate) fn run<'r>(
        &self,
        rings: Option<&'r mut sys::Mapping>,
        exchange: &'r Exchange<'r>,
    ) -> bool
    where
        'x: 'r,
    {
        let i = self.index;
        let n = self.spec.shards.len();
        let _alt = self.settle();
        let (mut mapping, mut inbound) = match self.prepare_memory(rings, exchange) {
            Ok((mapping, inbound)) => (Some(mapping), inbound),
            Err(failure) => {
                let _ = self.failure.set(failure);
                (None, Vec::new())
            }
        };
        if !self.gate.arrive(mapping.is_some()) {
            // This shard's failure is recorded above, or another shard's memory failed.
            self.mark_started(ShardState::Failed);
            drop(mapping);
            sys::clear_fault_shard();
            return false;
        }
        let mut outbound: Vec<_> = exchange[i * n..(i + 1) * n]
            .iter()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()).take())
            .collect();
        let mut seen = vec![0u32; n];
        let clean = match mapping.as_mut() {
            Some(region) => self.boot(region, &mut outbound, &mut inbound, &mut seen),
            None => false,
        };
        drop(mapping);
        sys::clear_fault_shard();
        clean
    }

    /// Prepares the thread: the fault reporter learns its shard, it is pinned (a failure is
    /// reported and the shard runs unpinned), and it gets an alternate signal stack (kept as
    /// long as the returned value lives).
    fn settle(&self) -> Option<sys::AltStack> {
        let i = self.index;
        sys::set_fault_shard(i as i32, &self.peers[i]);
        if self.config.pin
            && let Err(e) = sys::pin_current_thread(self.cpu)
        {
            say!(
                "shard {i}: cannot pin to CPU {}: {} (running unpinned)",
                self.cpu,
                sys::errno_name(e)
            );
        }
        if self.config.fault_handlers {
            sys::AltStack::install().ok()
        } else {
            None
        }
    }

    /// Maps and pre-faults this shard's region, pre-faults and carves its inbound rings.
    fn prepare_memory<'r>(
        &self,
        rings: Option<&'r mut sys::Mapping>,
        exchange: &Exchange<'r>,
    ) -> Result<(sys::Mapping, Inbound<'r>), BootFailure> {
        let i = self.index;
        let spec = self.spec;
        let needed = Shard::<LinuxPlatform<'_>>::memory_required(spec, ShardId(i as u8))
            .map_err(BootFailure::Core)?;
        let mapping =
            sys::Mapping::new_prefaulted(needed, self.config.huge_pages).map_err(|errno| {
                BootFailure::Map {
                    what: "shard region",
                    bytes: needed,
                    errno,
                }
            })?;
        let mut inbound: Vec<_> = (0..spec.shards.len()).map(|_| None).collect();
        if let Some(rings) = rings {
            rings.prefault();
            wire_inbound_rings(spec, i, rings.region(), exchange, &mut inbound)
                .map_err(|e| BootFailure::Rings(e.to_string()))?;
        }
        Ok((mapping, inbound))
    }

    /// Builds the platform, starts the shard's tree and serves.
    fn boot<'r>(
        &self,
        mapping: &'r mut sys::Mapping,
        outbound: &'r mut [Option<Producer<'r, Message>>],
        inbound: &'r mut [Option<Consumer<'r, Message>>],
        seen: &'r mut [u32],
    ) -> bool
    where
        'x: 'r,
    {
        let i = self.index;
        let me = &self.peers[i];
        let spec = self.spec;
        let reactor = match Reactor::new(self.backend, in_flight_max(spec), me.wake_fd) {
            Ok(r) => r,
            Err(e) => {
                self.fail(BootFailure::Reactor(e.to_string()));
                return false;
            }
        };
        let platform = Bundle {
            transport: LinuxTransport::new(
                ShardId(i as u8),
                outbound,
                inbound,
                self.links,
                seen,
                self.peers,
            ),
            io: reactor,
            trap: CatchPanic::new(me),
            log: StderrLog {
                level_max: self.config.log_level,
            },
        };
        match Shard::new(spec, ShardId(i as u8), mapping.region(), platform) {
            Ok(mut shard) => {
                self.mark_started(ShardState::Running);
                self.serve(&mut shard)
            }
            Err(e) => {
                self.fail(BootFailure::Core(e));
                false
            }
        }
    }

    /// The shard loop: requests, one step, then sleep if idle.
    fn serve(&self, shard: &mut Shard<'_, LinuxPlatform<'_>>) -> bool {
        let mut run = Serving {
            shutdown_deadline: None,
            clean: true,
            ticks: 0,
            sleeps: 0,
            last_publish: 0,
            state: ShardState::Running,
        };
        loop {
            let now_ns = sys::monotonic_ns();
            self.take_requests(shard, &mut run, now_ns);
            let report = self.tick(shard, &mut run, now_ns);
            if self.stopped(shard, report.status) {
                break;
            }
            if now_ns.wrapping_sub(run.last_publish) >= STATS_PERIOD_NS {
                run.last_publish = now_ns;
                self.publish(shard, run.ticks, run.sleeps);
            }
            if report.work_remaining {
                shard.platform().io.flush();
                continue;
            }
            self.sleep(shard, &mut run, &report, now_ns);
        }
        self.publish(shard, run.ticks, run.sleeps);
        self.peers[self.index].set_state(ShardState::Stopped);
        run.clean
    }

    /// The control loop's requests (force, graceful shutdown) and the shutdown deadline.
    fn take_requests(
        &self,
        shard: &mut Shard<'_, LinuxPlatform<'_>>,
        run: &mut Serving,
        now_ns: u64,
    ) {
        let me = &self.peers[self.index];
        if me.has_request() {
            if me.force_requested.swap(false, Ordering::Relaxed) {
                shard.force_stop();
                run.clean = false;
            }
            if me.shutdown_requested.swap(false, Ordering::Relaxed)
                && run.shutdown_deadline.is_none()
            {
                if shard.status() == ShardStatus::Quarantined {
                    // Nothing runs on a quarantined shard: there is nothing to drain.
                    shard.force_stop();
                } else {
                    shard.shutdown();
                }
                run.shutdown_deadline = Some(now_ns.saturating_add(self.timeout_ns));
            }
        }
        if let Some(d) = run.shutdown_deadline
            && now_ns >= d
            && shard.status() != ShardStatus::Stopped
        {
            say!(
                "shard {}: graceful shutdown timed out with {} isolate(s) left; forcing",
                self.index,
                shard.live_isolates()
            );
            shard.force_stop();
            run.clean = false;
        }
    }

    /// One step at `now_ns` (and a requested revive right after it), publishing the shard's
    /// state when it changed.
    fn tick(
        &self,
        shard: &mut Shard<'_, LinuxPlatform<'_>>,
        run: &mut Serving,
        now_ns: u64,
    ) -> StepReport {
        let me = &self.peers[self.index];
        me.step_started_ns.store(now_ns, Ordering::Relaxed);
        let tick_ns = self.spec.tick_ns.max(1);
        let now = Instant::from_ticks(now_ns.saturating_sub(self.epoch_ns) / tick_ns);
        // The calendar clock, read once per step next to the monotonic one.
        let wall = sys::realtime_ns().map(WallTime::from_unix_nanos);
        let mut report = shard.step(Clock::new(now, wall));
        // Revive between steps, at this step's time: the new tree's `init`s see the
        // current time, not the time a quarantined, sleeping shard last stepped at.
        if me.revive_requested.load(Ordering::Relaxed)
            && me.revive_requested.swap(false, Ordering::Relaxed)
            && shard.status() == ShardStatus::Quarantined
        {
            match shard.revive(now) {
                Ok(()) => say!("shard {}: revived", self.index),
                Err(e) => say!("shard {}: revive failed: {e}", self.index),
            }
            report.status = shard.status();
            report.work_remaining = true;
        }
        me.step_started_ns.store(0, Ordering::Relaxed);
        run.ticks += 1;
        let new_state = ShardState::of(report.status);
        if new_state != run.state {
            // Publish the state before saying so: whoever reacts to the line (an
            // operator's SIGUSR2) must find the shard quarantined.
            run.state = new_state;
            me.set_state(new_state);
            if new_state == ShardState::Quarantined {
                say!(
                    "shard {}: quarantined after too many recoveries (peers' sends to it \
                     now fail; revive with SIGUSR2)",
                    self.index
                );
            }
        }
        report
    }

    /// Whether the loop ends: the shard stopped (its last reclaim work handed to the kernel).
    /// A shard whose quarantine policy is `Abort` aborts the process here.
    fn stopped(&self, shard: &mut Shard<'_, LinuxPlatform<'_>>, status: ShardStatus) -> bool {
        match status {
            ShardStatus::Stopped => {
                // The last tick may have queued reclaim work (closing descriptors of
                // isolates torn down): hand it to the kernel before leaving.
                shard.platform().io.flush();
                true
            }
            ShardStatus::AbortRequested => {
                crate::log::last_line(format_args!(
                    "shard {}: recovered too often and the quarantine policy is Abort: \
                     aborting the process",
                    self.index
                ));
                std::process::abort();
            }
            ShardStatus::Running | ShardStatus::ShuttingDown | ShardStatus::Quarantined => false,
        }
    }

    /// Sleeps in the kernel until I/O, the next timer or shutdown deadline, a peer's eventfd
    /// or a request — unless one is pending already (the core's sleep guard runs the wake
    /// protocol: announce, re-check, block, awake).
    fn sleep(
        &self,
        shard: &mut Shard<'_, LinuxPlatform<'_>>,
        run: &mut Serving,
        report: &StepReport,
        now_ns: u64,
    ) {
        let me = &self.peers[self.index];
        let timeout_ns = self.sleep_timeout(report, run.shutdown_deadline, now_ns);
        let slept = sleep_unless(
            shard,
            |shard| me.has_request() || shard.platform().io.has_ready(),
            |shard| {
                if timeout_ns == Some(0) {
                    return false;
                }
                self.publish(shard, run.ticks, run.sleeps);
                run.last_publish = now_ns;
                shard.platform().io.wait(timeout_ns);
                true
            },
        );
        if slept == Some(true) {
            self.inner.wake_watchdog();
            run.sleeps += 1;
        } else {
            shard.platform().io.flush();
        }
    }

    /// How long an idle shard may sleep: until its next timer deadline or its shutdown
    /// deadline, whichever comes first (`None`: no deadline).
    fn sleep_timeout(
        &self,
        report: &StepReport,
        shutdown_deadline: Option<u64>,
        now_ns: u64,
    ) -> Option<u64> {
        let tick_ns = self.spec.tick_ns.max(1);
        let mut timeout_ns = report.next_deadline.map(|d| {
            let at = self
                .epoch_ns
                .saturating_add(d.ticks().saturating_mul(tick_ns));
            at.saturating_sub(now_ns)
        });
        if let Some(d) = shutdown_deadline {
            let left = d.saturating_sub(now_ns);
            timeout_ns = Some(timeout_ns.map_or(left, |t| t.min(left)));
        }
        timeout_ns
    }

    fn publish(&self, shard: &mut Shard<'_, LinuxPlatform<'_>>, ticks: u64, sleeps: u64) {
        let resources = shard.resources_in_use();
        let in_flight = shard.platform().io.in_flight() as u32;
        let submit_failures = shard.platform().io.submit_failures();
        self.peers[self.index].publish(&Published {
            counters: shard.counters(),
            live: shard.live_isolates(),
            resources,
            in_flight,
            submit_failures,
            ticks,
            sleeps,
        });
    }
}

/// Where every shard thread waits, after mapping its memory, until all have (or one failed):
/// no isolate runs unless every shard has its memory.
pub(crate) struct BootGate {
    n: usize,
    /// (shards arrived, whether any failed)
    state: Mutex<(usize, bool)>,
    opened: Condvar,
}

impl BootGate {
    pub(crate) fn new(n: usize) -> BootGate {
        BootGate {
            n,
            state: Mutex::new((0, false)),
            opened: Condvar::new(),
        }
    }

    /// Arrives (`ready`: this shard has its memory) and waits for the others. Returns whether
    /// every shard is ready; `false` as soon as one is not.
    pub(crate) fn arrive(&self, ready: bool) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        s.1 |= !ready;
        self.opened.notify_all();
        while s.0 < self.n && !s.1 {
            s = self.opened.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        !s.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_when_all_arrive_and_fails_when_one_is_not_ready() {
        let gate = BootGate::new(2);
        std::thread::scope(|s| {
            let other = s.spawn(|| gate.arrive(true));
            assert!(gate.arrive(true));
            assert!(other.join().unwrap());
        });
        let gate = BootGate::new(3);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| gate.arrive(true));
            assert!(!gate.arrive(false), "a failed shard closes the gate");
            assert!(!waiting.join().unwrap(), "a waiting shard learns of it");
        });
    }
}
