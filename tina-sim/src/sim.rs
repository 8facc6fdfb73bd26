//! The round loop: boot, faulty phase, liveness phase, report.
//!
//! ```text
//!  boot every shard (no faults) ──► round: ┬─ liveness? (ticks reached or goal met early)
//!                                          ├─ fault engine: partitions start/heal, shard
//!                                          │  crashes, TCP resets; operator revives
//!                                          │  quarantined shards
//!                                          ├─ scenario.poll (clients)
//!                                          ├─ shuffle shard order (SCHEDULING stream),
//!                                          │  step every shard once at `now` (with the
//!                                          │  simulated wall clock: a seeded start plus
//!                                          │  `now` ticks)
//!                                          ├─ checkers every N rounds
//!                                          └─ next tick: now+1 if anything can run, else
//!                                             jump to the next deadline (time compression);
//!                                             nothing left at all: quiescent
//! ```
//!
//! After a pass, every shard is shut down gracefully (forced after the `SystemSpec`'s
//! shutdown timeout) and must give back every envelope, timer, I/O buffer and descriptor; a leak is
//! reported in [`Report::shutdown`] (a checker violation with `strict_shutdown`).
//!
//! The run ends with **pass** when the scenario's goal holds in the liveness phase,
//! **checker violation** as soon as a checker fails, **liveness failure** when the liveness
//! bound passes (or the system goes quiescent) without the goal, and **framework panic** when
//! a panic escapes the trap (a bug in the core or the simulator).

use crate::check;
use crate::config::{FaultConfig, FaultKind, SimConfig};
use crate::hash::TraceHash;
use crate::panic_hook;
use crate::platform::SimPlatform;
use crate::rng::{Domain, Ratio, SimRng};
use crate::scenario::{Env, Scenario, SimView, TypeWatch, Wake};
use crate::trace::Ev;
use crate::world::{Node, Partition, Phase, World, WorldRef};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use tina_core::bulk::{BulkPeer, BulkPorts};
use tina_core::io::IoOp;
use tina_core::memory::RegionBlock;
use tina_core::wiring::carve_bulk_pool;
use tina_core::{
    BootError, Clock, Counters, Duration, Instant, Shard, ShardId, ShardStatus, SystemSpec,
    WallTime,
};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The goal was reached in the liveness phase and no checker failed.
    Pass,
    /// The goal was not reached within the liveness bound.
    Liveness(String),
    /// A checker failed.
    Checker(String),
    /// A panic escaped the trap (a framework bug), or the system could not boot.
    FrameworkPanic(String),
}

impl Outcome {
    /// The process exit code for this outcome: 0 pass, 127 framework panic, 128 liveness
    /// failure, 129 checker violation.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::FrameworkPanic(_) => 127,
            Outcome::Liveness(_) => 128,
            Outcome::Checker(_) => 129,
        }
    }

    /// Whether the run passed.
    pub fn is_pass(&self) -> bool {
        *self == Outcome::Pass
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => f.write_str("PASS"),
            Outcome::Liveness(m) => write!(f, "LIVENESS FAILURE: {m}"),
            Outcome::Checker(m) => write!(f, "CHECKER VIOLATION: {m}"),
            Outcome::FrameworkPanic(m) => write!(f, "FRAMEWORK PANIC: {m}"),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Nanoseconds per tick (from the `SystemSpec`), to convert virtual time.
    pub tick_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The trace hash.
    pub trace_hash: TraceHash,
    /// The effective fault configuration.
    pub faults: FaultConfig,
    /// Rounds run.
    pub rounds: u64,
    /// Virtual time at the end, in ticks.
    pub ticks: u64,
    /// When the liveness phase started.
    pub liveness_at: Option<u64>,
    /// Handler calls over all shards.
    pub dispatches: u64,
    /// Events hashed.
    pub events: u64,
    /// Injected faults per kind (indexed by [`FaultKind::index`]).
    pub injected: [u64; FaultKind::COUNT],
    /// Each shard's counters at the end.
    pub counters: Vec<Counters>,
    /// The scenario's summary line.
    pub summary: String,
    /// After a pass: `"clean"` if the final graceful shutdown returned every resource, else
    /// what leaked (a checker violation instead with `strict_shutdown`).
    pub shutdown: Option<String>,
    /// The last log lines of the system.
    pub log_tail: Vec<String>,
    /// The event log, when recording was asked for: its last
    /// [`SimConfig::event_log_max`] lines.
    pub event_log: Option<Vec<String>>,
    /// Event-log lines dropped before the first one kept (0 when the log is complete).
    pub event_log_dropped: u64,
    /// The most sockets the simulated kernel held at once (open ones, and closed ones whose
    /// peer is still open): bounded by what the system keeps open, not by the run's length.
    pub sockets_peak: u64,
}

