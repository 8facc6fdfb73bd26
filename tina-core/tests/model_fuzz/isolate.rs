//! The fuzzed isolate, its payloads, and what it records for the model.

use std::cell::{Cell, RefCell};
use tina_core::io::{Fd, IoBuf, IoCompletion, IoError, IoKind, IoOp, IoTicket};
use tina_core::*;

// ---------------------------------------------------------------------------------------------
// Payloads and what the isolates record.

/// A command (or, with `op == NOP`, plain data). `seq` is unique across the run.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Cmd {
    pub(crate) seq: u64,
    pub(crate) target: u64,
    pub(crate) b: u64,
    pub(crate) op: u32,
    pub(crate) a: u32,
}
impl Payload for Cmd {
    const TAG: UserTag = UserTag::new(0x40);
}

/// A reply: its own `seq` and the `seq` of the request it answers.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Ans {
    pub(crate) seq: u64,
    pub(crate) req: u64,
}
impl Payload for Ans {
    const TAG: UserTag = UserTag::new(0x41);
}

pub(crate) const TRANSFER_TAG: UserTag = UserTag::new(0x43);
/// Timer tags: `TIMER_TAG_BASE + (k % TIMER_TAG_COUNT)`, distinct among one isolate's timers.
pub(crate) const TIMER_TAG_BASE: u16 = 0x100;
pub(crate) const TIMER_TAG_COUNT: u16 = 64;
/// Descriptors from this number up are handed out by the driver's `Accept` completions.
pub(crate) const FD_FIRST: i32 = 1000;

pub(crate) mod op {
    pub(crate) const NOP: u32 = 0;
    pub(crate) const SEND: u32 = 1;
    pub(crate) const SEND_OVERSIZED: u32 = 2;
    pub(crate) const CALL: u32 = 3;
    pub(crate) const YIELD: u32 = 4;
    pub(crate) const DONE: u32 = 5;
    pub(crate) const CRASH: u32 = 6;
    pub(crate) const PANIC: u32 = 7;
    pub(crate) const SEND_THEN_PANIC: u32 = 8;
    pub(crate) const START_TIMER: u32 = 9;
    pub(crate) const CANCEL_TIMER: u32 = 10;
    pub(crate) const SPAWN: u32 = 11;
    pub(crate) const IO: u32 = 12;
    pub(crate) const REPLY_DEFERRED: u32 = 13;
    pub(crate) const REPLY_STALE: u32 = 14;
    pub(crate) const REPLY_WITHOUT_CALL: u32 = 15;
    pub(crate) const TRANSFER: u32 = 16;
    pub(crate) const WATCH: u32 = 17;
    pub(crate) const TAKE_BUFFER: u32 = 18;
    /// `Ctx::submit` an op without parking (several in flight at once).
    pub(crate) const SUBMIT: u32 = 19;
    /// `Ctx::cancel` one of them.
    pub(crate) const CANCEL_IO: u32 = 20;
    pub(crate) const COUNT: u32 = 21;
}

/// How a callee answers a call (`Cmd::a` of the request).
pub(crate) mod answer {
    pub(crate) const NOW: u32 = 0;
    pub(crate) const DEFER: u32 = 1;
    pub(crate) const IGNORE: u32 = 2;
    pub(crate) const CRASH: u32 = 3;
    pub(crate) const TWICE: u32 = 4;
    pub(crate) const COUNT: u32 = 5;
}

