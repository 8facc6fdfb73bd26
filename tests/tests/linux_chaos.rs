//! Chaos on loopback, both backends.
//!
//! - A shard recovery that tears down more connections than one tick's submission batch
//!   holds still closes every socket (the closes that do not fit run at once, counted), and
//!   the process ends with as many open sockets as it started with.
//! - The echo server under load from verifying clients while a seeded fault hook panics
//!   connection handlers, crashes connections and forces whole-shard recoveries: every byte
//!   a client gets back is the byte it sent at that position (a cut connection reconnects;
//!   what it received is a correct prefix), and the shards' counters account for every
//!   injected fault.
//!
//! The fault hook is test-only: a wrapper isolate around the examples' echo `Connection`,
//! spawned by a listener in this file, and a saboteur isolate in each shard's root group
//! (whose restart budget is zero, so its crash escalates to a shard recovery). Production
//! builds contain none of it.
//!
//! The seed is printed; `TINA_CHAOS_SEED=<n>` replays a seed's client streams and fault
//! rolls (thread scheduling still varies between runs). `TINA_CHAOS_SECS=<n>` keeps the load
//! and the faults on for at least `n` seconds per backend (default 3): the long mode.

mod linux_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use linux_common::*;
use tina_core::io::{Domain, Fd, IoKind, IoOp, SocketKind, SocketOption};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Restart,
    ShardConfig, ShardSpec, SystemSpec, TypeSpec, UserTag,
};
use tina_examples::echo::{ConnArgs, Connection, ListenArgs, Listener};
use tina_linux::{Backend, ShardState};

/// The tests in this file count the process's open sockets: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Open sockets of this process (from /proc/self/fd). Sockets, not all descriptors: a
/// test's `Control` lives on after its run, holding its eventfds.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// The process's open sockets once they are back to `baseline`, or after 5 s (the runtime
/// has stopped; a socket closed while the kernel still held a reference for an operation
/// may take a moment to leave the table).
fn open_sockets_settled(baseline: usize) -> usize {
    let deadline = StdInstant::now() + StdDuration::from_secs(5);
    loop {
        let n = open_sockets();
        if n <= baseline || StdInstant::now() >= deadline {
            return n;
        }
        std::thread::yield_now();
    }
}

/// Listens on its own port and crashes when a connection arrives there. In a root group
/// with no restart budget, that crash is a whole-shard recovery. The accepted socket is
/// never claimed, so the shard reclaims it too.
struct Tripwire;

impl Isolate for Tripwire {
    type Args = ListenArgs;

    fn init(args: &ListenArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let socket = listen(args, ctx)?;
        Ok((Tripwire, Effect::Io(IoOp::Accept { listener: socket })))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() || ctx.is_shutting_down() {
            return Effect::Done;
        }
        match msg.io_completion() {
            Some(c) if c.kind == IoKind::Accept && c.result.is_ok() => {
                Effect::Crash(CrashReason("tripwire: a connection arrived"))
            }
            _ => Effect::Receive,
        }
    }
}

/// A listening socket owned by the calling isolate.
fn listen(args: &ListenArgs, ctx: &mut Ctx) -> Result<Fd, CrashReason> {
    let addr = args.addr;
    let socket = ctx
        .socket(Domain::of(&addr), SocketKind::Stream)
        .map_err(|_| CrashReason("socket() failed"))?;
    ctx.own_fd(Some(socket));
    let _ = ctx.set_option(socket, SocketOption::ReuseAddr(true));
    ctx.set_option(socket, SocketOption::ReusePort(true))
        .map_err(|_| CrashReason("SO_REUSEPORT failed"))?;
    ctx.bind(socket, addr)
        .map_err(|_| CrashReason("bind() failed"))?;
    ctx.listen(socket, args.backlog.max(1))
        .map_err(|_| CrashReason("listen() failed"))?;
    Ok(socket)
}

