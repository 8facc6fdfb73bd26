//! Boot, the shard threads, and the control loop.
//!
//! ```text
//!  run_with(spec, config, control, on_booted)        (run: the same without a callback)
//!   1. validate the spec; measure its memory (every shard region, the N×(N−1) rings, the
//!      reactors' tables) and refuse it if it exceeds Config::memory_available (RunError::Memory)
//!   2. pick the backend (probe io_uring: setup + no-op; log the choice); choose CPUs from the
//!      process affinity mask; create eventfds; map (untouched) each shard's inbound rings
//!   3. block the control signals (threads inherit the mask); ignore SIGPIPE; fault handlers
//!   4. per shard, a thread: pin → alternate signal stack → map + pre-fault its region →
//!      pre-fault + carve its inbound rings (producer halves to the exchange) → wait at the
//!      gate until every shard has its memory (if one failed, none boots) → take its producer
//!      halves → reactor → Shard::new → loop { requests; step; sleep when idle }
//!   5. this thread: wait until every shard has booted or failed; a failure → shut the booted
//!      shards down and return RunError::ShardBoot (shard, child, cause) once they stopped;
//!      else on_booted, then SIGINT/SIGTERM → graceful shutdown (again → force), SIGUSR1 →
//!      stats, SIGUSR2 → revive; returns when every shard has stopped
//! ```
//!
//! Every mapping is fallible (an error, never an abort), and memory is mapped and pre-faulted
//! before any isolate runs. After step 4's boot nothing allocates: rings, op tables, event
//! arrays and queues are sized from the spec, and the loop only reads the clock, steps, and
//! blocks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use tina_core::io::IoCompletion;
use tina_core::ring::Producer;
use tina_core::transport::ShardLink;
use tina_core::{BootError, Handle, Message, Shard, ShardId, SystemMemory, SystemSpec};

use crate::config::Config;
use crate::control::{Control, Inner, control_loop};
use crate::error::{BootFailure, MemoryShortfall, RunError};
use crate::log::say;
use crate::logger;
use crate::reactor::ops::Op;
use crate::reactor::{ActiveBackend, Backend, probe_uring};
use crate::shard::{BootGate, LinuxPlatform, ShardThread, in_flight_max};
use crate::shared::{ShardShared, ShardState, ShardStats};
use crate::sys;
use crate::transport::Exchange;
use crate::trap::install_panic_hook;
use crate::watchdog;

/// Log lines each shard thread can have queued for stderr (more are dropped and counted).
const SHARD_LOG_LINES: usize = 128;
/// Log lines the control loop and the watchdog can have queued, plus two per shard.
const CONTROL_LOG_LINES: usize = 32;
/// How long the end of a run waits for queued log lines to reach stderr.
const FINAL_LOG_FLUSH_WAIT: StdDuration = StdDuration::from_millis(500);

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The backend that ran.
    pub backend: ActiveBackend,
    /// Whether every shard stopped gracefully (no forced stop).
    pub clean: bool,
    /// Each shard's final stats.
    pub stats: Vec<ShardStats>,
}

