//! The message envelope, tags, and the typed payload layer.
//!
//! Every message is one fixed [`Message`] envelope of exactly 128 bytes, aligned to 128 (two
//! cache lines), so pools, mailboxes and cross-shard rings move plain fixed-size values:
//!
//! ```text
//! offset  0: src handle (8)      8: dst handle (8)     16: correlation id (8)
//! offset 24: tag (2) flags (1) len (1) aux (4)         32: payload (96)
//! ```
//!
//! **Tags** below [`USER_TAG_MIN`] (0x40) are reserved for the system (call timeouts, shutdown,
//! transfer notices, shard status, I/O completions, resumption after `Yield`). User code can
//! only name a [`UserTag`], whose constructor rejects system values — at compile time when
//! used in a `const`, as in the typed layer below — so a user can never forge a system message.
//!
//! **Typed layer.** A user message type is any `Copy` struct that implements
//! [`bytemuck::Pod`] and [`Payload`] (which names its tag). Its size is checked against the
//! 96-byte payload at compile time: sending a larger type fails to build. The tag normally
//! comes from [`payload!`](crate::payload), a stable hash of the type's name (or of a name
//! given); a hand-picked `UserTag::new(..)` works too.
//!
//! ```
//! use tina_core::{Payload, Outgoing};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Deposit { account: u64, cents: i64 }
//! tina_core::payload!(Deposit);
//!
//! let out = Outgoing::new(&Deposit { account: 7, cents: 250 });
//! assert_eq!(out.tag(), Deposit::TAG.into());
//! assert_eq!(Deposit::TAG, tina_core::tag_of_name("Deposit"));
//! ```
//!
//! Why `bytemuck`: turning a struct into bytes and back is exactly the kind of `unsafe` code
//! that is easy to get subtly wrong (padding bytes, alignment, invalid bit patterns).
//! `bytemuck::Pod` makes the type itself prove it has no padding and accepts every bit
//! pattern, its derive checks that at compile time, and the crate is `no_std`, allocation-free
//! and among the most audited in the ecosystem. tina-core therefore needs no `unsafe` here.

use crate::model::handle::Handle;
use core::fmt;

/// Bytes of inline payload in every envelope.
pub const PAYLOAD_SIZE_MAX: usize = 96;
/// The first tag available to user messages; everything below is reserved for the system.
pub const USER_TAG_MIN: u16 = 0x40;

/// A 16-bit message tag (system or user).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tag(pub u16);

impl Tag {
    /// Whether this tag is in the reserved system range.
    pub const fn is_system(self) -> bool {
        self.0 < USER_TAG_MIN
    }
}

/// A tag in the user range (≥ 0x40). The only kind of tag user code can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UserTag(u16);

impl UserTag {
    /// Makes a user tag. Panics if `value` is a system tag; in a `const` (the normal use, as
    /// `const TAG: UserTag = UserTag::new(..)`) that panic is a compile error.
    pub const fn new(value: u16) -> UserTag {
        assert!(
            value >= USER_TAG_MIN,
            "user tags start at 0x40; lower tags are reserved"
        );
        UserTag(value)
    }

    /// Makes a user tag from a runtime value, or `None` for a reserved system value.
    pub const fn try_new(value: u16) -> Option<UserTag> {
        if value >= USER_TAG_MIN {
            Some(UserTag(value))
        } else {
            None
        }
    }

    /// The raw tag value.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl From<UserTag> for Tag {
    fn from(t: UserTag) -> Tag {
        Tag(t.0)
    }
}

/// The reserved system tags.
pub mod system_tag {
    use super::Tag;
    /// A call did not get its reply in time, or could not be sent at all.
    pub const CALL_TIMEOUT: Tag = Tag(0x01);
    /// The shard is shutting down: finish up and return `Done`.
    pub const SHUTDOWN: Tag = Tag(0x02);
    /// A transfer buffer is attached to this message.
    pub const TRANSFER: Tag = Tag(0x03);
    /// A peer shard restarted (its old handles are stale).
    pub const SHARD_RESTARTED: Tag = Tag(0x04);
    /// A peer shard was quarantined (sends to it fail).
    pub const SHARD_QUARANTINED: Tag = Tag(0x05);
    /// The isolate's I/O operation completed.
    pub const IO_COMPLETED: Tag = Tag(0x06);
    /// The isolate returned `Yield` and is being run again.
    pub const RESUMED: Tag = Tag(0x07);
}

