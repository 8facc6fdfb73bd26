//! The simulated calendar clock: seeded, deterministic, advancing with simulated time.

use tina_core::*;
use tina_sim::{Outcome, Scenario, SimConfig, SimView, wall_clock_start};

const BEAT: UserTag = UserTag::new(0x41);
const READINGS: usize = 4;

/// Reads both clocks every 250 ms (a timer), four times.
struct Probe {
    readings: Vec<(Instant, Option<WallTime>)>,
}

impl Isolate for Probe {
    type Args = ();
    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(250), BEAT)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((
            Probe {
                readings: Vec::new(),
            },
            Effect::Receive,
        ))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag().0 == BEAT.get() {
            self.readings.push((ctx.now(), ctx.wall_time()));
            if self.readings.len() < READINGS {
                let _ = ctx.start_timer(Duration::from_millis(250), BEAT);
            }
        }
        Effect::Receive
    }
}

/// Copies the probe's readings out once it has them all.
#[derive(Default)]
struct Collect(Vec<(Instant, Option<WallTime>)>);

impl Scenario for Collect {
    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        let probes = view.isolates::<Probe>();
        let Some((_, p)) = probes.first() else {
            return false;
        };
        if p.readings.len() < READINGS {
            return false;
        }
        self.0.clone_from(&p.readings);
        true
    }
}

fn readings(seed: u64) -> (Vec<(Instant, Option<WallTime>)>, u64) {
    let types = [TypeSpec::of::<Probe>("probe")];
    let c = [ChildSpec::isolate::<Probe>(&(), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c),
    }];
    let spec = SystemSpec::new(&shards, &types);
    let mut config = SimConfig::new(seed);
    config.ticks = 2_000;
    let mut scenario = Collect::default();
    let report = tina_sim::run(&spec, &config, &mut scenario);
    assert_eq!(report.outcome, Outcome::Pass, "{:?}", report.log_tail);
    (scenario.0, report.tick_ns)
}

#[test]
fn sim_wall_clock_is_seeded_and_advances_with_simulated_time() {
    let (a, tick_ns) = readings(7);
    assert_eq!(a.len(), READINGS);
    let start = wall_clock_start(7);
    for &(now, wall) in &a {
        let expected = start.saturating_add(Duration::from_ticks_of(now.ticks(), tick_ns));
        assert_eq!(wall, Some(expected), "at {now}");
    }
    // The wall clock moves exactly as far as simulated time: at least the timer's 250 ms
    // between readings.
    for w in a.windows(2) {
        let (t0, w0) = (w[0].0, w[0].1.unwrap());
        let (t1, w1) = (w[1].0, w[1].1.unwrap());
        let elapsed = w1.saturating_since(w0);
        assert_eq!(
            elapsed,
            Duration::from_ticks_of(t1.ticks_since(t0), tick_ns)
        );
        assert!(elapsed >= Duration::from_millis(250), "{elapsed}");
    }
    // Same seed, same dates; another seed, another start.
    assert_eq!(readings(7).0, a);
    let (b, _) = readings(8);
    assert_ne!(b[0].1, a[0].1);
    assert_ne!(wall_clock_start(7), wall_clock_start(8));
}

#[test]
fn sim_wall_clock_starts_between_2000_and_2100() {
    let y2000 = WallTime::from_unix_secs(946_684_800);
    let y2100 = WallTime::from_unix_secs(4_102_444_800);
    for seed in 0..200 {
        let start = wall_clock_start(seed);
        assert!(start >= y2000 && start < y2100, "seed {seed}: {start}");
    }
}
