//! `tcp_echo --listen` — the real binary, in a child process — echoes arbitrary bytes exactly,
//! on both backends: every byte value, payloads that start with 0xFF (the containment demo's
//! poison byte, which only `--chaos-poison` arms), chunks that each start with 0xFF, and large
//! random payloads written in chunks of random sizes over several connections at once. Every
//! comparison is byte for byte. With `--chaos-poison` the trigger works again.

mod example_bins;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use example_bins::*;

/// A tiny deterministic PRNG (xorshift64*) over the whole byte range.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Reads exactly `want` bytes (or fails, saying how many came before the end).
fn read_all(s: &mut TcpStream, want: usize, what: &str) -> Vec<u8> {
    let mut back = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match s.read(&mut back[got..]) {
            Ok(0) => panic!("{what}: the server closed the connection after {got} of {want} bytes"),
            Ok(n) => got += n,
            Err(e) => panic!("{what}: reading failed after {got} of {want} bytes: {e}"),
        }
    }
    back
}

/// Fails unless `back` equals `sent`, naming the first byte that differs.
fn assert_same(sent: &[u8], back: &[u8], what: &str) {
    if let Some(i) = sent.iter().zip(back).position(|(a, b)| a != b) {
        panic!(
            "{what}: byte {i} differs: sent {:#04x}, echoed {:#04x}",
            sent[i], back[i]
        );
    }
    assert_eq!(sent.len(), back.len(), "{what}: lengths differ");
}

/// Sends `payload` in chunks of random sizes (1 to `chunk_max` bytes) from a second thread
/// while reading the echo, then compares.
fn echo_in_chunks(addr: SocketAddr, payload: &[u8], chunk_max: usize, seed: u64, what: &str) {
    let mut s = connect(addr);
    let mut writer = s.try_clone().expect("clone the socket");
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut rng = Rng::new(seed);
            let mut at = 0;
            while at < payload.len() {
                let n = (1 + rng.below(chunk_max as u64) as usize).min(payload.len() - at);
                writer
                    .write_all(&payload[at..at + n])
                    .expect("write a chunk");
                at += n;
            }
        });
        let back = read_all(&mut s, payload.len(), what);
        assert_same(payload, &back, what);
    });
}

fn echoes_arbitrary_bytes_exactly(backend: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = Process::spawn("tcp_echo", &strs(&echo_args(addr, 2, backend)));
    server.wait_line("serving echo on");

    // Every byte value, as the first bytes of fresh connections: ascending, then descending
    // (which starts with 0xFF).
    let ascending: Vec<u8> = (0..=255u8).collect();
    let descending: Vec<u8> = (0..=255u8).rev().collect();
    for (payload, what) in [(&ascending, "0..=255"), (&descending, "255..=0")] {
        let mut s = connect(addr);
        s.write_all(payload).expect("write");
        let back = read_all(&mut s, payload.len(), what);
        assert_same(payload, &back, what);
    }

    // One round trip at a time, so every chunk the server receives starts with 0xFF.
    let mut s = connect(addr);
    let mut rng = Rng::new(1);
    for round in 0..64 {
        let len = 1 + rng.below(300) as usize;
        let mut chunk = rng.bytes(len);
        chunk[0] = 0xFF;
        s.write_all(&chunk).expect("write");
        let what = format!("0xFF-led chunk {round}");
        let back = read_all(&mut s, len, &what);
        assert_same(&chunk, &back, &what);
    }
    drop(s);

    // Large random payloads over four connections at once (spread over both shards), written
    // in chunks of 1 byte to 64 KiB: many chunk boundaries, every byte value.
    std::thread::scope(|scope| {
        for k in 0..4u64 {
            scope.spawn(move || {
                let mut payload = Rng::new(100 + k).bytes(4 << 20);
                payload[0] = 0xFF;
                echo_in_chunks(addr, &payload, 64 << 10, 200 + k, &format!("random #{k}"));
            });
        }
    });
    // Small chunks: thousands of boundaries in one stream.
    let payload = Rng::new(7).bytes(256 << 10);
    echo_in_chunks(addr, &payload, 97, 8, "small chunks");

    assert_eq!(server.terminate(), Some(0), "a clean shutdown exits 0");
}

#[test]
fn tcp_echo_listen_echoes_arbitrary_bytes_exactly_uring() {
    echoes_arbitrary_bytes_exactly("uring");
}

#[test]
fn tcp_echo_listen_echoes_arbitrary_bytes_exactly_epoll() {
    echoes_arbitrary_bytes_exactly("epoll");
}

/// `--chaos-poison` arms the containment demo's trigger: a chunk starting with 0xFF panics
/// its connection (closed by the server), and only that one.
#[test]
fn tcp_echo_chaos_poison_flag_arms_the_trigger() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut args = echo_args(addr, 1, "auto");
    args.push("--chaos-poison".into());
    let mut server = Process::spawn("tcp_echo", &strs(&args));
    server.wait_line("serving echo on");
    let mut healthy = connect(addr);
    healthy.write_all(b"before").unwrap();
    assert_same(b"before", &read_all(&mut healthy, 6, "before"), "before");
    let mut victim = connect(addr);
    victim.write_all(&[0xFF, 1, 2]).unwrap();
    let mut b = [0u8; 8];
    assert!(
        matches!(victim.read(&mut b), Ok(0) | Err(_)),
        "the poisoned connection is closed by the server"
    );
    server.wait_line("poisoned input");
    healthy.write_all(b"after").unwrap();
    assert_same(b"after", &read_all(&mut healthy, 5, "after"), "after");
    drop((healthy, victim));
    assert_eq!(server.terminate(), Some(0));
}
