//! Containment and capacity on loopback, both backends: a poisoned connection panics and dies
//! alone; a flood beyond capacity is refused cleanly and counted; a shard recovery tears down
//! connections whose receive is in flight, and their sockets really close (the in-flight
//! operations are cancelled and reclaimed as stale completions).

mod linux_common;

use std::io::Write;
use std::net::SocketAddr;

use linux_common::*;
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart,
    ShardConfig, ShardSpec, SystemSpec, TypeSpec, UserTag,
};
use tina_examples::echo::{Connection, ListenArgs, Listener, POISON_BYTE};

#[test]
fn poisoned_connection_dies_alone_others_keep_echoing() {
    for backend in BACKENDS {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let rt = Running::start(echo_spec(addr, 2, 64), test_config(backend));
        let mut healthy: Vec<_> = (0..10).map(|_| connect(addr)).collect();
        let mut back = [0u8; 512];
        for s in healthy.iter_mut() {
            echo_once(s, b"before", &mut back).expect("echo before the poison");
        }
        let mut victim = connect(addr);
        echo_once(&mut victim, b"fine so far", &mut back).expect("victim echoes first");
        victim.write_all(&[POISON_BYTE, 1, 2, 3]).unwrap();
        assert!(
            closed_by_peer(&mut victim),
            "{backend:?}: the poisoned connection must be closed by the server"
        );
        for (k, s) in healthy.iter_mut().enumerate() {
            let msg = format!("after the poison {k}");
            echo_once(s, msg.as_bytes(), &mut back).expect("healthy connection still echoes");
            assert_eq!(&back[..msg.len()], msg.as_bytes());
        }
        let stats = rt.stats_when(|st| st.iter().map(|s| s.counters.crashes).sum::<u64>() >= 1);
        let panics: u64 = stats.iter().map(|s| s.counters.panics).sum();
        let crashes: u64 = stats.iter().map(|s| s.counters.crashes).sum();
        assert_eq!(panics, 1, "{backend:?}: exactly one handler panicked");
        assert_eq!(crashes, 1, "{backend:?}: exactly one isolate crashed");
        drop(healthy);
        let report = rt.stop();
        assert!(report.clean);
    }
}

#[test]
fn connection_flood_beyond_capacity_is_refused_and_counted() {
    const CAPACITY: u32 = 16;
    const FLOOD: usize = 60;
    for backend in BACKENDS {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let rt = Running::start(echo_spec(addr, 1, CAPACITY), test_config(backend));
        let mut back = [0u8; 64];
        let mut accepted: Vec<_> = (0..CAPACITY).map(|_| connect(addr)).collect();
        for s in accepted.iter_mut() {
            echo_once(s, b"accepted", &mut back).expect("within capacity echoes");
        }
        let mut refused = 0;
        for _ in 0..FLOOD {
            let mut s = connect(addr);
            // The kernel completes the handshake; the server then closes the socket at once.
            if closed_by_peer(&mut s) {
                refused += 1;
            }
        }
        assert_eq!(
            refused, FLOOD,
            "{backend:?}: every connection over capacity is closed"
        );
        for (k, s) in accepted.iter_mut().enumerate() {
            let msg = format!("still here {k}");
            echo_once(s, msg.as_bytes(), &mut back).expect("accepted connections unaffected");
            assert_eq!(&back[..msg.len()], msg.as_bytes());
        }
        let stats = rt.stats_when(|st| st[0].counters.spawn_failures >= FLOOD as u64);
        let c = &stats[0].counters;
        assert_eq!(
            c.spawn_failures, FLOOD as u64,
            "{backend:?}: every refusal counted"
        );
        assert_eq!(c.panics, 0);
        assert_eq!(stats[0].live_isolates, 1 + CAPACITY);
        drop(accepted);
        let report = rt.stop();
        assert!(report.clean);
    }
}

const BOOM: UserTag = UserTag::new(0x45);

/// Crashes one second after it starts; its group has no restart budget, so the crash
/// escalates to a whole-shard recovery.
struct Bomb;

impl Isolate for Bomb {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(1_000), BOOM)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((Bomb, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag() == BOOM.into() {
            return Effect::Crash(CrashReason("boom"));
        }
        Effect::Receive
    }
}

#[test]
fn shard_recovery_closes_connections_with_a_receive_in_flight() {
    for backend in BACKENDS {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let types: &'static [TypeSpec] = Box::leak(Box::new([
            TypeSpec::of::<Listener>("listener"),
            TypeSpec::of::<Connection>("connection").capacity(16),
            TypeSpec::of::<Bomb>("bomb"),
        ]));
        let children: &'static [ChildSpec<'static>] = Box::leak(Box::new([
            ChildSpec::isolate::<Listener>(&ListenArgs::new(addr, 64), Restart::Permanent),
            ChildSpec::isolate::<Bomb>(&(), Restart::Permanent),
        ]));
        let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([ShardSpec {
            root: GroupSpec::one_for_one(children)
                .dynamic(16)
                .budget(0, Duration::from_millis(60_000)),
        }]));
        let mut spec = SystemSpec::new(shards, types);
        spec.shard = ShardConfig {
            io_buffer_count: 64,
            io_submissions_per_tick_max: 64,
            ..ShardConfig::DEFAULT
        };
        let spec: &'static SystemSpec<'static> = Box::leak(Box::new(spec));
        let rt = Running::start(spec, test_config(backend));
        let mut clients: Vec<_> = (0..5).map(|_| connect(addr)).collect();
        let mut back = [0u8; 16];
        for s in clients.iter_mut() {
            echo_once(s, b"parked", &mut back).expect("echo before the recovery");
            // Each connection is now parked on a receive in flight.
            s.set_read_timeout(Some(std::time::Duration::from_secs(4)))
                .unwrap();
        }
        for (k, s) in clients.iter_mut().enumerate() {
            assert!(
                closed_by_peer(s),
                "{backend:?}: connection {k} must be closed by the recovery, not left open"
            );
        }
        let report = rt.stop();
        let c = &report.stats[0].counters;
        assert!(c.shard_recoveries >= 1, "{backend:?}: {c:?}");
        assert!(
            c.io_stale_completions >= 5,
            "{backend:?}: the cancelled receives come back as stale completions: {c:?}"
        );
    }
}
