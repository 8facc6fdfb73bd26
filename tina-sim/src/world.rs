//! The simulated world every shard's platform shares: virtual time, the network, the
//! simulated kernel (sockets, files), fault state and the trace.
//!
//! All shards run on one thread, so the world is one plain struct behind an
//! `Rc<RefCell<_>>`; each platform part borrows it for the duration of one call from the core
//! and never while user code runs (the trap drops its borrow before calling the handler).
//! The world's behaviour is split by concern: the network in `net`, sockets and files in
//! `kernel`, I/O operations and socket control against them in `ops`, the platform glue in
//! `platform`.

use crate::config::{FaultConfig, FaultKind};
use crate::kernel::Kernel;
use crate::net::Network;
use crate::rng::{Domain, SimRng};
use crate::trace::{Ev, Trace};
use core::net::{IpAddr, Ipv4Addr};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use tina_core::Handle;

/// The two phases of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Faults are injected.
    Faulty,
    /// Faults have stopped and partitions healed; the scenario must reach its goal.
    Liveness,
}

/// A participant in the simulated network: a shard, or the outside world (the scenario's
/// clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    /// A shard.
    Shard(u8),
    /// The scenario's simulated clients.
    Outside,
}

impl Node {
    /// Index in per-node tables (shards first, the outside last).
    pub(crate) fn index(self, shard_count: usize) -> usize {
        match self {
            Node::Shard(s) => usize::from(s),
            Node::Outside => shard_count,
        }
    }

    /// The IP address sockets of this node get when they bind nothing themselves
    /// (documentation ranges: nothing here is ever a real address).
    pub fn ip(self) -> IpAddr {
        match self {
            Node::Shard(s) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100u8.wrapping_add(s))),
            Node::Outside => IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        }
    }
}

/// A symmetric partition: nodes on different sides cannot talk until it heals.
#[derive(Clone, Debug)]
pub(crate) struct Partition {
    /// Side of each node (shards, then the outside).
    pub(crate) side: Vec<bool>,
    pub(crate) heal_at: u64,
}

/// The per-shard state of the trap.
pub(crate) struct TrapState {
    pub(crate) rng: SimRng,
    /// A whole-shard crash is in progress until this tick (every call fails).
    pub(crate) storm_until: Option<u64>,
    /// Whether the current storm has been counted as an injected fault.
    pub(crate) storm_counted: bool,
}

/// Expectations about completions, to check that none reaches a wrong generation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CompletionTally {
    pub(crate) to_live: u64,
    pub(crate) to_dead: u64,
}

/// The shared world.
pub(crate) struct World {
    pub(crate) shard_count: usize,
    pub(crate) now: u64,
    pub(crate) round: u64,
    pub(crate) phase: Phase,
    pub(crate) faults: FaultConfig,
    pub(crate) latency: u64,
    pub(crate) trace: Trace,
    pub(crate) net: Network,
    pub(crate) kernel: Kernel,
    pub(crate) traps: Vec<TrapState>,
    pub(crate) partition: Option<Partition>,
    pub(crate) injected: [u64; FaultKind::COUNT],
    pub(crate) tallies: Vec<CompletionTally>,
    /// Highest generation seen live per (shard, type, slot), from handles the platform saw
    /// acting (senders, I/O owners, loggers).
    pub(crate) generations: BTreeMap<(u8, u8, u32), u32>,
    /// Violations found inside platform calls (reported by the checkers).
    pub(crate) violations: Vec<String>,
    pub(crate) rng_drop: SimRng,
    pub(crate) rng_delay: SimRng,
    pub(crate) rng_sockets: SimRng,
    /// The last log lines of all shards (for failure reports).
    pub(crate) log_tail: VecDeque<String>,
}

/// Log lines kept for failure reports.
pub(crate) const LOG_TAIL_MAX: usize = 40;

/// The world as the platform parts hold it.
pub(crate) type WorldRef = Rc<RefCell<World>>;

impl World {
    pub(crate) fn new(
        seed: u64,
        shard_count: usize,
        ring_capacity: impl Fn(u8, u8) -> usize,
        faults: FaultConfig,
        latency: u64,
        record: bool,
        log_max: usize,
    ) -> World {
        World {
            shard_count,
            now: 0,
            round: 0,
            phase: Phase::Faulty,
            faults,
            latency,
            trace: Trace::new(record, log_max),
            net: Network::new(shard_count, ring_capacity),
            kernel: Kernel::new(seed, shard_count),
            traps: (0..shard_count)
                .map(|s| TrapState {
                    rng: SimRng::stream(seed, Domain::shard_trap(s as u8)),
                    storm_until: None,
                    storm_counted: false,
                })
                .collect(),
            partition: None,
            injected: [0; FaultKind::COUNT],
            tallies: vec![CompletionTally::default(); shard_count],
            generations: BTreeMap::new(),
            violations: Vec::new(),
            rng_drop: SimRng::stream(seed, Domain::NET_DROP),
            rng_delay: SimRng::stream(seed, Domain::NET_DELAY),
            rng_sockets: SimRng::stream(seed, Domain::SOCKETS),
            log_tail: VecDeque::new(),
        }
    }

    /// Counts one injected fault and records it.
    pub(crate) fn inject(&mut self, kind: FaultKind, words: &[u64], text: impl FnOnce() -> String) {
        self.injected[kind.index()] += 1;
        self.trace
            .ev(Ev::Fault, words, || format!("{} {}", kind.name(), text()));
    }

    /// Whether two nodes are on different sides of the current partition.
    pub(crate) fn partitioned(&self, a: Node, b: Node) -> bool {
        match &self.partition {
            Some(p) => p.side[a.index(self.shard_count)] != p.side[b.index(self.shard_count)],
            None => false,
        }
    }

    /// A delay for one network transmission: the base latency plus, under the `net-delay`
    /// fault, 1..=max extra ticks.
    pub(crate) fn transmission_delay(&mut self) -> u64 {
        let mut d = self.latency;
        if self.rng_delay.chance(self.faults.net_delay) {
            let extra = self
                .rng_delay
                .range(1, u64::from(self.faults.net_delay_ticks_max.max(1)));
            d += extra;
            self.injected[FaultKind::NetDelay.index()] += 1;
        }
        d
    }

    /// Notes a handle seen acting now (it is live): its generation must never go down.
    pub(crate) fn observe_live(&mut self, h: Handle) {
        if h.is_none() {
            return;
        }
        let key = (h.shard().0, h.type_id().0, h.slot());
        let g = h.generation();
        match self.generations.get_mut(&key) {
            Some(seen) if *seen > g => {
                let msg =
                    format!("generation went down: {h} acted after generation {seen} of that slot");
                self.violations.push(msg);
            }
            Some(seen) => *seen = g,
            None => {
                self.generations.insert(key, g);
            }
        }
    }
}
