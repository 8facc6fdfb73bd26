//! The simulator's randomness: one `u64` seed, a tree of independent streams.
//!
//! Every random decision of a run — shard order, network drops and delays, partitions, each
//! shard's I/O outcomes and crashes, the swarm's choice of faults, the scenario's clients —
//! draws from its own [`SimRng`] stream. A stream is derived from the run's seed and a fixed
//! **domain number** ([`Domain`]), not from the order streams are created in, so adding a new
//! domain later (append-only numbering) never changes what existing domains draw for an old
//! seed, and one domain drawing more or less never disturbs another.
//!
//! The generator is xoshiro256** seeded through splitmix64, both implemented here (a dozen
//! lines each) so that no dependency update can change a replay. They implement the
//! `rand_core` traits so they plug into anything that takes a `rand_core::Rng`.
//!
//! Probabilities are integer [`Ratio`]s and ranges are drawn with Lemire's multiply-shift and
//! rejection: no floating point anywhere.

use core::convert::Infallible;
use core::fmt;
use rand_core::{SeedableRng, TryRng};

/// splitmix64: the seeding generator (and a good 64-bit mixer).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `state`.
    pub const fn new(state: u64) -> SplitMix64 {
        SplitMix64 { state }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }
}

/// The splitmix64 finalizer: a bijective 64-bit mixer.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: the simulator's stream generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// A generator seeded from one `u64` through splitmix64 (never all-zero).
    pub fn from_u64(seed: u64) -> SimRng {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        SimRng { s }
    }

    /// The stream of `domain` for the run seeded with `seed`.
    pub fn stream(seed: u64, domain: Domain) -> SimRng {
        // Two rounds of mixing so neighbouring seeds and neighbouring domains are unrelated.
        SimRng::from_u64(mix64(
            seed ^ mix64(domain.0.wrapping_mul(0xD1B5_4A32_D192_ED03)),
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform value in `0..n` (`0` when `n` is 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire: multiply-shift with rejection of the biased low zone.
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform value in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `ratio`.
    pub fn chance(&mut self, ratio: Ratio) -> bool {
        if ratio.num == 0 || ratio.den == 0 {
            return false;
        }
        if ratio.num >= ratio.den {
            return true;
        }
        self.below(u64::from(ratio.den)) < u64::from(ratio.num)
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Picks one element of `items`.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> Option<&'t T> {
        items.get(self.below(items.len() as u64) as usize)
    }
}

impl TryRng for SimRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

impl SeedableRng for SimRng {
    type Seed = [u8; 32];

    fn from_seed(seed: [u8; 32]) -> SimRng {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            // The all-zero state is a fixed point of xoshiro; avoid it.
            return SimRng::from_u64(0);
        }
        SimRng { s }
    }

    fn seed_from_u64(seed: u64) -> SimRng {
        SimRng::from_u64(seed)
    }
}

/// A probability as an integer ratio `num / den` (e.g. `Ratio::new(1, 200)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ratio {
    /// Numerator.
    pub num: u32,
    /// Denominator (0 means "never").
    pub den: u32,
}

impl Ratio {
    /// Never.
    pub const NEVER: Ratio = Ratio { num: 0, den: 1 };

    /// `num / den`.
    pub const fn new(num: u32, den: u32) -> Ratio {
        Ratio { num, den }
    }

    /// Whether this can ever be true.
    pub const fn is_possible(self) -> bool {
        self.num > 0 && self.den > 0
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_possible() {
            write!(f, "{}/{}", self.num, self.den)
        } else {
            f.write_str("0")
        }
    }
}

/// A PRNG domain number. Numbers are **append-only**: never renumber or reuse one, so old
/// seeds keep replaying identically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain(pub u64);

impl Domain {
    /// Shard stepping order.
    pub const SCHEDULING: Domain = Domain(1);
    /// Whether a cross-shard message is dropped.
    pub const NET_DROP: Domain = Domain(2);
    /// Extra delay of a cross-shard message or TCP segment.
    pub const NET_DELAY: Domain = Domain(3);
    /// Partition starts, sides and lengths.
    pub const PARTITIONS: Domain = Domain(4);
    /// The swarm's choice of faults and rates.
    pub const SWARM: Domain = Domain(5);
    /// The scenario's own decisions (clients, workloads).
    pub const SCENARIO: Domain = Domain(6);
    /// Which listener of a `SO_REUSEPORT` group takes a connection; TCP resets.
    pub const SOCKETS: Domain = Domain(7);
    /// Whole-shard crash decisions.
    pub const SHARD_CRASHES: Domain = Domain(8);
    /// The simulated calendar clock's start.
    pub const WALL_CLOCK: Domain = Domain(9);

    /// Per-shard I/O outcomes (errors, delays, short transfers, reordering).
    pub const fn shard_io(shard: u8) -> Domain {
        Domain(1000 + shard as u64 * 16)
    }

    /// Per-shard handler crashes, panics and init failures.
    pub const fn shard_trap(shard: u8) -> Domain {
        Domain(1000 + shard as u64 * 16 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference_vector() {
        // Reference: xoshiro256** with state {1, 2, 3, 4} (from the authors' C code).
        let mut r = SimRng { s: [1, 2, 3, 4] };
        let expected = [
            11520u64,
            0,
            1509978240,
            1215971899390074240,
            1216172134540287360,
            607988272756665600,
        ];
        for e in expected {
            assert_eq!(r.next_u64(), e);
        }
    }

    #[test]
    fn splitmix_matches_reference_vector() {
        let mut s = SplitMix64::new(1234567);
        assert_eq!(s.next_u64(), 6457827717110365317);
        assert_eq!(s.next_u64(), 3203168211198807973);
    }

    #[test]
    fn streams_are_independent_of_creation_order() {
        let a1 = SimRng::stream(7, Domain::NET_DROP).next_u64();
        let _ = SimRng::stream(7, Domain::SCHEDULING).next_u64();
        let a2 = SimRng::stream(7, Domain::NET_DROP).next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, SimRng::stream(8, Domain::NET_DROP).next_u64());
        assert_ne!(a1, SimRng::stream(7, Domain::NET_DELAY).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_chance_respects_extremes() {
        let mut r = SimRng::from_u64(1);
        for n in [1u64, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        assert!(!r.chance(Ratio::NEVER));
        assert!(r.chance(Ratio::new(5, 5)));
        let hits = (0..10_000).filter(|_| r.chance(Ratio::new(1, 4))).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }
}
