//! The cross-shard ring: a bounded, batched, allocation-free single-producer single-consumer
//! queue over caller-provided slots.
//!
//! One ring carries messages from one shard to one other shard (N×(N−1) rings
//! for N shards). It owns no memory: the caller hands it a `&mut [Slot<T>]` (bare metal: a
//! `static`; Linux: memory mapped once at boot; tests: [`Slot::array`]), its length is the
//! capacity (a power of two ≥ [`RING_CAPACITY_MIN`], else [`RingError`]). [`Ring::split`] hands out
//! the only [`Producer`] and the only [`Consumer`].
//!
//! # Protocol
//!
//! Two free-running `usize` counters, each on its own 128-byte line, each written by one side:
//!
//! ```text
//!              head (consumer writes, Release)     tail (producer writes, Release)
//!                 │                                  │
//!   slots:  … ░░░░│▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓│▒▒▒▒▒▒▒▒│░░░░░░░░░░ …   (index & mask)
//!                 │◄─── published, consumer's ──────►│◄staged►│◄─ free ─►
//!                 │      (read locally from head_read,         producer's
//!                 │       freed in bulk by commit)              (written locally)
//!
//!   occupancy = tail − head (wrapping) ≤ capacity;   empty ⇔ head = tail
//! ```
//!
//! 1. **Push** (producer, no atomics on the fast path): if `tail_staged − head_cached` equals
//!    the capacity, refresh `head_cached` with one `Acquire` load of `head`; if still full, give
//!    the value back. Otherwise write slot `tail_staged & mask` and bump `tail_staged`.
//! 2. **Publish** (producer, once per tick): one `Release` store of `tail_staged` into `tail`,
//!    skipped (returns `false`) when nothing new was staged.
//! 3. **Drain / pop** (consumer): when `tail_cached − head_read` is too small, refresh
//!    `tail_cached` with one `Acquire` load of `tail`; read slots from `head_read` up to it.
//! 4. **Commit** (consumer, once per tick): one `Release` store of `head_read` into `head`,
//!    skipped (returns `false`) when nothing new was read.
//!
//! Why these orderings suffice: a slot changes hands only through an index. The producer's
//! slot writes come before its `Release` store of `tail` in program order; the consumer reads a
//! slot only after an `Acquire` load of `tail` that returned an index past it, so the writes
//! happen-before the reads (2 → 3). Symmetrically the consumer's slot reads come before its
//! `Release` store of `head`, and the producer overwrites a slot only after an `Acquire` load of
//! `head` showed it freed, so the reads happen-before the overwrite (4 → 1). Each counter has a
//! single writer and only grows, so a stale cached copy is always a *conservative* view (the ring
//! looks fuller to the producer, emptier to the consumer) and never a wrong one. No
//! read-modify-write is needed, so the ring works with plain load/store atomics on cores without
//! compare-and-swap (`thumbv6m-none-eabi`, through portable-atomic). Counters wrap at
//! `usize::MAX + 1`, a multiple of every power-of-two capacity, so `& mask` stays correct across
//! the wrap.
//!
//! Only the platform wakes a sleeping consumer: [`Producer::publish`] says whether anything was
//! published, [`Consumer::is_empty`] is the `Acquire` check before sleeping. Ordering the
//! "I am asleep" flag against these (a `SeqCst` fence on both sides, or a syscall such as an
//! eventfd write/read) is the driver's job.
//!
//! # Verification
//!
//! - loom, every interleaving up to two preemptions (batched publish and drain, wrap-around,
//!   full and empty edges, counter wrap at `usize::MAX`, a producer and consumer racing over
//!   several ticks), plus deliberately broken variants (a `Relaxed` publish, a `Relaxed` commit)
//!   that loom must reject:
//!   `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p tina-core --release --test loom_ring`
//!   (the filter form `… --release loom` runs the same tests).
//!   `RUSTFLAGS="--cfg loom --cfg tina_loom_broken"` makes *every* ring publish with `Relaxed`;
//!   the correct-ring models must then fail.
//! - Miri over the unit tests and a short threaded stress run:
//!   `cargo +nightly miri test -p tina-core --lib ring` and
//!   `cargo +nightly miri test -p tina-core --test ring_stress`.
//! - Real threads pinned to two CPUs: `cargo test -p tina-core --release --test ring_stress`.
//!
//! # Example
//!
//! ```
//! use tina_core::ring::{Ring, Slot};
//!
//! let mut slots = Slot::<u64>::array::<16>();
//! let mut ring = Ring::new(&mut slots).unwrap();
//! let (mut tx, mut rx) = ring.split();
//!
//! for n in 0..3 {
//!     tx.try_push(n).unwrap();
//! }
//! assert!(rx.is_empty()); // staged, not yet visible
//! assert!(tx.publish()); // one release store for the batch: wake the peer
//!
//! let mut got = [0; 3];
//! let drained = rx.drain(usize::MAX, |v| got[*v as usize] = *v);
//! assert_eq!((drained, got), (3, [0, 1, 2]));
//! assert!(rx.commit()); // one release store frees the three slots
//! ```

