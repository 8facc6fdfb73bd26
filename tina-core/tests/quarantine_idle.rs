//! A quarantined shard reports no work, so its platform can sleep until it is revived.
mod common;
use common::*;
use tina_core::*;

#[test]
fn a_shard_quarantined_with_isolates_queued_reports_no_work_remaining() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(4)];
    let children = [0, 1].map(|i| ChildSpec::isolate::<Actor>(&args(i), Restart::Permanent));
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).budget(0, Duration::from_millis(100)),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.recoveries_max = 0;
    with_rig(&spec, |rig| {
        let [first, second] = [0, 1].map(|i| rig.actors()[i]);
        // The first crashes (the root's budget is spent: the shard recovers, which it may
        // not: quarantine) while the second is queued with a message.
        rig.send(first, cmd(op::CRASH));
        rig.send(second, cmd(op::RECEIVE));
        let r = rig.step();
        assert_eq!(r.status, ShardStatus::Quarantined);
        assert_eq!(r.live_isolates, 0);
        assert!(!r.work_remaining, "nothing can run on a quarantined shard");
        let r = rig.step();
        assert_eq!((r.dispatched, r.work_remaining), (0, false));
        // Revived, it serves again.
        rig.shard.revive(Instant::from_ticks(rig.now)).unwrap();
        assert_eq!(rig.shard.live_isolates(), 2);
        let r = rig.step();
        assert_eq!(r.status, ShardStatus::Running);
    });
}
