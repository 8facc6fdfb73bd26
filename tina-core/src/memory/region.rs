//! The region and its measurement: [`Region`] carves typed slices from an aligned byte
//! region; [`Measure`] computes the bytes the same sequence of carves would take.
//!
//! This is one of the two modules of tina-core that use `unsafe` (the other is the ring):
//! turning an aligned, unused chunk of the region into a `&mut [T]` of freshly written values.
//! Values carved here are never dropped by the region; the shard drops the only values that
//! may own resources (isolates) itself when it is dropped.

use core::mem::{MaybeUninit, align_of, size_of};

/// Alignment the region's base address must have, so [`Measure`] can predict padding exactly.
pub const REGION_ALIGN: usize = 128;

/// The region is too small, or its base is misaligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemoryError {
    /// More bytes were needed than the region has.
    Exhausted {
        /// Bytes needed in total (as measured for the spec).
        needed: usize,
        /// Bytes the region has.
        available: usize,
    },
    /// The region's base address is not 128-byte aligned.
    Misaligned,
    /// A size computation overflowed `usize`.
    Overflow,
    /// A type needs more than 128-byte alignment.
    AlignmentTooLarge,
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemoryError::Exhausted { needed, available } => write!(
                f,
                "shard memory region too small: needs {needed} bytes, has {available} \
                 (size it with Shard::memory_required)"
            ),
            MemoryError::Misaligned => f.write_str("shard memory region must be 128-byte aligned"),
            MemoryError::Overflow => f.write_str("shard memory size overflows usize"),
            MemoryError::AlignmentTooLarge => {
                f.write_str("a carved type needs more than 128-byte alignment")
            }
        }
    }
}

/// A 128-byte aligned block, for platforms that allocate a region as a slice of these.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
pub struct RegionBlock(pub [MaybeUninit<u8>; REGION_ALIGN]);

impl RegionBlock {
    /// An uninitialized block.
    pub const UNINIT: RegionBlock = RegionBlock([MaybeUninit::uninit(); REGION_ALIGN]);

    /// Views a slice of blocks as one aligned byte region.
    pub fn as_bytes(blocks: &mut [RegionBlock]) -> &mut [MaybeUninit<u8>] {
        let n = blocks.len() * REGION_ALIGN;
        let ptr = blocks.as_mut_ptr().cast::<MaybeUninit<u8>>();
        // SAFETY: `RegionBlock` is `repr(C)` around `[MaybeUninit<u8>; 128]` with no padding,
        // so `blocks` is exactly `n` contiguous bytes, all valid as `MaybeUninit<u8>`; the
        // returned slice reborrows `blocks` mutably for the same lifetime.
        unsafe { core::slice::from_raw_parts_mut(ptr, n) }
    }

    /// How many blocks hold `bytes` bytes.
    pub const fn blocks_for(bytes: usize) -> usize {
        bytes.div_ceil(REGION_ALIGN)
    }
}

/// Counts the bytes a carve sequence needs, assuming a 128-aligned base.
///
/// Every step is checked: an offset, a padding or a product above the limit is
/// [`MemoryError::Overflow`], never a wrap. The limit is `usize::MAX` ([`Measure::new`]);
/// [`Measure::with_limit`] computes the same sizes as a target with a narrower `usize`
/// would (`u32::MAX`: a 32-bit MCU), so a 64-bit host can check a spec for such a target.
#[derive(Clone, Copy, Debug)]
pub struct Measure {
    offset: usize,
    limit: usize,
    overflow: bool,
}

impl Default for Measure {
    fn default() -> Measure {
        Measure::new()
    }
}

impl Measure {
    /// Starts at offset 0, with `usize::MAX` as the limit.
    pub const fn new() -> Measure {
        Measure::with_limit(usize::MAX)
    }

    /// Starts at offset 0; any offset or size above `limit` is an overflow.
    pub const fn with_limit(limit: usize) -> Measure {
        Measure {
            offset: 0,
            limit,
            overflow: false,
        }
    }

    /// Accounts for `len` values of `T`.
    pub fn slice<T>(&mut self, len: usize) {
        self.add(align_of::<T>(), size_of::<T>(), len);
    }

    /// Accounts for `count × per` values of `T` (the product is checked too).
    pub fn slice_of<T>(&mut self, count: usize, per: usize) {
        match count.checked_mul(per) {
            Some(len) => self.slice::<T>(len),
            None => self.overflow = true,
        }
    }

    /// Accounts for one `T`.
    pub fn one<T>(&mut self) {
        self.slice::<T>(1);
    }

    fn add(&mut self, align: usize, size: usize, len: usize) {
        let end = self
            .offset
            .checked_next_multiple_of(align)
            .filter(|&start| start <= self.limit)
            .zip(size.checked_mul(len))
            .and_then(|(start, bytes)| start.checked_add(bytes))
            .filter(|&end| end <= self.limit);
        match end {
            Some(end) => self.offset = end,
            None => self.overflow = true,
        }
    }

