//! # tina-sim — the deterministic simulator
//!
//! Runs every shard of a Tina system on one thread, in rounds, from one `u64` seed: the
//! same isolates that run on Linux, over a simulated network and a simulated kernel (TCP,
//! UDP and files with **real bytes**), with faults injected, checkers watching, and every
//! failure replayable from its seed.
//!
//! ```text
//!          seed ──► PRNG tree (rng): scheduling │ net drop │ net delay │ partitions │ swarm │
//!                                    scenario │ sockets │ shard crashes │ wall clock │
//!                                    per shard: I/O, trap
//!
//!   ┌───────────── round loop (sim) ─────────────────────────────────────────────────────┐
//!   │ fault engine ─► scenario.poll (clients) ─► shuffled shard order ─► Shard::step(now) │
//!   │ checkers every N rounds ─► next tick: now+1, or jump to the next deadline          │
//!   └────────────────────────────────────────────────────────────────────────────────────┘
//!            │ each shard's SimPlatform (platform)
//!            ├─ SimTransport ─► network (net): bounded FIFO links, delay, drop, partitions
//!            ├─ SimIo ───────► kernel (kernel, ops): descriptors, TCP, UDP, files, disks
//!            ├─ SimTrap ─────► catch_unwind + crash / panic / init-failure / shard-crash faults
//!            └─ SimLog ──────► trace (trace): every event hashed into a 128-bit trace hash
//! ```
//!
//! ## Layout
//!
//! Read bottom-up; each module's own doc says more.
//!
//! | module | what it holds |
//! |---|---|
//! | `rng`, `hash` | the seed's tree of PRNG streams; the stable 128-bit hasher |
//! | `config` | [`SimConfig`], the fault kinds and rates, swarm selection |
//! | `trace` | event codes, the trace hash, the bounded event log, [`first_difference`] |
//! | `world` | the state every shard's platform shares: time, phase, partitions, per-shard trap state, fault counts, violations |
//! | `net` | the simulated network between shards (methods of the world) |
//! | `kernel` | descriptors, TCP/UDP sockets and files with real bytes |
//! | `ops` | the core's I/O operations and socket control executed against the kernel, with the I/O faults (methods of the world) |
//! | `platform`, `panic_hook` | [`SimPlatform`]: a `platform::Bundle` of the four simulated parts; quiet, recorded panics inside trapped calls |
//! | `scenario` | [`Scenario`], the client side ([`Env`]) and the read-only [`SimView`] |
//! | `check` | the built-in checkers |
//! | `sim` | [`Regions`], the round loop and the [`Report`] |
//! | `cli` | the command line: `cli/run`, `cli/sweep` (sweep and soak), `cli/compare` |
//!
//! ## Writing a simulation test
//!
//! 1. Build the system's [`SystemSpec`](tina_core::SystemSpec) exactly as for Linux.
//! 2. Implement [`Scenario`]: drive simulated clients in [`Scenario::poll`], check invariants
//!    over the whole system in [`Scenario::check`] (typed, read-only access to every
//!    isolate's state through [`SimView`]), and say when the system did what it should in
//!    [`Scenario::goal`].
//! 3. [`run`] it with a [`SimConfig`] (seed, length, faults) and inspect the [`Report`]:
//!    the [`Outcome`], the [`TraceHash`], injected faults, counters.
//!
//! ```
//! use tina_core::*;
//! use tina_sim::{FaultMode, Scenario, SimConfig, SimView};
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Ping { hops: u64 }
//! tina_core::payload!(Ping);
//!
//! /// One per shard, named `PLAYER` on each; shard 0 starts a ball that bounces between the
//! /// two shards.
//! struct Player { seen: u64 }
//! tina_core::accepts!(Player: Ping);
//! const PLAYER: Name<Player> = Name::new("player");
//!
//! impl Isolate for Player {
//!     type Args = u8;
//!     fn init(shard: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
//!         if *shard == 0 {
//!             // The player on shard 1, by name: no handle to know in advance.
//!             let peer = ctx.on_shard(PLAYER, ShardId(1));
//!             let _ = ctx.send(peer, &Ping { hops: 0 });
//!         }
//!         Ok((Player { seen: 0 }, Effect::Receive))
//!     }
//!     fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
//!         if let Some(p) = msg.decode::<Ping>() {
//!             self.seen += 1;
//!             if p.hops < 100 {
//!                 // Back to whoever sent it (the handle of the running incarnation).
//!                 let _ = ctx.send(msg.src(), &Ping { hops: p.hops + 1 });
//!             }
//!         }
//!         Effect::Receive
//!     }
//! }
//!
//! /// The test: every hop is seen exactly once, and the ball makes it to the end.
//! struct Rally;
//! impl Scenario for Rally {
//!     fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
//!         let seen: u64 = view.isolates::<Player>().iter().map(|(_, p)| p.seen).sum();
//!         if seen > 101 { return Err(format!("{seen} hops seen")) }
//!         Ok(())
//!     }
//!     fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
//!         view.isolates::<Player>().iter().map(|(_, p)| p.seen).sum::<u64>() == 101
//!     }
//! }
//!
//! let types = [TypeSpec::of::<Player>("player")];
//! let c0 = [ChildSpec::named(PLAYER, &0u8, Restart::Permanent)];
//! let c1 = [ChildSpec::named(PLAYER, &1u8, Restart::Permanent)];
//! let shards = [
//!     ShardSpec { root: GroupSpec::one_for_one(&c0) },
//!     ShardSpec { root: GroupSpec::one_for_one(&c1) },
//! ];
//! let spec = SystemSpec::new(&shards, &types);
//!
//! for seed in 0..4 {
//!     let mut config = SimConfig::new(seed);
//!     config.ticks = 500;
//!     let report = tina_sim::run(&spec, &config, &mut Rally);
//!     assert!(report.outcome.is_pass(), "{}", report.outcome);
//!     // Same seed, same run: the trace hash proves it.
//!     assert_eq!(report.trace_hash, tina_sim::run(&spec, &config, &mut Rally).trace_hash);
//! }
//! // With faults (drops lose the ball here, so only determinism is asserted).
//! let mut config = SimConfig::new(9);
//! config.faults = FaultMode::Swarm;
//! config.ticks = 500;
//! config.liveness_ticks = 500;
//! let a = tina_sim::run(&spec, &config, &mut Rally);
//! assert_eq!(a.trace_hash, tina_sim::run(&spec, &config, &mut Rally).trace_hash);
//! ```
//!
//! A binary exposes scenarios on the command line with [`cli::main`] (`run`, `sweep`, the
//! unattended `soak`, `compare`); see `examples/src/bin/simulate.rs`.
//!
//! ## What a run does
//!
//! - **Rounds and time.** Each round advances virtual time by one tick, runs the fault engine
//!   (partitions start and heal, whole-shard crashes, TCP resets; the simulated operator
//!   revives quarantined shards after `revive_after_ticks`), polls the scenario, then steps
//!   every shard once in an order shuffled by the `SCHEDULING` stream. When no shard has
//!   work, nothing is deliverable and no I/O can complete, time **jumps** to the next event
//!   (timer deadline, delivery, I/O delay, client wake-up, partition heal): time compression.
//! - **Phases.** The faulty phase lasts `ticks`; then faults stop, partitions heal and
//!   quarantined shards are revived, and the scenario must reach its goal within
//!   `liveness_ticks` (else: liveness failure, exit 128). A goal reached early ends the
//!   faulty phase early.
//! - **Checkers** ([`Scenario::check`] and the built-ins: every shard's `check_invariants`
//!   — pools conserved, mailboxes consistent —, generations only grow, no two live isolates
//!   share a handle, no completion reaches a wrong generation) run every
//!   `check_every_rounds` rounds and at the end; a violation ends the run (exit 129).
//! - **Trace hash.** Every event the platform observes feeds a stable 128-bit hash (see the
//!   table in `trace`): the core has no per-dispatch hook, so dispatches are reflected
//!   through their observable effects — each trapped handler or init call with its outcome,
//!   every message sent or delivered (handles, tag, payload digest), every I/O submission
//!   and completion (with byte digests), every log record, and each step's report and
//!   counters. `record_events` keeps the event log (its last `event_log_max` lines);
//!   [`first_difference`] (and the `compare` command) finds where two runs diverge.
//! - **Bounded memory.** Nothing grows with a run's length: closed sockets are forgotten
//!   once neither end refers to them, the event log is a ring, and lengths are capped at
//!   [`TICKS_MAX`] so tick arithmetic cannot overflow. The simulator is a `std` crate whose
//!   table sizes come from the spec and the command line at run time, so it uses `Vec`,
//!   `VecDeque` and `BTreeMap` with explicit caps rather than fixed-capacity (`heapless`)
//!   containers.
//! - **Faults** ([`FaultConfig`], [`FaultKind`]) are integer ratios drawn from per-domain
//!   streams; `FaultMode::Swarm` picks a per-seed subset and rates.
//!
//! ## Determinism rules (checked by `tests/tidy.rs`)
//!
//! No floating point, no `HashMap`/`HashSet` (random state), no wall clock in simulation
//! paths (only the CLI measures wall time, to report speed); iteration orders are `Vec` and
//! `BTreeMap` orders; ties are broken by index. The PRNGs are implemented here, so no
//! dependency update can change a replay.
//!
//! ## Known modelling limits
//!
//! - A whole-shard crash is modelled through the core's own recovery: every handler and init
//!   call on the shard fails until its root supervisor gives up; the shard recovers (new
//!   generations, peers told `Restarted`) or, too often, is quarantined and later revived.
//!   Memory is not wiped behind the core's back (that would reuse handle generations).
//! - TCP is a byte-stream model (no segments, windows or retransmission state): loss is a
//!   retransmission delay; a full backlog refuses the connection.
#![deny(unsafe_code)]
#![deny(clippy::too_many_lines)]

mod check;
pub mod cli;
mod config;
mod hash;
mod kernel;
mod net;
mod ops;
mod panic_hook;
mod platform;
mod rng;
mod scenario;
mod sim;
mod trace;
mod world;

pub use config::{
    EVENT_LOG_MAX_DEFAULT, FaultConfig, FaultKind, FaultMode, FaultSet, SimConfig, TICKS_MAX,
};
pub use hash::{Hasher128, TraceHash, digest64};
pub use kernel::{DATAGRAM_QUEUE_MAX, FDS_PER_SHARD_MAX, RECV_BUFFER_SIZE};
pub use platform::{SimIo, SimLog, SimPlatform, SimTransport, SimTrap};
pub use rng::{Domain, Ratio, SimRng, SplitMix64, mix64};
pub use scenario::{
    ClientRead, ClientSocket, ClientStatus, Env, Scenario, SimView, TypeWatch, Wake, watch,
};
pub use sim::{Outcome, Regions, Report, run, wall_clock_start};
pub use trace::first_difference;
pub use world::{Node, Phase};
