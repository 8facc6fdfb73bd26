//! Property tests: random frame sequences are encoded, the stream is cut at random points
//! (down to one byte per receive), decoded and compared with the frames encoded; random byte
//! streams are decoded the same way and compared with a plain reference decoder that sees the
//! whole stream at once. Every case prints its seed on failure.

use crate::common::{
    Outcome, OwnedHeaderFrame, Rng, decode_receives, memcached_body_len, own_bytes,
    own_header_frame, split_at,
};
use tina_net::codec::{
    Body, FrameDecoder, FrameError, HeaderBody, LengthPrefixed, LineEnding, Lines,
    encode_header_body, encode_length_prefixed, encode_line,
};

/// Cases per codec and property.
const CASES: u64 = 2_000;
const STORAGE: usize = 72;

/// Decodes `stream` cut at random points with a fresh decoder over `codec`.
fn decode_cut<C: tina_net::codec::Codec, T>(
    rng: &mut Rng,
    codec: C,
    stream: &[u8],
    own: impl for<'a> Fn(C::Frame<'a>) -> T,
) -> Outcome<T> {
    let cuts = rng.cuts(stream.len());
    let mut decoder = FrameDecoder::<C, STORAGE>::new(codec);
    decode_receives(&mut decoder, &split_at(stream, &cuts), own)
}

fn random_bytes(rng: &mut Rng, len: usize, alphabet: &[u8]) -> Vec<u8> {
    (0..len)
        .map(|_| {
            if rng.chance(4) {
                rng.next_u64() as u8
            } else {
                rng.pick(alphabet)
            }
        })
        .collect()
}

fn append(stream: &mut Vec<u8>, encoded: Result<usize, tina_net::codec::EncodeError>, out: &[u8]) {
    stream.extend_from_slice(&out[..encoded.unwrap()]);
}

// ---------------------------------------------------------------------------------------------
// Lines

/// The first line of `rest` by the documented rule, seeing the whole stream at once.
fn reference_line(rest: &[u8], max: usize) -> Result<Option<(usize, usize)>, FrameError> {
    let too_long = FrameError::TooLong { limit: max };
    match rest.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let content = if lf > 0 && rest[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            if content > max {
                Err(too_long)
            } else {
                Ok(Some((content, lf + 1)))
            }
        }
        None if rest.len() > max + 1 || (rest.len() == max + 1 && rest[max] != b'\r') => {
            Err(too_long)
        }
        None => Ok(None),
    }
}

fn reference_lines(stream: &[u8], max: usize) -> Outcome<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        match reference_line(&stream[at..], max) {
            Ok(Some((content, len))) => {
                frames.push(stream[at..at + content].to_vec());
                at += len;
            }
            Ok(None) => return (frames, None),
            Err(error) => return (frames, Some(error)),
        }
    }
}

#[test]
fn lines_encoded_then_cut_at_random_points_decode_to_the_same_lines() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed);
        let max = rng.pick(&[0, 1, 2, 3, 8, 64]);
        let mut stream = Vec::new();
        let mut lines = Vec::new();
        let mut out = [0; 80];
        for _ in 0..rng.below(12) {
            let line_len = rng.range(0, max);
            let line = random_bytes(&mut rng, line_len, b"ab \r");
            let line: Vec<u8> = line.into_iter().filter(|&b| b != b'\n').collect();
            let ending = rng.pick(&[LineEnding::Lf, LineEnding::CrLf]);
            let ending = if line.last() == Some(&b'\r') {
                LineEnding::CrLf
            } else {
                ending
            };
            append(&mut stream, encode_line(&line, ending, &mut out), &out);
            lines.push(line);
        }
        let mut error = None;
        if rng.chance(4) {
            let line = vec![b'x'; rng.range(max + 1, max + 6)];
            append(
                &mut stream,
                encode_line(&line, LineEnding::CrLf, &mut out),
                &out,
            );
            let garbage_len = rng.below(8);
            stream.extend_from_slice(&random_bytes(&mut rng, garbage_len, b"\n"));
            error = Some(FrameError::TooLong { limit: max });
        }
        let outcome = decode_cut(&mut rng, Lines::new(max), &stream, own_bytes);
        assert_eq!(
            outcome,
            (lines, error),
            "seed {seed}, max {max}, stream {stream:?}"
        );
    }
}

