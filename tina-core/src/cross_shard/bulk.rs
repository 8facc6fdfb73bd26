//! Bulk slots: payloads larger than an envelope, handed from one shard to another (or to an
//! isolate of the same shard) without copying them through a ring.
//!
//! # Design
//!
//! ```text
//!   shard S (owner of the pool)                         shard R (receiver)
//!   ───────────────────────────                         ─────────────────────────────
//!   BulkOwner::alloc(len)  ─ a slot of S's own pool
//!   write the bytes once, in place (bytes_mut)
//!   BulkOwner::lend(draft, R) ─► BulkRef ─► envelope ─► ring S→R (publish: Release)
//!                                                       │ drain (Acquire)
//!                                                       v
//!                                        BulkPeer::accept(ref)  (R now holds the slot)
//!                                        BulkPeer::bytes(ref): read in place, S's memory
//!                                        BulkPeer::give_back(ref): slot.returned (Release)
//!   BulkOwner::alloc sees slot.returned = slot.lent (Acquire): the slot is S's again
//! ```
//!
//! - **One pool per shard, shared by every destination.** Each shard owns one pool of bulk
//!   slots in two size classes (by default 32 slots of 4 KiB and 4 of 66 KiB, see
//!   [`BulkConfig`]), carved once at boot by the boot-layout walk
//!   ([`bulk_memory_required`](crate::bulk_memory_required)). A slot may go to any shard,
//!   including its own, so the memory grows linearly with the number of shards, not with its
//!   square; the pools' totals at the defaults are in the table below.
//! - **One copy.** The sender writes the payload straight into its own slot; the envelope
//!   that travels through the ordinary ring carries only the slot reference
//!   (`FLAG_TRANSFER` with `FLAG_BULK`, and `aux`), so a large message keeps its place in the
//!   order of the sender's other messages to that shard. The receiver reads the bytes in
//!   place, in the sender's memory, during its handler call. Compared with streaming the
//!   bytes through the envelope ring in 96-byte pieces, this avoids a copy on each side and
//!   keeps the ring's slots 128 bytes (a design argument: the two have not been benchmarked
//!   against each other yet).
//! - **No read-modify-write anywhere**, so it works with the load/store atomics of
//!   `thumbv6m-none-eabi` like the ring: every word of a slot has a single writer at any time.
//!   - `lent` (owner only): the generation of the current lending, whether it was sent and the
//!     shard it was lent to.
//!   - `taken` (the destination only): set to `lent` when the destination accepts the
//!     reference out of its inbound ring (or its own mailbox for a local send).
//!   - `returned` (the destination, or the owner for a slot never sent): set to `lent` with
//!     `Release` when the destination is done; the slot is free again when the owner sees
//!     `returned == lent` with an `Acquire` load.
//!   - `len` (owner only, a cell): the payload length, written before the hand-off.
//! - **Why a per-slot return word and not the reverse ring.** The return never fails and never
//!   waits: a receiver drops a slot with one store, whatever the state of the ring back to the
//!   sender (full, or its producer half on a shard that is recovering), and a receiver that
//!   is torn down returns everything it holds without sending anything. The owner's cost is one
//!   `Acquire` load of a slot's return word when it allocates that slot (a plain load on x86
//!   and a `ldar` on ARM), and the slots are tried from a rotating cursor, so the oldest lending
//!   — the one most likely back — is tried first.
//! - **Delivered whole or not at all.** The reference only travels after every byte is
//!   written, and the bytes cannot change until the reference is given back. A reference that
//!   is stale (already given back, lent again since, or forged) is refused by every operation,
//!   never answered with another message's bytes: it carries the generation, and the slot's
//!   words name the one shard that may hold it.
//! - **Crashes never leak a slot.** The slots are the shard's, not an isolate's: an isolate
//!   that dies with messages in flight loses nothing. A receiver that tears down a message it
//!   has not read gives its slot back; [`BulkPeer::reclaim_taken`] gives back everything the
//!   receiving shard accepted (a shard that is rebuilt); [`BulkOwner::reclaim_drafts`] frees
//!   the slots the owner allocated but never sent. A slot lent to another shard stays lent
//!   until that shard gives it back: the owner never takes back memory a live reader may read.
//!
//! # In the kernel and the platforms
//!
//! A platform carves every shard's pool ([`carve_bulk_pool`](crate::wiring::carve_bulk_pool)),
//! gives each shard its [`BulkPorts`] (its own pool's owner half and its peer half of every
//! pool) and attaches them with [`Shard::attach_bulk`](crate::Shard::attach_bulk). From then on
//! the shard's transfers (`Ctx::transfer_alloc`, `transfer_mut`, `send_transfer`,
//! `transfer_data`) use bulk slots, to an isolate of any shard: a slot is the handler call's
//! until sent (cancelled when the call ends otherwise), the receiving shard accepts it when the
//! envelope enters the shard (out of the ring, or at once for a local send), the receiving
//! call reads it in place, and it goes back when that call ends, when the message is refused
//! (dead or full receiver, quarantined shard), or when its receiver is torn down with it still
//! queued (an isolate crash, a shard recovery). The simulator attaches bulk pools to every
//! shard; the Linux and bare-metal drivers do not yet (their transfers stay shard-local).
//!
//! # Sizes
//!
//! Each shard's pool is [`BulkConfig::slot_bytes`] of payload plus one 128-byte header per
//! slot ([`BulkSlot`]). At the defaults ([`BulkConfig::DEFAULT`]), as measured by the
//! boot-layout walk ([`SystemMemory::of`](crate::SystemMemory::of)); the `bulk_memory_table`
//! test of `tests/bulk.rs` recomputes every row and fails if this table disagrees (for
//! comparison, the default rings alone take 8.56 GB at 256 shards):
//!
//! | shards | bulk pools, total |
//! |-------:|------------------:|
//! |      2 |          0.77 MiB |
//! |     16 |          6.20 MiB |
//! |     64 |         24.78 MiB |
//! |    256 |         99.14 MiB |
//!
//! (A service with many shards and few large messages lowers `large.slots`; one with no large
//! messages sets both counts to 0.)
//!
//! # Verification
//!
//! - Unit tests below; loom, every interleaving up to two preemptions of the hand-off and the
//!   return through a real ring, and a planted ordering bug (`--cfg tina_planted_bulk_bug`
//!   makes [`BulkPeer::give_back`] store with `Relaxed`) that the model must reject:
//!   `CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p tina-core --release --test loom_bulk`.
//! - Miri over the unit tests and a threaded test:
//!   `cargo +nightly miri test -p tina-core --lib bulk` and
//!   `cargo +nightly miri test -p tina-core --test bulk`.

