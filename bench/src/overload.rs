//! B4 — overload: a producer offers 10× what the consumer can take; resident memory over time
//! and exact drop accounting.
//!
//! The consumer spends a fixed [`WORK_NS`] of CPU on every message (a spin on the clock), so
//! it can take about `1 s / WORK_NS` messages per second; the producer offers ten times that,
//! on a fixed schedule: every millisecond it sends until it has sent
//! `elapsed ms × OFFERED_PER_MS` in total (so a late wake-up is caught up, never skipped). The
//! producer runs on the first CPU, the consumer on the second; every message carries a 96-byte
//! payload (Tina's largest inline payload; its envelope is 128 bytes).
//!
//! Each contender runs in a fresh child process (`tina-bench child overload <contender> …`)
//! which samples its own resident set (`/proc/self/statm`) every 100 ms from a monitor thread,
//! ends the offered window, and prints the samples and its counts:
//!
//! - **tina**: two shards (`tina_linux::run`, CPUs pinned, default `ShardConfig`, mailbox 256,
//!   rings of 1024). A producer isolate on shard 0, woken by a one-tick timer, sends to a
//!   consumer isolate on shard 1 through its well-known handle (type 1, slot 0, generation 1).
//!   A refused send (the ring to shard 1 full) is a drop the producer counts; a message that
//!   reaches shard 1 when the consumer's mailbox is full is dropped and counted by shard 1's
//!   core. After the window the producer stops, the consumer drains, the runtime shuts down,
//!   and the child checks `offered − delivered == refused + dropped at the destination`
//!   exactly, and that the core's own counters agree with the producer's.
//! - **tokio-unbounded**: `tokio::sync::mpsc::unbounded_channel` between two current-thread
//!   runtimes on pinned threads. Nothing is refused: the backlog grows. At the end of the
//!   window the consumer stops; `offered − delivered` must equal what is still queued.
//! - **tokio-bounded**: `tokio::sync::mpsc::channel(256)` (Tina's default mailbox capacity);
//!   the producer `send().await`s, so it is held back to the consumer's pace and offers far
//!   less than scheduled. Drained at the end; `offered == delivered`.
//!
//! Growth is measured from the sample at the end of the warm-up (boot and the first pages
//! touched) to the largest sample up to the end of the offered window; the peak over the whole
//! run (drain and teardown included) is reported too. A child whose RSS passes [`RSS_LIMIT`] ends its window early and says so.

use crate::harness::{self, Common, Row, Spread, Summary};
use std::io::Write;
use std::process::{Command, ExitCode};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Handle, Isolate, Message, Payload,
    Restart, ShardId, ShardSpec, SystemSpec, TypeId, TypeSpec, UserTag,
};

/// CPU the consumer spends on each message: its capacity is `1 s / WORK_NS` messages/s.
pub(crate) const WORK_NS: u64 = 20_000;
/// How many times the consumer's capacity the producer offers.
pub(crate) const OVERLOAD: u64 = 10;
/// Messages the producer offers per millisecond (10 × 50 000/s = 500 000/s).
pub(crate) const OFFERED_PER_MS: u64 = OVERLOAD * 1_000_000 / WORK_NS;
/// The bounded peer's capacity: Tina's default mailbox capacity.
pub(crate) const BOUNDED_CAPACITY: usize = tina_core::spec::MAILBOX_CAPACITY_DEFAULT as usize;
/// A child whose resident set passes this ends its window early (the machine must survive the
/// unbounded peer).
pub(crate) const RSS_LIMIT: u64 = 6 << 30;
/// Interval between RSS samples.
const SAMPLE_MS: u64 = 100;
/// The growth target from the issue.
const GROWTH_TARGET: u64 = 1 << 20;

const CONTENDERS: [&str; 3] = ["tina", "tokio-unbounded", "tokio-bounded"];

// ---------------------------------------------------------------------------------------------
// Child side.