#[test]
fn recovery_closes_every_connection_when_the_submission_batch_is_full() {
    const CLIENTS: usize = 24;
    // Far fewer than the connections a recovery tears down at once.
    const BATCH: u32 = 4;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for backend in BACKENDS {
        let baseline = open_sockets();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let trip = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let types: &'static [TypeSpec] = Box::leak(Box::new([
            TypeSpec::of::<Listener>("listener"),
            TypeSpec::of::<Connection>("connection").capacity(CLIENTS as u32 + 8),
            TypeSpec::of::<Tripwire>("tripwire"),
        ]));
        let children: &'static [ChildSpec<'static>] = Box::leak(Box::new([
            ChildSpec::isolate::<Listener>(&ListenArgs::new(addr, 64), Restart::Permanent),
            ChildSpec::isolate::<Tripwire>(&ListenArgs::new(trip, 8), Restart::Permanent),
        ]));
        let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([ShardSpec {
            root: GroupSpec::one_for_one(children)
                .dynamic(CLIENTS as u32 + 8)
                .budget(0, Duration::from_millis(60_000)),
        }]));
        let mut spec = SystemSpec::new(shards, types);
        spec.shard = ShardConfig {
            io_buffer_count: 64,
            io_submissions_per_tick_max: BATCH,
            ..ShardConfig::DEFAULT
        };
        let spec: &'static SystemSpec<'static> = Box::leak(Box::new(spec));
        let rt = Running::start(spec, test_config(backend));
        let mut back = [0u8; 16];
        let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(addr)).collect();
        for s in clients.iter_mut() {
            echo_once(s, b"parked", &mut back).expect("echo before the recovery");
            // Each connection is now parked on a receive in flight.
            s.set_read_timeout(Some(StdDuration::from_secs(4))).unwrap();
        }
        let tripped = connect(trip);
        for (k, s) in clients.iter_mut().enumerate() {
            assert!(
                closed_by_peer(s),
                "{backend:?}: connection {k} must be closed by the recovery, not leaked"
            );
        }
        let stats = rt.stats_when(|st| st[0].counters.io_reclaims_deferred > 0);
        let c = stats[0].counters;
        assert!(c.shard_recoveries >= 1, "{backend:?}: {c:?}");
        assert!(
            c.io_reclaims_deferred > 0,
            "{backend:?}: the closes that did not fit the batch are counted: {c:?}"
        );
        assert_eq!(c.io_reclaims_lost, 0, "{backend:?}: {c:?}");
        let report = rt.stop();
        assert!(report.clean, "{backend:?}");
        drop(clients);
        drop(tripped);
        assert_eq!(
            open_sockets_settled(baseline),
            baseline,
            "{backend:?}: sockets leaked"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The seeded fault hook.
// ---------------------------------------------------------------------------------------

/// Whether faults are injected (off while the system boots and shuts down).
static ARMED: AtomicBool = AtomicBool::new(false);
/// The run's seed.
static SEED: AtomicU64 = AtomicU64::new(0);
/// Fault rolls so far (each roll hashes the seed with its index).
static ROLLS: AtomicU64 = AtomicU64::new(0);
/// Tells the clients to finish.
static CLIENTS_STOP: AtomicBool = AtomicBool::new(false);
/// Faults injected so far.
static INJECTED_PANICS: AtomicU64 = AtomicU64::new(0);
static INJECTED_CRASHES: AtomicU64 = AtomicU64::new(0);
static FORCED_RECOVERIES: AtomicU64 = AtomicU64::new(0);

/// One in this many connection handler calls panics; as many again crash.
const FAULT_ONE_IN: u64 = 800;
/// A saboteur forces a shard recovery after a delay drawn from this range (milliseconds).
const SABOTAGE_MS: (u64, u64) = (300, 900);

/// A random number for the next fault decision.
fn roll() -> u64 {
    let k = ROLLS.fetch_add(1, Ordering::Relaxed);
    splitmix(SEED.load(Ordering::Relaxed) ^ k.wrapping_mul(0xA076_1D64_78BD_642F))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The examples' echo connection, with faults: some handler calls panic and some crash,
/// before the connection sees the message or after (discarding what it asked for).
struct ChaosConnection(Connection);

impl Isolate for ChaosConnection {
    type Args = ConnArgs;

    fn init(args: &ConnArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Connection::init(args, ctx).map(|(c, e)| (ChaosConnection(c), e))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        let armed = ARMED.load(Ordering::Relaxed) && !msg.is_shutdown() && !ctx.is_shutting_down();
        let r = if armed { roll() } else { u64::MAX };
        let after = r & (1 << 63) != 0;
        let effect = if after {
            self.0.handle(msg, ctx)
        } else {
            Effect::Receive
        };
        match r % FAULT_ONE_IN {
            0 if armed => {
                INJECTED_PANICS.fetch_add(1, Ordering::Relaxed);
                panic!("chaos: injected panic");
            }
            1 if armed => {
                INJECTED_CRASHES.fetch_add(1, Ordering::Relaxed);
                Effect::Crash(CrashReason("chaos: injected crash"))
            }
            _ if after => effect,
            _ => self.0.handle(msg, ctx),
        }
    }
}

/// Accepts on the echo port and spawns a [`ChaosConnection`] per client (refusing, by
/// closing the socket, when none can be spawned).
struct ChaosListener {
    socket: Fd,
}

impl ChaosListener {
    fn accept(&self) -> Effect {
        Effect::Io(IoOp::Accept {
            listener: self.socket,
        })
    }
}

impl Isolate for ChaosListener {
    type Args = ListenArgs;

    fn init(args: &ListenArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let me = ChaosListener {
            socket: listen(args, ctx)?,
        };
        let first = me.accept();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() || ctx.is_shutting_down() {
            // The owned listening socket is closed by the teardown; a socket accepted now
            // is never claimed, so the shard closes it too.
            return Effect::Done;
        }
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        match (c.kind, c.result, c.fd()) {
            (IoKind::Accept, Ok(_), Some(fd)) => {
                match ctx.spawn::<ChaosConnection>(&ConnArgs::new(fd.0)) {
                    Ok(_) => self.accept(),
                    Err(_) => Effect::Io(IoOp::Close { fd }),
                }
            }
            _ => self.accept(),
        }
    }
}

const SABOTAGE: UserTag = UserTag::new(0x70);

/// Crashes after a random delay while faults are armed. Its group (the root) has no
/// restart budget, so each crash is a whole-shard recovery, which starts a new saboteur.
struct Saboteur;

impl Isolate for Saboteur {
    type Args = ();

    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let (lo, hi) = SABOTAGE_MS;
        let after = lo + roll() % (hi - lo);
        ctx.start_timer(Duration::from_millis(after), SABOTAGE)
            .map_err(|_| CrashReason("saboteur: no timer"))?;
        Ok((Saboteur, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() || ctx.is_shutting_down() {
            return Effect::Done;
        }
        if msg.tag() != SABOTAGE.into() {
            return Effect::Receive;
        }
        if ARMED.load(Ordering::Relaxed) {
            FORCED_RECOVERIES.fetch_add(1, Ordering::Relaxed);
            return Effect::Crash(CrashReason("chaos: forced shard recovery"));
        }
        match ctx.start_timer(Duration::from_millis(SABOTAGE_MS.0), SABOTAGE) {
            Ok(_) => Effect::Receive,
            Err(_) => Effect::Crash(CrashReason("saboteur: no timer")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Verifying clients.
// ---------------------------------------------------------------------------------------

/// What one client saw.
#[derive(Default, Debug)]
struct ClientLog {
    /// Bytes echoed back and verified.
    verified: u64,
    /// Connections made.
    connections: u64,
    /// Connections cut by the server (EOF or reset) before the echo was complete.
    cuts: u64,
    /// Connection attempts refused or reset before the echo started (e.g. during a
    /// recovery, when the shard's listener is being replaced).
    connect_failures: u64,
    /// Reads that timed out: the server neither answered nor closed.
    stalls: u64,
    /// The first wrong byte: (connection, offset in it, expected, got).
    corruption: Option<(u64, u64, u8, u8)>,
}

/// Random bytes for the echo stream: every byte value, 0xFF included (the connection's
/// poison trigger is off unless a listener arms it).
fn fill(rng: &mut Rng, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let v = rng.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Echoes random chunks over fresh connections until told to stop (or `until`), verifying
/// each byte that comes back against what was sent at that position of the connection's
/// stream.
fn client(addr: SocketAddr, seed: u64, until: StdInstant) -> ClientLog {
    let running = || !CLIENTS_STOP.load(Ordering::Relaxed) && StdInstant::now() < until;
    let mut rng = Rng::new(seed);
    let mut log = ClientLog::default();
    let mut out = vec![0u8; 8 * 1024];
    let mut back = vec![0u8; 8 * 1024];
    while running() && log.corruption.is_none() {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, StdDuration::from_secs(2)) else {
            log.connect_failures += 1;
            // Back off briefly while the shard's listener is replaced (not a synchronisation:
            // the next attempt just retries).
            std::thread::sleep(StdDuration::from_millis(1));
            continue;
        };
        s.set_read_timeout(Some(StdDuration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(StdDuration::from_secs(5)))
            .unwrap();
        let _ = s.set_nodelay(true);
        log.connections += 1;
        let mut offset = 0u64;
        'conn: while running() {
            let len = 1 + (rng.next() % out.len() as u64) as usize;
            fill(&mut rng, &mut out[..len]);
            if s.write_all(&out[..len]).is_err() {
                log.cuts += 1;
                break;
            }
            let mut got = 0;
            while got < len {
                match s.read(&mut back[got..len]) {
                    Ok(0) => {
                        log.cuts += 1;
                        break 'conn;
                    }
                    Ok(n) => {
                        if let Some(k) = (got..got + n).find(|&k| back[k] != out[k]) {
                            log.corruption =
                                Some((log.connections, offset + k as u64, out[k], back[k]));
                            break 'conn;
                        }
                        got += n;
                        log.verified += n as u64;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        log.stalls += 1;
                        break 'conn;
                    }
                    Err(_) => {
                        log.cuts += 1;
                        break 'conn;
                    }
                }
            }
            offset += len as u64;
        }
    }
    log
}

/// The run's seed: `TINA_CHAOS_SEED`, else derived from the clock (printed either way).
fn chaos_seed() -> u64 {
    match std::env::var("TINA_CHAOS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .expect("TINA_CHAOS_SEED must be an unsigned integer"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// The echo system under chaos: `shards` shards, each a [`ChaosListener`] and a
/// [`Saboteur`] in a root group with no restart budget.
fn chaos_spec(addr: SocketAddr, shards: usize, connections: u32) -> &'static SystemSpec<'static> {
    let types: &'static [TypeSpec] = Box::leak(Box::new([
        TypeSpec::of::<ChaosListener>("listener"),
        TypeSpec::of::<ChaosConnection>("connection").capacity(connections),
        TypeSpec::of::<Saboteur>("saboteur"),
    ]));
    let children: &'static [ChildSpec<'static>] = Box::leak(Box::new([
        ChildSpec::isolate::<ChaosListener>(&ListenArgs::new(addr, 256), Restart::Permanent),
        ChildSpec::isolate::<Saboteur>(&(), Restart::Permanent),
    ]));
    let shard_specs: &'static [ShardSpec<'static>] = Box::leak(
        vec![
            ShardSpec {
                root: GroupSpec::one_for_one(children)
                    .dynamic(connections)
                    .budget(0, Duration::from_millis(60_000)),
            };
            shards
        ]
        .into_boxed_slice(),
    );
    let mut spec = SystemSpec::new(shard_specs, types);
    spec.shard = ShardConfig {
        io_buffer_count: connections + 64,
        io_buffer_size: 16 * 1024,
        // Smaller than the connections a recovery tears down: their closes overflow it.
        io_submissions_per_tick_max: 8,
        ..ShardConfig::DEFAULT
    };
    // Recoveries are the point here: never quarantine.
    spec.recoveries_max = tina_core::spec::RESTARTS_MAX;
    Box::leak(Box::new(spec))
}

/// One chaos run on `backend`: load for at least `load_min`, and until every kind of fault
/// was injected at least once (at most `load_max`).
fn chaos_run(backend: Backend, seed: u64, load_min: StdDuration, load_max: StdDuration) {
    const SHARDS: usize = 2;
    const CLIENTS: u64 = 16;
    let baseline = open_sockets();
    SEED.store(seed, Ordering::Relaxed);
    ROLLS.store(0, Ordering::Relaxed);
    for c in [&INJECTED_PANICS, &INJECTED_CRASHES, &FORCED_RECOVERIES] {
        c.store(0, Ordering::Relaxed);
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let rt = Running::start(chaos_spec(addr, SHARDS, 64), test_config(backend));
    ARMED.store(true, Ordering::Relaxed);
    CLIENTS_STOP.store(false, Ordering::Relaxed);
    let started = StdInstant::now();
    let hard_stop = started + load_max;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let stream_seed = splitmix(seed ^ (k + 1));
            std::thread::spawn(move || client(addr, stream_seed, hard_stop))
        })
        .collect();
    // Keep the load on until each kind of fault has happened (bounded by `load_max`): a
    // bounded wait for a condition, polled.
    loop {
        let all_kinds = [&INJECTED_PANICS, &INJECTED_CRASHES, &FORCED_RECOVERIES]
            .iter()
            .all(|c| c.load(Ordering::Relaxed) > 0);
        let now = StdInstant::now();
        if (all_kinds && now >= started + load_min) || now >= hard_stop {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(20));
    }
    ARMED.store(false, Ordering::Relaxed);
    CLIENTS_STOP.store(true, Ordering::Relaxed);
    let logs: Vec<ClientLog> = clients
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    let report = rt.stop();
    // Every shard thread has ended: the injection counts are final.
    let panics = INJECTED_PANICS.load(Ordering::Relaxed);
    let crashes = INJECTED_CRASHES.load(Ordering::Relaxed);
    let forced = FORCED_RECOVERIES.load(Ordering::Relaxed);
    let sum = |f: fn(&tina_core::Counters) -> u64| -> u64 {
        report.stats.iter().map(|s| f(&s.counters)).sum()
    };
    let verified: u64 = logs.iter().map(|l| l.verified).sum();
    let cuts: u64 = logs.iter().map(|l| l.cuts).sum();
    let connections: u64 = logs.iter().map(|l| l.connections).sum();
    let stalls: u64 = logs.iter().map(|l| l.stalls).sum();
    let connect_failures: u64 = logs.iter().map(|l| l.connect_failures).sum();
    eprintln!(
        "chaos {backend:?} seed {seed}: injected {panics} panics, {crashes} crashes, {forced} \
         recoveries; clients: {connections} connections, {cuts} cut, {connect_failures} \
         connect failures, {stalls} stalls, {verified} bytes verified; counters: {} panics, \
         {} crashes, {} recoveries, {} reclaims deferred, {} submission-full, {} spawn \
         failures",
        sum(|c| c.panics),
        sum(|c| c.crashes),
        sum(|c| c.shard_recoveries),
        sum(|c| c.io_reclaims_deferred),
        sum(|c| c.io_submission_full),
        sum(|c| c.spawn_failures),
    );
    let replay =
        format!("replay: TINA_CHAOS_SEED={seed} cargo test -p tina-tests --test linux_chaos");
    for (k, l) in logs.iter().enumerate() {
        assert!(
            l.corruption.is_none(),
            "{backend:?}: client {k} received a wrong byte (connection, offset, sent, got) = \
             {:?}; {replay}",
            l.corruption
        );
    }
    assert_eq!(
        stalls, 0,
        "{backend:?}: a connection neither echoed nor closed; {replay}"
    );
    assert!(verified > 0, "{backend:?}: no data was echoed; {replay}");
    assert!(
        panics > 0 && crashes > 0 && forced > 0,
        "{backend:?}: every kind of fault was injected within {load_max:?}; {replay}"
    );
    // Every injected fault is counted, and nothing else crashed.
    assert_eq!(sum(|c| c.panics), panics, "{backend:?}: {replay}");
    assert_eq!(
        sum(|c| c.crashes),
        panics + crashes + forced,
        "{backend:?}: {replay}"
    );
    assert_eq!(sum(|c| c.shard_recoveries), forced, "{backend:?}: {replay}");
    assert_eq!(sum(|c| c.io_reclaims_lost), 0, "{backend:?}: {replay}");
    assert_eq!(sum(|c| c.io_bogus_completions), 0, "{backend:?}: {replay}");
    assert_eq!(
        report
            .stats
            .iter()
            .map(|s| s.io_submit_failures)
            .sum::<u64>(),
        0,
        "{backend:?}: {replay}"
    );
    // Every cut a client saw has a counted cause on the server: a fault that ended its
    // connection, a recovery that tore every connection of a shard down, or an operation
    // refused for want of room (the connection then closes).
    let explained = panics
        + crashes
        + forced * CLIENTS
        + sum(|c| c.io_submission_full)
        + sum(|c| c.io_buffer_exhausted)
        + sum(|c| c.spawn_failures);
    assert!(
        cuts <= explained,
        "{backend:?}: {cuts} cuts but only {explained} counted causes; {replay}"
    );
    assert!(
        report
            .stats
            .iter()
            .all(|s| s.state != ShardState::Quarantined),
        "{backend:?}: {replay}"
    );
    assert!(
        report.clean,
        "{backend:?}: shutdown was not graceful; {replay}"
    );
    drop(logs);
    assert_eq!(
        open_sockets_settled(baseline),
        baseline,
        "{backend:?}: sockets leaked; {replay}"
    );
}

#[test]
fn echo_under_chaos_stays_byte_exact_and_every_fault_is_counted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let seed = chaos_seed();
    let secs: u64 = std::env::var("TINA_CHAOS_SECS")
        .ok()
        .map(|s| {
            s.trim()
                .parse()
                .expect("TINA_CHAOS_SECS must be a whole number of seconds")
        })
        .unwrap_or(3);
    eprintln!("chaos seed {seed} (replay: TINA_CHAOS_SEED={seed}), {secs} s per backend");
    for backend in BACKENDS {
        chaos_run(
            backend,
            seed,
            StdDuration::from_secs(secs),
            StdDuration::from_secs(secs + 5),
        );
    }
}