use core::fmt;
use core::marker::PhantomData;

use crate::cross_shard::sync::{AtomicU32, Ordering, UnsafeCell};
use crate::model::handle::ShardId;

/// The largest bulk slot a spec may ask for (1 MiB).
pub const BULK_SLOT_SIZE_MAX: u32 = 1 << 20;

/// Bulk slots one shard may have (both classes together): a reference names a slot with 12
/// bits.
pub const BULK_SLOTS_MAX: u32 = 1 << 12;

/// Slot sizes are multiples of this (so every slot starts on a cache line).
pub const BULK_SLOT_ALIGN: u32 = 64;

/// One size class of a shard's bulk pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BulkClass {
    /// Slots of this class (0 disables the class).
    pub slots: u32,
    /// Bytes per slot: a multiple of 64, at most [`BULK_SLOT_SIZE_MAX`].
    pub size: u32,
}

/// The sizes of every shard's bulk pool: a class of small slots, tried first, and a class of
/// large ones (each shard has one pool, shared by every destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BulkConfig {
    /// Small slots (a payload up to `small.size` bytes takes one if any is free).
    pub small: BulkClass,
    /// Large slots (`large.size` is the largest payload, and must be ≥ `small.size`).
    pub large: BulkClass,
}

impl BulkConfig {
    /// 32 slots of 4 KiB and 4 of 66 KiB (64 KiB of value plus room for a key and a header).
    pub const DEFAULT: BulkConfig = BulkConfig {
        small: BulkClass {
            slots: 32,
            size: 4 * 1024,
        },
        large: BulkClass {
            slots: 4,
            size: 66 * 1024,
        },
    };

    /// No bulk slots at all (every payload fits in an envelope).
    pub const NONE: BulkConfig = BulkConfig {
        small: BulkClass { slots: 0, size: 0 },
        large: BulkClass { slots: 0, size: 0 },
    };

    /// Slots of both classes.
    pub const fn slot_count(&self) -> u32 {
        self.small.slots.saturating_add(self.large.slots)
    }

    /// The largest payload one slot takes (0 without slots).
    pub const fn payload_max(&self) -> u32 {
        if self.large.slots > 0 {
            self.large.size
        } else if self.small.slots > 0 {
            self.small.size
        } else {
            0
        }
    }

    /// Payload bytes of one shard's pool (`None` if that overflows `usize`).
    pub fn slot_bytes(&self) -> Option<usize> {
        let small = (self.small.slots as usize).checked_mul(self.small.size as usize)?;
        let large = (self.large.slots as usize).checked_mul(self.large.size as usize)?;
        small.checked_add(large)
    }
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig::DEFAULT
    }
}

/// Why a bulk slot could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BulkError {
    /// Every slot that fits is lent out; it comes back when its receiver is done.
    Exhausted,
    /// More bytes than the largest slot holds.
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The largest slot.
        max: usize,
    },
}

impl fmt::Display for BulkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BulkError::Exhausted => f.write_str(
                "every bulk slot is lent out (raise spec.bulk slot counts, or let receivers drain)",
            ),
            BulkError::TooLarge { len, max } => write!(
                f,
                "payload of {len} bytes exceeds the largest bulk slot ({max} bytes, spec.bulk.large.size)"
            ),
        }
    }
}

/// One slot's shared words, alone on its 128-byte line(s) so receivers returning different
/// slots never share a line. The payload lives apart, in the pool's byte area.
#[repr(C, align(128))]
pub struct BulkSlot {
    /// Owner only: `generation << 9 | sent << 8 | destination`.
    lent: AtomicU32,
    /// Destination only: the `lent` word it accepted.
    taken: AtomicU32,
    /// Destination (or the owner, for a slot never sent): the `lent` word it gave back.
    returned: AtomicU32,
    /// Owner only, written before the hand-off: the payload length.
    len: UnsafeCell<u32>,
}

impl BulkSlot {
    /// A free slot.
    #[cfg(not(loom))]
    pub const fn new() -> BulkSlot {
        BulkSlot {
            lent: AtomicU32::new(0),
            taken: AtomicU32::new(0),
            returned: AtomicU32::new(0),
            len: UnsafeCell::new(0),
        }
    }

    /// A free slot (loom build: the cell registers with the running model).
    #[cfg(loom)]
    pub fn new() -> BulkSlot {
        BulkSlot {
            lent: AtomicU32::new(0),
            taken: AtomicU32::new(0),
            returned: AtomicU32::new(0),
            len: UnsafeCell::new(0),
        }
    }
}

impl Default for BulkSlot {
    fn default() -> Self {
        BulkSlot::new()
    }
}

const SENT: u32 = 1 << 8;
const GEN_SHIFT: u32 = 9;
const REF_GEN_MASK: u32 = 0xFFF;

fn word_dest(word: u32) -> u8 {
    word as u8
}

fn word_sent(word: u32) -> bool {
    word & SENT != 0
}

fn word_gen(word: u32) -> u32 {
    word >> GEN_SHIFT
}

