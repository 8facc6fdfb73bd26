//! # tina-core
//!
//! The `no_std`, allocation-free heart of Tina: isolates, effects, bounded mailboxes and the
//! scheduler step as pure state transitions. No clock, no syscalls, no threads, no panic
//! catching: a platform crate (Linux, the simulator, bare metal) drives it.
//!
//! ## The model
//!
//! A program is a set of **isolates**: small state machines ([`Isolate`]) that react to one
//! [`Message`] at a time with an ordinary synchronous function and return an [`Effect`] that
//! tells the scheduler what happens next. Actions that are not transitions — sending,
//! spawning, timers, I/O buffers — are calls on the [`Ctx`] during the handler, and each returns
//! at once with a result (`Ok`, `MailboxFull`, `PoolExhausted`, `StaleHandle`, …).
//!
//! An isolate is spawned with **init arguments** ([`Isolate::Args`]): any `Copy + Send +
//! Sync + 'static` value of at most [`INIT_ARGS_SIZE_MAX`] (64) bytes — a `SocketAddr`, a
//! `&'static str`, an enum, a struct with padding, a [`Handle`]. Its supervisor keeps a copy
//! ([`InitArgs`], typed: spec validation refuses a child whose arguments are of another type),
//! because a restart runs `init` again with the same value.
//!
//! Every core runs one **shard** ([`Shard`]): a scheduler that owns all of its memory. The
//! whole system is data ([`SystemSpec`]): types, sizes, supervision trees. From it the core
//! computes the exact bytes each shard needs ([`Shard::memory_required`]); the platform
//! provides that memory once and nothing is allocated afterwards.
//!
//! ```text
//!                           one shard (one core, one thread)
//!   ┌──────────────────────────────────────────────────────────────────────────────┐
//!   │  inbound rings ──► mailboxes (intrusive FIFOs over one message pool)         │
//!   │  I/O completions ─► parked isolates                                           │
//!   │                                                                               │
//!   │  per type: ready queue ──► handler(&mut T, &Message, &mut Ctx) ──► Effect      │
//!   │            (weight×256 calls per tick, ≤ k in a row per isolate)    │         │
//!   │                                                                     ▼         │
//!   │   Done/Crash ─► teardown ─► supervisor   Receive/Yield/Call/Reply/Io ─► park │
//!   │                                                                               │
//!   │  I/O batch ──► platform      outbound rings ──► publish once      timers      │
//!   └──────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! ## Addressing
//!
//! A [`Handle`] names one incarnation of an isolate and goes stale when it exits. To reach a
//! service across restarts and shards, declare it with a [`Name`] and address it by name:
//!
//! ```
//! use tina_core::*;
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Get { key: u64 }
//! tina_core::payload!(Get); // the tag comes from the name: no numbering by hand
//!
//! struct Store;
//! tina_core::accepts!(Store: Get); // sending Store anything else does not compile
//! # impl Isolate for Store {
//! #     type Args = ();
//! #     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> { Ok((Store, Effect::Receive)) }
//! #     fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect { Effect::Receive }
//! # }
//! const STORE: Name<Store> = Name::new("store");
//!
//! // In the spec, on every shard: ChildSpec::named(STORE, &(), Restart::Permanent).
//! // In any handler, on any shard:
//! fn lookup(ctx: &mut Ctx, key: u64) -> Effect {
//!     let store = ctx.by_key(STORE, &key); // the shard that owns `key`, whoever runs there
//!     Effect::call(store, &Get { key }, Duration::from_secs(2))
//! }
//! ```
//!
//! The owning shard resolves the name when the message arrives. A call that cannot be
//! delivered there (no incarnation running, a stale handle, a full mailbox) is refused back
//! to the caller through the ring, so it fails within a ring round trip with the reason
//! instead of at its timeout ([`model/address.rs`](Address) has the details).
//!
//! ## Stepping a shard by hand
//!
//! ```
//! use tina_core::*;
//! use tina_core::testing::{TestPlatform, region_for};
//!
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Ping { n: u32 }
//! tina_core::payload!(Ping);
//!
//! struct Counter { total: u32 }
//! tina_core::accepts!(Counter: Ping);
//! impl Isolate for Counter {
//!     type Args = ();
//!     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
//!         Ok((Counter { total: 0 }, Effect::Receive))
//!     }
//!     fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
//!         if let Some(p) = msg.decode::<Ping>() { self.total += p.n; }
//!         Effect::Receive
//!     }
//! }
//!
//! let types = [TypeSpec::of::<Counter>("counter")];
//! let children = [ChildSpec::isolate::<Counter>(&(), Restart::Permanent)];
//! let shards = [ShardSpec { root: GroupSpec::one_for_one(&children) }];
//! let spec = SystemSpec::new(&shards, &types);
//! let mut memory = region_for(&spec, ShardId(0));
//! let mut shard = Shard::new(&spec, ShardId(0), memory.bytes(), TestPlatform::default()).unwrap();
//!
//! let counter = shard.handles::<Counter>().next().unwrap();
//! shard.deliver(counter, &Outgoing::new(&Ping { n: 5 })).unwrap();
//! let report = shard.step(Instant::from_ticks(1));
//! assert_eq!(report.dispatched, 1);
//! assert_eq!(shard.state::<Counter>(counter).unwrap().total, 5);
//! ```
//!
//! ## Guarantees
//!
//! - **Bounded**: every queue, pool and per-tick loop has a limit from the spec; exceeding one
//!   is an explicit result or a counted drop ([`Counters`]), never growth and never a panic.
//! - **Stale handles are harmless**: a torn-down isolate's slot gets a new generation; old
//!   handles cannot reach a new occupant for the next 2^28 − 1 incarnations of that slot
//!   (generations then wrap to 1, so a type's capacity is never used up; see [`Handle`]).
//! - **Fair**: each type gets `budget_weight × 256` handler calls per tick; within a type, ready
//!   isolates run in FIFO order, each at most `messages_per_dispatch_max` calls in a row, so a
//!   ready isolate runs within `⌈ready × k / quota⌉` ticks however hard others are flooded.
//! - **Deterministic**: iteration orders are fixed (arrays, FIFO queues), there is no floating
//!   point and no hidden time or randomness; the same inputs give the same transitions.
//! - **Safe**: `#![deny(unsafe_code)]` except [`memory`] (carving typed slices from the region,
//!   keeping [`InitArgs`] typed) and [`ring`] (the cross-shard SPSC ring), all covered by Miri.
//!
//! ## How the hard parts are solved
//!
//! - **Heterogeneous types without `alloc`**: each type lives in its own dense arena (a slice
//!   of `Option<T>` carved at boot) behind a small object-safe trait; the scheduler's metadata
//!   (generation, state, mailbox, queues) is kept apart, so finding work never touches isolate
//!   memory, and only the per-type call is dynamic.
//! - **`ctx.spawn` while the running isolate is borrowed**: the arena splits its slots around
//!   the running one and lends the halves to the context, so a spawn of the same type places
//!   its child directly; `init` runs at once and `InitFailed` is a synchronous result.
//! - **Mailboxes**: intrusive FIFOs over the shard's one message pool (12 bytes per isolate);
//!   I/O completions, call timeouts and shutdown notices live in the isolate's metadata and
//!   never need a pool slot; replies and timers may use the system reserve.
//! - **Memory**: one 128-aligned region per shard, carved once. One boot-layout walk both
//!   measures ([`Shard::memory_required`], [`ring_memory_required`], [`SystemMemory`]) and
//!   carves, so the size is exact and the two cannot disagree.
//!
//! ## Layout
//!
//! The module tree reads bottom-up, in the order of this table; each folder's and file's docs
//! state what it owns and guarantees. A module imports only from the rows above its own,
//! with two exceptions the types force (`Isolate::handle` takes the scheduler's [`Ctx`]; a
//! [`TypeSpec`] holds its arena's function table) and the re-exports that keep old paths
//! working (`log::LogSink`, `transport::Wake`); inside the scheduler, modules call each other.
//!
//! | folder | what it holds |
//! |---|---|
//! | `error` | [`SendError`], [`SpawnError`], [`ScratchTooSmall`]: the handler-facing errors (a leaf) |
//! | `model/` | the data model: [`Handle`]s and ids, [`Message`]s and payloads, [`Effect`], [`Isolate`], time ([`Instant`] in ticks, [`Duration`] in nanoseconds, the step's [`Clock`] with its [`WallTime`]), [`TransferBuf`], the I/O contract ([`io`]) |
//! | [`memory`] | the region and its measurement, and the bounded structures carved from it: message pool and mailbox FIFOs, I/O and transfer buffers, timer wheel, [`log`](mod@log) ring, [`Counters`]; the typed store of [`InitArgs`] |
//! | [`platform`] | the seam a driver implements: `Transport`, `IoDriver`, `SocketControl`, `Trap`, `LogSink`, `Wake`, and `Bundle` |
//! | `cross_shard/` | the SPSC [`ring`], the [`transport`] over a shard's rings, the [`sync`] shim loom checks, [`key_to_shard`] |
//! | [`spec`] | the boot spec as data, and its validation (`spec/validate.rs`) |
//! | `scheduler/` | [`Shard`] (the facade and `step`), the kernel, the typed arenas, [`Ctx`], supervision's tree, boot errors and the boot-layout walk; the drivers' glue: [`wiring`] (rings carved by that walk) and the [`sleep`] guard |
//!
//! Inside the scheduler, the **kernel** owns the shard's tables (per-type isolate metadata,
//! arenas, pool, timers, I/O state, supervision tree, log, counters) and performs every
//! transition through a named verb, one file per concern: `delivery` (into mailboxes, to the
//! transport, inbound and replies), `dispatch` (the next message of a ready isolate), `calls`
//! (calls and applying effects), `io` (the submission batch, completions, reclaiming orphaned
//! descriptors), `timers`, `teardown`, `peers` (peer shard events), `spawn` and `supervise`.
//! [`Ctx`] is the handler's thin view of it: the kernel, the platform parts, and who is
//! running. The [`Shard`] sequences `step`'s phases and owns the platform.
//!
//! ## A message through the code
//!
//! A local send, from `ctx.send(to, &value)` to the receiver's handler:
//!
//! 1. [`Ctx::send`] → `Kernel::send_typed` (kernel/delivery.rs): `to` is on this shard, so
//!    `Kernel::deliver_local_with` checks the handle's generation and the mailbox capacity,
//!    writes the envelope straight into a pool slot (`Pool::alloc_with`), appends it to the
//!    receiver's mailbox FIFO (`Pool::push`) and, if the receiver waits for messages, puts it
//!    on its type's ready queue (`TypeState::make_ready`). Any refusal is a [`SendError`]
//!    returned at once and counted.
//! 2. [`Shard::step`], phase 3, runs each type's ready queue: `Shard::dispatch_type` →
//!    `Shard::dispatch_batch` lends the type's arena out of the kernel → `run_batch` →
//!    `Kernel::next_ready` (kernel/dispatch.rs) pops the isolate and takes its mailbox head
//!    (`take_mailbox_head`, the fast path; notices, replies and completions go through
//!    `Kernel::next_message`).
//! 3. Inside the platform's `Trap::run`, `ErasedArena::dispatch` (arena.rs) builds the
//!    [`Ctx`] (`Ctx::of_call`) and calls [`Isolate::handle`], which returns an [`Effect`].
//! 4. `Kernel::finish_call` (kernel/calls.rs) applies it: `Receive` is left to
//!    `Kernel::after_dispatch` (which takes the same isolate's next message, up to
//!    `messages_per_dispatch_max` in a row, or queues it again); anything else goes through
//!    `Kernel::apply_effect` (start a call, reply, submit I/O, yield). `Done` or `Crash`
//!    ends the batch: `Shard::exit_isolate` → `Kernel::exit` (kernel/supervise.rs) stops the
//!    isolate (`Kernel::stop` → `Kernel::teardown`) and lets its supervisor decide.
//!
//! A cross-shard send takes the same first call and then the ring:
//!
//! 1. `Kernel::send_typed` sees another shard and goes to `Kernel::send`, which checks the
//!    shard exists and is not quarantined, then `Transport::send`: for [`RingTransport`] a
//!    `Producer::try_push` into the ring `me → dst` (a full ring is `MailboxFull`), not yet
//!    visible to the consumer.
//! 2. Phase 5 of the sender's `step`: `Transport::publish` → `Producer::publish` (one
//!    release store per ring written this tick) and a wake-up for each such peer that is
//!    asleep.
//! 3. Phase 1 of the receiver's `step`: `Transport::receive` → `Consumer::drain` (then
//!    `commit`) → `Kernel::deliver_inbound`, which hands a reply to `Kernel::deliver_reply`
//!    and anything else to `Kernel::deliver_local` — the mailbox of step 1 above.
//!
//! A named address (`ctx.on_shard(NAME, shard)`) takes the same path; it never locates as a
//! plain handle (its slot value is reserved), so `Kernel::deliver_local_with` refuses it with
//! an uncounted `UnknownName` and the caller resolves it off the fast path
//! (`Kernel::resolve_name`: the shard's name table → the child's running incarnation) and
//! delivers again. A call that cannot be delivered on the receiving shard becomes a refusal
//! (`Kernel::refuse_call`) that `Kernel::send_refusals` sends back through the ring; the
//! caller's `Kernel::deliver_reply` ends its call with the reason.
//!
//! [`RingTransport`]: transport::RingTransport
#![no_std]
#![deny(unsafe_code)]
#![deny(clippy::float_arithmetic)]
#![deny(clippy::too_many_lines)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
extern crate std;

