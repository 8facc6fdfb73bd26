//! The frame decoder a connection keeps in its state: one codec, its bounded storage for a frame
//! split across receives, and whether it is closed by an error.

use super::{Codec, FrameError, More, Scan};

/// Decodes frames from successive receive buffers with codec `C`, keeping a frame split across
/// receives in `N` bytes of its own storage (at least `C`'s maximum frame length).
///
/// Keep one per connection, in the connection's state. Hand each receive buffer to
/// [`frames`](FrameDecoder::frames) (or [`decode`](FrameDecoder::decode)) once, before it is
/// freed; see the [module docs](super) for what is copied and when.
///
/// ```text
///            ┌─────────────── (2) frame ───────────────┐
///            ▼                                         │
///   ┌──────────────┐ (1) unfinished frame ┌──────────────┐
///   │    empty     │ ───────────────────► │   buffered   │ ──(3)── frame completed in storage
///   └──────────────┘                      └──────────────┘
///          │ (4) error                           │ (4) error
///          ▼                                     ▼
///   ┌────────────────────────────────────────────────────┐
///   │ closed: storage dropped, every call -> same error   │ ──(5) reset──► empty
///   └────────────────────────────────────────────────────┘
/// ```
///
/// 1. A receive ends inside a frame: its bytes are copied into storage.
/// 2. A whole frame in the receive buffer is returned borrowing the buffer.
/// 3. A later receive supplies the rest; the frame is returned borrowing the storage, which is
///    emptied on the next call.
/// 4. An over-long or malformed frame closes the decoder.
/// 5. [`reset`](FrameDecoder::reset) makes it usable again (for a new connection).
///
/// What a line-protocol connection does with one receive: answer every line, or answer an
/// over-long line and close.
///
/// ```
/// use tina_net::codec::{FrameDecoder, FrameError, LineEnding, Lines, encode_line};
///
/// /// Echoes each line into `out`; answers the bytes written and whether to close.
/// fn on_receive(decoder: &mut FrameDecoder<Lines, 34>, input: &[u8], out: &mut [u8]) -> (usize, bool) {
///     let mut written = 0;
///     let mut frames = decoder.frames(input);
///     loop {
///         let (reply, close): (&[u8], bool) = match frames.next_frame() {
///             Ok(Some(line)) => (line, false),
///             Ok(None) => return (written, false),
///             Err(FrameError::TooLong { .. }) => (b"ERROR line too long", true),
///             Err(_) => (b"ERROR", true),
///         };
///         match encode_line(reply, LineEnding::CrLf, &mut out[written..]) {
///             Ok(len) => written += len,
///             Err(_) => return (written, true), // the reply buffer is full
///         }
///         if close {
///             return (written, true);
///         }
///     }
/// }
///
/// let mut decoder = FrameDecoder::new(Lines::new(32));
/// let mut out = [0; 128];
/// let (len, close) = on_receive(&mut decoder, b"hi\r\nthe", &mut out);
/// assert_eq!((&out[..len], close), (&b"hi\r\n"[..], false));
/// let (len, close) = on_receive(&mut decoder, b"re\n", &mut out);
/// assert_eq!((&out[..len], close), (&b"there\r\n"[..], false));
/// let (len, close) = on_receive(&mut decoder, &[b'x'; 40], &mut out);
/// assert_eq!((&out[..len], close), (&b"ERROR line too long\r\n"[..], true));
/// ```
pub struct FrameDecoder<C, const N: usize> {
    codec: C,
    storage: [u8; N],
    buffered_len: usize,
    /// What the buffered partial frame needs next.
    more: More,
    /// The buffered frame was handed out; it is dropped at the next call.
    delivered: bool,
    error: Option<FrameError>,
}

