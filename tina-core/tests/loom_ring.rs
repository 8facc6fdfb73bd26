//! Loom models of the cross-shard ring (`tina_core::ring`) and of the transport's sleep
//! protocol (`tina_core::transport`: a shard announces sleep, fences and re-checks; a
//! producer publishes, fences and wakes whoever it sees asleep — no wake-up is lost).
//!
//! loom runs each model under every interleaving of its atomic operations (bounded here by
//! `LOOM_MAX_PREEMPTIONS`) and checks, at every access to a slot, that the last conflicting
//! access happens-before it. Run them all with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p tina-core --release --test loom_ring
//! ```
//!
//! The `loom_broken_*` tests inject a wrong ordering (a `Relaxed` publish or commit) through a
//! loom-only constructor and expect loom to report a causality violation: they prove the
//! models are strong enough to catch the bug the orderings prevent. For a second, independent
//! demonstration, `RUSTFLAGS="--cfg loom --cfg tina_loom_broken"` makes every ring publish
//! with `Relaxed`; the other models must then fail.
//!
//! Every model uses the 128-byte, 128-aligned envelope shape the shards exchange, and checks
//! each value arrives intact and in order.
#![cfg(loom)]

use loom::thread;
use tina_core::ring::{Consumer, LoomFault, Producer, Ring, Slot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(128))]
struct Envelope {
    sequence: u64,
    words: [u64; 15],
}

const _: () = assert!(size_of::<Envelope>() == 128);

impl Envelope {
    fn new(sequence: u64) -> Self {
        Envelope {
            sequence,
            words: core::array::from_fn(|i| Self::word(sequence, i)),
        }
    }

    fn word(sequence: u64, i: usize) -> u64 {
        sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64
    }

    fn is_intact(&self) -> bool {
        self.words
            .iter()
            .enumerate()
            .all(|(i, w)| *w == Self::word(self.sequence, i))
    }
}

type Tx = Producer<'static, Envelope>;
type Rx = Consumer<'static, Envelope>;

/// Builds a ring whose storage outlives the model's threads (loom threads need `'static`),
/// hands its halves to `model`, and frees the storage once `model` has returned.
///
/// `model` must join every thread it spawns before returning.
fn with_ring(capacity: usize, index_start: usize, fault: LoomFault, model: impl FnOnce(Tx, Rx)) {
    let slots: Box<[Slot<Envelope>]> = (0..capacity).map(|_| Slot::new()).collect();
    let slots: *mut [Slot<Envelope>] = Box::into_raw(slots);
    // SAFETY: `slots` comes from `Box::into_raw` just above; nothing else refers to it. It is
    // turned back into a `Box` below, after every borrow derived from this one has ended.
    let slots_ref: &'static mut [Slot<Envelope>] = unsafe { &mut *slots };
    let ring = Ring::new_for_model(slots_ref, index_start, fault).expect("valid capacity");
    let ring: *mut Ring<'static, Envelope> = Box::into_raw(Box::new(ring));
    {
        // SAFETY: as above, `ring` is a fresh, unaliased allocation.
        let ring_ref: &'static mut Ring<'static, Envelope> = unsafe { &mut *ring };
        let (tx, rx) = ring_ref.split();
        model(tx, rx);
    }
    // SAFETY: `model` joined every thread it spawned and consumed both halves, so no reference
    // into the ring or the slots is alive any more; both pointers came from `Box::into_raw`.
    // (If the model panicked we never get here and the memory simply leaks.)
    unsafe {
        drop(Box::from_raw(ring));
        drop(Box::from_raw(slots));
    }
}

/// Pushes `0..total` in order, publishing after every `batch` pushes; when the ring is full,
/// publishes what is staged and yields until the consumer frees a slot.
fn produce(mut tx: Tx, total: u64, batch: u64) {
    for sequence in 0..total {
        let envelope = Envelope::new(sequence);
        while let Err(back) = tx.try_push(envelope) {
            assert_eq!(back, envelope, "a full ring gives the value back unchanged");
            tx.publish();
            thread::yield_now();
        }
        if (sequence + 1) % batch == 0 {
            assert!(tx.publish(), "a batch was staged");
        }
    }
    tx.publish();
    assert_eq!(tx.staged_count(), 0);
}

