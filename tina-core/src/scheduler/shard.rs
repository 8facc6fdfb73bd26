//! The shard: one scheduler loop's worth of state, and `step`, one tick as a pure transition.
//!
//! ```text
//! step(clock)─┬─ 1. drain inbound channels ───────── Transport::receive → mailboxes
//!             ├─ 2. take I/O completions ─────────── IoDriver::complete → parked isolates
//!             ├─ 3. dispatch, grouped by type ────── each type ≤ weight × 256 handler calls,
//!             │                                      FIFO ready queue, ≤ k calls per isolate
//!             ├─ 4. submit this tick's I/O batch ─── IoDriver::submit (one batch)
//!             ├─ 5. publish outbound channels ────── Transport::publish (one release per ring)
//!             ├─ 6. advance timers ──────────────── ≤ timer_expirations_per_tick_max fire
//!             ├─ 7. flush the log ring ───────────── LogSink::write
//!             └─ 8. report ───────────────────────── work left? next deadline? counters
//! ```
//!
//! The shard sequences the phases and owns the platform; each phase's work is a kernel verb
//! (`kernel/step.rs`, and `run_batch` below for the dispatch loop).
//!
//! Every loop in `step` has a bound from the spec, so one tick has a worst-case cost that can
//! be stated. The platform uses the [`StepReport`] to decide between stepping again at once,
//! sleeping until `next_deadline`, or sleeping until woken.

use crate::error::SendError;
use crate::memory::counters::Counters;
use crate::memory::pool::Class;
use crate::memory::{Measure, MemoryError, Region};
use crate::model::effect::{CrashReason, Effect};
use crate::model::handle::{Handle, ShardId, TypeId};
use crate::model::isolate::Isolate;
use crate::model::message::{Message, Outgoing};
use crate::model::time::{Clock, Instant};
use crate::platform::{CallKind, IoDriver, Parts, PeerEvent, Platform, Transport, Trap, TrapCall};
use crate::scheduler::arena::ArenaRef;
use crate::scheduler::boot::{BootError, InitFailure, region_size};
use crate::scheduler::ctx::CtxParts;
use crate::scheduler::kernel::{Env, Exit, Kernel};
use crate::scheduler::layout::walk_shard;
use crate::scheduler::supervision::Verdict;
use crate::spec::{QuarantinePolicy, SystemSpec};
use core::mem::MaybeUninit;

/// The shard's life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShardStatus {
    /// Serving.
    Running,
    /// Shutdown requested; isolates are finishing.
    ShuttingDown,
    /// Shutdown complete: no isolate is left.
    Stopped,
    /// Recovered too often; serves nothing until revived.
    Quarantined,
    /// Recovered too often and the policy says abort: the platform should exit.
    AbortRequested,
}

/// What one tick did and what the platform needs to know next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// Handler calls made this tick.
    pub dispatched: u32,
    /// Whether the shard must step again without sleeping: some isolate can run right away,
    /// or the close of a descriptor nobody owns waits for the next submission batch (the
    /// platform's `SocketControl::close_orphan` could not close it at once; also after the
    /// shard stopped).
    pub work_remaining: bool,
    /// When no work remains: the earliest pending timer, so an idle platform can sleep
    /// until then (`None`: no timer at all). Always `None` while `work_remaining`.
    pub next_deadline: Option<Instant>,
    /// Timers fired this tick.
    pub timers_fired: u32,
    /// Live isolates after the tick.
    pub live_isolates: u32,
    /// The shard's status after the tick.
    pub status: ShardStatus,
}

/// One shard: the scheduler state of one core.
pub struct Shard<'a, P: Platform> {
    kernel: Kernel<'a>,
    platform: P,
    status: ShardStatus,
    recoveries: &'a mut [u64],
    recovery_count: usize,
}

impl<'a, P: Platform> Shard<'a, P> {
    /// Exactly how many bytes [`Shard::new`] carves from its region for `shard` of `spec`.
    /// Every size computation is checked: a spec whose region does not fit in `usize` is
    /// [`MemoryError::Overflow`].
    pub fn memory_required(spec: &SystemSpec<'_>, shard: ShardId) -> Result<usize, BootError> {
        region_size(spec, shard, Measure::new())
    }

    /// [`Shard::memory_required`] as a target whose `usize` ends at `limit` computes it
    /// (`u32::MAX as usize`: a 32-bit MCU): every offset and product above `limit` is
    /// [`MemoryError::Overflow`]. (Type sizes are the host's.)
    pub fn memory_required_within(
        spec: &SystemSpec<'_>,
        shard: ShardId,
        limit: usize,
    ) -> Result<usize, BootError> {
        region_size(spec, shard, Measure::with_limit(limit))
    }

