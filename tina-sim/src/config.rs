//! What a run does: the seed, its length, how often checkers run, and which faults it injects.
//!
//! Every probability is an integer [`Ratio`]; every duration is in ticks. A [`FaultConfig`]
//! is plain data and prints as one banner line per parameter, so a failing run's output says
//! exactly what was injected. [`FaultConfig::swarm`] derives a per-seed random subset of
//! faults and rates ("swarm testing": each seed stresses a different mix, so rare
//! interactions that a uniform mix would dilute get found).

use crate::rng::{Domain, Ratio, SimRng};
use core::fmt;

/// Every kind of fault the simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// An I/O operation fails (socket ops reset the connection, file ops get `EIO`,
    /// accept gets `EMFILE`, connect times out).
    IoError,
    /// An I/O completion is delayed by some ticks.
    IoDelay,
    /// A read or write transfers fewer bytes than it could (short read/write).
    IoShort,
    /// Ready I/O completions are reported in a shuffled order.
    IoReorder,
    /// An established TCP connection is reset out of the blue.
    TcpReset,
    /// A cross-shard message (or UDP datagram) is lost.
    NetDrop,
    /// A cross-shard message or TCP segment is delayed.
    NetDelay,
    /// The shards (and the outside world) are split in two sides that cannot talk, until the
    /// partition heals.
    Partition,
    /// A handler call crashes the isolate instead of running (the message is lost).
    IsolateCrash,
    /// A handler runs and then panics (its sends happened, its effect is lost); trapped.
    HandlerPanic,
    /// An `init` call fails (a spawn returns `InitFailed`; a restart counts as a failure).
    InitFailure,
    /// The whole shard crashes: every handler and init call on it fails until its root
    /// supervisor gives up and the shard recovers (or, too often, is quarantined and later
    /// revived by the simulated operator).
    ShardCrash,
}

impl FaultKind {
    /// How many kinds there are.
    pub const COUNT: usize = 12;

    /// All kinds, in a fixed order.
    pub const ALL: [FaultKind; FaultKind::COUNT] = [
        FaultKind::IoError,
        FaultKind::IoDelay,
        FaultKind::IoShort,
        FaultKind::IoReorder,
        FaultKind::TcpReset,
        FaultKind::NetDrop,
        FaultKind::NetDelay,
        FaultKind::Partition,
        FaultKind::IsolateCrash,
        FaultKind::HandlerPanic,
        FaultKind::InitFailure,
        FaultKind::ShardCrash,
    ];

    /// Position in [`FaultKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kebab-case name used in banners and coverage summaries.
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::IoError => "io-error",
            FaultKind::IoDelay => "io-delay",
            FaultKind::IoShort => "io-short",
            FaultKind::IoReorder => "io-reorder",
            FaultKind::TcpReset => "tcp-reset",
            FaultKind::NetDrop => "net-drop",
            FaultKind::NetDelay => "net-delay",
            FaultKind::Partition => "partition",
            FaultKind::IsolateCrash => "isolate-crash",
            FaultKind::HandlerPanic => "handler-panic",
            FaultKind::InitFailure => "init-failure",
            FaultKind::ShardCrash => "shard-crash",
        }
    }
}

/// A set of fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FaultSet(u32);

impl FaultSet {
    /// No kind.
    pub const NONE: FaultSet = FaultSet(0);
    /// Every kind.
    pub const ALL: FaultSet = FaultSet((1 << FaultKind::COUNT) - 1);

    /// A set of the given kinds.
    pub const fn of(kinds: &[FaultKind]) -> FaultSet {
        let mut bits = 0;
        let mut i = 0;
        while i < kinds.len() {
            bits |= 1 << kinds[i] as u32;
            i += 1;
        }
        FaultSet(bits)
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: FaultKind) -> bool {
        self.0 & (1 << kind as u32) != 0
    }

    /// The set without `kinds`.
    pub const fn without(self, kinds: FaultSet) -> FaultSet {
        FaultSet(self.0 & !kinds.0)
    }
}