/// What one [`FrameDecoder::decode`] call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<F> {
    /// A frame, complete after taking `consumed` bytes of the input.
    Frame {
        /// The frame, borrowing the input or the decoder's storage.
        frame: F,
        /// How many input bytes this call took (the next frame starts after them).
        consumed: usize,
    },
    /// The input ends inside a frame; all of it was taken into storage.
    Incomplete,
}

/// Where [`FrameDecoder::locate`] found the next frame, before any borrow is handed out.
enum Located {
    /// The first `len` input bytes are the frame.
    InInput { len: usize },
    /// The storage holds the frame, after taking `consumed` input bytes.
    Buffered { consumed: usize },
    /// The input was taken into storage, the frame is unfinished.
    Incomplete,
}

impl<C: Codec, const N: usize> FrameDecoder<C, N> {
    /// A decoder for `codec`, with nothing buffered.
    ///
    /// # Panics
    ///
    /// If `N` is smaller than `codec.frame_len_max()`: the storage could not hold a frame the
    /// codec accepts. Size `N` from the codec's limits (each codec documents its
    /// `frame_len_max`).
    pub fn new(codec: C) -> FrameDecoder<C, N> {
        let frame_len_max = codec.frame_len_max();
        assert!(
            frame_len_max <= N,
            "FrameDecoder storage of {N} bytes cannot hold the codec's largest frame of \
             {frame_len_max} bytes; raise N or lower the codec's maximum"
        );
        FrameDecoder {
            codec,
            storage: [0; N],
            buffered_len: 0,
            more: More::Count(1),
            delivered: false,
            error: None,
        }
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Bytes of an unfinished frame held in storage (at most the codec's maximum frame length).
    /// Non-zero when the peer closes means it closed in the middle of a frame.
    pub fn buffered_len(&self) -> usize {
        if self.delivered { 0 } else { self.buffered_len }
    }

    /// The error that closed the decoder, if one did.
    pub fn error(&self) -> Option<FrameError> {
        self.error
    }

    /// Drops any buffered bytes and a closing error: the decoder is as new (for a new
    /// connection).
    pub fn reset(&mut self) {
        self.codec.reset();
        self.buffered_len = 0;
        self.more = More::Count(1);
        self.delivered = false;
        self.error = None;
    }

    /// A cursor over the frames of one receive buffer. Call
    /// [`next_frame`](Frames::next_frame) until it answers `Ok(None)`: then every byte of
    /// `input` was taken, the last unfinished frame (if any) into storage.
    #[must_use = "the frames are decoded by calling `next_frame` until it answers `Ok(None)`"]
    pub fn frames<'d, 'i>(&'d mut self, input: &'i [u8]) -> Frames<'d, 'i, C, N> {
        Frames {
            decoder: self,
            input,
            consumed: 0,
        }
    }

    /// The next frame, starting at `input[0]` (or at the frame buffered by earlier calls).
    ///
    /// `Decoded::Frame { consumed, .. }` took the first `consumed` input bytes; call again with
    /// the rest. `Decoded::Incomplete` took all of `input` into storage.
    ///
    /// # Errors
    ///
    /// The frame is too long or malformed; the decoder is closed and answers every later call
    /// with the same error, taking no bytes.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<C::Frame<'a>>, FrameError> {
        match self.locate(input)? {
            Located::Incomplete => Ok(Decoded::Incomplete),
            Located::InInput { len } => Ok(Decoded::Frame {
                frame: self.codec.frame(&input[..len]),
                consumed: len,
            }),
            Located::Buffered { consumed } => {
                self.delivered = true;
                Ok(Decoded::Frame {
                    frame: self.codec.frame(&self.storage[..self.buffered_len]),
                    consumed,
                })
            }
        }
    }

    /// Finds the next frame and records a closing error.
    fn locate(&mut self, input: &[u8]) -> Result<Located, FrameError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.delivered {
            self.delivered = false;
            self.buffered_len = 0;
        }
        let located = if self.buffered_len == 0 {
            self.locate_in_input(input)
        } else {
            self.locate_continued(input)
        };
        if let Err(error) = located {
            self.error = Some(error);
            self.buffered_len = 0;
            self.codec.reset();
        }
        located
    }