/// Set by the child's main thread once the contender is ready: the window starts.
static GO: AtomicBool = AtomicBool::new(false);
/// Set by the monitor at the end of the window (or when the RSS limit is passed).
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by the child's main thread once the contender has finished (drained or stopped).
static DONE: AtomicBool = AtomicBool::new(false);
/// Tina's producer: messages offered, sends refused, and whether it has stopped.
static OFFERED: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static PRODUCER_DONE: AtomicBool = AtomicBool::new(false);
/// Tina's consumer: messages handled, and messages that arrived out of order.
static DELIVERED: AtomicU64 = AtomicU64::new(0);
static ORDER_ERRORS: AtomicU64 = AtomicU64::new(0);

fn page_size() -> u64 {
    // SAFETY: sysconf with a constant name has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

/// The resident set, read without allocating (so the monitor adds nothing to what it measures).
fn rss_bytes(page: u64) -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let n = std::fs::File::open("/proc/self/statm")
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    let pages: u64 = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|text| text.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * page
}

/// The per-message work: a spin on the clock for `WORK_NS`.
fn work() {
    let start = StdInstant::now();
    while (start.elapsed().as_nanos() as u64) < WORK_NS {
        std::hint::spin_loop();
    }
}

/// The message: 96 bytes, a sequence number and a body.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Item {
    seq: u64,
    body: [u64; 11],
}
impl Payload for Item {
    const TAG: UserTag = UserTag::new(0x40);
}

impl Item {
    fn new(seq: u64) -> Item {
        Item {
            seq,
            body: [seq; 11],
        }
    }
}

/// What the monitor recorded.
struct Monitor {
    /// (ms since the window started, resident bytes).
    samples: Vec<(u64, u64)>,
    /// Length of the offered window, ms.
    window_ms: u64,
    /// Whether the RSS limit ended the window early.
    early: bool,
}

/// Waits for `GO`, samples the RSS every `SAMPLE_MS`, sets `STOP` after `window_ms` (or when
/// the RSS passes `RSS_LIMIT`), keeps sampling until `DONE`, then takes a last sample.
fn monitor(window_ms: u64, limit: u64) -> Monitor {
    let page = page_size();
    // Room for every sample (the window, then up to a minute of drain), written once now so
    // its pages are resident before the window starts: recording adds nothing to the RSS.
    let room = (window_ms / SAMPLE_MS) as usize + 700;
    let mut samples = Vec::with_capacity(room);
    samples.resize(room, (u64::MAX, u64::MAX));
    samples.clear();
    while !GO.load(Ordering::Acquire) {
        std::thread::sleep(StdDuration::from_millis(1));
    }
    let start = StdInstant::now();
    let ms = |start: StdInstant| start.elapsed().as_millis() as u64;
    samples.push((0, rss_bytes(page)));
    let mut next = SAMPLE_MS;
    let (stop_ms, early) = loop {
        let now = ms(start);
        if now < next.min(window_ms) {
            std::thread::sleep(StdDuration::from_millis(next.min(window_ms) - now));
            continue;
        }
        let rss = rss_bytes(page);
        if samples.len() + 1 < room {
            samples.push((now, rss));
        }
        next += SAMPLE_MS;
        if now >= window_ms || rss > limit {
            STOP.store(true, Ordering::Release);
            break (now, now < window_ms);
        }
    };
    while !DONE.load(Ordering::Acquire) {
        std::thread::sleep(StdDuration::from_millis(SAMPLE_MS));
        if samples.len() + 1 < room {
            samples.push((ms(start), rss_bytes(page)));
        }
    }
    samples.push((ms(start), rss_bytes(page)));
    Monitor {
        samples,
        window_ms: stop_ms,
        early,
    }
}

/// The counts a child reports.
#[derive(Default)]
struct Counts {
    /// Sends attempted.
    offered: u64,
    /// Messages the consumer handled.
    delivered: u64,
    /// Sends refused at the producer (Tina: the ring to the consumer's shard was full).
    refused: u64,
    /// Messages dropped where they arrived (Tina: the consumer's mailbox full, pool exhausted,
    /// stale, quarantined), counted by the consumer shard's core.
    dest_dropped: u64,
    /// Messages still queued when the run ended (tokio unbounded: the backlog).
    queued: u64,
    /// Tina only: the core counters behind `refused` and `dest_dropped`.
    ring_full: u64,
    mailbox_full: u64,
    pool_exhausted: u64,
    /// Messages the consumer saw out of order (must be 0).
    order_errors: u64,
}

