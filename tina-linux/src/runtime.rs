//! Boot, the shard threads, and the control loop.
//!
//! ```text
//!  run(spec, config, control)
//!   1. validate the spec; pick the backend (probe io_uring: setup + no-op; log the choice)
//!   2. choose CPUs from the process affinity mask; create eventfds and the N×(N−1) rings
//!   3. block the control signals (threads inherit the mask); ignore SIGPIPE; fault handlers
//!   4. per shard, a thread: pin → alternate signal stack → map + pre-fault its region →
//!      reactor → Shard::new → loop { requests; step; sleep when idle }
//!   5. this thread: SIGINT/SIGTERM → graceful shutdown (again → force), SIGUSR1 → stats,
//!      SIGUSR2 → revive; returns when every shard has stopped
//! ```
//!
//! After step 4's boot nothing allocates: rings, op tables, event arrays and queues are sized
//! from the spec, and the loop only reads the clock, steps, and blocks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use tina_core::log::Level;
use tina_core::platform::{Parts, Platform};
use tina_core::ring::{Consumer, Producer, Ring, Slot};
use tina_core::{Instant, Message, Shard, ShardId, ShardStatus, SystemSpec};

use crate::log::{StderrLog, say};
use crate::reactor::{ActiveBackend, Backend, Reactor, probe_uring};
use crate::shared::{Published, ShardShared, ShardState, ShardStats};
use crate::sys::{self, OwnedFd};
use crate::transport::RingTransport;
use crate::trap::{CatchPanic, install_panic_hook};
use crate::watchdog::{self, WatchdogConfig};

/// How to run a system on Linux.
#[derive(Clone, Debug)]
pub struct Config {
    /// I/O backend (default: `Auto`).
    pub backend: Backend,
    /// CPU of each shard (shard `i` → `cpus[i]`). `None`: the `i`-th CPU of the process
    /// affinity mask (so `taskset` and cgroup limits are honoured), wrapping around.
    pub cpus: Option<Vec<usize>>,
    /// Pin shard threads (default true).
    pub pin: bool,
    /// Ask for transparent huge pages for shard regions of 2 MiB or more (best effort).
    pub huge_pages: bool,
    /// Handle SIGINT/SIGTERM/SIGUSR1/SIGUSR2 in the thread that calls [`run`] (default true).
    /// `run` blocks them in its own thread, and the shard threads inherit that; threads that
    /// already exist keep their masks, so call `run` from the main thread before starting
    /// other threads (or block these signals in them), else a signal may take its default
    /// action there. Turn off when embedding runtimes in a larger program (e.g. tests) and
    /// use [`Control::shutdown`] instead.
    pub signals: bool,
    /// Install the SIGSEGV/SIGBUS/SIGILL/SIGFPE reporter (default true).
    pub fault_handlers: bool,
    /// The watchdog (default: report a tick that runs over 2 s).
    pub watchdog: Option<WatchdogConfig>,
    /// Log records above this level are dropped (default `Info`).
    pub log_level: Level,
    /// Print the boot lines (backend, CPUs) on stderr (default true).
    pub announce: bool,
    /// Graceful shutdown bound; `None`: the spec's `shutdown_timeout`.
    pub shutdown_timeout: Option<StdDuration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: Backend::Auto,
            cpus: None,
            pin: true,
            huge_pages: true,
            signals: true,
            fault_handlers: true,
            watchdog: Some(WatchdogConfig::default()),
            log_level: Level::Info,
            announce: true,
            shutdown_timeout: None,
        }
    }
}

/// Why the runtime could not start.
#[derive(Debug)]
pub enum RunError {
    /// The spec is invalid.
    Spec(tina_core::SpecError),
    /// The requested backend is unavailable (the text says why and what to do).
    Backend(String),
    /// A CPU could not be chosen or used.
    Cpu(String),
    /// A resource could not be created at boot.
    Boot(String),
    /// This [`Control`] already ran a system.
    ControlInUse,
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RunError::Spec(e) => write!(f, "invalid spec: {e}"),
            RunError::Backend(s) | RunError::Cpu(s) | RunError::Boot(s) => f.write_str(s),
            RunError::ControlInUse => f.write_str("this Control already ran a system"),
        }
    }
}

impl std::error::Error for RunError {}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The backend that ran.
    pub backend: ActiveBackend,
    /// Whether every shard stopped gracefully (no forced stop, no boot failure).
    pub clean: bool,
    /// Each shard's final stats.
    pub stats: Vec<ShardStats>,
}

