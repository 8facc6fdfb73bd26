//! `FrameDecoder` itself: storage sizing, the consumed count, dropping a cursor early.

use tina_net::codec::{
    Codec, Decoded, FrameDecoder, FrameError, HeaderBody, LengthPrefixed, Lines,
};

use crate::common::memcached_body_len;

#[test]
#[should_panic(expected = "cannot hold the codec's largest frame")]
fn storage_smaller_than_the_largest_frame_panics_at_construction() {
    let _ = FrameDecoder::<Lines, 9>::new(Lines::new(8));
}

#[test]
fn frame_len_max_counts_terminators_and_prefixes() {
    assert_eq!(Lines::new(8).frame_len_max(), 10);
    assert_eq!(LengthPrefixed::new(8).frame_len_max(), 12);
    let codec: HeaderBody = HeaderBody::new(16, 8, b"\r\n", memcached_body_len);
    assert_eq!(codec.frame_len_max(), 28);
    assert_eq!(Lines::new(usize::MAX).frame_len_max(), usize::MAX);
}

#[test]
fn decode_reports_the_bytes_each_frame_took() {
    let mut decoder = FrameDecoder::<Lines, 10>::new(Lines::new(8));
    assert_eq!(decoder.decode(b"ab"), Ok(Decoded::Incomplete));
    let input = b"c\r\nd\nef";
    assert_eq!(
        decoder.decode(input),
        Ok(Decoded::Frame {
            frame: &b"abc"[..],
            consumed: 3
        })
    );
    assert_eq!(
        decoder.decode(&input[3..]),
        Ok(Decoded::Frame {
            frame: &b"d"[..],
            consumed: 2
        })
    );
    assert_eq!(decoder.decode(&input[5..]), Ok(Decoded::Incomplete));
    assert_eq!(decoder.buffered_len(), 2);
}

#[test]
fn cursor_dropped_early_leaves_the_rest_undecoded() {
    let mut decoder = FrameDecoder::<Lines, 10>::new(Lines::new(8));
    let input = b"one\ntwo\nthree\n";
    let mut frames = decoder.frames(input);
    assert_eq!(frames.next_frame(), Ok(Some(&b"one"[..])));
    assert_eq!(frames.consumed(), 4);
    assert_eq!(frames.remaining(), b"two\nthree\n");
    // Nothing of the rest was stored; feeding it later decodes it.
    assert_eq!(decoder.buffered_len(), 0);
    let mut frames = decoder.frames(&input[4..]);
    assert_eq!(frames.next_frame(), Ok(Some(&b"two"[..])));
    assert_eq!(frames.next_frame(), Ok(Some(&b"three"[..])));
    assert_eq!(frames.next_frame(), Ok(None));
}

#[test]
fn length_prefix_split_completes_with_exactly_the_missing_bytes() {
    let mut decoder = FrameDecoder::<LengthPrefixed, 12>::new(LengthPrefixed::new(8));
    assert_eq!(decoder.decode(&[0, 0]), Ok(Decoded::Incomplete));
    let input = [0, 3, b'a', b'b', b'c', 0, 0, 0, 0];
    assert_eq!(
        decoder.decode(&input),
        Ok(Decoded::Frame {
            frame: &b"abc"[..],
            consumed: 5
        })
    );
    assert_eq!(
        decoder.decode(&input[5..]),
        Ok(Decoded::Frame {
            frame: &b""[..],
            consumed: 4
        })
    );
}

#[test]
fn error_is_kept_and_displayed_with_its_limit() {
    let mut decoder = FrameDecoder::<Lines, 4>::new(Lines::new(2));
    let error = decoder.decode(b"abc\n").unwrap_err();
    assert_eq!(error, FrameError::TooLong { limit: 2 });
    assert_eq!(decoder.error(), Some(error));
    let text = format!("{error}");
    assert!(text.contains("maximum of 2 bytes"), "{text}");
}

/// A codec that claims a frame of zero bytes, which would stall a decoding loop.
struct ZeroLenCodec;

impl Codec for ZeroLenCodec {
    type Frame<'a> = &'a [u8];

    fn frame_len_max(&self) -> usize {
        4
    }

    fn scan(&mut self, _bytes: &[u8], _seen: usize) -> Result<tina_net::codec::Scan, FrameError> {
        Ok(tina_net::codec::Scan::Complete { len: 0 })
    }

    fn frame<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        bytes
    }

    fn reset(&mut self) {}
}

#[test]
#[should_panic(expected = "Codec::scan answered Complete { len: 0 }")]
fn codec_breaking_the_scan_contract_panics_with_a_message() {
    let mut decoder = FrameDecoder::<ZeroLenCodec, 4>::new(ZeroLenCodec);
    let _ = decoder.decode(b"ab");
}