/// Which faults a run injects and how often. All zero (never) by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FaultConfig {
    /// Per I/O operation: fail it.
    pub io_error: Ratio,
    /// Per I/O operation: delay its completion by 1..=`io_delay_ticks_max` ticks.
    pub io_delay: Ratio,
    /// Longest I/O delay.
    pub io_delay_ticks_max: u32,
    /// Per read/write: transfer fewer bytes than possible.
    pub io_short: Ratio,
    /// Per shard step with several ready completions: report them shuffled.
    pub io_reorder: Ratio,
    /// Per round: reset one established TCP connection.
    pub tcp_reset: Ratio,
    /// Per cross-shard message or UDP datagram: lose it.
    pub net_drop: Ratio,
    /// Per cross-shard message or TCP write: delay it by 1..=`net_delay_ticks_max` ticks.
    pub net_delay: Ratio,
    /// Longest network delay.
    pub net_delay_ticks_max: u32,
    /// Per round without a partition: start one.
    pub partition: Ratio,
    /// Longest partition (it heals after 1..=this many ticks).
    pub partition_ticks_max: u32,
    /// Per handler call: crash the isolate instead of running it.
    pub isolate_crash: Ratio,
    /// Per handler call: run it, then panic.
    pub handler_panic: Ratio,
    /// Per `init` call: fail it.
    pub init_failure: Ratio,
    /// Per round and shard: crash the whole shard.
    pub shard_crash: Ratio,
    /// Ticks after which the simulated operator revives a quarantined shard.
    pub revive_after_ticks: u32,
}

impl FaultConfig {
    /// No faults at all.
    pub const NONE: FaultConfig = FaultConfig {
        io_error: Ratio::NEVER,
        io_delay: Ratio::NEVER,
        io_delay_ticks_max: 0,
        io_short: Ratio::NEVER,
        io_reorder: Ratio::NEVER,
        tcp_reset: Ratio::NEVER,
        net_drop: Ratio::NEVER,
        net_delay: Ratio::NEVER,
        net_delay_ticks_max: 0,
        partition: Ratio::NEVER,
        partition_ticks_max: 0,
        isolate_crash: Ratio::NEVER,
        handler_panic: Ratio::NEVER,
        init_failure: Ratio::NEVER,
        shard_crash: Ratio::NEVER,
        revive_after_ticks: 200,
    };

    /// The rate of one kind.
    pub fn rate(&self, kind: FaultKind) -> Ratio {
        match kind {
            FaultKind::IoError => self.io_error,
            FaultKind::IoDelay => self.io_delay,
            FaultKind::IoShort => self.io_short,
            FaultKind::IoReorder => self.io_reorder,
            FaultKind::TcpReset => self.tcp_reset,
            FaultKind::NetDrop => self.net_drop,
            FaultKind::NetDelay => self.net_delay,
            FaultKind::Partition => self.partition,
            FaultKind::IsolateCrash => self.isolate_crash,
            FaultKind::HandlerPanic => self.handler_panic,
            FaultKind::InitFailure => self.init_failure,
            FaultKind::ShardCrash => self.shard_crash,
        }
    }

    fn rate_mut(&mut self, kind: FaultKind) -> &mut Ratio {
        match kind {
            FaultKind::IoError => &mut self.io_error,
            FaultKind::IoDelay => &mut self.io_delay,
            FaultKind::IoShort => &mut self.io_short,
            FaultKind::IoReorder => &mut self.io_reorder,
            FaultKind::TcpReset => &mut self.tcp_reset,
            FaultKind::NetDrop => &mut self.net_drop,
            FaultKind::NetDelay => &mut self.net_delay,
            FaultKind::Partition => &mut self.partition,
            FaultKind::IsolateCrash => &mut self.isolate_crash,
            FaultKind::HandlerPanic => &mut self.handler_panic,
            FaultKind::InitFailure => &mut self.init_failure,
            FaultKind::ShardCrash => &mut self.shard_crash,
        }
    }

