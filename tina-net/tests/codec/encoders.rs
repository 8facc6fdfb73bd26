//! The encoders: exact output, `BufferTooSmall` instead of a panic, unframeable lines refused.

use tina_net::codec::{
    EncodeError, LineEnding, encode_header_body, encode_length_prefixed, encode_line,
};

#[test]
fn encode_line_appends_the_ending() {
    let mut out = [0; 8];
    assert_eq!(encode_line(b"hi", LineEnding::CrLf, &mut out), Ok(4));
    assert_eq!(&out[..4], b"hi\r\n");
    assert_eq!(encode_line(b"", LineEnding::Lf, &mut out), Ok(1));
    assert_eq!(&out[..1], b"\n");
    // A CR at the end survives a CRLF ending (only the CR before the LF is stripped).
    assert_eq!(encode_line(b"a\r", LineEnding::CrLf, &mut out), Ok(4));
}

#[test]
fn encode_line_into_a_short_buffer_is_buffer_too_small() {
    let mut out = [0; 3];
    assert_eq!(
        encode_line(b"hi", LineEnding::CrLf, &mut out),
        Err(EncodeError::BufferTooSmall { needed: 4 })
    );
    assert_eq!(
        encode_line(b"hello", LineEnding::Lf, &mut []),
        Err(EncodeError::BufferTooSmall { needed: 6 })
    );
}

#[test]
fn encode_line_with_a_line_break_is_refused() {
    let mut out = [0; 8];
    assert_eq!(
        encode_line(b"a\nb", LineEnding::CrLf, &mut out),
        Err(EncodeError::LineBreak)
    );
    assert_eq!(
        encode_line(b"a\r", LineEnding::Lf, &mut out),
        Err(EncodeError::LineBreak)
    );
}

#[test]
fn encode_length_prefixed_writes_a_big_endian_prefix() {
    let mut out = [0; 8];
    assert_eq!(encode_length_prefixed(b"abc", &mut out), Ok(7));
    assert_eq!(&out[..7], &[0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(encode_length_prefixed(b"", &mut out), Ok(4));
    assert_eq!(&out[..4], &[0; 4]);
    assert_eq!(
        encode_length_prefixed(b"abcde", &mut out),
        Err(EncodeError::BufferTooSmall { needed: 9 })
    );
}

#[test]
fn encode_header_body_writes_header_body_and_trailer() {
    let mut out = [0; 32];
    let len = encode_header_body(b"SET k 2", LineEnding::CrLf, Some(b"hi"), b"\r\n", &mut out);
    assert_eq!(len, Ok(13));
    assert_eq!(&out[..13], b"SET k 2\r\nhi\r\n");
    let len = encode_header_body(b"GET k", LineEnding::Lf, None, b"\r\n", &mut out);
    assert_eq!(len, Ok(6));
    assert_eq!(&out[..6], b"GET k\n");
    assert_eq!(
        encode_header_body(
            b"SET k 2",
            LineEnding::CrLf,
            Some(b"hi"),
            b"\r\n",
            &mut out[..12]
        ),
        Err(EncodeError::BufferTooSmall { needed: 13 })
    );
    assert_eq!(
        encode_header_body(b"SET\nk", LineEnding::CrLf, None, b"", &mut out),
        Err(EncodeError::LineBreak)
    );
}
