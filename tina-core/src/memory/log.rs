//! Logging from handlers: a bounded per-shard ring, flushed to the platform once per tick,
//! with a per-call-site rate limit.
//!
//! `ctx.log(Level::Info, format_args!(..))` (or the [`log!`](crate::log!) macro) formats into
//! the next fixed-size record of the shard's log ring — truncated at
//! [`LOG_TEXT_SIZE_MAX`] bytes on a character boundary — and returns at once. After dispatch,
//! the step hands every record to the platform's [`LogSink`] (stderr on Linux, a trace in the
//! simulator, `defmt` on bare metal) and empties the ring. When the ring is full, records are
//! dropped and counted (`Counters::log_drops`); logging never blocks and never allocates.
//!
//! ## Rate limit
//!
//! Each `log!` call site is a [`LogSite`] (a `static` the macro declares). A shard lets one
//! site write at most [`LOG_SITE_LINES_PER_WINDOW_MAX`] records per window of
//! [`LOG_SITE_WINDOW_NS`] of its own clock (the window in ticks follows the spec's
//! `tick_ns`); further records from that site in the window are suppressed and counted. The
//! count is reported once: appended to the site's next record (`… (suppressed 1234 similar
//! lines)`) if the site logs again after the window, otherwise as a record of its own at the
//! window's end (`suppressed 1234 similar lines from src/echo.rs:180`) — the shard reports
//! that moment as a deadline, so a sleeping shard wakes for it. Sites are tracked in a fixed
//! table of [`LOG_SITES_MAX`] entries per shard (least recently started window evicted, its
//! pending count reported first); [`Ctx::log`](crate::Ctx::log) called directly names no
//! site and is not limited.

use crate::model::handle::{Handle, ShardId};
use crate::model::time::Instant;
use core::fmt;

/// Bytes of text one record holds.
pub const LOG_TEXT_SIZE_MAX: usize = 104;

/// Records one call site may write per window before the rest are suppressed (per shard).
pub const LOG_SITE_LINES_PER_WINDOW_MAX: u32 = 10;

/// Length of a rate-limit window, in nanoseconds of the shard's clock.
pub const LOG_SITE_WINDOW_NS: u64 = 1_000_000_000;

/// Call sites one shard tracks at once.
pub const LOG_SITES_MAX: usize = 16;

/// Room kept for the suppression note appended to a record.
const SUPPRESSED_NOTE_SIZE_MAX: usize = 48;

const _: () = assert!(SUPPRESSED_NOTE_SIZE_MAX < LOG_TEXT_SIZE_MAX / 2);

/// Severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is off.
    Warn,
    /// Normal operation.
    Info,
    /// Detail for developers.
    Debug,
    /// Very fine detail.
    Trace,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        })
    }
}

/// One log record.
///
/// Hand-written, not a heapless container: a record is `Copy` plain data carved
/// by the hundred from the region; its text is a fixed byte array and a length.
#[derive(Clone, Copy)]
pub struct LogRecord {
    /// Severity.
    pub level: Level,
    /// The isolate that logged (`Handle::NONE` for the shard itself).
    pub isolate: Handle,
    /// When.
    pub tick: Instant,
    len: u8,
    truncated: bool,
    text: [u8; LOG_TEXT_SIZE_MAX],
}

impl LogRecord {
    pub(crate) const EMPTY: LogRecord = LogRecord {
        level: Level::Info,
        isolate: Handle::NONE,
        tick: Instant::ZERO,
        len: 0,
        truncated: false,
        text: [0; LOG_TEXT_SIZE_MAX],
    };

    /// The text (valid UTF-8, possibly truncated).
    pub fn text(&self) -> &str {
        core::str::from_utf8(&self.text[..usize::from(self.len)]).unwrap_or("")
    }

    /// Whether the text was cut at [`LOG_TEXT_SIZE_MAX`] bytes.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Cuts the text (on a character boundary) so that at least `room` bytes are free.
    fn make_room(&mut self, room: usize) {
        let mut keep = usize::from(self.len).min(LOG_TEXT_SIZE_MAX - room);
        while !self.text().is_char_boundary(keep) {
            keep -= 1;
        }
        if keep < usize::from(self.len) {
            self.len = keep as u8;
            self.truncated = true;
        }
    }
}

impl fmt::Debug for LogRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.tick,
            self.level,
            self.isolate,
            self.text()
        )
    }
}

