//! Large messages between two shards stepped by hand over the core's `RingTransport`, with
//! each shard's bulk pool attached (`Shard::attach_bulk`): the same `Ctx` transfer calls as
//! inside one shard, payloads checksummed, order kept with small messages, exhaustion and
//! recovery, and a receiver torn down with unread large messages returns their slots.
mod common;
use std::mem::MaybeUninit;

use tina_core::bulk::{BulkClass, BulkConfig, BulkPeer, BulkPorts};
use tina_core::memory::RegionBlock;
use tina_core::platform::{Bundle, NoIo};
use tina_core::ring::{Ring, Slot};
use tina_core::testing::{CatchPanic, TestLog, region_for};
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::wiring::carve_bulk_pool;
use tina_core::*;

struct NoWake;
impl Wake for NoWake {
    fn wake(&self, _peer: ShardId) {}
}

type RingPlatform<'r> = Bundle<RingTransport<'r, NoWake>, NoIo, CatchPanic, TestLog>;

/// A command: send message `seq` to `to`, inline (`len == 0`) or as a payload of `len` bytes
/// in a transfer. `crash_at` makes a receiver crash when it handles that sequence number.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Go {
    to: u64,
    seq: u32,
    len: u32,
}
impl Payload for Go {
    const TAG: UserTag = UserTag::new(0x60);
}

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Small {
    seq: u32,
}
impl Payload for Small {
    const TAG: UserTag = UserTag::new(0x61);
}

const BIG: UserTag = UserTag::new(0x62);
const CRASH_SEQ: u32 = 1000;

fn byte(seq: u32, i: usize) -> u8 {
    (seq.wrapping_mul(131) as usize ^ i.wrapping_mul(7) ^ (i >> 8)) as u8
}

/// What a node saw: `(seq, len, intact)` per message, and the results of its sends.
#[derive(Default)]
struct Node {
    seen: Vec<(u32, usize, bool)>,
    results: Vec<String>,
    kept: Option<TransferBuf>,
}

/// `Go::len` that asks for the reference kept from the last large message to be read again.
const READ_KEPT: u32 = u32::MAX;

impl Isolate for Node {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Node::default(), Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if let Some(t) = msg.transfer() {
            let data = ctx.transfer_data(t).expect("readable during the call");
            let seq = u32::from_le_bytes(data[..4].try_into().unwrap());
            let intact = data[4..]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == byte(seq, i + 4));
            self.seen.push((seq, data.len(), intact));
            self.kept = Some(t);
            if seq == CRASH_SEQ {
                return Effect::Crash(CrashReason("told to"));
            }
            return Effect::Receive;
        }
        if let Some(s) = msg.decode::<Small>() {
            self.seen.push((s.seq, 0, true));
        }
        let Some(go) = msg.decode::<Go>() else {
            return Effect::Receive;
        };
        let to = Handle::from_bits(go.to);
        if go.len == READ_KEPT {
            let kept = self.kept.map(|t| ctx.transfer_data(t).map(<[u8]>::len));
            self.results.push(format!("{kept:?}"));
            return Effect::Receive;
        }
        if go.len == 0 {
            let r = ctx.send(to, &Small { seq: go.seq });
            self.results.push(format!("{r:?}"));
            return Effect::Receive;
        }
        let t = match ctx.transfer_alloc(go.len as usize) {
            Ok(t) => t,
            Err(e) => {
                self.results.push(format!("{e:?}"));
                return Effect::Receive;
            }
        };
        let bytes = ctx.transfer_mut(t).unwrap();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = byte(go.seq, i);
        }
        bytes[..4].copy_from_slice(&go.seq.to_le_bytes());
        let r = ctx.send_transfer(to, BIG, t);
        self.results.push(format!("{r:?}"));
        Effect::Receive
    }
}

fn block(bytes: usize) -> Vec<RegionBlock> {
    vec![RegionBlock::UNINIT; RegionBlock::blocks_for(bytes)]
}

