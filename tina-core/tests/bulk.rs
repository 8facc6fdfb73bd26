//! Bulk pools (`tina_core::bulk`): sized and carved by the boot-layout walk, validated by the
//! spec, and a threaded hand-off of checksummed payloads between two shards' threads through
//! a real ring (also run under Miri: `cargo +nightly miri test -p tina-core --test bulk`).
mod common;
use common::*;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use tina_core::bulk::{BulkClass, BulkConfig, BulkError, BulkOwner, BulkPeer, BulkRef};
use tina_core::memory::RegionBlock;
use tina_core::ring::{Ring, Slot};
use tina_core::spec::Rule;
use tina_core::wiring::{WiringError, carve_bulk_pool};
use tina_core::*;

fn spec_of<'s>(shards: &'s [ShardSpec<'s>], types: &'s [TypeSpec]) -> SystemSpec<'s> {
    SystemSpec::new(shards, types)
}

fn children() -> [ChildSpec<'static>; 1] {
    [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)]
}

fn memory_block(bytes: usize) -> Vec<RegionBlock> {
    vec![RegionBlock::UNINIT; RegionBlock::blocks_for(bytes)]
}

const DOCS: &str = include_str!("../src/cross_shard/bulk.rs");

/// The table in the `bulk` module docs: every shard's pool at the defaults, from the layout.
/// (Arithmetic over 256 shards' layouts: too slow interpreted, and nothing `unsafe` in it.)
#[test]
#[cfg_attr(miri, ignore)]
fn bulk_memory_table() {
    let c = children();
    let types = [TypeSpec::of::<Actor>("a")];
    let one = spec_of(&[], &types);
    let per_shard = {
        let shards = [ShardSpec {
            root: GroupSpec::one_for_one(&c),
        }];
        let s = SystemSpec {
            shards: &shards,
            ..one
        };
        bulk_memory_required(&s).unwrap()
    };
    // Payload plus one 128-byte header per slot plus the pool: nothing else.
    let config = BulkConfig::DEFAULT;
    let payload = config.slot_bytes().unwrap();
    assert!(per_shard >= payload + 36 * 128 && per_shard < payload + 36 * 128 + 256);
    for (n, mib_max) in [(2, 1.0), (16, 6.5), (64, 25.0), (256, 100.0)] {
        let shards = vec![
            ShardSpec {
                root: GroupSpec::one_for_one(&c),
            };
            n
        ];
        let s = SystemSpec {
            shards: &shards,
            ..one
        };
        let total = SystemMemory::of(&s).unwrap();
        assert_eq!(total.bulk, n * per_shard, "linear in the shard count");
        let mib = total.bulk as f64 / (1024.0 * 1024.0);
        let row = format!("//! | {n:>6} | {:>17} |", format!("{mib:.2} MiB"));
        assert!(DOCS.contains(&row), "the bulk module's table lacks `{row}`");
        assert!(mib <= mib_max, "{n} shards: {mib} MiB");
        assert_eq!(
            total.total(),
            Some(total.regions + total.rings + total.bulk)
        );
    }
}

#[test]
fn bulk_carve_takes_exactly_the_measured_bytes() {
    let c = children();
    let types = [TypeSpec::of::<Actor>("a")];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }; 3];
    let mut s = spec_of(&shards, &types);
    s.bulk = BulkConfig {
        small: BulkClass {
            slots: 3,
            size: 128,
        },
        large: BulkClass {
            slots: 2,
            size: 1024,
        },
    };
    let needed = bulk_memory_required(&s).unwrap();
    let mut blocks = memory_block(needed);
    let bytes = RegionBlock::as_bytes(&mut blocks);
    let mut shards_placed = Vec::new();
    let owner = carve_bulk_pool(&s, ShardId(1), &mut bytes[..needed], |to, _| {
        shards_placed.push(to.0)
    })
    .unwrap();
    assert_eq!(shards_placed, [0, 1, 2]);
    assert_eq!(owner.pool().slot_count(), 5);
    assert_eq!(owner.pool().owner(), ShardId(1));
    assert_eq!(owner.pool().payload_max(), 1024);
    let short = carve_bulk_pool(&s, ShardId(1), &mut bytes[..needed - 1], |_, _| {});
    assert!(
        matches!(
            short,
            Err(WiringError::Bulk {
                owner: ShardId(1),
                ..
            })
        ),
        "one byte short must fail"
    );
    let none = carve_bulk_pool(&s, ShardId(3), &mut bytes[..needed], |_, _| {});
    assert!(matches!(none, Err(WiringError::NoSuchShard { .. })));
}

