//! Transfer buffers: payloads larger than the 96 inline bytes.
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
//! Across shards, a large payload travels in a bulk slot ([`crate::bulk`]) once the platform
//! attached the bulk pools ([`crate::Shard::attach_bulk`]); then every transfer uses them,
//! inside one shard as across shards, through the same calls. Each shard owns one pool in two
//! size classes (`SystemSpec::bulk`, by default payloads up to 66 KiB); `transfer_alloc`
//! takes a slot of the sender's own pool, `transfer_mut` writes into it in place, and
//! `send_transfer` sends an ordinary envelope carrying only the slot reference (through the
//! ring for another shard, so the payload keeps its order with the sender's other messages).
//! Without bulk pools, a transfer to another shard returns `SendError::NotLocal`.
//!
//! What a receiver may do with one, and what copies: see [`TransferBuf`].

use crate::model::io::IoBuf;
use core::fmt;

/// A reference to one transfer buffer (a shard-local buffer, or a bulk slot that may come
/// from another shard).
///
/// What a receiver may do with a large message:
///
/// - **Read it in place** during the handler call that received it: `ctx.transfer_data(t)`
///   borrows the bytes where the sender wrote them (another shard's memory for a remote
///   sender). Nothing is copied; the only copy of a transfer is the sender's own write.
/// - The slot goes back to its owner when that handler call ends (or when the message is
///   dropped, refused, or its receiver torn down with it still queued). A reference kept past
///   the call is stale: `transfer_data` then returns `TransferError::Stale`, never other
///   bytes. To keep the payload, or to forward it, copy it (into working memory, or into a new
///   transfer of this shard's own pool): those are the operations that copy.
/// - Exhaustion shows at once, as `TransferError::Exhausted` from `transfer_alloc` (counted
///   in `transfer_exhausted`), and clears as receivers finish with their slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransferBuf(pub(crate) IoBuf, pub(crate) bool);

impl TransferBuf {
    pub(crate) fn to_bits(self) -> u32 {
        self.0.to_bits()
    }

    /// A reference from an envelope: a shard-local buffer, or a bulk slot (`bulk`).
    pub(crate) fn from_bits(bits: u32, bulk: bool) -> TransferBuf {
        TransferBuf(IoBuf::from_bits(bits), bulk)
    }

    /// The bulk slot this names, if it is one.
    pub(crate) fn bulk(self) -> Option<crate::bulk::BulkRef> {
        self.1
            .then(|| crate::bulk::BulkRef::from_bits(self.0.to_bits()))
    }

    /// Whether the payload sits in a bulk slot (a payload that can go to any shard) rather
    /// than a shard-local transfer buffer.
    pub fn is_bulk(self) -> bool {
        self.1
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
                "transfer buffers exhausted (raise transfer_buffer_count in the shard spec, or the spec.bulk slot counts when bulk pools are attached)"
            }
            TransferError::TooLarge => "larger than a transfer buffer (transfer_buffer_size, or spec.bulk.large.size with bulk pools)",
            TransferError::Stale => "stale transfer buffer reference",
        })
    }
}