/// Drains until `total` values arrived, at most `count_max` per drain, one commit per drain;
/// checks order and integrity of every value.
fn consume(rx: &mut Rx, total: u64, count_max: usize) {
    let mut next = 0;
    while next < total {
        let drained = rx.drain(count_max, |e| {
            assert!(e.is_intact(), "torn envelope {e:?}");
            assert_eq!(e.sequence, next, "out of order");
            next += 1;
        });
        if drained == 0 {
            thread::yield_now();
        } else {
            assert!(rx.commit());
        }
    }
}

fn model_batched(fault: LoomFault) {
    loom::model(move || {
        with_ring(16, 0, fault, |tx, mut rx| {
            let producer = thread::spawn(move || produce(tx, 12, 4));
            consume(&mut rx, 12, usize::MAX);
            producer.join().unwrap();
            assert!(rx.is_empty());
        });
    });
}

/// Streams `total` values through 16 slots, publishing every `batch` pushes and draining at
/// most `count_max` per pass. (Batches and drain bounds that divide 16 keep the state space
/// small; uneven ones multiply it, so the uneven model streams fewer values.)
fn model_stream(total: u64, batch: u64, count_max: usize, index_start: usize, fault: LoomFault) {
    loom::model(move || {
        with_ring(16, index_start, fault, |tx, mut rx| {
            let producer = thread::spawn(move || produce(tx, total, batch));
            consume(&mut rx, total, count_max);
            producer.join().unwrap();
            assert!(rx.is_empty());
        });
    });
}

#[test]
fn loom_batched_publish_and_drain_in_order() {
    model_batched(LoomFault::None);
}

#[test]
fn loom_wrap_around_with_full_and_empty_ring() {
    // 40 values through 16 slots: two and a half laps, the producer meeting a full ring and
    // the consumer an empty one in many interleavings.
    model_stream(40, 8, 16, 0, LoomFault::None);
}

#[test]
fn loom_wrap_around_uneven_batches_and_bounded_drains() {
    // Batches of 5 and drains of at most 7 never line up with the 16 slots or each other.
    model_stream(20, 5, 7, 0, LoomFault::None);
}

#[test]
fn loom_counters_wrap_at_usize_max() {
    model_stream(40, 8, 16, usize::MAX - 20, LoomFault::None);
}

#[test]
fn loom_full_edge_gives_back_then_accepts() {
    loom::model(|| {
        with_ring(16, 0, LoomFault::None, |mut tx, mut rx| {
            let producer = thread::spawn(move || {
                for sequence in 0..16 {
                    tx.try_push(Envelope::new(sequence)).unwrap();
                }
                // Exactly full: the 17th is refused whatever the consumer did so far, since
                // nothing was published yet.
                assert_eq!(tx.try_push(Envelope::new(16)), Err(Envelope::new(16)));
                assert!(tx.publish());
                while tx.try_push(Envelope::new(16)).is_err() {
                    thread::yield_now();
                }
                assert!(tx.publish());
            });
            consume(&mut rx, 17, usize::MAX);
            producer.join().unwrap();
        });
    });
}

#[test]
fn loom_empty_edge_is_empty_agrees_with_pop() {
    loom::model(|| {
        with_ring(16, 0, LoomFault::None, |mut tx, mut rx| {
            let producer = thread::spawn(move || {
                for sequence in 0..2 {
                    tx.try_push(Envelope::new(sequence)).unwrap();
                    assert!(tx.publish());
                }
            });
            let mut next = 0;
            while next < 2 {
                if rx.is_empty() {
                    thread::yield_now();
                    continue;
                }
                // Not empty means a value is there: `pop` must not miss it.
                let envelope = rx.pop().expect("is_empty said false");
                assert!(envelope.is_intact());
                assert_eq!(envelope.sequence, next);
                next += 1;
                rx.commit();
            }
            producer.join().unwrap();
            assert_eq!(rx.pop(), None);
        });
    });
}