/// The payload of every panic the fuzzer provokes (the panic hook keeps them quiet).
pub(crate) struct FuzzPanic;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendKind {
    /// Plain data or a command: accepted ⇒ delivered exactly once (locally) unless the
    /// receiver dies.
    Data,
    /// A reply: may be dropped as stale; never delivered twice.
    Reply,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum CallEnd {
    Replied,
    TimedOut,
    SendFailed,
}

#[derive(Clone, Debug)]
pub(crate) enum Ev {
    Spawned {
        inc: u64,
        h: Handle,
    },
    Dropped {
        inc: u64,
    },
    Delivered {
        inc: u64,
        me: Handle,
        seq: u64,
    },
    Sent {
        seq: u64,
        from_shard: u8,
        to: Handle,
        r: Result<(), SendError>,
        kind: SendKind,
    },
    CallMade {
        seq: u64,
        from: Handle,
        to: Handle,
    },
    CallEnded {
        seq: u64,
        how: CallEnd,
    },
    IoDelivered {
        inc: u64,
        me: Handle,
        seq: u64,
    },
    SpawnResult {
        r: Result<Handle, SpawnError>,
    },
    Violation(String),
}

thread_local! {
    pub(crate) static EVENTS: RefCell<Vec<Ev>> = const { RefCell::new(Vec::new()) };
    pub(crate) static NEXT_SEQ: Cell<u64> = const { Cell::new(1) };
    pub(crate) static NEXT_INC: Cell<u64> = const { Cell::new(1) };
    /// How many of the next `init`s fail, whatever their arguments (static children's
    /// restarts, recoveries and revivals included).
    pub(crate) static INIT_FAILURES: Cell<u32> = const { Cell::new(0) };
}

pub(crate) fn record(ev: Ev) {
    EVENTS.with(|e| e.borrow_mut().push(ev));
}

pub(crate) fn violation(s: String) {
    record(Ev::Violation(s));
}

pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.with(|c| {
        let s = c.get();
        c.set(s + 1);
        s
    })
}

pub(crate) fn reset_recording() {
    EVENTS.with(|e| e.borrow_mut().clear());
    NEXT_SEQ.with(|c| c.set(1));
    NEXT_INC.with(|c| c.set(1));
    INIT_FAILURES.with(|c| c.set(0));
}

// ---------------------------------------------------------------------------------------------
// The fuzzed isolate (two types with the same behaviour, so spawns cross arenas).

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FzArgs {
    /// 1: `init` fails; 2: `init` panics; 3: `init` returns `Done`; 4: `init` returns `Crash`.
    pub(crate) fail: u32,
    /// Yields this many times after a shutdown notice before finishing.
    pub(crate) stubborn: u32,
    /// Non-zero: `init` sends itself a message, starts a timer of this many ticks and takes
    /// an I/O buffer.
    pub(crate) init_work: u32,
}

/// A pending user timer as the isolate knows it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingTimer {
    pub(crate) id: TimerId,
    pub(crate) tag: u16,
    pub(crate) deadline: u64,
    pub(crate) started: u64,
}

#[derive(Debug, Default)]
pub(crate) struct FzState {
    pub(crate) inc: u64,
    /// The `seq` of the outstanding call's request.
    pub(crate) call: Option<u64>,
    /// A call answered later, and calls already answered (for stale replies).
    pub(crate) deferred: Option<(CallToken, u64)>,
    pub(crate) answered: Vec<(CallToken, u64)>,
    pub(crate) timers: Vec<PendingTimer>,
    pub(crate) timers_started: u16,
    pub(crate) io: Option<IoKind>,
    /// Ops submitted without parking whose completion has not come yet.
    pub(crate) tickets: Vec<(IoTicket, IoKind)>,
    pub(crate) yields: u32,
    pub(crate) stubborn: u32,
    /// Got the shutdown notice.
    pub(crate) finishing: bool,
    /// A buffer taken in an earlier handler call (so stale by now).
    pub(crate) old_buf: Option<IoBuf>,
    pub(crate) owned_fd: Option<Fd>,
    /// The owned descriptor an `Io(Close)` in flight closes.
    pub(crate) closing: Option<Fd>,
}

pub(crate) struct Fz<const K: u8> {
    pub(crate) s: FzState,
}

impl<const K: u8> Isolate for Fz<K> {
    type Args = FzArgs;

