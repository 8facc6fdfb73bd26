//! Supervision: strategies × restart types, budgets, escalation, shard recovery, quarantine,
//! dynamic children, init failures, shutdown — stepped by hand.
mod common;
use common::*;
use tina_core::*;

fn ids(rig: &Rig<'_>) -> Vec<u64> {
    rig.actors().iter().map(|&h| rig.actor(h).args.id).collect()
}

fn handle_of(rig: &Rig<'_>, id: u64) -> Handle {
    *rig.actors()
        .iter()
        .find(|&&h| rig.actor(h).args.id == id)
        .unwrap_or_else(|| panic!("actor {id} is not running"))
}

fn three(restart: Restart) -> [ChildSpec<'static>; 3] {
    [0, 1, 2].map(|i| ChildSpec::isolate::<Actor>(&args(i), restart))
}

fn group_spec<'s>(types: &'s [TypeSpec], shards: &'s [ShardSpec<'s>]) -> SystemSpec<'s> {
    let mut spec = SystemSpec::new(shards, types);
    spec.shard.message_pool_size = 256;
    spec.shard.timer_entries = 64;
    spec.shard.io_buffer_count = 2;
    spec.shard.io_buffer_size = 64;
    spec
}

#[test]
fn static_children_start_in_order_at_boot() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    take_events();
    with_rig(&group_spec(&types, &shards), |rig| {
        assert_eq!(take_events(), [('i', 0), ('i', 1), ('i', 2)]);
        assert_eq!(ids(rig), [0, 1, 2]);
    });
    assert_eq!(
        take_events().len(),
        3,
        "dropping the shard drops its isolates"
    );
}

#[test]
fn restart_types_decide_after_done_and_after_crash() {
    for (restart, after_done, after_crash) in [
        (Restart::Permanent, true, true),
        (Restart::Transient, false, true),
        (Restart::Temporary, false, false),
    ] {
        for (how, expected) in [(op::DONE, after_done), (op::CRASH, after_crash)] {
            let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
            let c = three(restart);
            let shards = [ShardSpec {
                root: GroupSpec::one_for_one(&c),
            }];
            with_rig(&group_spec(&types, &shards), |rig| {
                let old = handle_of(rig, 1);
                rig.send(old, cmd(how));
                rig.step();
                assert!(!rig.shard.is_live(old));
                let running = ids(rig).contains(&1);
                assert_eq!(running, expected, "{restart:?} after op {how}");
                if expected {
                    let new = handle_of(rig, 1);
                    assert_ne!(new, old, "a restart gets a new handle");
                    assert!(rig.actor(new).seen.is_empty(), "no old state survives");
                    assert_eq!(rig.shard.counters().restarts, 1);
                }
            });
        }
    }
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        let before: Vec<Handle> = [0, 1, 2].map(|i| handle_of(rig, i)).to_vec();
        take_events();
        rig.send(before[1], cmd(op::CRASH));
        rig.step();
        assert_eq!(take_events(), [('d', 1), ('i', 1)]);
        assert_eq!(handle_of(rig, 0), before[0]);
        assert_eq!(handle_of(rig, 2), before[2]);
        assert_ne!(handle_of(rig, 1), before[1]);
    });
}

#[test]
fn one_for_all_stops_siblings_in_reverse_and_restarts_all_in_order() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).strategy(Strategy::OneForAll),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        let before: Vec<Handle> = [0, 1, 2].map(|i| handle_of(rig, i)).to_vec();
        take_events();
        rig.send(before[1], cmd(op::CRASH));
        rig.step();
        assert_eq!(
            take_events(),
            [('d', 1), ('d', 2), ('d', 0), ('i', 0), ('i', 1), ('i', 2)]
        );
        for (i, old) in before.iter().enumerate() {
            assert_ne!(handle_of(rig, i as u64), *old);
            assert!(!rig.shard.is_live(*old));
        }
    });
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_the_ones_after_it() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).strategy(Strategy::RestForOne),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        let before: Vec<Handle> = [0, 1, 2].map(|i| handle_of(rig, i)).to_vec();
        take_events();
        rig.send(before[1], cmd(op::CRASH));
        rig.step();
        assert_eq!(take_events(), [('d', 1), ('d', 2), ('i', 1), ('i', 2)]);
        assert_eq!(handle_of(rig, 0), before[0]);
    });
}

