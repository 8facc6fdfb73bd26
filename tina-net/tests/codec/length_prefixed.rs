//! `LengthPrefixed`: every split point, zero-length frames, limits, bytes after an error.

use crate::common::{decode_receives, every_split, own_bytes};
use tina_net::codec::{FrameDecoder, FrameError, LengthPrefixed, encode_length_prefixed};

const PAYLOAD_LEN_MAX: usize = 8;
type PrefixDecoder = FrameDecoder<LengthPrefixed, { PAYLOAD_LEN_MAX + 4 }>;

const TOO_LONG: FrameError = FrameError::TooLong {
    limit: PAYLOAD_LEN_MAX,
};

fn decoder() -> PrefixDecoder {
    PrefixDecoder::new(LengthPrefixed::new(PAYLOAD_LEN_MAX))
}

/// The encoded frames of `payloads`, one after the other.
fn stream(payloads: &[&[u8]]) -> Vec<u8> {
    let mut stream = Vec::new();
    for payload in payloads {
        let mut frame = [0; 64];
        let len = encode_length_prefixed(payload, &mut frame).unwrap();
        stream.extend_from_slice(&frame[..len]);
    }
    stream
}

fn assert_every_split(stream: &[u8], expected: &[&[u8]], error: Option<FrameError>) {
    let expected: Vec<Vec<u8>> = expected.iter().map(|payload| payload.to_vec()).collect();
    for receives in every_split(stream) {
        let outcome = decode_receives(&mut decoder(), &receives, own_bytes);
        assert_eq!(outcome, (expected.clone(), error), "receives {receives:?}");
    }
}

#[test]
fn one_frame_every_split_decodes_the_payload() {
    assert_every_split(&stream(&[b"abc"]), &[b"abc"], None);
}

#[test]
fn two_frames_every_split_decode_in_order() {
    assert_every_split(
        &stream(&[b"\n\0", b"12345678"]),
        &[b"\n\0", b"12345678"],
        None,
    );
}

#[test]
fn zero_length_frames_every_split_are_frames() {
    assert_every_split(
        &stream(&[b"", b"", b"x", b""]),
        &[b"", b"", b"x", b""],
        None,
    );
}

#[test]
fn payload_of_max_plus_one_is_too_long_once_the_prefix_arrives() {
    // Only the prefix: the error does not wait for (or store) the payload.
    assert_every_split(&[0, 0, 0, 9], &[], Some(TOO_LONG));
    let mut with_earlier = stream(&[b"ok"]);
    with_earlier.extend_from_slice(&stream(&[b"123456789", b"next"]));
    assert_every_split(&with_earlier, &[b"ok"], Some(TOO_LONG));
    assert_every_split(&[0xFF; 12], &[], Some(TOO_LONG));
}

#[test]
fn bytes_after_an_error_get_the_same_error_until_reset() {
    let mut decoder = decoder();
    assert_eq!(decoder.decode(&[0, 0, 1, 0]).err(), Some(TOO_LONG));
    assert_eq!(decoder.decode(&stream(&[b"ok"])).err(), Some(TOO_LONG));
    assert_eq!(decoder.buffered_len(), 0);
    decoder.reset();
    let (frames, error) = decode_receives(&mut decoder, &[&stream(&[b"ok"])], own_bytes);
    assert_eq!((frames, error), (vec![b"ok".to_vec()], None));
}

#[test]
fn whole_frames_borrow_the_receive() {
    let mut decoder = decoder();
    let receive = stream(&[b"abc", b"de"]);
    let mut frames = decoder.frames(&receive);
    let abc = frames.next_frame().unwrap().unwrap();
    assert_eq!(abc.as_ptr(), receive[4..].as_ptr());
    let de = frames.next_frame().unwrap().unwrap();
    assert_eq!(de.as_ptr(), receive[11..].as_ptr());
}
