//! Boot-time memory: one region per shard, carved once, never grown — and the bounded
//! structures carved from it.
//!
//! The platform provides one byte region per shard (Linux: mapped and pre-faulted by the
//! pinned shard thread; the simulator: the heap at set-up; bare metal: a `static`). The shard
//! carves every structure it needs from it at boot, in a fixed order; after that nothing is
//! allocated. The order is written once, as the scheduler's boot-layout walk, and walked both
//! over a [`Region`] (carving) and over a [`Measure`] (sizes and padding only), so
//! `Shard::memory_required` is exact, not an estimate: a test checks that building consumes
//! precisely the number it reports. Links inside the region (mailbox FIFOs, timer lists,
//! free lists) are indices into the carved arrays, not pointers.
//!
//! The structures carved from it each have a fixed capacity from the spec: the message pool
//! and its intrusive FIFOs (`pool`), the I/O and transfer buffer pools (`iobuf`), the timer
//! wheel (`timer`), the log ring ([`log`]) and the [`Counters`](crate::Counters). `args`
//! keeps one [`InitArgs`](crate::InitArgs) value typed (in a spec and in each isolate's
//! metadata, for restarts).

#[allow(unsafe_code)]
pub(crate) mod args;
pub(crate) mod counters;
pub(crate) mod iobuf;
pub mod log;
pub(crate) mod pool;
#[allow(unsafe_code)]
mod region;
pub(crate) mod timer;

pub use region::*;