/// Two shards of one `Node` each over real rings and real bulk pools, handed to `body`.
fn with_two_shards(
    bulk: BulkConfig,
    body: impl FnOnce(&mut Shard<'_, RingPlatform<'_>>, &mut Shard<'_, RingPlatform<'_>>),
) {
    let types = [TypeSpec::of::<Node>("node").capacity(2)];
    let children = [ChildSpec::isolate::<Node>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }; 2];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.bulk = bulk;
    let spec = &spec;
    let needed = bulk_memory_required(spec).unwrap();
    let (mut b0, mut b1) = (block(needed), block(needed));
    let mut peers: [[Option<BulkPeer<'_>>; 2]; 2] = [[None, None], [None, None]];
    let mut owners = Vec::new();
    for (owner, mem) in [(0u8, &mut b0), (1, &mut b1)] {
        let bytes: &mut [MaybeUninit<u8>] = RegionBlock::as_bytes(mem);
        let o = carve_bulk_pool(spec, ShardId(owner), bytes, |to, p| {
            peers[usize::from(to.0)][usize::from(owner)] = Some(p);
        })
        .unwrap();
        owners.push(o);
    }
    let [peers0, peers1] = &mut peers;
    let owner1 = owners.pop().unwrap();
    let owner0 = owners.pop().unwrap();
    let ports0 = BulkPorts::new(ShardId(0), owner0, peers0).unwrap();
    let ports1 = BulkPorts::new(ShardId(1), owner1, peers1).unwrap();
    let mut s01 = Slot::<Message>::array::<16>();
    let mut s10 = Slot::<Message>::array::<16>();
    let mut r01 = Ring::new(&mut s01).unwrap();
    let mut r10 = Ring::new(&mut s10).unwrap();
    let (p01, c01) = r01.split();
    let (p10, c10) = r10.split();
    let links = [ShardLink::new(), ShardLink::new()];
    let (mut out0, mut in0) = ([None, Some(p01)], [None, Some(c10)]);
    let (mut out1, mut in1) = ([Some(p10), None], [Some(c01), None]);
    let (mut seen0, mut seen1) = ([0u32; 2], [0u32; 2]);
    let t0 = RingTransport::new(ShardId(0), &mut out0, &mut in0, &links, &mut seen0, NoWake);
    let t1 = RingTransport::new(ShardId(1), &mut out1, &mut in1, &links, &mut seen1, NoWake);
    let mut m0 = region_for(spec, ShardId(0));
    let mut m1 = region_for(spec, ShardId(1));
    let platform = |transport| RingPlatform {
        transport,
        io: NoIo,
        trap: CatchPanic,
        log: TestLog::default(),
    };
    let mut sh0 = Shard::new(spec, ShardId(0), m0.bytes(), platform(t0)).unwrap();
    let mut sh1 = Shard::new(spec, ShardId(1), m1.bytes(), platform(t1)).unwrap();
    assert!(sh0.attach_bulk(ports0).is_ok());
    assert!(sh1.attach_bulk(ports1).is_ok());
    body(&mut sh0, &mut sh1);
}

fn node(shard: &Shard<'_, RingPlatform<'_>>) -> Handle {
    shard.handles::<Node>().next().unwrap()
}

fn go(shard: &mut Shard<'_, RingPlatform<'_>>, to: Handle, seq: u32, len: u32) {
    let cmd = Go {
        to: to.to_bits(),
        seq,
        len,
    };
    shard.deliver(node(shard), &Outgoing::new(&cmd)).unwrap();
}

fn step(shard: &mut Shard<'_, RingPlatform<'_>>, tick: &mut u64) {
    *tick += 1;
    shard.step(Instant::from_ticks(*tick));
    shard.check_invariants().unwrap();
}

/// The largest payload: 66 KiB (the default large slot); Miri interprets every byte, so there
/// the large slots are 8 KiB.
const MAX: u32 = if cfg!(miri) { 8 * 1024 } else { 66 * 1024 };

/// The default pools, with the large slots `MAX` bytes.
fn defaults() -> BulkConfig {
    BulkConfig {
        large: BulkClass {
            size: MAX,
            ..BulkConfig::DEFAULT.large
        },
        ..BulkConfig::DEFAULT
    }
}

#[test]
fn large_messages_cross_shards_whole_and_in_order_with_small_ones() {
    with_two_shards(defaults(), |sh0, sh1| {
        let to = node(sh1);
        let lens = [0, 97, 4096, MAX, 0, 4096, 97, MAX, 0];
        for (seq, &len) in lens.iter().enumerate() {
            go(sh0, to, seq as u32, len);
        }
        let mut tick = 0;
        for _ in 0..4 {
            step(sh0, &mut tick);
            step(sh1, &mut tick);
        }
        let sender = sh0.state::<Node>(node(sh0)).unwrap();
        assert!(
            sender.results.iter().all(|r| r == "Ok(())"),
            "{:?}",
            sender.results
        );
        let receiver = sh1.state::<Node>(to).unwrap();
        let expected: Vec<(u32, usize, bool)> = lens
            .iter()
            .enumerate()
            .map(|(seq, &len)| (seq as u32, len as usize, true))
            .collect();
        assert_eq!(receiver.seen, expected);
        assert_eq!(
            (sh0.bulk_in_use(), sh1.bulk_in_use()),
            (0, 0),
            "every slot came back"
        );
        // Kept past its call, the reference reads nothing (its slot went back).
        go(sh1, to, 0, READ_KEPT);
        step(sh1, &mut tick);
        let results = &sh1.state::<Node>(to).unwrap().results;
        assert_eq!(results.last().map(String::as_str), Some("Some(Err(Stale))"));
        // The same calls inside one shard.
        go(sh1, to, 50, 4096);
        step(sh1, &mut tick);
        step(sh1, &mut tick);
        let receiver = sh1.state::<Node>(to).unwrap();
        assert_eq!(receiver.seen.last(), Some(&(50, 4096, true)));
        assert_eq!(sh1.bulk_in_use(), 0);
    });
}

#[test]
fn exhaustion_is_reported_at_once_and_recovers_when_the_receiver_drains() {
    let bulk = BulkConfig {
        small: BulkClass {
            slots: 2,
            size: 4096,
        },
        large: BulkClass {
            slots: 1,
            size: MAX,
        },
    };
    with_two_shards(bulk, |sh0, sh1| {
        let to = node(sh1);
        for seq in 0..4 {
            go(sh0, to, seq, 4096);
        }
        let mut tick = 0;
        step(sh0, &mut tick);
        let results = &sh0.state::<Node>(node(sh0)).unwrap().results;
        // Two small slots, then the large one, then none: refused at once.
        assert_eq!(results, &["Ok(())", "Ok(())", "Ok(())", "Exhausted"]);
        assert_eq!(sh0.bulk_in_use(), 3);
        assert!(sh0.counters().transfer_exhausted >= 1);
        step(sh1, &mut tick);
        assert_eq!(sh0.bulk_in_use(), 0, "the receiver gave every slot back");
        go(sh0, to, 4, MAX);
        step(sh0, &mut tick);
        step(sh1, &mut tick);
        let seen = &sh1.state::<Node>(to).unwrap().seen;
        let seqs: Vec<u32> = seen.iter().map(|s| s.0).collect();
        assert_eq!(seqs, [0, 1, 2, 4]);
        assert!(seen.iter().all(|s| s.2));
        assert_eq!(sh0.bulk_in_use(), 0);
    });
}

#[test]
fn a_receiver_torn_down_with_unread_large_messages_returns_their_slots() {
    with_two_shards(defaults(), |sh0, sh1| {
        let to = node(sh1);
        // The first one crashes the receiver; the other three are still in its mailbox.
        go(sh0, to, CRASH_SEQ, 4096);
        for seq in 1..4 {
            go(sh0, to, seq, MAX - 1024 * seq);
        }
        let mut tick = 0;
        step(sh0, &mut tick);
        assert_eq!(sh0.bulk_in_use(), 4);
        step(sh1, &mut tick);
        step(sh1, &mut tick);
        assert_eq!(
            sh0.bulk_in_use(),
            0,
            "no slot leaked with the torn-down mailbox"
        );
        let restarted = node(sh1);
        assert_ne!(restarted, to, "the receiver was restarted");
        assert!(sh1.state::<Node>(restarted).unwrap().seen.is_empty());
        // A stale handle: the send fails, the slot stays the sender's and is freed after the call.
        go(sh0, to, 9, 4096);
        step(sh0, &mut tick);
        step(sh1, &mut tick);
        step(sh0, &mut tick);
        assert_eq!((sh0.bulk_in_use(), sh1.bulk_in_use()), (0, 0));
    });
}

#[test]
fn the_payload_too_large_error_says_how_to_send_more() {
    let e = Outgoing::from_bytes(BIG, &[0; 97]).unwrap_err();
    let text = e.to_string();
    for needle in [
        "97 bytes",
        "transfer_alloc",
        "send_transfer",
        "any shard",
        "spec.bulk.large.size",
    ] {
        assert!(text.contains(needle), "{text}");
    }
}
