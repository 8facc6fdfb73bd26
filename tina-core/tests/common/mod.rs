//! A scriptable test isolate and helpers for stepping shards by hand.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::vec::Vec;
use tina_core::testing::{OwnedRegion, TestPlatform, region_for};
use tina_core::*;

/// A command: what the actor does when it receives it.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Cmd {
    pub op: u32,
    pub count: u32,
    pub target: u64,
    pub arg: u64,
}
impl Payload for Cmd {
    const TAG: UserTag = UserTag::new(0x40);
}

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Ping {
    pub n: u64,
}
impl Payload for Ping {
    const TAG: UserTag = UserTag::new(0x41);
}

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Pong {
    pub n: u64,
}
impl Payload for Pong {
    const TAG: UserTag = UserTag::new(0x42);
}

pub const TIMER_TAG: UserTag = UserTag::new(0x50);

pub mod op {
    pub const RECEIVE: u32 = 0;
    pub const YIELD: u32 = 1;
    pub const DONE: u32 = 2;
    pub const CRASH: u32 = 3;
    pub const PANIC: u32 = 4;
    pub const CALL: u32 = 5;
    pub const SEND_PINGS: u32 = 6;
    pub const START_TIMER: u32 = 7;
    pub const CANCEL_TIMER: u32 = 8;
    pub const SPAWN: u32 = 9;
    pub const REPLY: u32 = 10;
    pub const SEND_THEN_PANIC: u32 = 11;
    pub const BURN: u32 = 12;
    pub const YIELD_THEN_CRASH: u32 = 13;
    pub const REPLY_DEFERRED: u32 = 14;
    /// Yield `count` times, and keep yielding through a shutdown notice (never finishes).
    pub const STUBBORN: u32 = 15;
}

/// How the actor answers calls carrying `Ping`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Replies {
    /// Never (the call times out).
    Never,
    /// At once, with `Pong` (n + 1).
    AtOnce,
    /// Later, on `REPLY_DEFERRED`.
    Deferred,
}

/// Init arguments of the actor (a plain struct: an enum, a flag and padding).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActorArgs {
    /// How calls carrying `Ping` are answered.
    pub replies: Replies,
    /// `init` fails.
    pub fail_init: bool,
    /// A tag stamped in the isolate (to tell incarnations apart).
    pub id: u64,
}

/// What the actor saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seen {
    pub tag: u16,
    pub src: Handle,
    pub is_call: bool,
    pub is_reply: bool,
    pub n: u64,
}