#[test]
fn temporary_children_are_not_brought_back_by_a_group_restart() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Temporary),
        ChildSpec::isolate::<Actor>(&args(1), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).strategy(Strategy::OneForAll),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        rig.send(handle_of(rig, 0), cmd(op::DONE));
        rig.step();
        rig.send(handle_of(rig, 1), cmd(op::CRASH));
        rig.step();
        assert_eq!(ids(rig), [1]);
    });
}

#[test]
fn a_group_over_budget_escalates_and_its_parent_restarts_it_fresh() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let inner = [
        ChildSpec::isolate::<Actor>(&args(10), Restart::Permanent),
        ChildSpec::isolate::<Actor>(&args(11), Restart::Permanent),
    ];
    let root = [
        ChildSpec::Group(GroupSpec::one_for_one(&inner).budget(2, Duration::from_millis(100))),
        ChildSpec::isolate::<Actor>(&args(20), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&root),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        let bystander = handle_of(rig, 20);
        let sibling = handle_of(rig, 11);
        for _ in 0..2 {
            rig.send(handle_of(rig, 10), cmd(op::CRASH));
            rig.step();
        }
        assert_eq!(handle_of(rig, 11), sibling, "within budget: one-for-one");
        take_events();
        rig.send(handle_of(rig, 10), cmd(op::CRASH));
        rig.step();
        // Third crash in the window: the inner group gives up (stops 11), the root restarts
        // the whole group from its spec.
        assert_eq!(take_events(), [('d', 10), ('d', 11), ('i', 10), ('i', 11)]);
        assert_ne!(handle_of(rig, 11), sibling);
        assert_eq!(
            handle_of(rig, 20),
            bystander,
            "the root's other child is untouched"
        );
        assert_eq!(rig.shard.counters().shard_recoveries, 0);
        // The restarted group has a fresh budget: two more crashes are absorbed locally.
        let sibling = handle_of(rig, 11);
        for _ in 0..2 {
            rig.send(handle_of(rig, 10), cmd(op::CRASH));
            rig.step();
        }
        assert_eq!(handle_of(rig, 11), sibling);
    });
}

#[test]
fn restarts_outside_the_window_do_not_count() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).budget(1, Duration::from_millis(10)),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        for _ in 0..5 {
            rig.send(handle_of(rig, 0), cmd(op::CRASH));
            rig.step();
            rig.advance_to(rig.now + 20);
        }
        assert_eq!(rig.shard.counters().restarts, 5);
        assert_eq!(rig.shard.counters().shard_recoveries, 0);
    });
}

#[test]
fn the_root_over_budget_recovers_the_shard_then_quarantines_it() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).budget(1, Duration::from_millis(1000)),
    }];
    let mut spec = group_spec(&types, &shards);
    spec.recoveries_max = 1;
    with_rig(&spec, |rig| {
        // Park messages and a timer everywhere, so recovery has something to reclaim.
        let hs = rig.actors();
        rig.send(hs[2], cmd_to(op::START_TIMER, hs[2], 0, 500));
        let mut busy = cmd(op::YIELD);
        busy.count = 1000;
        rig.send(hs[1], busy);
        rig.step();
        rig.send(hs[0], cmd_to(op::SEND_PINGS, hs[1], 20, 0));
        rig.step();
        rig.send(handle_of(rig, 0), cmd(op::CRASH));
        rig.step();
        take_events();
        rig.send(handle_of(rig, 0), cmd(op::CRASH));
        rig.step();
        // Root budget exceeded: everything torn down and rebuilt from the spec.
        assert_eq!(rig.shard.counters().shard_recoveries, 1);
        assert_eq!(
            take_events(),
            [('d', 0), ('d', 2), ('d', 1), ('i', 0), ('i', 1), ('i', 2)]
        );
        assert_eq!(rig.shard.status(), ShardStatus::Running);
        assert_eq!(
            rig.shard.resources_in_use(),
            (0, 0, 0),
            "pools are whole again"
        );
        // Again: a second recovery within the window quarantines the shard.
        rig.send(handle_of(rig, 0), cmd(op::CRASH));
        rig.step();
        rig.send(handle_of(rig, 0), cmd(op::CRASH));
        let r = rig.step();
        assert_eq!(r.status, ShardStatus::Quarantined);
        assert_eq!(rig.shard.live_isolates(), 0);
        // A quarantined shard drops what arrives and runs nothing.
        let foreign =
            tina_core::testing::envelope(Handle::NONE, hs[0], &Outgoing::new(&Ping { n: 1 }));
        rig.shard.platform().transport.inbound.push_back(foreign);
        assert_eq!(rig.step().dispatched, 0);
        assert_eq!(rig.shard.counters().quarantine_drops, 1);
        // Revive: a fresh tree.
        rig.shard.revive(Instant::from_ticks(rig.now)).unwrap();
        assert_eq!(rig.shard.status(), ShardStatus::Running);
        let mut running = ids(rig);
        running.sort();
        assert_eq!(running, [0, 1, 2]);
    });
}

