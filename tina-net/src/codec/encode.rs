//! What the encoders share: their error and a writer over the caller's buffer.

use core::fmt;

/// Why a frame could not be encoded. Nothing is written past the caller's buffer; on an error
/// the buffer's contents are unspecified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is shorter than the encoded frame's `needed` bytes.
    BufferTooSmall {
        /// The encoded frame's length in bytes.
        needed: usize,
    },
    /// The payload is longer than the `limit` the format can express.
    TooLong {
        /// The largest length the format can express, in bytes.
        limit: usize,
    },
    /// A line or header line contains an LF, or ends in a CR before an LF-only terminator: it
    /// would not decode back to itself.
    LineBreak,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(
                    f,
                    "the output buffer is too small: the frame needs {needed} bytes"
                )
            }
            EncodeError::TooLong { limit } => {
                write!(
                    f,
                    "the payload is longer than the format's {limit}-byte maximum"
                )
            }
            EncodeError::LineBreak => f.write_str(
                "the line contains an LF or ends in a CR, so it would not decode as one line",
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// How an encoder ends a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\n`.
    Lf,
    /// `\r\n`.
    #[default]
    CrLf,
}

impl LineEnding {
    /// The terminator's bytes.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::CrLf => b"\r\n",
        }
    }
}

/// Checks that `line` decodes back to itself once ended with `ending`.
pub(crate) fn check_line(line: &[u8], ending: LineEnding) -> Result<(), EncodeError> {
    let ends_in_cr = line.last() == Some(&b'\r');
    if line.contains(&b'\n') || (ending == LineEnding::Lf && ends_in_cr) {
        return Err(EncodeError::LineBreak);
    }
    Ok(())
}

/// Writes `parts` one after the other at the start of `out`; answers the bytes written.
pub(crate) fn write_parts(out: &mut [u8], parts: &[&[u8]]) -> Result<usize, EncodeError> {
    let needed = parts
        .iter()
        .try_fold(0usize, |sum, part| sum.checked_add(part.len()))
        .ok_or(EncodeError::TooLong { limit: usize::MAX })?;
    if out.len() < needed {
        return Err(EncodeError::BufferTooSmall { needed });
    }
    let mut at = 0;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(needed)
}