impl Report {
    /// How many faults of `kind` were injected.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.injected[kind.index()]
    }
}

/// Memory for every shard of a system, allocated once before boot: its region and its bulk
/// pool.
pub struct Regions {
    regions: Vec<Vec<RegionBlock>>,
    bulk: Vec<Vec<RegionBlock>>,
}

impl Regions {
    /// Exactly sized, aligned regions and bulk pools for every shard of `spec`.
    pub fn new(spec: &SystemSpec<'_>) -> Result<Regions, BootError> {
        let mut regions = Vec::with_capacity(spec.shards.len());
        for s in 0..spec.shards.len() {
            let n = Shard::<SimPlatform>::memory_required(spec, ShardId(s as u8))?;
            regions.push(vec![RegionBlock::UNINIT; RegionBlock::blocks_for(n)]);
        }
        let per_pool = tina_core::bulk_memory_required(spec)?;
        let bulk = (0..spec.shards.len())
            .map(|_| vec![RegionBlock::UNINIT; RegionBlock::blocks_for(per_pool)])
            .collect();
        Ok(Regions { regions, bulk })
    }
}

/// Every shard's peer halves of every bulk pool (`peers[shard][owner]`), filled at boot.
type BulkPeers<'a> = Vec<Vec<Option<BulkPeer<'a>>>>;

/// Carves every shard's bulk pool from `bulk` and builds each shard's ports (in shard order).
fn bulk_ports<'a>(
    spec: &SystemSpec<'_>,
    bulk: &'a mut [Vec<RegionBlock>],
    peers: &'a mut BulkPeers<'a>,
) -> Result<Vec<BulkPorts<'a>>, BootError> {
    let n = spec.shards.len();
    let failed = || BootError::Memory(tina_core::memory::MemoryError::Overflow);
    peers.clear();
    peers.resize_with(n, || (0..n).map(|_| None).collect());
    let mut owners = Vec::with_capacity(n);
    for (i, blocks) in bulk.iter_mut().enumerate() {
        let bytes = RegionBlock::as_bytes(blocks);
        let owner = carve_bulk_pool(spec, ShardId(i as u8), bytes, |to, p| {
            peers[usize::from(to.0)][i] = Some(p);
        })
        .map_err(|e| match e {
            tina_core::wiring::WiringError::Bulk { error, .. } => BootError::Memory(error),
            _ => failed(),
        })?;
        owners.push(owner);
    }
    let rows: &'a mut [Vec<Option<BulkPeer<'a>>>] = peers;
    let mut ports = Vec::with_capacity(n);
    for (i, (row, owner)) in rows.iter_mut().zip(owners).enumerate() {
        ports.push(BulkPorts::new(ShardId(i as u8), owner, row).ok_or_else(failed)?);
    }
    Ok(ports)
}

/// Runs `scenario` on the system `spec` with `config`: the library's main entry point.
pub fn run(spec: &SystemSpec<'_>, config: &SimConfig, scenario: &mut dyn Scenario) -> Report {
    panic_hook::install();
    let config = &config.bounded();
    let faults = config.fault_config(scenario.faults());
    let n = spec.shards.len();
    let world: WorldRef = Rc::new(RefCell::new(World::new(
        config.seed,
        n,
        |a, b| spec.ring_capacity_between(a, b) as usize,
        faults,
        config.net_latency_ticks,
        config.record_events,
        config.event_log_max,
    )));
    let mut regions = match Regions::new(spec) {
        Ok(r) => r,
        Err(e) => return failed_boot(config, faults, &world, format!("boot failed: {e}")),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut peers = Vec::new();
        let booted = Simulation::boot(
            spec,
            &mut regions,
            &mut peers,
            config,
            faults,
            &world,
            scenario,
        );
        let mut sim = match booted {
            Ok(sim) => sim,
            Err(e) => return Err(format!("boot failed: {e}")),
        };
        Ok(sim.run(scenario))
    }));
    match result {
        Ok(Ok(report)) => report,
        Ok(Err(msg)) => failed_boot(config, faults, &world, msg),
        Err(_) => {
            let msg = panic_hook::last_message().unwrap_or_else(|| "unknown panic".to_string());
            failed_boot(config, faults, &world, msg)
        }
    }
}

