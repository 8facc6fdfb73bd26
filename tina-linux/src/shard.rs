//! One shard thread: pin, alternate signal stack, map and pre-fault the region, build the
//! platform (transport, reactor, trap, log), boot the shard, then loop — requests, one step,
//! sleep when idle (the wake protocol of [`crate::shared`]).

use std::sync::atomic::Ordering;

use tina_core::platform::{Parts, Platform};
use tina_core::ring::{Consumer, Producer};
use tina_core::transport::ShardLink;
use tina_core::{Instant, Message, Shard, ShardId, ShardStatus, SystemSpec};

use crate::control::Inner;
use crate::log::{StderrLog, say};
use crate::reactor::{ActiveBackend, Reactor};
use crate::runtime::Config;
use crate::shared::{Published, ShardShared, ShardState};
use crate::sys;
use crate::transport::LinuxTransport;
use crate::trap::CatchPanic;

/// The Linux platform of one shard.
pub(crate) struct LinuxPlatform<'r> {
    transport: LinuxTransport<'r>,
    io: Reactor,
    trap: CatchPanic<'r>,
    log: StderrLog,
}

impl<'r> Platform for LinuxPlatform<'r> {
    type Transport = LinuxTransport<'r>;
    type Io = Reactor;
    type Trap = CatchPanic<'r>;
    type Log = StderrLog;

    fn parts(&mut self) -> Parts<'_, Self> {
        Parts {
            transport: &mut self.transport,
            io: &mut self.io,
            trap: &self.trap,
            log: &mut self.log,
        }
    }
}

/// Operations one shard can have in flight at once: one per isolate, plus reclaim work.
pub(crate) fn in_flight_max(spec: &SystemSpec<'_>) -> usize {
    let isolates: usize = spec.types.iter().map(|t| t.capacity as usize).sum();
    isolates + 2 * spec.shard.io_submissions_per_tick_max as usize + 64
}

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
}