/// What [`run_with`] tells its caller once every shard has booted.
#[derive(Clone, Debug)]
pub struct Booted {
    /// The backend that runs.
    pub backend: ActiveBackend,
    /// The CPU of each shard.
    pub cpus: Vec<usize>,
    /// The memory the spec needs: shard regions and rings, as measured (each mapping is
    /// rounded up to whole pages).
    pub memory: SystemMemory,
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

/// Runs `spec` until every shard has stopped (a graceful shutdown by signal or
/// [`Control::shutdown`], a forced stop, or every isolate exiting).
///
/// Boot failures are errors: an invalid spec, more memory than is available, memory that
/// cannot be mapped, or a static child whose `init` fails on any shard
/// ([`RunError::ShardBoot`], naming the shard, the child and the cause) — the shards that did
/// boot are shut down first. Use [`run_with`] to learn when boot has finished.
pub fn run(
    spec: &SystemSpec<'_>,
    config: &Config,
    control: &Control,
) -> Result<RunReport, RunError> {
    run_with(spec, config, control, |_| {})
}

/// [`run`], calling `on_booted` (on the calling thread) once every shard has booted — every
/// shard's static children have initialised — and before the control loop starts. It is not
/// called when boot fails: then `run_with` returns the error, so a program can claim to
/// serve (print its address, notify a supervisor) in `on_booted` and never before.
pub fn run_with(
    spec: &SystemSpec<'_>,
    config: &Config,
    control: &Control,
    on_booted: impl FnOnce(&Booted),
) -> Result<RunReport, RunError> {
    let r = run_system(spec, config, control, on_booted);
    // Whatever the outcome, the run's lines reach stderr before the caller prints its own —
    // boundedly: a stalled stderr must not hold up the end of the run.
    logger::stderr().flush(FINAL_LOG_FLUSH_WAIT);
    control.ended.store(true, Ordering::Release);
    r
}

/// Per shard: its region's mapped size and its inbound rings' mapped size (0: none).
struct MemoryPlan {
    regions: Vec<usize>,
    rings: Vec<usize>,
    system: SystemMemory,
}

/// Measures the spec's memory and refuses it if more than is available.
fn plan_memory(spec: &SystemSpec<'_>, config: &Config) -> Result<MemoryPlan, RunError> {
    let overflow = |e: BootError| {
        RunError::Boot(format!(
            "the system's memory size cannot be computed: {e} (reduce ring_capacity, the shard \
             count or the per-shard sizes)"
        ))
    };
    let mut system = SystemMemory::of(spec).map_err(overflow)?;
    // This driver does not map bulk pools yet (transfers stay within their shard here), so
    // they are not part of what it takes.
    system.bulk = 0;
    let n = spec.shards.len();
    let mut plan = MemoryPlan {
        regions: Vec::with_capacity(n),
        rings: Vec::with_capacity(n),
        system,
    };
    let mut shortfall = MemoryShortfall {
        regions: 0,
        rings: 0,
        reactors: 0,
        available: 0,
    };
    let too_big = || RunError::Boot("the system's memory size overflows usize".into());
    for i in 0..n {
        let id = ShardId(i as u8);
        let region = Shard::<LinuxPlatform<'_>>::memory_required(spec, id).map_err(overflow)?;
        let mapped = sys::Mapping::mapped_len(region, config.huge_pages).ok_or_else(too_big)?;
        plan.regions.push(mapped);
        shortfall.regions = shortfall.regions.saturating_add(mapped as u64);
        let rings = tina_core::ring_memory_required(spec, id).map_err(overflow)?;
        let mapped = if rings == 0 {
            0
        } else {
            sys::Mapping::mapped_len(rings, config.huge_pages).ok_or_else(too_big)?
        };
        plan.rings.push(mapped);
        shortfall.rings = shortfall.rings.saturating_add(mapped as u64);
        shortfall.reactors = shortfall
            .reactors
            .saturating_add(reactor_bytes(in_flight_max(spec)));
    }
    if let Some(available) = (config.memory_available)() {
        shortfall.available = available;
        if shortfall.needed() > available {
            return Err(RunError::Memory(shortfall));
        }
    }
    Ok(plan)
}

/// Heap bytes one reactor's operation tables take for `in_flight_max` operations.
fn reactor_bytes(in_flight_max: usize) -> u64 {
    let per_op = size_of::<Op>() + size_of::<u32>() + 2 * size_of::<(Handle, IoCompletion)>();
    (in_flight_max as u64).saturating_mul(per_op as u64)
}

/// The steps of the module docs, in order: validate and measure (1), backend, CPUs, eventfds
/// and ring mappings (2), the process's signal set-up (3), the shard threads (4) and the
/// control loop (5, in [`Boot::serve`]).
fn run_system(
    spec: &SystemSpec<'_>,
    config: &Config,
    control: &Control,
    on_booted: impl FnOnce(&Booted),
) -> Result<RunReport, RunError> {
    spec.validate().map_err(RunError::Spec)?;
    let n = spec.shards.len();
    // This thread's log queue (the control loop's); shards and the watchdog get their own.
    let _log = logger::stderr().register(CONTROL_LOG_LINES + 2 * n);
    let plan = plan_memory(spec, config)?;
    let (backend, fallback_reason) = choose_backend(config)?;
    let cpus = choose_cpus(config, n)?;
    let fds = (0..n)
        .map(|_| new_eventfd())
        .collect::<Result<Vec<_>, _>>()?;
    let mut ring_maps = map_rings(&plan, config)?;
    let inner = install_control(control, spec, config, fds, backend, fallback_reason.clone())?;
    if config.announce {
        announce(config, backend, fallback_reason.as_deref(), &cpus);
    }
    let old_mask = prepare_process(config);
    let boot = Boot {
        spec,
        config,
        control,
        inner,
        backend,
        cpus: &cpus,
        epoch_ns: sys::monotonic_ns(),
        timeout_ns: config.shutdown_timeout.map_or_else(
            || spec.shutdown_timeout.as_nanos(),
            |d| d.as_nanos().min(u128::from(u64::MAX)) as u64,
        ),
        memory: plan.system,
    };
    let (boot_failure, all_clean) = boot.serve(&mut ring_maps, on_booted);
    if let Some(old) = old_mask {
        sys::restore_signal_mask(&old);
    }
    if let Some((shard, failure)) = boot_failure {
        return Err(RunError::ShardBoot { shard, failure });
    }
    Ok(RunReport {
        backend,
        clean: all_clean && !inner.forced.load(Ordering::Relaxed),
        stats: control.stats(),
    })
}

fn new_eventfd() -> Result<sys::OwnedFd, RunError> {
    sys::eventfd().map_err(|e| RunError::Boot(format!("eventfd failed: {}", sys::errno_name(e))))
}

/// Each shard's inbound rings: mapped here (so they outlive every shard thread), not touched;
/// the consumer shard pre-faults and carves them on its own thread.
fn map_rings(plan: &MemoryPlan, config: &Config) -> Result<Vec<Option<sys::Mapping>>, RunError> {
    let mut ring_maps = Vec::with_capacity(plan.rings.len());
    for (i, &bytes) in plan.rings.iter().enumerate() {
        ring_maps.push(if bytes == 0 {
            None
        } else {
            Some(
                sys::Mapping::new(bytes, config.huge_pages).map_err(|errno| {
                    RunError::ShardBoot {
                        shard: i,
                        failure: BootFailure::Map {
                            what: "cross-shard rings",
                            bytes,
                            errno,
                        },
                    }
                })?,
            )
        });
    }
    Ok(ring_maps)
}

/// Builds what the control loop shares with the shards (state, links, fds) and puts it in
/// `control` (which refuses a second run).
fn install_control<'c>(
    control: &'c Control,
    spec: &SystemSpec<'_>,
    config: &Config,
    fds: Vec<sys::OwnedFd>,
    backend: ActiveBackend,
    fallback_reason: Option<String>,
) -> Result<&'c Inner, RunError> {
    let n = spec.shards.len();
    let type_names: Vec<&'static str> = spec.types.iter().map(|t| t.name).collect();
    let shards = fds
        .iter()
        .map(|fd| ShardShared::new(fd.0, type_names.clone()))
        .collect();
    let signal_fd = if config.signals {
        Some(
            sys::signalfd(&sys::CONTROL_SIGNALS)
                .map_err(|e| RunError::Boot(format!("signalfd failed: {}", sys::errno_name(e))))?,
        )
    } else {
        None
    };
    control
        .inner
        .set(Inner {
            shards,
            signal_fd,
            done_fd: new_eventfd()?,
            watchdog: OnceLock::new(),
            watchdog_parked: AtomicBool::new(false),
            links: (0..n).map(|_| ShardLink::new()).collect(),
            _wake_fds: fds,
            backend,
            fallback_reason,
            started: Mutex::new(0),
            finished: Mutex::new(0),
            changed: Condvar::new(),
            forced: AtomicBool::new(false),
        })
        .map_err(|_| RunError::ControlInUse)?;
    control.inner.get().ok_or(RunError::ControlInUse)
}

