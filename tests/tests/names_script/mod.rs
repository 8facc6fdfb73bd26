//! A named store that crashes and restarts again and again, called and sent to by name from
//! another shard; shared by the simulator and the tina-linux versions of the test.
//!
//! Shard 1 holds a nested group (restart budget 0, so every failure in it escalates and the
//! root restarts the whole group) with the `Store` (named [`STORE`], `Transient`) and a
//! `Reviver` (named [`REVIVER`]). Shard 0's `Client` runs [`script`]: rounds of "three `Put`s
//! by name, a `Get` call by name, order the store to crash"; then it stops the store (a normal
//! exit: nothing restarts it), calls it while nothing runs, has the reviver crash (which
//! restarts the group, store included), calls again, and finally calls a dead incarnation's
//! handle. Every call's outcome and its elapsed ticks go to [`RECORDS`].
#![allow(dead_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Handle, Isolate, Message, Name,
    Restart, SendError, ShardId, ShardSpec, SystemSpec, TypeSpec, UserTag, accepts, payload,
};

/// A write the store counts.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Put {
    pub(crate) n: u64,
}
payload!(Put);

/// A call for the store's count of `Put`s.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Get {
    pub(crate) n: u64,
}
payload!(Get);

/// The answer: `Put`s this incarnation received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Got {
    pub(crate) puts: u64,
}
payload!(Got);

/// Crash or stop.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Order {
    pub(crate) op: u32,
}
payload!(Order);
const CRASH: u32 = 1;
const STOP: u32 = 2;
/// Sent by an isolate to itself after acknowledging an order (so nothing the orderer sends
/// after the acknowledgement can be queued before the crash or stop).
const CRASH_NOW: u32 = 3;
const STOP_NOW: u32 = 4;

/// The acknowledgement of an order (a call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Ack {
    pub(crate) op: u32,
}
payload!(Ack);

/// Acknowledges order `op` and queues `then` to itself, to run right after.
fn acknowledge(op: u32, then: u32, ctx: &mut Ctx) -> Effect {
    let me = ctx.me();
    if ctx.send(me, &Order { op: then }).is_err() {
        return Effect::Crash(CrashReason("could not queue the order"));
    }
    Effect::reply(&Ack { op })
}

pub(crate) const STORE: Name<Store> = Name::new("store");
pub(crate) const REVIVER: Name<Reviver> = Name::new("reviver");

/// Counts `Put`s; answers `Get`; crashes or stops when ordered.
pub(crate) struct Store {
    puts: u64,
}
accepts!(Store: Put, Get, Order);

impl Isolate for Store {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Store { puts: 0 }, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is::<Put>() {
            self.puts += 1;
        } else if msg.decode::<Get>().is_some() && msg.is_call() {
            return Effect::reply(&Got { puts: self.puts });
        } else if let Some(o) = msg.decode::<Order>() {
            return match o.op {
                CRASH => acknowledge(CRASH, CRASH_NOW, ctx),
                STOP => acknowledge(STOP, STOP_NOW, ctx),
                CRASH_NOW => Effect::Crash(CrashReason("ordered to crash")),
                STOP_NOW => Effect::Done,
                _ => Effect::Receive,
            };
        }
        if msg.is_shutdown() {
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// Crashes when ordered: its group then escalates and is restarted whole.
pub(crate) struct Reviver;
accepts!(Reviver: Order);

impl Isolate for Reviver {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Reviver, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        match msg.decode::<Order>() {
            Some(Order { op: CRASH_NOW }) => return Effect::Crash(CrashReason("ordered to crash")),
            Some(_) => return acknowledge(CRASH, CRASH_NOW, ctx),
            None => {}
        }
        if msg.is_shutdown() {
            return Effect::Done;
        }
        Effect::Receive
    }
}

/// One step of the client's script.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    /// Send this many `Put`s to the store by name.
    Puts(u32),
    /// Call the store by name.
    Call,
    /// Call the handle of the incarnation that answered the call before the last one.
    CallStale,
    /// Order the store (by name, a call it acknowledges before it crashes) to crash.
    Crash,
    /// Order the store (likewise) to stop.
    Stop,
    /// Order the reviver (likewise) to crash.
    Revive,
    /// Wait [`PAUSE_TICKS`].
    Pause,
}

