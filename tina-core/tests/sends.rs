//! Every send result, the system reserve, stale handles and spawn errors.
mod common;
use common::*;
use tina_core::testing::TestPlatform;
use tina_core::*;

#[test]
fn send_reports_mailbox_full_at_capacity() {
    let types = [TypeSpec::of::<Actor>("actor")
        .capacity(2)
        .mailbox_capacity(4)];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::isolate::<Actor>(&args(1), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = SystemSpec::new(&shards, &types);
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        rig.send(hs[0], cmd_to(op::SEND_PINGS, hs[1], 6, 0));
        rig.step();
        let results = &rig.actor(hs[0]).last_send;
        assert_eq!(results[..4], [Ok(()); 4]);
        assert_eq!(results[4..], [Err(SendError::MailboxFull); 2]);
        assert_eq!(rig.shard.counters().mailbox_full, 2);
        rig.step_until_idle(5);
        let got: Vec<u64> = rig.actor(hs[1]).seen.iter().map(|s| s.n).collect();
        assert_eq!(got, [0, 1, 2, 3], "accepted messages arrive, in order");
    });
}

#[test]
fn user_flood_exhausts_the_pool_but_the_system_reserve_keeps_timers_and_replies_flowing() {
    let types = [TypeSpec::of::<Actor>("actor")
        .capacity(4)
        .mailbox_capacity(1000)];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent), // flooder
        ChildSpec::isolate::<Actor>(&args(1), Restart::Permanent), // victim with a timer
        ChildSpec::isolate::<Actor>(&args(2), Restart::Permanent), // caller
        ChildSpec::isolate::<Actor>(&args(3), Restart::Permanent), // busy callee
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard.message_pool_size = 200;
    spec.shard.system_reserve = Some(10);
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        let (flooder, victim, caller, callee) = (hs[0], hs[1], hs[2], hs[3]);
        let mut busy = cmd(op::YIELD);
        busy.count = 5;
        rig.send(callee, busy);
        rig.send(victim, cmd_to(op::START_TIMER, victim, 0, 3));
        rig.send(caller, cmd_to(op::CALL, callee, 7, 50));
        rig.step();
        // The victim now also starts yielding so its mailbox fills without being drained.
        let mut busy = cmd(op::YIELD);
        busy.count = 5;
        rig.send(victim, busy);
        rig.step();
        rig.send(flooder, cmd_to(op::SEND_PINGS, victim, 400, 0));
        rig.step();
        let results = &rig.actor(flooder).last_send;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let exhausted = results
            .iter()
            .filter(|r| **r == Err(SendError::PoolExhausted))
            .count();
        assert_eq!(ok + exhausted, 400);
        assert!(exhausted > 0, "the flood must hit the pool limit");
        let (free, _, _) = rig.shard.pool_usage();
        assert!(
            free >= 9,
            "user traffic left the reserve alone: {free} free"
        );
        rig.advance_to(30);
        let v = &rig.actor(victim).seen;
        assert!(
            v.iter().any(|s| s.tag == TIMER_TAG.get()),
            "the timer fired despite the flood"
        );
        let c = rig.actor(caller).seen.last().copied().unwrap();
        assert!(
            c.is_reply && c.n == 8,
            "the reply arrived despite the flood: {c:?}"
        );
        assert_eq!(rig.shard.counters().pool_exhausted, exhausted as u64);
    });
}

#[test]
fn a_stale_handle_never_reaches_the_slot_s_new_occupant() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(2)];
    let children = [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(1),
    }];
    let spec = SystemSpec::new(&shards, &types);
    with_rig(&spec, |rig| {
        let parent = rig.actors()[0];
        rig.send(parent, cmd_to(op::SPAWN, Handle::NONE, 0, 100));
        rig.step();
        let first = rig.actor(parent).last_spawn.unwrap().unwrap();
        rig.send(first, cmd(op::DONE));
        rig.step();
        rig.send(parent, cmd_to(op::SPAWN, Handle::NONE, 0, 200));
        rig.step();
        let second = rig.actor(parent).last_spawn.unwrap().unwrap();
        assert_eq!(first.slot(), second.slot(), "the only free slot is reused");
        assert!(second.generation() > first.generation());
        assert_eq!(
            rig.shard.deliver(first, &Outgoing::new(&Ping { n: 1 })),
            Err(SendError::StaleHandle)
        );
        rig.send(parent, cmd_to(op::SEND_PINGS, first, 1, 0));
        rig.step_until_idle(5);
        assert_eq!(rig.actor(parent).last_send, [Err(SendError::StaleHandle)]);
        assert!(
            rig.actor(second).seen.is_empty(),
            "nothing reached the new occupant"
        );
        assert_eq!(rig.actor(second).incarnation_marker, 200);
    });
}

