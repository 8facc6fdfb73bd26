//! The bulk scenario: large messages between shards under isolate crashes, handler panics,
//! failing inits and whole-shard crashes (recoveries and quarantines).
//!
//! Each shard runs one `Mover`. On a timer it sends a large message (97 B, 4 KiB or 66 KiB
//! through `Ctx::transfer_alloc` / `transfer_mut` / `send_transfer`, i.e. bulk slots of its
//! shard's pool) to the mover of every other shard, addressed by name, and it answers each one
//! once with a large message of its own. Every payload carries its sender, a per-sender
//! sequence number and bytes derived from both, so the receiver checks each one whole, and in
//! order per sender.
//!
//! Checkers: no corrupted payload, no payload out of order from the same sender. The final
//! graceful shutdown (with `--strict-shutdown`) fails on any bulk slot not back in its pool.
//! Dropped or partitioned cross-shard envelopes are not among the faults: the simulated
//! network would lose their slot with them (real rings never drop).

use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Handle, Isolate, Message, Name,
    Restart, ShardConfig, ShardId, ShardSpec, SystemSpec, TypeSpec, UserTag,
};
use tina_sim::cli::ScenarioOptions;
use tina_sim::{FaultKind, FaultSet, Report, Scenario, SimConfig, SimView, TypeWatch, watch};

/// Shards in the bulk system.
pub const SHARD_COUNT: usize = 3;
/// Rounds of large messages each mover sends on its own (each is answered once). Kept small:
/// 66 KiB payloads are filled and checked byte by byte.
pub const ROUNDS: u64 = 40;
/// Milliseconds between rounds.
const PERIOD_MS: u64 = 5;
/// Crashes of every kind; no dropped, delayed or partitioned envelopes.
pub const FAULTS: FaultSet = FaultSet::of(&[
    FaultKind::IsolateCrash,
    FaultKind::HandlerPanic,
    FaultKind::InitFailure,
    FaultKind::ShardCrash,
]);

const TICK: UserTag = UserTag::new(0xA0);
const BIG: UserTag = UserTag::new(0xA1);
/// The answer to a `BIG` (not answered again, so answers do not ping-pong without end).
const ANSWER: UserTag = UserTag::new(0xA2);
const SIZES: [usize; 3] = [97, 4096, 66 * 1024];
const HEADER: usize = 16;

fn byte(sender: u64, seq: u64, i: usize) -> u8 {
    (sender ^ seq.wrapping_mul(0x9E37) ^ (i as u64).wrapping_mul(31) ^ (i as u64 >> 9)) as u8
}

/// Every shard's mover.
const MOVER: Name<Mover> = Name::new("mover");

/// Sends large messages to its peers and checks the ones it gets.
pub struct Mover {
    me: u8,
    last: [(u64, u64); SHARD_COUNT],
    seq: u64,
    /// Timer rounds so far.
    pub rounds: u64,
    /// Large messages sent (accepted by the shard).
    pub sent: u64,
    /// Large messages received whole.
    pub received: u64,
    /// Payloads that arrived damaged.
    pub corrupt: u64,
    /// Payloads that arrived out of order from one sender.
    pub out_of_order: u64,
}

impl Mover {
    fn send_big(&mut self, ctx: &mut Ctx, to: Handle, tag: UserTag) {
        let len = SIZES[(self.seq % 3) as usize];
        let Ok(t) = ctx.transfer_alloc(len) else {
            return;
        };
        let sender = ctx.me().to_bits();
        let seq = self.seq;
        let Ok(bytes) = ctx.transfer_mut(t) else {
            return;
        };
        bytes[..8].copy_from_slice(&sender.to_le_bytes());
        bytes[8..16].copy_from_slice(&seq.to_le_bytes());
        for (i, b) in bytes[HEADER..].iter_mut().enumerate() {
            *b = byte(sender, seq, i);
        }
        if ctx.send_transfer(to, tag, t).is_ok() {
            self.seq += 1;
            self.sent += 1;
        }
    }

