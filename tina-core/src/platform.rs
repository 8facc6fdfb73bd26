//! The platform seam: the few small traits a driver implements.
//!
//! The core never reads a clock, performs a syscall, spawns a thread or catches a panic.
//! Everything outside the pure state machine comes through these traits, bundled by
//! [`Platform`]. Time is not a trait: it is the `now` argument of `Shard::step`.
//!
//! | trait | what the platform provides | Linux | simulator | bare metal |
//! |---|---|---|---|---|
//! | [`Transport`] | cross-shard envelopes | SPSC rings + eventfd wake | simulated network | rings + SEV |
//! | [`IoDriver`] | I/O submission/completion | io_uring or epoll | simulated TCP/UDP/files | none |
//! | [`SocketControl`] | synchronous socket calls | libc | simulated | none |
//! | [`Trap`] | how a handler is invoked | `catch_unwind` | `catch_unwind` | direct call |
//! | [`LogSink`] | where log records go | stderr | the trace | the board |
//! | [`Wake`] | waking a peer shard that sleeps | eventfd write | not needed | `SEV` |
//!
//! Contracts are stated on each method; a platform that breaks one can make the shard drop
//! messages (counted) but never makes it unsound.

use crate::error::SendError;
use crate::memory::log::LogRecord;
use crate::model::handle::{Handle, ShardId, TypeId};
use crate::model::io::{Control, ControlOutcome, IoCompletion, IoError};
use crate::model::message::Message;

/// Cross-shard message transport for one shard.
pub trait Transport {
    /// Stages `msg` for shard `to`. Must not block. Returns `Err(MailboxFull)` if the outbound
    /// channel is full and `Err(StaleHandle)` if `to` is quarantined, partitioned or does not
    /// exist. Staged messages become visible to the peer at the next [`Transport::publish`].
    fn send(&mut self, to: ShardId, msg: &Message) -> Result<(), SendError>;

    /// Hands every inbound message available now to `deliver`, in per-peer FIFO order. Must be
    /// bounded (e.g. by ring capacities).
    fn receive(&mut self, deliver: &mut dyn FnMut(&Message));

    /// Makes everything staged since the last call visible to the peers, and wakes peers that
    /// sleep (once per tick; no syscall when nothing was staged or nobody sleeps).
    fn publish(&mut self);

    /// Tells every peer that this shard changed status (it recovered, was quarantined, or was
    /// revived). Each peer's core then refuses sends to a quarantined shard with
    /// `StaleHandle` by itself (until it hears `Restarted`), fails calls waiting on it, and
    /// notifies isolates that watch shards. The default does nothing (single-shard
    /// platforms).
    fn announce(&mut self, event: PeerEvent) {
        let _ = event;
    }

    /// Hands the status changes of peers announced since the last call to `deliver`. The
    /// default reports none.
    fn peer_events(&mut self, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        let _ = deliver;
    }
}

/// A shard's status change, as announced to its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PeerEvent {
    /// The shard recovered (or was revived): every handle issued before is stale.
    Restarted,
    /// The shard is quarantined: sends to it fail until it is revived.
    Quarantined,
}

/// The I/O operations and buffer view the core hands over are part of the I/O contract
/// ([`crate::io`]); named here too, as the seam's types.
pub use crate::model::io::{IoBuffers, Submission};

/// Where the platform reports completions.
pub trait CompletionSink {
    /// Reports the completion of an operation submitted for `owner`. `completion.ticket`
    /// must echo the submission's ticket, and `completion.buf` the submission's buffer (if
    /// it had one): the core uses it to reclaim buffers of
    /// torn-down isolates. For data-receiving ops, the bytes must already be in the buffer.
    fn complete(&mut self, owner: Handle, completion: IoCompletion);

    /// The shard's buffers (to copy received bytes into, for platforms that complete
    /// synchronously such as the simulator).
    fn buffers(&mut self) -> IoBuffers<'_>;
}

