//! Timers (fire, cancel, exhaustion, next deadline) and dispatch budget fairness.
mod common;
use common::*;
use tina_core::*;

#[test]
fn timer_fires_once_at_its_deadline_and_is_reported_as_next_deadline() {
    let a = actors(1, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        rig.send(h, cmd_to(op::START_TIMER, h, 0, 10));
        let r = rig.step(); // tick 1: timer due at tick 11
        assert_eq!(r.next_deadline, Some(Instant::from_ticks(11)));
        assert!(!r.work_remaining);
        rig.advance_to(11);
        assert_eq!(
            rig.actor(h).seen.len(),
            1,
            "not fired before its tick is processed"
        );
        let r = rig.step(); // tick 12 dispatches the message fired at the end of tick 11
        assert_eq!(r.dispatched, 1);
        assert_eq!(r.next_deadline, None);
        let fired: Vec<u64> = rig
            .actor(h)
            .seen
            .iter()
            .filter(|s| s.tag == TIMER_TAG.get())
            .map(|_| 1)
            .collect();
        assert_eq!(fired.len(), 1);
        rig.advance_to(400);
        assert_eq!(rig.actor(h).seen.len(), 2, "one-shot");
        assert_eq!(rig.shard.counters().timers_fired, 1);
    });
}

#[test]
fn cancelled_timer_never_fires() {
    let a = actors(1, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        rig.send(h, cmd_to(op::START_TIMER, h, 0, 5));
        rig.step();
        rig.send(h, cmd(op::CANCEL_TIMER));
        let r = rig.step();
        assert_eq!(r.next_deadline, None);
        rig.advance_to(300);
        assert!(
            rig.actor(h).seen.iter().all(|s| s.tag != TIMER_TAG.get()),
            "cancelled timer fired"
        );
        assert_eq!(rig.shard.counters().timers_fired, 0);
        assert_eq!(rig.shard.resources_in_use().1, 0);
    });
}

#[test]
fn timers_survive_a_time_jump_longer_than_the_wheel() {
    let a = actors(1, Restart::Permanent);
    let shards = a.shards();
    let mut spec = a.spec(&shards);
    spec.shard.timer_spokes = 16;
    with_rig(&spec, |rig| {
        let h = rig.actors()[0];
        rig.send(h, cmd_to(op::START_TIMER, h, 0, 1000));
        rig.step();
        // Jump straight past the deadline, as an idle platform that slept would.
        rig.now = 5000;
        rig.step();
        rig.step();
        assert!(rig.actor(h).seen.iter().any(|s| s.tag == TIMER_TAG.get()));
    });
}

#[test]
fn expirations_per_tick_are_bounded_and_the_rest_fire_next_tick() {
    let a = actors(8, Restart::Permanent);
    let shards = a.shards();
    let mut spec = a.spec(&shards);
    spec.shard.timer_expirations_per_tick_max = 3;
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        for &h in &hs {
            rig.send(h, cmd_to(op::START_TIMER, h, 0, 2));
        }
        rig.step(); // tick 1: all due at tick 3
        rig.step(); // tick 2
        let fired: Vec<u32> = (0..4).map(|_| rig.step().timers_fired).collect();
        assert_eq!(fired, [3, 3, 2, 0]);
    });
}

#[test]
fn user_timers_cannot_take_the_call_timeout_reserve() {
    let a = actors(2, Restart::Permanent);
    let shards = a.shards();
    let mut spec = a.spec(&shards);
    spec.shard.timer_entries = 16; // 2 reserved for call timeouts
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        for _ in 0..20 {
            rig.send(hs[0], cmd_to(op::START_TIMER, hs[0], 0, 1000));
        }
        rig.step_until_idle(5);
        assert_eq!(
            rig.shard.counters().timer_exhausted,
            6,
            "14 user timers fit"
        );
        // A call still gets its timeout timer.
        let mut busy = cmd(op::YIELD);
        busy.count = 50;
        rig.send(hs[1], busy);
        rig.send(hs[0], cmd_to(op::CALL, hs[1], 1, 5));
        rig.advance_to(rig.now + 10);
        assert_eq!(
            rig.actor(hs[0]).seen.last().unwrap().tag,
            system_tag::CALL_TIMEOUT.0,
            "timed out by its own timer, not failed fast"
        );
        assert_eq!(rig.shard.counters().timer_exhausted, 6);
    });
}

#[test]
fn a_flooded_type_cannot_starve_another_type_or_a_sibling() {
    let types = [
        TypeSpec::of::<Actor>("actor")
            .capacity(4)
            .mailbox_capacity(1000),
        TypeSpec::of::<Tally>("tally").capacity(2),
    ];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::isolate::<Actor>(&args(1), Restart::Permanent),
        ChildSpec::isolate::<Actor>(&args(2), Restart::Permanent),
        ChildSpec::isolate::<Tally>(&(), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = SystemSpec::new(&shards, &types);
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        let (flooder, flooded, sibling) = (hs[0], hs[1], hs[2]);
        let tally = rig.shard.handles::<Tally>().next().unwrap();
        rig.send(flooder, cmd_to(op::SEND_PINGS, flooded, 900, 0));
        rig.step();
        // Now 900 messages wait for `flooded`; one for its sibling and one for another type.
        rig.send(sibling, cmd(op::RECEIVE));
        rig.shard
            .deliver(tally, &Outgoing::new(&Ping { n: 0 }))
            .unwrap();
        let r = rig.step();
        assert!(
            r.dispatched <= 256 + 256,
            "each type is bounded by its quota"
        );
        assert_eq!(
            rig.actor(sibling).seen.len(),
            1,
            "the sibling ran in the same tick"
        );
        assert_eq!(
            rig.shard.state::<Tally>(tally).unwrap().ticks,
            [rig.now],
            "the other type ran in the same tick"
        );
        let ticks = rig.step_until_idle(10) + 1;
        assert_eq!(rig.actor(flooded).seen.len(), 900);
        assert!(
            ticks >= 3,
            "900 messages at 256 per tick take several ticks"
        );
    });
}

#[test]
fn budget_weight_scales_the_per_tick_quota() {
    let types = [TypeSpec::of::<Actor>("actor")
        .capacity(2)
        .mailbox_capacity(1000)
        .budget_weight(2)];
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
        rig.send(hs[0], cmd_to(op::SEND_PINGS, hs[1], 900, 0));
        // Messages sent during a tick are dispatched in the same tick while quota remains:
        // 1 command + 511 pings, then the remaining 389 pings.
        assert_eq!(rig.step().dispatched, 512);
        assert_eq!(rig.step().dispatched, 389);
        assert_eq!(rig.step().dispatched, 0);
    });
}
