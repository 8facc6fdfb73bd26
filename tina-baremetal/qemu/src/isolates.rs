//! The isolates the two shards run and the messages they exchange. Plain tina-core isolates:
//! the same code would run on tina-linux or in the simulator.
//!
//! Core 1's shard runs three services:
//! - `Ponger` answers every `Ball` call with `pong(ball)`;
//! - `Silent` takes calls and never answers them, so a call to it must time out;
//! - `Phoenix` answers calls with `Alive`; told to `Vanish`, it sends `Gone` back and exits.
//!   Its supervisor restarts it in the same slot with a new generation, so the old handle
//!   (the source of its `Gone`) names an incarnation that no longer exists: a call to it is
//!   refused by core 1 (`StaleHandle`) and must not reach the new incarnation (which would
//!   answer).
//!
//! The services are named ([`PONGER`], [`SILENT`], [`PHOENIX`]); core 0's shard runs the
//! `Driver`, which reaches them by name and makes one call at a time through the rings:
//!
//! ```text
//!   (1) AwaitingStart --Start--> (2) PingPong: Call Ponger, ROUND_TRIP_COUNT times
//!   --> (3) SilentCall: Call Silent (must time out)
//!   --> (4) AwaitingGone: send Vanish to Phoenix, wait for its Gone
//!   --> (5) StaleCall: Call the gone Phoenix incarnation (must be refused at once)
//!   --> (6) PromptCall: Call Ponger (must be answered within its timeout)
//!   --> (7) Finished
//! ```
//!
//! A wrong pong or a lost ping ends the driver early (`failure`). The driver only records
//! what happened; `shards::verify` decides whether that is a pass.

use bytemuck::{Pod, Zeroable};
use tina_core::{
    CrashReason, Ctx, Duration, Effect, Handle, Instant, Isolate, Message, Name, Outgoing, Payload,
    SendError, ShardId, TimerId, UserTag,
};

/// Core 1's ponger.
pub const PONGER: Name<Ponger> = Name::new("ponger");
/// Core 1's silent service.
pub const SILENT: Name<Silent> = Name::new("silent");
/// Core 1's phoenix.
pub const PHOENIX: Name<Phoenix> = Name::new("phoenix");

/// Round trips of the ping-pong. Sized so a multi-threaded TCG run on a busy 2-core host stays
/// well inside `deadline::RUN_TIMEOUT_MS` (see README.md).
pub const ROUND_TRIP_COUNT: u32 = 3_000;
/// Timeout of each ping-pong call: only a lost message can use it up.
pub const PING_TIMEOUT_MS: u64 = 10_000;
/// Timeout of the call that must time out (to `Silent`), and of the one that must be refused
/// first (to the gone `Phoenix`).
pub const EXPIRING_CALL_TIMEOUT_MS: u64 = 100;
/// Timeout of the last call to `Ponger`, which must be answered before it.
pub const PROMPT_CALL_TIMEOUT_MS: u64 = 2_000;
/// How long the driver waits for `Phoenix`'s `Gone`.
const GONE_TIMEOUT_MS: u64 = 10_000;

// --- messages ---------------------------------------------------------------------------------

const BALL_WORD_COUNT: usize = 23;

/// A ping or a pong: a sequence number and 23 words derived from it, filling the whole 96-byte
/// payload so a torn or stale envelope cannot pass for the right one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Ball {
    seq: u32,
    words: [u32; BALL_WORD_COUNT],
}
impl Payload for Ball {
    const TAG: UserTag = UserTag::new(0x40);
}
const _: () = assert!(size_of::<Ball>() == tina_core::PAYLOAD_SIZE_MAX);

/// The ping with sequence number `seq`.
pub fn ping(seq: u32) -> Ball {
    let mut words = [0; BALL_WORD_COUNT];
    for (word_index, word) in words.iter_mut().enumerate() {
        *word = seq.wrapping_mul(0x9E37_79B9) ^ (word_index as u32).wrapping_mul(0x85EB_CA6B);
    }
    Ball { seq, words }
}