    fn init(a: &FzArgs, ctx: &mut Ctx<'_, '_>) -> Result<(Self, Effect), CrashReason> {
        let inc = NEXT_INC.with(|c| {
            let i = c.get();
            c.set(i + 1);
            i
        });
        let me = ctx.me();
        record(Ev::Spawned { inc, h: me });
        let mut s = FzState {
            inc,
            stubborn: a.stubborn,
            ..FzState::default()
        };
        if a.init_work != 0 {
            // Context calls during init: a message to itself (it queues while the isolate
            // initializes), a timer, a buffer (freed after init).
            s.send_data(ctx, me);
            s.start_timer(ctx, u64::from(a.init_work));
            let _ = ctx.io_buffer();
        }
        let forced = INIT_FAILURES.with(|f| {
            let n = f.get();
            f.set(n.saturating_sub(1));
            n > 0
        });
        match if forced { 1 } else { a.fail } {
            1 => {
                record(Ev::Dropped { inc });
                return Err(CrashReason("fuzz: init told to fail"));
            }
            2 => {
                record(Ev::Dropped { inc });
                std::panic::panic_any(FuzzPanic)
            }
            _ => {}
        }
        let first = match a.fail {
            3 => Effect::Done,
            4 => Effect::Crash(CrashReason("fuzz: init returned Crash")),
            _ => Effect::Receive,
        };
        Ok((Fz { s }, first))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        self.s.handle(msg, ctx)
    }
}

impl<const K: u8> Drop for Fz<K> {
    fn drop(&mut self) {
        record(Ev::Dropped { inc: self.s.inc });
    }
}

impl FzState {
    pub(crate) fn handle(&mut self, msg: &Message, ctx: &mut Ctx<'_, '_>) -> Effect {
        let me = ctx.me();
        if msg.dst() != me {
            violation(format!("{me:?} got a message addressed to {:?}", msg.dst()));
        }
        if msg.is_shutdown() {
            self.finishing = true;
        }
        if self.finishing && (msg.is_shutdown() || msg.tag() == system_tag::RESUMED) {
            // Takes a few ticks to finish after the shutdown notice.
            if self.stubborn > 0 {
                self.stubborn -= 1;
                return Effect::Yield;
            }
            return Effect::Done;
        }
        if msg.tag() == system_tag::RESUMED {
            if self.yields > 0 {
                self.yields -= 1;
                return Effect::Yield;
            }
            return Effect::Receive;
        }
        if msg.tag() == system_tag::SHARD_RESTARTED || msg.tag() == system_tag::SHARD_QUARANTINED {
            return Effect::Receive;
        }
        if let Some(c) = msg.io_completion() {
            return self.on_completion(c, ctx);
        }
        if msg.is_call_timeout() {
            let Some(seq) = self.call.take() else {
                violation(format!("{me:?} got a call timeout without a call"));
                return Effect::Receive;
            };
            let how = if msg.call_failed_to_send().is_some() {
                CallEnd::SendFailed
            } else {
                CallEnd::TimedOut
            };
            record(Ev::CallEnded { seq, how });
            return Effect::Receive;
        }
        if msg.is_reply() {
            let Some(ans) = msg.decode::<Ans>() else {
                violation(format!("{me:?} got a reply that is not an answer"));
                return Effect::Receive;
            };
            record(Ev::Delivered {
                inc: self.inc,
                me,
                seq: ans.seq,
            });
            if self.call != Some(ans.req) {
                violation(format!(
                    "{me:?} got the reply to call {} while waiting for {:?}",
                    ans.req, self.call
                ));
            }
            self.call = None;
            record(Ev::CallEnded {
                seq: ans.req,
                how: CallEnd::Replied,
            });
            return Effect::Receive;
        }
        let tag = msg.tag().0;
        if (TIMER_TAG_BASE..TIMER_TAG_BASE + TIMER_TAG_COUNT).contains(&tag) {
            let now = ctx.now().ticks();
            match self.timers.iter().position(|t| t.tag == tag) {
                Some(i) if self.timers[i].deadline <= now => {
                    self.timers.swap_remove(i);
                }
                Some(i) => violation(format!(
                    "{me:?}: timer {tag:#x} fired at {now}, before its deadline {}",
                    self.timers[i].deadline
                )),
                None => violation(format!(
                    "{me:?}: timer {tag:#x} fired but none is pending (cancelled or fired twice)"
                )),
            }
            return Effect::Receive;
        }
        if msg.tag() == TRANSFER_TAG.into() {
            let Some(t) = msg.transfer() else {
                violation(format!("{me:?}: a transfer message without its buffer"));
                return Effect::Receive;
            };
            match ctx.transfer_data(t) {
                Ok(bytes) if bytes.len() >= 8 => {
                    let seq = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                    record(Ev::Delivered {
                        inc: self.inc,
                        me,
                        seq,
                    });
                }
                other => violation(format!("{me:?}: transfer buffer unreadable: {other:?}")),
            }
            return Effect::Receive;
        }
        let Some(cmd) = msg.decode::<Cmd>() else {
            violation(format!("{me:?}: unexpected message {msg:?}"));
            return Effect::Receive;
        };
        record(Ev::Delivered {
            inc: self.inc,
            me,
            seq: cmd.seq,
        });
        if msg.is_call() {
            return self.answer(msg, &cmd, ctx);
        }
        self.run(&cmd, ctx)
    }