fn failed_boot(config: &SimConfig, faults: FaultConfig, world: &WorldRef, msg: String) -> Report {
    // After a panic the world may be mid-call; its trace is still readable.
    let mut w = match world.try_borrow_mut() {
        Ok(w) => w,
        Err(_) => {
            return Report {
                seed: config.seed,
                tick_ns: 0,
                outcome: Outcome::FrameworkPanic(msg),
                trace_hash: TraceHash(0),
                faults,
                rounds: 0,
                ticks: 0,
                liveness_at: None,
                dispatches: 0,
                events: 0,
                injected: [0; FaultKind::COUNT],
                counters: Vec::new(),
                summary: String::new(),
                shutdown: None,
                log_tail: Vec::new(),
                event_log: None,
                event_log_dropped: 0,
                sockets_peak: 0,
            };
        }
    };
    let (event_log, event_log_dropped) = w.trace.take_log();
    Report {
        seed: config.seed,
        tick_ns: 0,
        outcome: Outcome::FrameworkPanic(msg),
        trace_hash: w.trace.hash(),
        faults,
        rounds: w.round,
        ticks: w.now,
        liveness_at: None,
        dispatches: 0,
        events: w.trace.events(),
        injected: w.injected,
        counters: Vec::new(),
        summary: String::new(),
        shutdown: None,
        log_tail: w.log_tail.iter().cloned().collect(),
        event_log,
        event_log_dropped,
        sockets_peak: w.kernel.sockets_peak() as u64,
    }
}

/// The first second of 2000 and of 2100, UTC: the simulated calendar clock starts between.
const WALL_START_MIN_SECS: u64 = 946_684_800;
const WALL_START_MAX_SECS: u64 = 4_102_444_800;

/// The simulated calendar time at tick 0 for `seed`: a nanosecond between 2000 and 2100
/// drawn from its own stream of the seed ([`Domain::WALL_CLOCK`]), so a replay sees the same
/// dates and no other draw changes. At tick `t` handlers read this plus `t` ticks
/// ([`Ctx::wall_time`](tina_core::Ctx::wall_time)).
pub fn wall_clock_start(seed: u64) -> WallTime {
    let mut rng = SimRng::stream(seed, Domain::WALL_CLOCK);
    let secs = rng.range(WALL_START_MIN_SECS, WALL_START_MAX_SECS - 1);
    let nanos = rng.below(1_000_000_000);
    WallTime::from_unix_nanos(secs * 1_000_000_000 + nanos)
}

/// Virtual time never goes past this tick (2^63): runs are at most
/// [`TICKS_MAX`](crate::config::TICKS_MAX) + [`TICKS_MAX`](crate::config::TICKS_MAX) long
/// unless a far deadline makes time jump; a liveness phase that reaches it fails.
const TIME_LIMIT: u64 = 1 << 63;

/// Where the round loop is.
struct Progress {
    /// Virtual time of the current round, in ticks.
    now: u64,
    /// When the liveness phase started (`None`: still the faulty phase).
    liveness_at: Option<u64>,
    /// Nothing could run at the end of the last round (or the goal was reached early).
    quiescent: bool,
    /// Rounds run.
    rounds: u64,
}

struct Simulation<'s, 'a> {
    shards: Vec<Shard<'a, SimPlatform>>,
    world: &'s WorldRef,
    config: &'s SimConfig,
    faults: FaultConfig,
    watches: Vec<TypeWatch>,
    rng_sched: SimRng,
    rng_partition: SimRng,
    rng_crash: SimRng,
    rng_scenario: SimRng,
    quarantined_since: Vec<Option<u64>>,
    seen: Vec<Counters>,
    storm_ticks: u64,
    tick_ns: u64,
    shutdown_timeout: u64,
    /// The simulated calendar time at tick 0 ([`wall_clock_start`]).
    wall_start: WallTime,
}

