//! Addresses: names that survive restarts, typed addresses, and the payloads a type accepts.
//!
//! A [`Handle`] names one *incarnation*: after its isolate restarts, the handle is stale for
//! ever. Services need something steadier, so a static child can be declared with a
//! [`Name`] in the spec ([`ChildSpec::named`](crate::ChildSpec::named)) and reached from any
//! shard as "the isolate named N on shard S" ([`Ctx::on_shard`](crate::Ctx::on_shard)) or "on
//! the shard that owns key K" ([`Ctx::by_key`](crate::Ctx::by_key)), with no generation in
//! sight:
//!
//! ```text
//!   sender (any shard)                       owning shard S
//!   ctx.send(ctx.by_key(STORE, key), &m) ─┐
//!     address = S : type : NAMED : key28  └─ring─► resolve key28 in S's name table (O(1),
//!                                                 built at boot) → the child's current
//!                                                 handle → its mailbox; not running → a
//!                                                 definite refusal (NotRunning), and for a
//!                                                 Call a failure notice back to the caller
//! ```
//!
//! A named address is an ordinary 64-bit handle whose slot field holds the reserved value
//! [`SLOT_MAX`](crate::SLOT_MAX) and whose generation field holds the name's 28-bit key (a
//! stable FNV-1a hash of its text; see [`Name::key`]); its type field is unused (255: the
//! name alone determines the isolate). Spec validation refuses two names on one shard with
//! the same text or key, and a child whose type is not the name's type, so building an
//! address costs no lookup at all. The
//! owning shard resolves the name to the current incarnation at delivery, so a restart is
//! invisible to senders except for messages that arrive while no incarnation runs.
//!
//! **Typed addresses.** [`Address<T>`] is a handle that knows its isolate type, and
//! [`Accepts<M>`] says which payloads `T` takes (declared with [`accepts!`](crate::accepts)).
//! Sending `M` to an `Address<T>` where `T` does not accept `M` does not compile:
//!
//! ```compile_fail
//! use tina_core::*;
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Ping { n: u64 }
//! tina_core::payload!(Ping);
//!
//! struct Listener;
//! impl Isolate for Listener {
//!     type Args = ();
//!     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
//!         Ok((Listener, Effect::Receive))
//!     }
//!     fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect { Effect::Receive }
//! }
//! tina_core::accepts!(Listener: ); // accepts nothing
//!
//! fn poke(ctx: &mut Ctx, to: Address<Listener>) {
//!     let _ = ctx.send(to, &Ping { n: 1 }); // error: Listener does not accept Ping
//! }
//! ```
//!
//! The same code compiles once the type accepts the payload:
//!
//! ```
//! use tina_core::*;
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Ping { n: u64 }
//! tina_core::payload!(Ping);
//!
//! struct Listener;
//! impl Isolate for Listener {
//!     type Args = ();
//!     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
//!         Ok((Listener, Effect::Receive))
//!     }
//!     fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect { Effect::Receive }
//! }
//! tina_core::accepts!(Listener: Ping);
//!
//! fn poke(ctx: &mut Ctx, to: Address<Listener>) {
//!     let _ = ctx.send(to, &Ping { n: 1 });
//! }
//! ```
//!
//! An untyped [`Handle`] still takes any payload (for generic code such as a router).
//!
//! **Tags without numbering.** [`payload!`](crate::payload) derives a payload's tag from its
//! type name (or a name you give) with the same stable hash, so tags are identical across
//! builds, profiles and platforms (never `core::any::TypeId`, which is not); [`accepts!`]
//! fails to compile if two payloads one type accepts share a tag.

use crate::model::handle::{GENERATION_MAX, Handle, SLOT_MAX, ShardId, TypeId};
use crate::model::isolate::Isolate;
use crate::model::message::{Payload, USER_TAG_MIN, UserTag};
use core::fmt;
use core::marker::PhantomData;

/// 32-bit FNV-1a of `bytes` (the stable hash behind names, tags and byte-string keys; it
/// never changes between releases).
pub const fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u32;
        h = h.wrapping_mul(0x0100_0193);
        i += 1;
    }
    h
}

/// 64-bit FNV-1a of `bytes` (how byte-string keys become shard keys).
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The 28-bit, never-zero key of a name's text.
const fn name_key(text: &str) -> u32 {
    let h = fnv1a32(text.as_bytes());
    let k = (h ^ (h >> 28)) & GENERATION_MAX;
    if k == 0 { 1 } else { k }
}

/// The name of a static child of type `T`: a compile-time constant, unique per shard.
///
/// ```
/// # use tina_core::*;
/// # struct Store;
/// # impl Isolate for Store {
/// #     type Args = ();
/// #     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> { Ok((Store, Effect::Receive)) }
/// #     fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect { Effect::Receive }
/// # }
/// const STORE: Name<Store> = Name::new("store");
/// let child = ChildSpec::named(STORE, &(), Restart::Permanent);
/// # let _ = child;
/// ```
pub struct Name<T: Isolate> {
    text: &'static str,
    key: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T: Isolate> Name<T> {
    /// A name. Its key is a stable hash of `text`.
    pub const fn new(text: &'static str) -> Name<T> {
        Name {
            text,
            key: name_key(text),
            _type: PhantomData,
        }
    }

    /// The name's text.
    pub const fn text(&self) -> &'static str {
        self.text
    }