/// A reference to one lent bulk slot: the owner shard, the slot and the low bits of the
/// lending's generation. `Copy`, but only the shard it was lent to can read it, and only until
/// it gives it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BulkRef(u32);

impl BulkRef {
    fn new(owner: ShardId, index: u32, word: u32) -> BulkRef {
        BulkRef(u32::from(owner.0) << 24 | index << 12 | (word_gen(word) & REF_GEN_MASK))
    }

    /// The shard whose pool holds the bytes.
    pub fn owner(self) -> ShardId {
        ShardId((self.0 >> 24) as u8)
    }

    fn index(self) -> usize {
        ((self.0 >> 12) & (BULK_SLOTS_MAX - 1)) as usize
    }

    fn generation(self) -> u32 {
        self.0 & REF_GEN_MASK
    }

    /// The reference as the 32 bits an envelope carries.
    pub fn to_bits(self) -> u32 {
        self.0
    }

    /// A reference from an envelope's 32 bits (checked when used, never trusted).
    pub fn from_bits(bits: u32) -> BulkRef {
        BulkRef(bits)
    }
}

/// A slot the owner allocated and has not lent yet (it writes the payload through
/// [`BulkOwner::bytes_mut`]). `Copy`; every use is checked against the slot's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BulkDraft {
    index: u32,
    word: u32,
}

/// One shard's bulk pool: the slot words and the payload bytes, shared by the owner's
/// [`BulkOwner`] and every shard's [`BulkPeer`] over it.
pub struct BulkPool<'a> {
    owner: ShardId,
    slots: &'a [BulkSlot],
    small: BulkClass,
    large: BulkClass,
    small_bytes: *mut u8,
    large_bytes: *mut u8,
    _bytes: PhantomData<&'a mut [u8]>,
}

// SAFETY: the pool hands out byte references only through `BulkOwner::bytes_mut` (slots
// allocated and not yet sent: only the owner, which is `!Sync` and unique, can reach them) and
// `BulkPeer::bytes` (slots accepted by that peer's shard and not given back: no one writes
// them). Which side may touch a slot is decided by its atomic words, and each handover is a
// Release/Acquire pair (module docs), so sharing the pool between threads cannot race.
unsafe impl Sync for BulkPool<'_> {}
// SAFETY: as for `Sync`: the raw pointers are into memory the pool borrows for `'a`.
unsafe impl Send for BulkPool<'_> {}

impl<'a> BulkPool<'a> {
    /// The pool of shard `owner` over `slots` (one per slot of `config`, free) and the two
    /// byte areas (`small.slots × small.size` and `large.slots × large.size` bytes), or `None`
    /// if the lengths do not match `config`.
    pub fn new(
        owner: ShardId,
        config: BulkConfig,
        slots: &'a mut [BulkSlot],
        small_bytes: &'a mut [u8],
        large_bytes: &'a mut [u8],
    ) -> Option<BulkPool<'a>> {
        let small_len = (config.small.slots as usize).checked_mul(config.small.size as usize)?;
        let large_len = (config.large.slots as usize).checked_mul(config.large.size as usize)?;
        if slots.len() != config.slot_count() as usize
            || slots.len() > BULK_SLOTS_MAX as usize
            || small_bytes.len() != small_len
            || large_bytes.len() != large_len
        {
            return None;
        }
        Some(BulkPool {
            owner,
            slots,
            small: config.small,
            large: config.large,
            small_bytes: small_bytes.as_mut_ptr(),
            large_bytes: large_bytes.as_mut_ptr(),
            _bytes: PhantomData,
        })
    }

    /// The owning shard.
    pub fn owner(&self) -> ShardId {
        self.owner
    }

    /// Slots in the pool.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Slots not free: allocated, lent or held (for shutdown accounting; a snapshot).
    pub fn in_use(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.returned.load(Ordering::Acquire) != s.lent.load(Ordering::Relaxed))
            .count()
    }

    /// The largest payload one slot takes.
    pub fn payload_max(&self) -> usize {
        if self.large.slots > 0 {
            self.large.size as usize
        } else if self.small.slots > 0 {
            self.small.size as usize
        } else {
            0
        }
    }

    /// Start and capacity of slot `index`'s bytes.
    fn area(&self, index: usize) -> (*mut u8, usize) {
        let small = self.small.slots as usize;
        if index < small {
            // Within the small area (its length is `small × size`, checked in `new`).
            (
                self.small_bytes
                    .wrapping_add(index * self.small.size as usize),
                self.small.size as usize,
            )
        } else {
            (
                self.large_bytes
                    .wrapping_add((index - small) * self.large.size as usize),
                self.large.size as usize,
            )
        }
    }

    fn len_of(&self, slot: &BulkSlot) -> usize {
        slot.len.with(|p| {
            // SAFETY: `len` is written only by the owner while the slot is allocated and not
            // sent; every caller has checked the slot is in a state where the owner no longer
            // writes it (sent and accepted, or the owner itself), with the Release/Acquire
            // pairs of the module docs ordering that last write before this read.
            unsafe { *p }
        }) as usize
    }
}

/// The owner's side of its shard's pool: allocates, writes and lends. One per pool (made by
/// [`BulkPool::split`]); not `Clone`, not `Sync`.
pub struct BulkOwner<'a> {
    pool: &'a BulkPool<'a>,
    cursor: [usize; 2],
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

/// A shard's side of one pool (its own or a peer's): accepts, reads and gives back what was
/// lent to it. One per (pool, shard) pair; not `Clone`, not `Sync`.
pub struct BulkPeer<'a> {
    pool: &'a BulkPool<'a>,
    me: ShardId,
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

