//! Names across shards, stepped by hand over the core's ring transport: a named store on
//! shard 1 crashes and restarts again and again while a client on shard 0 keeps calling it by
//! name; calls to a name with nothing running, or to a stale handle, are refused back within
//! a ring round trip instead of waiting out their timeout.
use std::cell::Cell;
use tina_core::platform::{Bundle, NoIo};
use tina_core::ring::{Ring, Slot};
use tina_core::testing::{CatchPanic, TestLog, region_for};
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::*;

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Get {
    n: u64,
}
tina_core::payload!(Get);

#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Got {
    incarnation: u64,
    n: u64,
}
tina_core::payload!(Got);

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Order {
    op: u32,
}
tina_core::payload!(Order);
const CRASH: u32 = 1;
const STOP: u32 = 2;

thread_local! {
    static INCARNATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Answers `Get` with its incarnation; crashes or stops when ordered.
struct Store {
    incarnation: u64,
}
tina_core::accepts!(Store: Get, Order);

const STORE: Name<Store> = Name::new("store");

impl Isolate for Store {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let incarnation = INCARNATIONS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        Ok((Store { incarnation }, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if let Some(g) = msg.decode::<Get>() {
            return Effect::reply(&Got {
                incarnation: self.incarnation,
                n: g.n,
            });
        }
        match msg.decode::<Order>() {
            Some(Order { op: CRASH }) => Effect::Crash(CrashReason("ordered to crash")),
            Some(Order { op: STOP }) => Effect::Done,
            _ => Effect::Receive,
        }
    }
}

/// What the test tells the client to do.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Drive {
    op: u32,
    arg: u32,
}
tina_core::payload!(Drive);
const CALL_BY_NAME: u32 = 1;
const ORDER_BY_NAME: u32 = 2;
const CALL_LAST_HANDLE: u32 = 3;
/// Orders the store to crash, then calls it: the call waits in its mailbox as it crashes.
const CRASH_THEN_CALL: u32 = 4;

/// How one call ended, and when (ticks of the caller's shard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Reply(Got),
    Refused(SendError),
    TimedOut,
}

#[derive(Default)]
struct Client {
    /// The shard whose store it calls.
    target: u8,
    started: u64,
    calls: Vec<(Outcome, u64)>,
    orders: Vec<Result<(), SendError>>,
    last_store: Option<Handle>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(1); // 1000 ticks of 1 ms

impl Isolate for Client {
    type Args = u8;
    fn init(target: &u8, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let client = Client {
            target: *target,
            ..Client::default()
        };
        Ok((client, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        let elapsed = ctx.now().ticks() - self.started;
        if let Some(got) = msg.decode::<Got>().filter(|_| msg.is_reply()) {
            self.last_store = Some(msg.src());
            self.calls.push((Outcome::Reply(got), elapsed));
            return Effect::Receive;
        }
        if msg.is_call_timeout() {
            let outcome = msg
                .call_failed_to_send()
                .map_or(Outcome::TimedOut, Outcome::Refused);
            self.calls.push((outcome, elapsed));
            return Effect::Receive;
        }
        let Some(d) = msg.decode::<Drive>() else {
            return Effect::Receive;
        };
        self.started = ctx.now().ticks();
        let store = ctx.on_shard(STORE, ShardId(self.target));
        let get = Get {
            n: u64::from(d.arg),
        };
        match d.op {
            CALL_BY_NAME => Effect::call(store, &get, CALL_TIMEOUT),
            ORDER_BY_NAME => {
                let r = ctx.send(store, &Order { op: d.arg });
                self.orders.push(r);
                Effect::Receive
            }
            CRASH_THEN_CALL => {
                self.orders.push(ctx.send(store, &Order { op: CRASH }));
                Effect::call(store, &get, CALL_TIMEOUT)
            }
            CALL_LAST_HANDLE => {
                let to = self.last_store.unwrap_or(Handle::NONE);
                Effect::call(to, &get, CALL_TIMEOUT)
            }
            _ => Effect::Receive,
        }
    }
}

struct NoWake;
impl Wake for &NoWake {
    fn wake(&self, _: ShardId) {}
}

type RingPlatform<'r> = Bundle<RingTransport<'r, &'r NoWake>, NoIo, CatchPanic, TestLog>;

/// Two shards over one pair of rings, stepped in lockstep (shard 0 first) from tick 1.
struct Pair<'r> {
    sh0: Shard<'r, RingPlatform<'r>>,
    sh1: Shard<'r, RingPlatform<'r>>,
    now: u64,
    client: Handle,
}

impl Pair<'_> {
    fn step(&mut self) {
        self.now += 1;
        self.sh0.step(Instant::from_ticks(self.now));
        self.sh1.step(Instant::from_ticks(self.now));
        self.sh0.check_invariants().unwrap();
        self.sh1.check_invariants().unwrap();
    }

