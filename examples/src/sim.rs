//! Simulator scenarios: whole systems built from the shared example isolates, run by
//! `tina-sim` from a seed with faults, checkers and a liveness goal.
//!
//! - [`echo`]: the TCP echo server of [`crate::echo`] on every shard, served over simulated
//!   TCP to simulated clients that verify every byte they get back.
//! - [`bank`]: accounts spread over shards move money with calls and timeouts; balances and
//!   transfer intents are kept durable on the simulated disks, and a checker proves money is
//!   conserved despite crashes, drops and partitions.
//! - [`dispatcher`]: the job dispatcher of [`crate::dispatcher`], with local and cross-shard
//!   workers that crash and restart; stale handles are refused.
//! - [`bulk`]: large messages (97 B to 66 KiB, in bulk slots) between shards under crashes and
//!   shard recoveries; every payload checked whole and in order, every slot back at shutdown.
//! - [`idle`]: a heartbeat once a simulated second per shard, to measure time compression
//!   (no faults).
//!
//! [`scenarios`] lists them for the `simulate` binary (and for tests).

pub mod bank;
pub mod bulk;
pub mod dispatcher;
pub mod echo;
pub mod idle;

use tina_sim::cli::ScenarioEntry;

/// Every scenario, for `tina_sim::cli`.
pub fn scenarios() -> [ScenarioEntry; 5] {
    [
        ScenarioEntry {
            name: "echo",
            about: "TCP echo on every shard; simulated clients verify every byte",
            run: echo::run,
            plants: &[],
            faults: echo::FAULTS,
        },
        ScenarioEntry {
            name: "bank",
            about: "cross-shard transfers with calls and timeouts; money is conserved",
            run: bank::run,
            plants: &["forget-dedup"],
            faults: bank::FAULTS,
        },
        ScenarioEntry {
            name: "dispatcher",
            about: "crashing workers restart with new handles; stale sends are refused",
            run: dispatcher::run,
            plants: &[],
            faults: dispatcher::FAULTS,
        },
        ScenarioEntry {
            name: "bulk",
            about: "large messages between shards under crashes; whole, in order, no slot leaked",
            run: bulk::run,
            plants: &[],
            faults: bulk::FAULTS,
        },
        ScenarioEntry {
            name: "idle",
            about: "a heartbeat per simulated second on every shard (time compression)",
            run: idle::run,
            plants: &[],
            faults: idle::FAULTS,
        },
    ]
}

/// The command prefix printed in replay lines.
pub const PROGRAM: &str = "cargo run --release -p tina-examples --bin simulate --";