impl<'a> BulkPool<'a> {
    /// The owner's half and one peer half per shard `0..shard_count` (the owner's own
    /// included, for sends inside the shard), each handed to `place`. Call once per pool: the
    /// halves' single-writer rules rely on there being one owner and one peer per shard.
    pub fn split(
        &'a self,
        shard_count: usize,
        mut place: impl FnMut(ShardId, BulkPeer<'a>),
    ) -> BulkOwner<'a> {
        for s in 0..shard_count.min(usize::from(u8::MAX) + 1) {
            place(
                ShardId(s as u8),
                BulkPeer {
                    pool: self,
                    me: ShardId(s as u8),
                    _not_sync: PhantomData,
                },
            );
        }
        BulkOwner {
            pool: self,
            cursor: [0, 0],
            _not_sync: PhantomData,
        }
    }
}

impl<'a> BulkOwner<'a> {
    /// The pool.
    pub fn pool(&self) -> &'a BulkPool<'a> {
        self.pool
    }

    /// Allocates a slot for `len` bytes: a small one if `len` fits and one is free, else a
    /// large one. Its bytes are written with [`bytes_mut`](Self::bytes_mut), then it is sent
    /// with [`lend`](Self::lend) or dropped with [`cancel`](Self::cancel).
    pub fn alloc(&mut self, len: usize) -> Result<BulkDraft, BulkError> {
        let pool = self.pool;
        let max = pool.payload_max();
        if len > max {
            return Err(BulkError::TooLarge { len, max });
        }
        let small = pool.small.slots as usize;
        let classes = [(0, small), (small, pool.slots.len())];
        for (class, &(start, end)) in classes.iter().enumerate() {
            let size = if class == 0 {
                pool.small.size
            } else {
                pool.large.size
            };
            if end == start || len > size as usize {
                continue;
            }
            if let Some(draft) = self.alloc_in(class, start, end, len) {
                return Ok(draft);
            }
        }
        Err(BulkError::Exhausted)
    }

    fn alloc_in(
        &mut self,
        class: usize,
        start: usize,
        end: usize,
        len: usize,
    ) -> Option<BulkDraft> {
        let count = end - start;
        for step in 0..count {
            let index = start + (self.cursor[class] + step) % count;
            let slot = &self.pool.slots[index];
            let lent = slot.lent.load(Ordering::Relaxed);
            // Acquire: the last holder's reads of the bytes happen-before our writes below.
            if slot.returned.load(Ordering::Acquire) != lent {
                continue;
            }
            self.cursor[class] = (index - start + 1) % count;
            let generation = word_gen(lent).wrapping_add(1) & (u32::MAX >> GEN_SHIFT);
            let word = generation << GEN_SHIFT | u32::from(self.pool.owner.0);
            slot.lent.store(word, Ordering::Relaxed);
            slot.len.with_mut(|p| {
                // SAFETY: the slot was free (`returned == lent`, Acquire above) and only the
                // owner (`&mut self`) writes `len`; no holder reads it until it is lent again.
                unsafe { *p = len as u32 }
            });
            return Some(BulkDraft {
                index: index as u32,
                word,
            });
        }
        None
    }

    /// The draft `r` names, if it still is one of this owner's allocated, unsent slots.
    pub fn draft_of(&self, r: BulkRef) -> Option<BulkDraft> {
        if r.owner() != self.pool.owner {
            return None;
        }
        let slot = self.pool.slots.get(r.index())?;
        let word = slot.lent.load(Ordering::Relaxed);
        let draft = BulkDraft {
            index: r.index() as u32,
            word,
        };
        (word_gen(word) & REF_GEN_MASK == r.generation() && self.is_draft(draft)).then_some(draft)
    }

    /// Whether `draft` is still this owner's allocated, unsent slot.
    fn is_draft(&self, draft: BulkDraft) -> bool {
        let Some(slot) = self.pool.slots.get(draft.index as usize) else {
            return false;
        };
        slot.lent.load(Ordering::Relaxed) == draft.word
            && !word_sent(draft.word)
            && slot.returned.load(Ordering::Relaxed) != draft.word
    }

    /// The payload of an allocated, unsent slot (exactly the length asked for), or `None` for
    /// a stale draft.
    pub fn bytes_mut(&mut self, draft: BulkDraft) -> Option<&mut [u8]> {
        if !self.is_draft(draft) {
            return None;
        }
        let slot = &self.pool.slots[draft.index as usize];
        let len = self.pool.len_of(slot);
        let (start, capacity) = self.pool.area(draft.index as usize);
        debug_assert!(len <= capacity);
        // SAFETY: `start..start + len` lies inside this slot's area of the pool's bytes
        // (`area`, `len ≤ size` from `alloc`), borrowed for `'a`. The slot is allocated and not
        // sent, so no peer accepts or reads it (they need the sent bit, which only `lend` sets,
        // through `&mut self`), and the owner is unique and borrowed mutably for the result's
        // lifetime: this is the only reference to these bytes.
        Some(unsafe { core::slice::from_raw_parts_mut(start, len.min(capacity)) })
    }

    /// Sends the slot to shard `to` (this shard included): the returned reference travels in
    /// an envelope through the ring (whose `Release` publish orders the payload before it).
    /// `None` for a stale draft.
    pub fn lend(&mut self, draft: BulkDraft, to: ShardId) -> Option<BulkRef> {
        if !self.is_draft(draft) {
            return None;
        }
        let slot = &self.pool.slots[draft.index as usize];
        let word = (draft.word & !0x1FF) | SENT | u32::from(to.0);
        slot.lent.store(word, Ordering::Relaxed);
        Some(BulkRef::new(self.pool.owner, draft.index, word))
    }

    /// Frees an allocated slot that will not be sent. `false` for a stale draft.
    pub fn cancel(&mut self, draft: BulkDraft) -> bool {
        if !self.is_draft(draft) {
            return false;
        }
        let slot = &self.pool.slots[draft.index as usize];
        slot.returned.store(draft.word, Ordering::Relaxed);
        true
    }

