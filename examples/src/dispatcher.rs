//! A job dispatcher with crashing workers.
//!
//! The dispatcher spawns `workers` workers as permanent dynamic children. Every tick it hands
//! the next job to the next worker it knows. A worker crashes on every `crash_every`-th job
//! it receives; supervision restarts it from its original arguments with a **new handle**,
//! and the restarted worker checks in with the dispatcher again. Until then, jobs sent to the
//! old handle are refused at once with `StaleHandle` — reported and counted, never delivered
//! to the new incarnation.
//!
//! The dispatcher itself is a named static child ([`DISPATCHER`]): a worker reaches it by
//! name on the dispatcher's shard (which may be another shard), so a restarted dispatcher
//! still hears every check-in. The dispatcher learns each worker's handle from the source of
//! its check-in, and a worker reports a finished job to the source of the job.

use tina_core::{
    Address, CrashReason, Ctx, Duration, Effect, Isolate, Message, Name, Restart, SendError,
    ShardId, UserTag, accepts, log, payload,
};

/// The dispatcher's name: declare it with `ChildSpec::named(DISPATCHER, …)`.
pub const DISPATCHER: Name<Dispatcher> = Name::new("dispatcher");

/// A job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Job {
    /// Sequence number.
    pub seq: u64,
}
payload!(Job);

/// A worker announcing itself (at every (re)start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct CheckIn {
    /// The worker's index (stable across restarts).
    pub index: u32,
    /// Padding.
    pub _pad: u32,
}
payload!(CheckIn);

/// A finished job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Done {
    /// The job.
    pub seq: u64,
    /// The worker's index.
    pub index: u32,
    /// Padding.
    pub _pad: u32,
}
payload!(Done);

accepts!(Dispatcher: CheckIn, Done);
accepts!(Worker: Job);

const TICK: UserTag = UserTag::new(0x73);
const WARMED_UP: UserTag = UserTag::new(0x74);
/// How long a (re)started worker takes before it checks in.
pub const WARM_UP: Duration = Duration::from_millis(20);

/// Dispatcher arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatcherArgs {
    /// Workers to spawn (at most [`WORKERS_MAX`]).
    pub workers: u32,
    /// Each worker crashes on every k-th job.
    pub crash_every: u32,
    /// Jobs to hand out in total (0: unlimited).
    pub jobs: u64,
}

/// Most workers one dispatcher manages.
pub const WORKERS_MAX: usize = 16;

/// Worker arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerArgs {
    /// The shard of the dispatcher to check in with (it is reached by [`DISPATCHER`]).
    pub dispatcher_shard: u32,
    /// Index.
    pub index: u32,
    /// Crash on every k-th job (0: never).
    pub crash_every: u32,
}

/// The dispatcher.
pub struct Dispatcher {
    args: DispatcherArgs,
    workers: [Option<Address<Worker>>; WORKERS_MAX],
    next: usize,
    /// Jobs handed out.
    pub sent: u64,
    /// Jobs finished.
    pub done: u64,
    /// Sends refused with `StaleHandle` (a worker had crashed).
    pub stale_refused: u64,
    /// Check-ins received (initial ones and after restarts).
    pub check_ins: u64,
}

impl Isolate for Dispatcher {
    type Args = DispatcherArgs;

    fn init(args: &DispatcherArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let n = (args.workers as usize).min(WORKERS_MAX);
        for index in 0..n {
            let w = WorkerArgs {
                dispatcher_shard: u32::from(ctx.shard_id().0),
                index: index as u32,
                crash_every: args.crash_every,
            };
            ctx.spawn_with::<Worker>(&w, Restart::Permanent)
                .map_err(|_| CrashReason("could not spawn a worker"))?;
        }
        ctx.start_timer(Duration::from_millis(1), TICK)
            .map_err(|_| CrashReason("no timer"))?;
        Ok((
            Dispatcher {
                args: *args,
                workers: [None; WORKERS_MAX],
                next: 0,
                sent: 0,
                done: 0,
                stale_refused: 0,
                check_ins: 0,
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if let Some(c) = msg.decode::<CheckIn>() {
            self.check_ins += 1;
            if let Some(slot) = self.workers.get_mut(c.index as usize) {
                *slot = ctx.address_of::<Worker>(msg.src());
            }
            return Effect::Receive;
        }
        if msg.decode::<Done>().is_some() {
            self.done += 1;
            return Effect::Receive;
        }
        if msg.tag() == TICK.into() {
            self.dispatch_one(ctx);
            if self.args.jobs == 0 || self.sent < self.args.jobs {
                let _ = ctx.start_timer(Duration::from_millis(1), TICK);
            }
        }
        Effect::Receive
    }
}

impl Dispatcher {
    fn dispatch_one(&mut self, ctx: &mut Ctx) {
        let n = (self.args.workers as usize).min(WORKERS_MAX);
        for _ in 0..n {
            let i = self.next % n;
            self.next += 1;
            let Some(w) = self.workers[i] else {
                continue;
            };
            match ctx.send(w, &Job { seq: self.sent }) {
                Ok(()) => {
                    self.sent += 1;
                    return;
                }
                Err(SendError::StaleHandle) => {
                    self.stale_refused += 1;
                    log!(
                        ctx,
                        Warn,
                        "worker {i} at {w} is gone; waiting for it to check in"
                    );
                    self.workers[i] = None;
                }
                Err(e) => {
                    log!(ctx, Warn, "job not sent: {e}");
                    return;
                }
            }
        }
    }
}

/// A worker.
pub struct Worker {
    args: WorkerArgs,
    jobs: u32,
}

impl Isolate for Worker {
    type Args = WorkerArgs;

    fn init(args: &WorkerArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        // A worker warms up before it checks in (think: loading its state). Until then the
        // dispatcher still holds the previous incarnation's handle, and its sends to it are
        // refused at once as stale.
        ctx.start_timer(WARM_UP, WARMED_UP)
            .map_err(|_| CrashReason("no timer for the warm-up"))?;
        Ok((
            Worker {
                args: *args,
                jobs: 0,
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if msg.tag() == WARMED_UP.into() {
            let dispatcher = ctx.on_shard(DISPATCHER, ShardId(self.args.dispatcher_shard as u8));
            let check_in = CheckIn {
                index: self.args.index,
                _pad: 0,
            };
            // A full mailbox is fine: the dispatcher will learn of us at the next restart.
            let _ = ctx.send(dispatcher, &check_in);
            return Effect::Receive;
        }
        let Some(job) = msg.decode::<Job>() else {
            return Effect::Receive;
        };
        self.jobs += 1;
        if self.args.crash_every != 0 && self.jobs.is_multiple_of(self.args.crash_every) {
            return Effect::Crash(CrashReason("worker crashes on purpose"));
        }
        let done = Done {
            seq: job.seq,
            index: self.args.index,
            _pad: 0,
        };
        // To the incarnation that sent the job (a restarted dispatcher never hears of jobs
        // its predecessor handed out).
        let _ = ctx.send(msg.src(), &done);
        Effect::Receive
    }
}