impl<'x> ShardThread<'_, 'x> {
    fn mark_started(&self, state: ShardState) {
        self.peers[self.index].set_state(state);
        *self.inner.started.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.inner.changed.notify_all();
    }

    /// Boots the shard on this thread and runs its loop. Returns whether it ended cleanly.
    pub(crate) fn run<'r>(
        &self,
        outbound: &'r mut [Option<Producer<'r, Message>>],
        inbound: &'r mut [Option<Consumer<'r, Message>>],
        seen: &'r mut [u32],
    ) -> bool
    where
        'x: 'r,
    {
        let i = self.index;
        let me = &self.peers[i];
        sys::set_fault_shard(i as i32, me);
        if self.config.pin
            && let Err(e) = sys::pin_current_thread(self.cpu)
        {
            say!(
                "shard {i}: cannot pin to CPU {}: {} (running unpinned)",
                self.cpu,
                sys::errno_name(e)
            );
        }
        let _alt = if self.config.fault_handlers {
            sys::AltStack::install().ok()
        } else {
            None
        };
        let spec = self.spec;
        let needed = match Shard::<LinuxPlatform<'_>>::memory_required(spec, ShardId(i as u8)) {
            Ok(n) => n,
            Err(e) => {
                say!("shard {i}: {e}");
                self.mark_started(ShardState::Failed);
                return false;
            }
        };
        let mut mapping = match sys::Mapping::new_prefaulted(needed, self.config.huge_pages) {
            Ok(m) => m,
            Err(e) => {
                say!(
                    "shard {i}: cannot map {needed} bytes: {}",
                    sys::errno_name(e)
                );
                self.mark_started(ShardState::Failed);
                return false;
            }
        };
        let reactor = match Reactor::new(self.backend, in_flight_max(spec), me.wake_fd) {
            Ok(r) => r,
            Err(e) => {
                say!("shard {i}: {e}");
                self.mark_started(ShardState::Failed);
                return false;
            }
        };
        let platform = LinuxPlatform {
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
        let clean = match Shard::new(spec, ShardId(i as u8), mapping.region(), platform) {
            Ok(mut shard) => {
                self.mark_started(ShardState::Running);
                self.serve(&mut shard)
            }
            Err(e) => {
                say!("shard {i}: boot failed: {e}");
                self.mark_started(ShardState::Failed);
                false
            }
        };
        drop(mapping);
        sys::clear_fault_shard();
        clean
    }

    /// The shard loop: requests, one step, then sleep if idle.
    fn serve(&self, shard: &mut Shard<'_, LinuxPlatform<'_>>) -> bool {
        let me = &self.peers[self.index];
        let tick_ns = self.spec.tick_ns.max(1);
        let mut shutdown_deadline: Option<u64> = None;
        let mut clean = true;
        let mut ticks = 0u64;
        let mut sleeps = 0u64;
        let mut last_publish = 0u64;
        let mut state = ShardState::Running;
        loop {
            let now_ns = sys::monotonic_ns();
            if me.has_request() {
                if me.force_requested.swap(false, Ordering::Relaxed) {
                    shard.force_stop();
                    clean = false;
                }
                if me.shutdown_requested.swap(false, Ordering::Relaxed)
                    && shutdown_deadline.is_none()
                {
                    if shard.status() == ShardStatus::Quarantined {
                        // Nothing runs on a quarantined shard: there is nothing to drain.
                        shard.force_stop();
                    } else {
                        shard.shutdown();
                    }
                    shutdown_deadline = Some(now_ns.saturating_add(self.timeout_ns));
                }
            }
            if let Some(d) = shutdown_deadline
                && now_ns >= d
                && shard.status() != ShardStatus::Stopped
            {
                say!(
                    "shard {}: graceful shutdown timed out with {} isolate(s) left; forcing",
                    self.index,
                    shard.live_isolates()
                );
                shard.force_stop();
                clean = false;
            }
            me.step_started_ns.store(now_ns, Ordering::Relaxed);
            let now = Instant::from_ticks(now_ns.saturating_sub(self.epoch_ns) / tick_ns);
            let mut report = shard.step(now);
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
            ticks += 1;
            let new_state = ShardState::of(report.status);
            if new_state != state {
                // Publish the state before saying so: whoever reacts to the line (an
                // operator's SIGUSR2) must find the shard quarantined.
                state = new_state;
                me.set_state(state);
                if new_state == ShardState::Quarantined {
                    say!(
                        "shard {}: quarantined after too many recoveries (peers' sends to it \
                         now fail; revive with SIGUSR2)",
                        self.index
                    );
                }
            }
            match report.status {
                ShardStatus::Stopped => {
                    // The last tick may have queued reclaim work (closing descriptors of
                    // isolates torn down): hand it to the kernel before leaving.
                    shard.platform().io.flush();
                    break;
                }
                ShardStatus::AbortRequested => {
                    crate::log::last_line(format_args!(
                        "shard {}: recovered too often and the quarantine policy is Abort: \
                         aborting the process",
                        self.index
                    ));
                    std::process::abort();
                }
                _ => {}
            }
            if now_ns.wrapping_sub(last_publish) >= 10_000_000 {
                last_publish = now_ns;
                self.publish(shard, ticks, sleeps);
            }
            if report.work_remaining {
                shard.platform().io.flush();
                continue;
            }
            // Maybe idle: announce that we are going to sleep, then re-check (shared.rs).
            let link = &self.links[self.index];
            me.prepare_sleep(link);
            let platform = shard.platform();
            if platform.transport.has_inbound() || me.has_request() || platform.io.has_ready() {
                link.woke();
                platform.io.flush();
                continue;
            }
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
            if timeout_ns == Some(0) {
                link.woke();
                shard.platform().io.flush();
                continue;
            }
            self.publish(shard, ticks, sleeps);
            last_publish = now_ns;
            shard.platform().io.wait(timeout_ns);
            link.woke();
            self.inner.wake_watchdog();
            sleeps += 1;
        }
        self.publish(shard, ticks, sleeps);
        me.set_state(ShardState::Stopped);
        clean
    }

    fn publish(&self, shard: &mut Shard<'_, LinuxPlatform<'_>>, ticks: u64, sleeps: u64) {
        let resources = shard.resources_in_use();
        let in_flight = shard.platform().io.in_flight() as u32;
        self.peers[self.index].publish(&Published {
            counters: shard.counters(),
            live: shard.live_isolates(),
            resources,
            in_flight,
            ticks,
            sleeps,
        });
    }
}