use core::fmt;
use core::mem::MaybeUninit;

use crate::cross_shard::sync::{AtomicUsize, Ordering, UnsafeCell};

/// Smallest capacity a ring accepts.
pub const RING_CAPACITY_MIN: usize = 16;

/// Size and alignment of the line each index lives on: 128 bytes covers the adjacent-line
/// prefetcher on x86 and the 128-byte lines of recent ARM cores.
pub const RING_INDEX_ALIGN: usize = 128;

/// An index alone on its cache line(s), so the producer's and the consumer's stores never
/// invalidate each other's line.
#[repr(C, align(128))]
struct CachePadded<T>(T);

const _: () = assert!(align_of::<CachePadded<u8>>() == RING_INDEX_ALIGN);
const _: () = assert!(RING_CAPACITY_MIN.is_power_of_two());

/// One message's worth of ring storage, initially empty.
///
/// The caller owns an array or slice of these and lends it to [`Ring::new`]. `Slot::new` is a
/// `const fn` (outside loom builds), so storage can live in a `static`, e.g.
/// `ConstStaticCell::new([const { Slot::new() }; 64])` with `static_cell`.
#[repr(transparent)]
pub struct Slot<T>(UnsafeCell<MaybeUninit<T>>);

impl<T> Slot<T> {
    /// An empty slot.
    #[cfg(not(loom))]
    #[inline]
    pub const fn new() -> Self {
        Slot(UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// An empty slot (loom build: the cell registers with the running model, so not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Slot(UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// `N` empty slots, for tests and for hosted set-up code.
    pub fn array<const N: usize>() -> [Self; N] {
        core::array::from_fn(|_| Self::new())
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a slot slice cannot become a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RingError {
    /// Fewer slots than [`RING_CAPACITY_MIN`].
    CapacityTooSmall {
        /// The number of slots given.
        capacity: usize,
    },
    /// The number of slots is not a power of two.
    CapacityNotPowerOfTwo {
        /// The number of slots given.
        capacity: usize,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RingError::CapacityTooSmall { capacity } => write!(
                f,
                "ring capacity {capacity} is below the minimum of {RING_CAPACITY_MIN} slots"
            ),
            RingError::CapacityNotPowerOfTwo { capacity } => write!(
                f,
                "ring capacity {capacity} is not a power of two (use {})",
                capacity
                    .checked_next_power_of_two()
                    .unwrap_or(RING_CAPACITY_MIN)
            ),
        }
    }
}

/// A deliberately wrong memory ordering, so the loom tests can prove they would catch it.
/// Exists only in loom builds.
#[cfg(loom)]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoomFault {
    /// The correct ring.
    None,
    /// `publish` stores `tail` with `Relaxed`: the consumer may read a slot before its write.
    RelaxedPublish,
    /// `commit` stores `head` with `Relaxed`: the producer may overwrite a slot being read.
    RelaxedCommit,
}

/// A bounded SPSC ring over borrowed slots. Split it once into its two halves.
///
/// `Ring` is `Send` when `T` is (it holds the only reference to its slots), never `Sync`: the
/// halves are the only way to use it from two threads.
///
/// # Ownership
///
/// The type system keeps one producer and one consumer. A second split while the halves live
/// does not compile:
///
/// ```compile_fail
/// # use tina_core::ring::{Ring, Slot};
/// let mut slots = Slot::<u32>::array::<16>();
/// let mut ring = Ring::new(&mut slots).unwrap();
/// let (tx, rx) = ring.split();
/// let (tx2, rx2) = ring.split(); // error: `ring` is already borrowed
/// drop((tx, rx, tx2, rx2));
/// ```
///
/// A half cannot be cloned:
///
/// ```compile_fail
/// # use tina_core::ring::{Ring, Slot};
/// let mut slots = Slot::<u32>::array::<16>();
/// let mut ring = Ring::new(&mut slots).unwrap();
/// let (tx, _rx) = ring.split();
/// let tx2 = tx.clone(); // error: no method `clone`
/// ```
///
/// Nor shared between threads (`&Producer` is not `Send`):
///
/// ```compile_fail
/// # use tina_core::ring::Producer;
/// fn shared<S: Sync>() {}
/// shared::<Producer<'static, u32>>(); // error: `Producer` is not `Sync`
/// ```
///
/// Hand-written, not a heapless container: the slots are caller-provided (a
/// `static`, mapped memory, the region) with a run-time capacity, the producer publishes a
/// batch with one release store, and loom checks it through [`crate::sync`];
/// `heapless::spsc::Queue` owns a const-sized buffer and publishes every push.
#[repr(C)]
pub struct Ring<'a, T> {
    /// One past the last published slot. Written only by the producer (`Release`).
    tail: CachePadded<AtomicUsize>,
    /// The first slot not yet freed. Written only by the consumer (`Release`).
    head: CachePadded<AtomicUsize>,
    slots: &'a mut [Slot<T>],
    #[cfg(loom)]
    fault: LoomFault,
}

impl<'a, T: Copy> Ring<'a, T> {
    /// Makes an empty ring over `slots`; the capacity is `slots.len()`, which must be a power of
    /// two and at least [`RING_CAPACITY_MIN`].
    pub fn new(slots: &'a mut [Slot<T>]) -> Result<Self, RingError> {
        Self::new_inner(slots, 0)
    }