struct Inner {
    shards: Vec<ShardShared>,
    _wake_fds: Vec<OwnedFd>,
    backend: ActiveBackend,
    fallback_reason: Option<String>,
    started: Mutex<usize>,
    finished: Mutex<usize>,
    changed: Condvar,
    forced: AtomicBool,
}

/// A handle on a running system, usable from any thread: request shutdown, revive
/// quarantined shards, read stats. Create it, pass it to [`run`], use it elsewhere.
#[derive(Default)]
pub struct Control {
    inner: OnceLock<Inner>,
    /// Set when [`run`] returns (or fails before booting).
    ended: AtomicBool,
}

impl Control {
    /// A control for one run.
    pub fn new() -> Control {
        Control::default()
    }

    fn shards(&self) -> &[ShardShared] {
        self.inner.get().map_or(&[], |i| &i.shards)
    }

    /// Starts a graceful shutdown of every shard.
    pub fn shutdown(&self) {
        for s in self.shards() {
            s.request(&s.shutdown_requested);
        }
    }

    /// Stops every shard at once (isolates are torn down without a shutdown message).
    pub fn force_stop(&self) {
        if let Some(i) = self.inner.get() {
            i.forced.store(true, Ordering::Relaxed);
        }
        for s in self.shards() {
            s.request(&s.force_requested);
        }
    }