    /// Frees every slot allocated and not sent (the handler calls that held them are gone, as
    /// when the shard is rebuilt). Returns how many.
    pub fn reclaim_drafts(&mut self) -> usize {
        let mut n = 0;
        for slot in self.pool.slots {
            let lent = slot.lent.load(Ordering::Relaxed);
            if !word_sent(lent) && slot.returned.load(Ordering::Relaxed) != lent {
                slot.returned.store(lent, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }
}

impl<'a> BulkPeer<'a> {
    /// The pool this half reads from.
    pub fn pool(&self) -> &'a BulkPool<'a> {
        self.pool
    }

    /// The slot `r` names and its current lending, if `r` is a live lending to this shard.
    fn lending(&self, r: BulkRef) -> Option<(&'a BulkSlot, u32)> {
        if r.owner() != self.pool.owner {
            return None;
        }
        let slot = self.pool.slots.get(r.index())?;
        let lent = slot.lent.load(Ordering::Relaxed);
        let live = word_sent(lent)
            && word_dest(lent) == self.me.0
            && word_gen(lent) & REF_GEN_MASK == r.generation()
            && slot.returned.load(Ordering::Relaxed) != lent;
        live.then_some((slot, lent))
    }

    /// Takes the slot `r` names into this shard's hands, once, right after `r` came out of
    /// the inbound ring (or was sent inside the shard). `false` if `r` is stale, forged, lent
    /// to another shard, or already accepted.
    pub fn accept(&mut self, r: BulkRef) -> bool {
        match self.lending(r) {
            Some((slot, lent)) if slot.taken.load(Ordering::Relaxed) != lent => {
                slot.taken.store(lent, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// The payload of an accepted slot, read in place in the owner's memory, or `None` if `r`
    /// is not held by this shard.
    pub fn bytes(&self, r: BulkRef) -> Option<&[u8]> {
        let (slot, lent) = self.lending(r)?;
        if slot.taken.load(Ordering::Relaxed) != lent {
            return None;
        }
        let len = self.pool.len_of(slot);
        let (start, capacity) = self.pool.area(r.index());
        // SAFETY: the slot is lent to this shard, accepted and not given back, so the owner
        // wrote the bytes and `len` before lending it (ordered before us by the ring's
        // Release/Acquire, or program order inside one shard) and will not write them again
        // until it sees the `Release` store of `give_back`, which needs `&mut self` and so
        // cannot happen while this borrow lives. `start..start + len` lies inside the slot's
        // area, borrowed for `'a`.
        Some(unsafe { core::slice::from_raw_parts(start.cast_const(), len.min(capacity)) })
    }

    /// The payload length of an accepted slot.
    pub fn len(&self, r: BulkRef) -> Option<usize> {
        self.bytes(r).map(<[u8]>::len)
    }

    /// Gives an accepted slot back to its owner (this shard is done reading it). `false` if
    /// `r` is not held by this shard.
    pub fn give_back(&mut self, r: BulkRef) -> bool {
        match self.lending(r) {
            Some((slot, lent)) if slot.taken.load(Ordering::Relaxed) == lent => {
                slot.returned.store(lent, RETURN_ORDERING);
                true
            }
            _ => false,
        }
    }

    /// Refuses `r` straight out of the ring (the message will not be delivered): accepts it
    /// and gives it back. `false` if `r` is not a live lending to this shard.
    pub fn refuse(&mut self, r: BulkRef) -> bool {
        self.accept(r) && self.give_back(r)
    }

    /// Gives back every slot of this pool this shard has accepted and not given back (the
    /// shard is rebuilt or stops: nothing of it reads them any more). Returns how many.
    pub fn reclaim_taken(&mut self) -> usize {
        let mut n = 0;
        for slot in self.pool.slots {
            let lent = slot.lent.load(Ordering::Relaxed);
            if word_sent(lent)
                && word_dest(lent) == self.me.0
                && slot.taken.load(Ordering::Relaxed) == lent
                && slot.returned.load(Ordering::Relaxed) != lent
            {
                slot.returned.store(lent, RETURN_ORDERING);
                n += 1;
            }
        }
        n
    }
}

/// Everything one shard needs of the bulk pools: the owner's half of its own pool and its peer
/// half of every shard's pool (its own included), indexed by owner shard. It routes each
/// reference to the pool it names, so a caller never cares where the sender lives.
pub struct BulkPorts<'r> {
    me: ShardId,
    owner: BulkOwner<'r>,
    peers: &'r mut [Option<BulkPeer<'r>>],
    /// What the handler calls in progress hold (a stack, like the transfer buffers'): drafts
    /// they allocated and references delivered to them.
    held: [BulkRef; BULK_HELD_PER_CALL_MAX],
    held_len: usize,
}

/// Bulk slots one handler call can hold at once (allocated or delivered).
pub const BULK_HELD_PER_CALL_MAX: usize = 8;

impl<'r> BulkPorts<'r> {
    /// Shard `me`'s ports: `owner` must be the owner's half of `me`'s pool and `peers[s]`
    /// shard `me`'s peer half of shard `s`'s pool (`None` for a shard without one); `None` if
    /// any half is misplaced.
    pub fn new(
        me: ShardId,
        owner: BulkOwner<'r>,
        peers: &'r mut [Option<BulkPeer<'r>>],
    ) -> Option<BulkPorts<'r>> {
        let placed = peers.iter().enumerate().all(|(s, p)| {
            p.as_ref()
                .is_none_or(|p| p.me == me && usize::from(p.pool.owner.0) == s)
        });
        (owner.pool.owner == me && placed).then_some(BulkPorts {
            me,
            owner,
            peers,
            held: [BulkRef(0); BULK_HELD_PER_CALL_MAX],
            held_len: 0,
        })
    }

    /// Allocates a draft for `len` bytes for the handler call in progress, named by the bits
    /// it will have once lent; cancelled when the call ends unless sent.
    pub fn call_alloc(&mut self, len: usize) -> Result<BulkRef, BulkError> {
        if self.held_len == BULK_HELD_PER_CALL_MAX {
            return Err(BulkError::Exhausted);
        }
        let d = self.owner.alloc(len)?;
        let r = BulkRef::new(self.me, d.index, d.word);
        self.held[self.held_len] = r;
        self.held_len += 1;
        Ok(r)
    }

    fn held_index(&self, r: BulkRef) -> Option<usize> {
        self.held[..self.held_len].iter().position(|&h| h == r)
    }

    /// The writable payload of a draft the call in progress holds.
    pub fn call_draft_mut(&mut self, r: BulkRef) -> Option<&mut [u8]> {
        self.held_index(r)?;
        let d = self.owner.draft_of(r)?;
        self.owner.bytes_mut(d)
    }

    /// The payload of a reference the call in progress holds (a delivered one), read in
    /// place; or of its own draft.
    pub fn call_bytes(&self, r: BulkRef) -> Option<&[u8]> {
        self.held_index(r)?;
        if let Some(d) = self.owner.draft_of(r) {
            let slot = &self.owner.pool.slots[d.index as usize];
            let len = self.owner.pool.len_of(slot);
            let (start, capacity) = self.owner.pool.area(d.index as usize);
            // SAFETY: the slot is this shard's draft: only the owner's half writes it, through
            // `&mut` access to these ports, which `&self` excludes while this borrow lives;
            // the range lies inside the slot's area, borrowed for `'r`.
            return Some(unsafe {
                core::slice::from_raw_parts(start.cast_const(), len.min(capacity))
            });
        }
        self.bytes(r)
    }

    /// Lends a draft of the call in progress to shard `to` (after its envelope was staged
    /// or queued): the call no longer holds it. A slot lent to this very shard is accepted at
    /// once (it is already in a local mailbox). `false` if `r` is not a draft of this call.
    pub fn call_lend(&mut self, r: BulkRef, to: ShardId) -> bool {
        let Some(i) = self.held_index(r) else {
            return false;
        };
        let Some(d) = self.owner.draft_of(r) else {
            return false;
        };
        if self.owner.lend(d, to).is_none() {
            return false;
        }
        self.held_len -= 1;
        self.held.copy_within(i + 1..=self.held_len, i);
        if to == self.me {
            let accepted = self.accept(r);
            debug_assert!(accepted);
        }
        true
    }

    /// Makes an accepted reference (a message being handled) the call's: given back when the
    /// call ends. `false` (and given back now) if the call holds too many, or if `r` is not
    /// held by this shard.
    pub fn call_hold(&mut self, r: BulkRef) -> bool {
        if self.bytes(r).is_none() {
            return false;
        }
        if self.held_len == BULK_HELD_PER_CALL_MAX {
            self.give_back(r);
            return false;
        }
        self.held[self.held_len] = r;
        self.held_len += 1;
        true
    }

    /// How many the calls in progress hold (a child's `init` runs inside its parent's call
    /// and releases only what it took).
    pub fn held_mark(&self) -> usize {
        self.held_len
    }

    /// Ends the holdings from `mark` on: unsent drafts are cancelled, delivered references
    /// given back.
    pub fn release_held_from(&mut self, mark: usize) {
        while self.held_len > mark {
            self.held_len -= 1;
            let r = self.held[self.held_len];
            match self.owner.draft_of(r) {
                Some(d) => {
                    self.owner.cancel(d);
                }
                None => {
                    self.give_back(r);
                }
            }
        }
    }

    /// The shard these ports belong to.
    pub fn shard(&self) -> ShardId {
        self.me
    }

    /// The owner's half of this shard's pool (allocate, write, lend, cancel).
    pub fn own(&mut self) -> &mut BulkOwner<'r> {
        &mut self.owner
    }

    fn peer(&self, r: BulkRef) -> Option<&BulkPeer<'r>> {
        self.peers.get(usize::from(r.owner().0))?.as_ref()
    }

    fn peer_mut(&mut self, r: BulkRef) -> Option<&mut BulkPeer<'r>> {
        self.peers.get_mut(usize::from(r.owner().0))?.as_mut()
    }