#[test]
fn loom_ticks_consumer_races_producer() {
    // Three "ticks" on each side, no waiting: the producer pushes 7 per tick (dropping, and
    // counting, what does not fit) and publishes once; the consumer drains at most 8 per tick
    // and commits once. Whatever the interleaving, exactly the accepted values arrive, in order.
    const TICKS: u64 = 3;
    const PUSHES_PER_TICK: u64 = 7;
    loom::model(|| {
        with_ring(16, 0, LoomFault::None, |mut tx, mut rx| {
            let producer = thread::spawn(move || {
                let mut accepted = Vec::new();
                for tick in 0..TICKS {
                    for k in 0..PUSHES_PER_TICK {
                        let sequence = tick * PUSHES_PER_TICK + k;
                        if tx.try_push(Envelope::new(sequence)).is_ok() {
                            accepted.push(sequence);
                        }
                    }
                    tx.publish();
                }
                accepted
            });
            let mut received = Vec::new();
            let mut take = |e: &Envelope| {
                assert!(e.is_intact());
                received.push(e.sequence);
            };
            for _ in 0..TICKS {
                rx.drain(8, &mut take);
                rx.commit();
            }
            let accepted = producer.join().unwrap();
            rx.drain(usize::MAX, &mut take);
            rx.commit();
            assert!(rx.is_empty());
            assert!(
                accepted.len() as u64 >= 16,
                "an empty ring takes at least 16"
            );
            assert_eq!(received, accepted);
        });
    });
}

#[test]
#[should_panic(expected = "Causality violation")]
fn loom_broken_relaxed_publish_is_caught() {
    model_batched(LoomFault::RelaxedPublish);
}

#[test]
#[should_panic(expected = "Causality violation")]
fn loom_broken_relaxed_commit_is_caught() {
    model_stream(40, 8, 16, 0, LoomFault::RelaxedCommit);
}

// ─── The sleep protocol of `tina_core::transport` ─────────────────────────────────────────

mod sleep_protocol {
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::thread;
    use tina_core::Message;
    use tina_core::ShardId;
    use tina_core::platform::Transport;
    use tina_core::ring::{Consumer, Producer, Ring, Slot};
    use tina_core::transport::{RingTransport, ShardLink, Wake};

    /// Records that a wake-up was sent (stands for an eventfd write or `SEV`).
    struct Doorbell(&'static AtomicBool);

    impl Wake for Doorbell {
        fn wake(&self, _peer: ShardId) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn leak<T>(value: T) -> &'static mut T {
        Box::leak(Box::new(value))
    }

    type Halves = (
        &'static mut [Option<Producer<'static, Message>>],
        &'static mut [Option<Consumer<'static, Message>>],
    );

    /// Shard 0 sends one message to shard 1 and publishes while shard 1 decides whether to
    /// sleep, with its checks in the order `announce_first` says. Panics with "lost wake-up"
    /// if shard 1 went to sleep with the message pending and nobody rang it.
    ///
    /// Everything is leaked: loom threads need `'static`, and each model iteration is small.
    fn model(announce_first: bool) {
        loom::model(move || {
            let links: &'static [ShardLink] = leak([ShardLink::new(), ShardLink::new()]);
            let rung: &'static AtomicBool = leak(AtomicBool::new(false));
            let slots: &'static mut [Slot<Message>] =
                Box::leak((0..16).map(|_| Slot::new()).collect::<Box<[_]>>());
            let ring = leak(Ring::new(slots).expect("valid capacity"));
            let (p, c) = ring.split();
            let shard0: Halves = (leak([None, Some(p)]), leak([None, None]));
            let shard1: Halves = (leak([None, None]), leak([Some(c), None]));
            let producer = thread::spawn(move || {
                let mut t0 = RingTransport::new(
                    ShardId(0),
                    shard0.0,
                    shard0.1,
                    links,
                    leak([0u32; 2]),
                    Doorbell(rung),
                );
                t0.send(ShardId(1), &Message::default()).expect("room");
                t0.publish();
            });
            let mut t1 = RingTransport::new(
                ShardId(1),
                shard1.0,
                shard1.1,
                links,
                leak([0u32; 2]),
                Doorbell(rung),
            );
            let slept = if announce_first {
                t1.link().prepare_sleep();
                !t1.has_inbound()
            } else {
                // The broken order: check, then announce.
                let empty = !t1.has_inbound();
                t1.link().prepare_sleep();
                empty
            };
            producer.join().unwrap();
            if slept {
                assert!(rung.load(Ordering::SeqCst), "lost wake-up");
            }
            t1.link().woke();
            let mut got = 0;
            t1.receive(&mut |_| got += 1);
            assert_eq!(got, 1, "the message arrives");
        });
    }

    #[test]
    fn loom_sleep_protocol_never_loses_a_wake_up() {
        model(true);
    }

    #[test]
    #[should_panic(expected = "lost wake-up")]
    fn loom_broken_check_before_announcing_sleep_is_caught() {
        model(false);
    }
}