    /// Like [`Ring::new`], with both counters starting at `index_start` (to test the wrap at
    /// `usize::MAX`) and an optional injected ordering bug. Loom builds only.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn new_for_model(
        slots: &'a mut [Slot<T>],
        index_start: usize,
        fault: LoomFault,
    ) -> Result<Self, RingError> {
        let mut ring = Self::new_inner(slots, index_start)?;
        if fault != LoomFault::None {
            ring.fault = fault;
        }
        Ok(ring)
    }

    fn new_inner(slots: &'a mut [Slot<T>], index_start: usize) -> Result<Self, RingError> {
        let capacity = slots.len();
        if capacity < RING_CAPACITY_MIN {
            return Err(RingError::CapacityTooSmall { capacity });
        }
        if !capacity.is_power_of_two() {
            return Err(RingError::CapacityNotPowerOfTwo { capacity });
        }
        Ok(Ring {
            tail: CachePadded(AtomicUsize::new(index_start)),
            head: CachePadded(AtomicUsize::new(index_start)),
            slots,
            #[cfg(all(loom, not(tina_loom_broken)))]
            fault: LoomFault::None,
            #[cfg(all(loom, tina_loom_broken))]
            fault: LoomFault::RelaxedPublish,
        })
    }

    /// Number of slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Hands out the producer and the consumer half. They borrow the ring mutably, so there is
    /// exactly one of each while they live; neither is `Clone` or `Sync`, both are `Send` (when
    /// `T` is), so each can move to its own thread.
    ///
    /// Splitting again after both halves are gone resumes from the indices in the ring: staged
    /// but unpublished values are discarded, and values read but not committed are read again.
    pub fn split(&mut self) -> (Producer<'_, T>, Consumer<'_, T>) {
        // `&mut self` means no half is alive and whoever dropped the last halves synchronised
        // with us (that is how we got `&mut` back), so `Relaxed` sees their final stores.
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Relaxed);
        debug_assert!(tail.wrapping_sub(head) <= self.slots.len());
        let slots: &[Slot<T>] = self.slots;
        let mask = slots.len() - 1;
        let producer = Producer {
            tail: &self.tail.0,
            head: &self.head.0,
            slots,
            mask,
            tail_staged: tail,
            tail_published: tail,
            head_cached: head,
            #[cfg(loom)]
            publish_ordering: match self.fault {
                LoomFault::RelaxedPublish => Ordering::Relaxed,
                _ => Ordering::Release,
            },
        };
        let consumer = Consumer {
            tail: &self.tail.0,
            head: &self.head.0,
            slots,
            mask,
            head_read: head,
            head_committed: head,
            tail_cached: tail,
            #[cfg(loom)]
            commit_ordering: match self.fault {
                LoomFault::RelaxedCommit => Ordering::Relaxed,
                _ => Ordering::Release,
            },
        };
        (producer, consumer)
    }
}