mod cross_shard;
mod error;
pub mod memory;
mod model;
pub mod platform;
mod scheduler;
pub mod spec;
#[cfg(any(test, feature = "std"))]
pub mod testing;

pub use cross_shard::{bulk, ring, sync, transport};
pub use memory::log;
pub use model::io;
pub use scheduler::{sleep, wiring};

pub use cross_shard::placement::key_to_shard;
pub use error::{ScratchTooSmall, SendError, SpawnError};
pub use memory::args::InitArgs;
pub use memory::counters::Counters;
pub use memory::timer::{TimerId, TimersExhausted};
pub use model::address::{
    Accepts, Address, Name, NameRef, Recipient, ShardKey, assert_distinct_tags, fnv1a32, fnv1a64,
    tag_of_name,
};
pub use model::effect::{CrashReason, Effect};
pub use model::handle::{
    GENERATION_MAX, Handle, SHARD_COUNT_MAX, SLOT_MAX, ShardId, TYPE_COUNT_MAX, TypeId,
};
pub use model::isolate::{INIT_ARGS_SIZE_MAX, Isolate};
pub use model::message::{
    CallToken, Message, Outgoing, PAYLOAD_SIZE_MAX, Payload, PayloadTooLarge, Tag, USER_TAG_MIN,
    UserTag, system_tag,
};
pub use model::time::{Clock, Duration, HttpDate, Instant, WallTime};
pub use model::transfer::{TransferBuf, TransferError};
pub use scheduler::boot::{
    BootError, InitFailure, SystemMemory, bulk_memory_required, ring_memory_required,
};
pub use scheduler::ctx::Ctx;
pub use scheduler::shard::{Shard, ShardStatus, StepReport};
pub use spec::{
    ChildSpec, GroupSpec, QuarantinePolicy, Restart, RestartBudget, ShardConfig, ShardSpec,
    SpecError, Strategy, SystemSpec, TypeRef, TypeSpec,
};

/// Re-exported so user payload types can derive `Pod` through one dependency path.
pub use bytemuck;

/// The README's example, compiled as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;