    /// Revives every quarantined shard (what SIGUSR2 does).
    pub fn revive(&self) {
        for s in self.shards() {
            if s.state() == ShardState::Quarantined {
                s.request(&s.revive_requested);
            }
        }
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

/// The Linux platform of one shard.
pub(crate) struct LinuxPlatform<'r> {
    transport: RingTransport<'r>,
    io: Reactor,
    trap: CatchPanic<'r>,
    log: StderrLog,
}

impl<'r> Platform for LinuxPlatform<'r> {
    type Transport = RingTransport<'r>;
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
fn in_flight_max(spec: &SystemSpec<'_>) -> usize {
    let isolates: usize = spec.types.iter().map(|t| t.capacity as usize).sum();
    isolates + 2 * spec.shard.io_submissions_per_tick_max as usize + 64
}

fn choose_backend(config: &Config) -> Result<(ActiveBackend, Option<String>), RunError> {
    match config.backend {
        Backend::Epoll => Ok((ActiveBackend::Epoll, None)),
        Backend::Uring => probe_uring()
            .map(|()| (ActiveBackend::Uring, None))
            .map_err(|why| {
                RunError::Backend(format!(
                    "{why}; the io_uring backend was required (use the epoll backend, e.g. \
                     --backend epoll, or allow io_uring)"
                ))
            }),
        Backend::Auto => match probe_uring() {
            Ok(()) => Ok((ActiveBackend::Uring, None)),
            Err(why) => Ok((ActiveBackend::Epoll, Some(why))),
        },
    }
}

fn choose_cpus(config: &Config, n: usize) -> Result<Vec<usize>, RunError> {
    let allowed = sys::allowed_cpus().map_err(|e| {
        RunError::Cpu(format!(
            "cannot read the process affinity mask: {}",
            sys::errno_name(e)
        ))
    })?;
    if allowed.is_empty() {
        return Err(RunError::Cpu("the process affinity mask is empty".into()));
    }
    match &config.cpus {
        Some(cpus) => {
            if cpus.len() < n {
                return Err(RunError::Cpu(format!(
                    "{} CPUs configured for {n} shards (give one per shard)",
                    cpus.len()
                )));
            }
            if let Some(bad) = cpus.iter().find(|c| !allowed.contains(c)) {
                return Err(RunError::Cpu(format!(
                    "CPU {bad} is not in the process affinity mask {allowed:?} (check taskset \
                     or the cgroup's cpuset)"
                )));
            }
            Ok(cpus[..n].to_vec())
        }
        None => Ok((0..n).map(|i| allowed[i % allowed.len()]).collect()),
    }
}

type Halves<'r> = (
    Vec<Option<Producer<'r, Message>>>,
    Vec<Option<Consumer<'r, Message>>>,
);

/// Runs `spec` until every shard has stopped (a graceful shutdown by signal or
/// [`Control::shutdown`], a forced stop, or every isolate exiting).
pub fn run(
    spec: &SystemSpec<'_>,
    config: &Config,
    control: &Control,
) -> Result<RunReport, RunError> {
    let r = run_system(spec, config, control);
    control.ended.store(true, Ordering::Release);
    r
}

fn run_system(
    spec: &SystemSpec<'_>,
    config: &Config,
    control: &Control,
) -> Result<RunReport, RunError> {
    spec.validate().map_err(RunError::Spec)?;
    let n = spec.shards.len();
    let (backend, fallback_reason) = choose_backend(config)?;
    let cpus = choose_cpus(config, n)?;
    let mut fds = Vec::with_capacity(n);
    for _ in 0..n {
        fds.push(
            sys::eventfd()
                .map_err(|e| RunError::Boot(format!("eventfd failed: {}", sys::errno_name(e))))?,
        );
    }
    let type_names: Vec<&'static str> = spec.types.iter().map(|t| t.name).collect();
    let shards = fds
        .iter()
        .map(|fd| ShardShared::new(fd.0, type_names.clone()))
        .collect();
    control
        .inner
        .set(Inner {
            shards,
            _wake_fds: fds,
            backend,
            fallback_reason: fallback_reason.clone(),
            started: Mutex::new(0),
            finished: Mutex::new(0),
            changed: Condvar::new(),
            forced: AtomicBool::new(false),
        })
        .map_err(|_| RunError::ControlInUse)?;
    let Some(inner) = control.inner.get() else {
        return Err(RunError::ControlInUse);
    };
    if config.announce {
        if let Some(why) = &fallback_reason {
            say!("io_uring unavailable, falling back to epoll: {why}");
        }
        say!(
            "{n} shard(s) on CPU(s) {cpus:?} with the {} backend{}",
            backend.name(),
            if config.pin { "" } else { " (not pinned)" }
        );
        let mut distinct = cpus.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < n {
            say!(
                "warning: {n} shards share {} CPU(s) (the process affinity mask or the \
                 configured CPUs allow no more); shards on one CPU take turns",
                distinct.len()
            );
        }
    }

    sys::ignore_sigpipe();
    let old_mask = config
        .signals
        .then(|| sys::block_signals(&sys::CONTROL_SIGNALS));
    if config.fault_handlers {
        sys::install_fault_handlers();
    }
    install_panic_hook();

    // The N×(N−1) rings: slot storage, rings, then one producer and one consumer each.
    let mut storage: Vec<(usize, usize, Vec<Slot<Message>>)> = Vec::new();
    for from in 0..n {
        for to in 0..n {
            if from != to {
                let cap = spec.ring_capacity_between(from as u8, to as u8) as usize;
                storage.push((from, to, (0..cap).map(|_| Slot::new()).collect()));
            }
        }
    }
    let mut rings = Vec::with_capacity(storage.len());
    for (from, to, slots) in storage.iter_mut() {
        let ring =
            Ring::new(slots).map_err(|e| RunError::Boot(format!("ring {from}→{to}: {e}")))?;
        rings.push((*from, *to, ring));
    }
    let mut halves: Vec<Halves<'_>> = (0..n)
        .map(|_| {
            (
                (0..n).map(|_| None).collect(),
                (0..n).map(|_| None).collect(),
            )
        })
        .collect();
    for (from, to, ring) in rings.iter_mut() {
        let (p, c) = ring.split();
        halves[*from].0[*to] = Some(p);
        halves[*to].1[*from] = Some(c);
    }

    let epoch_ns = sys::monotonic_ns();
    let timeout_ns = config.shutdown_timeout.map_or_else(
        || spec.shutdown_timeout.ticks().saturating_mul(spec.tick_ns),
        |d| d.as_nanos().min(u128::from(u64::MAX)) as u64,
    );
    let mut final_stats = Vec::new();
    let all_clean = AtomicBool::new(true);
    let done_count = AtomicUsize::new(0);
    let done_count = &done_count;
    std::thread::scope(|scope| {
        let mut threads = Vec::with_capacity(n);
        for (i, (outbound, inbound)) in halves.drain(..).enumerate() {
            let ctx = ShardThread {
                index: i,
                spec,
                peers: &inner.shards,
                backend,
                cpu: cpus[i],
                config,
                epoch_ns,
                timeout_ns,
                inner,
            };
            let all_clean = &all_clean;
            let t = std::thread::Builder::new()
                .name(format!("tina-shard-{i}"))
                .spawn_scoped(scope, move || {
                    let clean = ctx.run(outbound, inbound);
                    if !clean {
                        all_clean.store(false, Ordering::Relaxed);
                    }
                    done_count.fetch_add(1, Ordering::Release);
                    let mut f = inner.finished.lock().unwrap_or_else(|e| e.into_inner());
                    *f += 1;
                    inner.changed.notify_all();
                });
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    say!("cannot start shard {i}: {e}");
                    all_clean.store(false, Ordering::Relaxed);
                    inner.shards[i].set_state(ShardState::Failed);
                    *inner.started.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    *inner.finished.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    inner.changed.notify_all();
                }
            }
        }
        let dog = config.watchdog.and_then(|w| {
            std::thread::Builder::new()
                .name("tina-watchdog".into())
                .spawn_scoped(scope, move || {
                    watchdog::watch(&inner.shards, w, &|| {
                        done_count.load(Ordering::Acquire) >= n
                    })
                })
                .ok()
        });
        control_loop(control, config, n, timeout_ns);
        for t in threads {
            let _ = t.join();
        }
        if let Some(d) = dog {
            d.thread().unpark();
            let _ = d.join();
        }
    });
    if let Some(old) = old_mask {
        sys::restore_signal_mask(&old);
    }
    final_stats.extend(control.stats());
    Ok(RunReport {
        backend,
        clean: all_clean.load(Ordering::Relaxed) && !inner.forced.load(Ordering::Relaxed),
        stats: final_stats,
    })
}