impl fmt::Write for LogRecord {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LOG_TEXT_SIZE_MAX - usize::from(self.len);
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let start = usize::from(self.len);
        self.text[start..start + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n as u8;
        if n < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

/// One `log!` call site: where it is, for rate limiting and for the suppression report.
/// The [`log!`](crate::log!) macro declares one `static` per call; sites are told apart by
/// address.
#[derive(Debug)]
pub struct LogSite {
    file: &'static str,
    line: u32,
}

impl LogSite {
    /// A site at `file:line` (what `file!()` and `line!()` say).
    pub const fn new(file: &'static str, line: u32) -> LogSite {
        LogSite { file, line }
    }

    /// The source file.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line.
    pub fn line(&self) -> u32 {
        self.line
    }
}

/// What became of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Logged {
    /// In the ring.
    Written,
    /// Over its site's rate limit: counted, reported later.
    Suppressed,
    /// The ring was full: dropped.
    RingFull,
}

/// The sink trait and the null sink live with the rest of the platform seam; named here too
/// so `tina_core::log::LogSink` keeps working.
pub use crate::platform::{LogSink, NoLog};

/// The rate-limit state of one call site.
#[derive(Clone, Copy)]
struct SiteWindow {
    site: Option<&'static LogSite>,
    /// Level and isolate of the site's last record (for its window-end report).
    level: Level,
    isolate: Handle,
    started: Instant,
    lines: u32,
    suppressed: u64,
}

impl SiteWindow {
    const EMPTY: SiteWindow = SiteWindow {
        site: None,
        level: Level::Info,
        isolate: Handle::NONE,
        started: Instant::ZERO,
        lines: 0,
        suppressed: 0,
    };

    fn ends(&self, window_ticks: u64) -> u64 {
        self.started.ticks().saturating_add(window_ticks)
    }
}

/// The shard's bounded log ring and per-site rate limits, flushed to the platform each step.
///
/// Hand-written, not a heapless container: its capacity comes from the boot spec
/// and its records from the region (`heapless::Deque` takes a const capacity and owns its
/// buffer).
pub(crate) struct LogRing<'a> {
    records: &'a mut [LogRecord],
    len: usize,
    sites: [SiteWindow; LOG_SITES_MAX],
    window_ticks: u64,
}

