//! Frames prefixed by their length as a big-endian `u32`.

use super::encode::write_parts;
use super::{Codec, EncodeError, FrameError, More, Scan};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_SIZE: usize = 4;

/// A big-endian `u32` payload length, then the payload; the frame is the payload, and a
/// zero-length payload is a frame.
///
/// A length above `payload_len_max` is [`FrameError::TooLong`]` { limit: payload_len_max }`,
/// reported as soon as the prefix has arrived (none of the payload is stored).
/// [`frame_len_max`](Codec::frame_len_max) is `payload_len_max + 4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthPrefixed {
    payload_len_max: usize,
}

impl LengthPrefixed {
    /// Payloads of at most `payload_len_max` bytes.
    pub const fn new(payload_len_max: usize) -> LengthPrefixed {
        LengthPrefixed { payload_len_max }
    }

    /// The longest payload accepted, in bytes.
    pub const fn payload_len_max(&self) -> usize {
        self.payload_len_max
    }
}

impl Codec for LengthPrefixed {
    type Frame<'a> = &'a [u8];

    fn frame_len_max(&self) -> usize {
        self.payload_len_max.saturating_add(LENGTH_PREFIX_SIZE)
    }

    #[inline]
    fn scan(&mut self, bytes: &[u8], _seen: usize) -> Result<Scan, FrameError> {
        let Some((prefix, _)) = bytes.split_first_chunk::<LENGTH_PREFIX_SIZE>() else {
            return Ok(Scan::Partial {
                more: More::Count(LENGTH_PREFIX_SIZE - bytes.len()),
            });
        };
        let too_long = FrameError::TooLong {
            limit: self.payload_len_max,
        };
        let payload_len = usize::try_from(u32::from_be_bytes(*prefix)).map_err(|_| too_long)?;
        if payload_len > self.payload_len_max {
            return Err(too_long);
        }
        let len = payload_len
            .checked_add(LENGTH_PREFIX_SIZE)
            .ok_or(too_long)?;
        Ok(match len.checked_sub(bytes.len()) {
            Some(missing) if missing > 0 => Scan::Partial {
                more: More::Count(missing),
            },
            _ => Scan::Complete { len },
        })
    }

    fn frame<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        bytes.get(LENGTH_PREFIX_SIZE..).unwrap_or_default()
    }

    fn reset(&mut self) {}
}

/// Writes the length prefix and `payload` at the start of `out`; answers the bytes written.
///
/// # Errors
///
/// [`EncodeError::TooLong`] if `payload` is longer than `u32::MAX` bytes;
/// [`EncodeError::BufferTooSmall`] if `out` cannot hold the prefix and the payload.
pub fn encode_length_prefixed(payload: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    let too_long = EncodeError::TooLong {
        limit: usize::try_from(u32::MAX).unwrap_or(usize::MAX),
    };
    let prefix = u32::try_from(payload.len()).map_err(|_| too_long)?;
    write_parts(out, &[&prefix.to_be_bytes(), payload])
}