    pub(crate) fn answer(&mut self, msg: &Message, cmd: &Cmd, ctx: &mut Ctx<'_, '_>) -> Effect {
        let token = msg.call_token().expect("a call has a token");
        let reply = |ctx: &mut Ctx<'_, '_>| {
            let seq = next_seq();
            let out = Outgoing::new(&Ans { seq, req: cmd.seq });
            (seq, out, ctx.shard_id().0)
        };
        match cmd.a % answer::COUNT {
            answer::NOW => {
                let (seq, out, from_shard) = reply(ctx);
                // Whether it arrives is the caller's business (it may have timed out).
                record(Ev::Sent {
                    seq,
                    from_shard,
                    to: token.caller(),
                    r: Ok(()),
                    kind: SendKind::Reply,
                });
                self.answered.push((token, cmd.seq));
                Effect::Reply(out)
            }
            answer::DEFER => {
                if let Some(old) = self.deferred.replace((token, cmd.seq)) {
                    self.answered.push(old);
                }
                Effect::Receive
            }
            answer::IGNORE => Effect::Receive,
            answer::CRASH => Effect::Crash(CrashReason("fuzz: callee crashed")),
            answer::TWICE => {
                // Twice: once with `reply_to`, once with the effect; one is stale.
                let (seq, out, from_shard) = reply(ctx);
                let r = ctx.reply_to(token, &out);
                record(Ev::Sent {
                    seq,
                    from_shard,
                    to: token.caller(),
                    r,
                    kind: SendKind::Reply,
                });
                let (seq, out, from_shard) = reply(ctx);
                record(Ev::Sent {
                    seq,
                    from_shard,
                    to: token.caller(),
                    r: Ok(()),
                    kind: SendKind::Reply,
                });
                self.answered.push((token, cmd.seq));
                Effect::Reply(out)
            }
            _ => unreachable!("answer modes are taken modulo their count"),
        }
    }

    pub(crate) fn send_data(&mut self, ctx: &mut Ctx<'_, '_>, to: Handle) {
        let seq = next_seq();
        let data = Cmd {
            seq,
            target: 0,
            b: 0,
            op: op::NOP,
            a: 0,
        };
        let r = ctx.send(to, &data);
        record(Ev::Sent {
            seq,
            from_shard: ctx.shard_id().0,
            to,
            r,
            kind: SendKind::Data,
        });
    }

    pub(crate) fn start_timer(&mut self, ctx: &mut Ctx<'_, '_>, after: u64) {
        if self.timers.len() >= usize::from(TIMER_TAG_COUNT) {
            return;
        }
        let mut tag = TIMER_TAG_BASE + self.timers_started % TIMER_TAG_COUNT;
        while self.timers.iter().any(|t| t.tag == tag) {
            self.timers_started = self.timers_started.wrapping_add(1);
            tag = TIMER_TAG_BASE + self.timers_started % TIMER_TAG_COUNT;
        }
        self.timers_started = self.timers_started.wrapping_add(1);
        let now = ctx.now().ticks();
        if let Ok(id) = ctx.start_timer(Duration::from_millis(after), UserTag::new(tag)) {
            self.timers.push(PendingTimer {
                id,
                tag,
                deadline: now + after,
                started: now,
            });
        }
    }

