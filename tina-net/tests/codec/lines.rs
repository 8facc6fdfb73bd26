//! `Lines`: every split point, limits, empty lines, CR without LF, bytes after an error.

use crate::common::{decode_receives, every_split, own_bytes, split_at};
use tina_net::codec::{FrameDecoder, FrameError, Lines};

const LINE_LEN_MAX: usize = 8;
type LineDecoder = FrameDecoder<Lines, { LINE_LEN_MAX + 2 }>;

const TOO_LONG: FrameError = FrameError::TooLong {
    limit: LINE_LEN_MAX,
};

fn decoder() -> LineDecoder {
    LineDecoder::new(Lines::new(LINE_LEN_MAX))
}

/// Decodes `stream` cut into two and into three receives at every point and checks each
/// outcome.
fn assert_every_split(stream: &[u8], expected: &[&[u8]], error: Option<FrameError>) {
    let expected: Vec<Vec<u8>> = expected.iter().map(|line| line.to_vec()).collect();
    for receives in every_split(stream) {
        let outcome = decode_receives(&mut decoder(), &receives, own_bytes);
        assert_eq!(outcome, (expected.clone(), error), "receives {receives:?}");
    }
}

fn within(frame: &[u8], buffer: &[u8]) -> bool {
    let range = buffer.as_ptr_range();
    range.start <= frame.as_ptr() && frame.as_ptr_range().end <= range.end
}

#[test]
fn one_line_every_split_decodes_without_terminator() {
    assert_every_split(b"hello\r\n", &[b"hello"], None);
    assert_every_split(b"hello\n", &[b"hello"], None);
}

#[test]
fn two_lines_every_split_decode_in_order() {
    assert_every_split(b"ab\r\ncd\n", &[b"ab", b"cd"], None);
    assert_every_split(b"a\nbcdefgh\r\n", &[b"a", b"bcdefgh"], None);
}

#[test]
fn empty_lines_every_split_are_frames() {
    assert_every_split(b"\n\r\n\n", &[b"", b"", b""], None);
    assert_every_split(b"\r\nx\n", &[b"", b"x"], None);
}

#[test]
fn line_of_exactly_max_every_split_decodes() {
    assert_every_split(b"12345678\r\n", &[b"12345678"], None);
    assert_every_split(b"12345678\n1\n", &[b"12345678", b"1"], None);
}

#[test]
fn line_of_max_plus_one_every_split_is_too_long_after_earlier_lines() {
    assert_every_split(b"ok\n123456789\n", &[b"ok"], Some(TOO_LONG));
    assert_every_split(b"ok\r\n123456789\r\nnext\n", &[b"ok"], Some(TOO_LONG));
}

#[test]
fn overlong_line_without_terminator_every_split_fails_before_its_end_arrives() {
    // Ten bytes and no LF already prove the line longer than eight.
    assert_every_split(b"ok\n1234567890", &[b"ok"], Some(TOO_LONG));
    // Nine bytes not ending in CR prove it too.
    assert_every_split(b"123456789", &[], Some(TOO_LONG));
}

#[test]
fn max_bytes_then_cr_waits_for_the_lf() {
    let mut decoder = decoder();
    let (frames, error) = decode_receives(&mut decoder, &[b"12345678\r"], own_bytes);
    assert_eq!((frames.len(), error), (0, None));
    assert_eq!(decoder.buffered_len(), 9);
    let (frames, error) = decode_receives(&mut decoder, &[b"\n"], own_bytes);
    assert_eq!((frames, error), (vec![b"12345678".to_vec()], None));
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn cr_without_lf_every_split_is_part_of_the_line() {
    assert_every_split(b"a\rb\n", &[b"a\rb"], None);
    assert_every_split(b"\r\r\n\rx\r\n", &[b"\r", b"\rx"], None);
    // The CR counts towards the limit.
    assert_every_split(b"1234567\r8\n", &[], Some(TOO_LONG));
    assert_every_split(b"12345678\rx", &[], Some(TOO_LONG));
}

#[test]
fn bytes_after_an_error_get_the_same_error_until_reset() {
    let mut decoder = decoder();
    let (_, error) = decode_receives(&mut decoder, &[b"123456789\n"], own_bytes);
    assert_eq!(error, Some(TOO_LONG));
    for receive in [&b"ok\n"[..], b"", b"\n\n\n"] {
        assert_eq!(decoder.decode(receive).err(), Some(TOO_LONG));
        assert_eq!(decoder.frames(receive).next_frame().err(), Some(TOO_LONG));
        assert_eq!(decoder.buffered_len(), 0);
    }
    decoder.reset();
    assert_eq!(decoder.error(), None);
    let (frames, error) = decode_receives(&mut decoder, &[b"ok\n"], own_bytes);
    assert_eq!((frames, error), (vec![b"ok".to_vec()], None));
}

#[test]
fn error_drops_the_buffered_partial_line() {
    let mut decoder = decoder();
    let _ = decode_receives(&mut decoder, &[b"1234"], own_bytes);
    assert_eq!(decoder.buffered_len(), 4);
    let (_, error) = decode_receives(&mut decoder, &[b"56789x"], own_bytes);
    assert_eq!(error, Some(TOO_LONG));
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn whole_lines_borrow_the_receive_and_only_a_split_line_is_stored() {
    let mut decoder = decoder();
    let first = b"one\ntwo\nthr";
    let mut frames = decoder.frames(first);
    let one = frames.next_frame().unwrap().unwrap();
    assert!(within(one, first));
    let two = frames.next_frame().unwrap().unwrap();
    assert!(within(two, first));
    assert_eq!(frames.next_frame(), Ok(None));
    assert_eq!(decoder.buffered_len(), 3);

    let second = b"ee\nfour\n";
    let mut frames = decoder.frames(second);
    let three = frames.next_frame().unwrap().unwrap();
    assert_eq!(three, b"three");
    assert!(
        !within(three, second),
        "a split line is completed in storage"
    );
    // Completing "three" took only its own bytes: "four" still borrows the receive.
    assert_eq!(frames.consumed(), 3);
    let four = frames.next_frame().unwrap().unwrap();
    assert_eq!(four, b"four");
    assert!(within(four, second));
    assert_eq!(frames.next_frame(), Ok(None));
}

#[test]
fn one_byte_receives_decode_every_line() {
    let stream = b"a\r\n\nbcdefghi\n12345678\r\n";
    let cuts: Vec<usize> = (1..stream.len()).collect();
    let (frames, error) = decode_receives(&mut decoder(), &split_at(stream, &cuts), own_bytes);
    assert_eq!(error, None);
    let expected: [&[u8]; 4] = [b"a", b"", b"bcdefghi", b"12345678"];
    assert_eq!(frames, expected.map(<[u8]>::to_vec));
}

#[test]
fn zero_line_len_max_accepts_only_empty_lines() {
    let mut decoder = FrameDecoder::<Lines, 2>::new(Lines::new(0));
    let (frames, error) = decode_receives(&mut decoder, &[b"\r", b"\n\nx"], own_bytes);
    assert_eq!(frames, vec![Vec::<u8>::new(), Vec::new()]);
    assert_eq!(error, Some(FrameError::TooLong { limit: 0 }));
}