impl<'a> LogRing<'a> {
    /// A ring over `records`, for a shard whose tick lasts `tick_ns` nanoseconds.
    pub(crate) fn new(records: &'a mut [LogRecord], tick_ns: u64) -> LogRing<'a> {
        LogRing {
            records,
            len: 0,
            sites: [SiteWindow::EMPTY; LOG_SITES_MAX],
            window_ticks: (LOG_SITE_WINDOW_NS / tick_ns.max(1)).max(1),
        }
    }

    /// Formats a record into the ring; false if the ring is full.
    pub(crate) fn push(
        &mut self,
        level: Level,
        isolate: Handle,
        tick: Instant,
        args: fmt::Arguments<'_>,
    ) -> bool {
        self.push_noted(level, isolate, tick, args, 0)
    }

    /// [`push`](Self::push), with `suppressed` (if non-zero) noted at the end of the text.
    fn push_noted(
        &mut self,
        level: Level,
        isolate: Handle,
        tick: Instant,
        args: fmt::Arguments<'_>,
        suppressed: u64,
    ) -> bool {
        let Some(r) = self.records.get_mut(self.len) else {
            return false;
        };
        *r = LogRecord {
            level,
            isolate,
            tick,
            ..LogRecord::EMPTY
        };
        let _ = fmt::write(r, args);
        if suppressed > 0 {
            r.make_room(SUPPRESSED_NOTE_SIZE_MAX);
            let _ = fmt::write(r, format_args!(" (suppressed {suppressed} similar lines)"));
        }
        self.len += 1;
        true
    }

    /// A record from call site `site`, subject to the site's rate limit.
    pub(crate) fn push_at(
        &mut self,
        site: &'static LogSite,
        level: Level,
        isolate: Handle,
        now: Instant,
        args: fmt::Arguments<'_>,
    ) -> Logged {
        let i = self.window_of(site, now);
        let w = &mut self.sites[i];
        w.level = level;
        w.isolate = isolate;
        let mut carried = 0;
        if now.ticks() >= w.ends(self.window_ticks) {
            carried = w.suppressed;
            *w = SiteWindow {
                started: now,
                lines: 0,
                suppressed: 0,
                ..*w
            };
        }
        if w.lines >= LOG_SITE_LINES_PER_WINDOW_MAX {
            w.suppressed += 1;
            return Logged::Suppressed;
        }
        if !self.push_noted(level, isolate, now, args, carried) {
            // Keep the count for the next report.
            self.sites[i].suppressed += carried;
            return Logged::RingFull;
        }
        self.sites[i].lines += 1;
        Logged::Written
    }

    /// The table entry of `site`: its own, a free one, or the one whose window started
    /// longest ago (its pending count reported first).
    fn window_of(&mut self, site: &'static LogSite, now: Instant) -> usize {
        let mut oldest = 0;
        for (i, w) in self.sites.iter().enumerate() {
            match w.site {
                Some(s) if core::ptr::eq(s, site) => return i,
                None => {
                    oldest = i;
                    break;
                }
                Some(_) if w.started < self.sites[oldest].started => oldest = i,
                Some(_) => {}
            }
        }
        if self.sites[oldest].suppressed > 0 {
            self.report(oldest, now);
        }
        self.sites[oldest] = SiteWindow {
            site: Some(site),
            started: now,
            ..SiteWindow::EMPTY
        };
        oldest
    }

    /// Writes the suppression report of entry `i` as a record of its own.
    fn report(&mut self, i: usize, now: Instant) {
        let w = self.sites[i];
        let Some(site) = w.site else {
            return;
        };
        let written = self.push(
            w.level,
            w.isolate,
            now,
            format_args!(
                "suppressed {} similar lines from {}:{}",
                w.suppressed,
                site.file(),
                site.line()
            ),
        );
        if written {
            self.sites[i].suppressed = 0;
        }
    }

    /// When the earliest window with suppressed records ends (its report is due then).
    pub(crate) fn report_deadline(&self) -> Option<Instant> {
        self.sites
            .iter()
            .filter(|w| w.suppressed > 0)
            .map(|w| Instant::from_ticks(w.ends(self.window_ticks)))
            .min()
    }

    /// Reports the windows that have ended with suppressed records, then hands every record
    /// to `sink` and empties the ring.
    pub(crate) fn flush(&mut self, shard: ShardId, now: Instant, sink: &mut dyn LogSink) {
        for i in 0..LOG_SITES_MAX {
            let w = &self.sites[i];
            if w.suppressed > 0 && now.ticks() >= w.ends(self.window_ticks) {
                self.report(i, now);
                // The site starts afresh: its next record opens a new window.
                self.sites[i].started = now;
                self.sites[i].lines = 0;
            }
        }
        for r in &self.records[..self.len] {
            sink.write(shard, r);
        }
        self.len = 0;
    }
}

/// Logs from a handler: `log!(ctx, Info, "accepted {}", peer)`. Evaluates to whether the
/// record was written (false: suppressed by the call site's rate limit, or the ring was
/// full). Each use is its own [`LogSite`](crate::memory::log::LogSite), rate-limited per shard (see
/// [the module docs](mod@crate::log#rate-limit)).
#[macro_export]
macro_rules! log {
    ($ctx:expr, $level:ident, $($arg:tt)+) => {{
        static SITE: $crate::memory::log::LogSite = $crate::memory::log::LogSite::new(file!(), line!());
        $ctx.log_at(&SITE, $crate::memory::log::Level::$level, format_args!($($arg)+))
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_record_truncates_on_a_char_boundary() {
        let mut r = LogRecord::EMPTY;
        let long = "é".repeat(60); // 120 bytes of 2-byte characters
        fmt::Write::write_str(&mut r, &long).unwrap();
        assert_eq!(r.text().len(), LOG_TEXT_SIZE_MAX);
        assert!(r.truncated());
        assert!(r.text().chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_suppression_note_fits_after_a_long_text() {
        let mut records = [LogRecord::EMPTY; 1];
        let mut ring = LogRing::new(&mut records, 1);
        let long = "é".repeat(60);
        assert!(ring.push_noted(
            Level::Warn,
            Handle::NONE,
            Instant::ZERO,
            format_args!("{long}"),
            u64::MAX
        ));
        let r = &ring.records[0];
        let note = std::format!(" (suppressed {} similar lines)", u64::MAX);
        assert!(r.text().ends_with(&note), "{}", r.text());
        assert!(r.truncated());
        assert!(r.text().len() <= LOG_TEXT_SIZE_MAX);
    }
}