/// The answer to `ball`.
pub fn pong(ball: &Ball) -> Ball {
    let mut words = ball.words;
    for word in &mut words {
        *word = !word.rotate_left(7);
    }
    Ball {
        seq: ball.seq,
        words,
    }
}

/// Core 0's main starts the driver once core 1's services run.
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
#[repr(C)]
pub struct Start {
    reserved: u32,
}
impl Payload for Start {
    const TAG: UserTag = UserTag::new(0x41);
}

/// Tells `Phoenix` to exit.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Vanish {
    reserved: u32,
}
impl Payload for Vanish {
    const TAG: UserTag = UserTag::new(0x42);
}

/// `Phoenix`'s last words (the exiting incarnation is their source).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Gone {
    reserved: u32,
}
impl Payload for Gone {
    const TAG: UserTag = UserTag::new(0x43);
}

/// `Phoenix`'s answer to a call.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Alive {
    calls_received: u32,
}
impl Payload for Alive {
    const TAG: UserTag = UserTag::new(0x44);
}

/// The driver's own timer while it waits for `Gone`.
const GONE_TIMER: UserTag = UserTag::new(0x45);

// --- core 1's services --------------------------------------------------------------------------

/// Answers every `Ball` call with its pong.
#[derive(Clone, Copy, Debug)]
pub struct Ponger {
    /// Calls answered.
    pub calls_answered: u32,
}

