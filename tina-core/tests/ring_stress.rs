//! Real-threads stress test of the cross-shard ring.
//!
//! Two threads, pinned to two different CPUs with `sched_setaffinity` when at least two are
//! allowed (otherwise both run unpinned and the test says so), stream 128-byte, 128-aligned
//! envelopes through a 64-slot ring, so the producer keeps meeting a full ring and the consumer
//! an empty one. The producer publishes batches whose size cycles through 1..=32 (and publishes
//! whatever is staged when it meets a full ring); the consumer drains at most 48 per pass and
//! commits once per pass. The receiver checks every sequence number, every envelope's own
//! checksum word, and a running checksum of all payloads against the sender's.
//!
//! Message counts: 10 million in optimised builds
//! (`cargo test -p tina-core --release --test ring_stress -- --nocapture`), 1 million in debug
//! builds (`cargo test -p tina-core --test ring_stress`), where unoptimised code would make
//! 10 million take minutes, and 2,000 under Miri
//! (`cargo +nightly miri test -p tina-core --test ring_stress`), which runs unpinned.

use std::hint::spin_loop;
use std::thread;
use std::time::Instant;

use tina_core::ring::{Ring, Slot};

const MESSAGE_COUNT: u64 = if cfg!(miri) {
    2_000
} else if cfg!(debug_assertions) {
    1_000_000
} else {
    10_000_000
};
const CAPACITY: usize = 64;
const PUBLISH_BATCH_MAX: u64 = 32;
const DRAIN_COUNT_MAX: usize = 48;
/// Busy-wait this many times on a full/empty ring before yielding the CPU.
const SPINS_BEFORE_YIELD: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(128))]
struct Envelope {
    sequence: u64,
    words: [u64; 14],
    checksum: u64,
}

const _: () = assert!(size_of::<Envelope>() == 128);

impl Envelope {
    fn new(sequence: u64) -> Self {
        let words = core::array::from_fn(|i| {
            sequence
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(i as u32)
                ^ i as u64
        });
        let mut envelope = Envelope {
            sequence,
            words,
            checksum: 0,
        };
        envelope.checksum = envelope.payload_sum();
        envelope
    }

    fn payload_sum(&self) -> u64 {
        self.words.iter().fold(self.sequence, |sum, w| {
            sum.wrapping_mul(31).wrapping_add(*w)
        })
    }
}

/// Waits a little on a full or empty ring: spin first, then give the CPU away.
struct Backoff(u32);

impl Backoff {
    fn wait(&mut self) {
        if self.0 < SPINS_BEFORE_YIELD && !cfg!(miri) {
            self.0 += 1;
            spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// CPUs this process may run on (at most the first two), or `None` where pinning is not
/// possible (Miri, or fewer than two CPUs allowed).
#[cfg(all(target_os = "linux", not(miri)))]
fn two_cpus() -> Option<[usize; 2]> {
    // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is a valid, writable `cpu_set_t` of the size we
    // pass.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let mut allowed = (0..libc::CPU_SETSIZE as usize).filter(|&cpu| {
        // SAFETY: `cpu` is below `CPU_SETSIZE`, and `set` is initialised.
        unsafe { libc::CPU_ISSET(cpu, &set) }
    });
    Some([allowed.next()?, allowed.next()?])
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn two_cpus() -> Option<[usize; 2]> {
    None
}

#[cfg(all(target_os = "linux", not(miri)))]
fn pin_current_thread(cpu: usize) {
    // SAFETY: as in `two_cpus`; the all-zero set is empty and `cpu < CPU_SETSIZE`.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(rc, 0, "sched_setaffinity(cpu {cpu}) failed");
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn pin_current_thread(_cpu: usize) {}

#[test]
fn ring_stress_two_threads_every_message_intact_in_order() {
    let cpus = two_cpus();
    let mut slots: Vec<Slot<Envelope>> = (0..CAPACITY).map(|_| Slot::new()).collect();
    let mut ring = Ring::new(&mut slots).expect("64 is a valid capacity");
    let (mut tx, mut rx) = ring.split();
    let started = Instant::now();

    let (sent_sum, full_count, received_sum, empty_count) = thread::scope(|scope| {
        let producer = scope.spawn(move || {
            if let Some([cpu, _]) = cpus {
                pin_current_thread(cpu);
            }
            let (mut sum, mut full_count) = (0u64, 0u64);
            let mut batch_size = 1;
            let mut sequence = 0;
            while sequence < MESSAGE_COUNT {
                let batch_end = (sequence + batch_size).min(MESSAGE_COUNT);
                while sequence < batch_end {
                    let envelope = Envelope::new(sequence);
                    let mut backoff = Backoff(0);
                    while let Err(back) = tx.try_push(envelope) {
                        assert_eq!(back, envelope);
                        full_count += 1;
                        tx.publish();
                        backoff.wait();
                    }
                    sum = sum.wrapping_add(envelope.checksum);
                    sequence += 1;
                }
                tx.publish();
                batch_size = batch_size % PUBLISH_BATCH_MAX + 1;
            }
            assert_eq!(tx.staged_count(), 0);
            (sum, full_count)
        });

        let consumer = scope.spawn(move || {
            if let Some([_, cpu]) = cpus {
                pin_current_thread(cpu);
            }
            let (mut sum, mut empty_count) = (0u64, 0u64);
            let mut next = 0u64;
            let mut backoff = Backoff(0);
            while next < MESSAGE_COUNT {
                let drained = rx.drain(DRAIN_COUNT_MAX, |e| {
                    assert_eq!(e.sequence, next, "sequence gap or reorder");
                    assert_eq!(e.checksum, e.payload_sum(), "torn payload at {next}");
                    sum = sum.wrapping_add(e.checksum);
                    next += 1;
                });
                if drained == 0 {
                    empty_count += 1;
                    backoff.wait();
                } else {
                    assert!(rx.commit());
                    backoff = Backoff(0);
                }
            }
            assert!(rx.is_empty());
            (sum, empty_count)
        });

        let (sent_sum, full_count) = producer.join().expect("producer panicked");
        let (received_sum, empty_count) = consumer.join().expect("consumer panicked");
        (sent_sum, full_count, received_sum, empty_count)
    });

    let elapsed = started.elapsed();
    assert_eq!(received_sum, sent_sum, "payload checksum mismatch");
    println!(
        "ring_stress: {MESSAGE_COUNT} x 128 B through {CAPACITY} slots, {} in {:.3?} \
         ({} ns/message); producer met a full ring {full_count} times, \
         consumer an empty one {empty_count} times",
        match cpus {
            Some([p, c]) => format!("producer on CPU {p}, consumer on CPU {c}"),
            None => "UNPINNED (fewer than two CPUs allowed, or Miri)".to_string(),
        },
        elapsed,
        elapsed.as_nanos() / u128::from(MESSAGE_COUNT),
    );
}
