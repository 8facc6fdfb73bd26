//! The errors of the handler-facing operations, at the bottom of the module tree: a send
//! refused, a spawn refused, a scratch request too large. Small `Copy` enums with a
//! `Display` that says how to fix the cause; nothing here imports any other module of the
//! crate, so every layer can name them.

use core::fmt;

/// Why a send was refused. Returned at once; the framework never retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SendError {
    /// The target's mailbox (or, cross-shard, the outbound ring) is full.
    MailboxFull = 1,
    /// The shard's message pool has no envelope for user traffic.
    PoolExhausted = 2,
    /// The target no longer exists (torn down, its shard quarantined or unreachable).
    StaleHandle = 3,
    /// The payload exceeds 96 bytes.
    PayloadTooLarge = 4,
    /// Transfer buffers only travel within their shard.
    NotLocal = 5,
    /// The named isolate exists but no incarnation of it is running (it is restarting, or
    /// stopped for good).
    NotRunning = 6,
    /// The target shard has no isolate of that name and type.
    UnknownName = 7,
}

impl SendError {
    pub(crate) fn from_code(c: u8) -> Option<SendError> {
        Some(match c {
            1 => SendError::MailboxFull,
            2 => SendError::PoolExhausted,
            3 => SendError::StaleHandle,
            4 => SendError::PayloadTooLarge,
            5 => SendError::NotLocal,
            6 => SendError::NotRunning,
            7 => SendError::UnknownName,
            _ => return None,
        })
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::MailboxFull => "mailbox full",
            SendError::PoolExhausted => "message pool exhausted",
            SendError::StaleHandle => "stale handle",
            SendError::PayloadTooLarge => "payload larger than 96 bytes",
            SendError::NotLocal => "transfer buffers cannot leave their shard",
            SendError::NotRunning => "the named isolate is not running (restarting or stopped)",
            SendError::UnknownName => "no isolate of that name and type on the target shard",
        })
    }
}

/// Why a spawn was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SpawnError {
    /// Every slot of the type's arena on this shard is in use.
    ArenaFull,
    /// The supervision group has no room for another dynamic child.
    GroupFull,
    /// The child's `init` failed or panicked.
    InitFailed,
    /// The type is not registered in the spec.
    UnknownType,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::ArenaFull => "arena full (raise TypeSpec::capacity)",
            SpawnError::GroupFull => "supervision group full (raise GroupSpec::dynamic_capacity)",
            SpawnError::InitFailed => "init failed",
            SpawnError::UnknownType => "type not registered in the spec",
        })
    }
}

/// A scratch request larger than the type's `scratch_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScratchTooSmall {
    /// Bytes asked for.
    pub len: usize,
    /// The type's scratch size.
    pub limit: usize,
}

impl fmt::Display for ScratchTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "asked for {} scratch bytes but the type's scratch_size is {} (raise TypeSpec::scratch)",
            self.len, self.limit
        )
    }
}