/// The writing half of a [`Ring`]: stages values locally, publishes them in one store.
///
/// Not `Clone` (one producer is the whole point) and not `Sync` (every method that touches the
/// ring takes `&mut self`); `Send` so it can live on the producing shard's thread.
pub struct Producer<'r, T> {
    tail: &'r AtomicUsize,
    head: &'r AtomicUsize,
    slots: &'r [Slot<T>],
    mask: usize,
    /// The next slot to write; `tail_published..tail_staged` is written but not yet visible.
    tail_staged: usize,
    /// The last value stored into `tail`.
    tail_published: usize,
    /// A value of `head` seen earlier; `head` only grows, so this is never ahead of it.
    head_cached: usize,
    #[cfg(loom)]
    publish_ordering: Ordering,
}

// SAFETY: the producer is the only writer of `tail` and the only writer of slots in
// `tail_staged..head + capacity`; the consumer only reads slots in `head..tail`. The two ranges
// never overlap and slots move between them only through the Release/Acquire handshake on the
// indices (module docs), so moving the producer to another thread cannot create a data race.
// Values of `T` cross threads, hence `T: Send`.
unsafe impl<T: Send> Send for Producer<'_, T> {}

impl<T: Copy> Producer<'_, T> {
    /// Number of slots in the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Values pushed since the last [`publish`](Self::publish), invisible to the consumer.
    #[inline]
    pub fn staged_count(&self) -> usize {
        self.tail_staged.wrapping_sub(self.tail_published)
    }

    /// Writes `value` into the next free slot without making it visible, or gives it back when
    /// the ring is full (the caller counts the drop; nothing is buffered anywhere else).
    ///
    /// Touches the consumer's index only when the cached copy says the ring is full.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.capacity();
        if self.tail_staged.wrapping_sub(self.head_cached) == capacity {
            self.head_cached = self.head.load(Ordering::Acquire);
            debug_assert!(self.tail_staged.wrapping_sub(self.head_cached) <= capacity);
            if self.tail_staged.wrapping_sub(self.head_cached) == capacity {
                return Err(value);
            }
        }
        let slot = &self.slots[self.tail_staged & self.mask];
        slot.0.with_mut(|cell| {
            // SAFETY: index `tail_staged` lies in `head_cached + capacity` (checked above) and
            // `head_cached ≤ head`, so it is outside the consumer's range `head..tail`: the
            // consumer's last read of this slot happened-before the Release store of `head` we
            // Acquire-loaded (or the slot was never read). Only we write slots, and `&mut self`
            // excludes a second write. `cell` points into a live slot of the borrowed slice.
            unsafe { cell.write(MaybeUninit::new(value)) }
        });
        self.tail_staged = self.tail_staged.wrapping_add(1);
        Ok(())
    }

    /// Makes every staged value visible to the consumer with one `Release` store. Returns
    /// whether anything new was published (the driver wakes the peer only then).
    #[inline]
    pub fn publish(&mut self) -> bool {
        if self.tail_staged == self.tail_published {
            return false;
        }
        self.tail.store(self.tail_staged, self.publish_ordering());
        self.tail_published = self.tail_staged;
        true
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn publish_ordering(&self) -> Ordering {
        Ordering::Release
    }

    #[cfg(loom)]
    fn publish_ordering(&self) -> Ordering {
        self.publish_ordering
    }
}

