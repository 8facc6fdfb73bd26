//! A header line, then a body whose length the header gives (memcached-style
//! `SET key 5\r\nhello\r\n`).

use super::encode::{check_line, write_parts};
use super::{Codec, EncodeError, FrameError, LineEnding, More, Scan, scan_line};

/// What a header line announces, as the header function of a [`HeaderBody`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// The frame is the header line alone: no body, no trailer (`GET key\r\n`).
    Absent,
    /// This many body bytes follow the header line, then the codec's trailer
    /// (`SET key 5\r\nhello\r\n`).
    Len(usize),
}

/// One frame of a [`HeaderBody`] codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderFrame<'a> {
    /// The header line, without its LF or CRLF.
    pub header: &'a [u8],
    /// The body, without the trailer; `None` when the header announced [`Body::Absent`].
    pub body: Option<&'a [u8]>,
}

/// The header function's type when it is a plain `fn` (the default, so the codec's type can be
/// named in a connection's state).
pub type BodyLenFn = fn(&[u8]) -> Result<Body, &'static str>;

/// A header line (ended by LF or CRLF, as with [`Lines`](super::Lines)), then as many body
/// bytes as the header function reads from it, then a fixed trailer (such as `\r\n`); the
/// frame is header and body together.
///
/// The header function gets the header line without its terminator, once per frame, when the
/// line's terminator has arrived; it answers the [`Body`] the line announces, or a reason to
/// reject it ([`FrameError::BadHeader`]).
///
/// Limits: a header line of more than `header_len_max` bytes is
/// [`FrameError::TooLong`]` { limit: header_len_max }`, a body of more than `body_len_max`
/// bytes is `TooLong { limit: body_len_max }` (reported when the header is read, before any of
/// the body is stored), and a body not followed by the trailer is [`FrameError::BadTrailer`].
/// [`frame_len_max`](Codec::frame_len_max) is
/// `header_len_max + 2 + body_len_max + trailer.len()`.
#[derive(Clone, Copy, Debug)]
pub struct HeaderBody<F = BodyLenFn> {
    header_len_max: usize,
    body_len_max: usize,
    trailer: &'static [u8],
    body_len_of: F,
    /// The frame being scanned, once its header line was read.
    current: Option<Layout>,
}

/// Where the parts of the current frame lie.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// The header line without its terminator.
    header_len: usize,
    /// Where the body starts (after the header's terminator).
    body_start: usize,
    /// `None` for [`Body::Absent`].
    body_len: Option<usize>,
    /// The whole frame.
    len: usize,
}

impl<F: FnMut(&[u8]) -> Result<Body, &'static str>> HeaderBody<F> {
    /// Header lines of at most `header_len_max` bytes (terminator excluded), bodies of at most
    /// `body_len_max` bytes followed by `trailer`, body lengths read by `body_len_of`.
    pub const fn new(
        header_len_max: usize,
        body_len_max: usize,
        trailer: &'static [u8],
        body_len_of: F,
    ) -> HeaderBody<F> {
        HeaderBody {
            header_len_max,
            body_len_max,
            trailer,
            body_len_of,
            current: None,
        }
    }

    /// Reads the header line ending at `bytes[..len]` (`content_len` without its terminator).
    fn read_header(
        &mut self,
        bytes: &[u8],
        content_len: usize,
        len: usize,
    ) -> Result<Layout, FrameError> {
        let header = &bytes[..content_len];
        let body = (self.body_len_of)(header).map_err(|reason| FrameError::BadHeader { reason })?;
        let (body_len, frame_len) = match body {
            Body::Absent => (None, Some(len)),
            Body::Len(body_len) => {
                if body_len > self.body_len_max {
                    return Err(FrameError::TooLong {
                        limit: self.body_len_max,
                    });
                }
                let frame_len = len
                    .checked_add(body_len)
                    .and_then(|sum| sum.checked_add(self.trailer.len()));
                (Some(body_len), frame_len)
            }
        };
        Ok(Layout {
            header_len: content_len,
            body_start: len,
            body_len,
            len: frame_len.ok_or(FrameError::TooLong {
                limit: self.body_len_max,
            })?,
        })
    }
}

impl<F: FnMut(&[u8]) -> Result<Body, &'static str>> Codec for HeaderBody<F> {
    type Frame<'a> = HeaderFrame<'a>;

    fn frame_len_max(&self) -> usize {
        self.header_len_max
            .saturating_add(2)
            .saturating_add(self.body_len_max)
            .saturating_add(self.trailer.len())
    }

    fn scan(&mut self, bytes: &[u8], seen: usize) -> Result<Scan, FrameError> {
        let layout = match self.current {
            Some(layout) => layout,
            None => match scan_line(bytes, seen, self.header_len_max)? {
                None => {
                    return Ok(Scan::Partial {
                        more: More::Through(b'\n'),
                    });
                }
                Some((content_len, len)) => {
                    let layout = self.read_header(bytes, content_len, len)?;
                    self.current = Some(layout);
                    layout
                }
            },
        };
        if bytes.len() < layout.len {
            return Ok(Scan::Partial {
                more: More::Count(layout.len - bytes.len()),
            });
        }
        if layout.body_len.is_some() && !bytes[..layout.len].ends_with(self.trailer) {
            return Err(FrameError::BadTrailer);
        }
        Ok(Scan::Complete { len: layout.len })
    }

    fn frame<'a>(&mut self, bytes: &'a [u8]) -> HeaderFrame<'a> {
        let Some(layout) = self.current.take() else {
            return HeaderFrame {
                header: bytes,
                body: None,
            };
        };
        HeaderFrame {
            header: &bytes[..layout.header_len],
            body: layout
                .body_len
                .map(|body_len| &bytes[layout.body_start..layout.body_start + body_len]),
        }
    }

    fn reset(&mut self) {
        self.current = None;
    }
}

/// Writes `header`, `ending`, and (when `body` is `Some`) the body and `trailer` at the start
/// of `out`; answers the bytes written. The body's length in the header is the caller's to
/// write.
///
/// # Errors
///
/// [`EncodeError::LineBreak`] if `header` contains an LF or ends in CR with
/// [`LineEnding::Lf`]; [`EncodeError::BufferTooSmall`] if `out` cannot hold the frame.
pub fn encode_header_body(
    header: &[u8],
    ending: LineEnding,
    body: Option<&[u8]>,
    trailer: &[u8],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    check_line(header, ending)?;
    match body {
        None => write_parts(out, &[header, ending.bytes()]),
        Some(body) => write_parts(out, &[header, ending.bytes(), body, trailer]),
    }
}
