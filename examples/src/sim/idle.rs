//! The idle scenario: a mostly idle system, to measure time compression.
//!
//! Every shard runs one `Heart` (named [`HEART`]) that, once a simulated second (1,000 ticks
//! of 1 ms), sends a beat to the next shard's heart, addressed by name. Between beats nothing happens, so the simulator jumps
//! straight from one timer deadline to the next: an hour of simulated time costs a few
//! thousand rounds. The goal: every heart kept beating and hearing beats until the end.

use tina_core::{
    Address, ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Name,
    Restart, ShardConfig, ShardId, ShardSpec, SystemSpec, TypeSpec, UserTag, accepts, payload,
};
use tina_sim::cli::ScenarioOptions;
use tina_sim::{FaultSet, Report, Scenario, SimConfig, SimView, watch};

/// Shards in the idle system.
pub const SHARD_COUNT: usize = 3;
/// Time between beats.
pub const BEAT: Duration = Duration::from_secs(1);
/// Faults are not the point here.
pub const FAULTS: FaultSet = FaultSet::NONE;

const BEAT_TIMER: UserTag = UserTag::new(0x90);

/// A beat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Beat {
    /// The sender's count.
    pub n: u64,
}
payload!(Beat);
accepts!(Heart: Beat);

/// Every shard's heart has this name.
pub const HEART: Name<Heart> = Name::new("heart");

/// Beats once a simulated second.
pub struct Heart {
    next: Address<Heart>,
    /// Beats sent.
    pub sent: u64,
    /// Beats heard.
    pub heard: u64,
}

impl Isolate for Heart {
    type Args = u8;

    fn init(shard: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let next = ShardId(((usize::from(*shard) + 1) % SHARD_COUNT) as u8);
        ctx.start_timer(BEAT, BEAT_TIMER)
            .map_err(|_| CrashReason("no timer"))?;
        let heart = Heart {
            next: ctx.on_shard(HEART, next),
            sent: 0,
            heard: 0,
        };
        Ok((heart, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.is::<Beat>() {
            self.heard += 1;
        } else if msg.tag() == BEAT_TIMER.into() {
            self.sent += 1;
            let _ = ctx.send(self.next, &Beat { n: self.sent });
            let _ = ctx.start_timer(BEAT, BEAT_TIMER);
        }
        Effect::Receive
    }
}

struct Idle {
    ticks: u64,
    /// [`BEAT`] in ticks.
    beat_ticks: u64,
}

impl Scenario for Idle {
    fn faults(&self) -> FaultSet {
        FAULTS
    }

    fn watched_types(&self) -> Vec<tina_sim::TypeWatch> {
        vec![watch::<Heart>("Heart")]
    }

    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        let want = self.ticks / self.beat_ticks;
        let hearts = view.isolates::<Heart>();
        hearts.len() == SHARD_COUNT && hearts.iter().all(|(_, h)| h.heard >= want)
    }

    fn summary(&self, view: &SimView<'_, '_>) -> String {
        let hearts = view.isolates::<Heart>();
        format!(
            "beats sent={} heard={}",
            hearts.iter().map(|(_, h)| h.sent).sum::<u64>(),
            hearts.iter().map(|(_, h)| h.heard).sum::<u64>()
        )
    }
}

/// Runs the idle scenario.
pub fn run(config: &SimConfig, _options: &ScenarioOptions) -> Report {
    let types = [TypeSpec::of::<Heart>("heart").capacity(1)];
    let children: Vec<[ChildSpec<'static>; 1]> = (0..SHARD_COUNT)
        .map(|s| [ChildSpec::named(HEART, &(s as u8), Restart::Permanent)])
        .collect();
    let shards: Vec<ShardSpec<'_>> = children
        .iter()
        .map(|c| ShardSpec {
            root: GroupSpec::one_for_one(c),
        })
        .collect();
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        message_pool_size: 64,
        timer_entries: 16,
        timer_spokes: 16,
        io_buffer_count: 0,
        log_entries: 8,
        transfer_buffer_count: 0,
        ..ShardConfig::DEFAULT
    };
    spec.ring_capacity = 16;
    tina_sim::run(
        &spec,
        config,
        &mut Idle {
            ticks: config.ticks,
            beat_ticks: BEAT.to_ticks(spec.tick_ns),
        },
    )
}