/// Synchronous socket control, callable from handlers.
pub trait SocketControl {
    /// Executes one control call on behalf of `owner`.
    fn control(&mut self, owner: Handle, op: Control) -> Result<ControlOutcome, IoError>;

    /// Closes `fd`, a descriptor no isolate owns any more, at once: reclaim work that found
    /// the tick's submission batch full. The platform first ends (or cancels) its own
    /// operations on `fd`, as for a submitted `Close`. Returns `false` if this platform
    /// cannot close synchronously; the core then queues the close into the next batch.
    /// The default returns `false`.
    fn close_orphan(&mut self, fd: crate::model::io::Fd) -> bool {
        let _ = fd;
        false
    }
}

/// The I/O path of one shard.
pub trait IoDriver: SocketControl {
    /// Takes this tick's batch of operations (one batch per tick) and returns how many it
    /// accepted: a prefix of `batch`. For each accepted submission the platform must
    /// eventually report exactly one completion (possibly an error); buffers named by it
    /// belong to the platform until then. The core completes the rejected rest itself with
    /// [`IoDriver::rejection`], so nothing is left waiting forever.
    fn submit(&mut self, batch: &[Submission], buffers: IoBuffers<'_>) -> usize;

    /// The error rejected submissions complete with.
    fn rejection(&self) -> IoError {
        IoError::QueueFull
    }

    /// Reports the completions available now.
    fn complete(&mut self, sink: &mut dyn CompletionSink);

    /// Asks to end the submitted op `ticket` of `owner` early (`Ctx::cancel`; called after
    /// the batch that submitted it). The op must still complete exactly once: with
    /// `Err(IoError::Canceled)` if it could be stopped, else with its normal result. A
    /// ticket the platform no longer knows (completed already) is ignored. The default does
    /// nothing (the op completes normally).
    fn cancel(&mut self, owner: Handle, ticket: crate::model::io::IoTicket) {
        let _ = (owner, ticket);
    }

    /// The shard is shutting down: complete every operation still in flight soon (with
    /// `IoError::Canceled` if it cannot finish), so isolates parked on I/O learn of the
    /// shutdown. The default does nothing.
    fn cancel_all(&mut self) {}
}

/// A handler or init call panicked and the platform caught it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Panicked;

/// Which user function a trapped call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallKind {
    /// `Isolate::init` (a spawn, a boot, a restart).
    Init,
    /// `Isolate::handle`.
    Handle,
}

/// What a trapped call is about: which isolate, of which type, doing what. Watchdogs report
/// it, panic messages name it, the simulator injects faults by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrapCall {
    /// The isolate.
    pub isolate: Handle,
    /// Its type's name from the spec.
    pub type_name: &'static str,
    /// `init` or `handle`.
    pub kind: CallKind,
}

/// A handle stored as raw bits (e.g. in an atomic a watchdog or fault handler reads): shown
/// like the [`Handle`] it was, with its type, but it cannot be turned back into a handle, so
/// it addresses nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleBits(u64);

impl HandleBits {
    /// The bits of `h`.
    pub const fn of(h: Handle) -> HandleBits {
        HandleBits(h.to_bits())
    }

    /// Bits stored earlier with [`HandleBits::to_bits`].
    pub const fn from_bits(bits: u64) -> HandleBits {
        HandleBits(bits)
    }

    /// The raw bits, for storing.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// The isolate type of the handle these bits came from.
    pub const fn type_id(self) -> TypeId {
        Handle::raw(self.0).type_id()
    }
}

impl core::fmt::Display for HandleBits {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&Handle::raw(self.0), f)
    }
}