// Tina's two isolates.

const TICK: UserTag = UserTag::new(0x41);

#[derive(Clone, Copy)]
struct ProducerArgs {
    consumer: Handle,
}

struct Producer {
    consumer: Handle,
    start: Option<u64>,
    offered: u64,
    refused: u64,
}

impl Isolate for Producer {
    type Args = ProducerArgs;
    fn init(args: &ProducerArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_ticks(1), TICK)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((
            Producer {
                consumer: args.consumer,
                start: None,
                offered: 0,
                refused: 0,
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag() != TICK.into() {
            return Effect::Receive;
        }
        if STOP.load(Ordering::Acquire) {
            OFFERED.store(self.offered, Ordering::Relaxed);
            REFUSED.store(self.refused, Ordering::Relaxed);
            PRODUCER_DONE.store(true, Ordering::Release);
            return Effect::Receive;
        }
        if GO.load(Ordering::Acquire) {
            let now = ctx.now().ticks();
            let start = *self.start.get_or_insert(now);
            // 1 tick = 1 ms (the spec default).
            let target = (now - start + 1) * OFFERED_PER_MS;
            while self.offered < target {
                if ctx.send(self.consumer, &Item::new(self.offered)).is_err() {
                    self.refused += 1;
                }
                self.offered += 1;
            }
            OFFERED.store(self.offered, Ordering::Relaxed);
            REFUSED.store(self.refused, Ordering::Relaxed);
        }
        if ctx.start_timer(Duration::from_ticks(1), TICK).is_err() {
            return Effect::Crash(CrashReason("no timer"));
        }
        Effect::Receive
    }
}

struct Consumer {
    next: u64,
    delivered: u64,
}

impl Isolate for Consumer {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((
            Consumer {
                next: 0,
                delivered: 0,
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if let Some(item) = msg.decode::<Item>() {
            if item.seq < self.next || item.body[10] != item.seq {
                ORDER_ERRORS.fetch_add(1, Ordering::Relaxed);
            }
            self.next = item.seq + 1;
            work();
            self.delivered += 1;
            DELIVERED.store(self.delivered, Ordering::Relaxed);
        }
        Effect::Receive
    }
}

fn tina_child(cpus: [usize; 2]) -> Counts {
    let types = [
        TypeSpec::of::<Producer>("producer"),
        TypeSpec::of::<Consumer>("consumer"),
    ];
    let consumer = Handle::new(ShardId(1), TypeId(1), 0, 1).expect("consumer handle");
    let producer = [ChildSpec::isolate::<Producer>(
        &ProducerArgs { consumer },
        Restart::Temporary,
    )];
    let consumers = [ChildSpec::isolate::<Consumer>(&(), Restart::Temporary)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&producer),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&consumers),
        },
    ];
    let spec = SystemSpec::new(&shards, &types);
    let config = tina_linux::Config {
        cpus: Some(cpus.to_vec()),
        signals: false,
        announce: false,
        log_level: tina_core::log::Level::Warn,
        ..tina_linux::Config::default()
    };
    let control = tina_linux::Control::new();
    let report = std::thread::scope(|scope| {
        let control = &control;
        scope.spawn(move || {
            if !control.wait_running(StdDuration::from_secs(10)) {
                eprintln!("tina did not boot");
                STOP.store(true, Ordering::Release);
                GO.store(true, Ordering::Release);
                control.force_stop();
                return;
            }
            GO.store(true, Ordering::Release);
            while !STOP.load(Ordering::Acquire) {
                std::thread::sleep(StdDuration::from_millis(10));
            }
            // Drain: the producer has stopped, nothing is queued on the consumer's shard and
            // the consumer has handled nothing new for a few polls.
            let mut last = u64::MAX;
            let mut quiet = 0;
            let deadline = StdInstant::now() + StdDuration::from_secs(30);
            while quiet < 5 && StdInstant::now() < deadline {
                std::thread::sleep(StdDuration::from_millis(10));
                let queued = control.stats().get(1).map_or(0, |s| s.messages_queued);
                let delivered = DELIVERED.load(Ordering::Relaxed);
                if PRODUCER_DONE.load(Ordering::Acquire) && queued == 0 && delivered == last {
                    quiet += 1;
                } else {
                    quiet = 0;
                }
                last = delivered;
            }
            control.shutdown();
        });
        tina_linux::run(&spec, &config, control)
    });
    let report = report.unwrap_or_else(|e| panic!("tina boot failed: {e}"));
    assert!(report.clean, "tina's run did not end cleanly");
    let (p, c) = (&report.stats[0].counters, &report.stats[1].counters);
    assert_eq!(p.crashes + c.crashes, 0, "an isolate crashed");
    let counts = Counts {
        offered: OFFERED.load(Ordering::Relaxed),
        delivered: DELIVERED.load(Ordering::Relaxed),
        refused: REFUSED.load(Ordering::Relaxed),
        dest_dropped: c.mailbox_full + c.pool_exhausted + c.stale_deliveries + c.quarantine_drops,
        queued: 0,
        ring_full: p.ring_full,
        mailbox_full: c.mailbox_full,
        pool_exhausted: c.pool_exhausted,
        order_errors: ORDER_ERRORS.load(Ordering::Relaxed),
    };
    // The core's counters must tell the same story as the isolates.
    let core_refused = p.ring_full + p.quarantine_drops + p.stale_deliveries;
    let mut bad = Vec::new();
    if core_refused != counts.refused {
        bad.push(format!(
            "producer refusals {} ≠ shard 0 ring_full + quarantine_drops + stale_deliveries {}",
            counts.refused, core_refused
        ));
    }
    if p.sends_remote != counts.offered - counts.refused {
        bad.push(format!(
            "shard 0 sends_remote {} ≠ offered − refused {}",
            p.sends_remote,
            counts.offered - counts.refused
        ));
    }
    if c.inbound_delivered != counts.delivered {
        bad.push(format!(
            "shard 1 inbound_delivered {} ≠ consumer's handled count {}",
            c.inbound_delivered, counts.delivered
        ));
    }
    if !bad.is_empty() {
        eprintln!("tina counters disagree:\n  {}", bad.join("\n  "));
        std::process::exit(3);
    }
    counts
}

/// The producer's schedule on a tokio current-thread runtime: `send` is awaited on every
/// message (immediate for the unbounded channel, held back when the bounded one is full).
async fn tokio_produce<F: std::future::Future<Output = bool>>(
    mut send: impl FnMut(Item) -> F,
) -> u64 {
    let start = tokio::time::Instant::now();
    let mut offered = 0u64;
    let mut tick = 0u64;
    while !STOP.load(Ordering::Acquire) {
        let elapsed_ms = start.elapsed().as_millis() as u64;
        let target = (elapsed_ms + 1) * OFFERED_PER_MS;
        while offered < target && !STOP.load(Ordering::Acquire) {
            assert!(send(Item::new(offered)).await, "receiver gone");
            offered += 1;
        }
        tick = tick.max(elapsed_ms) + 1;
        tokio::time::sleep_until(start + StdDuration::from_millis(tick)).await;
    }
    offered
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn tokio_child(cpus: [usize; 2], bounded: bool) -> Counts {
    let barrier = Barrier::new(3);
    let (offered, delivered, order_errors, queued) = std::thread::scope(|scope| {
        let barrier = &barrier;
        let (producer, consumer) = if bounded {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Item>(BOUNDED_CAPACITY);
            let producer = scope.spawn(move || {
                harness::pin_current_thread(cpus[0]);
                let rt = runtime();
                barrier.wait();
                let tx = &tx;
                rt.block_on(tokio_produce(move |item| async move {
                    tx.send(item).await.is_ok()
                }))
            });
            let consumer = scope.spawn(move || {
                harness::pin_current_thread(cpus[1]);
                let rt = runtime();
                barrier.wait();
                let (mut next, mut delivered, mut errors) = (0u64, 0u64, 0u64);
                rt.block_on(async {
                    while let Some(item) = rx.recv().await {
                        if item.seq != next || item.body[10] != item.seq {
                            errors += 1;
                        }
                        next = item.seq + 1;
                        work();
                        delivered += 1;
                    }
                });
                (delivered, errors, 0u64)
            });
            (producer, consumer)
        } else {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Item>();
            let producer = scope.spawn(move || {
                harness::pin_current_thread(cpus[0]);
                let rt = runtime();
                barrier.wait();
                rt.block_on(tokio_produce(|item| {
                    let ok = tx.send(item).is_ok();
                    async move { ok }
                }))
            });
            let consumer = scope.spawn(move || {
                harness::pin_current_thread(cpus[1]);
                let rt = runtime();
                barrier.wait();
                let (mut next, mut delivered, mut errors) = (0u64, 0u64, 0u64);
                rt.block_on(async {
                    while let Some(item) = rx.recv().await {
                        if item.seq != next || item.body[10] != item.seq {
                            errors += 1;
                        }
                        next = item.seq + 1;
                        work();
                        delivered += 1;
                        if STOP.load(Ordering::Acquire) {
                            break;
                        }
                    }
                });
                // The backlog is counted once the producer has stopped (the main thread
                // joins it first), so this waits for the sender to be gone.
                while !rx.is_closed() {
                    std::thread::sleep(StdDuration::from_millis(1));
                }
                let queued = rx.len() as u64;
                // The backlog is freed with the process, not here (it may be gigabytes).
                std::mem::forget(rx);
                (delivered, errors, queued)
            });
            (producer, consumer)
        };
        barrier.wait();
        GO.store(true, Ordering::Release);
        let offered = producer.join().expect("producer panicked");
        let (delivered, errors, queued) = consumer.join().expect("consumer panicked");
        (offered, delivered, errors, queued)
    });
    Counts {
        offered,
        delivered,
        queued,
        order_errors,
        ..Counts::default()
    }
}

/// `tina-bench child overload <contender> <window ms> <rss limit bytes>`: runs one contender
/// and prints `sample <ms> <bytes>` lines, then one `result key=value …` line.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let contender = args.first().map_or("", String::as_str);
    let window_ms: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let limit: u64 = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(RSS_LIMIT);
    let Some(cpus) = harness::two_cpus() else {
        eprintln!("B4 needs two CPUs");
        return ExitCode::FAILURE;
    };
    if !CONTENDERS.contains(&contender) {
        eprintln!("unknown B4 contender `{contender}`");
        return ExitCode::FAILURE;
    }
    let (counts, mon) = std::thread::scope(|scope| {
        let mon = scope.spawn(move || monitor(window_ms, limit));
        let counts = std::panic::catch_unwind(|| match contender {
            "tina" => tina_child(cpus),
            "tokio-unbounded" => tokio_child(cpus, false),
            _ => tokio_child(cpus, true),
        });
        // Release the monitor whatever happened (it may still be waiting for the start).
        GO.store(true, Ordering::Release);
        STOP.store(true, Ordering::Release);
        DONE.store(true, Ordering::Release);
        (counts, mon.join().expect("monitor panicked"))
    });
    let Ok(counts) = counts else {
        eprintln!("{contender}: the run panicked");
        return ExitCode::from(4);
    };
    let mut out = std::io::stdout().lock();
    for (ms, bytes) in &mon.samples {
        let _ = writeln!(out, "sample {ms} {bytes}");
    }
    let c = &counts;
    let _ = writeln!(
        out,
        "result window_ms={} early={} offered={} delivered={} refused={} dest_dropped={} \
         queued={} ring_full={} mailbox_full={} pool_exhausted={} order_errors={}",
        mon.window_ms,
        u64::from(mon.early),
        c.offered,
        c.delivered,
        c.refused,
        c.dest_dropped,
        c.queued,
        c.ring_full,
        c.mailbox_full,
        c.pool_exhausted,
        c.order_errors
    );
    let _ = out.flush();
    if c.offered != c.delivered + c.refused + c.dest_dropped + c.queued || c.order_errors != 0 {
        eprintln!(
            "{contender}: offered {} ≠ delivered {} + refused {} + dropped at destination {} + \
             queued {} (or {} messages out of order)",
            c.offered, c.delivered, c.refused, c.dest_dropped, c.queued, c.order_errors
        );
        return ExitCode::from(3);
    }
    // The unbounded backlog is not freed (it may be gigabytes): leave at once.
    std::process::exit(0)
}

// ---------------------------------------------------------------------------------------------
// Parent side.

/// One child run, parsed.
struct Run {
    samples: Vec<(u64, u64)>,
    window_ms: u64,
    early: bool,
    counts: Counts,
}

impl Run {
    /// RSS when the window started.
    fn rss_start(&self) -> u64 {
        self.samples.first().map_or(0, |s| s.1)
    }