    /// The name's 28-bit key (never 0): the low 28 bits of the FNV-1a-32 hash of its text,
    /// folded with its top 4 bits.
    pub const fn key(&self) -> u32 {
        self.key
    }

    pub(crate) const fn erase(&self) -> NameRef {
        NameRef {
            text: self.text,
            key: self.key,
            ty: crate::spec::TypeRef::of::<T>(),
        }
    }
}

impl<T: Isolate> Clone for Name<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Isolate> Copy for Name<T> {}

impl<T: Isolate> fmt::Debug for Name<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.text)
    }
}

/// A name with its type erased, as the spec stores it (validation checks that the child
/// bearing it is of that type).
#[derive(Clone, Copy, Debug)]
pub struct NameRef {
    pub(crate) text: &'static str,
    pub(crate) key: u32,
    pub(crate) ty: crate::spec::TypeRef,
}

impl NameRef {
    /// The name's text.
    pub const fn text(&self) -> &'static str {
        self.text
    }

    /// The name's 28-bit key.
    pub const fn key(&self) -> u32 {
        self.key
    }
}

/// The type field of a named address: the name alone determines the isolate (validation
/// checks each named child is of its name's type), so the sender need not look its type up.
pub(crate) const NAMED_TYPE: TypeId = TypeId(u8::MAX);

impl Handle {
    /// The address of the isolate named by `key` on `shard`.
    pub(crate) const fn named(shard: ShardId, key: u32) -> Handle {
        Handle::pack(shard, NAMED_TYPE, SLOT_MAX, key)
    }

    /// Whether this is a named address (resolved by the owning shard at delivery), not one
    /// incarnation's handle.
    pub const fn is_named(self) -> bool {
        !self.is_none() && self.slot() == SLOT_MAX
    }

    /// For a named address, the name's key.
    pub const fn name_key(self) -> Option<u32> {
        if self.is_named() {
            Some(self.generation())
        } else {
            None
        }
    }
}

/// A stable shard key: integers map as themselves, byte strings through [`fnv1a64`]; then
/// [`key_to_shard`](crate::key_to_shard) picks the shard. Both steps are fixed for good, so a
/// key lands on the same shard in every release for the same shard count.
pub trait ShardKey {
    /// The key as 64 bits.
    fn shard_key(&self) -> u64;
}

macro_rules! int_shard_key {
    ($($t:ty),*) => {$(
        impl ShardKey for $t {
            fn shard_key(&self) -> u64 {
                *self as u64
            }
        }
    )*};
}
int_shard_key!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl ShardKey for [u8] {
    fn shard_key(&self) -> u64 {
        fnv1a64(self)
    }
}

impl<const N: usize> ShardKey for [u8; N] {
    fn shard_key(&self) -> u64 {
        fnv1a64(self)
    }
}

impl ShardKey for str {
    fn shard_key(&self) -> u64 {
        fnv1a64(self.as_bytes())
    }
}

impl<K: ShardKey + ?Sized> ShardKey for &K {
    fn shard_key(&self) -> u64 {
        (**self).shard_key()
    }
}

/// The address of an isolate of type `T`: a named address or one incarnation's handle.
/// Sending a payload `T` does not [accept](Accepts) to it does not compile.
pub struct Address<T: Isolate> {
    handle: Handle,
    _type: PhantomData<fn() -> T>,
}

impl<T: Isolate> Address<T> {
    pub(crate) const fn new(handle: Handle) -> Address<T> {
        Address {
            handle,
            _type: PhantomData,
        }
    }

    /// The untyped handle.
    pub const fn handle(self) -> Handle {
        self.handle
    }

    /// The shard the isolate lives on.
    pub const fn shard(self) -> ShardId {
        self.handle.shard()
    }
}

impl<T: Isolate> Clone for Address<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Isolate> Copy for Address<T> {}

impl<T: Isolate> PartialEq for Address<T> {
    fn eq(&self, other: &Self) -> bool {
        self.handle == other.handle
    }
}
impl<T: Isolate> Eq for Address<T> {}

impl<T: Isolate> fmt::Debug for Address<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.handle, f)
    }
}

impl<T: Isolate> fmt::Display for Address<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.handle, f)
    }
}

impl<T: Isolate> From<Address<T>> for Handle {
    fn from(a: Address<T>) -> Handle {
        a.handle
    }
}

/// `Self` (an isolate type) takes payload `M`. Declare it with [`accepts!`](crate::accepts).
pub trait Accepts<M: Payload>: Isolate {}