/// Waits for the shards to finish, handling signals if configured.
fn control_loop(control: &Control, config: &Config, n: usize, timeout_ns: u64) {
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
            say!("shards did not stop after a forced stop; exiting now");
            std::process::exit(1);
        }
        if !config.signals {
            let f = inner.finished.lock().unwrap_or_else(|e| e.into_inner());
            if *f < n {
                let _ = inner
                    .changed
                    .wait_timeout(f, StdDuration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner());
            }
            continue;
        }
        match sys::wait_signal(&sys::CONTROL_SIGNALS, 100) {
            Some(sig @ (libc::SIGINT | libc::SIGTERM)) => {
                terms += 1;
                if terms == 1 {
                    say!(
                        "{}: graceful shutdown (bounded by {} ms; send it again to force)",
                        sys::signal_name(sig),
                        timeout_ns / 1_000_000
                    );
                    control.shutdown();
                } else {
                    say!(
                        "{} again: forcing the shards to stop",
                        sys::signal_name(sig)
                    );
                    control.force_stop();
                    hard_deadline = Some(std::time::Instant::now() + StdDuration::from_secs(1));
                }
            }
            Some(libc::SIGUSR1) => control.print_stats(),
            Some(libc::SIGUSR2) => {
                say!("SIGUSR2: reviving quarantined shards");
                control.revive();
            }
            _ => {}
        }
    }
}

/// Everything one shard thread needs.
struct ShardThread<'s, 'x> {
    index: usize,
    spec: &'x SystemSpec<'s>,
    peers: &'x [ShardShared],
    backend: ActiveBackend,
    cpu: usize,
    config: &'x Config,
    epoch_ns: u64,
    timeout_ns: u64,
    inner: &'x Inner,
}

impl ShardThread<'_, '_> {
    fn mark_started(&self, state: ShardState) {
        self.peers[self.index].set_state(state);
        *self.inner.started.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.inner.changed.notify_all();
    }

    /// Boots the shard on this thread and runs its loop. Returns whether it ended cleanly.
    fn run(
        &self,
        outbound: Vec<Option<Producer<'_, Message>>>,
        inbound: Vec<Option<Consumer<'_, Message>>>,
    ) -> bool {
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
            transport: RingTransport::new(i, outbound, inbound, self.peers),
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
            // Revive after a step, so the new tree's `init`s see the current time (the core
            // keeps the time of its last step, which is old on a quarantined, sleeping shard).
            if me.revive_requested.load(Ordering::Relaxed)
                && me.revive_requested.swap(false, Ordering::Relaxed)
                && shard.status() == ShardStatus::Quarantined
            {
                match shard.revive() {
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
                if new_state == ShardState::Quarantined {
                    say!(
                        "shard {}: quarantined after too many recoveries (peers' sends to it \
                         now fail; revive with SIGUSR2)",
                        self.index
                    );
                }
                state = new_state;
                me.set_state(state);
            }
            match report.status {
                ShardStatus::Stopped => break,
                ShardStatus::AbortRequested => {
                    say!(
                        "shard {}: recovered too often and the quarantine policy is Abort: \
                         aborting the process",
                        self.index
                    );
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
            me.sleeping.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let platform = shard.platform();
            if platform.transport.has_inbound()
                || platform.transport.has_peer_events()
                || me.has_request()
                || platform.io.has_ready()
            {
                me.sleeping.store(false, Ordering::Relaxed);
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
                me.sleeping.store(false, Ordering::Relaxed);
                shard.platform().io.flush();
                continue;
            }
            self.publish(shard, ticks, sleeps);
            last_publish = now_ns;
            shard.platform().io.wait(timeout_ns);
            me.sleeping.store(false, Ordering::Relaxed);
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
