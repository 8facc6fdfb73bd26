//! Generational handles: the only way to address an isolate.
//!
//! ```text
//!  63      56 55      48 47                 28 27                      0
//! +----------+----------+---------------------+-------------------------+
//! | shard: 8 | type: 8  |      slot: 20       |     generation: 28      |
//! +----------+----------+---------------------+-------------------------+
//! ```
//!
//! Generation 0 is never live, so `Handle::NONE` (all zeroes) never addresses anything.
//! Every spawn into a slot gives it the next generation; every handle issued for an earlier
//! occupant is then *stale* and is refused (`StaleHandle`).
//!
//! ## Generations wrap; a type's capacity is never retired
//!
//! After [`GENERATION_MAX`] (2^28 − 1) a slot's next generation is 1 again (counted in
//! `Counters::generation_wraps`), so a slot can be reused for as long as the server runs.
//! The generations of one slot run 1, 2, …, `GENERATION_MAX`, 1, 2, …: a value comes back
//! only after `GENERATION_MAX` incarnations of that slot. Hence:
//!
//! - **A live handle is unique**: a slot has at most one live incarnation, and a handle
//!   carries its shard, type and slot, so no other live isolate has the same handle.
//! - **A recently stale handle never reaches a later occupant**: a handle that went stale
//!   fewer than 2^28 − 1 incarnations of its slot ago carries a generation that no later
//!   incarnation of that slot has had yet, so every send to it is refused. Only a handle
//!   kept across 2^28 − 1 further spawns *into the same slot* could address a later occupant.
//! - **Spawns are spread over the slots**: free slots are reused in FIFO order (a freed slot
//!   goes to the back of its type's free list), so a slot is reused only after every slot
//!   freed before it. With `f` slots of a type free between spawns, it takes
//!   `f × (2^28 − 1)` spawns of that type before any handle could alias (at 100 000 spawns
//!   a second and one free slot, about 45 minutes; with 1 000 free slots, about a month).
//!
//! **No forging.** Outside tests a handle comes only from the runtime: a spawn's result,
//! [`Ctx::me`](crate::Ctx::me), a message's source, or a name
//! ([`Ctx::on_shard`](crate::Ctx::on_shard)). [`Handle::new`] and [`Handle::from_bits`], which
//! build one from raw parts, exist only with the `testing` feature (for tests that step
//! shards by hand); platforms that must store a handle as bits show it again through
//! [`platform::HandleBits`](crate::platform::HandleBits), which addresses nothing.

use core::fmt;

/// Largest slot index a handle can carry (20 bits).
pub const SLOT_MAX: u32 = (1 << 20) - 1;
/// Largest generation a handle can carry (28 bits). The spawn after a slot's incarnation at
/// this generation gives it generation 1 (see the module docs).
pub const GENERATION_MAX: u32 = (1 << 28) - 1;

/// Most shards a system can have: a [`ShardId`] is one byte.
pub const SHARD_COUNT_MAX: usize = 256;
/// Most isolate types a system can register: a [`TypeId`] is one byte.
pub const TYPE_COUNT_MAX: usize = 256;
const _: () = assert!(SHARD_COUNT_MAX == u8::MAX as usize + 1 && TYPE_COUNT_MAX == SHARD_COUNT_MAX);

/// Index of a shard within a system (at most [`SHARD_COUNT_MAX`] shards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShardId(pub u8);

/// Index of an isolate type in the system spec's type list (at most [`TYPE_COUNT_MAX`]
/// types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TypeId(pub u8);

/// A set of shards: one bit for every possible [`ShardId`]. (A fixed-size bitset; no crate
/// of the design card offers one, and 32 bytes on the stack need no storage from the region.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShardSet([u64; SHARD_COUNT_MAX / 64]);

impl ShardSet {
    /// No shard.
    pub(crate) const EMPTY: ShardSet = ShardSet([0; SHARD_COUNT_MAX / 64]);

    /// Every shard but `s`.
    pub(crate) fn all_but(s: ShardId) -> ShardSet {
        let mut set = ShardSet([u64::MAX; SHARD_COUNT_MAX / 64]);
        set.remove(s);
        set
    }

    fn bit(s: ShardId) -> (usize, u64) {
        (usize::from(s.0 / 64), 1 << (s.0 % 64))
    }

    /// Adds `s`.
    pub(crate) fn insert(&mut self, s: ShardId) {
        let (word, bit) = Self::bit(s);
        self.0[word] |= bit;
    }

    /// Removes `s`.
    pub(crate) fn remove(&mut self, s: ShardId) {
        let (word, bit) = Self::bit(s);
        self.0[word] &= !bit;
    }

    /// Whether `s` is in the set.
    pub(crate) fn contains(&self, s: ShardId) -> bool {
        let (word, bit) = Self::bit(s);
        self.0[word] & bit != 0
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
}

/// A 64-bit generational address of one isolate incarnation.
///
/// Without the `testing` feature there is no way to build one from raw parts:
///
#[cfg_attr(not(feature = "testing"), doc = "```compile_fail")]
#[cfg_attr(feature = "testing", doc = "```")]
/// // Only with tina-core's `testing` feature (tests); otherwise this does not compile.
/// let forged = tina_core::Handle::from_bits(0x0100_0000_1000_0001);
/// # let _ = forged;
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(transparent)]
pub struct Handle(u64);