    /// Has the client do `op` and steps until it recorded one more call (at most `max`
    /// steps): the call's outcome and its elapsed ticks.
    fn drive_call(&mut self, op: u32, arg: u32, max: usize) -> (Outcome, u64) {
        let before = self.client().calls.len();
        let d = Drive { op, arg };
        self.sh0.deliver(self.client, &Outgoing::new(&d)).unwrap();
        for _ in 0..max {
            self.step();
            if self.client().calls.len() > before {
                return self.client().calls[before];
            }
        }
        panic!("no outcome within {max} steps");
    }

    fn order(&mut self, op: u32) {
        let d = Drive {
            op: ORDER_BY_NAME,
            arg: op,
        };
        self.sh0.deliver(self.client, &Outgoing::new(&d)).unwrap();
        self.step();
        self.step();
        assert_eq!(self.client().orders.last(), Some(&Ok(())));
    }

    fn client(&self) -> &Client {
        self.sh0.state::<Client>(self.client).unwrap()
    }
}

fn with_pair(spec: &SystemSpec<'_>, f: impl FnOnce(&mut Pair<'_>)) {
    let mut s01 = Slot::<Message>::array::<64>();
    let mut s10 = Slot::<Message>::array::<64>();
    let mut r01 = Ring::new(&mut s01).unwrap();
    let mut r10 = Ring::new(&mut s10).unwrap();
    let (p01, c01) = r01.split();
    let (p10, c10) = r10.split();
    let links = [ShardLink::new(), ShardLink::new()];
    let (mut out0, mut in0) = ([None, Some(p01)], [None, Some(c10)]);
    let (mut out1, mut in1) = ([Some(p10), None], [Some(c01), None]);
    let (mut seen0, mut seen1) = ([0u32; 2], [0u32; 2]);
    let t0 = RingTransport::new(ShardId(0), &mut out0, &mut in0, &links, &mut seen0, &NoWake);
    let t1 = RingTransport::new(ShardId(1), &mut out1, &mut in1, &links, &mut seen1, &NoWake);
    let mut m0 = region_for(spec, ShardId(0));
    let mut m1 = region_for(spec, ShardId(1));
    let platform = |transport| RingPlatform {
        transport,
        io: NoIo,
        trap: CatchPanic,
        log: TestLog::default(),
    };
    let sh0 = Shard::new(spec, ShardId(0), m0.bytes(), platform(t0)).unwrap();
    let sh1 = Shard::new(spec, ShardId(1), m1.bytes(), platform(t1)).unwrap();
    let client = sh0.handles::<Client>().next().unwrap();
    f(&mut Pair {
        sh0,
        sh1,
        now: 0,
        client,
    });
}