    /// Nothing buffered: the frame starts at `input[0]`.
    fn locate_in_input(&mut self, input: &[u8]) -> Result<Located, FrameError> {
        match self.codec.scan(input, 0)? {
            Scan::Complete { len } => {
                assert!(
                    len > 0 && len <= input.len(),
                    "Codec::scan answered Complete {{ len: {len} }} for {} bytes",
                    input.len()
                );
                Ok(Located::InInput { len })
            }
            Scan::Partial { more } => {
                let Some(target) = self.storage.get_mut(..input.len()) else {
                    return Err(self.storage_full());
                };
                target.copy_from_slice(input);
                self.buffered_len = input.len();
                self.more = more;
                Ok(Located::Incomplete)
            }
        }
    }

    /// A frame is buffered: copy what it needs from `input` until it completes or `input` ends.
    fn locate_continued(&mut self, input: &[u8]) -> Result<Located, FrameError> {
        let mut taken = 0;
        while taken < input.len() {
            let rest = &input[taken..];
            let wanted = match self.more {
                More::Count(count) => count.max(1),
                More::Through(delimiter) => rest
                    .iter()
                    .position(|&b| b == delimiter)
                    .map_or(rest.len(), |index| index + 1),
            };
            let room = N - self.buffered_len;
            if room == 0 {
                return Err(self.storage_full());
            }
            let copy_len = wanted.min(rest.len()).min(room);
            let seen = self.buffered_len;
            self.storage[seen..seen + copy_len].copy_from_slice(&rest[..copy_len]);
            self.buffered_len += copy_len;
            taken += copy_len;
            match self.codec.scan(&self.storage[..self.buffered_len], seen)? {
                Scan::Complete { len } => {
                    assert!(
                        len > seen && len <= self.buffered_len,
                        "Codec::scan answered Complete {{ len: {len} }} for a frame of {} \
                         bytes of which {seen} were scanned before",
                        self.buffered_len
                    );
                    // Bytes copied past the frame's end go back to the input.
                    taken -= self.buffered_len - len;
                    self.buffered_len = len;
                    return Ok(Located::Buffered { consumed: taken });
                }
                Scan::Partial { more } => self.more = more,
            }
        }
        Ok(Located::Incomplete)
    }

    /// The storage cannot take more of a frame the codec still calls partial.
    fn storage_full(&self) -> FrameError {
        FrameError::TooLong {
            limit: self.codec.frame_len_max().min(N),
        }
    }
}

/// The frames of one receive buffer, from [`FrameDecoder::frames`].
pub struct Frames<'d, 'i, C, const N: usize> {
    decoder: &'d mut FrameDecoder<C, N>,
    input: &'i [u8],
    consumed: usize,
}

impl<'i, C: Codec, const N: usize> Frames<'_, 'i, C, N> {
    /// The next frame of the buffer, or `None` once every byte was taken (an unfinished last
    /// frame is then in storage, to be completed by the next receive).
    ///
    /// # Errors
    ///
    /// The frame is too long or malformed; see [`FrameDecoder::decode`].
    pub fn next_frame(&mut self) -> Result<Option<C::Frame<'_>>, FrameError> {
        let rest = &self.input[self.consumed..];
        match self.decoder.decode(rest)? {
            Decoded::Frame { frame, consumed } => {
                self.consumed += consumed;
                Ok(Some(frame))
            }
            Decoded::Incomplete => {
                self.consumed = self.input.len();
                Ok(None)
            }
        }
    }

    /// Input bytes taken so far. If the cursor is dropped before `next_frame` answers `None`,
    /// the bytes after these were not decoded.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// The input bytes not yet taken.
    pub fn remaining(&self) -> &'i [u8] {
        &self.input[self.consumed..]
    }
}
