//! B2 by name: the ping-pong of [`crate::intra`] with each send addressed by name
//! (`ctx.on_shard(NAME, shard)`) instead of by the peer's handle, so the difference between
//! the two (in instructions under callgrind) is the cost of resolving a name at delivery.
//! `tina-bench perf pingpong-named [--messages N]`.

use std::time::Instant as WallInstant;
use tina_core::testing::{TestPlatform, region_for};
use tina_core::*;

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Ball {
    n: u64,
}
tina_core::payload!(Ball = "bench.named.Ball");

/// One player: `PING` serves to `PONG`, and back.
struct Player {
    other: Name<Player>,
    limit: u64,
    last: u64,
}
tina_core::accepts!(Player: Ball);

const PING: Name<Player> = Name::new("ping");
const PONG: Name<Player> = Name::new("pong");

impl Isolate for Player {
    /// The ball's last count, and whether this player is `PING`.
    type Args = (u64, bool);
    fn init(&(limit, ping): &(u64, bool), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let other = if ping { PONG } else { PING };
        let me = Player {
            other,
            limit,
            last: 0,
        };
        Ok((me, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if let Some(b) = msg.decode::<Ball>() {
            self.last = b.n;
            if b.n < self.limit {
                let to = ctx.on_shard(self.other, ctx.shard_id());
                let _ = ctx.send(to, &Ball { n: b.n + 1 });
            }
        }
        Effect::Receive
    }
}

/// `messages` sends by name + dispatches between two named isolates of one shard (the first
/// message is delivered from outside). Returns the wall time in nanoseconds.
pub(crate) fn tina_ping_pong_named(messages: u64) -> u64 {
    let types = [TypeSpec::of::<Player>("player").capacity(2)];
    let children = [
        ChildSpec::named(PING, &(messages, true), Restart::Permanent),
        ChildSpec::named(PONG, &(messages, false), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = SystemSpec::new(&shards, &types);
    let mut memory = region_for(&spec, ShardId(0));
    let mut shard =
        Shard::new(&spec, ShardId(0), memory.bytes(), TestPlatform::default()).expect("boot");
    let players: Vec<Handle> = shard.handles::<Player>().collect();
    let start = WallInstant::now();
    shard
        .deliver(players[0], &Outgoing::new(&Ball { n: 1 }))
        .expect("first ball");
    let mut tick = 0;
    let mut dispatched = 0u64;
    while dispatched < messages {
        tick += 1;
        dispatched += u64::from(shard.step(Instant::from_ticks(tick)).dispatched);
    }
    let ns = start.elapsed().as_nanos() as u64;
    let last = players
        .iter()
        .map(|&h| shard.state::<Player>(h).map_or(0, |p| p.last))
        .max()
        .unwrap_or(0);
    assert!(last >= messages, "the ball went round {last} times");
    ns
}
