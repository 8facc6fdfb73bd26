//! Framing codecs: frames out of a byte stream that arrives in receives of any size.
//!
//! A [`Codec`] knows where a frame ends; a [`FrameDecoder`] drives it over successive receive
//! buffers and keeps a frame that is split across receives in bounded storage. What is
//! guaranteed:
//!
//! - **In place.** A frame that lies wholly inside the current receive buffer borrows it; it is
//!   never copied. Only the bytes of a frame that a receive leaves unfinished are copied into
//!   the decoder's storage (`N` bytes, fixed when the connection state is created), and a
//!   frame completed from there borrows the storage.
//! - **Bounded.** Every codec has a maximum frame length; the decoder never stores more than
//!   that, and `FrameDecoder::new` checks that `N` can hold it.
//! - **Split-independent.** The frames and the error decoded from a stream do not depend on how
//!   the stream is split into receives (down to one byte per receive).
//! - **Defined failure.** A frame longer than its maximum is [`FrameError::TooLong`], detected
//!   as soon as the bytes seen prove it (without waiting for the rest); malformed input is its
//!   own [`FrameError`]. The decoder is then *closed*: it drops what it stored and answers every
//!   later call with the same error, consuming nothing, until [`FrameDecoder::reset`]. No input
//!   makes it panic.
//!
//! ```text
//!                 receive buffer
//!   ┌──────────────────────────────────────────────┐
//!   │ tail of frame 1 │ frame 2 │ frame 3 │ frame 4…│
//!   └──────────────────────────────────────────────┘
//!          │ (1)          │ (2)      │ (2)     │ (3)
//!          ▼              ▼          ▼         ▼
//!   storage: head+tail  borrowed   borrowed   storage: head of frame 4
//!   of frame 1                                 (completed by the next receive)
//! ```
//!
//! 1. A frame begun in an earlier receive is completed in storage, copying exactly the bytes
//!    it still needs.
//! 2. Whole frames borrow the receive buffer.
//! 3. An unfinished frame at the end is copied into storage.

mod decoder;
mod encode;
mod header_body;
mod length_prefixed;
mod lines;

pub use decoder::{Decoded, FrameDecoder, Frames};
pub use encode::{EncodeError, LineEnding};
pub use header_body::{Body, BodyLenFn, HeaderBody, HeaderFrame, encode_header_body};
pub use length_prefixed::{LENGTH_PREFIX_SIZE, LengthPrefixed, encode_length_prefixed};
pub use lines::{Lines, encode_line};

use core::fmt;

/// Where a frame ends: the framing rule of one protocol.
///
/// A codec is driven by a [`FrameDecoder`]; applications normally only construct one. Each
/// scan looks at the bytes of *one* frame, from its first byte on:
///
/// 1. [`scan`](Codec::scan) is called with the bytes of the frame received so far. `seen` bytes
///    of them were already scanned by an earlier call that answered [`Scan::Partial`] (0 for
///    a new frame), so a scan can resume where it stopped. The slice may run past the end of
///    the frame.
/// 2. It answers [`Scan::Complete`] with the frame's length in bytes (at least 1, at most
///    `bytes.len()` and more than `seen`), or [`Scan::Partial`] with what it needs next, or an
///    error. A codec answers `Partial` only while `bytes.len()` is below
///    [`frame_len_max`](Codec::frame_len_max), and reports an error as soon as the bytes prove
///    the frame too long or malformed.
/// 3. After `Complete`, [`frame`](Codec::frame) is called once with exactly the frame's bytes
///    and builds the frame the application sees; it also readies the codec for the next frame.
///
/// A codec that breaks this contract makes the decoder panic with a message that says so; the
/// codecs of this module never do.
pub trait Codec {
    /// The frame handed to the application, borrowing the frame's bytes.
    type Frame<'a>;

    /// The largest number of bytes one encoded frame may take, terminators included.
    fn frame_len_max(&self) -> usize;

    /// Scans the bytes of the current frame received so far (see the trait docs).
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLong`] when the bytes prove the frame longer than the maximum, or a
    /// malformed-input error of the codec.
    fn scan(&mut self, bytes: &[u8], seen: usize) -> Result<Scan, FrameError>;

    /// Builds the frame from exactly its bytes, after `scan` answered `Complete`, and readies the
    /// codec for the next frame.
    fn frame<'a>(&mut self, bytes: &'a [u8]) -> Self::Frame<'a>;

    /// Forgets any partly scanned frame (the decoder was reset or closed).
    fn reset(&mut self);
}

/// A codec's answer about the frame at the head of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// The frame is complete and `len` bytes long, terminators included.
    Complete {
        /// The frame's length in bytes.
        len: usize,
    },
    /// The frame continues past the bytes scanned.
    Partial {
        /// The bytes to add before scanning again.
        more: More,
    },
}

/// The bytes a partial frame needs before it can be scanned again, so a decoder completing it
/// in storage copies no byte of the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    /// Exactly this many more bytes (or all of them, if fewer arrive); 0 is taken as 1.
    Count(usize),
    /// The bytes up to and including the next occurrence of this byte (a delimiter).
    Through(u8),
}

/// Why a stream could not be split into frames. Once one is returned the decoder is closed (see
/// the [module docs](self)): answer the peer if the protocol has a way to, then close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame (a line, a payload, a header or a body) is longer than `limit` bytes, the
    /// maximum configured for it.
    TooLong {
        /// The configured maximum the frame exceeds, in bytes.
        limit: usize,
    },
    /// The header function of a [`HeaderBody`] codec rejected a header line.
    BadHeader {
        /// The reason the header function gave.
        reason: &'static str,
    },
    /// A [`HeaderBody`] body is not followed by the configured trailer.
    BadTrailer,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { limit } => write!(
                f,
                "frame longer than its maximum of {limit} bytes (the peer must send shorter \
                 frames, or the codec needs a larger maximum and storage)"
            ),
            FrameError::BadHeader { reason } => write!(f, "malformed header line: {reason}"),
            FrameError::BadTrailer => f.write_str(
                "the body is not followed by the trailer the codec expects (the peer's body \
                 length does not match its header)",
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// Finds the line terminator of a line that starts at `bytes[0]`: the index of the LF, looking
/// only at the first `line_len_max + 2` bytes and resuming at `seen`.
///
/// Answers `Ok(Some((content_len, len)))` for a complete line (`content_len` without the LF or
/// CRLF, `len` with it), `Ok(None)` while the line may still fit, and `TooLong` as soon as the
/// bytes prove the line longer than `line_len_max`. A CR not directly before the LF is part of
/// the line.
#[inline]
pub(crate) fn scan_line(
    bytes: &[u8],
    seen: usize,
    line_len_max: usize,
) -> Result<Option<(usize, usize)>, FrameError> {
    let too_long = FrameError::TooLong {
        limit: line_len_max,
    };
    let window_len = bytes.len().min(line_len_max.saturating_add(2));
    let window = &bytes[..window_len];
    let from = seen.min(window_len);
    if let Some(offset) = window[from..].iter().position(|&b| b == b'\n') {
        let lf_index = from + offset;
        let content_len = if lf_index > 0 && window[lf_index - 1] == b'\r' {
            lf_index - 1
        } else {
            lf_index
        };
        if content_len > line_len_max {
            return Err(too_long);
        }
        return Ok(Some((content_len, lf_index + 1)));
    }
    // No LF yet: the line fits only while the bytes after `line_len_max` can still be "\r\n".
    match window.get(line_len_max..) {
        None | Some([]) | Some([b'\r']) => Ok(None),
        Some(_) => Err(too_long),
    }
}