impl<'s, 'a> Simulation<'s, 'a> {
    fn boot(
        spec: &'a SystemSpec<'a>,
        regions: &'a mut Regions,
        peers: &'a mut BulkPeers<'a>,
        config: &'s SimConfig,
        faults: FaultConfig,
        world: &'s WorldRef,
        scenario: &dyn Scenario,
    ) -> Result<Simulation<'s, 'a>, BootError> {
        let mut shards = Vec::with_capacity(regions.regions.len());
        let ports = bulk_ports(spec, &mut regions.bulk, peers)?;
        for ((i, blocks), ports) in regions.regions.iter_mut().enumerate().zip(ports) {
            let platform = crate::platform::sim_platform(i as u8, world);
            let mut shard = Shard::new(
                spec,
                ShardId(i as u8),
                RegionBlock::as_bytes(blocks),
                platform,
            )?;
            if shard.attach_bulk(ports).is_err() {
                return Err(BootError::Memory(tina_core::memory::MemoryError::Overflow));
            }
            shards.push(shard);
        }
        let n = shards.len();
        let seed = config.seed;
        let mut w = world.borrow_mut();
        w.trace.ev(Ev::Boot, &[seed, n as u64], || {
            format!("seed={seed} shards={n} faults: {faults}")
        });
        drop(w);
        Ok(Simulation {
            seen: shards.iter().map(|s| s.counters()).collect(),
            shards,
            world,
            config,
            faults,
            watches: scenario.watched_types(),
            rng_sched: SimRng::stream(seed, Domain::SCHEDULING),
            rng_partition: SimRng::stream(seed, Domain::PARTITIONS),
            rng_crash: SimRng::stream(seed, Domain::SHARD_CRASHES),
            rng_scenario: SimRng::stream(seed, Domain::SCENARIO),
            quarantined_since: vec![None; n],
            storm_ticks: 500,
            tick_ns: spec.tick_ns,
            shutdown_timeout: spec
                .shutdown_timeout
                .to_ticks(spec.tick_ns)
                .min(crate::config::TICKS_MAX),
            wall_start: wall_clock_start(seed),
        })
    }

    fn view(&self, quiescent: bool, f: &mut dyn FnMut(&SimView<'_, 'a>)) {
        let w = self.world.borrow();
        let view = SimView {
            shards: &self.shards,
            world: &w,
            quiescent,
        };
        f(&view);
    }

    /// The whole run: rounds until an outcome, then [`Simulation::finish`].
    fn run(&mut self, scenario: &mut dyn Scenario) -> Report {
        let mut at = Progress {
            now: 1,
            liveness_at: None,
            quiescent: false,
            rounds: 0,
        };
        let outcome = loop {
            if let Some(outcome) = self.round(&mut at, scenario) {
                break outcome;
            }
        };
        self.finish(outcome, &mut at, scenario)
    }

    /// One round (see the module's diagram): phase change, fault engine and operator,
    /// clients, every shard once, checkers, goal, next tick. `Some` ends the run.
    fn round(&mut self, at: &mut Progress, scenario: &mut dyn Scenario) -> Option<Outcome> {
        if let Some(outcome) = self.phase_change(at, scenario) {
            return Some(outcome);
        }
        at.rounds += 1;
        let (now, rounds) = (at.now, at.rounds);
        {
            let mut w = self.world.borrow_mut();
            w.now = now;
            w.round = rounds;
            let phase = w.phase;
            w.trace.ev(Ev::Round, &[rounds, now, phase as u64], || {
                format!("r{rounds} t{now} {phase:?}")
            });
        }
        if at.liveness_at.is_none() {
            self.fault_engine(now);
        }
        self.operator(now, at.liveness_at.is_some());
        // Clients.
        let events_before = self.world.borrow().kernel.client_events;
        let wake = {
            let mut w = self.world.borrow_mut();
            let mut env = Env {
                world: &mut w,
                rng: &mut self.rng_scenario,
            };
            scenario.poll(&mut env)
        };
        let (busy, deadline) = self.step_all(now);
        if let Some(v) = self.world.borrow().violations.first() {
            return Some(Outcome::Checker(v.clone()));
        }
        // Next tick.
        let client_changed = self.world.borrow().kernel.client_events != events_before;
        let next = self.next_tick(
            now,
            busy || client_changed || wake == Wake::Busy,
            deadline,
            wake,
            at.liveness_at,
        );
        at.quiescent = next.is_none();
        if let Some(outcome) = self.check_and_goal(at, scenario) {
            return Some(outcome);
        }
        match next {
            Some(t) => at.now = t.min(TIME_LIMIT),
            None if at.liveness_at.is_some() => {
                return Some(Outcome::Liveness(format!(
                    "the system went quiescent at t{now} without reaching the scenario's goal"
                )));
            }
            None => at.now = (now + 1).min(TIME_LIMIT),
        }
        None
    }

    /// Enters the liveness phase once the faulty phase is over (its length reached, or the
    /// system quiescent); in the liveness phase, fails the run once its bound has passed.
    fn phase_change(&mut self, at: &mut Progress, scenario: &mut dyn Scenario) -> Option<Outcome> {
        let now = at.now;
        if at.liveness_at.is_none() && (now >= self.config.ticks || at.quiescent) {
            at.liveness_at = Some(now);
            self.start_liveness(now, scenario);
        }
        let start = at.liveness_at?;
        if now >= start.saturating_add(self.config.liveness_ticks) {
            return Some(Outcome::Liveness(format!(
                "goal not reached within {} ticks after faults stopped (t{start}..t{now})",
                self.config.liveness_ticks
            )));
        }
        if now >= TIME_LIMIT {
            return Some(Outcome::Liveness(format!(
                "virtual time reached its limit (t{TIME_LIMIT}) without the goal (liveness phase from t{start})"
            )));
        }
        None
    }

