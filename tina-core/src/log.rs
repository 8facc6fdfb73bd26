//! Logging from handlers: a bounded per-shard ring, flushed to the platform once per tick.
//!
//! `ctx.log(Level::Info, format_args!(..))` (or the [`log!`](crate::log!) macro) formats into
//! the next fixed-size record of the shard's log ring — truncated at
//! [`LOG_TEXT_SIZE_MAX`] bytes on a character boundary — and returns at once. After dispatch,
//! the step hands every record to the platform's [`LogSink`] (stderr on Linux, a trace in the
//! simulator, `defmt` on bare metal) and empties the ring. When the ring is full, records are
//! dropped and counted (`Counters::log_drops`); logging never blocks and never allocates.

use crate::handle::{Handle, ShardId};
use crate::time::Instant;
use core::fmt;

/// Bytes of text one record holds.
pub const LOG_TEXT_SIZE_MAX: usize = 104;

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

/// Where the platform sends log records.
pub trait LogSink {
    /// Writes one record of shard `shard`.
    fn write(&mut self, shard: ShardId, record: &LogRecord);
}

/// A sink that discards everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLog;

impl LogSink for NoLog {
    fn write(&mut self, _shard: ShardId, _record: &LogRecord) {}
}

pub(crate) struct LogRing<'a> {
    records: &'a mut [LogRecord],
    len: usize,
}

impl<'a> LogRing<'a> {
    pub(crate) fn new(records: &'a mut [LogRecord]) -> LogRing<'a> {
        LogRing { records, len: 0 }
    }

    /// Formats a record into the ring; false if the ring is full.
    pub(crate) fn push(
        &mut self,
        level: Level,
        isolate: Handle,
        tick: Instant,
        args: fmt::Arguments<'_>,
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
        self.len += 1;
        true
    }

    pub(crate) fn flush(&mut self, shard: ShardId, sink: &mut dyn LogSink) {
        for r in &self.records[..self.len] {
            sink.write(shard, r);
        }
        self.len = 0;
    }
}

/// Logs from a handler: `log!(ctx, Info, "accepted {}", peer)`.
#[macro_export]
macro_rules! log {
    ($ctx:expr, $level:ident, $($arg:tt)+) => {
        $ctx.log($crate::log::Level::$level, format_args!($($arg)+))
    };
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
}