    /// Validates the spec, carves every structure from `memory` (see
    /// [`Shard::memory_required`]) and starts the shard's supervision tree: static children
    /// are spawned in order and their `init` runs now.
    pub fn new(
        spec: &'a SystemSpec<'a>,
        shard: ShardId,
        memory: &'a mut [MaybeUninit<u8>],
        platform: P,
    ) -> Result<Shard<'a, P>, BootError> {
        let needed = Self::memory_required(spec, shard)?;
        if memory.len() < needed {
            return Err(BootError::Memory(MemoryError::Exhausted {
                needed,
                available: memory.len(),
            }));
        }
        let mut r = Region::new(memory).map_err(BootError::Memory)?;
        let mut shard = Self::carve(spec, shard, &mut r, platform).map_err(BootError::Memory)?;
        debug_assert_eq!(r.consumed(), needed, "memory_required must match the carve");
        let started = shard.with_kernel(|kernel, env| kernel.start_group(env, 0));
        if started.is_err() {
            return Err(BootError::RootFailed(shard.init_failure()));
        }
        Ok(shard)
    }

    /// Carves the shard from `r` by the boot-layout walk (the same walk
    /// [`Shard::memory_required`] measures).
    fn carve(
        spec: &'a SystemSpec<'a>,
        id: ShardId,
        r: &mut Region<'a>,
        platform: P,
    ) -> Result<Shard<'a, P>, MemoryError> {
        let root = &spec.shards[usize::from(id.0)].root;
        let mut layout = walk_shard(r, spec, root)?;
        let recoveries = core::mem::take(&mut layout.recoveries);
        Ok(Shard {
            kernel: Kernel::new(spec, id, layout),
            platform,
            status: ShardStatus::Running,
            recoveries,
            recovery_count: 0,
        })
    }

    /// The last failed `init` (taken), or a placeholder if none was recorded.
    fn init_failure(&mut self) -> InitFailure {
        self.kernel.take_init_failure()
    }

    /// Runs `f` on the kernel with the platform parts a transition outside any handler call
    /// needs (boot, supervision, shutdown).
    fn with_kernel<R>(&mut self, f: impl FnOnce(&mut Kernel<'a>, &mut Env<'_>) -> R) -> R {
        let Parts {
            transport,
            io,
            trap,
            ..
        } = self.platform.parts();
        let mut env = Env {
            transport,
            control: io,
            trap,
        };
        let r = f(&mut self.kernel, &mut env);
        // Teardowns refuse the calls their isolates never answered.
        if self.kernel.has_refusals() {
            self.kernel.send_refusals(env.transport);
        }
        r
    }

    /// Performs one tick (see the module docs for the phases) at the time the platform read
    /// from its clocks: a [`Clock`] with the monotonic [`Instant`] and, if the platform has a
    /// calendar clock, the [`WallTime`](crate::WallTime) read at the same moment.
    ///
    /// The platform supplies both at every step, like any other input, so a replay that feeds
    /// the same readings sees the same behaviour. Handlers read them with
    /// [`Ctx::now`](crate::Ctx::now) and [`Ctx::wall_time`](crate::Ctx::wall_time). Passing a
    /// bare `Instant` (`shard.step(Instant::from_ticks(n))`) means the platform has no
    /// calendar clock: `wall_time` is then `None` for this step. Before the first step (the
    /// `init`s run by [`Shard::new`]) there is no wall reading yet; [`Shard::revive`] keeps the
    /// last one.
    pub fn step(&mut self, clock: impl Into<Clock>) -> StepReport {
        let clock = clock.into();
        let now = clock.now;
        self.kernel.begin_step(clock);
        let quarantined = matches!(
            self.status,
            ShardStatus::Quarantined | ShardStatus::AbortRequested
        );
        // 1. Inbound channels.
        self.kernel
            .receive(self.platform.parts().transport, quarantined);
        // 2. I/O completions.
        self.kernel.take_completions(self.platform.parts().io);
        // 3. Dispatch.
        let mut dispatched = 0;
        if !quarantined {
            self.kernel.promote_yielded();
            for ty in 0..self.kernel.type_count() {
                dispatched += self.dispatch_type(ty);
            }
        }
        // 4. One I/O submission batch.
        self.kernel.submit_batch(self.platform.parts().io);
        // 5. Publish.
        {
            let transport = self.platform.parts().transport;
            transport.publish();
        }
        // 6. Timers.
        let timers_fired = self.kernel.advance_timers(now);
        // 7. Flush the log ring.
        self.kernel.flush_log(self.platform.parts().log);
        // 8. Report.
        if self.status == ShardStatus::ShuttingDown && self.kernel.live() == 0 {
            self.status = ShardStatus::Stopped;
        }
        // A quarantined or stopped shard dispatches nothing, whatever its ready queues still
        // name (isolates torn down while queued): it has no work until revived. Closes of
        // descriptors whose owner is gone that wait for a later batch (the platform could not
        // close them at once) are work on every shard, also a stopped one: they go out only
        // if it is stepped again.
        let work_remaining =
            (self.is_running() && self.kernel.has_ready()) || self.kernel.reclaims_held();
        StepReport {
            dispatched,
            work_remaining,
            // Only an idle platform needs it, and finding it after the earliest timer was
            // cancelled costs a scan of the timer pool: skip that while busy.
            next_deadline: if work_remaining {
                None
            } else {
                self.kernel.next_deadline()
            },
            timers_fired,
            live_isolates: self.kernel.live(),
            status: self.status,
        }
    }

    fn dispatch_type(&mut self, ty: u8) -> u32 {
        let quota = self.kernel.quota(ty);
        let mut calls = 0;
        while calls < quota {
            let Some((slot, exit)) = self.dispatch_batch(ty, quota, &mut calls) else {
                break;
            };
            // Tearing an isolate down (and perhaps restarting its group or the shard) needs
            // the whole shard, so it ends the batch; the next batch goes on with the queue.
            self.exit_isolate(ty, slot, exit);
            self.kernel.requeue(ty, slot);
            if !self.is_running() {
                break;
            }
        }
        calls
    }

    fn is_running(&self) -> bool {
        matches!(
            self.status,
            ShardStatus::Running | ShardStatus::ShuttingDown
        )
    }

    /// Runs handler calls of type `ty` (ready queue in FIFO order, at most
    /// `messages_per_dispatch_max` in a row per isolate) with one set of context parts,
    /// until `calls` reaches `quota`, the ready queue is empty, or an isolate exits: that
    /// one is returned, with its exit, for the caller to tear down. The shard's status
    /// cannot change within a batch (only a teardown changes it). The type's arena is lent
    /// out of the kernel for the batch and put back afterwards.
    fn dispatch_batch(&mut self, ty: u8, quota: u32, calls: &mut u32) -> Option<(u32, Exit)> {
        let Parts {
            transport,
            io,
            trap,
            ..
        } = self.platform.parts();
        let mut current = self.kernel.lend_arena(ty)?;
        let mut parts = CtxParts {
            kernel: &mut self.kernel,
            env: Env {
                transport,
                control: io,
                trap,
            },
            me: Handle::NONE,
            group: 0,
            call: None,
        };
        let exited = run_batch(&mut parts, trap, &mut current, ty, quota, calls);
        self.kernel.return_arena(ty, current);
        exited
    }

    fn exit_isolate(&mut self, ty: u8, slot: u32, exit: Exit) {
        let verdict = self.with_kernel(|kernel, env| kernel.exit(env, ty, slot, exit));
        if verdict == Verdict::RecoverShard {
            self.recover();
        }
    }

    /// Tears everything down and rebuilds the tree from the spec, unless the shard recovered
    /// too often within the window: then it is quarantined (or asks the platform to abort).
    fn recover(&mut self) {
        loop {
            self.with_kernel(|kernel, env| kernel.stop_group(env, 0));
            if !self.charge_recovery() {
                self.status = match self.kernel.spec().quarantine {
                    QuarantinePolicy::Quarantine => ShardStatus::Quarantined,
                    QuarantinePolicy::Abort => ShardStatus::AbortRequested,
                };
                self.platform
                    .parts()
                    .transport
                    .announce(PeerEvent::Quarantined);
                return;
            }
            self.kernel.count_recovery();
            self.platform
                .parts()
                .transport
                .announce(PeerEvent::Restarted);
            if self
                .with_kernel(|kernel, env| kernel.start_group(env, 0))
                .is_ok()
            {
                return;
            }
        }
    }

    fn charge_recovery(&mut self) -> bool {
        let now = self.kernel.now().ticks();
        let spec = self.kernel.spec();
        let window = spec.recovery_window.to_ticks(spec.tick_ns);
        let max = self.recoveries.len();
        let in_window = self.recoveries[..self.recovery_count.min(max)]
            .iter()
            .filter(|&&t| now.saturating_sub(t) < window)
            .count();
        if in_window >= max {
            return false;
        }
        // Overwrite the oldest entry.
        let oldest = (0..max)
            .min_by_key(|&i| {
                if i < self.recovery_count {
                    self.recoveries[i]
                } else {
                    0
                }
            })
            .unwrap_or(0);
        let i = if self.recovery_count < max {
            self.recovery_count
        } else {
            oldest
        };
        self.recoveries[i] = now;
        self.recovery_count = (self.recovery_count + 1).min(max);
        true
    }

    /// Brings a quarantined shard back at time `now`: a fresh supervision tree from the spec
    /// (its `init`s, and the timers they start, see `now`, not the time of the last step).
    pub fn revive(&mut self, now: Instant) -> Result<(), BootError> {
        self.kernel.advance_now(now);
        if !matches!(
            self.status,
            ShardStatus::Quarantined | ShardStatus::AbortRequested
        ) {
            return Ok(());
        }
        self.recovery_count = 0;
        self.status = ShardStatus::Running;
        self.platform
            .parts()
            .transport
            .announce(PeerEvent::Restarted);
        if self
            .with_kernel(|kernel, env| kernel.start_group(env, 0))
            .is_err()
        {
            let failure = self.init_failure();
            self.recover();
            return Err(BootError::RootFailed(failure));
        }
        Ok(())
    }

    /// Starts a graceful shutdown: every isolate gets a `SHUTDOWN` notice (without using the
    /// message pool) when it next waits for messages; nothing is restarted any more. The
    /// status becomes `Stopped` once no isolate is left.
    pub fn shutdown(&mut self) {
        if self.status != ShardStatus::Running {
            return;
        }
        self.status = ShardStatus::ShuttingDown;
        self.platform.parts().io.cancel_all();
        self.kernel.begin_shutdown();
    }

    /// Tears down every remaining isolate at once (the end of a shutdown that timed out).
    /// The closes of descriptors they owned go out with the next steps: step the stopped
    /// shard while its [`StepReport::work_remaining`] says some wait.
    pub fn force_stop(&mut self) {
        self.with_kernel(|kernel, env| kernel.stop_all(env));
        self.status = ShardStatus::Stopped;
    }

    /// Delivers a message from outside any isolate (a test, or the platform) to a local
    /// isolate. The sender is `Handle::NONE`.
    pub fn deliver(&mut self, to: Handle, out: &Outgoing) -> Result<(), SendError> {
        if to.shard() != self.kernel.shard() {
            return Err(SendError::StaleHandle);
        }
        self.kernel
            .deliver_local(&Message::build(Handle::NONE, to, out), Class::User)
    }

    /// Attaches this shard's view of every shard's bulk pool (`crate::bulk`; a platform carves
    /// the pools with [`carve_bulk_pool`](crate::wiring::carve_bulk_pool) and builds the ports
    /// with [`BulkPorts::new`](crate::bulk::BulkPorts::new)), before the first step. From then
    /// on `Ctx::transfer_alloc` takes bulk slots, and `Ctx::send_transfer` reaches isolates of
    /// every shard. `Err` hands the ports back if they belong to another shard or ports are
    /// already attached.
    pub fn attach_bulk(
        &mut self,
        ports: crate::bulk::BulkPorts<'a>,
    ) -> Result<(), crate::bulk::BulkPorts<'a>> {
        self.kernel.attach_bulk(ports)
    }

    /// Slots of this shard's own bulk pool not free (lent out, held or drafts; 0 without
    /// bulk pools): what a strict shutdown expects to be 0 once every shard stopped.
    pub fn bulk_in_use(&self) -> usize {
        self.kernel.bulk_in_use()
    }

    /// The shard's id.
    pub fn id(&self) -> ShardId {
        self.kernel.shard()
    }

    /// The shard's status.
    pub fn status(&self) -> ShardStatus {
        self.status
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.kernel.counters()
    }

    /// The platform parts (e.g. a test transport).
    pub fn platform(&mut self) -> &mut P {
        &mut self.platform
    }

    /// Live isolates.
    pub fn live_isolates(&self) -> u32 {
        self.kernel.live()
    }

    /// Handles of every live isolate on this shard, type by type, in slot order.
    pub fn live_handles(&self) -> impl Iterator<Item = Handle> + '_ {
        self.kernel.live_handles()
    }

    /// Handles of the live isolates of type `T`, in slot order.
    pub fn handles<T: Isolate>(&self) -> impl Iterator<Item = Handle> + '_ {
        self.kernel.handles_of(self.kernel.spec().type_id_of::<T>())
    }

    /// Read-only typed access to a live isolate's state (for tests and checkers).
    pub fn state<T: Isolate>(&self, h: Handle) -> Option<&T> {
        self.kernel.state(h)?.downcast_ref::<T>()
    }

    /// Whether `h` addresses a live isolate on this shard.
    pub fn is_live(&self, h: Handle) -> bool {
        self.kernel.locate(h).is_some()
    }

    /// Pool occupancy: (free, in use, total) envelopes.
    pub fn pool_usage(&self) -> (u32, u32, u32) {
        self.kernel.pool_usage()
    }

    /// Checks every structural invariant (O(shard size); for tests and the simulator's
    /// checkers). Returns the first violation found.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.kernel.check_invariants()
    }

    /// Resources in use: (message envelopes, timer entries, I/O buffers) — all zero on an
    /// empty, quiet shard.
    pub fn resources_in_use(&self) -> (u32, u32, u32) {
        self.kernel.resources_in_use()
    }

    /// Transfer buffers in use.
    pub fn transfers_in_use(&self) -> u32 {
        self.kernel.transfers_in_use()
    }

    /// Runs `f` on the kernel and the platform parts, for in-crate tests that set up states
    /// or make calls no public path reaches.
    #[cfg(test)]
    pub(crate) fn with_kernel_for_test<R>(
        &mut self,
        f: impl FnOnce(&mut Kernel<'a>, &mut Env<'_>) -> R,
    ) -> R {
        self.with_kernel(f)
    }
}

