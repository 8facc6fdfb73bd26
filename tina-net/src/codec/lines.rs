//! Lines of at most a maximum length, ended by LF or CRLF.

use super::encode::{check_line, write_parts};
use super::{Codec, EncodeError, FrameError, LineEnding, More, Scan, scan_line};

/// Lines ended by `\n` or `\r\n`; the frame is the line without its terminator, and an empty
/// line is a frame. A CR that is not directly before the LF is part of the line.
///
/// A line of more than `line_len_max` bytes (terminator excluded) is
/// [`FrameError::TooLong`]` { limit: line_len_max }`, reported as soon as `line_len_max + 2`
/// bytes without an LF (or `line_len_max + 1` not ending in CR) have arrived.
/// [`frame_len_max`](Codec::frame_len_max) is `line_len_max + 2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lines {
    line_len_max: usize,
}

impl Lines {
    /// Lines of at most `line_len_max` bytes, terminator excluded.
    pub const fn new(line_len_max: usize) -> Lines {
        Lines { line_len_max }
    }

    /// The longest line accepted, in bytes, terminator excluded.
    pub const fn line_len_max(&self) -> usize {
        self.line_len_max
    }
}

impl Codec for Lines {
    type Frame<'a> = &'a [u8];

    fn frame_len_max(&self) -> usize {
        self.line_len_max.saturating_add(2)
    }

    #[inline]
    fn scan(&mut self, bytes: &[u8], seen: usize) -> Result<Scan, FrameError> {
        Ok(match scan_line(bytes, seen, self.line_len_max)? {
            Some((_, len)) => Scan::Complete { len },
            None => Scan::Partial {
                more: More::Through(b'\n'),
            },
        })
    }

    fn frame<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    fn reset(&mut self) {}
}

/// Writes `line` and `ending` at the start of `out`; answers the bytes written.
///
/// # Errors
///
/// [`EncodeError::LineBreak`] if `line` contains an LF, or ends in CR with
/// [`LineEnding::Lf`] (it would decode without that CR); [`EncodeError::BufferTooSmall`] if
/// `out` cannot hold the line and its terminator.
pub fn encode_line(line: &[u8], ending: LineEnding, out: &mut [u8]) -> Result<usize, EncodeError> {
    check_line(line, ending)?;
    write_parts(out, &[line, ending.bytes()])
}
