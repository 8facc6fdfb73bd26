//! `compare`: the first event where two event logs differ, read as streams.
//!
//! Memory stays bounded whatever the inputs: both files are read a line at a time, a line
//! longer than [`LINE_SIZE_MAX`] or a file larger than [`LOG_SIZE_MAX`] is refused with an
//! error (neither is an event log `--trace-out` writes), and so is text that is not UTF-8.
//! A log whose first events were not kept starts with the header [`dropped_header`] writes;
//! events are numbered from the run's first event either way, so a log cut at the front
//! compares with a full one over the events both hold.

use super::{EXIT_DIFFERENT, EXIT_PASS, EXIT_USAGE};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};

/// The longest line an event log may have, in bytes.
pub(super) const LINE_SIZE_MAX: usize = 64 * 1024;
/// The largest event log `compare` reads, in bytes.
pub(super) const LOG_SIZE_MAX: u64 = 4 << 30;
/// How a header line starts.
const HEADER_PREFIX: &str = "# ";

/// The header of a log whose first `dropped` events were not kept.
pub(super) fn dropped_header(dropped: u64, keep: usize) -> String {
    format!(
        "{HEADER_PREFIX}{dropped} earlier events not kept (this log holds the last {keep}; --trace-keep sets how many)"
    )
}

/// One event log, read a line at a time.
struct LogReader<'p> {
    path: &'p str,
    reader: BufReader<File>,
    /// Bytes read so far.
    size: u64,
    /// The run's index of the next event line.
    index: u64,
    line: Vec<u8>,
    /// The first event line, read while looking for a header.
    pending: Option<String>,
}

impl<'p> LogReader<'p> {
    fn open(path: &'p str) -> Result<LogReader<'p>, String> {
        let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        let mut r = LogReader {
            path,
            reader: BufReader::new(file),
            size: 0,
            index: 0,
            line: Vec::new(),
            pending: None,
        };
        if let Some(first) = r.raw_line()? {
            match first.strip_prefix(HEADER_PREFIX) {
                Some(rest) => {
                    r.index = rest
                        .split_whitespace()
                        .next()
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| format!("{path}: line 1 is not an event-log header"))?;
                }
                None => r.pending = Some(first),
            }
        }
        Ok(r)
    }

    /// The next line, without its newline; `None` at the end.
    fn raw_line(&mut self) -> Result<Option<String>, String> {
        self.line.clear();
        let n = (&mut self.reader)
            .take(LINE_SIZE_MAX as u64 + 1)
            .read_until(b'\n', &mut self.line)
            .map_err(|e| format!("reading {}: {e}", self.path))?;
        if n == 0 {
            return Ok(None);
        }
        self.size += n as u64;
        if self.size > LOG_SIZE_MAX {
            return Err(format!(
                "{} is larger than {LOG_SIZE_MAX} bytes: not an event log",
                self.path
            ));
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        } else if n > LINE_SIZE_MAX {
            return Err(format!(
                "{}: a line longer than {LINE_SIZE_MAX} bytes: not an event log",
                self.path
            ));
        }
        String::from_utf8(core::mem::take(&mut self.line))
            .map(Some)
            .map_err(|_| format!("{}: text that is not UTF-8: not an event log", self.path))
    }

    /// The next event line and its index in the run.
    fn next(&mut self) -> Result<Option<(u64, String)>, String> {
        let line = match self.pending.take() {
            Some(l) => Some(l),
            None => self.raw_line()?,
        };
        Ok(line.map(|l| {
            let i = self.index;
            self.index += 1;
            (i, l)
        }))
    }
}

/// Compares two event logs; prints the first difference.
pub(super) fn compare(a: &str, b: &str, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match first_difference(a, b) {
        Ok(Difference::None { from, count }) => {
            let _ = writeln!(
                out,
                "identical: {count} events{}",
                if from > 0 {
                    format!(" (from event {from})")
                } else {
                    String::new()
                }
            );
            EXIT_PASS
        }
        Ok(Difference::At { index, left, right }) => {
            let _ = writeln!(
                out,
                "first difference at event {index}:\n  {a}: {left}\n  {b}: {right}"
            );
            EXIT_DIFFERENT
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            EXIT_USAGE
        }
    }
}

enum Difference {
    None {
        from: u64,
        count: u64,
    },
    At {
        index: u64,
        left: String,
        right: String,
    },
}

fn first_difference(a: &str, b: &str) -> Result<Difference, String> {
    let mut ra = LogReader::open(a)?;
    let mut rb = LogReader::open(b)?;
    // Both logs from the first event both hold.
    let from = ra.index.max(rb.index);
    let mut x = ra.next()?;
    while let Some((i, _)) = &x
        && *i < from
    {
        x = ra.next()?;
    }
    let mut y = rb.next()?;
    while let Some((i, _)) = &y
        && *i < from
    {
        y = rb.next()?;
    }
    let mut count = 0u64;
    loop {
        match (x, y) {
            (None, None) => return Ok(Difference::None { from, count }),
            (Some((_, l)), Some((_, r))) if l == r => count += 1,
            (left, right) => {
                let index = left.as_ref().or(right.as_ref()).map_or(from, |(i, _)| *i);
                let end = || "<end of log>".to_string();
                return Ok(Difference::At {
                    index,
                    left: left.map_or_else(end, |(_, l)| l),
                    right: right.map_or_else(end, |(_, r)| r),
                });
            }
        }
        x = ra.next()?;
        y = rb.next()?;
    }
}
