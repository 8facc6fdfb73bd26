//! Durations in real units, converted with the shard's tick length (timers, call timeouts,
//! restart windows), and the wall clock the platform supplies with each step.
mod common;
use common::*;
use tina_core::*;

const MS: u64 = 1_000_000;

/// A one-actor spec (plus a silent actor that never answers calls) with `tick_ns` ticks.
fn with_ticks<R>(tick_ns: u64, f: impl FnOnce(&mut Rig<'_>) -> R) -> R {
    let a = actors(1, Restart::Permanent);
    let silent = ActorArgs {
        replies: Replies::Never,
        fail_init: false,
        id: 99,
    };
    let children = [
        a.children[0],
        ChildSpec::isolate::<Actor>(&silent, Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let mut spec = a.spec(&shards);
    spec.tick_ns = tick_ns;
    with_rig(&spec, f)
}

fn by_id(rig: &Rig<'_>, id: u64) -> Handle {
    *rig.actors()
        .iter()
        .find(|&&h| rig.actor(h).args.id == id)
        .expect("actor running")
}

/// Starts a 2-second timer at tick 1 and returns the tick whose step fired it.
fn two_second_timer_fires_at(tick_ns: u64) -> u64 {
    with_ticks(tick_ns, |rig| {
        let h = by_id(rig, 0);
        let two_s = Duration::from_secs(2).as_millis();
        rig.send(h, cmd_to(op::START_TIMER, h, 0, two_s));
        let r = rig.step();
        let deadline = r.next_deadline.expect("timer pending").ticks();
        rig.advance_to(deadline - 1);
        assert_eq!(rig.shard.counters().timers_fired, 0, "fired early");
        assert_eq!(rig.step().timers_fired, 1, "not fired at its deadline");
        deadline
    })
}

#[test]
fn timer_of_two_seconds_waits_2000_ticks_of_1ms_and_20_ticks_of_100ms() {
    assert_eq!(two_second_timer_fires_at(MS), 1 + 2_000);
    assert_eq!(two_second_timer_fires_at(100 * MS), 1 + 20);
}

#[test]
fn timer_shorter_than_a_tick_waits_one_whole_tick() {
    with_ticks(100 * MS, |rig| {
        let h = by_id(rig, 0);
        // 1 ms on a 100 ms tick: rounded up, never down to "now".
        rig.send(h, cmd_to(op::START_TIMER, h, 0, 1));
        let r = rig.step();
        assert_eq!(r.next_deadline, Some(Instant::from_ticks(2)));
    });
}

#[test]
fn call_timeout_is_converted_with_the_tick_length_rounding_up() {
    with_ticks(100 * MS, |rig| {
        let caller = by_id(rig, 0);
        let silent = by_id(rig, 99);
        // 250 ms on a 100 ms tick is 3 ticks: the call started at tick 1 times out at tick 4.
        rig.send(caller, cmd_to(op::CALL, silent, 7, 250));
        let r = rig.step();
        assert_eq!(r.next_deadline, Some(Instant::from_ticks(4)));
        rig.advance_to(3);
        assert_eq!(rig.shard.counters().call_timeouts, 0, "timed out early");
        rig.step();
        assert_eq!(rig.shard.counters().call_timeouts, 1);
        rig.step();
        assert!(
            rig.actor(caller)
                .seen
                .iter()
                .any(|s| s.tag == system_tag::CALL_TIMEOUT.0),
            "the caller got its timeout notice"
        );
    });
}

/// Crashes actor 0 twice, `gap` ticks apart, under a budget of one restart per second;
/// returns how many shard recoveries that caused.
fn recoveries_after_two_crashes(tick_ns: u64, gap: u64) -> u64 {
    let types = [TypeSpec::of::<Actor>("actor").capacity(8)];
    let c = [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).budget(1, Duration::from_secs(1)),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.tick_ns = tick_ns;
    spec.shard.timer_entries = 16;
    with_rig(&spec, |rig| {
        rig.send(by_id(rig, 0), cmd(op::CRASH));
        rig.step();
        rig.advance_to(rig.now + gap);
        rig.send(by_id(rig, 0), cmd(op::CRASH));
        rig.step();
        rig.shard.counters().shard_recoveries
    })
}

#[test]
fn restart_window_is_measured_in_real_time_whatever_the_tick() {
    // 12 ticks of 100 ms is 1.2 s: outside a 1 s window, the second restart is allowed.
    assert_eq!(recoveries_after_two_crashes(100 * MS, 12), 0);
    // 12 ticks of 1 ms is 12 ms: inside it, the root escalates and the shard recovers.
    assert_eq!(recoveries_after_two_crashes(MS, 12), 1);
    // 8 ticks of 100 ms is still inside.
    assert_eq!(recoveries_after_two_crashes(100 * MS, 8), 1);
}

/// Records what the clocks said at each message.
struct Clocky {
    readings: Vec<(Instant, Option<WallTime>, Duration)>,
}

impl Isolate for Clocky {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((
            Clocky {
                readings: Vec::new(),
            },
            Effect::Receive,
        ))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        let since_boot = ctx.elapsed_since(Instant::ZERO);
        self.readings.push((ctx.now(), ctx.wall_time(), since_boot));
        Effect::Receive
    }
}

#[test]
fn handlers_read_the_wall_time_supplied_with_the_step_and_elapsed_real_time() {
    let types = [TypeSpec::of::<Clocky>("clocky")];
    let c = [ChildSpec::isolate::<Clocky>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.tick_ns = 100 * MS;
    let mut region = tina_core::testing::region_for(&spec, ShardId(0));
    let platform = tina_core::testing::TestPlatform::default();
    let mut shard = Shard::new(&spec, ShardId(0), region.bytes(), platform).expect("boot");
    let h = shard.handles::<Clocky>().next().expect("clocky");
    let poke = Outgoing::new(&Ping { n: 0 });
    let date = WallTime::from_unix_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    shard.deliver(h, &poke).expect("deliver");
    shard.step(Clock::new(Instant::from_ticks(20), Some(date)));
    shard.deliver(h, &poke).expect("deliver");
    // A bare instant: a platform without a calendar clock.
    shard.step(Instant::from_ticks(25));
    let seen = &shard.state::<Clocky>(h).expect("live").readings;
    assert_eq!(
        seen.as_slice(),
        [
            (Instant::from_ticks(20), Some(date), Duration::from_secs(2)),
            (Instant::from_ticks(25), None, Duration::from_millis(2_500)),
        ]
    );
    assert_eq!(
        seen[0].1.map(|w| w.http_date().to_string()).as_deref(),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
}

#[test]
fn a_window_shorter_than_a_tick_is_valid_and_a_zero_one_is_not() {
    let types = [TypeSpec::of::<Actor>("actor")];
    let c = [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)];
    let shards = |window| {
        [ShardSpec {
            root: GroupSpec::one_for_one(&c).budget(1, window),
        }]
    };
    // 1 ns on a 1 ms tick rounds up to one tick: a real window.
    let short = shards(Duration::from_nanos(1));
    assert_eq!(SystemSpec::new(&short, &types).validate(), Ok(()));
    let zero = shards(Duration::ZERO);
    let e = SystemSpec::new(&zero, &types).validate().unwrap_err();
    assert!(e.to_string().contains("budget.window"), "{e}");
    let mut spec = SystemSpec::new(&short, &types);
    spec.recovery_window = Duration::ZERO;
    let e = spec.validate().unwrap_err();
    assert!(e.to_string().contains("recovery_window"), "{e}");
}