/// Crash-and-restart rounds.
pub(crate) const ROUNDS: usize = 8;
/// Calls made while the store is down.
pub(crate) const DOWN_CALLS: usize = 3;
/// `Put`s per round.
pub(crate) const PUTS: u32 = 3;
/// Ticks between steps that wait (milliseconds: the spec keeps the default 1 ms tick).
pub(crate) const PAUSE_TICKS: u64 = 5;
/// A call timeout far beyond any ring round trip.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_millis(30_000);

/// The whole script.
pub(crate) fn script() -> Vec<Step> {
    let mut s = Vec::new();
    for _ in 0..ROUNDS {
        s.extend([Step::Puts(PUTS), Step::Call, Step::Crash, Step::Pause]);
    }
    s.extend([Step::Stop, Step::Pause, Step::Puts(1)]);
    s.extend([Step::Call; DOWN_CALLS]);
    s.extend([Step::Revive, Step::Pause, Step::Puts(PUTS), Step::Call]);
    s.push(Step::CallStale);
    s
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered by the incarnation `from`.
    Reply { got: Got, from: Handle },
    /// An order was acknowledged.
    Acknowledged,
    /// Refused (or not sendable) for this reason.
    Refused(SendError),
    /// Waited out its timeout.
    TimedOut,
}

/// One call: its outcome and the ticks from the call to its end (caller's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) outcome: Outcome,
    pub(crate) elapsed: u64,
}

/// Every call's record, in order (one system runs at a time in a test binary).
pub(crate) static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
/// Sends by name the client saw fail at once.
pub(crate) static SEND_FAILURES: Mutex<Vec<SendError>> = Mutex::new(Vec::new());
/// Set when the client ran its whole script.
pub(crate) static FINISHED: AtomicBool = AtomicBool::new(false);

/// Clears the shared records before a run.
pub(crate) fn reset() {
    RECORDS.lock().unwrap().clear();
    SEND_FAILURES.lock().unwrap().clear();
    FINISHED.store(false, Ordering::SeqCst);
}

const RESUME: UserTag = UserTag::new(0x1000);

/// Runs [`script`] against shard 1.
pub(crate) struct Client {
    script: Vec<Step>,
    pc: usize,
    started: u64,
    answered_by: Vec<Handle>,
}

impl Isolate for Client {
    type Args = ();
    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.start_timer(Duration::from_millis(PAUSE_TICKS), RESUME)
            .map_err(|_| CrashReason("no timer"))?;
        let client = Client {
            script: script(),
            pc: 0,
            started: 0,
            answered_by: Vec::new(),
        };
        Ok((client, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        let elapsed = ctx.now().ticks() - self.started;
        let outcome = if msg.is::<Ack>() && msg.is_reply() {
            Some(Outcome::Acknowledged)
        } else if let Some(got) = msg.decode::<Got>().filter(|_| msg.is_reply()) {
            self.answered_by.push(msg.src());
            Some(Outcome::Reply {
                got,
                from: msg.src(),
            })
        } else if msg.is_call_timeout() {
            Some(
                msg.call_failed_to_send()
                    .map_or(Outcome::TimedOut, Outcome::Refused),
            )
        } else {
            None
        };
        if let Some(outcome) = outcome {
            RECORDS.lock().unwrap().push(Record { outcome, elapsed });
        }
        self.advance(ctx)
    }
}

impl Client {
    fn sent(r: Result<(), SendError>) {
        if let Err(e) = r {
            SEND_FAILURES.lock().unwrap().push(e);
        }
    }

