//! Calendar time: what the platform's wall clock said at the start of a step.
//!
//! The core never reads a clock; the platform supplies a [`WallTime`] with each step (see
//! [`Clock`](crate::Clock)) and handlers read it with [`Ctx::wall_time`](crate::Ctx::wall_time).
//! It is for stamping (an HTTP `Date` header, TTLs, log lines), not for scheduling: wall time
//! can jump when the host's clock is set, so timers and timeouts use the monotonic
//! [`Instant`](crate::Instant) instead.
//!
//! Formatting is allocation-free: [`WallTime::http_date`] gives the 29-byte IMF-fixdate of
//! RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`) by value.

use crate::model::time::Duration;
use core::fmt;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// A calendar time: nanoseconds since the Unix epoch (1970-01-01 00:00:00 UTC), up to the
/// year 2554.
///
/// ```
/// use tina_core::{Duration, WallTime};
/// let t = WallTime::from_unix_secs(784_111_777);
/// assert_eq!(t.http_date().as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
/// // A TTL: expires one hour later.
/// let expires = t.saturating_add(Duration::from_secs(3_600));
/// assert_eq!(expires.to_string(), "Sun, 06 Nov 1994 09:49:37 GMT");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WallTime(u64);

impl WallTime {
    /// The Unix epoch.
    pub const UNIX_EPOCH: WallTime = WallTime(0);

    /// `nanos` nanoseconds after the Unix epoch.
    pub const fn from_unix_nanos(nanos: u64) -> Self {
        WallTime(nanos)
    }

    /// `secs` seconds after the Unix epoch (saturating).
    pub const fn from_unix_secs(secs: u64) -> Self {
        WallTime(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn unix_secs(self) -> u64 {
        self.0 / NANOS_PER_SEC
    }

    /// The time `d` later (saturating), e.g. when an entry with a TTL expires.
    pub const fn saturating_add(self, d: Duration) -> WallTime {
        WallTime(self.0.saturating_add(d.as_nanos()))
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: WallTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// This time as an HTTP `Date` (IMF-fixdate, always 29 ASCII bytes, whole seconds).
    pub fn http_date(self) -> HttpDate {
        let secs = self.unix_secs();
        let days = secs / SECS_PER_DAY;
        let of_day = secs % SECS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = ((days + 4) % 7) as usize;
        let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        out[..3].copy_from_slice(WEEKDAYS[weekday]);
        two_digits(&mut out[5..7], day);
        out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
        two_digits(&mut out[12..14], year / 100);
        two_digits(&mut out[14..16], year % 100);
        two_digits(&mut out[17..19], of_day / 3600);
        two_digits(&mut out[20..22], of_day / 60 % 60);
        two_digits(&mut out[23..25], of_day % 60);
        HttpDate(out)
    }
}

/// A formatted HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`): 29 ASCII bytes, no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HttpDate([u8; 29]);

impl HttpDate {
    /// The 29 bytes, ready to copy into a response header.
    pub const fn as_bytes(&self) -> &[u8; 29] {
        &self.0
    }

    /// The date as text.
    pub fn as_str(&self) -> &str {
        // Every byte written is ASCII, so this never falls back.
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The full UTC date and time, in the same form as an HTTP date.
impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.http_date().as_str())
    }
}

const WEEKDAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01, in the proleptic
/// Gregorian calendar (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so a leap day is the last day of its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(secs: u64) -> HttpDate {
        WallTime::from_unix_secs(secs).http_date()
    }

    #[test]
    fn http_date_formats_known_dates() {
        assert_eq!(date(0).as_str(), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110's own example.
        assert_eq!(date(784_111_777).as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
        // Leap days: 2000 is a leap year (divisible by 400), 2024 an ordinary one.
        assert_eq!(date(951_825_600).as_str(), "Tue, 29 Feb 2000 12:00:00 GMT");
        assert_eq!(
            date(1_709_251_199).as_str(),
            "Thu, 29 Feb 2024 23:59:59 GMT"
        );
        // The end of a year and the next second.
        assert_eq!(
            date(1_704_067_199).as_str(),
            "Sun, 31 Dec 2023 23:59:59 GMT"
        );
        assert_eq!(
            date(1_704_067_200).as_str(),
            "Mon, 01 Jan 2024 00:00:00 GMT"
        );
    }

    #[test]
    fn http_date_skips_the_leap_day_of_2100() {
        // 2100 is divisible by 100 but not 400: February has 28 days.
        let march_first = 4_107_542_400;
        assert_eq!(date(march_first).as_str(), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(
            date(march_first - 1).as_str(),
            "Sun, 28 Feb 2100 23:59:59 GMT"
        );
    }

    #[test]
    fn http_date_of_the_largest_time_is_well_formed() {
        let d = WallTime::from_unix_nanos(u64::MAX).http_date();
        assert_eq!(d.as_str(), "Sun, 21 Jul 2554 23:34:33 GMT");
        assert_eq!(d.as_bytes().len(), 29);
    }

    #[test]
    fn wall_time_arithmetic_saturates() {
        let t = WallTime::from_unix_secs(10);
        assert_eq!(t.unix_secs(), 10);
        assert_eq!(
            t.saturating_add(Duration::from_millis(1_500)).unix_nanos(),
            11_500_000_000
        );
        assert_eq!(WallTime::from_unix_secs(u64::MAX).unix_nanos(), u64::MAX);
        assert_eq!(
            WallTime::from_unix_nanos(u64::MAX)
                .saturating_add(Duration::MAX)
                .unix_nanos(),
            u64::MAX
        );
        assert_eq!(
            WallTime::from_unix_secs(12).saturating_since(t),
            Duration::from_secs(2)
        );
        assert_eq!(
            t.saturating_since(WallTime::from_unix_secs(12)),
            Duration::ZERO
        );
    }

    #[test]
    fn wall_time_displays_as_its_http_date() {
        use std::format;
        assert_eq!(
            format!("{}", WallTime::from_unix_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