    pub(crate) fn run(&mut self, cmd: &Cmd, ctx: &mut Ctx<'_, '_>) -> Effect {
        let me = ctx.me();
        let target = Handle::from_bits(cmd.target);
        match cmd.op {
            op::SEND => {
                for _ in 0..cmd.a % 6 {
                    self.send_data(ctx, target);
                }
                Effect::Receive
            }
            op::SEND_OVERSIZED => {
                let r = ctx.send_bytes(target, UserTag::new(0x44), &[7u8; 97]);
                if r != Err(SendError::PayloadTooLarge) {
                    violation(format!("{me:?}: an oversized send returned {r:?}"));
                }
                if Outgoing::from_bytes(UserTag::new(0x44), &[7u8; 97]).is_ok() {
                    violation("a 97-byte payload was accepted".into());
                }
                Effect::Receive
            }
            op::CALL => {
                let seq = next_seq();
                self.call = Some(seq);
                record(Ev::CallMade {
                    seq,
                    from: me,
                    to: target,
                });
                Effect::Call {
                    to: target,
                    message: Outgoing::new(&Cmd {
                        seq,
                        target: 0,
                        b: 0,
                        op: op::NOP,
                        a: cmd.a,
                    }),
                    timeout: Duration::from_millis(cmd.b % 40),
                }
            }
            op::YIELD => {
                self.yields = cmd.a % 4;
                Effect::Yield
            }
            op::DONE => Effect::Done,
            op::CRASH => Effect::Crash(CrashReason("fuzz: told to crash")),
            op::PANIC => std::panic::panic_any(FuzzPanic),
            op::SEND_THEN_PANIC => {
                for _ in 0..cmd.a % 4 {
                    self.send_data(ctx, target);
                }
                self.start_timer(ctx, 3);
                let _ = ctx.io_buffer();
                let _ = ctx.transfer_alloc(16);
                std::panic::panic_any(FuzzPanic)
            }
            op::START_TIMER => {
                self.start_timer(ctx, cmd.b % 50);
                Effect::Receive
            }
            op::CANCEL_TIMER => {
                if !self.timers.is_empty() {
                    let i = cmd.a as usize % self.timers.len();
                    if ctx.cancel_timer(self.timers[i].id) {
                        self.timers.swap_remove(i);
                    }
                }
                Effect::Receive
            }
            op::SPAWN => {
                let args = FzArgs {
                    fail: if cmd.a.is_multiple_of(3) {
                        (cmd.b % 5) as u32
                    } else {
                        0
                    },
                    stubborn: (cmd.b % 2) as u32,
                    init_work: ((cmd.b >> 8) % 4) as u32,
                };
                let restart = match cmd.a % 4 {
                    0 => Restart::Permanent,
                    1 => Restart::Transient,
                    _ => Restart::Temporary,
                };
                let r = if cmd.b.is_multiple_of(2) {
                    ctx.spawn_with::<Fz<0>>(&args, restart).map(|a| a.handle())
                } else {
                    ctx.spawn_with::<Fz<1>>(&args, restart).map(|a| a.handle())
                };
                record(Ev::SpawnResult { r });
                Effect::Receive
            }
            op::IO => self.start_io(cmd, ctx),
            op::SUBMIT => self.submit_io(cmd, ctx),
            op::CANCEL_IO => {
                if !self.tickets.is_empty() {
                    let (t, _) = self.tickets[(cmd.b as usize) % self.tickets.len()];
                    // In flight: asked; completed but not yet delivered: not in flight.
                    let r = ctx.cancel(t);
                    if !matches!(r, Ok(()) | Err(IoError::InFlightLimit | IoError::QueueFull)) {
                        violation(format!("{me:?}: cancel of {t:?} returned {r:?}"));
                    }
                }
                Effect::Receive
            }
            op::REPLY_DEFERRED => {
                if let Some((token, req)) = self.deferred.take() {
                    let seq = next_seq();
                    let r = ctx.reply_to(token, &Outgoing::new(&Ans { seq, req }));
                    record(Ev::Sent {
                        seq,
                        from_shard: ctx.shard_id().0,
                        to: token.caller(),
                        r,
                        kind: SendKind::Reply,
                    });
                    self.answered.push((token, req));
                }
                Effect::Receive
            }
            op::REPLY_STALE => {
                if !self.answered.is_empty() {
                    let (token, req) = self.answered[cmd.a as usize % self.answered.len()];
                    let seq = next_seq();
                    let r = ctx.reply_to(token, &Outgoing::new(&Ans { seq, req }));
                    record(Ev::Sent {
                        seq,
                        from_shard: ctx.shard_id().0,
                        to: token.caller(),
                        r,
                        kind: SendKind::Reply,
                    });
                }
                Effect::Receive
            }
            op::REPLY_WITHOUT_CALL => Effect::Reply(Outgoing::new(&Ans { seq: 0, req: 0 })),
            op::TRANSFER => {
                let Ok(t) = ctx.transfer_alloc(8 + (cmd.b % 200) as usize) else {
                    return Effect::Receive;
                };
                let seq = next_seq();
                if let Ok(bytes) = ctx.transfer_mut(t) {
                    bytes[..8].copy_from_slice(&seq.to_le_bytes());
                }
                let r = ctx.send_transfer(target, TRANSFER_TAG, t);
                if target.shard() != ctx.shard_id() && r != Err(SendError::NotLocal) {
                    violation(format!(
                        "{me:?}: a transfer to another shard returned {r:?}"
                    ));
                }
                record(Ev::Sent {
                    seq,
                    from_shard: ctx.shard_id().0,
                    to: target,
                    r,
                    kind: SendKind::Data,
                });
                Effect::Receive
            }
            op::WATCH => {
                ctx.watch_shards(cmd.a.is_multiple_of(2));
                Effect::Receive
            }
            op::TAKE_BUFFER => {
                if let Ok(b) = ctx.io_buffer() {
                    self.old_buf = Some(b);
                }
                Effect::Receive
            }
            _ => Effect::Receive,
        }
    }