    /// Steps every shard once at `now`, in an order shuffled by the scheduling stream;
    /// returns whether any shard has work left and the earliest deadline any reported.
    fn step_all(&mut self, now: u64) -> (bool, Option<u64>) {
        let mut order: Vec<usize> = (0..self.shards.len()).collect();
        self.rng_sched.shuffle(&mut order);
        let mut busy = false;
        let mut deadline: Option<u64> = None;
        for s in order {
            let r = self.step_shard(s, now);
            busy |= r.work_remaining;
            if let Some(d) = r.next_deadline {
                deadline = Some(deadline.map_or(d.ticks(), |x: u64| x.min(d.ticks())));
            }
        }
        (busy, deadline)
    }

    /// The checkers (every `check_every_rounds` rounds, and when quiescent), then the goal:
    /// reached in the liveness phase it passes the run; reached during the faulty phase it
    /// marks the system quiescent, so the next round stops the faults and confirms it.
    fn check_and_goal(
        &mut self,
        at: &mut Progress,
        scenario: &mut dyn Scenario,
    ) -> Option<Outcome> {
        if (at
            .rounds
            .is_multiple_of(self.config.check_every_rounds.max(1))
            || at.quiescent)
            && let Err(v) = self.run_checkers(scenario, at.quiescent)
        {
            return Some(Outcome::Checker(v));
        }
        if at.liveness_at.is_some() || at.quiescent || at.rounds.is_multiple_of(16) {
            let mut reached = false;
            self.view(at.quiescent, &mut |v| reached = scenario.goal(v));
            if reached {
                if at.liveness_at.is_some() {
                    return Some(Outcome::Pass);
                }
                at.quiescent = true;
            }
        }
        None
    }

    /// After the round loop: a pass is confirmed by a last run of the checkers and by a
    /// graceful shutdown, then the report is assembled.
    fn finish(
        &mut self,
        outcome: Outcome,
        at: &mut Progress,
        scenario: &mut dyn Scenario,
    ) -> Report {
        let outcome = match outcome {
            Outcome::Pass => match self.run_checkers(scenario, true) {
                Ok(()) => Outcome::Pass,
                Err(v) => Outcome::Checker(v),
            },
            o => o,
        };
        let mut summary = String::new();
        self.view(false, &mut |v| summary = scenario.summary(v));
        let mut shutdown = None;
        let outcome = match outcome {
            Outcome::Pass => match self.shutdown_phase(&mut at.now) {
                Ok(()) => {
                    shutdown = Some("clean".to_string());
                    Outcome::Pass
                }
                Err(v) if self.config.strict_shutdown => Outcome::Checker(v),
                Err(v) => {
                    shutdown = Some(v);
                    Outcome::Pass
                }
            },
            o => o,
        };
        self.view(false, &mut |v| summary = scenario.summary(v));
        let mut w = self.world.borrow_mut();
        let code = outcome.exit_code() as u64;
        w.trace.ev(Ev::Check, &[code], || format!("end {outcome}"));
        let (event_log, event_log_dropped) = w.trace.take_log();
        Report {
            seed: self.config.seed,
            tick_ns: self.tick_ns,
            outcome,
            trace_hash: w.trace.hash(),
            faults: self.faults,
            rounds: at.rounds,
            ticks: at.now,
            liveness_at: at.liveness_at,
            dispatches: self.shards.iter().map(|s| s.counters().dispatches).sum(),
            events: w.trace.events(),
            injected: w.injected,
            counters: self.shards.iter().map(|s| s.counters()).collect(),
            summary,
            shutdown,
            log_tail: w.log_tail.iter().cloned().collect(),
            event_log,
            event_log_dropped,
            sockets_peak: w.kernel.sockets_peak() as u64,
        }
    }

