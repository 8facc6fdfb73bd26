//! Echo correctness on loopback, both backends: 200 concurrent connections, random payloads
//! from 1 byte to 64 KiB, every byte echoed in order (some clients shrink their receive
//! buffer so the server's sends complete partially).

mod linux_common;

use std::net::SocketAddr;

use linux_common::*;
use tina_linux::Backend;

const THREADS: usize = 8;
const CONNECTIONS_PER_THREAD: usize = 25;
const ROUNDS: usize = 3;
const PAYLOAD_SIZE_MAX: usize = 64 * 1024;

fn echo_many(backend: Backend) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let spec = echo_spec(addr, 2, 512);
    let rt = Running::start(spec, test_config(backend));
    let echoed: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = Rng::new(t as u64 + 1);
                    let mut conns: Vec<_> = (0..CONNECTIONS_PER_THREAD)
                        .map(|k| {
                            let s = connect(addr);
                            if k % 4 == 0 {
                                shrink_receive_buffer(&s, 16 * 1024);
                            }
                            s
                        })
                        .collect();
                    let mut out = vec![0u8; PAYLOAD_SIZE_MAX];
                    let mut back = vec![0u8; PAYLOAD_SIZE_MAX];
                    let mut bytes = 0;
                    for round in 0..ROUNDS {
                        for (k, s) in conns.iter_mut().enumerate() {
                            let len = 1 + (rng.next() as usize % PAYLOAD_SIZE_MAX);
                            rng.fill(&mut out[..len]);
                            echo_once(s, &out[..len], &mut back).unwrap_or_else(|e| {
                                panic!("thread {t} conn {k} round {round} len {len}: {e}")
                            });
                            assert!(
                                out[..len] == back[..len],
                                "thread {t} conn {k} round {round}: bytes differ"
                            );
                            bytes += len;
                        }
                    }
                    bytes
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("client")).sum()
    });
    let report = rt.stop();
    assert!(report.clean, "shutdown was not clean");
    let spawned: u64 = report.stats.iter().map(|s| s.counters.spawns).sum();
    assert!(spawned >= (THREADS * CONNECTIONS_PER_THREAD) as u64);
    let crashes: u64 = report.stats.iter().map(|s| s.counters.crashes).sum();
    assert_eq!(crashes, 0);
    eprintln!(
        "{} echoed {echoed} bytes over {} connections",
        report.backend.name(),
        THREADS * CONNECTIONS_PER_THREAD
    );
}

#[test]
fn echo_200_connections_random_payloads_uring() {
    echo_many(Backend::Uring);
}

#[test]
fn echo_200_connections_random_payloads_epoll() {
    echo_many(Backend::Epoll);
}
