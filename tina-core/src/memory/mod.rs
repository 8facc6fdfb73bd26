//! Boot-time memory: one region per shard, carved once, never grown — and the bounded
//! structures carved from it.
//!
//! [`Region`] and [`Measure`] (in `region`, one of the two modules that use `unsafe`) hand out
//! typed slices at boot. The structures the scheduler builds on them each have a fixed
//! capacity from the spec: the message pool and its intrusive FIFOs (`pool`), the I/O and
//! transfer buffer pools (`iobuf`), the timer wheel (`timer`), the log ring ([`log`]) and the
//! [`Counters`](crate::Counters).

pub(crate) mod counters;
pub(crate) mod iobuf;
pub mod log;
pub(crate) mod pool;
#[allow(unsafe_code)]
mod region;
pub(crate) mod timer;

pub use region::*;