    /// RSS at the end of the warm-up: the first sample at or after `warmup_ms`.
    fn rss_warm(&self, warmup_ms: u64) -> u64 {
        self.samples
            .iter()
            .find(|s| s.0 >= warmup_ms)
            .or(self.samples.last())
            .map_or(0, |s| s.1)
    }

    /// The largest sample.
    fn peak(&self) -> u64 {
        self.samples.iter().map(|s| s.1).max().unwrap_or(0)
    }

    /// Growth after warm-up: the largest sample from the warm-up's end to the window's end,
    /// minus the RSS at the warm-up's end. (The drain and teardown count in the peak only.)
    fn growth(&self, warmup_ms: u64) -> u64 {
        let warm = self.rss_warm(warmup_ms);
        let later = self
            .samples
            .iter()
            .filter(|s| s.0 >= warmup_ms && s.0 <= self.window_ms)
            .map(|s| s.1)
            .max()
            .unwrap_or(warm);
        later.saturating_sub(warm)
    }

    /// RSS at `ms` (the first sample at or after it).
    fn rss_at(&self, ms: u64) -> u64 {
        self.samples
            .iter()
            .find(|s| s.0 >= ms)
            .or(self.samples.last())
            .map_or(0, |s| s.1)
    }

    fn per_s(&self, n: u64) -> u64 {
        n * 1000 / self.window_ms.max(1)
    }

