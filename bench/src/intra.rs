//! B2 — intra-shard messaging: send + dispatch on one core.
//!
//! Contenders, each single-threaded on the same pinned CPU, interleaved round by round:
//!
//! - **tina ping-pong**: two isolates on one shard bounce a message; every handler call sends
//!   the next message (`ctx.send`) and returns `Receive`. The cost per message is one send
//!   plus one dispatch, including the scheduler's step loop.
//! - **tina fan-out**: one isolate sends one message to each of 1 000 isolates, tick after
//!   tick (it `Yield`s between rounds).
//! - **function call (floor)**: the same ping-pong as two structs calling each other through
//!   a trait object — what the work costs with no messaging at all.
//! - **tokio mpsc ping-pong / fan-out**: a current-thread runtime, tasks joined by bounded
//!   `tokio::sync::mpsc` channels (capacity 256, Tina's default mailbox size).
//! - **actix ping-pong**: two actix actors on one `System` (`do_send`).
//!
//! Reported: nanoseconds per message (median and min–max over the rounds) and the per-round
//! ratio peer ÷ tina (how many times faster Tina is; above 1 means Tina wins).

use crate::harness::{
    Row, Spread, Summary, milli, pin_current_thread, ratio, ratio_spread, two_cpus, verdict,
};
use std::time::Instant as WallInstant;
use tina_core::testing::{TestPlatform, region_for};
use tina_core::*;

/// Options for B2.
pub(crate) struct Options {
    /// Messages per timed run.
    pub(crate) messages: u64,
    /// Interleaved rounds.
    pub(crate) rounds: usize,
}

const FAN: u32 = 1000;

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Ball {
    n: u64,
    /// Unused: keeps the ball at the 16 bytes it has always had, so B2 stays comparable
    /// with earlier measurements.
    pad: u64,
}
payload!(Ball);
accepts!(Player: Ball);

/// The second player: the first ball (delivered from outside, so with no source) goes to
/// it by name; after that each player returns the ball to its source.
const PONG: Name<Player> = Name::new("pong");

struct Player {
    limit: u64,
    last: u64,
}

impl Isolate for Player {
    type Args = u64;
    fn init(limit: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((
            Player {
                limit: *limit,
                last: 0,
            },
            Effect::Receive,
        ))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if let Some(b) = msg.decode::<Ball>() {
            self.last = b.n;
            if b.n < self.limit {
                let ball = Ball { n: b.n + 1, pad: 0 };
                let _ = if msg.src().is_none() {
                    let pong = ctx.on_shard(PONG, ctx.shard_id());
                    ctx.send(pong, &ball)
                } else {
                    ctx.send(msg.src(), &ball)
                };
            }
        }
        Effect::Receive
    }
}