/// How the platform invokes user code (`init` and `handle`).
pub trait Trap {
    /// Runs `f`, the user call described by `call`. A platform that can catch panics returns
    /// `Err(Panicked)` when `f` panics; one that cannot (bare metal, `panic = "abort"`) just
    /// calls it.
    ///
    /// It is on the dispatch hot path, and the scheduler calls it statically (the trap type
    /// is part of the `Platform`): mark the implementation `#[inline]` so it can be inlined
    /// across crates, which lets the compiler see through `f` as well.
    fn run(&self, call: TrapCall, f: &mut dyn FnMut()) -> Result<(), Panicked>;
}

/// A bundle of the platform's parts for one shard.
pub trait Platform {
    /// The transport.
    type Transport: Transport;
    /// The I/O driver.
    type Io: IoDriver;
    /// The trap.
    type Trap: Trap;
    /// The log sink.
    type Log: LogSink;

    /// Borrows all parts at once.
    fn parts(&mut self) -> Parts<'_, Self>;
}

/// All parts of a platform, borrowed at once.
pub struct Parts<'p, P: Platform + ?Sized> {
    /// The transport.
    pub transport: &'p mut P::Transport,
    /// The I/O driver.
    pub io: &'p mut P::Io,
    /// The trap.
    pub trap: &'p P::Trap,
    /// The log sink.
    pub log: &'p mut P::Log,
}

/// Where the platform sends log records.
pub trait LogSink {
    /// Writes one record of shard `shard`.
    fn write(&mut self, shard: ShardId, record: &LogRecord);
}

/// A sink that discards everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLog;

impl LogSink for NoLog {
    fn write(&mut self, _shard: ShardId, _record: &LogRecord) {}
}

/// Wakes a sleeping shard (an eventfd write, `SEV`, a thread unpark…).
pub trait Wake {
    /// Wakes `peer`, which announced it is asleep. May be called spuriously.
    fn wake(&self, peer: ShardId);
}

/// The usual platform: its four parts side by side. Most drivers need nothing more, e.g.
/// `Bundle<RingTransport<'r, W>, NoIo, DirectTrap, NoLog>` for a shard with rings and no I/O
/// (`W` the platform's [`Wake`]).
#[derive(Default)]
pub struct Bundle<T, I, R, L> {
    /// The transport.
    pub transport: T,
    /// The I/O driver.
    pub io: I,
    /// The trap.
    pub trap: R,
    /// The log sink.
    pub log: L,
}

impl<T: Transport, I: IoDriver, R: Trap, L: LogSink> Platform for Bundle<T, I, R, L> {
    type Transport = T;
    type Io = I;
    type Trap = R;
    type Log = L;

    fn parts(&mut self) -> Parts<'_, Self> {
        Parts {
            transport: &mut self.transport,
            io: &mut self.io,
            trap: &self.trap,
            log: &mut self.log,
        }
    }
}

/// A transport for a single-shard system: every cross-shard send is stale.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTransport;

impl Transport for NoTransport {
    fn send(&mut self, _to: ShardId, _msg: &Message) -> Result<(), SendError> {
        Err(SendError::StaleHandle)
    }
    fn receive(&mut self, _deliver: &mut dyn FnMut(&Message)) {}
    fn publish(&mut self) {}
}

/// An I/O driver for shards that do no I/O: every operation completes with `Unsupported`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIo;

impl SocketControl for NoIo {
    fn control(&mut self, _owner: Handle, _op: Control) -> Result<ControlOutcome, IoError> {
        Err(IoError::Unsupported)
    }
}

impl IoDriver for NoIo {
    fn submit(&mut self, _batch: &[Submission], _buffers: IoBuffers<'_>) -> usize {
        0
    }
    fn rejection(&self) -> IoError {
        IoError::Unsupported
    }
    fn complete(&mut self, _sink: &mut dyn CompletionSink) {}
}

/// A trap that calls straight through (a panic unwinds or aborts as the target decides).
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectTrap;

impl Trap for DirectTrap {
    #[inline]
    fn run(&self, _call: TrapCall, f: &mut dyn FnMut()) -> Result<(), Panicked> {
        f();
        Ok(())
    }
}
