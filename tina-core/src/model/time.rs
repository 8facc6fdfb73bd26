//! Time as data: the core never reads a clock.
//!
//! The platform passes the current [`Clock`] reading to [`Shard::step`](crate::Shard::step):
//! the monotonic [`Instant`] and, where the platform has a calendar clock, the [`WallTime`].
//! The core answers with the next deadline it cares about.
//!
//! Two units, on purpose:
//! - An [`Instant`] is in **ticks** since the shard booted: it is the platform's step input,
//!   and one tick is whatever resolution the platform chose (the boot spec records it as
//!   `tick_ns` so drivers agree on it).
//! - A [`Duration`] is in **nanoseconds** (`from_secs(2)` is two seconds on any platform).
//!   Where the core takes one — [`Ctx::start_timer`](crate::Ctx::start_timer), a call's
//!   timeout ([`Effect::Call`](crate::Effect::Call)), a restart budget's window
//!   ([`RestartBudget`](crate::RestartBudget)), the spec's `recovery_window` — it converts it
//!   to ticks with the shard's tick length, [rounding up](Duration::to_ticks): a 1 ns timer on
//!   a 1 ms tick waits one tick, a zero duration waits none, and nothing fires early.
//!
//! All arithmetic saturates instead of overflowing; no conversion panics.

use core::fmt;

pub use crate::model::wall::{HttpDate, WallTime};

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A point in time, in ticks since the shard booted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

/// A span of time in nanoseconds (at most `u64::MAX` ns, about 584 years; constructors
/// saturate there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(u64);

/// What the platform knows about time at one step: the monotonic tick and, if it has a
/// calendar clock, the wall time read at the same moment.
///
/// `Clock::from(instant)` (what `shard.step(instant)` does) means "no calendar clock":
/// handlers then read [`Ctx::wall_time`](crate::Ctx::wall_time) as `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// The monotonic time of the step.
    pub now: Instant,
    /// The calendar time of the step, if the platform has a calendar clock.
    pub wall: Option<WallTime>,
}

impl Clock {
    /// A reading of both clocks.
    pub const fn new(now: Instant, wall: Option<WallTime>) -> Self {
        Clock { now, wall }
    }
}

impl From<Instant> for Clock {
    fn from(now: Instant) -> Self {
        Clock { now, wall: None }
    }
}

impl Instant {
    /// The boot instant.
    pub const ZERO: Instant = Instant(0);

    /// An instant `ticks` after boot.
    pub const fn from_ticks(ticks: u64) -> Self {
        Instant(ticks)
    }

    /// Ticks since boot.
    pub const fn ticks(self) -> u64 {
        self.0
    }

    /// Ticks elapsed since `earlier`, or zero if `earlier` is later. In real units:
    /// [`Ctx::elapsed_since`](crate::Ctx::elapsed_since), or [`Duration::from_ticks_of`].
    pub const fn ticks_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The instant `ticks` later (saturating).
    pub const fn after_ticks(self, ticks: u64) -> Instant {
        Instant(self.0.saturating_add(ticks))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);

    /// The longest duration (`u64::MAX` nanoseconds).
    pub const MAX: Duration = Duration(u64::MAX);

    /// A span of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        Duration(nanos)
    }

    /// A span of `micros` microseconds (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        Duration(micros.saturating_mul(NANOS_PER_MICRO))
    }

    /// A span of `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Duration(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// A span of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// The span of `ticks` ticks of `tick_ns` nanoseconds each (saturating).
    pub const fn from_ticks_of(ticks: u64, tick_ns: u64) -> Self {
        Duration(ticks.saturating_mul(tick_ns))
    }

    /// Whole nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole microseconds (rounded down).
    pub const fn as_micros(self) -> u64 {
        self.0 / NANOS_PER_MICRO
    }

    /// Whole milliseconds (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.0 / NANOS_PER_MILLI
    }

    /// Whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / NANOS_PER_SEC
    }

    /// Whether this is no time at all.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The number of ticks of `tick_ns` nanoseconds this span covers, **rounded up**: a
    /// deadline this far away never comes early. Zero stays zero; a `tick_ns` of 0 (which
    /// spec validation rejects) counts as 1.
    ///
    /// ```
    /// use tina_core::Duration;
    /// let ms = 1_000_000; // the default tick: 1 ms
    /// assert_eq!(Duration::from_secs(2).to_ticks(ms), 2_000);
    /// assert_eq!(Duration::from_nanos(1).to_ticks(ms), 1);
    /// assert_eq!(Duration::from_micros(1_500).to_ticks(ms), 2);
    /// assert_eq!(Duration::ZERO.to_ticks(ms), 0);
    /// ```
    pub const fn to_ticks(self, tick_ns: u64) -> u64 {
        let tick_ns = if tick_ns == 0 { 1 } else { tick_ns };
        let whole = self.0 / tick_ns;
        if self.0.is_multiple_of(tick_ns) {
            whole
        } else {
            whole + 1
        }
    }

    /// The sum, saturating at [`Duration::MAX`].
    pub const fn saturating_add(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_add(rhs.0))
    }

    /// The difference, or zero if `rhs` is longer.
    pub const fn saturating_sub(self, rhs: Duration) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}

