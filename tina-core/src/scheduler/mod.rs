//! The scheduler: one shard's tables and the transitions on them.
//!
//! - `shard`: the public facade ([`Shard`](crate::Shard)), `step` and its phases.
//! - `kernel`: the shard's tables outside the typed arenas, and every transition on them
//!   (delivery, calls, I/O bookkeeping, timers, teardown, peer events).
//! - `arena`: the typed arenas, one per isolate type, behind an object-safe trait.
//! - `ctx`: the handler-facing [`Ctx`](crate::Ctx).
//! - `supervision`: groups, strategies, restart budgets, escalation.
//! - `boot`: boot errors and the memory a shard and its rings need.
//! - `layout`: the boot-layout walk, one sequence that both measures and carves.
//! - [`wiring`](crate::wiring): the drivers' ring wiring — a consumer's inbound rings carved
//!   by that walk and split into the halves each shard owns.
//! - [`sleep`](crate::sleep): the sleep guard that runs the transport's announce → re-check
//!   → block → woke protocol for a driver.
//!
//! The modules of this folder call each other; everything they use from outside it sits
//! lower in the tree (model, spec, memory, cross-shard, platform).

pub(crate) mod arena;
pub(crate) mod boot;
pub(crate) mod ctx;
pub(crate) mod kernel;
pub(crate) mod layout;
pub(crate) mod shard;
pub mod sleep;
pub(crate) mod supervision;
pub mod wiring;