    /// [`BulkPeer::accept`] on the pool `r` names (`false` for an unknown pool).
    pub fn accept(&mut self, r: BulkRef) -> bool {
        self.peer_mut(r).is_some_and(|p| p.accept(r))
    }

    /// [`BulkPeer::bytes`] on the pool `r` names.
    pub fn bytes(&self, r: BulkRef) -> Option<&[u8]> {
        self.peer(r)?.bytes(r)
    }

    /// [`BulkPeer::give_back`] on the pool `r` names.
    pub fn give_back(&mut self, r: BulkRef) -> bool {
        self.peer_mut(r).is_some_and(|p| p.give_back(r))
    }

    /// [`BulkPeer::refuse`] on the pool `r` names.
    pub fn refuse(&mut self, r: BulkRef) -> bool {
        self.peer_mut(r).is_some_and(|p| p.refuse(r))
    }

    /// Everything this shard holds goes back: the calls' holdings, its unsent drafts and every
    /// slot of every pool
    /// it accepted and has not given back (the shard is rebuilt or stops). Slots it lent to
    /// other shards stay lent until they give them back. Returns how many.
    pub fn reclaim(&mut self) -> usize {
        self.held_len = 0;
        let drafts = self.owner.reclaim_drafts();
        let taken: usize = self
            .peers
            .iter_mut()
            .flatten()
            .map(|p| p.reclaim_taken())
            .sum();
        drafts + taken
    }

    /// Slots of this shard's own pool not free (lent out, held or drafts).
    pub fn own_in_use(&self) -> usize {
        self.owner.pool.in_use()
    }
}

