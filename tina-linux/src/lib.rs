//! # tina-linux — the Linux driver
//!
//! Runs a [`tina_core::SystemSpec`] on Linux: one pinned OS thread per shard around
//! `Shard::step`, an io_uring reactor per shard (with an epoll fallback of the same
//! semantics), cross-shard SPSC rings with eventfd wake-ups, idle shards that sleep in the
//! kernel, signals (graceful and forced shutdown, stats, revive), a watchdog for stuck ticks,
//! and a stats snapshot per shard ([`Control::stats`]).
//!
//! ```no_run
//! use tina_core::*;
//! use tina_linux::{Config, Control, run};
//! # struct Echo;
//! # impl Isolate for Echo {
//! #     type Args = ();
//! #     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> { Ok((Echo, Effect::Receive)) }
//! #     fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect { Effect::Receive }
//! # }
//! let types = [TypeSpec::of::<Echo>("echo")];
//! let children = [ChildSpec::isolate::<Echo>(&(), Restart::Permanent)];
//! let shards = [ShardSpec { root: GroupSpec::one_for_one(&children) }; 2];
//! let spec = SystemSpec::new(&shards, &types);
//! // Blocks until SIGINT/SIGTERM (graceful shutdown) or Control::shutdown from another thread.
//! let report = run(&spec, &Config::default(), &Control::new()).expect("boot");
//! std::process::exit(if report.clean { 0 } else { 1 });
//! ```
//!
//! ## What runs where
//!
//! ```text
//!   caller's thread ── control loop: SIGINT/SIGTERM → shutdown (twice → force),
//!        │              SIGUSR1 → stats, SIGUSR2 → revive quarantined shards
//!        ├── tina-shard-0 (pinned) ── loop { requests; step(monotonic, wall); idle? sleep }
//!        ├── tina-shard-1 (pinned) ──   ▲ I/O completion │ timer deadline │ peer's eventfd
//!        ├── tina-watchdog ── reports a tick that runs too long (report or abort)
//!        └── tina-log ── writes every thread's queued log lines to stderr
//! ```
//!
//! - **Boot** ([`run`], [`run_with`]): validates the spec, refuses it if its memory (shard
//!   regions, the N×(N−1) rings, the reactors' tables) exceeds what is available
//!   ([`available_memory`], or [`Config::memory_available`]), probes io_uring (setup + no-op)
//!   and logs which backend runs (and why it fell back), picks CPUs from the process affinity
//!   mask; each shard thread pins itself, installs an alternate signal stack, maps and
//!   pre-faults its own region (huge pages when large) and its inbound rings, waits until
//!   every shard has its memory, then boots its shard. Any boot failure — memory that cannot
//!   be mapped, a static child whose `init` fails — is an `Err` naming the shard and the
//!   cause, after the shards that booted were stopped; [`run_with`]'s callback runs only once
//!   every shard has booted. After boot nothing is allocated on any path of the loop.
//! - **I/O** ([`Reactor`]): the whole I/O vocabulary of tina-core on io_uring or epoll;
//!   reactor-owned buffers; one submission batch per tick; `cancel_all` at shutdown.
//! - **Sleep**: a shard with no work announces sleep on its link, re-checks its rings (the
//!   fence protocol below), and blocks in `io_uring_enter` or
//!   `epoll_wait` until I/O, its next timer, or a peer's eventfd. Busy shards never make a
//!   wake syscall. An idle process makes no wake-ups at all: the control loop blocks on a
//!   signalfd and a "shard finished" eventfd without a timeout, and the watchdog parks while
//!   every shard sleeps (the first shard to wake unparks it).
//! - **Watchdog**: names the shard, the isolate, its type and the call stuck in one tick.
//! - **Logging** ([`log`]): every line goes through a bounded queue of its thread to one
//!   writer thread (`tina-log`), the only thread that ever waits for stderr; with stderr
//!   stalled, lines are dropped, counted and the count reported once it drains. Shards, the
//!   watchdog and the control loop never block on output, so signals are always handled.
//! - **Faults**: handler panics are caught (`catch_unwind`) and become isolate crashes;
//!   SIGSEGV/SIGBUS/SIGILL/SIGFPE print the signal, address, shard and the isolate (and type
//!   and call) that was running, from an alternate stack, and exit with 128+signal.
//!
//! ## Wake protocol
//!
//! The rings, their wiring and their sleep protocol are tina-core's
//! ([`tina_core::transport::RingTransport`], model-checked with loom there;
//! [`tina_core::wiring`]; [`tina_core::sleep`]), the same code the bare-metal platform runs.
//! Through the core's sleep guard the shard announces sleep on its link (flag, `SeqCst`
//! fence), re-checks its rings, requests and completions, and only then blocks; a producer
//! publishes, fences, and rings the shard's eventfd only if it sees the flag, and only the
//! first waker of one sleep pays the `write(2)` (see [`shared`](crate#wake-protocol) for the
//! doorbell). No wake-up is lost; a busy shard never sets the flag, so busy producers make no
//! syscall.
//!
//! ## Layout
//!
//! Imports flow one way, from the entry point down:
//!
//! | module | what |
//! |---|---|
//! | `runtime` | [`run`] / [`run_with`]: boot (validate, measure, backend, CPUs, mappings), the shard threads, the control loop; [`RunReport`], [`Booted`] |
//! | `config`, `error` | [`Config`] and [`available_memory`]; [`RunError`], [`BootFailure`], [`MemoryShortfall`] |
//! | `shard` | one shard thread: pin, memory, rings, the boot gate, the platform (a `tina_core::platform::Bundle`), the shard loop (requests → step → sleep) |
//! | `control` | [`Control`] and the control loop (signals, shutdown, stats, revive) |
//! | `transport` | [`LinuxTransport`]: the core's ring transport with eventfd doorbells, and the ring wiring per consumer shard |
//! | `reactor` | [`Reactor`], the I/O facade, over `reactor::ops` (the operation table both backends share), [`UringReactor`] and [`EpollReactor`] |
//! | `shared`, `watchdog`, `trap` | per-shard state shared across threads ([`ShardStats`]); the watchdog; [`CatchPanic`] |
//! | `log`, `logger`, `signals`, `sys` | the non-blocking log path; signal masks; the system calls (the only `unsafe` besides the uring backend) |
//!
#![deny(unsafe_code)]
#![deny(clippy::too_many_lines)]