/// The boot lines: the fallback's reason, the backend and CPUs, shards sharing a CPU.
fn announce(
    config: &Config,
    backend: ActiveBackend,
    fallback_reason: Option<&str>,
    cpus: &[usize],
) {
    let n = cpus.len();
    if let Some(why) = fallback_reason {
        say!("io_uring unavailable, falling back to epoll: {why}");
    }
    say!(
        "{n} shard(s) on CPU(s) {cpus:?} with the {} backend{}",
        backend.name(),
        if config.pin { "" } else { " (not pinned)" }
    );
    let mut distinct = cpus.to_vec();
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

/// Step 3: SIGPIPE ignored, the control signals blocked (threads inherit the mask; the old
/// mask is returned for restoring), the fault reporter and the panic hook installed.
fn prepare_process(config: &Config) -> Option<libc::sigset_t> {
    sys::ignore_sigpipe();
    let old_mask = config
        .signals
        .then(|| sys::block_signals(&sys::CONTROL_SIGNALS));
    if config.fault_handlers {
        sys::install_fault_handlers();
    }
    install_panic_hook();
    old_mask
}

/// Everything the shard threads and the control loop of one run share.
struct Boot<'a, 's> {
    spec: &'a SystemSpec<'s>,
    config: &'a Config,
    control: &'a Control,
    inner: &'a Inner,
    backend: ActiveBackend,
    cpus: &'a [usize],
    epoch_ns: u64,
    timeout_ns: u64,
    memory: SystemMemory,
}

/// What the shard threads report back while they run.
struct Outcomes {
    failures: Vec<OnceLock<BootFailure>>,
    all_clean: AtomicBool,
    done_count: AtomicUsize,
}

impl Boot<'_, '_> {
    /// Steps 4 and 5: starts a thread per shard and the watchdog, waits until every shard has
    /// booted or failed, then runs `on_booted` and the control loop (or, after a failed boot,
    /// shuts the booted shards down) until every thread has ended. Returns the first boot
    /// failure and whether every shard stopped cleanly.
    fn serve(
        &self,
        ring_maps: &mut [Option<sys::Mapping>],
        on_booted: impl FnOnce(&Booted),
    ) -> (Option<(usize, BootFailure)>, bool) {
        let n = self.spec.shards.len();
        // Producer halves of ring `from → to` at `from × n + to`, left there by the consumer.
        let exchange: Vec<Mutex<Option<Producer<'_, Message>>>> =
            (0..n * n).map(|_| Mutex::new(None)).collect();
        let gate = BootGate::new(n);
        let outcomes = Outcomes {
            failures: (0..n).map(|_| OnceLock::new()).collect(),
            all_clean: AtomicBool::new(true),
            done_count: AtomicUsize::new(0),
        };
        let mut boot_failure = None;
        std::thread::scope(|scope| {
            let threads = self.start_shards(scope, ring_maps, &exchange, &gate, &outcomes);
            let dog = self.start_watchdog(scope, &outcomes.done_count);
            self.wait_booted();
            boot_failure = outcomes
                .failures
                .iter()
                .enumerate()
                .find_map(|(shard, f)| f.get().map(|f| (shard, f.clone())));
            if boot_failure.is_some() {
                // Nothing may keep serving after a failed boot: stop the shards that booted.
                self.control.shutdown();
            } else {
                on_booted(&Booted {
                    backend: self.backend,
                    cpus: self.cpus.to_vec(),
                    memory: self.memory,
                });
            }
            control_loop(self.control, n, self.timeout_ns);
            for t in threads {
                let _ = t.join();
            }
            if let Some(d) = dog {
                d.thread().unpark();
                let _ = d.join();
            }
        });
        (boot_failure, outcomes.all_clean.load(Ordering::Relaxed))
    }

    /// Starts one thread per shard (a thread that cannot be started counts as a shard that
    /// failed to boot).
    fn start_shards<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        ring_maps: &'env mut [Option<sys::Mapping>],
        exchange: &'env Exchange<'env>,
        gate: &'env BootGate,
        outcomes: &'env Outcomes,
    ) -> Vec<std::thread::ScopedJoinHandle<'scope, ()>> {
        let inner = self.inner;
        let mut threads = Vec::with_capacity(ring_maps.len());
        for (i, rings) in ring_maps.iter_mut().enumerate() {
            let ctx = ShardThread {
                index: i,
                spec: self.spec,
                peers: &inner.shards,
                links: &inner.links,
                backend: self.backend,
                cpu: self.cpus[i],
                config: self.config,
                epoch_ns: self.epoch_ns,
                timeout_ns: self.timeout_ns,
                inner,
                gate,
                failure: &outcomes.failures[i],
            };
            let t = std::thread::Builder::new()
                .name(format!("tina-shard-{i}"))
                .spawn_scoped(scope, move || {
                    let _log = logger::stderr().register(SHARD_LOG_LINES);
                    let clean = ctx.run(rings.as_mut(), exchange);
                    outcomes.finished(inner, clean);
                });
            match t {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let _ = outcomes.failures[i].set(BootFailure::Thread(format!(
                        "cannot start the shard thread: {e}"
                    )));
                    gate.arrive(false);
                    inner.shards[i].set_state(ShardState::Failed);
                    *inner.started.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                    outcomes.finished(inner, false);
                }
            }
        }
        threads
    }

    /// Starts the watchdog thread, if configured (it ends once every shard has).
    fn start_watchdog<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        done_count: &'env AtomicUsize,
    ) -> Option<std::thread::ScopedJoinHandle<'scope, ()>> {
        let inner = self.inner;
        let n = self.spec.shards.len();
        self.config.watchdog.and_then(|w| {
            std::thread::Builder::new()
                .name("tina-watchdog".into())
                .spawn_scoped(scope, move || {
                    let _log = logger::stderr().register(CONTROL_LOG_LINES + n);
                    let _ = inner.watchdog.set(std::thread::current());
                    watchdog::watch(
                        &inner.shards,
                        &inner.links,
                        &inner.watchdog_parked,
                        w,
                        &|| done_count.load(Ordering::Acquire) >= n,
                    )
                })
                .ok()
        })
    }

    /// Boot is finished when every shard has started its tree (or failed to).
    fn wait_booted(&self) {
        let n = self.spec.shards.len();
        let mut started = self.inner.started.lock().unwrap_or_else(|e| e.into_inner());
        while *started < n {
            started = self
                .inner
                .changed
                .wait(started)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Outcomes {
    /// A shard thread has ended (or never started): counted, and the control loop woken.
    fn finished(&self, inner: &Inner, clean: bool) {
        if !clean {
            self.all_clean.store(false, Ordering::Relaxed);
        }
        self.done_count.fetch_add(1, Ordering::Release);
        *inner.finished.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        inner.changed.notify_all();
        sys::eventfd_signal(inner.done_fd.0);
    }
}