    /// Sets the rate of one kind.
    pub fn with(mut self, kind: FaultKind, rate: Ratio) -> FaultConfig {
        *self.rate_mut(kind) = rate;
        if self.io_delay_ticks_max == 0 {
            self.io_delay_ticks_max = 8;
        }
        if self.net_delay_ticks_max == 0 {
            self.net_delay_ticks_max = 8;
        }
        if self.partition_ticks_max == 0 {
            self.partition_ticks_max = 200;
        }
        self
    }

    /// Whether any fault is enabled.
    pub fn any(&self) -> bool {
        FaultKind::ALL.iter().any(|&k| self.rate(k).is_possible())
    }

    /// Swarm mode: from the seed's `SWARM` stream, enable each kind in `applicable` with
    /// probability 1/2 and give it a rate picked from a small menu of its own.
    pub fn swarm(seed: u64, applicable: FaultSet) -> FaultConfig {
        let mut rng = SimRng::stream(seed, Domain::SWARM);
        let mut c = FaultConfig::NONE;
        for kind in FaultKind::ALL {
            // Always draw, so the choice for one kind never depends on another's applicability.
            let on = rng.chance(Ratio::new(1, 2));
            let menu: &[Ratio] = match kind {
                FaultKind::IoError => &[Ratio::new(1, 50), Ratio::new(1, 200), Ratio::new(1, 1000)],
                FaultKind::IoDelay => &[Ratio::new(1, 4), Ratio::new(1, 20), Ratio::new(1, 100)],
                FaultKind::IoShort => &[Ratio::new(1, 2), Ratio::new(1, 10), Ratio::new(1, 50)],
                FaultKind::IoReorder => &[Ratio::new(1, 2), Ratio::new(1, 10)],
                FaultKind::TcpReset => &[Ratio::new(1, 100), Ratio::new(1, 500)],
                FaultKind::NetDrop => &[Ratio::new(1, 20), Ratio::new(1, 100), Ratio::new(1, 500)],
                FaultKind::NetDelay => &[Ratio::new(1, 4), Ratio::new(1, 20), Ratio::new(1, 100)],
                FaultKind::Partition => &[Ratio::new(1, 200), Ratio::new(1, 1000)],
                FaultKind::IsolateCrash => {
                    &[Ratio::new(1, 100), Ratio::new(1, 500), Ratio::new(1, 2000)]
                }
                FaultKind::HandlerPanic => &[Ratio::new(1, 200), Ratio::new(1, 1000)],
                FaultKind::InitFailure => &[Ratio::new(1, 2), Ratio::new(1, 5)],
                FaultKind::ShardCrash => &[Ratio::new(1, 1000), Ratio::new(1, 4000)],
            };
            debug_assert!(!menu.is_empty(), "every fault kind has a menu of rates");
            let pick = *rng.pick(menu).unwrap_or(&Ratio::NEVER);
            if on && applicable.contains(kind) {
                *c.rate_mut(kind) = pick;
            }
        }
        c.io_delay_ticks_max = rng.range(1, 20) as u32;
        c.net_delay_ticks_max = rng.range(1, 20) as u32;
        c.partition_ticks_max = rng.range(20, 400) as u32;
        c.revive_after_ticks = rng.range(50, 500) as u32;
        c
    }
}

impl fmt::Display for FaultConfig {
    /// One `name=value` per parameter, space separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in FaultKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", kind.name(), self.rate(*kind))?;
        }
        write!(
            f,
            " io-delay-max={} net-delay-max={} partition-max={} revive-after={}",
            self.io_delay_ticks_max,
            self.net_delay_ticks_max,
            self.partition_ticks_max,
            self.revive_after_ticks
        )
    }
}

/// How faults are chosen for a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// No faults.
    None,
    /// A per-seed random mix ([`FaultConfig::swarm`]).
    Swarm,
    /// Exactly this configuration.
    Custom(FaultConfig),
}

impl FaultMode {
    /// The name used on the command line (`none`, `swarm`, `custom`).
    pub fn name(&self) -> &'static str {
        match self {
            FaultMode::None => "none",
            FaultMode::Swarm => "swarm",
            FaultMode::Custom(_) => "custom",
        }
    }
}