    fn check_big(&mut self, msg: &Message, ctx: &mut Ctx) {
        let Some(t) = msg.transfer() else { return };
        let Ok(data) = ctx.transfer_data(t) else {
            self.corrupt += 1;
            return;
        };
        let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap_or([0; 8]));
        let (sender, seq) = (word(0), word(8));
        let whole = SIZES.contains(&data.len())
            && sender == msg.src().to_bits()
            && data[HEADER..]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == byte(sender, seq, i));
        if !whole {
            self.corrupt += 1;
            return;
        }
        let from = usize::from(msg.src().shard().0) % SHARD_COUNT;
        let (last_sender, last_seq) = self.last[from];
        if last_sender == sender && seq <= last_seq {
            self.out_of_order += 1;
        }
        self.last[from] = (sender, seq);
        self.received += 1;
    }
}

impl Isolate for Mover {
    type Args = u8;

    fn init(me: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(PERIOD_MS), TICK)
            .map_err(|_| CrashReason("no timer"))?;
        let mover = Mover {
            me: *me,
            last: [(0, 0); SHARD_COUNT],
            seq: 1,
            rounds: 0,
            sent: 0,
            received: 0,
            corrupt: 0,
            out_of_order: 0,
        };
        Ok((mover, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag() == BIG.into() {
            self.check_big(msg, ctx);
            self.send_big(ctx, msg.src(), ANSWER);
        } else if msg.tag() == ANSWER.into() {
            self.check_big(msg, ctx);
        } else if msg.tag() == TICK.into() && self.rounds < ROUNDS {
            self.rounds += 1;
            for s in 0..SHARD_COUNT {
                if s != usize::from(self.me) {
                    let peer = ctx.on_shard(MOVER, ShardId(s as u8));
                    self.send_big(ctx, peer.handle(), BIG);
                }
            }
            let _ = ctx.start_timer(Duration::from_millis(PERIOD_MS), TICK);
        }
        Effect::Receive
    }
}

/// The most large messages the live movers had sent and received whole at once (movers that
/// crash start counting again; the shutdown ends them all).
#[derive(Default)]
struct Bulk {
    sent: u64,
    received: u64,
}

impl Scenario for Bulk {
    fn faults(&self) -> FaultSet {
        FAULTS
    }

    fn watched_types(&self) -> Vec<TypeWatch> {
        vec![watch::<Mover>("Mover")]
    }

    fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
        let movers = view.isolates::<Mover>();
        self.sent = self.sent.max(movers.iter().map(|(_, m)| m.sent).sum());
        self.received = self
            .received
            .max(movers.iter().map(|(_, m)| m.received).sum());
        for (h, m) in movers {
            if m.corrupt != 0 || m.out_of_order != 0 {
                return Err(format!(
                    "{h}: {} corrupted and {} out-of-order large messages",
                    m.corrupt, m.out_of_order
                ));
            }
        }
        Ok(())
    }

    fn summary(&self, _view: &SimView<'_, '_>) -> String {
        format!(
            "large messages (most at once over live movers) sent={} received whole={}",
            self.sent, self.received
        )
    }
}

/// Runs the bulk scenario.
pub fn run(config: &SimConfig, _options: &ScenarioOptions) -> Report {
    let types = [TypeSpec::of::<Mover>("mover").capacity(1)];
    let children: Vec<[ChildSpec<'static>; 1]> = (0..SHARD_COUNT)
        .map(|s| [ChildSpec::named(MOVER, &(s as u8), Restart::Permanent)])
        .collect();
    let shards: Vec<ShardSpec<'_>> = children
        .iter()
        .map(|c| ShardSpec {
            root: GroupSpec::one_for_one(c),
        })
        .collect();
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        message_pool_size: 128,
        timer_entries: 16,
        timer_spokes: 16,
        io_buffer_count: 0,
        log_entries: 16,
        transfer_buffer_count: 0,
        ..ShardConfig::DEFAULT
    };
    spec.ring_capacity = 16;
    tina_sim::run(&spec, config, &mut Bulk::default())
}
