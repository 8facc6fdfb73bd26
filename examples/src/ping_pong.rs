//! Two isolates playing ping-pong with `Call` + timeout.
//!
//! The [`Pinger`] spawns a [`Ponger`] as its child, then calls it `rounds` times; each reply
//! carries the count back. Works on one shard or, given the ponger's handle on another
//! shard, across shards.

use tina_core::{Address, CrashReason, Ctx, Duration, Effect, Isolate, Message, log};

/// The ball.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Ball {
    /// Hits so far.
    pub hits: u64,
}
tina_core::payload!(Ball);

/// Pinger arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingerArgs {
    /// Round trips to play.
    pub rounds: u64,
    /// Log every n rounds (0: never).
    pub log_every: u64,
}

/// Calls the ponger `rounds` times.
pub struct Pinger {
    args: PingerArgs,
    ponger: Address<Ponger>,
    /// Round trips completed.
    pub completed: u64,
    /// Calls that timed out.
    pub timeouts: u64,
}

impl Pinger {
    fn serve(&self) -> Effect {
        let ball = Ball {
            hits: self.completed * 2,
        };
        Effect::call(self.ponger, &ball, Duration::from_millis(100))
    }
}

impl Isolate for Pinger {
    type Args = PingerArgs;

    fn init(args: &PingerArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let ponger = ctx
            .spawn::<Ponger>(&())
            .map_err(|_| CrashReason("could not spawn the ponger"))?;
        log!(
            ctx,
            Info,
            "pinger {} serving to ponger {}",
            ctx.me(),
            ponger
        );
        let me = Pinger {
            args: *args,
            ponger,
            completed: 0,
            timeouts: 0,
        };
        let first = me.serve();
        Ok((me, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_call_timeout() {
            self.timeouts += 1;
            return self.serve();
        }
        let Some(ball) = msg.decode::<Ball>() else {
            return Effect::Receive;
        };
        self.completed += 1;
        if self.args.log_every != 0 && self.completed.is_multiple_of(self.args.log_every) {
            log!(
                ctx,
                Info,
                "round {} (ball hit {} times)",
                self.completed,
                ball.hits
            );
        }
        if self.completed >= self.args.rounds {
            log!(
                ctx,
                Info,
                "done: {} rounds, {} timeouts",
                self.completed,
                self.timeouts
            );
            return Effect::Done;
        }
        self.serve()
    }
}

/// Returns every ball, hit once more.
pub struct Ponger;
tina_core::accepts!(Ponger: Ball);

impl Isolate for Ponger {
    type Args = ();

    fn init(_: &(), _ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Ponger, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        match msg.decode::<Ball>() {
            Some(ball) if msg.is_call() => Effect::reply(&Ball {
                hits: ball.hits + 1,
            }),
            _ => Effect::Receive,
        }
    }
}
