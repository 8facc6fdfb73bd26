//! B6 (isolate half) — memory per idle isolate.
//!
//! Each contender runs in a fresh child process (this binary re-executed with a hidden
//! sub-command), so allocator state from one cannot flatter another. The child reads its
//! resident set (`/proc/self/statm`) before and after creating `count` idle units and prints
//! the difference:
//!
//! - **tina**: one shard whose spec holds `count` instances of a small isolate type (a
//!   counter and a handle), all spawned as dynamic children and parked in `Receive`. The shard's
//!   whole region (pool, timers, buffers) is included, so this is the honest total.
//! - **tokio**: `count` tasks on a current-thread runtime, each parked on its own bounded mpsc
//!   receiver (the sender kept), the closest tokio equivalent of an isolate with a mailbox.

use std::process::Command;
use tina_core::testing::{TestPlatform, region_for};
use tina_core::*;

/// Idle units per run.
pub(crate) fn count(quick: bool) -> u32 {
    if quick { 10_000 } else { 100_000 }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

struct Idle {
    _seen: u64,
    _peer: Handle,
}

impl Isolate for Idle {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((
            Idle {
                _seen: 0,
                _peer: Handle::NONE,
            },
            Effect::Receive,
        ))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Receive
    }
}

struct Spawner;

impl Isolate for Spawner {
    type Args = u32;
    fn init(n: &u32, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        for _ in 0..*n {
            ctx.spawn::<Idle>(&())
                .map_err(|_| CrashReason("spawn failed"))?;
        }
        Ok((Spawner, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Receive
    }
}

fn tina_child(n: u32) -> u64 {
    let before = rss_bytes();
    let types = [
        TypeSpec::of::<Spawner>("spawner"),
        TypeSpec::of::<Idle>("idle").capacity(n),
    ];
    let children = [ChildSpec::isolate::<Spawner>(&n, Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(n),
    }];
    let spec = SystemSpec::new(&shards, &types);
    let mut memory = region_for(&spec, ShardId(0));
    let mut shard =
        Shard::new(&spec, ShardId(0), memory.bytes(), TestPlatform::default()).expect("boot");
    shard.step(Instant::from_ticks(1));
    assert_eq!(shard.live_isolates(), n + 1);
    let after = rss_bytes();
    std::hint::black_box(&shard);
    after.saturating_sub(before)
}

fn tokio_child(n: u32) -> u64 {
    let before = rss_bytes();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let after = rt.block_on(async move {
        let mut senders = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(256);
            senders.push(tx);
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
        }
        tokio::task::yield_now().await;
        let after = rss_bytes();
        std::hint::black_box(&senders);
        after
    });
    after.saturating_sub(before)
}

/// The hidden sub-command a child process runs: prints the RSS growth in bytes.
pub(crate) fn child(contender: &str, n: u32) {
    let bytes = match contender {
        "tina" => tina_child(n),
        "tokio" => tokio_child(n),
        _ => 0,
    };
    println!("{bytes}");
}

fn measure(contender: &str, n: u32) -> u64 {
    let exe = std::env::current_exe().expect("own executable");
    let out = Command::new(exe)
        .args(["b6-child", contender, &n.to_string()])
        .output()
        .expect("child process");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Runs B6 (isolates) and prints its table.
pub(crate) fn run(quick: bool, rounds: usize, summary: &mut crate::harness::Summary) {
    let n = count(quick);
    println!("## B6 — memory per idle isolate\n");
    println!(
        "{n} idle units, each contender in a fresh process, RSS growth from /proc/self/statm, \
         {rounds} interleaved rounds.\n"
    );
    let mut tina = Vec::new();
    let mut tokio = Vec::new();
    for _ in 0..rounds {
        tina.push(measure("tina", n));
        tokio.push(measure("tokio", n));
    }
    let per = |v: &[u64]| -> Vec<u64> { v.iter().map(|b| b / u64::from(n)).collect() };
    let (tina_per, tokio_per) = (per(&tina), per(&tokio));
    let t = crate::harness::Spread::of(&tina_per);
    let k = crate::harness::Spread::of(&tokio_per);
    let ratios: Vec<u64> = tokio_per
        .iter()
        .zip(&tina_per)
        .map(|(&k, &t)| k * 1000 / t.max(1))
        .collect();
    let r = crate::harness::Spread::of(&ratios);
    println!("| contender | bytes per idle unit, median (min–max) | tokio ÷ tina |");
    println!("|---|---:|---:|");
    println!(
        "| tina isolate (whole shard region included) | {} ({}–{}) | — |",
        t.median, t.min, t.max
    );
    println!(
        "| tokio task + bounded mpsc | {} ({}–{}) | {} ({}–{}) |",
        k.median,
        k.min,
        k.max,
        crate::harness::ratio(r.median),
        crate::harness::ratio(r.min),
        crate::harness::ratio(r.max)
    );
    println!();
    let tina_over_tokio: Vec<u64> = tina_per
        .iter()
        .zip(&tokio_per)
        .map(|(&t, &k)| t * 1000 / k.max(1))
        .collect();
    summary.add(crate::harness::Row {
        id: "B6 isolates".into(),
        metric: format!("RSS bytes per idle isolate ({n})"),
        tina: t.median.to_string(),
        peer: format!("tokio task + mpsc {}", k.median),
        ratio: crate::harness::ratio_spread(&tina_over_tokio),
        target: "lower is better".into(),
    });
}