#[test]
fn random_streams_cut_at_random_points_decode_as_the_reference_lines() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x11_11);
        let max = rng.pick(&[0, 1, 2, 5, 16, 64]);
        let len = rng.below(160);
        let stream = random_bytes(&mut rng, len, b"a\r\n\n");
        let outcome = decode_cut(&mut rng, Lines::new(max), &stream, own_bytes);
        assert_eq!(
            outcome,
            reference_lines(&stream, max),
            "seed {seed}, max {max}, stream {stream:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Length-prefixed

fn reference_length_prefixed(stream: &[u8], max: usize) -> Outcome<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some(prefix) = stream.get(at..at + 4) {
        let len = u32::from_be_bytes(prefix.try_into().unwrap()) as usize;
        if len > max {
            return (frames, Some(FrameError::TooLong { limit: max }));
        }
        let Some(payload) = stream.get(at + 4..at + 4 + len) else {
            break;
        };
        frames.push(payload.to_vec());
        at += 4 + len;
    }
    (frames, None)
}

#[test]
fn length_prefixed_encoded_then_cut_at_random_points_decode_to_the_same_payloads() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x22_22);
        let max = rng.pick(&[0, 1, 5, 8, 64]);
        let mut stream = Vec::new();
        let mut payloads = Vec::new();
        let mut out = [0; 80];
        for _ in 0..rng.below(12) {
            let payload_len = rng.range(0, max);
            let payload = random_bytes(&mut rng, payload_len, b"\0\n");
            append(
                &mut stream,
                encode_length_prefixed(&payload, &mut out),
                &out,
            );
            payloads.push(payload);
        }
        let mut error = None;
        if rng.chance(4) {
            let len = if rng.chance(2) {
                max as u32 + 1
            } else {
                rng.next_u64() as u32 | 0x100
            };
            stream.extend_from_slice(&len.to_be_bytes());
            let garbage_len = rng.below(8);
            stream.extend_from_slice(&random_bytes(&mut rng, garbage_len, b"\0"));
            error = Some(FrameError::TooLong { limit: max });
        }
        let outcome = decode_cut(&mut rng, LengthPrefixed::new(max), &stream, own_bytes);
        assert_eq!(
            outcome,
            (payloads, error),
            "seed {seed}, max {max}, stream {stream:?}"
        );
    }
}

#[test]
fn random_streams_cut_at_random_points_decode_as_the_reference_length_prefixed() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x33_33);
        let max = rng.pick(&[0, 1, 5, 64]);
        let len = rng.below(120);
        let stream: Vec<u8> = (0..len)
            .map(|_| if rng.chance(2) { 0 } else { rng.below(7) as u8 })
            .collect();
        let outcome = decode_cut(&mut rng, LengthPrefixed::new(max), &stream, own_bytes);
        let expected = reference_length_prefixed(&stream, max);
        assert_eq!(
            outcome, expected,
            "seed {seed}, max {max}, stream {stream:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Header line + body

/// Limits and trailer of one header/body case.
#[derive(Clone, Copy, Debug)]
struct HeaderCase {
    header_len_max: usize,
    body_len_max: usize,
    trailer: &'static [u8],
}

impl HeaderCase {
    fn random(rng: &mut Rng) -> HeaderCase {
        HeaderCase {
            header_len_max: rng.pick(&[12, 16, 32]),
            body_len_max: rng.pick(&[0, 4, 16]),
            trailer: rng.pick(&[&b"\r\n"[..], b"", b"END\r\n"]),
        }
    }

    fn codec(self) -> HeaderBody {
        HeaderBody::new(
            self.header_len_max,
            self.body_len_max,
            self.trailer,
            memcached_body_len,
        )
    }
}

fn reference_header_body(stream: &[u8], case: HeaderCase) -> Outcome<OwnedHeaderFrame> {
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        let rest = &stream[at..];
        let (content, header_len) = match reference_line(rest, case.header_len_max) {
            Ok(Some(line)) => line,
            Ok(None) => return (frames, None),
            Err(error) => return (frames, Some(error)),
        };
        let header = rest[..content].to_vec();
        let body = match memcached_body_len(&header) {
            Err(reason) => return (frames, Some(FrameError::BadHeader { reason })),
            Ok(body) => body,
        };
        let Body::Len(body_len) = body else {
            frames.push((header, None));
            at += header_len;
            continue;
        };
        if body_len > case.body_len_max {
            let limit = case.body_len_max;
            return (frames, Some(FrameError::TooLong { limit }));
        }
        let len = header_len + body_len + case.trailer.len();
        let Some(frame) = rest.get(..len) else {
            return (frames, None);
        };
        if !frame.ends_with(case.trailer) {
            return (frames, Some(FrameError::BadTrailer));
        }
        frames.push((
            header,
            Some(frame[header_len..header_len + body_len].to_vec()),
        ));
        at += len;
    }
}