    fn dropped(&self) -> u64 {
        self.counts.refused + self.counts.dest_dropped
    }
}

fn run_child(contender: &str, window_ms: u64) -> Run {
    let exe = std::env::current_exe().expect("own executable");
    let out = Command::new(exe)
        .args([
            "child",
            "overload",
            contender,
            &window_ms.to_string(),
            &RSS_LIMIT.to_string(),
        ])
        .output()
        .expect("B4 child process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "B4 {contender}: child failed ({}):\n{}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut samples = Vec::new();
    let mut fields = std::collections::HashMap::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("sample") => {
                let mut n = words.filter_map(|w| w.parse::<u64>().ok());
                if let (Some(ms), Some(bytes)) = (n.next(), n.next()) {
                    samples.push((ms, bytes));
                }
            }
            Some("result") => {
                for w in words {
                    if let Some((k, v)) = w.split_once('=') {
                        fields.insert(k.to_string(), v.parse::<u64>().unwrap_or(0));
                    }
                }
            }
            _ => {}
        }
    }
    let get = |k: &str| -> u64 {
        *fields
            .get(k)
            .unwrap_or_else(|| panic!("B4 {contender}: no `{k}` in the child's output:\n{stdout}"))
    };
    let run = Run {
        samples,
        window_ms: get("window_ms"),
        early: get("early") != 0,
        counts: Counts {
            offered: get("offered"),
            delivered: get("delivered"),
            refused: get("refused"),
            dest_dropped: get("dest_dropped"),
            queued: get("queued"),
            ring_full: get("ring_full"),
            mailbox_full: get("mailbox_full"),
            pool_exhausted: get("pool_exhausted"),
            order_errors: get("order_errors"),
        },
    };
    assert!(!run.samples.is_empty(), "B4 {contender}: no RSS samples");
    assert_eq!(
        run.counts.offered,
        run.counts.delivered + run.dropped() + run.counts.queued,
        "B4 {contender}: offered ≠ delivered + dropped + queued"
    );
    run
}