impl<P: Platform> Drop for Shard<'_, P> {
    fn drop(&mut self) {
        // Isolates may own resources; drop them. Everything else in the region is plain data.
        self.kernel.clear_arenas();
    }
}

/// The dispatch loop of [`Shard::dispatch_batch`]: runs ready isolates of type `ty` in
/// order, each up to `messages_per_dispatch_max` calls in a row, until `quota`, an empty
/// ready queue or an exit (returned).
#[inline]
fn run_batch<'a, T: Trap>(
    parts: &mut CtxParts<'_, 'a>,
    trap: &T,
    current: &mut ArenaRef<'a>,
    ty: u8,
    quota: u32,
    calls: &mut u32,
) -> Option<(u32, Exit)> {
    let per_isolate = parts.kernel.spec().shard.messages_per_dispatch_max;
    let type_name = parts.kernel.spec().types[usize::from(ty)].name;
    let shard = parts.kernel.shard();
    let mut msg = Message::EMPTY;
    while *calls < quota {
        // Both `next_ready` and `after_dispatch` queue the isolate again (if it has work)
        // when its run ends.
        let Some((slot, mut next)) = parts.kernel.next_ready(ty, &mut msg) else {
            break;
        };
        let mut run = 0;
        while let Some((generation, group)) = next {
            *calls += 1;
            run += 1;
            parts.me = Handle::pack(shard, TypeId(ty), slot, generation);
            parts.group = group;
            parts.call = msg.is_call().then(|| (msg.src(), msg.correlation()));
            let mut effect = Effect::Receive;
            // The trap is the platform's own type, known here: its call is static and the
            // per-type call inside it is the one dynamic call of a dispatch. Inside the trap
            // only the context is built before the user call; nothing is half-updated if it
            // panics.
            let trap_call = TrapCall {
                isolate: parts.me,
                type_name,
                kind: CallKind::Handle,
            };
            let mut ran = false;
            let trapped = match current.as_mut() {
                Some(a) => trap.run(trap_call, &mut || {
                    ran = a.dispatch(slot, &msg, parts, &mut effect);
                }),
                None => Ok(()),
            };
            if trapped.is_err() {
                parts.kernel.count_panic();
                effect = Effect::Crash(CrashReason::PANIC);
            } else if !ran {
                effect = Effect::Crash(CrashReason("internal: dispatched an empty slot"));
            }
            let receive = matches!(effect, Effect::Receive);
            let exit = parts
                .kernel
                .finish_call(&mut parts.env, ty, slot, &effect, &parts.call);
            if let Some(exit) = exit {
                return Some((slot, exit));
            }
            let more = run < per_isolate && *calls < quota;
            next = parts
                .kernel
                .after_dispatch(ty, slot, generation, receive, more, &mut msg);
        }
    }
    None
}