#[test]
#[cfg_attr(miri, ignore)]
fn bulk_spec_knobs_are_validated_with_clear_errors() {
    let c = children();
    let types = [TypeSpec::of::<Actor>("a")];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let base = spec_of(&shards, &types);
    let check = |bulk: BulkConfig, field: &str, value: u64, rule: Rule| {
        let s = SystemSpec { bulk, ..base };
        let e = s.validate().expect_err(field);
        assert_eq!((e.field, e.value, e.rule), (field, value, rule), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(field) && text.contains(&value.to_string()),
            "{text}"
        );
        assert_eq!(bulk_memory_required(&s), Err(BootError::Spec(e)));
        text
    };
    let d = BulkConfig::DEFAULT;
    let large = |size| BulkConfig {
        large: BulkClass { slots: 1, size },
        ..d
    };
    let text = check(
        large(2 << 20),
        "bulk.large.size",
        2 << 20,
        Rule::BulkSlotSize,
    );
    assert!(text.contains("1048576"), "{text}");
    check(large(1000), "bulk.large.size", 1000, Rule::BulkSlotSize);
    check(
        large(4096 - 64),
        "bulk.small.size",
        4096,
        Rule::BulkClassOrder,
    );
    let zero_small = BulkConfig {
        small: BulkClass { slots: 1, size: 0 },
        ..d
    };
    check(zero_small, "bulk.small.size", 0, Rule::BulkSlotSize);
    let many = BulkConfig {
        small: BulkClass {
            slots: 4093,
            size: 64,
        },
        ..d
    };
    check(
        many,
        "bulk.small.slots + bulk.large.slots",
        4097,
        Rule::BulkSlotCount,
    );
    // The edges that are allowed: 1 MiB slots, no slots at all, one class only.
    for ok in [
        large(1 << 20),
        BulkConfig::NONE,
        BulkConfig {
            small: BulkClass { slots: 0, size: 0 },
            ..d
        },
    ] {
        let s = SystemSpec { bulk: ok, ..base };
        assert_eq!(s.validate(), Ok(()), "{ok:?}");
    }
}

/// A payload whose every byte depends on its sequence number, and its checksum.
fn fill(seq: u64, bytes: &mut [u8]) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (seq.wrapping_mul(31) as usize ^ i.wrapping_mul(7)) as u8;
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What travels in the ring: the reference, and the sender's sequence number, length and
/// checksum of the payload so the receiver can check it arrived whole.
#[derive(Clone, Copy)]
struct Envelope {
    r: Option<BulkRef>,
    seq: u64,
    len: usize,
    sum: u64,
}

/// Payload lengths, cycled (Miri interprets every byte: smaller there, same classes).
const SIZES: [usize; 4] = if cfg!(miri) {
    [97, 4096, 100, 4097]
} else {
    [97, 4096, 100, 66 * 1024]
};

fn sender(owner: &mut BulkOwner<'_>, tx: &mut tina_core::ring::Producer<'_, Envelope>, count: u64) {
    let mut seq = 0;
    while seq < count {
        // Every fourth message is small (no slot), to check the order across both kinds.
        let len = SIZES[(seq % 4) as usize];
        let mut env = Envelope {
            r: None,
            seq,
            len,
            sum: 0,
        };
        if seq % 5 != 4 {
            let draft = match owner.alloc(len) {
                Ok(d) => d,
                Err(BulkError::Exhausted) => {
                    tx.publish();
                    thread::yield_now();
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            let bytes = owner.bytes_mut(draft).unwrap();
            fill(seq, bytes);
            env.sum = checksum(bytes);
            env.r = owner.lend(draft, ShardId(1));
        }
        while tx.try_push(env).is_err() {
            tx.publish();
            thread::yield_now();
        }
        tx.publish();
        seq += 1;
    }
}

fn receiver(peer: &mut BulkPeer<'_>, rx: &mut tina_core::ring::Consumer<'_, Envelope>, count: u64) {
    let mut next = 0;
    while next < count {
        let Some(env) = rx.pop() else {
            thread::yield_now();
            continue;
        };
        rx.commit();
        assert_eq!(env.seq, next, "in order");
        next += 1;
        let Some(r) = env.r else { continue };
        assert!(peer.accept(r));
        let bytes = peer.bytes(r).unwrap();
        assert_eq!(bytes.len(), env.len);
        assert_eq!(checksum(bytes), env.sum, "message {} intact", env.seq);
        assert!(peer.give_back(r));
    }
}

#[test]
fn bulk_payloads_cross_threads_whole_and_in_order_and_every_slot_comes_back() {
    let c = children();
    let types = [TypeSpec::of::<Actor>("a")];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }; 2];
    let mut s = spec_of(&shards, &types);
    // Few slots, so the sender keeps meeting an exhausted pool.
    s.bulk = BulkConfig {
        small: BulkClass {
            slots: 2,
            size: 4096,
        },
        large: BulkClass {
            slots: 1,
            size: 66 * 1024,
        },
    };
    let count = if cfg!(miri) { 12 } else { 2_000 };
    let needed = bulk_memory_required(&s).unwrap();
    let mut blocks = memory_block(needed);
    let bytes: &mut [MaybeUninit<u8>] = RegionBlock::as_bytes(&mut blocks);
    let mut peer1 = None;
    let mut owner = carve_bulk_pool(&s, ShardId(0), bytes, |to, p| {
        if to == ShardId(1) {
            peer1 = Some(p);
        }
    })
    .unwrap();
    let mut peer1 = peer1.unwrap();
    let pool = owner.pool();
    let mut slots = Slot::<Envelope>::array::<16>();
    let mut ring = Ring::new(&mut slots).unwrap();
    let (mut tx, mut rx) = ring.split();
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            receiver(&mut peer1, &mut rx, count);
            done.store(true, Ordering::Release);
        });
        sender(&mut owner, &mut tx, count);
    });
    assert!(done.load(Ordering::Acquire));
    assert_eq!(pool.in_use(), 0, "every slot came back");
}