    /// The total, or an error if it overflowed.
    pub fn total(&self) -> Result<usize, MemoryError> {
        if self.overflow {
            Err(MemoryError::Overflow)
        } else {
            Ok(self.offset)
        }
    }
}

/// An aligned byte region being carved into typed slices.
pub struct Region<'a> {
    free: &'a mut [MaybeUninit<u8>],
    consumed: usize,
    capacity: usize,
}

impl<'a> Region<'a> {
    /// Wraps a region whose base must be 128-byte aligned.
    pub fn new(bytes: &'a mut [MaybeUninit<u8>]) -> Result<Region<'a>, MemoryError> {
        if !(bytes.as_ptr() as usize).is_multiple_of(REGION_ALIGN) {
            return Err(MemoryError::Misaligned);
        }
        let capacity = bytes.len();
        Ok(Region {
            free: bytes,
            consumed: 0,
            capacity,
        })
    }

    /// Bytes carved so far (including alignment padding).
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Carves `len` values of `T`, each initialized by `init(index)`.
    pub fn slice<T>(
        &mut self,
        len: usize,
        mut init: impl FnMut(usize) -> T,
    ) -> Result<&'a mut [T], MemoryError> {
        let align = align_of::<T>();
        if align > REGION_ALIGN {
            return Err(MemoryError::AlignmentTooLarge);
        }
        let pad = self
            .consumed
            .checked_next_multiple_of(align)
            .ok_or(MemoryError::Overflow)?
            - self.consumed;
        let bytes = size_of::<T>()
            .checked_mul(len)
            .and_then(|b| b.checked_add(pad))
            .ok_or(MemoryError::Overflow)?;
        if bytes > self.free.len() {
            return Err(MemoryError::Exhausted {
                needed: self.consumed.saturating_add(bytes),
                available: self.capacity,
            });
        }
        let free = core::mem::take(&mut self.free);
        let (chunk, rest) = free.split_at_mut(bytes);
        self.free = rest;
        self.consumed += bytes;
        let chunk = &mut chunk[pad..];
        let ptr = chunk.as_mut_ptr().cast::<MaybeUninit<T>>();
        debug_assert_eq!(ptr as usize % align, 0);
        // SAFETY: the base address is a multiple of 128 (checked in `new`) and the offset
        // `consumed + pad` is a multiple of `align`, a power of two ≤ 128 (checked above), so
        // `ptr` is aligned for `T`. `chunk` is exactly `size_of::<T>() * len` bytes that were
        // split off `free` and so are reachable through no other reference for `'a`, and
        // `MaybeUninit<T>` has no validity requirement, so viewing them as `len` values of
        // `MaybeUninit<T>` is sound.
        let uninit: &'a mut [MaybeUninit<T>] = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
        for (i, slot) in uninit.iter_mut().enumerate() {
            slot.write(init(i));
        }
        // SAFETY: every element was initialized by the loop above, and `MaybeUninit<T>` has
        // the same layout as `T`.
        Ok(unsafe { &mut *(uninit as *mut [MaybeUninit<T>] as *mut [T]) })
    }