/// Flag bit: this message is a request that expects a reply.
pub(crate) const FLAG_CALL: u8 = 1 << 0;
/// Flag bit: this message is a reply to a call.
pub(crate) const FLAG_REPLY: u8 = 1 << 1;
/// Flag bit: a transfer buffer is attached (its reference is in `aux`).
pub(crate) const FLAG_TRANSFER: u8 = 1 << 2;
/// Flag bit (with `FLAG_REPLY`): the call could not be delivered on the callee's shard; `aux`
/// holds the `SendError` code.
pub(crate) const FLAG_REFUSED: u8 = 1 << 3;
/// Flag bit (with `FLAG_TRANSFER`): the attached payload is a bulk slot, readable across
/// shards (`crate::bulk`), not a shard-local transfer buffer.
pub(crate) const FLAG_BULK: u8 = 1 << 4;

/// A user message type that can travel inline in an envelope.
///
/// Implement it for `#[repr(C)]` structs deriving `bytemuck::Pod` and `Zeroable`; the size
/// limit (96 bytes) is checked at compile time wherever the type is encoded.
pub trait Payload: bytemuck::Pod {
    /// The tag that identifies this type on the wire.
    const TAG: UserTag;
}

/// The 128-byte message envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct Message {
    src: Handle,
    dst: Handle,
    correlation: u64,
    tag: Tag,
    flags: u8,
    len: u8,
    aux: u32,
    payload: [u8; PAYLOAD_SIZE_MAX],
}

const _: () = assert!(core::mem::size_of::<Message>() == 128);
const _: () = assert!(core::mem::align_of::<Message>() == 128);

impl Default for Message {
    fn default() -> Self {
        Message::EMPTY
    }
}

impl Message {
    /// An all-zero envelope.
    pub const EMPTY: Message = Message {
        src: Handle::NONE,
        dst: Handle::NONE,
        correlation: 0,
        tag: Tag(0),
        flags: 0,
        len: 0,
        aux: 0,
        payload: [0; PAYLOAD_SIZE_MAX],
    };

    pub(crate) fn build(src: Handle, dst: Handle, out: &Outgoing) -> Message {
        Message {
            src,
            dst,
            correlation: 0,
            tag: out.tag,
            flags: 0,
            len: out.len,
            aux: 0,
            payload: out.payload,
        }
    }

    /// Builds an envelope straight from a typed value (no intermediate `Outgoing`).
    #[inline]
    pub(crate) fn typed<T: Payload>(src: Handle, dst: Handle, value: &T) -> Message {
        const { assert!(core::mem::size_of::<T>() <= PAYLOAD_SIZE_MAX) };
        let bytes = bytemuck::bytes_of(value);
        let mut m = Message {
            src,
            dst,
            tag: T::TAG.into(),
            len: bytes.len() as u8,
            ..Message::EMPTY
        };
        m.payload[..bytes.len()].copy_from_slice(bytes);
        m
    }

    /// Overwrites this envelope (a pool slot) with a typed message: the same bytes as
    /// [`Message::typed`] builds, written in place instead of built and copied.
    #[inline]
    pub(crate) fn write_typed<T: Payload>(&mut self, src: Handle, dst: Handle, value: &T) {
        const { assert!(core::mem::size_of::<T>() <= PAYLOAD_SIZE_MAX) };
        let bytes = bytemuck::bytes_of(value);
        self.src = src;
        self.dst = dst;
        self.correlation = 0;
        self.tag = T::TAG.into();
        self.flags = 0;
        self.len = bytes.len() as u8;
        self.aux = 0;
        let (used, rest) = self.payload.split_at_mut(bytes.len());
        used.copy_from_slice(bytes);
        rest.fill(0);
    }

    pub(crate) fn with_call(mut self, correlation: u64) -> Message {
        self.flags |= FLAG_CALL;
        self.correlation = correlation;
        self
    }

    /// The refusal of the call `call` (which could not be delivered for `why`), addressed
    /// back to its caller: a reply that carries no payload, only the reason.
    pub(crate) fn refusal(call: &Message, why: crate::error::SendError) -> Message {
        Message {
            src: call.dst,
            dst: call.src,
            correlation: call.correlation,
            flags: FLAG_REPLY | FLAG_REFUSED,
            aux: why as u32,
            ..Message::EMPTY
        }
    }

    /// For the refusal of a call (sent back by the callee's shard, which could not deliver
    /// it; its source is the address the call was sent to, not a live isolate): why the
    /// call was refused. `None` for every other message.
    pub fn refused(&self) -> Option<crate::error::SendError> {
        if self.flags & FLAG_REFUSED == 0 {
            return None;
        }
        crate::error::SendError::from_code(self.aux as u8)
    }

    /// Readdresses the envelope (a named address resolved to the running incarnation).
    pub(crate) fn set_dst(&mut self, dst: Handle) {
        self.dst = dst;
    }

