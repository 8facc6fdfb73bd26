//! On Linux a handler reads the real calendar time (`CLOCK_REALTIME`, read once per step):
//! within a few seconds of the test's own `SystemTime::now()`, and later on a later step.

mod linux_common;

use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use linux_common::*;
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec, UserTag, WallTime,
};
use tina_linux::Config;

const BEAT: UserTag = UserTag::new(0x41);
const READINGS: usize = 2;

/// What the stamper read from `Ctx::wall_time` at each timer (one stamper in this process).
static SEEN: Mutex<Vec<Option<WallTime>>> = Mutex::new(Vec::new());

/// Reads the wall clock when its 50 ms timer fires, twice.
struct Stamper;

impl Isolate for Stamper {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(50), BEAT)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((Stamper, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag().0 == BEAT.get() {
            let mut seen = SEEN.lock().unwrap();
            seen.push(ctx.wall_time());
            if seen.len() < READINGS {
                let _ = ctx.start_timer(Duration::from_millis(50), BEAT);
            }
        }
        Effect::Receive
    }
}

fn unix_now() -> StdDuration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
}

#[test]
fn linux_handler_reads_the_real_wall_clock() {
    let types: &'static [TypeSpec] = Box::leak(Box::new([TypeSpec::of::<Stamper>("stamper")]));
    let c: &'static [ChildSpec<'static>] = Box::leak(Box::new([ChildSpec::isolate::<Stamper>(
        &(),
        Restart::Permanent,
    )]));
    let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([ShardSpec {
        root: GroupSpec::one_for_one(c),
    }]));
    let spec: &'static SystemSpec<'static> = Box::leak(Box::new(SystemSpec::new(shards, types)));
    let before = unix_now();
    let rt = Running::start(
        spec,
        Config {
            signals: false,
            ..Config::default()
        },
    );
    let deadline = StdInstant::now() + StdDuration::from_secs(10);
    while SEEN.lock().unwrap().len() < READINGS && StdInstant::now() < deadline {
        std::thread::yield_now();
    }
    let after = unix_now();
    assert!(rt.stop().clean);
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen.len(), READINGS, "the timers fired within 10 s");
    let walls: Vec<WallTime> = seen
        .iter()
        .map(|w| w.expect("Linux supplies the wall clock"))
        .collect();
    let slack = StdDuration::from_secs(5);
    for w in &walls {
        let t = StdDuration::from_nanos(w.unix_nanos());
        assert!(
            t + slack >= before && t <= after + slack,
            "wall time {w} is not within 5 s of the test's clock ({before:?}..{after:?})"
        );
    }
    // The second timer fired at least 50 ms of monotonic time later; the wall clock moved on
    // (by more than nothing, unless the host's clock was stepped back meanwhile).
    assert!(walls[1] > walls[0], "{} then {}", walls[0], walls[1]);
}
