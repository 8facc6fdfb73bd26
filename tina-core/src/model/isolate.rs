//! The `Isolate` trait: a small state machine reacting to one message at a time.

use crate::model::effect::{CrashReason, Effect};
use crate::model::message::Message;
use crate::scheduler::ctx::Ctx;

/// Most bytes an isolate type's init arguments ([`Isolate::Args`]) may take.
pub const INIT_ARGS_SIZE_MAX: usize = 64;

/// An isolate type.
///
/// `init` builds the isolate from its arguments and returns the first effect (usually
/// `Receive`); `handle` reacts to one message. Both are ordinary synchronous functions: they
/// run to completion on their shard, may call the context (send, spawn, timers, I/O buffers),
/// and return one [`Effect`].
///
/// ```
/// use tina_core::{Ctx, CrashReason, Effect, Isolate, Message};
///
/// struct Counter { seen: u64 }
///
/// impl Isolate for Counter {
///     type Args = u64;
///     fn init(start: &u64, _ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
///         Ok((Counter { seen: *start }, Effect::Receive))
///     }
///     fn handle(&mut self, _msg: &Message, _ctx: &mut Ctx) -> Effect {
///         self.seen += 1;
///         Effect::Receive
///     }
/// }
/// ```
pub trait Isolate: Sized + 'static {
    /// Init arguments: any `Copy + Send + Sync + 'static` type of at most
    /// [`INIT_ARGS_SIZE_MAX`] (64) bytes, of any alignment — a number, a tuple, an enum, a
    /// `SocketAddr`, a `&'static str`, a struct with padding (the size is checked at compile
    /// time, by [`TypeSpec::of`](crate::TypeSpec::of) and at each spawn).
    ///
    /// Why these bounds: the supervisor keeps a copy of the value (in the spec for static
    /// children, in the isolate's metadata for dynamic ones, as [`InitArgs`](crate::InitArgs))
    /// so that a restart runs `init` again with the same value, any number of times — so it
    /// must be `Copy` and small enough for that fixed-size store; a static spec is shared by
    /// every shard's thread, hence `Send + Sync`; and `'static` because it outlives the
    /// handler that spawned the child. For more than 64 bytes, pass a `&'static` reference.
    type Args: Copy + Send + Sync + 'static;

    /// Builds the isolate. An `Err` is an init failure (`SpawnError::InitFailed` for a
    /// dynamic spawn; a crash for supervision).
    fn init(args: &Self::Args, ctx: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason>;

    /// Handles one message.
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect;
}
