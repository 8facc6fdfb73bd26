//! Zero-copy, checked on random streams cut at random points: a frame that lies wholly inside a
//! receive borrows that receive, a frame begun in an earlier receive comes from storage, and
//! storage holds exactly the bytes of the unfinished frame.

use crate::common::{Rng, split_at};
use tina_net::codec::{
    Codec, Decoded, FrameDecoder, LengthPrefixed, LineEnding, Lines, encode_length_prefixed,
    encode_line,
};

const CASES: u64 = 1_000;

fn within(frame: &[u8], buffer: &[u8]) -> bool {
    let range = buffer.as_ptr_range();
    range.start <= frame.as_ptr() && frame.as_ptr_range().end <= range.end
}

/// Decodes `receives` frame by frame and checks where each frame lives; answers the frame
/// count.
fn assert_in_place<C>(codec: C, receives: &[&[u8]], context: &str) -> usize
where
    C: for<'a> Codec<Frame<'a> = &'a [u8]>,
{
    let mut decoder = FrameDecoder::<C, 72>::new(codec);
    let mut frame_count = 0;
    for receive in receives {
        let mut rest: &[u8] = receive;
        loop {
            let buffered_before = decoder.buffered_len();
            match decoder.decode(rest).unwrap() {
                Decoded::Frame { frame, consumed } => {
                    let in_receive = within(frame, receive);
                    assert_eq!(in_receive, buffered_before == 0, "{context}");
                    frame_count += 1;
                    rest = &rest[consumed..];
                }
                Decoded::Incomplete => {
                    assert_eq!(
                        decoder.buffered_len(),
                        buffered_before + rest.len(),
                        "{context}"
                    );
                    break;
                }
            }
        }
    }
    frame_count
}

#[test]
fn random_line_streams_borrow_every_whole_line() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x66_66);
        let mut stream = Vec::new();
        let mut out = [0; 80];
        let line_count = rng.below(20);
        for _ in 0..line_count {
            let line = vec![b'a'; rng.below(20)];
            let ending = rng.pick(&[LineEnding::Lf, LineEnding::CrLf]);
            let len = encode_line(&line, ending, &mut out).unwrap();
            stream.extend_from_slice(&out[..len]);
        }
        let cuts = rng.cuts(stream.len());
        let context = format!("seed {seed}, stream {stream:?}, cuts {cuts:?}");
        let decoded = assert_in_place(Lines::new(20), &split_at(&stream, &cuts), &context);
        assert_eq!(decoded, line_count, "{context}");
    }
}

#[test]
fn random_length_prefixed_streams_borrow_every_whole_frame() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x77_77);
        let mut stream = Vec::new();
        let mut out = [0; 80];
        let frame_count = rng.below(20);
        for _ in 0..frame_count {
            let payload = vec![b'p'; rng.below(20)];
            let len = encode_length_prefixed(&payload, &mut out).unwrap();
            stream.extend_from_slice(&out[..len]);
        }
        let cuts = rng.cuts(stream.len());
        let context = format!("seed {seed}, stream {stream:?}, cuts {cuts:?}");
        let codec = LengthPrefixed::new(20);
        let decoded = assert_in_place(codec, &split_at(&stream, &cuts), &context);
        assert_eq!(decoded, frame_count, "{context}");
    }
}