    /// After a passing run: a graceful shutdown of every shard (forced after the `SystemSpec`'s
    /// shutdown timeout), then every shard must have returned everything — no envelope,
    /// timer or I/O buffer in use, no descriptor left open, no operation pending.
    fn shutdown_phase(&mut self, now: &mut u64) -> Result<(), String> {
        let n = self.shards.len();
        for s in 0..n {
            self.shards[s].shutdown();
        }
        self.world
            .borrow_mut()
            .trace
            .ev(Ev::Phase, &[*now], || format!("shutdown from t{now}"));
        let timeout = self.shutdown_timeout;
        let start = *now;
        let mut forced = false;
        let mut quiet_rounds = 0;
        loop {
            *now = now.saturating_add(1);
            self.world.borrow_mut().now = *now;
            let mut order: Vec<usize> = (0..n).collect();
            self.rng_sched.shuffle(&mut order);
            // A stopped shard may still hold closes of orphaned descriptors for later
            // batches (it reports them as work remaining): keep stepping until they are out.
            let mut work = false;
            for s in order {
                work |= self.step_shard(s, *now).work_remaining;
            }
            if let Some(v) = self.world.borrow().violations.first() {
                return Err(v.clone());
            }
            let stopped = !work
                && self
                    .shards
                    .iter()
                    .all(|s| matches!(s.status(), ShardStatus::Stopped | ShardStatus::Quarantined));
            let pending = self
                .world
                .borrow()
                .kernel
                .pending
                .iter()
                .any(|p| !p.is_empty());
            if stopped && !pending {
                quiet_rounds += 1;
                if quiet_rounds >= 2 {
                    break;
                }
            } else {
                quiet_rounds = 0;
            }
            if !forced && *now >= start.saturating_add(timeout) {
                forced = true;
                for s in 0..n {
                    if self.shards[s].status() != ShardStatus::Stopped {
                        self.shards[s].force_stop();
                    }
                }
            }
            if *now >= start.saturating_add(timeout).saturating_add(1_000) {
                return Err(format!(
                    "shutdown: I/O still pending {} ticks after the shutdown was forced",
                    1_000
                ));
            }
        }
        let w = self.world.borrow();
        for (s, shard) in self.shards.iter().enumerate() {
            let (envelopes, timers, buffers) = shard.resources_in_use();
            let fds = w.kernel.open_fds(s as u8);
            let bulk = shard.bulk_in_use();
            if (envelopes, timers, buffers, fds, bulk) != (0, 0, 0, 0, 0)
                || shard.live_isolates() != 0
            {
                return Err(format!(
                    "shard {s} leaked after shutdown{}: {} isolates, {envelopes} envelopes, {timers} timers, {buffers} I/O buffers, {fds} descriptors, {bulk} bulk slots",
                    if forced { " (forced)" } else { "" },
                    shard.live_isolates()
                ));
            }
        }
        Ok(())
    }

    fn run_checkers(&mut self, scenario: &mut dyn Scenario, quiescent: bool) -> Result<(), String> {
        {
            let mut w = self.world.borrow_mut();
            let r = check::builtin(&self.shards, &mut w, &self.watches);
            let ok = r.is_ok();
            w.trace
                .ev(Ev::Check, &[u64::from(ok)], || format!("builtin {r:?}"));
            r?;
        }
        let mut result = Ok(());
        self.view(quiescent, &mut |v| result = scenario.check(v));
        let ok = result.is_ok();
        self.world
            .borrow_mut()
            .trace
            .ev(Ev::Check, &[u64::from(ok) + 2], || {
                format!("scenario {result:?}")
            });
        result
    }

    fn step_shard(&mut self, s: usize, now: u64) -> tina_core::StepReport {
        // Snapshot which pending completions go to live owners (for the generation check).
        {
            let mut w = self.world.borrow_mut();
            let shard = &self.shards[s];
            for p in w.kernel.pending[s].iter_mut() {
                p.owner_live = shard.is_live(p.owner);
            }
            w.tallies[s] = Default::default();
        }
        let wall = self
            .wall_start
            .saturating_add(Duration::from_ticks_of(now, self.tick_ns));
        let r = self.shards[s].step(Clock::new(Instant::from_ticks(now), Some(wall)));
        let c = self.shards[s].counters();
        let before = self.seen[s];
        self.seen[s] = c;
        let mut w = self.world.borrow_mut();
        let tally = w.tallies[s];
        let delivered = c.io_completed - before.io_completed;
        let stale = c.io_stale_completions - before.io_stale_completions;
        if delivered != tally.to_live || stale != tally.to_dead || c.io_bogus_completions != 0 {
            let msg = format!(
                "shard {s}: completions to live owners {} / delivered {delivered}; to torn-down owners {} / reclaimed {stale}; bogus {} (a completion reached a wrong generation?)",
                tally.to_live, tally.to_dead, c.io_bogus_completions
            );
            w.violations.push(msg);
        }
        let digest = counters_digest(&c);
        let (envelopes, timers, buffers) = self.shards[s].resources_in_use();
        let resources =
            u64::from(envelopes) | (u64::from(timers) << 21) | (u64::from(buffers) << 42);
        w.trace.ev(
            Ev::Step,
            &[
                s as u64,
                u64::from(r.dispatched),
                u64::from(r.timers_fired),
                u64::from(r.work_remaining),
                r.next_deadline.map_or(u64::MAX, |d| d.ticks()),
                u64::from(r.live_isolates),
                r.status as u64,
                digest,
                resources,
            ],
            || {
                format!(
                    "s{s} {r:?} counters#{digest:016x} in-use: {envelopes} envelopes, {timers} timers, {buffers} I/O buffers"
                )
            },
        );
        if matches!(
            r.status,
            ShardStatus::Quarantined | ShardStatus::AbortRequested
        ) && self.quarantined_since[s].is_none()
        {
            self.quarantined_since[s] = Some(now);
        }
        r
    }

