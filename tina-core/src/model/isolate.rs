//! The `Isolate` trait: a small state machine reacting to one message at a time.

use crate::model::effect::{CrashReason, Effect};
use crate::model::message::Message;
use crate::scheduler::ctx::Ctx;

/// Bytes of init arguments an isolate can be spawned (and restarted) with.
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
    /// Init arguments: any `Pod` type of at most 64 bytes (checked at compile time). Kept by
    /// the supervisor so a restart runs `init` with the same arguments.
    type Args: bytemuck::Pod;

    /// Builds the isolate. An `Err` is an init failure (`SpawnError::InitFailed` for a
    /// dynamic spawn; a crash for supervision).
    fn init(args: &Self::Args, ctx: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason>;

    /// Handles one message.
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect;
}

/// Init arguments as bytes (at most 64), as stored in specs and for restarts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InitArgs {
    bytes: [u8; INIT_ARGS_SIZE_MAX],
    len: u8,
}

impl Default for InitArgs {
    fn default() -> Self {
        InitArgs::EMPTY
    }
}

impl InitArgs {
    /// No arguments (all zero bytes: a valid value of every `Pod` type).
    pub const EMPTY: InitArgs = InitArgs {
        bytes: [0; INIT_ARGS_SIZE_MAX],
        len: 0,
    };

    /// Encodes a typed value (size checked at compile time).
    pub fn new<A: bytemuck::Pod>(value: &A) -> InitArgs {
        const { assert!(core::mem::size_of::<A>() <= INIT_ARGS_SIZE_MAX) };
        let raw = bytemuck::bytes_of(value);
        let mut bytes = [0; INIT_ARGS_SIZE_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        InitArgs {
            bytes,
            len: raw.len() as u8,
        }
    }

    /// Raw bytes, usable in `const` and `static` specs. Panics (a compile error in a const)
    /// if longer than 64 bytes.
    pub const fn from_bytes(raw: &[u8]) -> InitArgs {
        assert!(
            raw.len() <= INIT_ARGS_SIZE_MAX,
            "init args are at most 64 bytes"
        );
        let mut bytes = [0; INIT_ARGS_SIZE_MAX];
        let mut i = 0;
        while i < raw.len() {
            bytes[i] = raw[i];
            i += 1;
        }
        InitArgs {
            bytes,
            len: raw.len() as u8,
        }
    }

    /// The bytes given.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Decodes as `A`. Missing trailing bytes read as zero, which is valid for `Pod` types.
    pub fn decode<A: bytemuck::Pod>(&self) -> A {
        const { assert!(core::mem::size_of::<A>() <= INIT_ARGS_SIZE_MAX) };
        bytemuck::pod_read_unaligned(&self.bytes[..core::mem::size_of::<A>()])
    }
}