/// The Tina ping-pong: `messages` sends + dispatches between two isolates of one shard (the
/// first message is delivered from outside). Returns the wall time in nanoseconds.
pub(crate) fn tina_ping_pong(messages: u64) -> u64 {
    let types = [TypeSpec::of::<Player>("player").capacity(2)];
    let children = [
        ChildSpec::isolate::<Player>(&messages, Restart::Permanent),
        ChildSpec::named(PONG, &messages, Restart::Permanent),
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
        .deliver(players[0], &Outgoing::new(&Ball { n: 1, pad: 0 }))
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

struct Fanner {
    sinks: [Handle; FAN as usize],
    rounds: u64,
}

struct Sink {
    got: u64,
}

impl Isolate for Sink {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Sink { got: 0 }, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        self.got += 1;
        Effect::Receive
    }
}

impl Isolate for Fanner {
    type Args = u64;
    fn init(rounds: &u64, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let mut sinks = [Handle::NONE; FAN as usize];
        for s in sinks.iter_mut() {
            *s = ctx
                .spawn::<Sink>(&())
                .map_err(|_| CrashReason("no room for sinks"))?
                .handle();
        }
        Ok((
            Fanner {
                sinks,
                rounds: *rounds,
            },
            Effect::Yield,
        ))
    }
    fn handle(&mut self, _: &Message, ctx: &mut Ctx) -> Effect {
        if self.rounds == 0 {
            return Effect::Receive;
        }
        self.rounds -= 1;
        for &s in &self.sinks {
            ctx.send(s, &Ball { n: 0, pad: 0 })
                .expect("a round is consumed before the next one is sent");
        }
        Effect::Yield
    }
}

fn tina_fan_out(messages: u64) -> u64 {
    let rounds = (messages / u64::from(FAN)).max(1);
    let types = [
        TypeSpec::of::<Fanner>("fanner"),
        // Weight 4: the sinks may run 4 × 256 handler calls per tick, so one round of 1 000
        // messages is consumed in the tick it is sent (with the default weight 1, a round
        // takes 4 ticks and the sender must pace itself: bounded queues, by design).
        TypeSpec::of::<Sink>("sink").capacity(FAN).budget_weight(4),
    ];
    let children = [ChildSpec::isolate::<Fanner>(&rounds, Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(FAN),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard.message_pool_size = 4 * FAN;
    let mut memory = region_for(&spec, ShardId(0));
    let mut shard =
        Shard::new(&spec, ShardId(0), memory.bytes(), TestPlatform::default()).expect("boot");
    let total = rounds * u64::from(FAN);
    let start = WallInstant::now();
    let mut tick = 0;
    let mut dispatched = 0u64;
    // Every round: 1 fanner call + FAN sink calls.
    while dispatched < total + rounds {
        tick += 1;
        dispatched += u64::from(shard.step(Instant::from_ticks(tick)).dispatched);
        assert!(tick <= 4 * rounds + 10, "fan-out stalled (sends refused?)");
    }
    let ns = start.elapsed().as_nanos() as u64;
    let got: u64 = shard
        .handles::<Sink>()
        .map(|h| shard.state::<Sink>(h).map_or(0, |s| s.got))
        .sum();
    assert_eq!(got, total, "every message arrived");
    ns * messages / total.max(1)
}

trait Bounce {
    fn bounce(&mut self, n: u64) -> u64;
}

struct Wall(u64);

impl Bounce for Wall {
    #[inline(never)]
    fn bounce(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(n);
        n + 1
    }
}

fn function_calls(messages: u64) -> u64 {
    let mut a = Wall(0);
    let mut b = Wall(0);
    let players: [&mut dyn Bounce; 2] = [&mut a, &mut b];
    let [pa, pb] = players;
    let start = WallInstant::now();
    let mut n = 0;
    while n < messages {
        n = std::hint::black_box(&mut *pa).bounce(n);
        n = std::hint::black_box(&mut *pb).bounce(n);
    }
    let ns = start.elapsed().as_nanos() as u64;
    std::hint::black_box((a.0, b.0));
    ns
}

fn tokio_ping_pong(messages: u64) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (to_b, mut b_in) = tokio::sync::mpsc::channel::<u64>(256);
        let (to_a, mut a_in) = tokio::sync::mpsc::channel::<u64>(256);
        let start = WallInstant::now();
        let b = tokio::spawn(async move {
            while let Some(n) = b_in.recv().await {
                if n >= messages || to_a.send(n + 1).await.is_err() {
                    break;
                }
            }
        });
        to_b.send(1).await.expect("first ball");
        while let Some(n) = a_in.recv().await {
            if n >= messages || to_b.send(n + 1).await.is_err() {
                break;
            }
        }
        drop(to_b);
        let _ = b.await;
        start.elapsed().as_nanos() as u64
    })
}

fn tokio_fan_out(messages: u64) -> u64 {
    let rounds = (messages / u64::from(FAN)).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let total = rounds * u64::from(FAN);
    let ns = rt.block_on(async move {
        let mut senders = Vec::new();
        let mut sinks = Vec::new();
        for _ in 0..FAN {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(256);
            senders.push(tx);
            sinks.push(tokio::spawn(async move {
                let mut got = 0u64;
                while rx.recv().await.is_some() {
                    got += 1;
                }
                got
            }));
        }
        let start = WallInstant::now();
        for round in 0..rounds {
            for tx in &senders {
                tx.send(round).await.expect("sink alive");
            }
            tokio::task::yield_now().await;
        }
        drop(senders);
        let mut got = 0;
        for s in sinks {
            got += s.await.expect("sink");
        }
        assert_eq!(got, total);
        start.elapsed().as_nanos() as u64
    });
    ns * messages / total.max(1)
}

mod actix_pp {
    use actix::prelude::*;

    #[derive(Message)]
    #[rtype(result = "()")]
    pub(super) struct Ball(pub(super) u64);

    pub(super) struct Player {
        pub(super) peer: Option<Recipient<Ball>>,
        pub(super) limit: u64,
        pub(super) done: std::rc::Rc<tokio::sync::Notify>,
    }

    impl Actor for Player {
        type Context = Context<Self>;
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    pub(super) struct Peer(pub(super) Recipient<Ball>);

    impl Handler<Peer> for Player {
        type Result = ();
        fn handle(&mut self, msg: Peer, _: &mut Context<Self>) {
            self.peer = Some(msg.0);
        }
    }