#[test]
fn spawn_reports_arena_full_group_full_and_init_failed() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(3)];
    let children = [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(3),
    }];
    let spec = SystemSpec::new(&shards, &types);
    with_rig(&spec, |rig| {
        let p = rig.actors()[0];
        let spawn = |rig: &mut Rig<'_>, fail: u32| {
            rig.send(p, cmd_to(op::SPAWN, Handle::NONE, fail, 9));
            rig.step();
            rig.actor(p).last_spawn.unwrap()
        };
        assert_eq!(spawn(rig, 1), Err(SpawnError::InitFailed));
        assert!(
            spawn(rig, 0).is_ok(),
            "a failed init released its slot and group room"
        );
        assert!(spawn(rig, 0).is_ok());
        assert_eq!(
            spawn(rig, 0),
            Err(SpawnError::ArenaFull),
            "3 slots: parent + 2"
        );
        assert_eq!(rig.shard.counters().spawn_failures, 2);
    });
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(1),
    }];
    let spec = SystemSpec::new(&shards, &types);
    with_rig(&spec, |rig| {
        let p = rig.actors()[0];
        rig.send(p, cmd_to(op::SPAWN, Handle::NONE, 0, 1));
        rig.step();
        assert!(rig.actor(p).last_spawn.unwrap().is_ok());
        rig.send(p, cmd_to(op::SPAWN, Handle::NONE, 0, 2));
        rig.step();
        assert_eq!(rig.actor(p).last_spawn.unwrap(), Err(SpawnError::GroupFull));
    });
}

#[test]
fn cross_shard_sends_use_the_transport_and_report_its_refusals() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(2)];
    let children = [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
    ];
    let spec = SystemSpec::new(&shards, &types);
    let mut platform = TestPlatform::default();
    platform.transport.capacity = Some(2);
    platform.transport.down = vec![ShardId(2)];
    with_rig_on(&spec, 0, platform, |rig| {
        let me = rig.actors()[0];
        let remote = Handle::new(ShardId(1), TypeId(0), 0, 1).unwrap();
        let quarantined = Handle::new(ShardId(2), TypeId(0), 0, 1).unwrap();
        let nowhere = Handle::new(ShardId(9), TypeId(0), 0, 1).unwrap();
        rig.send(me, cmd_to(op::SEND_PINGS, remote, 3, 0));
        rig.send(me, cmd_to(op::SEND_PINGS, quarantined, 1, 0));
        rig.send(me, cmd_to(op::SEND_PINGS, nowhere, 1, 0));
        rig.step();
        assert_eq!(
            rig.actor(me).last_send,
            [
                Ok(()),
                Ok(()),
                Err(SendError::MailboxFull),
                Err(SendError::StaleHandle),
                Err(SendError::StaleHandle),
            ]
        );
        let c = rig.shard.counters();
        assert_eq!((c.sends_remote, c.ring_full, c.quarantine_drops), (2, 1, 1));
        let t = &rig.shard.platform().transport;
        assert_eq!(t.published.len(), 2, "published at the end of the tick");
        assert!(t.staged.is_empty());
        assert_eq!(t.publishes, 1, "one publish per tick");
        // Inbound: a message for a live isolate is queued; one for a stale handle is dropped.
        let stale = Handle::new(ShardId(0), TypeId(0), 0, 99).unwrap();
        let mut msgs = Vec::new();
        for to in [me, stale] {
            let mut m = rig.shard.platform().transport.published[0].1;
            m = relabel(m, to);
            msgs.push(m);
        }
        rig.shard.platform().transport.inbound.extend(msgs);
        rig.step_until_idle(5);
        assert_eq!(rig.actor(me).seen.len(), 4, "3 commands + 1 inbound ping");
        assert_eq!(rig.shard.counters().inbound_delivered, 1);
        assert_eq!(rig.shard.counters().stale_deliveries, 2);
    });
}

/// Re-addresses a published envelope (what a peer shard's transport would hand over).
fn relabel(m: Message, to: Handle) -> Message {
    let ping = m.decode::<Ping>().unwrap();
    tina_core::testing::envelope(m.src(), to, &Outgoing::new(&ping))
}
