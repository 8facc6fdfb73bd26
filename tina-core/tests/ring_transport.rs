//! Shards talking through real SPSC rings with the core's `RingTransport`: stepped by hand in
//! one thread (deterministic), and on two threads with the sleep/wake protocol.
mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tina_core::platform::{Bundle, NoIo, PeerEvent, Transport};
use tina_core::ring::{Ring, Slot};
use tina_core::testing::{CatchPanic, TestLog, region_for};
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::*;

#[derive(Default)]
struct CountWakes(AtomicUsize);
impl Wake for &CountWakes {
    fn wake(&self, _peer: ShardId) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type RingPlatform<'r, W> = Bundle<RingTransport<'r, W>, NoIo, CatchPanic, TestLog>;

fn remote(shard: u8) -> Handle {
    Handle::new(ShardId(shard), TypeId(0), 0, 1).unwrap()
}

#[test]
fn two_shards_call_reply_and_overflow_through_rings_stepped_by_hand() {
    let a = actors(1, Restart::Permanent);
    let shards = [a.shards()[0], a.shards()[0]];
    let spec = a.spec(&shards);
    let mut s01 = Slot::<Message>::array::<16>();
    let mut s10 = Slot::<Message>::array::<16>();
    let mut r01 = Ring::new(&mut s01).unwrap();
    let mut r10 = Ring::new(&mut s10).unwrap();
    let (p01, c01) = r01.split();
    let (p10, c10) = r10.split();
    let links = [ShardLink::new(), ShardLink::new()];
    let wakes = CountWakes::default();
    let (mut out0, mut in0) = ([None, Some(p01)], [None, Some(c10)]);
    let (mut out1, mut in1) = ([Some(p10), None], [Some(c01), None]);
    let (mut seen0, mut seen1) = ([0u32; 2], [0u32; 2]);
    let t0 = RingTransport::new(ShardId(0), &mut out0, &mut in0, &links, &mut seen0, &wakes);
    let t1 = RingTransport::new(ShardId(1), &mut out1, &mut in1, &links, &mut seen1, &wakes);
    let mut m0 = region_for(&spec, ShardId(0));
    let mut m1 = region_for(&spec, ShardId(1));
    let platform = |transport| RingPlatform {
        transport,
        io: NoIo,
        trap: CatchPanic,
        log: TestLog::default(),
    };
    let mut sh0 = Shard::new(&spec, ShardId(0), m0.bytes(), platform(t0)).unwrap();
    let mut sh1 = Shard::new(&spec, ShardId(1), m1.bytes(), platform(t1)).unwrap();
    let caller = sh0.handles::<Actor>().next().unwrap();
    let mut now = 0;
    let mut step_both = |sh0: &mut Shard<'_, _>, sh1: &mut Shard<'_, _>| {
        now += 1;
        sh0.step(Instant::from_ticks(now));
        sh1.step(Instant::from_ticks(now));
        sh0.check_invariants().unwrap();
        sh1.check_invariants().unwrap();
    };
    // A call across shards gets its reply.
    sh0.deliver(caller, &Outgoing::new(&cmd_to(op::CALL, remote(1), 9, 50)))
        .unwrap();
    for _ in 0..4 {
        step_both(&mut sh0, &mut sh1);
    }
    let last = *sh0.state::<Actor>(caller).unwrap().seen.last().unwrap();
    assert!(
        last.is_reply && last.n == 10 && last.src == remote(1),
        "{last:?}"
    );
    assert_eq!(
        wakes.0.load(Ordering::Relaxed),
        0,
        "nobody sleeps: no wake-ups"
    );
    // 20 sends into a 16-slot ring in one tick: 16 accepted, 4 refused as MailboxFull.
    sh0.deliver(
        caller,
        &Outgoing::new(&cmd_to(op::SEND_PINGS, remote(1), 20, 0)),
    )
    .unwrap();
    step_both(&mut sh0, &mut sh1);
    step_both(&mut sh0, &mut sh1);
    let sent = &sh0.state::<Actor>(caller).unwrap().last_send;
    assert_eq!(sent.iter().filter(|r| r.is_ok()).count(), 16);
    assert_eq!(sent[16..], [Err(SendError::MailboxFull); 4]);
    assert_eq!(sh0.counters().ring_full, 4);
    let callee = sh1.handles::<Actor>().next().unwrap();
    let got: Vec<u64> = sh1.state::<Actor>(callee).unwrap().seen[1..]
        .iter()
        .map(|s| s.n)
        .collect();
    assert_eq!(got, (0..16).collect::<Vec<u64>>(), "in order, intact");
    // A sleeping peer is woken by a publish.
    links[1].prepare_sleep();
    sh0.deliver(
        caller,
        &Outgoing::new(&cmd_to(op::SEND_PINGS, remote(1), 1, 0)),
    )
    .unwrap();
    sh0.step(Instant::from_ticks(100));
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    links[1].woke();
    // A quarantine announced by shard 1 reaches shard 0: its sends fail at once.
    sh1.platform().transport.announce(PeerEvent::Quarantined);
    sh0.step(Instant::from_ticks(101));
    sh0.deliver(
        caller,
        &Outgoing::new(&cmd_to(op::SEND_PINGS, remote(1), 1, 0)),
    )
    .unwrap();
    sh0.step(Instant::from_ticks(102));
    let sent = &sh0.state::<Actor>(caller).unwrap().last_send;
    assert_eq!(sent.last(), Some(&Err(SendError::StaleHandle)));
}

/// Wakes a parked thread.
struct Unpark<'a>(&'a [std::sync::OnceLock<std::thread::Thread>]);
impl Wake for Unpark<'_> {
    fn wake(&self, peer: ShardId) {
        if let Some(t) = self.0[usize::from(peer.0)].get() {
            t.unpark();
        }
    }
}