#[test]
fn a_child_whose_init_keeps_failing_escalates_after_a_bounded_number_of_attempts() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).budget(3, Duration::from_millis(1000)),
    }];
    let mut spec = group_spec(&types, &shards);
    spec.recoveries_max = 2;
    with_rig(&spec, |rig| {
        set_failing(&[1]);
        rig.send(handle_of(rig, 1), cmd(op::CRASH));
        let r = rig.step();
        let c = rig.shard.counters();
        // 3 restarts tried (the budget), then the root escalated; each recovery's rebuild
        // failed on the same init, and the third recovery in the window quarantined.
        assert_eq!(c.restarts, 3);
        assert_eq!(c.shard_recoveries, 2);
        assert_eq!(r.status, ShardStatus::Quarantined);
        assert_eq!(rig.shard.live_isolates(), 0);
        assert_eq!(rig.shard.resources_in_use(), (0, 0, 0));
        // Fixed, the operator revives it.
        set_failing(&[]);
        rig.shard.revive(Instant::from_ticks(rig.now)).unwrap();
        let mut running = ids(rig);
        running.sort();
        assert_eq!(running, [0, 1, 2]);
    });
}

#[test]
fn dynamic_children_restart_alone_and_stop_with_their_group() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let inner = [ChildSpec::isolate::<Actor>(&args(1), Restart::Permanent)];
    let root = [
        ChildSpec::Group(
            GroupSpec::one_for_one(&inner)
                .dynamic(2)
                .budget(1, Duration::from_millis(1000)),
        ),
        ChildSpec::isolate::<Actor>(&args(2), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&root),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        let parent = handle_of(rig, 1);
        rig.send(parent, cmd_to(op::SPAWN, Handle::NONE, 0, 77));
        rig.step();
        let child = rig.actor(parent).last_spawn.unwrap().unwrap();
        assert_eq!(handle_of(rig, 77), child);
        // A temporary dynamic child that crashes is gone, and frees its group room.
        rig.send(child, cmd(op::CRASH));
        rig.step();
        assert!(!ids(rig).contains(&77));
        for id in [78, 79] {
            rig.send(parent, cmd_to(op::SPAWN, Handle::NONE, 0, id));
            rig.step();
            assert!(rig.actor(parent).last_spawn.unwrap().is_ok());
        }
        // Group over budget (2 crashes, budget 1): it stops, dynamic children included, and
        // the root restarts it from its spec — static child only.
        take_events();
        rig.send(handle_of(rig, 1), cmd(op::CRASH));
        rig.step();
        rig.send(handle_of(rig, 1), cmd(op::CRASH));
        rig.step();
        let ev = take_events();
        assert!(ev.contains(&('d', 78)) && ev.contains(&('d', 79)), "{ev:?}");
        let mut running = ids(rig);
        running.sort();
        assert_eq!(running, [1, 2]);
    });
}