    /// Partitions, whole-shard crashes and TCP resets (faulty phase only).
    fn fault_engine(&mut self, now: u64) {
        let mut w = self.world.borrow_mut();
        let n = self.shards.len();
        // Heal or start partitions.
        if w.partition.as_ref().is_some_and(|p| p.heal_at <= now) {
            w.partition = None;
            w.trace
                .ev(Ev::Fault, &[now], || "partition healed".to_string());
        } else if w.partition.is_none()
            && n + 1 >= 2
            && self.rng_partition.chance(self.faults.partition)
        {
            // Each node (shards and the outside) picks a side; make sure both sides exist.
            let mut side: Vec<bool> = (0..=n)
                .map(|_| self.rng_partition.chance(Ratio::new(1, 2)))
                .collect();
            if side.iter().all(|&b| b == side[0]) {
                let i = self.rng_partition.below(n as u64 + 1) as usize;
                side[i] = !side[i];
            }
            let len = self
                .rng_partition
                .range(1, u64::from(self.faults.partition_ticks_max.max(1)));
            let mask = side
                .iter()
                .enumerate()
                .fold(0u64, |m, (i, &b)| m | (u64::from(b) << i));
            w.partition = Some(Partition {
                side,
                heal_at: now + len,
            });
            w.inject(FaultKind::Partition, &[mask, len], || {
                format!("sides mask {mask:#b} for {len} ticks")
            });
            w.net_cut_partition();
        }
        // Whole-shard crashes.
        for s in 0..n {
            if self.rng_crash.chance(self.faults.shard_crash)
                && self.shards[s].status() == ShardStatus::Running
                && w.traps[s].storm_until.is_none()
            {
                let t = &mut w.traps[s];
                t.storm_until = Some(now + self.storm_ticks);
                t.storm_counted = false;
                w.trace.ev(Ev::Fault, &[s as u64, now], || {
                    format!("shard-crash armed on s{s}")
                });
            }
            if w.traps[s].storm_until.is_some_and(|u| u <= now) {
                w.traps[s].storm_until = None;
            }
        }
        // TCP resets.
        if self.faults.tcp_reset.is_possible() {
            let rng = &mut w.rng_sockets;
            if rng.chance(self.faults.tcp_reset) {
                let conns = w.kernel.established();
                let pick = w.rng_sockets.below(conns.len() as u64) as usize;
                if let Some(&id) = conns.get(pick) {
                    w.kernel.reset_pair(id);
                    w.inject(FaultKind::TcpReset, &[id.0 as u64], || {
                        format!("connection #{}", id.0)
                    });
                }
            }
        }
    }

    /// The simulated operator revives quarantined shards after a while (at once in the
    /// liveness phase).
    fn operator(&mut self, now: u64, liveness: bool) {
        for s in 0..self.shards.len() {
            let Some(since) = self.quarantined_since[s] else {
                continue;
            };
            if !liveness && now < since + u64::from(self.faults.revive_after_ticks) {
                continue;
            }
            self.quarantined_since[s] = None;
            let r = self.shards[s].revive(tina_core::Instant::from_ticks(now));
            let mut w = self.world.borrow_mut();
            w.trace
                .ev(Ev::Fault, &[s as u64, u64::from(r.is_ok())], || {
                    format!("operator revives s{s}: {r:?}")
                });
            drop(w);
            let status = self.shards[s].status();
            if matches!(
                status,
                ShardStatus::Quarantined | ShardStatus::AbortRequested
            ) {
                self.quarantined_since[s] = Some(now);
            }
        }
    }

