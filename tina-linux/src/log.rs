//! The stderr log sink and the driver's own log lines, without allocating.
//!
//! Each record is formatted into a fixed stack buffer and written with one `write(2)` on
//! descriptor 2: lines from different shards never interleave mid-line (writes under
//! `PIPE_BUF` bytes are atomic on pipes), nothing is buffered, nothing is allocated.

use core::fmt::Write as _;

use tina_core::ShardId;
use tina_core::log::{Level, LogRecord, LogSink};

use crate::sys::{self, StackBuf};

/// Line buffer size (a record's text is at most 104 bytes).
const LINE_SIZE_MAX: usize = 256;

/// Writes log records to stderr: `tina[s0 t1234] INFO  <isolate> text`.
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
        sys::write_stderr(line.as_bytes());
    }
}

/// Writes one driver line (`tina: …`) to stderr without allocating.
pub(crate) fn line(args: core::fmt::Arguments<'_>) {
    let mut b = StackBuf::<512>::new();
    let _ = b.write_str("tina: ");
    let _ = b.write_fmt(args);
    let _ = b.write_str("\n");
    sys::write_stderr(b.as_bytes());
}

/// `say!("…", args)`: one driver line on stderr.
macro_rules! say {
    ($($arg:tt)+) => {
        $crate::log::line(format_args!($($arg)+))
    };
}
pub(crate) use say;