    pub(crate) fn with_reply(mut self, correlation: u64) -> Message {
        self.flags |= FLAG_REPLY;
        self.correlation = correlation;
        self
    }

    /// The sender (`Handle::NONE` for system notices).
    pub fn src(&self) -> Handle {
        self.src
    }

    /// The addressee.
    pub fn dst(&self) -> Handle {
        self.dst
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// Whether the sender is parked waiting for a reply to this message (answer it with
    /// `Effect::Reply`).
    pub fn is_call(&self) -> bool {
        self.flags & FLAG_CALL != 0
    }

    /// Whether this message is the reply to a call this isolate made.
    pub fn is_reply(&self) -> bool {
        self.flags & FLAG_REPLY != 0
    }

    /// For a call: the token to answer it later with `Ctx::reply_to` (instead of, or after,
    /// returning from the handler).
    pub fn call_token(&self) -> Option<CallToken> {
        self.is_call().then_some(CallToken {
            caller: self.src,
            correlation: self.correlation,
        })
    }

    /// The call's correlation id (0 for plain messages).
    pub fn correlation(&self) -> u64 {
        self.correlation
    }

    /// A 32-bit field for system messages (e.g. a transfer buffer reference).
    pub fn aux(&self) -> u32 {
        self.aux
    }

    #[cfg(test)]
    pub(crate) fn set_aux(&mut self, aux: u32) {
        self.aux = aux;
    }

    /// The payload bytes (`len` of the 96).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.payload[..usize::from(self.len).min(PAYLOAD_SIZE_MAX)]
    }

    /// Decodes the payload as `T` if the tag is `T::TAG` and the length is `T`'s size.
    pub fn decode<T: Payload>(&self) -> Option<T> {
        const { assert!(core::mem::size_of::<T>() <= PAYLOAD_SIZE_MAX) };
        if self.tag != T::TAG.into() || usize::from(self.len) != core::mem::size_of::<T>() {
            return None;
        }
        Some(bytemuck::pod_read_unaligned(
            &self.payload[..core::mem::size_of::<T>()],
        ))
    }

    /// Whether the message carries a `T`.
    pub fn is<T: Payload>(&self) -> bool {
        self.tag == T::TAG.into() && usize::from(self.len) == core::mem::size_of::<T>()
    }

    /// Makes a system notice addressed to `dst` with raw payload bytes (at most 96).
    pub(crate) fn system(dst: Handle, tag: Tag, bytes: &[u8]) -> Message {
        debug_assert!(tag.is_system());
        let mut m = Message {
            dst,
            tag,
            ..Message::EMPTY
        };
        let n = bytes.len().min(PAYLOAD_SIZE_MAX);
        m.payload[..n].copy_from_slice(&bytes[..n]);
        m.len = n as u8;
        m
    }

    /// A timer message: no sender, a user tag chosen when the timer was started.
    pub(crate) fn timer(dst: Handle, tag: Tag) -> Message {
        Message {
            dst,
            tag,
            ..Message::EMPTY
        }
    }

    /// The I/O completion this message carries, if it is an `IO_COMPLETED` notice.
    pub fn io_completion(&self) -> Option<crate::model::io::IoCompletion> {
        if self.tag != system_tag::IO_COMPLETED {
            return None;
        }
        crate::model::io::IoCompletion::decode(self.payload())
    }

    /// Whether this is a `CALL_TIMEOUT` notice (the call got no reply in time or could not be
    /// sent; [`Message::call_failed_to_send`] tells which).
    pub fn is_call_timeout(&self) -> bool {
        self.tag == system_tag::CALL_TIMEOUT
    }

    /// For a `CALL_TIMEOUT` notice: `Some(error)` if the request could not even be sent
    /// (the call failed fast), `None` if it timed out waiting.
    pub fn call_failed_to_send(&self) -> Option<crate::error::SendError> {
        if self.tag != system_tag::CALL_TIMEOUT || self.payload().first() != Some(&1) {
            return None;
        }
        crate::error::SendError::from_code(*self.payload().get(1)?)
    }

    /// The transfer buffer attached to this message, if any (read it with
    /// `Ctx::transfer_data` during this handler call).
    pub fn transfer(&self) -> Option<crate::model::transfer::TransferBuf> {
        (self.flags & FLAG_TRANSFER != 0).then(|| {
            crate::model::transfer::TransferBuf::from_bits(self.aux, self.flags & FLAG_BULK != 0)
        })
    }

    pub(crate) fn with_transfer(mut self, buf: crate::model::transfer::TransferBuf) -> Message {
        self.flags |= FLAG_TRANSFER;
        if buf.is_bulk() {
            self.flags |= FLAG_BULK;
        }
        self.aux = buf.to_bits();
        self
    }