impl Isolate for Ponger {
    type Args = ();
    fn init(_: &(), _: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        Ok((Ponger { calls_answered: 0 }, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx<'_, '_>) -> Effect {
        match msg.decode::<Ball>() {
            Some(ball) if msg.is_call() => {
                self.calls_answered += 1;
                Effect::Reply(Outgoing::new(&pong(&ball)))
            }
            _ => Effect::Receive,
        }
    }
}

/// Takes calls and never answers them.
#[derive(Clone, Copy, Debug)]
pub struct Silent {
    /// Calls received (and left unanswered).
    pub calls_received: u32,
}

impl Isolate for Silent {
    type Args = ();
    fn init(_: &(), _: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        Ok((Silent { calls_received: 0 }, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx<'_, '_>) -> Effect {
        if msg.is_call() {
            self.calls_received += 1;
        }
        Effect::Receive
    }
}

/// Answers calls; on `Vanish`, says `Gone` to the sender and exits (to be restarted).
#[derive(Clone, Copy, Debug)]
pub struct Phoenix {
    /// Calls this incarnation received.
    pub calls_received: u32,
}

impl Isolate for Phoenix {
    type Args = ();
    fn init(_: &(), _: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        Ok((Phoenix { calls_received: 0 }, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        if msg.is_call() {
            self.calls_received += 1;
            return Effect::Reply(Outgoing::new(&Alive {
                calls_received: self.calls_received,
            }));
        }
        if msg.decode::<Vanish>().is_some() {
            let gone = Gone { reserved: 0 };
            // Published at the end of this step, after the teardown below: by the time the
            // sender reads it, this incarnation is gone.
            if ctx.send(msg.src(), &gone).is_err() {
                return Effect::Crash(CrashReason("phoenix could not say Gone"));
            }
            return Effect::Done;
        }
        Effect::Receive
    }
}

// --- core 0's driver ----------------------------------------------------------------------------

/// Where the driver is (see the module docs for the transitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// (1) Waiting for `Start`.
    AwaitingStart,
    /// (2) Calling `Ponger` in a loop.
    PingPong,
    /// (3) Calling `Silent`.
    SilentCall,
    /// (4) Waiting for `Phoenix`'s `Gone`.
    AwaitingGone,
    /// (5) Calling the gone `Phoenix` incarnation (refused by core 1).
    StaleCall,
    /// (6) Calling `Ponger` once more, with a timeout it must beat.
    PromptCall,
    /// (7) Done (successfully or not: see `failure`).
    Finished,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// Not made (yet).
    NotMade,
    /// The reply came after `waited_ms`.
    Replied {
        /// From the call to the reply.
        waited_ms: u64,
    },
    /// The `CALL_TIMEOUT` notice came after `waited_ms`.
    TimedOut {
        /// From the call to the notice.
        waited_ms: u64,
    },
    /// The call could not be delivered (refused at once by this shard, or by the callee's
    /// shard within a ring round trip), after `waited_ms`.
    Refused {
        /// Why.
        why: SendError,
        /// From the call to the refusal.
        waited_ms: u64,
    },
    /// Something else arrived instead.
    Unexpected,
}

/// Core 0's isolate: makes every call and records how each ended.
#[derive(Clone, Copy, Debug)]
pub struct Driver {
    /// Current phase.
    pub phase: Phase,
    /// The first thing that went wrong, if anything did.
    pub failure: Option<&'static str>,
    /// Ping-pong round trips completed with the right pong.
    pub round_trips: u32,
    /// Time the whole ping-pong took.
    pub ping_pong_ms: u64,
    /// The call to `Silent`.
    pub silent_call: CallOutcome,
    /// The handle of the `Phoenix` incarnation that went away.
    pub gone_phoenix: Handle,
    /// The call to that gone incarnation.
    pub stale_call: CallOutcome,
    /// The final call to `Ponger`.
    pub prompt_call: CallOutcome,
    ponger: Handle,
    silent: Handle,
    phoenix: Handle,
    call_started: Instant,
    ping_pong_started: Instant,
    gone_timer: Option<TimerId>,
}

impl Isolate for Driver {
    type Args = ();
    fn init(_: &(), _: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        let driver = Driver {
            phase: Phase::AwaitingStart,
            failure: None,
            round_trips: 0,
            ping_pong_ms: 0,
            silent_call: CallOutcome::NotMade,
            gone_phoenix: Handle::NONE,
            stale_call: CallOutcome::NotMade,
            prompt_call: CallOutcome::NotMade,
            ponger: Handle::NONE,
            silent: Handle::NONE,
            phoenix: Handle::NONE,
            call_started: Instant::ZERO,
            ping_pong_started: Instant::ZERO,
            gone_timer: None,
        };
        Ok((driver, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        match self.phase {
            Phase::AwaitingStart => self.on_start(msg, ctx),
            Phase::PingPong => self.on_pong(msg, ctx),
            Phase::SilentCall => self.on_silent_outcome(msg, ctx),
            Phase::AwaitingGone => self.on_gone(msg, ctx),
            Phase::StaleCall => self.on_stale_outcome(msg, ctx),
            Phase::PromptCall => self.on_prompt_outcome(msg, ctx),
            Phase::Finished => Effect::Receive,
        }
    }
}

impl Driver {
    /// True once the driver has nothing left to do.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// (1) → (2).
    fn on_start(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        if msg.decode::<Start>().is_none() {
            return Effect::Receive;
        }
        self.ponger = ctx.on_shard(PONGER, ShardId(1)).handle();
        self.silent = ctx.on_shard(SILENT, ShardId(1)).handle();
        self.phoenix = ctx.on_shard(PHOENIX, ShardId(1)).handle();
        let _ = tina_core::log!(
            ctx,
            Info,
            "driver: {} round trips with {}",
            ROUND_TRIP_COUNT,
            self.ponger
        );
        self.ping_pong_started = ctx.now();
        self.call(ctx, Phase::PingPong, self.ponger, &ping(1), PING_TIMEOUT_MS)
    }

    /// (2): check the pong, then the next ping, or (3).
    fn on_pong(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        let seq = self.round_trips + 1;
        if msg.is_call_timeout() {
            return self.fail(ctx, "a ping got no pong in time");
        }
        if msg.decode::<Ball>() != Some(pong(&ping(seq))) {
            return self.fail(ctx, "a pong did not match its ping");
        }
        self.round_trips = seq;
        if seq < ROUND_TRIP_COUNT {
            return self.call(
                ctx,
                Phase::PingPong,
                self.ponger,
                &ping(seq + 1),
                PING_TIMEOUT_MS,
            );
        }
        self.ping_pong_ms = ctx.elapsed_since(self.ping_pong_started).as_millis();
        let _ = tina_core::log!(
            ctx,
            Info,
            "driver: {} round trips in {} ms",
            self.round_trips,
            self.ping_pong_ms
        );
        let silent = self.silent;
        self.call(
            ctx,
            Phase::SilentCall,
            silent,
            &ping(0),
            EXPIRING_CALL_TIMEOUT_MS,
        )
    }

    /// (3) → (4).
    fn on_silent_outcome(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        self.silent_call = self.outcome(msg, ctx);
        let _ = tina_core::log!(ctx, Info, "driver: silent call: {:?}", self.silent_call);
        if ctx.send(self.phoenix, &Vanish { reserved: 0 }).is_err() {
            return self.fail(ctx, "could not tell phoenix to vanish");
        }
        match ctx.start_timer(Duration::from_millis(GONE_TIMEOUT_MS), GONE_TIMER) {
            Ok(timer) => self.gone_timer = Some(timer),
            Err(_) => return self.fail(ctx, "no timer for the wait for Gone"),
        }
        self.phase = Phase::AwaitingGone;
        Effect::Receive
    }

    /// (4) → (5).
    fn on_gone(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        if msg.tag() == GONE_TIMER.into() {
            return self.fail(ctx, "phoenix never said Gone");
        }
        if msg.decode::<Gone>().is_none() {
            return Effect::Receive;
        }
        if let Some(timer) = self.gone_timer.take() {
            ctx.cancel_timer(timer);
        }
        self.gone_phoenix = msg.src();
        let _ = tina_core::log!(ctx, Info, "driver: {} is gone", self.gone_phoenix);
        let gone_phoenix = self.gone_phoenix;
        self.call(
            ctx,
            Phase::StaleCall,
            gone_phoenix,
            &ping(0),
            EXPIRING_CALL_TIMEOUT_MS,
        )
    }

    /// (5) → (6).
    fn on_stale_outcome(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        self.stale_call = self.outcome(msg, ctx);
        let _ = tina_core::log!(ctx, Info, "driver: stale call: {:?}", self.stale_call);
        let prompt = ping(ROUND_TRIP_COUNT + 1);
        self.call(
            ctx,
            Phase::PromptCall,
            self.ponger,
            &prompt,
            PROMPT_CALL_TIMEOUT_MS,
        )
    }

    /// (6) → (7).
    fn on_prompt_outcome(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        self.prompt_call = self.outcome(msg, ctx);
        let _ = tina_core::log!(ctx, Info, "driver: prompt call: {:?}", self.prompt_call);
        if msg.is_reply() && msg.decode::<Ball>() != Some(pong(&ping(ROUND_TRIP_COUNT + 1))) {
            return self.fail(ctx, "the prompt call got a wrong pong");
        }
        self.phase = Phase::Finished;
        Effect::Receive
    }

    /// Calls `to` with `ball` and moves to `phase` to wait for the outcome.
    fn call(
        &mut self,
        ctx: &mut Ctx<'_, '_>,
        phase: Phase,
        to: Handle,
        ball: &Ball,
        timeout_ms: u64,
    ) -> Effect {
        self.phase = phase;
        self.call_started = ctx.now();
        Effect::Call {
            to,
            message: Outgoing::new(ball),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    /// How the call that `msg` ends went.
    fn outcome(&self, msg: &Message, ctx: &Ctx<'_, '_>) -> CallOutcome {
        let waited_ms = ctx.elapsed_since(self.call_started).as_millis();
        if msg.is_call_timeout() {
            if let Some(why) = msg.call_failed_to_send() {
                CallOutcome::Refused { why, waited_ms }
            } else {
                CallOutcome::TimedOut { waited_ms }
            }
        } else if msg.is_reply() {
            CallOutcome::Replied { waited_ms }
        } else {
            CallOutcome::Unexpected
        }
    }

    /// Stops at the first thing that went wrong.
    fn fail(&mut self, ctx: &mut Ctx<'_, '_>, why: &'static str) -> Effect {
        let _ = tina_core::log!(ctx, Error, "driver: {} (phase {:?})", why, self.phase);
        self.failure = Some(why);
        self.phase = Phase::Finished;
        Effect::Receive
    }
}
