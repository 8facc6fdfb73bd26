//! Loom models of the bulk hand-off (`tina_core::bulk`): an owner shard writes a payload into
//! a slot of its pool and lends it through a real ring; the receiving shard accepts it, reads
//! it in place and gives it back; the owner reuses the slot only once it sees the return.
//!
//! loom runs each model under every interleaving of its atomic operations (bounded by
//! `LOOM_MAX_PREEMPTIONS`) and checks, at every access to a slot's length cell (written by
//! the owner with the payload, read by the receiver with it), that the last conflicting access
//! happens-before it:
//!
//! ```text
//! CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p tina-core --release --test loom_bulk
//! ```
//!
//! The planted bug: `--cfg tina_planted_bulk_bug` makes the receiver give a slot back with a
//! `Relaxed` store instead of `Release`, so the owner may rewrite a slot the receiver is still
//! reading. Every model that reuses a slot must then fail with a causality violation:
//!
//! ```text
//! CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom --cfg tina_planted_bulk_bug" LOOM_MAX_PREEMPTIONS=2 cargo test -p tina-core --release --test loom_bulk
//! ```
#![cfg(loom)]

use loom::thread;
use tina_core::ShardId;
use tina_core::bulk::{BulkClass, BulkConfig, BulkOwner, BulkPeer, BulkPool, BulkRef, BulkSlot};
use tina_core::ring::{Consumer, Producer, Ring, Slot};

/// One slot of 64 bytes: every second message must wait for the first one's return.
const CONFIG: BulkConfig = BulkConfig {
    small: BulkClass { slots: 1, size: 64 },
    large: BulkClass { slots: 0, size: 0 },
};

type Tx = Producer<'static, BulkRef>;
type Rx = Consumer<'static, BulkRef>;

/// Leaks a value for the duration of one model execution (loom threads need `'static`); the
/// caller frees it with [`free`] after joining every thread.
fn leak<T>(value: T) -> (*mut T, &'static mut T) {
    let raw = Box::into_raw(Box::new(value));
    // SAFETY: `raw` is a fresh allocation; it is freed by `free` only after every borrow
    // derived from this one has ended.
    (raw, unsafe { &mut *raw })
}

/// Frees what [`leak`] allocated.
///
/// # Safety
/// No reference derived from `raw` may be alive.
unsafe fn free<T>(raw: *mut T) {
    // SAFETY: per the caller, and `raw` came from `Box::into_raw`.
    drop(unsafe { Box::from_raw(raw) });
}

/// Builds shard 0's pool and a ring 0 → 1, hands the owner's half, shard 1's peer half and the
/// ring's halves to `model`, and frees everything once `model` (which joins its threads)
/// returns.
fn with_pool(model: impl FnOnce(BulkOwner<'static>, BulkPeer<'static>, Tx, Rx)) {
    let (slots_raw, slots) = leak(vec![BulkSlot::new()]);
    let (small_raw, small) = leak(vec![0u8; 64]);
    let (large_raw, large) = leak(Vec::<u8>::new());
    let pool = BulkPool::new(ShardId(0), CONFIG, slots, small, large).expect("sizes match");
    let (pool_raw, pool) = leak(pool);
    let (ring_slots_raw, ring_slots) = leak(Slot::<BulkRef>::array::<16>());
    let ring = Ring::new(ring_slots).expect("valid capacity");
    let (ring_raw, ring) = leak(ring);
    {
        let pool: &'static BulkPool<'static> = pool;
        let mut peer1 = None;
        let owner = pool.split(2, |to, p| {
            if to == ShardId(1) {
                peer1 = Some(p);
            }
        });
        let (tx, rx) = ring.split();
        model(owner, peer1.expect("a half for shard 1"), tx, rx);
    }
    // SAFETY: `model` joined every thread and dropped every half: nothing refers to these.
    unsafe {
        free(ring_raw);
        free(ring_slots_raw);
        free(pool_raw);
        free(large_raw);
        free(small_raw);
        free(slots_raw);
    }
}

fn pattern(seq: u8, i: usize) -> u8 {
    seq.wrapping_mul(37) ^ i as u8
}

/// Sends `count` payloads of a length that depends on the message, each through the one
/// slot, waiting (yielding) for the slot to come back before the next.
fn send(owner: &mut BulkOwner<'static>, tx: &mut Tx, count: u8) {
    for seq in 0..count {
        let len = 40 + usize::from(seq) * 8;
        let draft = loop {
            match owner.alloc(len) {
                Ok(d) => break d,
                Err(_) => thread::yield_now(),
            }
        };
        let bytes = owner.bytes_mut(draft).expect("a fresh draft is writable");
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = pattern(seq, i);
        }
        let r = owner.lend(draft, ShardId(1)).expect("lent once");
        tx.try_push(r).expect("the ring has room");
        assert!(tx.publish());
    }
}

/// Receives `count` payloads, checks each whole, gives each back.
fn receive(peer: &mut BulkPeer<'static>, rx: &mut Rx, count: u8) {
    for seq in 0..count {
        let r = loop {
            match rx.pop() {
                Some(r) => break r,
                None => thread::yield_now(),
            }
        };
        rx.commit();
        assert!(peer.accept(r), "a fresh reference is accepted");
        let bytes = peer.bytes(r).expect("accepted: readable");
        assert_eq!(bytes.len(), 40 + usize::from(seq) * 8);
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(*b, pattern(seq, i), "message {seq} byte {i}");
        }
        assert!(peer.give_back(r));
    }
}

#[test]
fn loom_bulk_hand_off_and_reuse_of_one_slot() {
    loom::model(|| {
        with_pool(|mut owner, mut peer, mut tx, mut rx| {
            let receiver = thread::spawn(move || {
                receive(&mut peer, &mut rx, 2);
                peer
            });
            send(&mut owner, &mut tx, 2);
            let peer = receiver.join().unwrap();
            drop(peer);
            assert_eq!(owner.pool().in_use(), 0, "the slot came back");
        });
    });
}

#[test]
fn loom_bulk_teardown_returns_what_the_receiver_accepted() {
    // The receiver accepts the message and is torn down before reading it (`reclaim_taken`);
    // the owner, meanwhile, waits for the slot and writes the next payload into it.
    loom::model(|| {
        with_pool(|mut owner, mut peer, mut tx, mut rx| {
            let receiver = thread::spawn(move || {
                let r = loop {
                    match rx.pop() {
                        Some(r) => break r,
                        None => thread::yield_now(),
                    }
                };
                rx.commit();
                assert!(peer.accept(r));
                assert_eq!(peer.bytes(r).map(<[u8]>::len), Some(40));
                assert_eq!(peer.reclaim_taken(), 1);
                assert_eq!(peer.bytes(r), None, "given back: stale");
            });
            send(&mut owner, &mut tx, 1);
            let draft = loop {
                match owner.alloc(64) {
                    Ok(d) => break d,
                    Err(_) => thread::yield_now(),
                }
            };
            owner.bytes_mut(draft).expect("writable").fill(0xEE);
            assert!(owner.cancel(draft));
            receiver.join().unwrap();
            assert_eq!(owner.pool().in_use(), 0);
        });
    });
}