impl core::ops::Add for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        self.saturating_add(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// In the largest unit that shows the span exactly: `2s`, `1500ms`, `250µs`, `3ns`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            f.write_str("0s")
        } else if n.is_multiple_of(NANOS_PER_SEC) {
            write!(f, "{}s", n / NANOS_PER_SEC)
        } else if n.is_multiple_of(NANOS_PER_MILLI) {
            write!(f, "{}ms", n / NANOS_PER_MILLI)
        } else if n.is_multiple_of(NANOS_PER_MICRO) {
            write!(f, "{}µs", n / NANOS_PER_MICRO)
        } else {
            write!(f, "{n}ns")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn to_ticks_rounds_up_at_every_tick_length() {
        // 1 ms ticks (the default).
        assert_eq!(Duration::ZERO.to_ticks(MS), 0);
        assert_eq!(Duration::from_nanos(1).to_ticks(MS), 1);
        assert_eq!(Duration::from_millis(1).to_ticks(MS), 1);
        assert_eq!(Duration::from_nanos(MS + 1).to_ticks(MS), 2);
        assert_eq!(Duration::from_secs(2).to_ticks(MS), 2_000);
        // 1 µs ticks.
        assert_eq!(Duration::from_nanos(999).to_ticks(1_000), 1);
        assert_eq!(Duration::from_millis(3).to_ticks(1_000), 3_000);
        assert_eq!(Duration::from_nanos(1_001).to_ticks(1_000), 2);
        // 3 ns ticks.
        assert_eq!(Duration::from_nanos(1).to_ticks(3), 1);
        assert_eq!(Duration::from_nanos(3).to_ticks(3), 1);
        assert_eq!(Duration::from_nanos(4).to_ticks(3), 2);
        assert_eq!(Duration::from_nanos(9).to_ticks(3), 3);
        // 100 ms ticks.
        assert_eq!(Duration::from_secs(2).to_ticks(100 * MS), 20);
        assert_eq!(Duration::from_millis(101).to_ticks(100 * MS), 2);
        // 1 ns ticks, and a zero tick length counts as 1 ns instead of dividing by zero.
        assert_eq!(Duration::from_micros(7).to_ticks(1), 7_000);
        assert_eq!(Duration::from_micros(7).to_ticks(0), 7_000);
    }

    #[test]
    fn constructors_saturate_and_conversions_never_overflow() {
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
        assert_eq!(Duration::from_millis(u64::MAX), Duration::MAX);
        assert_eq!(Duration::from_micros(u64::MAX), Duration::MAX);
        assert_eq!(Duration::from_ticks_of(u64::MAX, 2), Duration::MAX);
        // The largest span on the smallest tick, and on a tick that does not divide it.
        assert_eq!(Duration::MAX.to_ticks(1), u64::MAX);
        assert_eq!(Duration::MAX.to_ticks(7), u64::MAX / 7 + 1);
        assert_eq!(Duration::MAX.to_ticks(u64::MAX), 1);
        assert_eq!(Duration::MAX + Duration::from_secs(1), Duration::MAX);
        assert_eq!(Duration::ZERO.saturating_sub(Duration::MAX), Duration::ZERO);
        assert_eq!(
            Instant::from_ticks(u64::MAX).after_ticks(5).ticks(),
            u64::MAX
        );
    }

    #[test]
    fn accessors_round_down_to_the_unit() {
        let d = Duration::from_nanos(2_345_678_901);
        assert_eq!(d.as_nanos(), 2_345_678_901);
        assert_eq!(d.as_micros(), 2_345_678);
        assert_eq!(d.as_millis(), 2_345);
        assert_eq!(d.as_secs(), 2);
        assert_eq!(
            Duration::from_ticks_of(20, 100 * MS),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn instants_measure_ticks_between_them() {
        let a = Instant::from_ticks(10);
        let b = a.after_ticks(15);
        assert_eq!(b.ticks_since(a), 15);
        assert_eq!(a.ticks_since(b), 0);
    }

    #[test]
    fn duration_display_uses_the_largest_exact_unit() {
        use std::format;
        assert_eq!(format!("{}", Duration::ZERO), "0s");
        assert_eq!(format!("{}", Duration::from_secs(2)), "2s");
        assert_eq!(format!("{}", Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format!("{}", Duration::from_micros(250)), "250µs");
        assert_eq!(format!("{}", Duration::from_nanos(3)), "3ns");
    }
}
