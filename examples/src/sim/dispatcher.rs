//! The dispatcher scenario: [`crate::dispatcher`] on every shard, with workers that crash
//! and restart, some of them on another shard.
//!
//! Each shard runs a `Dispatcher` (which spawns its local workers) and two static `Worker`s
//! that serve the *next* shard's dispatcher across the network: they check in with it at
//! every (re)start, get jobs over the simulated network and report back. Workers crash on
//! every k-th job; supervision restarts them with new handles, and sends to the old handles
//! are refused (`StaleHandle` locally, a counted stale delivery across shards).
//!
//! Checkers: a dispatcher never counts more finished jobs than it handed out; a handle that
//! was seen live and then died is **never** live again (stale handles stay stale), and the
//! state behind it is unreachable. Goal: quiescence with every dispatcher having handed out
//! all its jobs and seen some of them done.

use crate::dispatcher::{Dispatcher, DispatcherArgs, Worker, WorkerArgs};
use std::collections::BTreeSet;
use tina_core::{
    ChildSpec, Duration, GroupSpec, Handle, Restart, ShardConfig, ShardId, ShardSpec, SystemSpec,
    TypeId, TypeSpec,
};
use tina_sim::cli::ScenarioOptions;
use tina_sim::{FaultKind, FaultSet, Report, Scenario, SimConfig, SimView, TypeWatch, watch};

/// Shards in the dispatcher system.
pub const SHARD_COUNT: usize = 3;
/// Jobs each dispatcher hands out.
pub const JOBS: u64 = 300;

/// The fault kinds the dispatcher exercises: all but I/O faults (it does no I/O).
pub const FAULTS: FaultSet = FaultSet::ALL.without(FaultSet::of(&[
    FaultKind::IoError,
    FaultKind::IoDelay,
    FaultKind::IoShort,
    FaultKind::IoReorder,
    FaultKind::TcpReset,
]));

/// The dispatcher scenario's checks.
#[derive(Default)]
pub struct DispatcherScenario {
    live: BTreeSet<u64>,
    dead: BTreeSet<u64>,
}

impl Scenario for DispatcherScenario {
    fn faults(&self) -> FaultSet {
        FAULTS
    }

    fn watched_types(&self) -> Vec<TypeWatch> {
        vec![watch::<Dispatcher>("Dispatcher"), watch::<Worker>("Worker")]
    }

    fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
        for (h, d) in view.isolates::<Dispatcher>() {
            if d.done > d.sent {
                return Err(format!(
                    "{h}: {} jobs done but only {} sent",
                    d.done, d.sent
                ));
            }
        }
        let now: BTreeSet<u64> = view
            .handles::<Worker>()
            .iter()
            .map(|h| h.to_bits())
            .collect();
        for &h in self.live.difference(&now) {
            self.dead.insert(h);
        }
        for &bits in &self.dead {
            let h = Handle::from_bits(bits);
            if now.contains(&bits) || view.shard(usize::from(h.shard().0)).is_live(h) {
                return Err(format!("stale worker handle {h} is live again"));
            }
            if view.state::<Worker>(h).is_some() {
                return Err(format!("stale worker handle {h} still reaches a worker"));
            }
        }
        self.live = now;
        Ok(())
    }

    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        let ds = view.isolates::<Dispatcher>();
        view.quiescent()
            && ds.len() == view.shard_count()
            && ds.iter().all(|(_, d)| d.sent == JOBS && d.done > 0)
    }

    fn summary(&self, view: &SimView<'_, '_>) -> String {
        let ds = view.isolates::<Dispatcher>();
        let c = view.counters_total();
        format!(
            "dispatchers sent={} done={} stale-refused={} check-ins={}; restarts={} stale-deliveries={} recoveries={} dead handles tracked={}",
            ds.iter().map(|(_, d)| d.sent).sum::<u64>(),
            ds.iter().map(|(_, d)| d.done).sum::<u64>(),
            ds.iter().map(|(_, d)| d.stale_refused).sum::<u64>(),
            ds.iter().map(|(_, d)| d.check_ins).sum::<u64>(),
            c.restarts,
            c.stale_deliveries,
            c.shard_recoveries,
            self.dead.len(),
        )
    }
}

/// Runs the dispatcher scenario.
pub fn run(config: &SimConfig, _options: &ScenarioOptions) -> Report {
    let types = [
        TypeSpec::of::<Dispatcher>("dispatcher").capacity(1),
        TypeSpec::of::<Worker>("worker")
            .capacity(12)
            .mailbox_capacity(64),
    ];
    let args = DispatcherArgs {
        workers: 4,
        crash_every: 5,
        jobs: JOBS,
    };
    // Remote workers serve the next shard's dispatcher: slot 0, first generation at boot.
    let remote = |s: usize, index: u32| {
        let target = ShardId(((s + 1) % SHARD_COUNT) as u8);
        let dispatcher = Handle::new(target, TypeId(0), 0, 1).unwrap_or(Handle::NONE);
        ChildSpec::isolate::<Worker>(
            &WorkerArgs {
                dispatcher,
                index,
                crash_every: 7,
            },
            Restart::Permanent,
        )
    };
    let children: Vec<[ChildSpec<'static>; 3]> = (0..SHARD_COUNT)
        .map(|s| {
            [
                ChildSpec::isolate::<Dispatcher>(&args, Restart::Permanent),
                remote(s, 2),
                remote(s, 3),
            ]
        })
        .collect();
    let shards: Vec<ShardSpec<'_>> = children
        .iter()
        .map(|c| ShardSpec {
            // Workers crash on purpose all the time: give the group room for that.
            root: GroupSpec::one_for_one(c)
                .dynamic(8)
                .budget(1_000, Duration::from_ticks(1_000)),
        })
        .collect();
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        message_pool_size: 512,
        timer_entries: 64,
        timer_spokes: 64,
        io_buffer_count: 0,
        log_entries: 64,
        transfer_buffer_count: 0,
        ..ShardConfig::DEFAULT
    };
    spec.ring_capacity = 64;
    let mut scenario = DispatcherScenario::default();
    tina_sim::run(&spec, config, &mut scenario)
}
