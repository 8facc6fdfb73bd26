//! Transfer buffers: shard-local payloads larger than the 96 inline bytes.
//!
//! ```text
//!   sender: ctx.transfer_alloc(len) ─► fill ctx.transfer_mut(buf) ─► ctx.send_transfer(to, tag, buf)
//!                                                   │ (refused: stays the sender's, freed after its call)
//!                                                   v
//!   mailbox: message with the buffer attached (the buffer is InFlight, owned by the receiver)
//!                                                   v
//!   receiver: msg.transfer() ─► ctx.transfer_data(buf) during that handler call ─► freed after it
//! ```
//!
//! References carry a generation: a stale one (kept past its handler call, or forged) gets
//! `TransferError::Stale`, never another message's bytes. The length is recorded with the
//! buffer, so the receiver sees exactly what was written. If the receiver is torn down with
//! the message still queued, the buffer returns to the pool with the mailbox.
//!
//! Across shards, a large payload travels in a bulk slot ([`crate::bulk`]): each shard owns
//! one pool of slots in two size classes (`SystemSpec::bulk`, by default up to 66 KiB per
//! payload), the sender writes the bytes once into a slot of its own pool, the ordinary
//! envelope carries only the slot reference through the ring (so the payload stays in order
//! with the sender's other messages), the receiver reads the bytes in place during its handler
//! call and gives the slot back with one store. The kernel does not use them yet:
//! `Ctx::send_transfer` to an isolate of another shard still returns `SendError::NotLocal`.

use crate::model::io::IoBuf;
use core::fmt;

/// A reference to one transfer buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferBuf(pub(crate) IoBuf);

impl TransferBuf {
    pub(crate) fn to_bits(self) -> u32 {
        self.0.to_bits()
    }

    pub(crate) fn from_bits(bits: u32) -> TransferBuf {
        TransferBuf(IoBuf::from_bits(bits))
    }
}

/// Why a transfer-buffer operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransferError {
    /// Every transfer buffer is in use (counted).
    Exhausted,
    /// More bytes than one transfer buffer holds.
    TooLarge,
    /// The reference is stale or not this isolate's in this handler call.
    Stale,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransferError::Exhausted => {
                "transfer buffers exhausted (raise transfer_buffer_count in the shard spec)"
            }
            TransferError::TooLarge => "larger than a transfer buffer (transfer_buffer_size)",
            TransferError::Stale => "stale transfer buffer reference",
        })
    }
}