    /// Whether this is the shutdown notice.
    pub fn is_shutdown(&self) -> bool {
        self.tag == system_tag::SHUTDOWN
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("tag", &self.tag)
            .field("flags", &self.flags)
            .field("correlation", &self.correlation)
            .field("len", &self.len)
            .finish()
    }
}

/// Identifies one call so it can be answered later (`Ctx::reply_to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CallToken {
    pub(crate) caller: Handle,
    pub(crate) correlation: u64,
}

impl CallToken {
    /// The caller.
    pub fn caller(&self) -> Handle {
        self.caller
    }
}

/// The payload is larger than the 96 inline bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PayloadTooLarge {
    /// The length that was offered.
    pub len: usize,
}

impl fmt::Display for PayloadTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload of {} bytes exceeds the {PAYLOAD_SIZE_MAX}-byte inline limit; \
             send larger data as a transfer (Ctx::transfer_alloc, transfer_mut, send_transfer), \
             which reaches isolates on any shard when the platform attached bulk pools (up to \
             spec.bulk.large.size bytes)",
            self.len
        )
    }
}

/// A message being sent: a user tag and up to 96 payload bytes. The scheduler fills in the
/// addresses and correlation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    tag: Tag,
    len: u8,
    payload: [u8; PAYLOAD_SIZE_MAX],
}

impl Outgoing {
    /// Encodes a typed value (size checked at compile time).
    pub fn new<T: Payload>(value: &T) -> Outgoing {
        const { assert!(core::mem::size_of::<T>() <= PAYLOAD_SIZE_MAX) };
        let bytes = bytemuck::bytes_of(value);
        let mut payload = [0; PAYLOAD_SIZE_MAX];
        payload[..bytes.len()].copy_from_slice(bytes);
        Outgoing {
            tag: T::TAG.into(),
            len: bytes.len() as u8,
            payload,
        }
    }

    /// Raw bytes under a user tag.
    pub fn from_bytes(tag: UserTag, bytes: &[u8]) -> Result<Outgoing, PayloadTooLarge> {
        if bytes.len() > PAYLOAD_SIZE_MAX {
            return Err(PayloadTooLarge { len: bytes.len() });
        }
        let mut payload = [0; PAYLOAD_SIZE_MAX];
        payload[..bytes.len()].copy_from_slice(bytes);
        Ok(Outgoing {
            tag: tag.into(),
            len: bytes.len() as u8,
            payload,
        })
    }

    /// An empty message with just a tag.
    pub const fn signal(tag: UserTag) -> Outgoing {
        Outgoing {
            tag: Tag(tag.0),
            len: 0,
            payload: [0; PAYLOAD_SIZE_MAX],
        }
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload[..usize::from(self.len)]
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("tag", &self.tag)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Big {
        a: [u64; 12],
    }
    impl Payload for Big {
        const TAG: UserTag = UserTag::new(0x99);
    }

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Small {
        x: u32,
    }
    impl Payload for Small {
        const TAG: UserTag = UserTag::new(0x98);
    }

    #[test]
    fn message_typed_roundtrip_full_96_bytes() {
        let v = Big {
            a: core::array::from_fn(|i| i as u64 * 0x0101_0101),
        };
        let m = Message::build(Handle::NONE, Handle::NONE, &Outgoing::new(&v));
        assert_eq!(m.payload().len(), 96);
        assert_eq!(m.decode::<Big>(), Some(v));
        assert_eq!(m.decode::<Small>(), None, "wrong tag must not decode");
        assert!(m.is::<Big>());
    }

    #[test]
    fn message_user_tag_rejects_system_range() {
        assert!(UserTag::try_new(0x3f).is_none());
        assert_eq!(UserTag::try_new(0x40).map(UserTag::get), Some(0x40));
        assert!(!Tag::from(UserTag::new(0x40)).is_system());
        assert!(system_tag::SHUTDOWN.is_system());
    }

    #[test]
    fn message_from_bytes_rejects_oversized_payload() {
        let tag = UserTag::new(0x50);
        assert_eq!(
            Outgoing::from_bytes(tag, &[0; 97]).unwrap_err(),
            PayloadTooLarge { len: 97 }
        );
        assert_eq!(
            Outgoing::from_bytes(tag, &[7; 96]).unwrap().payload(),
            &[7; 96]
        );
    }

    #[test]
    fn message_length_mismatch_does_not_decode() {
        let m = Message::build(
            Handle::NONE,
            Handle::NONE,
            &Outgoing::from_bytes(Small::TAG, &[1, 2, 3]).unwrap(),
        );
        assert_eq!(m.decode::<Small>(), None);
    }
}
