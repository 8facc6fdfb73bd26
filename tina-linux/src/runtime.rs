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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration as StdDuration;

use tina_core::log::Level;
use tina_core::ring::{Consumer, Producer, Ring, Slot};
use tina_core::transport::ShardLink;
use tina_core::{Message, SystemSpec};

use crate::control::{Control, Inner, control_loop};
use crate::log::say;
use crate::logger;
use crate::reactor::{ActiveBackend, Backend, probe_uring};
use crate::shard::ShardThread;
use crate::shared::{ShardShared, ShardState, ShardStats};
use crate::sys;
use crate::trap::install_panic_hook;
use crate::watchdog::{self, WatchdogConfig};

/// Log lines each shard thread can have queued for stderr (more are dropped and counted).
const SHARD_LOG_LINES: usize = 128;
/// Log lines the control loop and the watchdog can have queued, plus two per shard.
const CONTROL_LOG_LINES: usize = 32;
/// How long the end of a run waits for queued log lines to reach stderr.
const FINAL_LOG_FLUSH_WAIT: StdDuration = StdDuration::from_millis(500);

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
    // Whatever the outcome, the run's lines reach stderr before the caller prints its own —
    // boundedly: a stalled stderr must not hold up the end of the run.
    logger::stderr().flush(FINAL_LOG_FLUSH_WAIT);
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
    // This thread's log queue (the control loop's); shards and the watchdog get their own.
    let _log = logger::stderr().register(CONTROL_LOG_LINES + 2 * n);
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
            done_fd: sys::eventfd()
                .map_err(|e| RunError::Boot(format!("eventfd failed: {}", sys::errno_name(e))))?,
            watchdog: OnceLock::new(),
            watchdog_parked: AtomicBool::new(false),
            links: (0..n).map(|_| ShardLink::new()).collect(),
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
    // Each shard's scratch for the peers' status sequence numbers (one per shard).
    let mut seen: Vec<Vec<u32>> = (0..n).map(|_| vec![0; n]).collect();
    let mut final_stats = Vec::new();
    let all_clean = AtomicBool::new(true);
    let done_count = AtomicUsize::new(0);
    let done_count = &done_count;
    std::thread::scope(|scope| {
        let mut threads = Vec::with_capacity(n);
        for (i, ((outbound, inbound), seen)) in halves.iter_mut().zip(&mut seen).enumerate() {
            let ctx = ShardThread {
                index: i,
                spec,
                peers: &inner.shards,
                links: &inner.links,
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
                    let _log = logger::stderr().register(SHARD_LOG_LINES);
                    let clean = ctx.run(outbound, inbound, seen);
                    if !clean {
                        all_clean.store(false, Ordering::Relaxed);
                    }
                    done_count.fetch_add(1, Ordering::Release);
                    let mut f = inner.finished.lock().unwrap_or_else(|e| e.into_inner());
                    *f += 1;
                    inner.changed.notify_all();
                    sys::eventfd_signal(inner.done_fd.0);
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
                    sys::eventfd_signal(inner.done_fd.0);
                }
            }
        }
        let dog = config.watchdog.and_then(|w| {
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
        });
        control_loop(control, n, timeout_ns);
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
