//! # tina-sim — the deterministic simulator
//!
//! Runs every shard of a Tina system on one thread, in rounds, from one `u64` seed: the
//! same isolates that run on Linux, over a simulated network and a simulated kernel (TCP,
//! UDP and files with real bytes), with faults injected, checkers watching, and every
//! failure replayable from its seed.
//!
//! (Crate docs are completed in the final module list below.)

#![deny(unsafe_code)]

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

pub use config::{FaultConfig, FaultKind, FaultMode, FaultSet, SimConfig};
pub use hash::{Hasher128, TraceHash, digest64};
pub use kernel::{DATAGRAM_QUEUE_MAX, FDS_PER_SHARD_MAX, RECV_BUFFER_SIZE};
pub use platform::{SimIo, SimLog, SimPlatform, SimTransport, SimTrap};
pub use rng::{Domain, Ratio, SimRng, SplitMix64, mix64};
pub use scenario::{
    ClientRead, ClientSocket, ClientStatus, Env, Scenario, SimView, TypeWatch, Wake, watch,
};
pub use sim::{Outcome, Regions, Report, run};
pub use trace::first_difference;
pub use world::{Node, Phase};