impl Handle {
    /// The handle that addresses nothing.
    pub const NONE: Handle = Handle(0);

    /// Packs the four fields. Returns `None` if slot or generation do not fit, or if the
    /// generation is 0 (never live). Only with the `testing` feature: outside tests, handles
    /// come from the runtime.
    #[cfg(any(test, feature = "testing"))]
    pub const fn new(shard: ShardId, ty: TypeId, slot: u32, generation: u32) -> Option<Handle> {
        Handle::checked(shard, ty, slot, generation)
    }

    /// [`Handle::new`] for the crate itself.
    pub(crate) const fn checked(
        shard: ShardId,
        ty: TypeId,
        slot: u32,
        generation: u32,
    ) -> Option<Handle> {
        if slot > SLOT_MAX || generation > GENERATION_MAX || generation == 0 {
            return None;
        }
        Some(Handle(
            ((shard.0 as u64) << 56)
                | ((ty.0 as u64) << 48)
                | ((slot as u64) << 28)
                | generation as u64,
        ))
    }

    /// Packs fields already known to be in range; generation 0 gives `NONE`.
    pub(crate) const fn pack(shard: ShardId, ty: TypeId, slot: u32, generation: u32) -> Handle {
        if generation == 0 {
            return Handle::NONE;
        }
        Handle(
            ((shard.0 as u64) << 56)
                | ((ty.0 as u64) << 48)
                | (((slot & SLOT_MAX) as u64) << 28)
                | (generation & GENERATION_MAX) as u64,
        )
    }

    /// Reinterprets raw bits. Only with the `testing` feature: outside tests, handles come
    /// from the runtime.
    #[cfg(any(test, feature = "testing"))]
    pub const fn from_bits(bits: u64) -> Handle {
        Handle(bits)
    }

    /// [`Handle::from_bits`] for the crate itself.
    pub(crate) const fn raw(bits: u64) -> Handle {
        Handle(bits)
    }

    /// The raw 64 bits.
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// Whether this is [`Handle::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The shard the isolate lives on.
    pub const fn shard(self) -> ShardId {
        ShardId((self.0 >> 56) as u8)
    }

    /// The isolate's type.
    pub const fn type_id(self) -> TypeId {
        TypeId((self.0 >> 48) as u8)
    }

    /// The slot within the type's arena on that shard.
    pub const fn slot(self) -> u32 {
        ((self.0 >> 28) as u32) & SLOT_MAX
    }

    /// The incarnation of the slot this handle was issued for.
    pub const fn generation(self) -> u32 {
        (self.0 as u32) & GENERATION_MAX
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("Handle::NONE");
        }
        write!(
            f,
            "Handle({}:{}:{}#{})",
            self.shard().0,
            self.type_id().0,
            self.slot(),
            self.generation()
        )
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_fields_roundtrip_at_their_limits() {
        let h = Handle::new(ShardId(255), TypeId(254), SLOT_MAX, GENERATION_MAX).unwrap();
        assert_eq!(h.shard(), ShardId(255));
        assert_eq!(h.type_id(), TypeId(254));
        assert_eq!(h.slot(), SLOT_MAX);
        assert_eq!(h.generation(), GENERATION_MAX);
        let h = Handle::new(ShardId(1), TypeId(2), 3, 4).unwrap();
        assert_eq!(
            (h.shard().0, h.type_id().0, h.slot(), h.generation()),
            (1, 2, 3, 4)
        );
        assert_eq!(Handle::from_bits(h.to_bits()), h);
    }

    #[test]
    fn handle_generation_zero_or_overflow_is_rejected() {
        assert!(Handle::new(ShardId(0), TypeId(0), 0, 0).is_none());
        assert!(Handle::new(ShardId(0), TypeId(0), SLOT_MAX + 1, 1).is_none());
        assert!(Handle::new(ShardId(0), TypeId(0), 0, GENERATION_MAX + 1).is_none());
        assert!(Handle::NONE.is_none());
        assert_eq!(Handle::NONE.generation(), 0);
    }

    #[test]
    fn shard_set_holds_each_of_the_256_shards_apart() {
        let mut set = ShardSet::EMPTY;
        assert!(set.is_empty());
        for s in [0u8, 63, 64, 127, 128, 255] {
            set.insert(ShardId(s));
        }
        for s in 0..=255u8 {
            let expected = matches!(s, 0 | 63 | 64 | 127 | 128 | 255);
            assert_eq!(set.contains(ShardId(s)), expected, "shard {s}");
        }
        set.remove(ShardId(64));
        assert!(!set.contains(ShardId(64)) && set.contains(ShardId(63)));
        let others = ShardSet::all_but(ShardId(200));
        assert!(!others.contains(ShardId(200)));
        assert!(
            (0..=255u8)
                .filter(|&s| s != 200)
                .all(|s| others.contains(ShardId(s)))
        );
    }
}