/// The largest `ticks`, `liveness_ticks` and `net_latency_ticks` a run honours (2^62): a
/// larger value counts as this one, so virtual time stays far from `u64::MAX` and no tick
/// arithmetic can overflow. The command line refuses larger values.
pub const TICKS_MAX: u64 = 1 << 62;

/// Event-log lines kept by default ([`SimConfig::event_log_max`]): every event of a default
/// run, at most some 150 MB of text.
pub const EVENT_LOG_MAX_DEFAULT: usize = 1_000_000;

/// Everything that determines a run besides the system spec and the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed of every random decision.
    pub seed: u64,
    /// Length of the faulty phase in ticks (virtual time).
    pub ticks: u64,
    /// Bound of the liveness phase in ticks: after the faulty phase, faults stop, partitions
    /// heal and quarantined shards are revived; the scenario must reach its goal (or the
    /// system quiescence) within this many ticks.
    pub liveness_ticks: u64,
    /// Run the checkers every this many rounds (and always at the end).
    pub check_every_rounds: u64,
    /// How faults are chosen.
    pub faults: FaultMode,
    /// Network latency of cross-shard messages and TCP segments, in ticks (before faults).
    pub net_latency_ticks: u64,
    /// Keep the event log in the report (for `--trace-out` and comparisons).
    pub record_events: bool,
    /// The event log keeps at most this many lines, the last ones (the events before them
    /// are counted in [`Report::event_log_dropped`](crate::Report), and still hashed).
    pub event_log_max: usize,
    /// Fail the run (as a checker violation) when the final graceful shutdown leaks a
    /// resource; otherwise leaks are only reported in [`Report::shutdown`](crate::Report).
    pub strict_shutdown: bool,
}

impl SimConfig {
    /// Defaults: 5,000 faulty ticks, 20,000 liveness ticks, checkers every 64 rounds, no
    /// faults, 1 tick of latency, no event log (at most [`EVENT_LOG_MAX_DEFAULT`] lines when
    /// asked for).
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            ticks: 5_000,
            liveness_ticks: 20_000,
            check_every_rounds: 64,
            faults: FaultMode::None,
            net_latency_ticks: 1,
            record_events: false,
            event_log_max: EVENT_LOG_MAX_DEFAULT,
            strict_shutdown: false,
        }
    }

    /// This configuration with every length at most [`TICKS_MAX`] (what a run uses).
    pub fn bounded(&self) -> SimConfig {
        SimConfig {
            ticks: self.ticks.min(TICKS_MAX),
            liveness_ticks: self.liveness_ticks.min(TICKS_MAX),
            net_latency_ticks: self.net_latency_ticks.min(TICKS_MAX),
            ..self.clone()
        }
    }

    /// The effective fault configuration for a scenario whose applicable kinds are
    /// `applicable`.
    pub fn fault_config(&self, applicable: FaultSet) -> FaultConfig {
        match self.faults {
            FaultMode::None => FaultConfig::NONE,
            FaultMode::Swarm => FaultConfig::swarm(self.seed, applicable),
            FaultMode::Custom(c) => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_is_deterministic_and_varies_by_seed() {
        assert_eq!(
            FaultConfig::swarm(3, FaultSet::ALL),
            FaultConfig::swarm(3, FaultSet::ALL)
        );
        let distinct = (0..20)
            .map(|s| FaultConfig::swarm(s, FaultSet::ALL).to_string())
            .collect::<std::collections::BTreeSet<_>>();
        assert!(distinct.len() > 15);
    }

    #[test]
    fn swarm_respects_applicability() {
        for seed in 0..50 {
            let c = FaultConfig::swarm(seed, FaultSet::of(&[FaultKind::NetDrop]));
            for k in FaultKind::ALL {
                if k != FaultKind::NetDrop {
                    assert!(!c.rate(k).is_possible(), "{k:?} on seed {seed}");
                }
            }
        }
    }
}