fn mib(bytes: u64) -> String {
    let tenths = (bytes * 10 + (1 << 19)) >> 20;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn kib(bytes: u64) -> String {
    ((bytes + 512) >> 10).to_string()
}

fn spread(values: &[u64], show: impl Fn(u64) -> String) -> String {
    let s = Spread::of(values);
    format!("{} ({}–{})", show(s.median), show(s.min), show(s.max))
}

/// Thousands as `k`.
fn k(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{}k", (n + 500) / 1000)
    }
}

/// Runs B4 and adds its rows to the summary.
pub(crate) fn run(common: &Common, summary: &mut Summary) {
    // `tina-bench overload` runs the 60 s window; `all` uses 20 s windows so the
    // whole suite stays reasonable (3 contenders × 5 rounds × ~21 s ≈ 5 minutes).
    let window_s = common.seconds.unwrap_or(if common.quick {
        2
    } else if common.whole_suite {
        20
    } else {
        60
    });
    let window_ms = window_s * 1000;
    let warmup_ms = (window_ms / 4).min(5000);
    let rounds = common.rounds;
    let Some(cpus) = harness::two_cpus() else {
        println!("## B4 — overload\n\nskipped: needs two CPUs\n");
        return;
    };
    println!("## B4 — overload: RSS over time, drops counted exactly\n");
    println!(
        "Producer on CPU {} offers {} messages/s (10× the consumer's capacity: the consumer \
         spins {} µs per message, ≈ {} messages/s) for a {} s window; consumer on CPU {}. \
         96-byte payloads. Each contender in a fresh child process sampling its RSS \
         (/proc/self/statm) every {} ms; growth is the largest RSS between the end of a {} ms \
         warm-up and the end of the window, minus the RSS at the warm-up's end; the peak covers \
         the whole run. {} interleaved round(s). Tina: two shards, default ShardConfig (mailbox {}, rings of \
         1024, pool 4096). tokio bounded: capacity {}. CPU: {}.\n",
        cpus[0],
        OFFERED_PER_MS * 1000,
        WORK_NS / 1000,
        1_000_000_000 / WORK_NS,
        window_s,
        cpus[1],
        SAMPLE_MS,
        warmup_ms,
        rounds,
        BOUNDED_CAPACITY,
        BOUNDED_CAPACITY,
        harness::cpu_model()
    );
    let mut runs: Vec<Vec<Run>> = CONTENDERS.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, c) in CONTENDERS.iter().enumerate() {
            runs[i].push(run_child(c, window_ms));
        }
    }

    println!(
        "| contender | RSS at start, MiB | RSS after warm-up, MiB | peak RSS, MiB | growth after \
         warm-up, KiB | offered/s | delivered/s | dropped | queued at end |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, c) in CONTENDERS.iter().enumerate() {
        let r = &runs[i];
        let col = |f: &dyn Fn(&Run) -> u64, show: &dyn Fn(u64) -> String| {
            spread(&r.iter().map(f).collect::<Vec<_>>(), show)
        };
        let early = r.iter().filter(|x| x.early).count();
        // The producer of Tina and of the unbounded peer must keep the schedule; the bounded
        // peer's producer is held back by design.
        let behind = r
            .iter()
            .filter(|x| x.per_s(x.counts.offered) * 100 < OFFERED_PER_MS * 1000 * 95)
            .count();
        let mut label = String::new();
        if early > 0 {
            label += &format!(" (RSS limit hit in {early} round(s): window cut short)");
        }
        if behind > 0 && i < 2 {
            label += &format!(
                " (**producer-bound**: below 95% of the offered schedule in {behind} round(s))"
            );
        }
        println!(
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c,
            label,
            col(&|x| x.rss_start(), &mib),
            col(&|x| x.rss_warm(warmup_ms), &mib),
            col(&|x| x.peak(), &mib),
            col(&|x| x.growth(warmup_ms), &kib),
            col(&|x| x.per_s(x.counts.offered), &k),
            col(&|x| x.per_s(x.counts.delivered), &k),
            col(&|x| x.dropped(), &k),
            col(&|x| x.counts.queued, &k),
        );
    }
    println!();

    // RSS over time, last round.
    let step_ms = (window_ms / 10).max(SAMPLE_MS);
    println!("RSS over time (last round), MiB:\n");
    println!("| t, s | {} |", CONTENDERS.join(" | "));
    println!("|---:|{}", "---:|".repeat(CONTENDERS.len()));
    let mut t = 0;
    while t <= window_ms {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| r.last().map_or(String::new(), |x| mib(x.rss_at(t))))
            .collect();
        println!(
            "| {}.{} | {} |",
            t / 1000,
            t % 1000 / 100,
            cells.join(" | ")
        );
        t += step_ms;
    }
    println!();

    // Tina's drop accounting, every round.
    println!(
        "Tina's accounting, every round: offered − delivered = refused at send (shard 0 \
         `ring_full`) + dropped at the destination (shard 1 `mailbox_full` + `pool_exhausted` + \
         stale + quarantine), checked exactly by the child and again here:\n"
    );
    println!(
        "| round | offered | delivered | offered − delivered | ring_full (shard 0) | \
         mailbox_full (shard 1) | pool_exhausted (shard 1) | drops total | exact |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (round, x) in runs[0].iter().enumerate() {
        let exact = x.counts.offered - x.counts.delivered == x.dropped();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            round + 1,
            x.counts.offered,
            x.counts.delivered,
            x.counts.offered - x.counts.delivered,
            x.counts.ring_full,
            x.counts.mailbox_full,
            x.counts.pool_exhausted,
            x.dropped(),
            if exact { "yes" } else { "**NO**" }
        );
        assert!(exact, "B4: Tina's drops do not add up");
    }
    println!();
    println!(
        "tokio unbounded drops nothing: offered − delivered is the backlog still queued at the \
         end of the window. tokio bounded drops nothing either: its producer is held back \
         (offered/s above is what it managed, against {} scheduled).\n",
        OFFERED_PER_MS * 1000
    );

    let growth = |i: usize| -> Vec<u64> { runs[i].iter().map(|x| x.growth(warmup_ms)).collect() };
    let (tina, unbounded) = (growth(0), growth(1));
    let ratios: Vec<u64> = tina
        .iter()
        .zip(&unbounded)
        .map(|(&t, &u)| t * 1000 / u.max(1))
        .collect();
    let tina_max = tina.iter().copied().max().unwrap_or(0);
    let peer_min = unbounded.iter().copied().min().unwrap_or(0);
    let met = tina_max < GROWTH_TARGET && peer_min > GROWTH_TARGET;
    let target = if window_s == 60 {
        "< 1 MiB over 60 s while tokio unbounded grows".to_string()
    } else {
        format!("< 1 MiB over 60 s while tokio unbounded grows (this window: {window_s} s)")
    };
    summary.add(Row {
        id: "B4 overload".into(),
        metric: format!("RSS growth after warm-up, {window_s} s of 10× overload"),
        tina: format!("{} KiB", kib(Spread::of(&tina).median)),
        peer: format!("tokio unbounded {} MiB", mib(Spread::of(&unbounded).median)),
        ratio: harness::ratio_spread(&ratios),
        target: harness::verdict(&target, met),
    });
    let delivered = |i: usize| -> Vec<u64> {
        runs[i]
            .iter()
            .map(|x| x.per_s(x.counts.delivered))
            .collect()
    };
    let (td, bd) = (delivered(0), delivered(2));
    let ratios: Vec<u64> = td
        .iter()
        .zip(&bd)
        .map(|(&t, &b)| t * 1000 / b.max(1))
        .collect();
    summary.add(Row {
        id: "B4 drops".into(),
        metric: "Tina: offered − delivered = counted drops; delivered/s".into(),
        tina: format!(
            "exact in {}/{} rounds; {}/s",
            runs[0].len(),
            runs[0].len(),
            k(Spread::of(&td).median)
        ),
        peer: format!("tokio bounded {}/s", k(Spread::of(&bd).median)),
        ratio: harness::ratio_spread(&ratios),
        target: harness::verdict("drops counted exactly", true),
    });
}