/// One random well-formed frame of `case`, encoded onto `stream`.
fn push_header_frame(rng: &mut Rng, case: HeaderCase, stream: &mut Vec<u8>) -> OwnedHeaderFrame {
    let mut out = [0; 80];
    let key_len = rng.range(1, 3);
    let key: Vec<u8> = (0..key_len).map(|_| b'a' + rng.below(26) as u8).collect();
    let ending = rng.pick(&[LineEnding::Lf, LineEnding::CrLf]);
    if rng.chance(3) {
        let header = [&b"GET "[..], &key].concat();
        append(
            stream,
            encode_header_body(&header, ending, None, case.trailer, &mut out),
            &out,
        );
        return (header, None);
    }
    let body_len = rng.range(0, case.body_len_max);
    let body = random_bytes(
        rng, body_len, b"
ab",
    );
    let header = format!("SET {} {}", String::from_utf8(key).unwrap(), body.len()).into_bytes();
    let encoded = encode_header_body(&header, ending, Some(&body), case.trailer, &mut out);
    append(stream, encoded, &out);
    (header, Some(body))
}

/// Appends a frame that must fail, and the error it must give.
fn push_bad_header_frame(rng: &mut Rng, case: HeaderCase, stream: &mut Vec<u8>) -> FrameError {
    match rng.below(4) {
        0 => {
            let len = rng.range(case.body_len_max + 1, case.body_len_max + 40);
            stream.extend_from_slice(format!("SET k {len}\r\n").as_bytes());
            FrameError::TooLong {
                limit: case.body_len_max,
            }
        }
        1 => {
            stream.extend_from_slice(b"GET ");
            stream.extend(core::iter::repeat_n(b'k', case.header_len_max));
            FrameError::TooLong {
                limit: case.header_len_max,
            }
        }
        2 if !case.trailer.is_empty() => {
            stream.extend_from_slice(b"SET k 0\r\n");
            stream.extend(case.trailer.iter().map(|b| b ^ 1));
            FrameError::BadTrailer
        }
        _ => {
            stream.extend_from_slice(b"DELETE k\r\n");
            FrameError::BadHeader {
                reason: "unknown command",
            }
        }
    }
}

#[test]
fn header_body_encoded_then_cut_at_random_points_decode_to_the_same_frames() {
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x44_44);
        let case = HeaderCase::random(&mut rng);
        let mut stream = Vec::new();
        let frames: Vec<OwnedHeaderFrame> = (0..rng.below(8))
            .map(|_| push_header_frame(&mut rng, case, &mut stream))
            .collect();
        let error = rng
            .chance(4)
            .then(|| push_bad_header_frame(&mut rng, case, &mut stream));
        let outcome = decode_cut(&mut rng, case.codec(), &stream, own_header_frame);
        assert_eq!(
            outcome,
            (frames, error),
            "seed {seed}, {case:?}, stream {stream:?}"
        );
    }
}

#[test]
fn random_streams_cut_at_random_points_decode_as_the_reference_header_body() {
    const TOKENS: [&[u8]; 11] = [
        b"SET k ", b"1", b"4", b"0", b"GET k", b"\r", b"\n", b"\r\n", b"x", b"END\r\n", b"FOO",
    ];
    for seed in 0..CASES {
        let mut rng = Rng::new(seed ^ 0x55_55);
        let case = HeaderCase::random(&mut rng);
        let mut stream = Vec::new();
        for _ in 0..rng.below(40) {
            stream.extend_from_slice(rng.pick(&TOKENS));
        }
        let outcome = decode_cut(&mut rng, case.codec(), &stream, own_header_frame);
        let expected = reference_header_body(&stream, case);
        assert_eq!(
            outcome, expected,
            "seed {seed}, {case:?}, stream {stream:?}"
        );
    }
}