mod config;
mod control;
mod error;
pub mod log;
mod logger;
mod reactor;
mod runtime;
mod shard;
mod shared;
mod signals;
#[allow(unsafe_code)]
mod sys;
mod transport;
mod trap;
mod watchdog;

pub use config::{Config, available_memory};
pub use control::Control;
pub use error::{BootFailure, MemoryShortfall, RunError};
pub use log::StderrLog;
pub use reactor::epoll::EpollReactor;
pub use reactor::uring::UringReactor;
pub use reactor::{ActiveBackend, Backend, Reactor};
pub use runtime::{Booted, RunReport, run, run_with};
pub use shared::{ShardState, ShardStats};
pub use signals::{block_signals, unblock_signals};
pub use transport::{EventfdWake, LinuxTransport};
pub use trap::CatchPanic;
pub use watchdog::{WatchdogConfig, WatchdogPolicy};

/// Test support: makes `io_uring_setup` fail with `EPERM` for the calling thread and every
/// thread it starts afterwards, the way a container's seccomp profile does, so the epoll
/// fallback can be exercised. Irreversible; call it in a child process.
pub fn deny_io_uring_with_seccomp() -> Result<(), i32> {
    sys::deny_io_uring()
}

/// Whether io_uring works here (setup + a no-op), and why not.
pub fn probe_io_uring() -> Result<(), String> {
    reactor::probe_uring()
}
