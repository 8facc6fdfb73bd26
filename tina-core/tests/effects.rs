//! Every effect, stepped by hand.
mod common;
use common::*;
use tina_core::*;

#[test]
fn receive_parks_until_a_message_arrives() {
    let a = actors(1, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        assert_eq!(rig.step().dispatched, 0, "nothing to do before a message");
        rig.send(h, cmd(op::RECEIVE));
        let r = rig.step();
        assert_eq!(r.dispatched, 1);
        assert!(!r.work_remaining);
        assert_eq!(rig.step().dispatched, 0);
        assert_eq!(rig.actor(h).seen.len(), 1);
    });
}

#[test]
fn yield_runs_again_next_tick_with_resumed_and_never_twice_per_tick() {
    let a = actors(1, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        let mut c = cmd(op::YIELD);
        c.count = 2;
        rig.send(h, c);
        // Tick 1: the command (yield, 2 more to go). Ticks 2, 3: RESUMED, yield again.
        // Tick 4: RESUMED, receive.
        for expected_work in [true, true, true, false] {
            let r = rig.step();
            assert_eq!(r.dispatched, 1);
            assert_eq!(r.work_remaining, expected_work);
        }
        assert_eq!(rig.step().dispatched, 0);
        let tags: Vec<u16> = rig.actor(h).seen.iter().map(|s| s.tag).collect();
        let resumed = system_tag::RESUMED.0;
        assert_eq!(tags, [Cmd::TAG.get(), resumed, resumed, resumed]);
    });
}

#[test]
fn done_tears_down_and_the_old_handle_is_stale() {
    let a = actors(1, Restart::Temporary);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        rig.send(h, cmd(op::DONE));
        rig.step();
        assert!(!rig.shard.is_live(h));
        assert_eq!(rig.shard.live_isolates(), 0);
        assert_eq!(rig.shard.counters().exits, 1);
        assert_eq!(
            rig.shard.deliver(h, &Outgoing::new(&cmd(op::RECEIVE))),
            Err(SendError::StaleHandle)
        );
        assert_eq!(rig.shard.counters().stale_deliveries, 1);
    });
}

#[test]
fn crash_tears_down_and_is_counted() {
    let a = actors(1, Restart::Temporary);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        rig.send(h, cmd(op::CRASH));
        rig.step();
        assert!(!rig.shard.is_live(h));
        assert_eq!(rig.shard.counters().crashes, 1);
        assert_eq!(rig.shard.counters().exits, 0);
    });
}

#[test]
fn call_gets_the_matching_reply() {
    let a = actors(2, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        let (caller, callee) = (hs[0], hs[1]);
        rig.send(caller, cmd_to(op::CALL, callee, 41, 10));
        rig.step_until_idle(5);
        let seen = &rig.actor(caller).seen;
        let reply = seen.last().unwrap();
        assert!(reply.is_reply);
        assert_eq!(
            (reply.tag, reply.n, reply.src),
            (Pong::TAG.get(), 42, callee)
        );
        let at_callee = rig.actor(callee).seen[0];
        assert!(at_callee.is_call);
        assert_eq!(at_callee.src, caller);
        assert_eq!(rig.shard.counters().call_timeouts, 0);
    });
}

#[test]
fn call_times_out_and_a_late_reply_is_dropped() {
    let a = actors(2, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        let (caller, callee) = (hs[0], hs[1]);
        // The callee is busy for 10 ticks; the caller waits 3.
        let mut busy = cmd(op::YIELD);
        busy.count = 10;
        rig.send(callee, busy);
        rig.step();
        rig.send(caller, cmd_to(op::CALL, callee, 1, 3));
        rig.advance_to(20);
        let seen = &rig.actor(caller).seen;
        let notice = seen[1];
        assert_eq!(notice.tag, system_tag::CALL_TIMEOUT.0, "{seen:?}");
        assert_eq!(seen.len(), 2, "the late reply must not arrive: {seen:?}");
        assert_eq!(rig.shard.counters().call_timeouts, 1);
        assert_eq!(rig.shard.counters().stale_replies, 1);
        // The callee did answer (late).
        assert!(rig.actor(callee).seen.iter().any(|s| s.is_call));
    });
}