    /// Carves `len` zeroed bytes (one `memset`, not `len` writes).
    pub fn zeroed_bytes(&mut self, len: usize) -> Result<&'a mut [u8], MemoryError> {
        if len > self.free.len() {
            return Err(MemoryError::Exhausted {
                needed: self.consumed.saturating_add(len),
                available: self.capacity,
            });
        }
        let free = core::mem::take(&mut self.free);
        let (chunk, rest) = free.split_at_mut(len);
        self.free = rest;
        self.consumed += len;
        let ptr = chunk.as_mut_ptr();
        // SAFETY: `chunk` is `len` bytes exclusively borrowed for `'a` (split off `free`
        // above); writing zeros initializes every one of them, and `u8` has the layout of
        // `MaybeUninit<u8>` with every bit pattern valid.
        unsafe {
            core::ptr::write_bytes(ptr, 0, len);
            Ok(core::slice::from_raw_parts_mut(ptr.cast::<u8>(), len))
        }
    }

    /// Carves one `T`.
    pub fn one<T>(&mut self, value: T) -> Result<&'a mut T, MemoryError> {
        let mut value = Some(value);
        let s = self.slice(1, |_| value.take().expect("init called once per element"))?;
        Ok(&mut s[0])
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn region_measure_matches_consumption_exactly() {
        let mut blocks = vec![RegionBlock::UNINIT; 64];
        let mut region = Region::new(RegionBlock::as_bytes(&mut blocks)).unwrap();
        let mut m = Measure::new();
        let a = region.slice::<u8>(3, |i| i as u8).unwrap();
        m.slice::<u8>(3);
        let b = region.slice::<u64>(5, |i| i as u64 * 10).unwrap();
        m.slice::<u64>(5);
        let c = region.one(crate::Message::EMPTY).unwrap();
        m.one::<crate::Message>();
        let d = region.slice::<u16>(7, |_| 0xBEEF).unwrap();
        m.slice::<u16>(7);
        assert_eq!(a, &[0, 1, 2]);
        assert_eq!(b[4], 40);
        assert_eq!(c.tag().0, 0);
        assert!(d.iter().all(|&x| x == 0xBEEF));
        assert_eq!(m.total().unwrap(), region.consumed());
        assert_eq!((c as *const _ as usize) % 128, 0);
    }

    #[test]
    fn region_zeroed_bytes_are_zero_and_measured_like_a_byte_slice() {
        let mut blocks = vec![RegionBlock::UNINIT; 4];
        let mut region = Region::new(RegionBlock::as_bytes(&mut blocks)).unwrap();
        let mut m = Measure::new();
        let z = region.zeroed_bytes(300).unwrap();
        m.slice::<u8>(300);
        assert!(z.iter().all(|&b| b == 0));
        z[299] = 7;
        let w = region.slice::<u32>(3, |_| 9).unwrap();
        m.slice::<u32>(3);
        assert_eq!(w, &[9, 9, 9]);
        assert_eq!(m.total().unwrap(), region.consumed());
        assert!(region.zeroed_bytes(1000).is_err());
    }

    #[test]
    fn region_too_small_reports_needed_bytes() {
        let mut blocks = vec![RegionBlock::UNINIT; 1];
        let mut region = Region::new(RegionBlock::as_bytes(&mut blocks)).unwrap();
        let err = region.slice::<u64>(17, |_| 0).unwrap_err();
        assert_eq!(
            err,
            MemoryError::Exhausted {
                needed: 136,
                available: 128
            }
        );
        // Nothing was consumed by the failed carve; a fitting one still works.
        assert_eq!(region.slice::<u64>(16, |_| 1).unwrap().len(), 16);
    }

    #[test]
    fn region_rejects_misaligned_base() {
        let mut blocks = vec![RegionBlock::UNINIT; 2];
        let bytes = RegionBlock::as_bytes(&mut blocks);
        assert_eq!(
            Region::new(&mut bytes[1..]).err(),
            Some(MemoryError::Misaligned)
        );
    }

    #[test]
    fn measure_overflow_is_an_error() {
        let mut m = Measure::new();
        m.slice::<u64>(usize::MAX / 4);
        assert_eq!(m.total(), Err(MemoryError::Overflow));
    }

    #[test]
    fn measure_padding_past_usize_max_is_an_error_not_a_wrap() {
        // An offset a few bytes below the top: aligning it for a `u64` would pass usize::MAX.
        let mut m = Measure::new();
        m.slice::<u8>(usize::MAX - 2);
        assert_eq!(m.total(), Ok(usize::MAX - 2));
        m.slice::<u64>(0);
        assert_eq!(m.total(), Err(MemoryError::Overflow));
    }

    #[test]
    fn measure_with_a_32_bit_limit_reports_what_wraps_on_a_32_bit_target() {
        let limit = u32::MAX as usize;
        // Fits in 32 bits: the same total as without a limit.
        let mut narrow = Measure::with_limit(limit);
        let mut wide = Measure::new();
        for m in [&mut narrow, &mut wide] {
            m.slice::<u8>(3);
            m.slice_of::<u8>(65_535, 16 * 1024);
            m.slice::<u64>(10);
        }
        assert_eq!(narrow.total(), wide.total());
        assert!(narrow.total().unwrap() < limit);
        // 65535 buffers of 64 KiB + 2 bytes: more than 2^32 − 1 bytes.
        let mut narrow = Measure::with_limit(limit);
        narrow.slice_of::<u8>(65_535, 65_538);
        assert_eq!(narrow.total(), Err(MemoryError::Overflow));
        // The product of the two counts alone overflows 32 bits.
        let mut narrow = Measure::with_limit(limit);
        narrow.slice_of::<u128>(1 << 20, 1 << 12);
        assert_eq!(narrow.total(), Err(MemoryError::Overflow));
        // An offset just below the limit: the padding for a `u32` crosses it.
        let mut narrow = Measure::with_limit(limit);
        narrow.slice::<u8>(limit - 1);
        assert_eq!(narrow.total(), Ok(limit - 1));
        narrow.slice::<u32>(0);
        assert_eq!(narrow.total(), Err(MemoryError::Overflow));
        // On a real 64-bit `usize` the same products fit.
        if cfg!(target_pointer_width = "64") {
            let mut wide = Measure::new();
            wide.slice_of::<u8>(65_535, 65_538);
            wide.slice_of::<u128>(1 << 20, 1 << 12);
            assert!(wide.total().unwrap() > limit);
        }
        // The count product itself overflows usize.
        let mut m = Measure::new();
        m.slice_of::<u8>(usize::MAX, 2);
        assert_eq!(m.total(), Err(MemoryError::Overflow));
    }
}