    impl Handler<Ball> for Player {
        type Result = ();
        fn handle(&mut self, msg: Ball, _: &mut Context<Self>) {
            if msg.0 >= self.limit {
                self.done.notify_one();
            } else if let Some(p) = &self.peer {
                p.do_send(Ball(msg.0 + 1));
            }
        }
    }
}

fn actix_ping_pong(messages: u64) -> u64 {
    use actix::prelude::*;
    let system = System::new();
    let ns = system.block_on(async {
        let done = std::rc::Rc::new(tokio::sync::Notify::new());
        let player = || actix_pp::Player {
            peer: None,
            limit: messages,
            done: done.clone(),
        };
        let a = player().start();
        let b = player().start();
        a.do_send(actix_pp::Peer(b.clone().recipient()));
        b.do_send(actix_pp::Peer(a.clone().recipient()));
        let start = WallInstant::now();
        a.do_send(actix_pp::Ball(1));
        done.notified().await;
        start.elapsed().as_nanos() as u64
    });
    drop(system);
    ns
}

#[derive(Clone, Copy)]
enum Contender {
    TinaPingPong,
    TinaFanOut,
    Floor,
    TokioPingPong,
    TokioFanOut,
    ActixPingPong,
}

const CONTENDERS: [(Contender, &str); 6] = [
    (Contender::TinaPingPong, "tina ping-pong"),
    (Contender::TinaFanOut, "tina fan-out 1 000"),
    (Contender::Floor, "function call (floor)"),
    (Contender::TokioPingPong, "tokio mpsc ping-pong"),
    (Contender::TokioFanOut, "tokio mpsc fan-out 1 000"),
    (Contender::ActixPingPong, "actix ping-pong"),
];

impl Contender {
    fn run(self, messages: u64) -> u64 {
        match self {
            Contender::TinaPingPong => tina_ping_pong(messages),
            Contender::TinaFanOut => tina_fan_out(messages),
            Contender::Floor => function_calls(messages),
            Contender::TokioPingPong => tokio_ping_pong(messages),
            Contender::TokioFanOut => tokio_fan_out(messages),
            Contender::ActixPingPong => actix_ping_pong(messages),
        }
    }

    /// The Tina contender this peer is compared with.
    fn tina_twin(self) -> usize {
        match self {
            Contender::TinaFanOut | Contender::TokioFanOut => 1,
            _ => 0,
        }
    }
}

/// Runs B2 and prints its table.
pub(crate) fn run(options: &Options, summary: &mut Summary) {
    let cpu = two_cpus().map(|[c, _]| c);
    println!("## B2 — intra-shard send + dispatch\n");
    match cpu {
        Some(c) => {
            pin_current_thread(c);
            println!("All contenders single-threaded on CPU {c} (pinned).");
        }
        None => println!("UNPINNED: fewer than two CPUs are allowed to this process."),
    }
    println!(
        "{} messages per timed run, {} interleaved rounds.\n",
        options.messages, options.rounds
    );
    for (c, _) in CONTENDERS {
        c.run((options.messages / 10).max(2_000));
    }
    let mut ps: Vec<Vec<u64>> = vec![Vec::new(); CONTENDERS.len()];
    for _ in 0..options.rounds {
        for (i, (c, _)) in CONTENDERS.iter().enumerate() {
            let ns = c.run(options.messages);
            ps[i].push(ns * 1000 / options.messages);
        }
    }
    println!("| contender | ns/msg median | ns/msg min–max | this ÷ tina, median (min–max) |");
    println!("|---|---:|---:|---:|");
    for (i, (c, name)) in CONTENDERS.iter().enumerate() {
        let s = Spread::of(&ps[i]);
        let twin = c.tina_twin();
        let ratios: Vec<u64> = ps[i]
            .iter()
            .zip(&ps[twin])
            .map(|(&peer, &tina)| peer * 1000 / tina.max(1))
            .collect();
        let r = Spread::of(&ratios);
        let rel = if i == twin {
            "—".to_string()
        } else {
            format!("{} ({}–{})", ratio(r.median), ratio(r.min), ratio(r.max))
        };
        println!(
            "| {name} | {} | {}–{} | {rel} |",
            milli(s.median),
            milli(s.min),
            milli(s.max)
        );
        if matches!(c, Contender::TokioPingPong | Contender::TokioFanOut) {
            let tina = Spread::of(&ps[twin]);
            let tina_over_peer: Vec<u64> = ps[twin]
                .iter()
                .zip(&ps[i])
                .map(|(&tina, &peer)| tina * 1000 / peer.max(1))
                .collect();
            let per_tina = Spread::of(&tina_over_peer).median;
            summary.add(Row {
                id: format!("B2 {}", CONTENDERS[twin].1.trim_start_matches("tina ")),
                metric: "send + dispatch, ns/msg".into(),
                tina: milli(tina.median),
                peer: format!("{name} {}", milli(s.median)),
                ratio: ratio_spread(&tina_over_peer),
                target: verdict(
                    "≤ 30 ns and ≥ 10× tokio",
                    tina.median <= 30_000 && per_tina <= 100,
                ),
            });
        }
    }
    println!();
}