#[test]
fn supervision_works_when_every_pool_and_mailbox_is_full() {
    let types = [TypeSpec::of::<Actor>("actor")
        .capacity(4)
        .mailbox_capacity(100)];
    let c = three(Restart::Permanent);
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let mut spec = group_spec(&types, &shards);
    spec.shard.message_pool_size = 64;
    spec.shard.system_reserve = Some(1);
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        // hs[1] keeps busy for 6 ticks, then crashes on its own; its timer fires meanwhile.
        rig.send(hs[1], cmd_to(op::START_TIMER, hs[1], 0, 2));
        rig.step();
        rig.send(hs[1], cmd_to(op::YIELD_THEN_CRASH, Handle::NONE, 6, 0));
        rig.step();
        rig.send(hs[0], cmd_to(op::SEND_PINGS, hs[1], 100, 0));
        rig.step();
        rig.step();
        assert_eq!(
            rig.actor(hs[0])
                .last_send
                .iter()
                .filter(|r| r.is_ok())
                .count(),
            63
        );
        assert_eq!(
            rig.shard.pool_usage().0,
            0,
            "user flood + timer: the pool is empty"
        );
        assert_eq!(
            rig.shard.deliver(hs[2], &Outgoing::new(&cmd(op::RECEIVE))),
            Err(SendError::PoolExhausted)
        );
        rig.advance_to(rig.now + 8);
        // It crashed with a full mailbox and no free envelope, and was restarted.
        assert_eq!(rig.shard.counters().restarts, 1);
        assert!(!rig.shard.is_live(hs[1]));
        assert!(ids(rig).contains(&1));
        assert_eq!(
            rig.shard.pool_usage().0,
            64,
            "its mailbox went back to the pool"
        );
    });
}

#[test]
fn escalation_climbs_nested_groups_to_shard_recovery() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let leaf = [ChildSpec::isolate::<Actor>(&args(30), Restart::Permanent)];
    let middle = [ChildSpec::Group(
        GroupSpec::one_for_one(&leaf).budget(0, Duration::from_millis(100)),
    )];
    let root = [
        ChildSpec::Group(GroupSpec::one_for_one(&middle).budget(0, Duration::from_millis(100))),
        ChildSpec::isolate::<Actor>(&args(31), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&root).budget(0, Duration::from_millis(100)),
    }];
    with_rig(&group_spec(&types, &shards), |rig| {
        let bystander = handle_of(rig, 31);
        take_events();
        rig.send(handle_of(rig, 30), cmd(op::CRASH));
        rig.step();
        // leaf group gives up -> middle gives up -> root gives up -> shard recovery,
        // which also restarts the bystander.
        assert_eq!(rig.shard.counters().shard_recoveries, 1);
        assert_eq!(rig.shard.counters().restarts, 0);
        assert_eq!(take_events(), [('d', 30), ('d', 31), ('i', 30), ('i', 31)]);
        assert_ne!(handle_of(rig, 31), bystander);
    });
}

#[test]
fn every_strategy_honours_every_restart_type() {
    for strategy in [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
    ] {
        for (restart, how, restarts) in [
            (Restart::Permanent, op::DONE, true),
            (Restart::Permanent, op::CRASH, true),
            (Restart::Transient, op::DONE, false),
            (Restart::Transient, op::CRASH, true),
            (Restart::Temporary, op::DONE, false),
            (Restart::Temporary, op::CRASH, false),
        ] {
            let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
            let c = [
                ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
                ChildSpec::isolate::<Actor>(&args(1), restart),
                ChildSpec::isolate::<Actor>(&args(2), Restart::Permanent),
            ];
            let shards = [ShardSpec {
                root: GroupSpec::one_for_one(&c).strategy(strategy),
            }];
            with_rig(&group_spec(&types, &shards), |rig| {
                let before: Vec<Handle> = [0, 2].map(|i| handle_of(rig, i)).to_vec();
                rig.send(handle_of(rig, 1), cmd(how));
                rig.step();
                let label = format!("{strategy:?} {restart:?} op {how}");
                assert_eq!(ids(rig).contains(&1), restarts, "{label}");
                let after: Vec<Handle> = [0, 2].map(|i| handle_of(rig, i)).to_vec();
                let (first_kept, last_kept) = match (strategy, restarts) {
                    (_, false) | (Strategy::OneForOne, true) => (true, true),
                    (Strategy::OneForAll, true) => (false, false),
                    (Strategy::RestForOne, true) => (true, false),
                };
                assert_eq!(after[0] == before[0], first_kept, "{label}");
                assert_eq!(after[1] == before[1], last_kept, "{label}");
            });
        }
    }
}
