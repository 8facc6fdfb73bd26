//! `HeaderBody`: every split point, absent and empty bodies, limits, malformed input.

use crate::common::{
    OwnedHeaderFrame, decode_receives, every_split, memcached_body_len, own_header_frame,
};
use tina_net::codec::{FrameDecoder, FrameError, HeaderBody};

const HEADER_LEN_MAX: usize = 16;
const BODY_LEN_MAX: usize = 8;
const FRAME_LEN_MAX: usize = HEADER_LEN_MAX + 2 + BODY_LEN_MAX + 2;
type SetDecoder = FrameDecoder<HeaderBody, FRAME_LEN_MAX>;

fn decoder() -> SetDecoder {
    SetDecoder::new(HeaderBody::new(
        HEADER_LEN_MAX,
        BODY_LEN_MAX,
        b"\r\n",
        memcached_body_len,
    ))
}

fn owned(expected: &[(&[u8], Option<&[u8]>)]) -> Vec<OwnedHeaderFrame> {
    expected
        .iter()
        .map(|(header, body)| (header.to_vec(), body.map(<[u8]>::to_vec)))
        .collect()
}

fn assert_every_split(
    stream: &[u8],
    expected: &[(&[u8], Option<&[u8]>)],
    error: Option<FrameError>,
) {
    for receives in every_split(stream) {
        let outcome = decode_receives(&mut decoder(), &receives, own_header_frame);
        assert_eq!(outcome, (owned(expected), error), "receives {receives:?}");
    }
}

#[test]
fn set_every_split_delivers_header_and_body_together() {
    assert_every_split(
        b"SET k 5\r\nhello\r\n",
        &[(b"SET k 5", Some(b"hello"))],
        None,
    );
    assert_every_split(b"SET k 2\nhi\r\n", &[(b"SET k 2", Some(b"hi"))], None);
}

#[test]
fn two_frames_every_split_decode_in_order() {
    assert_every_split(
        b"GET k\r\nSET k 0\r\n\r\n",
        &[(b"GET k", None), (b"SET k 0", Some(b""))],
        None,
    );
    assert_every_split(
        b"SET a 4\r\n\r\n\r\n\r\nGET b\n",
        &[(b"SET a 4", Some(b"\r\n\r\n")), (b"GET b", None)],
        None,
    );
}

#[test]
fn body_of_exactly_max_every_split_decodes() {
    assert_every_split(
        b"SET k 8\r\n12345678\r\n",
        &[(b"SET k 8", Some(b"12345678"))],
        None,
    );
}

#[test]
fn body_of_max_plus_one_is_too_long_once_the_header_arrives() {
    let too_long = Some(FrameError::TooLong {
        limit: BODY_LEN_MAX,
    });
    assert_every_split(b"GET k\r\nSET k 9\r\n", &[(b"GET k", None)], too_long);
    assert_every_split(b"SET k 999999999\r\n", &[], too_long);
}

#[test]
fn header_longer_than_max_every_split_is_too_long() {
    let too_long = Some(FrameError::TooLong {
        limit: HEADER_LEN_MAX,
    });
    assert_every_split(
        b"SET k 1\r\nx\r\nSET kkkkkkkkkkk 1\r\n",
        &[(b"SET k 1", Some(b"x"))],
        too_long,
    );
    assert_every_split(b"GET kkkkkkkkkkkkkkkkkkk", &[], too_long);
}

#[test]
fn rejected_header_every_split_is_bad_header() {
    let bad = |reason| Some(FrameError::BadHeader { reason });
    assert_every_split(
        b"GET k\nFOO\r\nGET k\n",
        &[(b"GET k", None)],
        bad("unknown command"),
    );
    assert_every_split(b"SET k x\r\nab\r\n", &[], bad("bad length"));
}

#[test]
fn body_without_trailer_every_split_is_bad_trailer() {
    assert_every_split(b"SET k 2\r\nhiXY", &[], Some(FrameError::BadTrailer));
    assert_every_split(b"SET k 1\r\nhi\r\n", &[], Some(FrameError::BadTrailer));
}

#[test]
fn bytes_after_an_error_get_the_same_error_until_reset() {
    let mut decoder = decoder();
    let bad = FrameError::BadHeader {
        reason: "unknown command",
    };
    assert_eq!(decoder.decode(b"SET k 2\r\nhi").map(|_| ()), Ok(()));
    assert_eq!(decoder.decode(b"\r\nNOPE\r\n").map(|_| ()), Ok(()));
    assert_eq!(decoder.decode(b"NOPE\r\n").err(), Some(bad));
    assert_eq!(decoder.decode(b"GET k\r\n").err(), Some(bad));
    decoder.reset();
    let (frames, error) = decode_receives(&mut decoder, &[b"GET k\r\n"], own_header_frame);
    assert_eq!((frames, error), (owned(&[(b"GET k", None)]), None));
}

#[test]
fn empty_trailer_puts_the_next_header_right_after_the_body() {
    let mut decoder: FrameDecoder<HeaderBody, 26> = FrameDecoder::new(HeaderBody::new(
        HEADER_LEN_MAX,
        BODY_LEN_MAX,
        b"",
        memcached_body_len,
    ));
    let stream = b"SET k 2\r\nhiGET k\n";
    for receives in every_split(stream) {
        let outcome = decode_receives(&mut decoder, &receives, own_header_frame);
        let expected = owned(&[(b"SET k 2", Some(b"hi")), (b"GET k", None)]);
        assert_eq!(outcome, (expected, None), "receives {receives:?}");
    }
}

#[test]
fn whole_frame_borrows_the_receive() {
    let mut decoder = decoder();
    let receive = b"SET k 3\r\nabc\r\nGET";
    let mut frames = decoder.frames(receive);
    let frame = frames.next_frame().unwrap().unwrap();
    assert_eq!(frame.header.as_ptr(), receive.as_ptr());
    assert_eq!(frame.body.unwrap().as_ptr(), receive[9..].as_ptr());
    assert_eq!(frames.next_frame(), Ok(None));
    assert_eq!(decoder.buffered_len(), 3);
}