#[test]
fn call_timeout_arrives_at_exactly_the_deadline() {
    let a = actors(2, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        let mut busy = cmd(op::YIELD);
        busy.count = 100;
        rig.send(hs[1], busy);
        rig.send(hs[0], cmd_to(op::CALL, hs[1], 1, 7));
        rig.step(); // tick 1: call sent, timeout armed for tick 8
        let mut fired_at = None;
        for _ in 0..20 {
            rig.step();
            if fired_at.is_none() && rig.actor(hs[0]).seen.len() == 2 {
                fired_at = Some(rig.now);
            }
        }
        // Timers fire at the end of tick 8; the notice is dispatched in tick 9.
        assert_eq!(fired_at, Some(9));
    });
}

#[test]
fn call_to_a_stale_handle_fails_fast() {
    let a = actors(2, Restart::Temporary);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        rig.send(hs[1], cmd(op::DONE));
        rig.step();
        rig.send(hs[0], cmd_to(op::CALL, hs[1], 1, 1000));
        rig.step_until_idle(3);
        let seen = &rig.actor(hs[0]).seen;
        assert_eq!(
            seen.len(),
            2,
            "the failure arrives without waiting for the timeout"
        );
        assert_eq!(seen[1].tag, system_tag::CALL_TIMEOUT.0);
        assert!(rig.now < 10);
    });
}

#[test]
fn reply_outside_a_call_crashes_the_replier() {
    let a = actors(1, Restart::Temporary);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let h = rig.actors()[0];
        rig.send(h, cmd(op::REPLY));
        rig.step();
        assert!(!rig.shard.is_live(h));
        assert_eq!(rig.shard.counters().crashes, 1);
    });
}

#[test]
fn panic_in_a_handler_crashes_only_that_isolate_and_leaves_the_shard_consistent() {
    let a = actors(3, Restart::Temporary);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        // The panicking handler first sends, starts a timer and takes an I/O buffer.
        rig.send(hs[0], cmd_to(op::SEND_THEN_PANIC, hs[1], 3, 0));
        rig.step_until_idle(5); // invariants are checked after every step
        assert!(!rig.shard.is_live(hs[0]));
        assert_eq!(rig.shard.counters().panics, 1);
        assert_eq!(rig.shard.counters().crashes, 1);
        // Its sends before the panic were delivered; the others keep working.
        assert_eq!(rig.actor(hs[1]).seen.len(), 3);
        rig.send(hs[2], cmd_to(op::CALL, hs[1], 5, 10));
        rig.step_until_idle(5);
        assert_eq!(rig.actor(hs[2]).seen.last().unwrap().n, 6);
        // Its timer and buffer were reclaimed.
        assert_eq!(rig.shard.resources_in_use(), (0, 0, 0));
    });
}

#[test]
fn a_call_can_be_answered_later_and_a_too_late_answer_is_dropped() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(4)];
    let mut deferring = args(1);
    deferring.replies = Replies::Deferred;
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::isolate::<Actor>(&deferring, Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = SystemSpec::new(&shards, &types);
    with_rig(&spec, |rig| {
        let hs = rig.actors();
        let (caller, callee) = (hs[0], hs[1]);
        // In time: the callee stores the token, returns, and answers on a later tick.
        rig.send(caller, cmd_to(op::CALL, callee, 1, 50));
        rig.step_until_idle(5);
        assert!(rig.actor(callee).deferred.is_some());
        rig.send(callee, cmd(op::REPLY_DEFERRED));
        rig.step_until_idle(5);
        let last = *rig.actor(caller).seen.last().unwrap();
        assert!(
            last.is_reply && last.n == 1000 && last.src == callee,
            "{last:?}"
        );
        // Too late: the caller timed out; the answer is dropped as stale.
        rig.send(caller, cmd_to(op::CALL, callee, 2, 3));
        rig.advance_to(rig.now + 10);
        assert_eq!(
            rig.actor(caller).seen.last().unwrap().tag,
            system_tag::CALL_TIMEOUT.0
        );
        rig.send(callee, cmd(op::REPLY_DEFERRED));
        rig.step_until_idle(5);
        assert_eq!(rig.actor(callee).deferred_result, Some(Ok(())));
        assert_eq!(rig.shard.counters().stale_replies, 1);
        assert_eq!(
            rig.actor(caller).seen.last().unwrap().tag,
            system_tag::CALL_TIMEOUT.0,
            "nothing after the timeout"
        );
        let live: Vec<Handle> = rig.shard.live_handles().collect();
        assert_eq!(live, hs, "live_handles lists every live isolate");
    });
}