/// `spec` with small pools and no I/O buffers to speak of (the names tests need none; under
/// Miri, zeroing the default megabytes of every region dominates).
fn small(mut spec: SystemSpec<'_>) -> SystemSpec<'_> {
    spec.shard.message_pool_size = 256;
    spec.shard.timer_entries = 64;
    spec.shard.timer_spokes = 16;
    spec.shard.timer_expirations_per_tick_max = 64;
    spec.shard.io_buffer_count = 1;
    spec.shard.io_buffer_size = 64;
    spec.shard.io_submissions_per_tick_max = 4;
    spec.shard.log_entries = 16;
    spec.shard.transfer_buffer_count = 1;
    spec.shard.transfer_buffer_size = 128;
    spec
}

const TYPES: [TypeSpec; 2] = [
    TypeSpec::of::<Store>("store").capacity(2),
    TypeSpec::of::<Client>("client"),
];

#[test]
fn a_named_store_restarting_again_and_again_is_reached_by_name_every_time() {
    let children0 = [ChildSpec::isolate::<Client>(&1, Restart::Permanent)];
    let children1 = [ChildSpec::named(STORE, &(), Restart::Permanent)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&children0),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children1).budget(1_000, Duration::from_millis(10)),
        },
    ];
    let spec = small(SystemSpec::new(&shards, &TYPES));
    spec.validate().unwrap();
    INCARNATIONS.with(|c| c.set(0));
    with_pair(&spec, |p| {
        let mut handles = Vec::new();
        for round in 1..=20u32 {
            let (outcome, elapsed) = p.drive_call(CALL_BY_NAME, round, 10);
            let Outcome::Reply(got) = outcome else {
                panic!("round {round}: {outcome:?}");
            };
            // Each incarnation answers: the one started after the previous round's crash.
            assert_eq!(
                got,
                Got {
                    incarnation: u64::from(round),
                    n: u64::from(round)
                }
            );
            assert!(elapsed <= 2, "round {round}: a reply after {elapsed} ticks");
            handles.push(p.client().last_store.unwrap());
            p.order(CRASH);
        }
        handles.dedup();
        assert_eq!(handles.len(), 20, "every restart is a new incarnation");
        assert_eq!(p.sh1.counters().restarts, 20);
        // The handle of an incarnation that crashed is stale: a call to it is refused by
        // shard 1 and fails within a ring round trip, not at its 1000-tick timeout.
        let (outcome, elapsed) = p.drive_call(CALL_LAST_HANDLE, 0, 10);
        assert_eq!(outcome, Outcome::Refused(SendError::StaleHandle));
        assert!(elapsed <= 2, "refused after {elapsed} ticks");
        assert_eq!(p.sh1.counters().call_refusals_sent, 1);
        assert_eq!(p.sh0.counters().call_refusals_received, 1);
        // A call waiting in the mailbox of an incarnation that crashes is refused at its
        // teardown, not left to time out; the next incarnation answers the next call.
        let (outcome, elapsed) = p.drive_call(CRASH_THEN_CALL, 0, 10);
        assert_eq!(outcome, Outcome::Refused(SendError::StaleHandle));
        assert!(elapsed <= 2, "refused after {elapsed} ticks");
        assert_eq!(p.sh1.counters().call_refusals_sent, 2);
        let (outcome, _) = p.drive_call(CALL_BY_NAME, 99, 10);
        assert_eq!(
            outcome,
            Outcome::Reply(Got {
                incarnation: 22,
                n: 99
            })
        );
        assert_eq!(
            p.sh0.counters().call_timeouts,
            0,
            "no call waited out its timeout"
        );
    });
}

#[test]
fn a_call_to_a_name_with_nothing_running_fails_fast_with_not_running() {
    let children0 = [ChildSpec::isolate::<Client>(&1, Restart::Permanent)];
    // Transient: a normal exit is not restarted, so the name stays without an incarnation.
    let children1 = [ChildSpec::named(STORE, &(), Restart::Transient)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&children0),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children1),
        },
    ];
    let spec = small(SystemSpec::new(&shards, &TYPES));
    INCARNATIONS.with(|c| c.set(0));
    with_pair(&spec, |p| {
        let (outcome, _) = p.drive_call(CALL_BY_NAME, 7, 10);
        assert!(
            matches!(outcome, Outcome::Reply(Got { n: 7, .. })),
            "{outcome:?}"
        );
        p.order(STOP);
        for n in 0..5 {
            let (outcome, elapsed) = p.drive_call(CALL_BY_NAME, n, 10);
            assert_eq!(outcome, Outcome::Refused(SendError::NotRunning));
            assert!(elapsed <= 2, "refused after {elapsed} ticks");
        }
        assert_eq!(p.sh1.counters().named_not_running, 5);
        // A plain send to it is refused on shard 1 and counted there.
        p.order_unchecked(CRASH);
        assert_eq!(p.sh1.counters().named_not_running, 6);
        assert_eq!(
            p.sh0.counters().call_timeouts,
            0,
            "no call waited out its timeout"
        );
    });
}

impl Pair<'_> {
    fn order_unchecked(&mut self, op: u32) {
        let d = Drive {
            op: ORDER_BY_NAME,
            arg: op,
        };
        self.sh0.deliver(self.client, &Outgoing::new(&d)).unwrap();
        self.step();
        self.step();
    }
}