    /// Runs steps until one waits (a call or a pause).
    fn advance(&mut self, ctx: &mut Ctx) -> Effect {
        let store = ctx.on_shard(STORE, ShardId(1));
        loop {
            let Some(&step) = self.script.get(self.pc) else {
                FINISHED.store(true, Ordering::SeqCst);
                return Effect::Receive;
            };
            self.pc += 1;
            self.started = ctx.now().ticks();
            match step {
                Step::Puts(n) => {
                    for i in 0..n {
                        Self::sent(ctx.send(store, &Put { n: u64::from(i) }));
                    }
                }
                Step::Call => return Effect::call(store, &Get { n: 0 }, CALL_TIMEOUT),
                Step::CallStale => {
                    let n = self.answered_by.len();
                    let old = self.answered_by[n.saturating_sub(2)];
                    return Effect::call(old, &Get { n: 0 }, CALL_TIMEOUT);
                }
                Step::Crash => return Effect::call(store, &Order { op: CRASH }, CALL_TIMEOUT),
                Step::Stop => return Effect::call(store, &Order { op: STOP }, CALL_TIMEOUT),
                Step::Revive => {
                    let reviver = ctx.on_shard(REVIVER, ShardId(1));
                    return Effect::call(reviver, &Order { op: CRASH }, CALL_TIMEOUT);
                }
                Step::Pause => {
                    if ctx
                        .start_timer(Duration::from_millis(PAUSE_TICKS), RESUME)
                        .is_err()
                    {
                        return Effect::Crash(CrashReason("no timer"));
                    }
                    return Effect::Receive;
                }
            }
        }
    }
}

/// The two-shard system (leaked: a test builds it once per run).
pub(crate) fn spec() -> &'static SystemSpec<'static> {
    let types: &'static [TypeSpec] = Box::leak(Box::new([
        TypeSpec::of::<Store>("store"),
        TypeSpec::of::<Reviver>("reviver"),
        TypeSpec::of::<Client>("client"),
    ]));
    let client: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<Client>(
            &(),
            Restart::Temporary,
        )]));
    let revivable: &'static [ChildSpec<'static>] = Box::leak(Box::new([
        ChildSpec::named(STORE, &(), Restart::Transient),
        ChildSpec::named(REVIVER, &(), Restart::Permanent),
    ]));
    // Budget 0: any failure in the group escalates, and the root restarts the whole group
    // (a stopped store included).
    let group: &'static [ChildSpec<'static>] = Box::leak(Box::new([ChildSpec::Group(
        GroupSpec::one_for_one(revivable).budget(0, Duration::from_millis(1)),
    )]));
    let shards: &'static [ShardSpec<'static>] = Box::leak(Box::new([
        ShardSpec {
            root: GroupSpec::one_for_one(client),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(group).budget(1_000, Duration::from_millis(10)),
        },
    ]));
    let spec: &'static SystemSpec<'static> = Box::leak(Box::new(SystemSpec::new(shards, types)));
    spec.validate().expect("a valid spec");
    spec
}

/// Checks the records of a finished run: every elapsed time at most `max_elapsed` ticks.
pub(crate) fn check_records(all: &[Record], max_elapsed: u64) {
    let orders = ROUNDS + 2;
    let acks = all
        .iter()
        .filter(|r| r.outcome == Outcome::Acknowledged)
        .count();
    assert_eq!(acks, orders, "every order acknowledged: {all:#?}");
    let records: Vec<Record> = all
        .iter()
        .copied()
        .filter(|r| r.outcome != Outcome::Acknowledged)
        .collect();
    assert_eq!(records.len(), ROUNDS + DOWN_CALLS + 2, "{all:#?}");
    let mut seen: Vec<Handle> = Vec::new();
    let mut expect_reply = |r: &Record, what: &str| {
        let Outcome::Reply { got, from } = r.outcome else {
            panic!("{what}: {:?}", r.outcome);
        };
        // Exactly the Puts sent since the restart reached this incarnation.
        assert_eq!(got.puts, u64::from(PUTS), "{what}: receipts of {from}");
        assert!(
            !seen.contains(&from),
            "{what}: {from} answered before a restart too"
        );
        seen.push(from);
    };
    for (round, r) in records[..ROUNDS].iter().enumerate() {
        expect_reply(r, &format!("round {round}"));
    }
    for r in &records[ROUNDS..ROUNDS + DOWN_CALLS] {
        assert_eq!(r.outcome, Outcome::Refused(SendError::NotRunning));
    }
    expect_reply(&records[ROUNDS + DOWN_CALLS], "after the revival");
    let stale = records[ROUNDS + DOWN_CALLS + 1];
    assert_eq!(stale.outcome, Outcome::Refused(SendError::StaleHandle));
    for r in all {
        assert!(
            r.elapsed <= max_elapsed,
            "{r:?} took more than {max_elapsed} ticks"
        );
    }
    assert!(SEND_FAILURES.lock().unwrap().is_empty());
}