#[test]
fn two_shard_threads_sleep_when_idle_and_wake_for_messages() {
    let rounds: u32 = if cfg!(miri) { 20 } else { 2_000 };
    let a = actors(1, Restart::Permanent);
    let shards = [a.shards()[0], a.shards()[0]];
    let spec = a.spec(&shards);
    let mut s01 = Slot::<Message>::array::<16>();
    let mut s10 = Slot::<Message>::array::<16>();
    let mut r01 = Ring::new(&mut s01).unwrap();
    let mut r10 = Ring::new(&mut s10).unwrap();
    let (p01, c01) = r01.split();
    let (p10, c10) = r10.split();
    let links = [ShardLink::new(), ShardLink::new()];
    let threads: [std::sync::OnceLock<std::thread::Thread>; 2] = Default::default();
    let (mut out0, mut in0) = ([None, Some(p01)], [None, Some(c10)]);
    let (mut out1, mut in1) = ([Some(p10), None], [Some(c01), None]);
    let (mut seen0, mut seen1) = ([0u32; 2], [0u32; 2]);
    let t0 = RingTransport::new(
        ShardId(0),
        &mut out0,
        &mut in0,
        &links,
        &mut seen0,
        Unpark(&threads),
    );
    let t1 = RingTransport::new(
        ShardId(1),
        &mut out1,
        &mut in1,
        &links,
        &mut seen1,
        Unpark(&threads),
    );
    let spec = &spec;
    let threads = &threads;
    let done = std::sync::atomic::AtomicBool::new(false);
    let done = &done;
    std::thread::scope(|s| {
        // Shard 1 serves calls until shard 0 is done.
        s.spawn(move || {
            threads[1].set(std::thread::current()).unwrap();
            let mut m = region_for(spec, ShardId(1));
            let p = RingPlatform {
                transport: t1,
                io: NoIo,
                trap: CatchPanic,
                log: TestLog::default(),
            };
            let mut sh = Shard::new(spec, ShardId(1), m.bytes(), p).unwrap();
            let mut now = 0;
            while !done.load(Ordering::Acquire) {
                now += 1;
                let r = sh.step(Instant::from_ticks(now));
                if !r.work_remaining {
                    sh.platform().transport.link().prepare_sleep();
                    if !sh.platform().transport.has_inbound() && !done.load(Ordering::Acquire) {
                        std::thread::park();
                    }
                    sh.platform().transport.link().woke();
                }
            }
        });
        // Shard 0 makes `rounds` calls, one at a time, sleeping while it waits.
        threads[0].set(std::thread::current()).unwrap();
        let mut m = region_for(spec, ShardId(0));
        let p = RingPlatform {
            transport: t0,
            io: NoIo,
            trap: CatchPanic,
            log: TestLog::default(),
        };
        let mut sh = Shard::new(spec, ShardId(0), m.bytes(), p).unwrap();
        let caller = sh.handles::<Actor>().next().unwrap();
        let mut now = 0;
        for i in 0..rounds {
            sh.deliver(
                caller,
                &Outgoing::new(&cmd_to(op::CALL, remote(1), i, 1 << 40)),
            )
            .unwrap();
            loop {
                now += 1;
                let r = sh.step(Instant::from_ticks(now));
                let seen = &sh.state::<Actor>(caller).unwrap().seen;
                if seen.last().is_some_and(|s| s.is_reply) && seen.len() == 2 * (i as usize + 1) {
                    break;
                }
                if !r.work_remaining {
                    sh.platform().transport.link().prepare_sleep();
                    if !sh.platform().transport.has_inbound() {
                        std::thread::park();
                    }
                    sh.platform().transport.link().woke();
                }
            }
        }
        let seen = &sh.state::<Actor>(caller).unwrap().seen;
        let replies: Vec<u64> = seen.iter().filter(|s| s.is_reply).map(|s| s.n).collect();
        assert_eq!(replies, (1..=u64::from(rounds)).collect::<Vec<_>>());
        done.store(true, Ordering::Release);
        if let Some(t) = threads[1].get() {
            t.unpark();
        }
    });
}