/// The reading half of a [`Ring`]: reads published values, frees them in one store.
///
/// Not `Clone` and not `Sync`, for the same reasons as [`Producer`]; `Send` so it can live on
/// the consuming shard's thread.
pub struct Consumer<'r, T> {
    tail: &'r AtomicUsize,
    head: &'r AtomicUsize,
    slots: &'r [Slot<T>],
    mask: usize,
    /// The next slot to read; `head_committed..head_read` is read but not yet freed.
    head_read: usize,
    /// The last value stored into `head`.
    head_committed: usize,
    /// A value of `tail` seen earlier; `tail` only grows, so this is never ahead of it.
    tail_cached: usize,
    #[cfg(loom)]
    commit_ordering: Ordering,
}

// SAFETY: the consumer is the only writer of `head` and only reads slots in `head..tail`, which
// the producer never writes (see `Producer`'s `Send`); slots change hands only through the
// Release/Acquire handshake on the indices. Values of `T` cross threads, hence `T: Send`.
unsafe impl<T: Send> Send for Consumer<'_, T> {}

impl<T: Copy> Consumer<'_, T> {
    /// Number of slots in the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Values read since the last [`commit`](Self::commit), still occupying their slots.
    #[inline]
    pub fn uncommitted_count(&self) -> usize {
        self.head_read.wrapping_sub(self.head_committed)
    }

    /// Whether nothing published is left to read. Refreshes the producer's index (one
    /// `Acquire` load) only when everything cached has been read; a driver calls it before
    /// sleeping.
    #[inline]
    pub fn is_empty(&mut self) -> bool {
        if self.head_read != self.tail_cached {
            return false;
        }
        self.refresh_tail();
        self.head_read == self.tail_cached
    }

    /// Reads the next published value, or `None` if there is none. The slot stays occupied
    /// until [`commit`](Self::commit).
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head_read == self.tail_cached {
            self.refresh_tail();
            if self.head_read == self.tail_cached {
                return None;
            }
        }
        let value = self.read(self.head_read, |v| *v);
        self.head_read = self.head_read.wrapping_add(1);
        Some(value)
    }

    /// Calls `f` on up to `count_max` published values in order and returns how many it read.
    /// Loads the producer's index at most once, and only if the cached copy shows fewer than
    /// `count_max` values. The slots stay occupied until [`commit`](Self::commit).
    #[inline]
    pub fn drain(&mut self, count_max: usize, mut f: impl FnMut(&T)) -> usize {
        if self.tail_cached.wrapping_sub(self.head_read) < count_max {
            self.refresh_tail();
        }
        let count = self.tail_cached.wrapping_sub(self.head_read).min(count_max);
        for _ in 0..count {
            self.read(self.head_read, &mut f);
            self.head_read = self.head_read.wrapping_add(1);
        }
        count
    }

    /// Frees every slot read so far with one `Release` store. Returns whether anything new was
    /// freed (a driver whose producer may be waiting for room wakes it only then).
    #[inline]
    pub fn commit(&mut self) -> bool {
        if self.head_read == self.head_committed {
            return false;
        }
        self.head.store(self.head_read, self.commit_ordering());
        self.head_committed = self.head_read;
        true
    }

    #[inline]
    fn refresh_tail(&mut self) {
        self.tail_cached = self.tail.load(Ordering::Acquire);
        debug_assert!(self.tail_cached.wrapping_sub(self.head_read) <= self.capacity());
    }

    /// Runs `f` on the value at `index`, which must be below `tail_cached`.
    #[inline(always)]
    fn read<R>(&self, index: usize, f: impl FnOnce(&T) -> R) -> R {
        debug_assert!(self.tail_cached.wrapping_sub(index).wrapping_sub(1) < self.capacity());
        let slot = &self.slots[index & self.mask];
        slot.0.with(|cell| {
            // SAFETY: every caller passes `head_read < tail_cached ≤ tail`: the producer wrote
            // this slot before its Release store of a `tail` past `index`, and our Acquire load
            // returned that value, so the write happened-before this read and the slot holds an
            // initialised `T`. The producer will not overwrite it until we store a `head` past
            // `index`, which needs `&mut self`, so the borrow given to `f` cannot be torn.
            f(unsafe { (*cell).assume_init_ref() })
        })
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn commit_ordering(&self) -> Ordering {
        Ordering::Release
    }

    #[cfg(loom)]
    fn commit_ordering(&self) -> Ordering {
        self.commit_ordering
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The shape of Tina's message envelope: 128 bytes, 128-aligned.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C, align(128))]
    struct Envelope {
        sequence: u64,
        words: [u64; 15],
    }

    const _: () = assert!(size_of::<Envelope>() == 128);

    impl Envelope {
        fn new(sequence: u64) -> Self {
            Envelope {
                sequence,
                words: core::array::from_fn(|i| sequence ^ ((i as u64) << 56)),
            }
        }
    }

    #[test]
    fn ring_new_capacity_invalid_returns_error() {
        let mut small = Slot::<u8>::array::<8>();
        assert_eq!(
            Ring::new(&mut small).err(),
            Some(RingError::CapacityTooSmall { capacity: 8 })
        );
        let mut odd = Slot::<u8>::array::<24>();
        assert_eq!(
            Ring::new(&mut odd).err(),
            Some(RingError::CapacityNotPowerOfTwo { capacity: 24 })
        );
        let mut none: [Slot<u8>; 0] = [];
        assert!(Ring::new(&mut none).is_err());
        let mut ok = Slot::<u8>::array::<16>();
        assert_eq!(Ring::new(&mut ok).map(|r| r.capacity()).ok(), Some(16));
    }

    #[test]
    fn ring_error_display_names_the_rule() {
        let text = std::format!("{}", RingError::CapacityNotPowerOfTwo { capacity: 24 });
        assert!(text.contains("24") && text.contains("power of two") && text.contains("32"));
        let text = std::format!("{}", RingError::CapacityTooSmall { capacity: 4 });
        assert!(text.contains("minimum of 16"));
    }

    #[test]
    fn ring_index_padding_separates_the_indices() {
        let mut slots = Slot::<Envelope>::array::<16>();
        let ring = Ring::new(&mut slots).unwrap();
        let tail = &ring.tail as *const _ as usize;
        let head = &ring.head as *const _ as usize;
        assert!(head.abs_diff(tail) >= RING_INDEX_ALIGN);
        assert_eq!(tail % RING_INDEX_ALIGN, 0);
        assert_eq!(head % RING_INDEX_ALIGN, 0);
    }

    #[test]
    fn ring_push_unpublished_is_invisible() {
        let mut slots = Slot::<Envelope>::array::<16>();
        let mut ring = Ring::new(&mut slots).unwrap();
        let (mut tx, mut rx) = ring.split();
        assert!(!tx.publish());
        tx.try_push(Envelope::new(1)).unwrap();
        tx.try_push(Envelope::new(2)).unwrap();
        assert_eq!(tx.staged_count(), 2);
        assert!(rx.is_empty());
        assert_eq!(rx.pop(), None);
        assert!(tx.publish());
        assert_eq!(tx.staged_count(), 0);
        assert!(!tx.publish());
        assert!(!rx.is_empty());
        assert_eq!(rx.pop(), Some(Envelope::new(1)));
        assert_eq!(rx.pop(), Some(Envelope::new(2)));
        assert_eq!(rx.pop(), None);
        assert_eq!(rx.uncommitted_count(), 2);
        assert!(rx.commit());
        assert!(!rx.commit());
        assert_eq!(rx.uncommitted_count(), 0);
    }

    #[test]
    fn ring_full_gives_the_value_back_until_commit() {
        let mut slots = Slot::<Envelope>::array::<16>();
        let mut ring = Ring::new(&mut slots).unwrap();
        let (mut tx, mut rx) = ring.split();
        for n in 0..16 {
            tx.try_push(Envelope::new(n)).unwrap();
        }
        assert_eq!(tx.try_push(Envelope::new(16)), Err(Envelope::new(16)));
        assert!(tx.publish());
        assert_eq!(rx.pop(), Some(Envelope::new(0)));
        // Read but not committed: still occupied.
        assert_eq!(tx.try_push(Envelope::new(16)), Err(Envelope::new(16)));
        assert!(rx.commit());
        assert_eq!(tx.try_push(Envelope::new(16)), Ok(()));
        assert_eq!(tx.try_push(Envelope::new(17)), Err(Envelope::new(17)));
    }

    #[test]
    fn ring_drain_respects_count_max_and_order() {
        let mut slots = Slot::<Envelope>::array::<32>();
        let mut ring = Ring::new(&mut slots).unwrap();
        let (mut tx, mut rx) = ring.split();
        for n in 0..20 {
            tx.try_push(Envelope::new(n)).unwrap();
        }
        tx.publish();
        let mut next = 0;
        let mut check = |e: &Envelope| {
            assert_eq!(*e, Envelope::new(next));
            next += 1;
        };
        assert_eq!(rx.drain(7, &mut check), 7);
        assert_eq!(rx.drain(usize::MAX, &mut check), 13);
        assert_eq!(rx.drain(usize::MAX, &mut check), 0);
        assert_eq!(rx.drain(0, &mut check), 0);
        assert!(rx.commit());
        assert_eq!(next, 20);
    }

    #[test]
    fn ring_wraps_many_times_in_order() {
        let mut slots = Slot::<Envelope>::array::<16>();
        let mut ring = Ring::new(&mut slots).unwrap();
        let (mut tx, mut rx) = ring.split();
        let (mut sent, mut received) = (0u64, 0u64);
        let total = if cfg!(miri) { 100 } else { 1000 };
        while received < total {
            for _ in 0..5 {
                if sent < total && tx.try_push(Envelope::new(sent)).is_ok() {
                    sent += 1;
                }
            }
            tx.publish();
            rx.drain(11, |e| {
                assert_eq!(*e, Envelope::new(received));
                received += 1;
            });
            rx.commit();
        }
        assert!(rx.is_empty());
    }

    #[test]
    fn ring_counters_wrap_at_usize_max() {
        let mut slots = Slot::<u32>::array::<16>();
        let mut ring = Ring::new_inner(&mut slots, usize::MAX - 20).unwrap();
        let (mut tx, mut rx) = ring.split();
        for n in 0..100 {
            for k in 0..16 {
                tx.try_push(n * 16 + k).unwrap();
            }
            assert!(tx.try_push(0).is_err());
            tx.publish();
            for k in 0..16 {
                assert_eq!(rx.pop(), Some(n * 16 + k));
            }
            assert_eq!(rx.pop(), None);
            rx.commit();
        }
    }

    #[test]
    fn ring_split_again_resumes_from_committed_and_published() {
        let mut slots = Slot::<u32>::array::<16>();
        let mut ring = Ring::new(&mut slots).unwrap();
        {
            let (mut tx, mut rx) = ring.split();
            tx.try_push(1).unwrap();
            tx.try_push(2).unwrap();
            tx.publish();
            tx.try_push(3).unwrap(); // staged only: discarded with the producer
            assert_eq!(rx.pop(), Some(1));
            rx.commit();
            assert_eq!(rx.pop(), Some(2)); // read, not committed: read again
        }
        let (mut tx, mut rx) = ring.split();
        assert_eq!(tx.staged_count(), 0);
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None);
        tx.try_push(4).unwrap();
        tx.publish();
        assert_eq!(rx.pop(), Some(4));
    }

    /// Slot storage can be built in a constant context, as a `static` needs.
    const fn static_slots() -> [Slot<Envelope>; 16] {
        [const { Slot::new() }; 16]
    }

    #[test]
    fn ring_over_const_built_slots_works() {
        let mut slots = static_slots();
        let mut ring = Ring::new(&mut slots).unwrap();
        let (mut tx, mut rx) = ring.split();
        tx.try_push(Envelope::new(7)).unwrap();
        tx.publish();
        assert_eq!(rx.pop(), Some(Envelope::new(7)));
    }

    #[test]
    fn ring_halves_are_send() {
        fn send<S: Send>() {}
        send::<Producer<'_, Envelope>>();
        send::<Consumer<'_, Envelope>>();
        send::<Ring<'_, Envelope>>();
    }
}
