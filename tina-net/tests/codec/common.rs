//! Shared by the codec tests: feeding receives to a decoder, the owned forms of frames, a
//! header function in the style of memcached, and a seeded random generator.

use tina_net::codec::{Body, Codec, FrameDecoder, FrameError, HeaderFrame};

/// The frames decoded from a stream (owned) and the error that closed the decoder, if any.
pub(crate) type Outcome<T> = (Vec<T>, Option<FrameError>);

/// Feeds `receives` to `decoder` one after the other, as a connection would, converting each
/// frame with `own`. Checks on the way that a receive is taken whole, that storage stays within
/// the codec's maximum, and that after an error every later call gives the same error and
/// takes nothing.
pub(crate) fn decode_receives<C: Codec, const N: usize, T>(
    decoder: &mut FrameDecoder<C, N>,
    receives: &[&[u8]],
    own: impl for<'a> Fn(C::Frame<'a>) -> T,
) -> Outcome<T> {
    let mut frames = Vec::new();
    let mut error = None;
    for receive in receives {
        if let Some(error) = error {
            assert_eq!(decoder.decode(receive).err(), Some(error));
            continue;
        }
        let mut cursor = decoder.frames(receive);
        loop {
            // Owned at once: the frame's borrow of the cursor ends here.
            let step = cursor.next_frame().map(|frame| frame.map(&own));
            match step {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {
                    assert_eq!(cursor.consumed(), receive.len());
                    break;
                }
                Err(found) => {
                    error = Some(found);
                    let rest = cursor.remaining();
                    assert_eq!(cursor.next_frame().err(), Some(found));
                    assert_eq!(decoder.decode(rest).err(), Some(found));
                    break;
                }
            }
        }
        assert!(decoder.buffered_len() <= decoder.codec().frame_len_max());
        assert_eq!(decoder.error(), error);
    }
    (frames, error)
}

/// Splits `stream` at `cuts` (sorted offsets) into receives.
pub(crate) fn split_at<'s>(stream: &'s [u8], cuts: &[usize]) -> Vec<&'s [u8]> {
    let mut receives = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        receives.push(&stream[start..cut]);
        start = cut;
    }
    receives.push(&stream[start..]);
    receives
}

/// Every way to cut `stream` into two and into three receives (empty receives included).
pub(crate) fn every_split(stream: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut splits = Vec::new();
    for first in 0..=stream.len() {
        splits.push(split_at(stream, &[first]));
        for second in first..=stream.len() {
            splits.push(split_at(stream, &[first, second]));
        }
    }
    splits
}

pub(crate) fn own_bytes(frame: &[u8]) -> Vec<u8> {
    frame.to_vec()
}

/// A header/body frame, owned.
pub(crate) type OwnedHeaderFrame = (Vec<u8>, Option<Vec<u8>>);

pub(crate) fn own_header_frame(frame: HeaderFrame<'_>) -> OwnedHeaderFrame {
    (frame.header.to_vec(), frame.body.map(<[u8]>::to_vec))
}

/// `SET <key> <n>` announces an `n`-byte body, `GET <key>` none; anything else is rejected.
pub(crate) fn memcached_body_len(header: &[u8]) -> Result<Body, &'static str> {
    if header.starts_with(b"GET ") {
        return Ok(Body::Absent);
    }
    let Some(rest) = header.strip_prefix(b"SET ") else {
        return Err("unknown command");
    };
    let count = rest.rsplit(|&b| b == b' ').next().unwrap_or_default();
    if count.is_empty() || !count.iter().all(u8::is_ascii_digit) || count.len() > 9 {
        return Err("bad length");
    }
    let n = count
        .iter()
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
    Ok(Body::Len(n))
}

/// xorshift64*: a small seeded generator, so failures replay from the printed seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// Uniform in `low..=high`.
    pub(crate) fn range(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    pub(crate) fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Cuts for `len` bytes in one of several styles: one receive, one byte per receive, small
    /// receives, or a few cuts anywhere.
    pub(crate) fn cuts(&mut self, len: usize) -> Vec<usize> {
        let mut cuts = Vec::new();
        match self.below(4) {
            0 => {}
            1 => cuts.extend(1..len),
            2 => {
                let mut at = 0;
                while at < len {
                    at += self.range(1, 7);
                    cuts.push(at.min(len));
                }
            }
            _ => {
                for _ in 0..self.range(1, 4) {
                    cuts.push(self.range(0, len));
                }
                cuts.sort_unstable();
            }
        }
        cuts
    }
}