thread_local! {
    /// Life-cycle events of actors on this test's thread: ('i', id) at init, ('d', id) at drop.
    pub static EVENTS: std::cell::RefCell<Vec<(char, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Ids whose `init` fails while listed.
    pub static FAILING: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes the recorded events.
pub fn take_events() -> Vec<(char, u64)> {
    EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

pub fn set_failing(ids: &[u64]) {
    FAILING.with(|f| *f.borrow_mut() = ids.to_vec());
}

pub struct Actor {
    pub args: ActorArgs,
    pub seen: Vec<Seen>,
    pub yields_left: u32,
    pub last_timer: Option<TimerId>,
    pub last_send: Vec<Result<(), SendError>>,
    pub last_spawn: Option<Result<Handle, SpawnError>>,
    pub incarnation_marker: u64,
    pub crash_after_yields: bool,
    /// Set by `STUBBORN`: a shutdown notice does not end this actor.
    pub ignores_shutdown: bool,
    pub deferred: Option<CallToken>,
    pub deferred_result: Option<Result<(), SendError>>,
}

impl Isolate for Actor {
    type Args = ActorArgs;

    fn init(args: &ActorArgs, _ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        if args.fail_init || FAILING.with(|f| f.borrow().contains(&args.id)) {
            return Err(CrashReason("init told to fail"));
        }
        EVENTS.with(|e| e.borrow_mut().push(('i', args.id)));
        Ok((
            Actor {
                args: *args,
                seen: Vec::new(),
                yields_left: 0,
                last_timer: None,
                last_send: Vec::new(),
                last_spawn: None,
                incarnation_marker: args.id,
                crash_after_yields: false,
                ignores_shutdown: false,
                deferred: None,
                deferred_result: None,
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        let n = msg
            .decode::<Ping>()
            .map(|p| p.n)
            .or(msg.decode::<Pong>().map(|p| p.n))
            .unwrap_or(0);
        self.seen.push(Seen {
            tag: msg.tag().0,
            src: msg.src(),
            is_call: msg.is_call(),
            is_reply: msg.is_reply(),
            n,
        });
        if msg.tag() == system_tag::RESUMED {
            if self.yields_left > 0 {
                self.yields_left -= 1;
                return Effect::Yield;
            }
            if self.crash_after_yields {
                return Effect::Crash(CrashReason("crash after yielding"));
            }
            return Effect::Receive;
        }
        if msg.is_shutdown() {
            return if self.ignores_shutdown {
                Effect::Yield
            } else {
                Effect::Done
            };
        }
        if msg.is_call() && self.args.replies == Replies::Deferred {
            // Answer later, on REPLY_DEFERRED.
            self.deferred = msg.call_token();
            return Effect::Receive;
        }
        if msg.is_call()
            && self.args.replies == Replies::AtOnce
            && let Some(p) = msg.decode::<Ping>()
        {
            return Effect::Reply(Outgoing::new(&Pong { n: p.n + 1 }));
        }
        let Some(cmd) = msg.decode::<Cmd>() else {
            return Effect::Receive;
        };
        let target = Handle::from_bits(cmd.target);
        match cmd.op {
            op::YIELD => {
                self.yields_left = cmd.count;
                Effect::Yield
            }
            op::DONE => Effect::Done,
            op::CRASH => Effect::Crash(CrashReason("told to crash")),
            op::PANIC => panic!("told to panic"),
            op::CALL => Effect::Call {
                to: target,
                message: Outgoing::new(&Ping {
                    n: cmd.count as u64,
                }),
                timeout: Duration::from_millis(cmd.arg),
            },
            op::SEND_PINGS => {
                for i in 0..cmd.count {
                    let r = ctx.send(target, &Ping { n: i as u64 });
                    self.last_send.push(r);
                }
                Effect::Receive
            }
            op::START_TIMER => {
                self.last_timer = ctx
                    .start_timer(Duration::from_millis(cmd.arg), TIMER_TAG)
                    .ok();
                Effect::Receive
            }
            op::CANCEL_TIMER => {
                if let Some(t) = self.last_timer {
                    let _ = ctx.cancel_timer(t);
                }
                Effect::Receive
            }
            op::SPAWN => {
                let args = ActorArgs {
                    replies: Replies::AtOnce,
                    fail_init: cmd.count != 0,
                    id: cmd.arg,
                };
                self.last_spawn = Some(
                    ctx.spawn_with::<Actor>(&args, Restart::Temporary)
                        .map(|a| a.handle()),
                );
                Effect::Receive
            }
            op::REPLY => Effect::Reply(Outgoing::new(&Pong { n: 0 })),
            op::SEND_THEN_PANIC => {
                for i in 0..cmd.count {
                    let _ = ctx.send(target, &Ping { n: i as u64 });
                }
                let _ = ctx.start_timer(Duration::from_millis(5), TIMER_TAG);
                let _ = ctx.io_buffer();
                panic!("panic after context calls")
            }
            op::BURN => Effect::Yield,
            op::REPLY_DEFERRED => {
                if let Some(token) = self.deferred.take() {
                    let out = Outgoing::new(&Pong { n: 1000 });
                    self.deferred_result = Some(ctx.reply_to(token, &out));
                }
                Effect::Receive
            }
            op::STUBBORN => {
                self.yields_left = cmd.count;
                self.ignores_shutdown = true;
                Effect::Yield
            }
            op::YIELD_THEN_CRASH => {
                self.yields_left = cmd.count;
                self.crash_after_yields = true;
                Effect::Yield
            }
            _ => Effect::Receive,
        }
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        EVENTS.with(|e| e.borrow_mut().push(('d', self.args.id)));
    }
}

pub fn cmd(op: u32) -> Cmd {
    Cmd {
        op,
        count: 0,
        target: 0,
        arg: 0,
    }
}

pub fn cmd_to(op: u32, target: Handle, count: u32, arg: u64) -> Cmd {
    Cmd {
        op,
        count,
        target: target.to_bits(),
        arg,
    }
}

/// A shard on the test platform.
pub struct Rig<'a> {
    pub shard: Shard<'a, TestPlatform>,
    pub now: u64,
}

/// Boots shard 0 of `spec` in an exactly sized region and runs `f` with it.
pub fn with_rig<R>(spec: &SystemSpec<'_>, f: impl FnOnce(&mut Rig<'_>) -> R) -> R {
    with_rig_on(spec, 0, TestPlatform::default(), f)
}

/// Boots shard `id` of `spec` on `platform` and runs `f` with it.
pub fn with_rig_on<R>(
    spec: &SystemSpec<'_>,
    id: u8,
    platform: TestPlatform,
    f: impl FnOnce(&mut Rig<'_>) -> R,
) -> R {
    let mut region: OwnedRegion = region_for(spec, ShardId(id));
    let shard = Shard::new(spec, ShardId(id), region.bytes(), platform).expect("boot");
    let mut rig = Rig { shard, now: 0 };
    f(&mut rig)
}

impl Rig<'_> {
    pub fn step(&mut self) -> StepReport {
        self.now += 1;
        let r = self.shard.step(Instant::from_ticks(self.now));
        // Natively after every step; under Miri (there to find undefined behaviour, and about
        // a thousand times slower) only every 16th step.
        if !cfg!(miri) || self.now.is_multiple_of(16) {
            self.shard
                .check_invariants()
                .expect("invariants hold after every step");
        }
        r
    }

    pub fn step_until_idle(&mut self, max: usize) -> usize {
        for i in 0..max {
            let r = self.step();
            if !r.work_remaining {
                return i + 1;
            }
        }
        panic!("not idle after {max} steps");
    }

    pub fn advance_to(&mut self, tick: u64) {
        while self.now < tick {
            self.step();
        }
    }

    pub fn send(&mut self, to: Handle, c: Cmd) {
        self.shard.deliver(to, &Outgoing::new(&c)).expect("deliver");
    }

    pub fn actor(&self, h: Handle) -> &Actor {
        self.shard.state::<Actor>(h).expect("live actor")
    }

    pub fn actors(&self) -> Vec<Handle> {
        self.shard.handles::<Actor>().collect()
    }
}

/// Owned pieces of a one-shard spec with `n` static actors in a one-for-one root group.
pub struct Actors {
    pub types: Vec<TypeSpec>,
    pub children: Vec<ChildSpec<'static>>,
    pub dynamic: u32,
    pub pool: u32,
}

pub fn actors(n: usize, restart: Restart) -> Actors {
    Actors {
        types: vec![TypeSpec::of::<Actor>("actor").capacity(64)],
        children: (0..n)
            .map(|i| {
                ChildSpec::isolate::<Actor>(
                    &ActorArgs {
                        replies: Replies::AtOnce,
                        fail_init: false,
                        id: i as u64,
                    },
                    restart,
                )
            })
            .collect(),
        dynamic: 16,
        pool: 1024,
    }
}

impl Actors {
    pub fn shards(&self) -> [ShardSpec<'_>; 1] {
        [ShardSpec {
            root: GroupSpec::one_for_one(&self.children).dynamic(self.dynamic),
        }]
    }

    pub fn spec<'s>(&'s self, shards: &'s [ShardSpec<'s>]) -> SystemSpec<'s> {
        let mut spec = SystemSpec::new(shards, &self.types);
        spec.shard.message_pool_size = self.pool;
        spec.shard.io_buffer_count = 8;
        spec.shard.io_buffer_size = 256;
        spec.shard.timer_entries = 64;
        spec
    }
}

/// A second isolate type: counts messages and remembers the tick of each.
pub struct Tally {
    pub ticks: Vec<u64>,
}

impl Isolate for Tally {
    type Args = ();
    fn init(_: &(), _ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Tally { ticks: Vec::new() }, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        self.ticks.push(ctx.now().ticks());
        Effect::Receive
    }
}

pub fn args(id: u64) -> ActorArgs {
    ActorArgs {
        replies: Replies::AtOnce,
        fail_init: false,
        id,
    }
}