    pub(crate) fn start_io(&mut self, cmd: &Cmd, ctx: &mut Ctx<'_, '_>) -> Effect {
        let socket = Fd(10);
        let op = match cmd.a % 7 {
            0 | 1 => IoOp::Recv {
                socket,
                len: 8 + (cmd.b % 64) as u32,
            },
            2 => {
                let Ok(buf) = ctx.io_buffer() else {
                    return Effect::Receive;
                };
                if let Ok(bytes) = ctx.io_buffer_mut(buf) {
                    bytes[..8].copy_from_slice(&cmd.seq.to_le_bytes());
                }
                IoOp::Send {
                    socket,
                    buf,
                    len: 8,
                }
            }
            3 => {
                self.closing = self.owned_fd.take();
                IoOp::Close {
                    fd: self.closing.unwrap_or(Fd(11)),
                }
            }
            4 => IoOp::Accept { listener: Fd(12) },
            5 => {
                // Longer than the buffer: the isolate crashes.
                let Ok(buf) = ctx.io_buffer() else {
                    return Effect::Receive;
                };
                IoOp::Send {
                    socket,
                    buf,
                    len: 1 << 20,
                }
            }
            _ => {
                // A buffer from an earlier call (freed since): the isolate crashes.
                let Some(buf) = self.old_buf.take() else {
                    return Effect::Receive;
                };
                IoOp::Send {
                    socket,
                    buf,
                    len: 8,
                }
            }
        };
        self.io = Some(op.kind());
        Effect::Io(op)
    }