    fn start_liveness(&mut self, now: u64, scenario: &mut dyn Scenario) {
        {
            let mut w = self.world.borrow_mut();
            w.phase = Phase::Liveness;
            w.faults = FaultConfig {
                revive_after_ticks: 0,
                ..FaultConfig::NONE
            };
            w.partition = None;
            for t in w.traps.iter_mut() {
                t.storm_until = None;
            }
            w.trace.ev(Ev::Phase, &[now], || {
                format!("liveness phase from t{now}: faults stop, partitions heal")
            });
        }
        self.operator(now, true);
        self.view(false, &mut |v| scenario.on_liveness(v));
    }

    /// The next tick to simulate, or `None` when nothing can ever happen again.
    fn next_tick(
        &self,
        now: u64,
        busy: bool,
        deadline: Option<u64>,
        wake: Wake,
        liveness_at: Option<u64>,
    ) -> Option<u64> {
        if busy {
            return Some(now + 1);
        }
        let w = self.world.borrow();
        if io_ready(&w, now) {
            return Some(now + 1);
        }
        let mut best: Option<u64> = None;
        let mut consider =
            |t: u64| best = Some(best.map_or(t.max(now + 1), |b: u64| b.min(t.max(now + 1))));
        if let Some(d) = deadline {
            consider(d);
        }
        if let Some(t) = w.net.next_delivery() {
            consider(t);
        }
        if let Some(t) = w.next_io_time() {
            consider(t);
        }
        if let Wake::At(t) = wake {
            consider(t.ticks());
        }
        if let Some(p) = &w.partition {
            consider(p.heal_at);
        }
        for (s, since) in self.quarantined_since.iter().enumerate() {
            if let Some(since) = since {
                consider(since + u64::from(self.faults.revive_after_ticks));
            }
            if let Some(u) = w.traps[s].storm_until {
                consider(u);
            }
        }
        if liveness_at.is_none() && self.faults.any() {
            // Faults can still strike: at the latest, go on at the end of the phase.
            consider(self.config.ticks);
        }
        best
    }
}

/// Whether some pending operation could complete at the next step.
fn io_ready(w: &World, now: u64) -> bool {
    use crate::kernel::TcpState;
    for (s, ops) in w.kernel.pending.iter().enumerate() {
        if w.kernel.cancel[s] && !ops.is_empty() {
            return true;
        }
        for p in ops {
            if p.not_before > now + 1 {
                continue;
            }
            if !p.error_decided && w.faults.io_error.is_possible() {
                return true;
            }
            let sock = |fd| {
                w.kernel
                    .fd_socket(s as u8, fd)
                    .ok()
                    .map(|id| (id, w.kernel.sock(id)))
            };
            let ready = match p.op {
                IoOp::Accept { listener } => match sock(listener) {
                    Some((_, so)) => match &so.state {
                        TcpState::Listening { queue, .. } => !queue.is_empty(),
                        _ => true,
                    },
                    None => true,
                },
                IoOp::Recv { socket, .. } => match sock(socket) {
                    Some((id, so)) => match so.state {
                        TcpState::Established { peer, ready_at } => {
                            let cut =
                                w.partitioned(Node::Shard(s as u8), w.kernel.sock(peer).owner);
                            so.reset
                                || so.read_shut
                                || (ready_at <= now + 1
                                    && (w.kernel.readable(id, now + 1, cut) > 0
                                        || w.kernel.at_eof(id, now + 1, cut)))
                        }
                        _ => true,
                    },
                    None => true,
                },
                IoOp::Send { socket, .. } | IoOp::SendFile { out: socket, .. } => {
                    match sock(socket) {
                        Some((_, so)) => match so.state {
                            TcpState::Established { peer, ready_at } => {
                                so.reset
                                    || (ready_at <= now + 1
                                        && w.kernel.sock(peer).rx_len
                                            < crate::kernel::RECV_BUFFER_SIZE)
                            }
                            _ => true,
                        },
                        None => true,
                    }
                }
                IoOp::Connect { socket, .. } => match sock(socket) {
                    Some((_, so)) => match so.state {
                        TcpState::Established { ready_at, .. }
                        | TcpState::Failed { ready_at, .. } => ready_at <= now + 1,
                        _ => true,
                    },
                    None => true,
                },
                IoOp::RecvFrom { socket, .. } => match sock(socket) {
                    Some((_, so)) => so.dgrams.front().is_some_and(|d| d.ready_at <= now + 1),
                    None => true,
                },
                _ => true,
            };
            if ready {
                return true;
            }
        }
    }
    false
}

fn counters_digest(c: &Counters) -> u64 {
    let words = c.to_array();
    let mut h = crate::hash::Hasher128::new();
    for w in words {
        h.word(w);
    }
    (h.finish().0 >> 64) as u64
}
