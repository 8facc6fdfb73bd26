//! Log output on stderr that never blocks the thread that logs.
//!
//! Every line the runtime prints — the shards' log records ([`StderrLog`]), the driver's own
//! `tina: …` lines, the watchdog's reports, the control loop's messages — is copied into a
//! bounded queue of its thread and written to stderr by one writer thread (`tina-log`).
//! With stderr stalled (a pipe nobody reads) the writer waits, the queues fill, and further
//! lines are dropped and counted; once stderr takes writes again the writer prints
//! `tina: N log lines dropped (stderr too slow)`. Shard threads, the watchdog and the
//! control loop (and so signal handling) never wait for stderr. The paths that end the
//! process (a hardware fault, the watchdog's abort, a forced exit) flush briefly and write
//! their last line without waiting.
//!
//! ## For programs
//!
//! A binary's own messages block like any `eprintln!` when stderr stalls — its last message
//! can keep the process from exiting. [`line`](fn@line) (or the
//! [`log_line!`](crate::log_line!) macro) prints through the same writer instead, and
//! [`flush`] waits, boundedly, for what is queued:
//!
//! ```no_run
//! tina_linux::log_line!("tcp_echo: serving echo on {} with {} shard(s)", "127.0.0.1:7000", 2);
//! // … run the system …
//! tina_linux::log_line!("tcp_echo: stopped");
//! tina_linux::log::flush(std::time::Duration::from_millis(500));
//! std::process::exit(0);
//! ```
//!
//! Lines of one thread keep their order; lines of different threads are not ordered with
//! each other. Nothing in this module allocates after the runtime has booted (each producer's
//! queue is allocated when it registers; a thread that never registered shares one queue).

use core::fmt::Write as _;
use std::time::Duration as StdDuration;

use tina_core::ShardId;
use tina_core::log::{Level, LogRecord, LogSink};

use crate::logger::{self, LINE_SIZE_MAX};
use crate::sys::StackBuf;

/// Writes log records to stderr, `tina[s0 t1234] INFO  <isolate> text`, through the
/// calling thread's bounded queue (never waiting for stderr).
#[derive(Clone, Copy, Debug)]
pub struct StderrLog {
    /// Records less severe than this are dropped.
    pub level_max: Level,
}

impl LogSink for StderrLog {
    fn write(&mut self, shard: ShardId, record: &LogRecord) {
        if record.level > self.level_max {
            return;
        }
        let mut line = StackBuf::<LINE_SIZE_MAX>::new();
        let _ = write!(
            line,
            "tina[s{} t{}] {:<5} {} {}",
            shard.0,
            record.tick.ticks(),
            record.level,
            record.isolate,
            record.text()
        );
        if record.truncated() {
            let _ = line.write_str("…");
        }
        let _ = line.write_str("\n");
        logger::push_line(line.as_bytes());
    }
}

/// Prints one line (`args` and a newline, cut at 511 bytes) on stderr without ever waiting
/// for stderr: the line is queued for the runtime's writer thread (started on first use).
/// Returns false if it was dropped because the queue was full (stderr stalled or too slow);
/// drops are counted and reported on stderr once it drains. Allocation-free once the writer
/// runs.
pub fn line(args: core::fmt::Arguments<'_>) -> bool {
    let mut b = StackBuf::<LINE_SIZE_MAX>::new();
    let _ = b.write_fmt(args);
    b.end_line();
    logger::push_line(b.as_bytes())
}

/// Waits until every line queued so far has been written to stderr, at most `timeout`.
/// Returns whether everything was written (false: stderr is stalled or too slow; the lines
/// stay queued). Call it before `std::process::exit`, which does not wait for the writer.
pub fn flush(timeout: StdDuration) -> bool {
    logger::stderr().flush(timeout)
}

/// Lines dropped so far because stderr was too slow (process-wide, never reset).
pub fn dropped_lines() -> u64 {
    logger::stderr().dropped_total()
}

/// `log_line!("…", args)`: prints one line on stderr without waiting for stderr (see
/// [`log::line`](crate::log::line)). Evaluates to whether the line was queued.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)+) => {
        $crate::log::line(format_args!($($arg)+))
    };
}

/// How long the paths that end the process wait for queued lines before their last one.
pub(crate) const LAST_WORDS_WAIT: StdDuration = StdDuration::from_millis(100);

/// Writes one driver line (`tina: …`) to stderr without allocating or waiting.
pub(crate) fn say_line(args: core::fmt::Arguments<'_>) {
    let mut b = StackBuf::<LINE_SIZE_MAX>::new();
    let _ = b.write_str("tina: ");
    let _ = b.write_fmt(args);
    b.end_line();
    logger::push_line(b.as_bytes());
}

/// Writes one driver line (`tina: …`) as the process's last: flushes what is queued for at
/// most [`LAST_WORDS_WAIT`], then writes the line without waiting (lost if stderr is
/// stalled). For the paths that end the process.
pub(crate) fn last_line(args: core::fmt::Arguments<'_>) {
    let mut b = StackBuf::<LINE_SIZE_MAX>::new();
    let _ = b.write_str("tina: ");
    let _ = b.write_fmt(args);
    b.end_line();
    logger::last_words(b.as_bytes(), LAST_WORDS_WAIT);
}

/// `say!("…", args)`: one driver line on stderr.
macro_rules! say {
    ($($arg:tt)+) => {
        $crate::log::say_line(format_args!($($arg)+))
    };
}
pub(crate) use say;