#[test]
fn a_name_on_the_callers_own_shard_resolves_and_refuses_in_the_same_tick() {
    let children = [
        ChildSpec::isolate::<Client>(&0, Restart::Permanent),
        ChildSpec::named(STORE, &(), Restart::Transient),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = small(SystemSpec::new(&shards, &TYPES));
    INCARNATIONS.with(|c| c.set(0));
    let mut region = region_for(&spec, ShardId(0));
    let platform = tina_core::testing::TestPlatform::default();
    let mut sh = Shard::new(&spec, ShardId(0), region.bytes(), platform).unwrap();
    let client = sh.handles::<Client>().next().unwrap();
    // Each drive runs two ticks: a reply from an isolate dispatched before the client in
    // the tick arrives in the next one.
    let drive = |sh: &mut Shard<'_, _>, op, arg, tick| {
        sh.deliver(client, &Outgoing::new(&Drive { op, arg }))
            .unwrap();
        sh.step(Instant::from_ticks(tick));
        sh.step(Instant::from_ticks(tick + 1));
        sh.state::<Client>(client).unwrap().calls.last().copied()
    };
    let got = drive(&mut sh, CALL_BY_NAME, 3, 1);
    assert!(
        matches!(
            got,
            Some((
                Outcome::Reply(Got {
                    incarnation: 1,
                    n: 3
                }),
                0..=1
            ))
        ),
        "{got:?}"
    );
    drive(&mut sh, ORDER_BY_NAME, STOP, 3);
    assert!(sh.handles::<Store>().next().is_none(), "stopped for good");
    let got = drive(&mut sh, CALL_BY_NAME, 4, 5);
    assert_eq!(
        got,
        Some((Outcome::Refused(SendError::NotRunning), 0)),
        "in the same tick"
    );
    let sent = drive(&mut sh, ORDER_BY_NAME, CRASH, 7);
    assert_eq!(sent, got, "a plain send records no call");
    let orders = &sh.state::<Client>(client).unwrap().orders;
    assert_eq!(orders[..], [Ok(()), Err(SendError::NotRunning)]);
}

#[test]
fn names_are_validated_per_shard() {
    const OTHER: Name<Store> = Name::new("store");
    let twice = [
        ChildSpec::named(STORE, &(), Restart::Permanent),
        ChildSpec::named(OTHER, &(), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&twice),
    }];
    let spec = SystemSpec::new(&shards, &TYPES);
    let err = spec.validate().unwrap_err();
    assert_eq!(err.rule, spec::Rule::DuplicateName { name: "store" });
    assert!(err.to_string().contains("unique per shard"), "{err}");
    // The same name on two shards is the point of names.
    let once = [ChildSpec::named(STORE, &(), Restart::Permanent)];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&once),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&once),
        },
    ];
    SystemSpec::new(&shards, &TYPES).validate().unwrap();
    // The slot value 2^20 - 1 marks named addresses: a type holds at most 2^20 - 1.
    let types = [TypeSpec::of::<Store>("store").capacity(1 << 20)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&once),
    }];
    let err = SystemSpec::new(&shards, &types).validate().unwrap_err();
    assert_eq!(err.rule, spec::Rule::TypeCapacity);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a birthday search over ~2^14 names; validation has no unsafe code"
)]
fn two_names_whose_keys_collide_are_refused_with_both_named() {
    // Find two texts with the same 28-bit key (a birthday search: ~2^14 texts).
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0u32..)
        .find_map(|i| {
            let text: &'static str = Box::leak(format!("n{i}").into_boxed_str());
            let key = Name::<Store>::new(text).key();
            seen.insert(key, text).map(|earlier| (earlier, text))
        })
        .unwrap();
    assert_ne!(a, b);
    let children = [
        ChildSpec::named(Name::<Store>::new(a), &(), Restart::Permanent),
        ChildSpec::named(Name::<Store>::new(b), &(), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let err = SystemSpec::new(&shards, &TYPES).validate().unwrap_err();
    assert_eq!(err.rule, spec::Rule::NameKeyCollision { name: b, other: a });
    assert!(err.to_string().contains("rename one"), "{err}");
}

#[test]
fn a_name_made_for_another_type_is_refused() {
    // Only possible by building the child by hand from another child's name.
    let store_name = ChildSpec::named(STORE, &(), Restart::Permanent).name();
    let children = [ChildSpec::Isolate {
        ty: TypeRef::of::<Client>(),
        args: InitArgs::new(&0u8),
        restart: Restart::Permanent,
        name: store_name,
    }];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let err = SystemSpec::new(&shards, &TYPES).validate().unwrap_err();
    assert_eq!(err.rule, spec::Rule::NameTypeMismatch);
}