    /// Submits an op without parking (`Fz<0>` may have two in flight, `Fz<1>` none).
    fn submit_io(&mut self, cmd: &Cmd, ctx: &mut Ctx<'_, '_>) -> Effect {
        let me = ctx.me();
        let op = match cmd.a % 4 {
            0 | 1 => IoOp::Recv {
                socket: Fd(10),
                len: 8 + (cmd.b % 64) as u32,
            },
            2 => {
                let Ok(buf) = ctx.io_buffer() else {
                    return Effect::Receive;
                };
                if let Ok(bytes) = ctx.io_buffer_mut(buf) {
                    bytes[..8].copy_from_slice(&cmd.seq.to_le_bytes());
                }
                // Sometimes longer than the buffer: refused, the buffer stays this call's.
                let len = if cmd.b.is_multiple_of(5) { 1 << 20 } else { 8 };
                IoOp::Send {
                    socket: Fd(10),
                    buf,
                    len,
                }
            }
            _ => IoOp::Accept { listener: Fd(12) },
        };
        let allowed = if ctx.type_id_of::<Fz<0>>() == Some(me.type_id()) {
            2
        } else {
            0
        };
        match ctx.submit(op) {
            Ok(t) => {
                if self.tickets.iter().any(|&(x, _)| x == t) || self.tickets.len() >= allowed {
                    violation(format!("{me:?}: ticket {t:?} over the bound or twice"));
                }
                self.tickets.push((t, op.kind()));
            }
            Err(IoError::InFlightLimit) if self.tickets.len() < allowed => {
                violation(format!("{me:?}: submit refused below the bound"));
            }
            Err(_) => {}
        }
        Effect::Receive
    }

    pub(crate) fn on_completion(&mut self, c: IoCompletion, ctx: &mut Ctx<'_, '_>) -> Effect {
        let me = ctx.me();
        if c.ticket.is_parked() {
            if self.io != Some(c.kind) {
                violation(format!(
                    "{me:?} got a {:?} completion while waiting for {:?}",
                    c.kind, self.io
                ));
            }
            self.io = None;
        } else {
            match self.tickets.iter().position(|&(t, _)| t == c.ticket) {
                Some(i) if self.tickets[i].1 == c.kind => {
                    self.tickets.swap_remove(i);
                }
                _ => violation(format!(
                    "{me:?} got a {:?} completion for {:?}, not in flight: {:?}",
                    c.kind, c.ticket, self.tickets
                )),
            }
        }
        match (c.kind, c.result, c.buf) {
            (IoKind::Recv, Ok(n), Some(buf)) if n >= 8 => match ctx.io_data(buf, n as usize) {
                Ok(bytes) if bytes.len() == n as usize => {
                    let seq = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                    record(Ev::IoDelivered {
                        inc: self.inc,
                        me,
                        seq,
                    });
                    if seq % 2 == 1 && self.io.is_none() {
                        // Zero-copy echo of what arrived.
                        self.io = Some(IoKind::Send);
                        return Effect::Io(IoOp::Send {
                            socket: Fd(10),
                            buf,
                            len: n,
                        });
                    }
                }
                other => violation(format!("{me:?}: received bytes unreadable: {other:?}")),
            },
            (IoKind::Recv, Ok(n), _) if n > 0 => {
                violation(format!("{me:?}: a receive of {n} bytes without its buffer"));
            }
            (IoKind::Accept, Ok(_), _) => {
                let fd = c.fd().expect("an accept yields a descriptor");
                if self.owned_fd.is_some() || fd.0 % 2 == 1 {
                    // Exits holding it, unowned: the shard closes it.
                    return Effect::Crash(CrashReason("fuzz: exits holding an accepted socket"));
                }
                ctx.own_fd(Some(fd));
                self.owned_fd = Some(fd);
            }
            (IoKind::Close, Err(e), _) if e != IoError::Canceled => {
                // Refused before it reached the driver: still open, still ours.
                if let Some(fd) = self.closing.take() {
                    ctx.own_fd(Some(fd));
                    self.owned_fd = Some(fd);
                }
            }
            _ => {}
        }
        Effect::Receive
    }
}