/// Something a payload `M` can be sent to: an [`Address<T>`] whose `T` accepts `M`, or an
/// untyped [`Handle`] (anything goes).
pub trait Recipient<M: Payload>: Copy {
    /// The handle the envelope is addressed to.
    fn to_handle(self) -> Handle;
}

impl<M: Payload> Recipient<M> for Handle {
    #[inline]
    fn to_handle(self) -> Handle {
        self
    }
}

impl<M: Payload, T: Accepts<M>> Recipient<M> for Address<T> {
    #[inline]
    fn to_handle(self) -> Handle {
        self.handle
    }
}

/// The user tag of a payload named `name`: a stable hash of the text, folded into the user
/// range (what [`payload!`](crate::payload) uses).
pub const fn tag_of_name(name: &str) -> UserTag {
    let h = fnv1a32(name.as_bytes());
    let folded = ((h >> 16) ^ h) & 0xffff;
    let span = 0x1_0000 - USER_TAG_MIN as u32;
    UserTag::new((USER_TAG_MIN as u32 + folded % span) as u16)
}

/// Panics (a compile error in a `const`) if two tags in `tags` are equal: what
/// [`accepts!`](crate::accepts) checks.
pub const fn assert_distinct_tags(tags: &[UserTag]) {
    let mut i = 0;
    while i < tags.len() {
        let mut j = i + 1;
        while j < tags.len() {
            assert!(
                tags[i].get() != tags[j].get(),
                "two payloads accepted by one isolate type share a tag: give one of them \
                 another name with payload!(Type = \"other name\")"
            );
            j += 1;
        }
        i += 1;
    }
}

/// Implements [`Payload`] for a `Pod` type with a tag derived from its name (or from the
/// name given), stable across builds and platforms: `payload!(Get)`,
/// `payload!(Get = "kv.Get")`.
#[macro_export]
macro_rules! payload {
    ($ty:ty) => {
        impl $crate::Payload for $ty {
            const TAG: $crate::UserTag = $crate::tag_of_name(stringify!($ty));
        }
    };
    ($ty:ty = $name:expr) => {
        impl $crate::Payload for $ty {
            const TAG: $crate::UserTag = $crate::tag_of_name($name);
        }
    };
}

/// Declares the payloads an isolate type accepts: `accepts!(Store: Get, Put, Del);`. Fails
/// to compile if two of them share a tag:
///
/// ```compile_fail
/// use tina_core::*;
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Get { key: u64 }
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Put { key: u64 }
/// tina_core::payload!(Get = "kv");
/// tina_core::payload!(Put = "kv"); // the same tag as Get
///
/// struct Store;
/// impl Isolate for Store {
///     type Args = ();
///     fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
///         Ok((Store, Effect::Receive))
///     }
///     fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect { Effect::Receive }
/// }
/// tina_core::accepts!(Store: Get, Put); // error: two payloads share a tag
/// ```
#[macro_export]
macro_rules! accepts {
    ($ty:ty : $($m:ty),* $(,)?) => {
        $(impl $crate::Accepts<$m> for $ty {})*
        const _: () = $crate::assert_distinct_tags(&[$(<$m as $crate::Payload>::TAG),*]);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        // The published FNV-1a test vectors: these values must never change.
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn named_addresses_are_told_apart_from_incarnations() {
        let h = Handle::named(ShardId(3), name_key("store"));
        assert!(h.is_named());
        assert_eq!(h.shard(), ShardId(3));
        assert_eq!(h.type_id(), NAMED_TYPE);
        assert_eq!(h.name_key(), Some(name_key("store")));
        let plain = Handle::pack(ShardId(3), TypeId(2), 0, 1);
        assert!(!plain.is_named() && plain.name_key().is_none());
        assert!(!Handle::NONE.is_named());
    }

    #[test]
    fn tags_from_names_are_in_the_user_range_and_stable() {
        let t = tag_of_name("Get");
        assert!(t.get() >= USER_TAG_MIN);
        assert_eq!(t, tag_of_name("Get"));
        assert_ne!(tag_of_name("Get"), tag_of_name("Put"));
        assert_ne!(name_key("a"), 0);
    }

    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Renamed {
        a: u32,
    }
    crate::payload!(Renamed = "kv.renamed");
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Plain {
        a: u32,
    }
    crate::payload!(Plain);

    #[test]
    fn payload_tags_come_from_the_given_name_or_the_type_name() {
        assert_eq!(Renamed::TAG, tag_of_name("kv.renamed"));
        assert_eq!(Plain::TAG, tag_of_name("Plain"));
        assert_distinct_tags(&[Renamed::TAG, Plain::TAG]);
    }

    #[test]
    fn byte_and_integer_keys_hash_stably() {
        assert_eq!(7u32.shard_key(), 7);
        assert_eq!("abc".shard_key(), fnv1a64(b"abc"));
        assert_eq!(b"abc".shard_key(), "abc".shard_key());
        assert_eq!(b"abc"[..].shard_key(), "abc".shard_key());
    }
}