/// The ordering of the return store: `Release`, so the holder's reads of the bytes happen
/// before the owner's next writes. `--cfg tina_planted_bulk_bug` weakens it to `Relaxed`, the
/// bug the loom model must catch.
#[cfg(not(tina_planted_bulk_bug))]
const RETURN_ORDERING: Ordering = Ordering::Release;
#[cfg(tina_planted_bulk_bug)]
const RETURN_ORDERING: Ordering = Ordering::Relaxed;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const CONFIG: BulkConfig = BulkConfig {
        small: BulkClass {
            slots: 2,
            size: 128,
        },
        large: BulkClass {
            slots: 1,
            size: 1024,
        },
    };

    struct Memory {
        slots: Vec<BulkSlot>,
        small: Vec<u8>,
        large: Vec<u8>,
    }

    fn memory(config: BulkConfig) -> Memory {
        Memory {
            slots: (0..config.slot_count()).map(|_| BulkSlot::new()).collect(),
            small: vec![0; (config.small.slots * config.small.size) as usize],
            large: vec![0; (config.large.slots * config.large.size) as usize],
        }
    }

    fn pool(m: &mut Memory, owner: u8) -> BulkPool<'_> {
        BulkPool::new(
            ShardId(owner),
            CONFIG,
            &mut m.slots,
            &mut m.small,
            &mut m.large,
        )
        .unwrap()
    }

    fn halves<'a>(pool: &'a BulkPool<'a>) -> (BulkOwner<'a>, Vec<BulkPeer<'a>>) {
        let mut peers = Vec::new();
        let owner = pool.split(3, |_, p| peers.push(p));
        (owner, peers)
    }

    fn send(owner: &mut BulkOwner<'_>, len: usize, fill: u8, to: u8) -> BulkRef {
        let d = owner.alloc(len).unwrap();
        owner.bytes_mut(d).unwrap().fill(fill);
        owner.lend(d, ShardId(to)).unwrap()
    }

    #[test]
    fn bulk_pool_new_checks_the_lengths() {
        let mut m = memory(CONFIG);
        assert!(BulkPool::new(ShardId(0), CONFIG, &mut m.slots, &mut m.small, &mut []).is_none());
        let mut m = memory(CONFIG);
        assert!(
            BulkPool::new(
                ShardId(0),
                CONFIG,
                &mut m.slots[1..],
                &mut m.small,
                &mut m.large
            )
            .is_none()
        );
        let mut m = memory(CONFIG);
        assert_eq!(pool(&mut m, 0).slot_count(), 3);
    }

    #[test]
    fn bulk_lend_accept_read_give_back_round_trip() {
        let mut m = memory(CONFIG);
        let pool = pool(&mut m, 1);
        let (mut owner, mut peers) = halves(&pool);
        let r = send(&mut owner, 97, 0xAB, 2);
        assert_eq!(r.owner(), ShardId(1));
        assert_eq!(pool.in_use(), 1);
        assert_eq!(
            peers[2].bytes(r),
            None,
            "not readable before it is accepted"
        );
        assert!(!peers[0].accept(r), "lent to shard 2, not 0");
        assert!(peers[2].accept(r));
        assert!(!peers[2].accept(r), "accepted once");
        let bytes = peers[2].bytes(r).unwrap();
        assert_eq!(bytes.len(), 97);
        assert!(bytes.iter().all(|&b| b == 0xAB));
        assert_eq!(peers[0].bytes(r), None);
        assert!(peers[2].give_back(r));
        assert!(!peers[2].give_back(r), "given back once");
        assert_eq!(peers[2].bytes(r), None, "stale after the return");
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn bulk_small_first_then_large_then_exhausted_until_returned() {
        let mut m = memory(CONFIG);
        let pool = pool(&mut m, 0);
        let (mut owner, mut peers) = halves(&pool);
        assert_eq!(
            owner.alloc(1025),
            Err(BulkError::TooLarge {
                len: 1025,
                max: 1024
            })
        );
        let a = send(&mut owner, 100, 1, 1);
        let b = send(&mut owner, 128, 2, 1);
        // Both small slots lent: a small payload falls back to the large slot.
        let c = send(&mut owner, 10, 3, 1);
        assert_eq!(owner.alloc(10), Err(BulkError::Exhausted));
        assert_eq!(owner.alloc(1000), Err(BulkError::Exhausted));
        for r in [a, b, c] {
            assert!(peers[1].accept(r));
        }
        assert_eq!(peers[1].len(c), Some(10));
        assert!(peers[1].give_back(b));
        assert_eq!(
            owner.alloc(1000),
            Err(BulkError::Exhausted),
            "a small slot is back"
        );
        let d = owner.alloc(50).unwrap();
        assert!(owner.cancel(d));
        assert!(peers[1].give_back(c));
        let e = send(&mut owner, 1024, 9, 1);
        assert!(peers[1].accept(e));
        assert_eq!(peers[1].len(e), Some(1024));
        assert_eq!(peers[1].bytes(a).unwrap(), &[1u8; 100][..]);
    }

    #[test]
    fn bulk_stale_and_forged_references_are_refused() {
        let mut m = memory(CONFIG);
        let pool = pool(&mut m, 0);
        let (mut owner, mut peers) = halves(&pool);
        let d = owner.alloc(64).unwrap();
        let r = owner.lend(d, ShardId(1)).unwrap();
        assert_eq!(
            owner.bytes_mut(d),
            None,
            "sent: the owner no longer writes it"
        );
        assert!(!owner.cancel(d));
        assert_eq!(owner.lend(d, ShardId(2)), None, "lent once");
        assert!(peers[1].refuse(r));
        // Lent again (same slot, next generation): the old reference reads nothing.
        let mut again = send(&mut owner, 64, 7, 1);
        while again.index() != r.index() {
            assert!(peers[1].refuse(again));
            again = send(&mut owner, 64, 7, 1);
        }
        assert!(peers[1].accept(again));
        assert!(!peers[1].accept(r));
        assert_eq!(peers[1].bytes(r), None);
        assert!(!peers[1].give_back(r));
        assert!(peers[1].bytes(again).is_some());
        let forged = [
            BulkRef::from_bits(again.to_bits() ^ 1 << 24),
            BulkRef::from_bits(u32::MAX),
            BulkRef::from_bits(0),
        ];
        for f in forged {
            assert_eq!(peers[1].bytes(f), None);
            assert!(!peers[1].accept(f) && !peers[1].give_back(f));
        }
    }

    #[test]
    fn bulk_local_send_uses_the_owners_own_peer() {
        let mut m = memory(CONFIG);
        let pool = pool(&mut m, 2);
        let (mut owner, mut peers) = halves(&pool);
        let r = send(&mut owner, 300, 0x5A, 2);
        assert!(peers[2].accept(r));
        assert_eq!(peers[2].bytes(r).map(|b| b.len()), Some(300));
        assert!(peers[2].give_back(r));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn bulk_reclaim_returns_drafts_and_taken_but_not_other_shards_slots() {
        let mut m = memory(CONFIG);
        let pool = pool(&mut m, 0);
        let (mut owner, mut peers) = halves(&pool);
        let _draft = owner.alloc(10).unwrap();
        let to1 = send(&mut owner, 10, 1, 1);
        let to2 = send(&mut owner, 10, 2, 2);
        assert!(peers[1].accept(to1));
        assert_eq!(pool.in_use(), 3);
        assert_eq!(owner.reclaim_drafts(), 1);
        assert_eq!(peers[1].reclaim_taken(), 1);
        // Lent to shard 2, not yet accepted (still in its ring): stays lent.
        assert_eq!(peers[2].reclaim_taken(), 0);
        assert_eq!(pool.in_use(), 1);
        assert!(peers[2].accept(to2));
        assert_eq!(peers[2].reclaim_taken(), 1);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn bulk_generation_wraps_without_confusing_references() {
        let mut m = memory(CONFIG);
        let pool = pool(&mut m, 0);
        let (mut owner, mut peers) = halves(&pool);
        let rounds = if cfg!(miri) { 50 } else { 10_000 };
        for n in 0..rounds {
            let fill = n as u8;
            let r = send(&mut owner, 128, fill, 1);
            assert!(peers[1].accept(r));
            assert!(peers[1].bytes(r).unwrap().iter().all(|&b| b == fill));
            assert!(peers[1].give_back(r));
        }
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn bulk_ports_route_references_to_the_pool_they_name() {
        let mut m0 = memory(CONFIG);
        let mut m1 = memory(CONFIG);
        let pool0 = pool(&mut m0, 0);
        let pool1 = pool(&mut m1, 1);
        let (mut owner0, peers0) = halves(&pool0);
        let (owner1, peers1) = halves(&pool1);
        // Shard 1's ports: its own pool's owner, its peer half of pools 0 and 1.
        let mut of1: Vec<Option<BulkPeer<'_>>> = vec![None, None];
        for p in peers0.into_iter().chain(peers1) {
            if p.me == ShardId(1) {
                let s = usize::from(p.pool.owner.0);
                of1[s] = Some(p);
            }
        }
        {
            // Shard 2's own owner, but its peer half of pool 2 placed where pool 0's belongs.
            let mut m2 = memory(CONFIG);
            let pool2 = pool(&mut m2, 2);
            let (owner2, mut peers2) = halves(&pool2);
            let mut wrong = vec![Some(peers2.remove(2))];
            assert!(BulkPorts::new(ShardId(2), owner2, &mut wrong).is_none());
        }
        let mut ports = BulkPorts::new(ShardId(1), owner1, &mut of1).unwrap();
        assert_eq!(ports.shard(), ShardId(1));
        // From shard 0 and from itself, through the same calls.
        let remote = send(&mut owner0, 200, 0xA0, 1);
        let own = ports.own();
        let d = own.alloc(300).unwrap();
        own.bytes_mut(d).unwrap().fill(0xB1);
        let local = own.lend(d, ShardId(1)).unwrap();
        let draft = ports.own().alloc(10).unwrap();
        for (r, len, fill) in [(remote, 200, 0xA0), (local, 300, 0xB1)] {
            assert!(ports.accept(r));
            let bytes = ports.bytes(r).unwrap();
            assert_eq!(bytes.len(), len);
            assert!(bytes.iter().all(|&b| b == fill));
        }
        assert_eq!(ports.own_in_use(), 2);
        assert!(ports.give_back(local));
        assert!(!ports.give_back(local));
        // The shard is rebuilt: the remote slot it held and its draft come back.
        assert_eq!(ports.reclaim(), 2);
        assert_eq!(ports.own().bytes_mut(draft), None);
        assert_eq!((pool0.in_use(), pool1.in_use()), (0, 0));
        assert_eq!(ports.bytes(remote), None);
        let unknown = BulkRef::from_bits(7 << 24);
        assert!(!ports.accept(unknown) && !ports.refuse(unknown) && ports.bytes(unknown).is_none());
    }

    #[test]
    fn bulk_config_sizes() {
        assert_eq!(BulkConfig::DEFAULT.payload_max(), 66 * 1024);
        assert_eq!(BulkConfig::DEFAULT.slot_count(), 36);
        assert_eq!(
            BulkConfig::DEFAULT.slot_bytes(),
            Some(32 * 4096 + 4 * 66 * 1024)
        );
        assert_eq!(BulkConfig::NONE.payload_max(), 0);
        let text = std::format!(
            "{}",
            BulkError::TooLarge {
                len: 70_000,
                max: 67_584
            }
        );
        assert!(text.contains("70000") && text.contains("67584"));
    }
}
