//! The world: two shards on rings, the scripted I/O driver, the model and the seeded
//! generator; one run of one seed.

use crate::isolate::*;
use crate::model::*;
use std::collections::BTreeMap;
use tina_core::io::{IoCompletion, IoError, IoOp};
use tina_core::platform::{Bundle, Submission};
use tina_core::ring::{Ring, Slot};
use tina_core::testing::{CatchPanic, TestIo, TestLog, region_for};
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::*;

// ---------------------------------------------------------------------------------------------
// The seeded generator.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
// ---------------------------------------------------------------------------------------------
// The world: two shards on rings, the scripted I/O driver, the model and the generator.

struct NoWake;
impl Wake for NoWake {
    fn wake(&self, _peer: ShardId) {}
}

type FuzzPlatform<'r> = Bundle<RingTransport<'r, NoWake>, TestIo, CatchPanic, TestLog>;

struct World<'a, 'r> {
    shards: [Shard<'a, FuzzPlatform<'r>>; 2],
    spec: &'a SystemSpec<'a>,
    model: Model,
    rng: Rng,
    now: u64,
    /// Submissions the driver has not completed yet (their owners may be gone).
    outstanding: Vec<(usize, Submission)>,
    /// Completions already delivered that carried a buffer (replayed as duplicates).
    completed: Vec<(usize, Handle, IoCompletion)>,
    seen_submissions: [usize; 2],
    next_fd: i32,
    /// Descriptors handed out by `Accept` completions: open or closed.
    fds: BTreeMap<i32, bool>,
    prev: [Counters; 2],
    skip: [bool; 2],
    /// Per shard, after its last step: when it would wake if it slept (`None`: never).
    sleep_until: [Option<u64>; 2],
    /// (steps left, shard): when one shard starts a graceful shutdown mid-run.
    shutdown_at: Option<(usize, usize)>,
    trace: Vec<String>,
}

fn fz<'s>(shard: &'s Shard<'_, FuzzPlatform<'_>>, h: Handle) -> Option<&'s FzState> {
    match h.type_id().0 {
        0 => shard.state::<Fz<0>>(h).map(|f| &f.s),
        1 => shard.state::<Fz<1>>(h).map(|f| &f.s),
        _ => None,
    }
}

const OP_WEIGHTS: [(u32, u64); op::COUNT as usize] = [
    (op::NOP, 8),
    (op::SEND, 14),
    (op::SEND_OVERSIZED, 2),
    (op::CALL, 12),
    (op::YIELD, 5),
    (op::DONE, 3),
    (op::CRASH, 3),
    (op::PANIC, 3),
    (op::SEND_THEN_PANIC, 2),
    (op::START_TIMER, 8),
    (op::CANCEL_TIMER, 5),
    (op::SPAWN, 7),
    (op::IO, 12),
    (op::REPLY_DEFERRED, 5),
    (op::REPLY_STALE, 3),
    (op::REPLY_WITHOUT_CALL, 1),
    (op::TRANSFER, 5),
    (op::WATCH, 1),
    (op::TAKE_BUFFER, 2),
    (op::SUBMIT, 8),
    (op::CANCEL_IO, 3),
];

impl World<'_, '_> {
    fn pick_target(&mut self) -> Handle {
        let r = self.rng.below(100);
        if r < 75 && !self.model.alive.is_empty() {
            let n = self.rng.below(self.model.alive.len() as u64) as usize;
            let bits = *self.model.alive.keys().nth(n).expect("in range");
            return Handle::from_bits(bits);
        }
        if r < 92 && !self.model.dead.is_empty() {
            let n = self.rng.below(self.model.dead.len() as u64) as usize;
            return self.model.dead[n];
        }
        // Fabricated: a shard or type that may not exist, a slot and generation never used.
        Handle::new(
            ShardId(self.rng.below(3) as u8),
            TypeId(self.rng.below(3) as u8),
            self.rng.below(8) as u32,
            1 + self.rng.below(5) as u32,
        )
        .unwrap_or(Handle::NONE)
    }

    fn random_op(&mut self) -> u32 {
        let total: u64 = OP_WEIGHTS.iter().map(|w| w.1).sum();
        let mut x = self.rng.below(total);
        for (op, w) in OP_WEIGHTS {
            if x < w {
                return op;
            }
            x -= w;
        }
        op::NOP
    }

    /// Delivers a command from outside (as the platform would) and records the result.
    fn deliver(&mut self, to: Handle, op: u32) {
        let target = self.pick_target();
        let cmd = Cmd {
            seq: next_seq(),
            target: target.to_bits(),
            b: self.rng.next(),
            op,
            a: self.rng.next() as u32,
        };
        let i = if to.shard().0 < 2 {
            usize::from(to.shard().0)
        } else {
            self.rng.below(2) as usize
        };
        let r = self.shards[i].deliver(to, &Outgoing::new(&cmd));
        self.trace.push(format!(
            "  deliver via shard {i} to {to:?}: seq {} op {} a {} b {} target {target:?} -> {r:?}",
            cmd.seq, cmd.op, cmd.a, cmd.b
        ));
        record(Ev::Sent {
            seq: cmd.seq,
            from_shard: i as u8,
            to,
            r,
            kind: SendKind::Data,
        });
    }

    /// Completes one outstanding submission (`cancel`: as a shutdown would).
    fn complete(&mut self, k: usize, cancel: bool) {
        let (i, sub) = self.outstanding.swap_remove(k);
        let kind = sub.op.kind();
        let fail = cancel || self.rng.chance(15);
        let mut bytes = Vec::new();
        let result = if cancel {
            Err(IoError::Canceled)
        } else {
            match sub.op {
                IoOp::Recv { len, .. } if !fail => {
                    if self.rng.chance(15) {
                        Ok(0)
                    } else {
                        let n = 8 + self.rng.below(u64::from(len) - 7) as u32;
                        let seq = next_seq();
                        bytes = vec![(seq % 251) as u8; n as usize];
                        bytes[..8].copy_from_slice(&seq.to_le_bytes());
                        self.model.io.insert(
                            seq,
                            IoRec {
                                owner: sub.owner,
                                delivered: false,
                            },
                        );
                        Ok(n)
                    }
                }
                IoOp::Send { len, .. } if !fail => Ok(len),
                IoOp::Accept { .. } if !fail => {
                    self.next_fd += 1;
                    self.fds.insert(self.next_fd, true);
                    Ok(self.next_fd as u32)
                }
                // A close always closes (the descriptor is gone even if it reports an error).
                IoOp::Close { .. } => Ok(0),
                _ if !fail => Ok(0),
                _ => Err(IoError::ConnectionReset),
            }
        };
        let c = IoCompletion {
            kind,
            result,
            buf: sub.buf,
            peer: None,
            ticket: sub.ticket,
        };
        self.trace.push(format!(
            "  complete on shard {i} for {:?}: {kind:?} {result:?} buf {:?} ticket {:?}",
            sub.owner, sub.buf, sub.ticket
        ));
        self.shards[i]
            .platform()
            .io
            .completions
            .push_back((sub.owner, c, bytes));
        if sub.buf.is_some() {
            self.completed.push((i, sub.owner, c));
            if self.completed.len() > 16 {
                self.completed.remove(0);
            }
        }
    }

    /// Replays a completion already reported (a late duplicate): its buffer reference is
    /// stale, so the core must drop it. Skipped while the buffer is in flight again (the
    /// same reference handed to a new op: a platform bug the core cannot tell apart).
    fn duplicate_completion(&mut self) {
        if self.completed.is_empty() {
            return;
        }
        let k = self.rng.below(self.completed.len() as u64) as usize;
        let (i, owner, c) = self.completed[k];
        if self
            .outstanding
            .iter()
            .any(|(j, s)| *j == i && s.buf == c.buf)
        {
            return;
        }
        self.trace.push(format!(
            "  duplicate completion on shard {i} for {owner:?}: {c:?}"
        ));
        self.shards[i]
            .platform()
            .io
            .completions
            .push_back((owner, c, Vec::new()));
    }

    fn act(&mut self, steps_left: usize) {
        let actions = self.rng.below(4);
        for _ in 0..actions {
            let r = self.rng.below(100);
            match r {
                0..=49 => {
                    let to = self.pick_target();
                    let op = self.random_op();
                    self.deliver(to, op);
                }
                50..=54 => {
                    // Bursts into a few mailboxes (fills them, and maybe the pool).
                    for _ in 0..1 + self.rng.below(4) {
                        let to = self.pick_target();
                        for _ in 0..6 + self.rng.below(8) {
                            self.deliver(to, op::NOP);
                        }
                    }
                }
                55..=74 => {
                    for _ in 0..1 + self.rng.below(3) {
                        if !self.outstanding.is_empty() {
                            let k = self.rng.below(self.outstanding.len() as u64) as usize;
                            self.complete(k, false);
                        }
                    }
                }
                75..=77 => self.duplicate_completion(),
                78..=79 => {
                    // A crash storm: every isolate of one shard crashes (budgets run out,
                    // the shard recovers, and recovering too often quarantines it).
                    let i = self.rng.below(2) as u8;
                    let victims: Vec<Handle> = self
                        .model
                        .alive
                        .keys()
                        .map(|&b| Handle::from_bits(b))
                        .filter(|h| h.shard().0 == i)
                        .collect();
                    self.trace.push(format!("  crash storm on shard {i}"));
                    for h in victims {
                        let op = if self.rng.chance(50) {
                            op::CRASH
                        } else {
                            op::PANIC
                        };
                        self.deliver(h, op);
                    }
                }
                80..=84 => {
                    for _ in 0..1 + self.rng.below(3) {
                        let to = self.pick_target();
                        self.deliver(to, op::IO);
                    }
                }
                85 => {
                    // The next few inits fail: restarts, recoveries and revivals among them.
                    let n = 1 + self.rng.below(3) as u32;
                    INIT_FAILURES.with(|f| f.set(n));
                    self.trace.push(format!("  the next {n} inits fail"));
                }
                86 => {
                    let jump = 5 + self.rng.below(40);
                    self.now += jump;
                    self.trace.push(format!("  time jumps {jump} ticks"));
                }
                87 => {
                    // Both shards idle: sleep as a platform would, until the earlier
                    // deadline (the next step is at it).
                    if let Some(wake) = self.sleep_until.iter().flatten().min().copied()
                        && wake > self.now + 1
                    {
                        self.now = wake - 1;
                        self.trace.push(format!("  both idle: sleep until {wake}"));
                    }
                }
                88..=93 => {
                    let i = self.rng.below(2) as usize;
                    self.skip[i] = true;
                    self.trace.push(format!("  shard {i} skips this tick"));
                }
                94..=97 if self.spec.shard.io_submissions_per_tick_max < 64 => {
                    let i = self.rng.below(2) as usize;
                    let m = self.rng.below(2) as usize;
                    self.shards[i].platform().io.accept_max = Some(m);
                    self.trace
                        .push(format!("  shard {i}'s driver accepts {m} submissions"));
                }
                _ => {}
            }
        }
        for i in 0..2 {
            if matches!(
                self.shards[i].status(),
                ShardStatus::Quarantined | ShardStatus::AbortRequested
            ) && self.rng.chance(10)
            {
                let r = self.shards[i].revive(Instant::from_ticks(self.now));
                self.trace.push(format!("  revive shard {i}: {r:?}"));
            }
        }
        if let Some((at, i)) = self.shutdown_at
            && at == steps_left
        {
            // A graceful shutdown of one shard while traffic goes on.
            self.shards[i].shutdown();
            self.trace.push(format!("  shutdown of shard {i} starts"));
        }
    }

    /// Steps the shards that are not skipped at the next tick, then checks everything.
    fn step(&mut self) -> Result<[Option<StepReport>; 2], String> {
        self.now += 1;
        let now = Instant::from_ticks(self.now);
        let mut reports = [None, None];
        for (i, report) in reports.iter_mut().enumerate() {
            if !self.skip[i] {
                *report = Some(self.shards[i].step(now));
                self.shards[i].platform().io.accept_max = None;
            }
        }
        self.trace.push(format!(
            "t={} stepped {:?}",
            self.now,
            reports.map(|r| r.map(|r| (r.dispatched, r.status)))
        ));
        self.skip = [false; 2];
        self.collect_submissions()?;
        self.absorb()?;
        self.check(&reports)?;
        Ok(reports)
    }

    /// Takes the new submissions; a `Close` of a descriptor an `Accept` handed out closes
    /// it (once).
    fn collect_submissions(&mut self) -> Result<(), String> {
        for i in 0..2 {
            let io = &self.shards[i].platform().io;
            for s in &io.submitted[self.seen_submissions[i]..] {
                if !s.owner.is_none() {
                    self.outstanding.push((i, *s));
                }
                if let IoOp::Close { fd } = s.op
                    && fd.0 >= FD_FIRST
                {
                    match self.fds.get_mut(&fd.0) {
                        Some(open @ true) => *open = false,
                        Some(false) => {
                            return Err(format!("{fd:?} closed twice (by {:?})", s.owner));
                        }
                        None => return Err(format!("{fd:?} closed but never handed out")),
                    }
                }
            }
            self.seen_submissions[i] = io.submitted.len();
        }
        Ok(())
    }

    /// Feeds what the isolates (and the driver) recorded into the model.
    fn absorb(&mut self) -> Result<(), String> {
        let events = EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()));
        for ev in events {
            let text = format!("{ev:?}");
            self.model
                .on_event(ev, self.now)
                .map_err(|e| format!("{e}\n  (at event {text})"))?;
        }
        Ok(())
    }

    fn check(&mut self, reports: &[Option<StepReport>; 2]) -> Result<(), String> {
        for (i, shard) in self.shards.iter().enumerate() {
            shard
                .check_invariants()
                .map_err(|e| format!("shard {i}: invariant broken: {e}"))?;
            let (free, used, total) = shard.pool_usage();
            ensure!(
                free + used == total,
                "shard {i}: pool free {free} + in use {used} != {total}"
            );
            let c = shard.counters();
            for (k, (before, after)) in self.prev[i].to_array().iter().zip(c.to_array()).enumerate()
            {
                ensure!(
                    after >= *before,
                    "shard {i}: counter #{k} went down from {before} to {after}"
                );
            }
            self.prev[i] = c;
            let live: Vec<u64> = shard.live_handles().map(Handle::to_bits).collect();
            let modelled: Vec<u64> = self
                .model
                .alive
                .keys()
                .copied()
                .filter(|&b| Handle::from_bits(b).shard().0 == i as u8)
                .collect();
            ensure!(
                live == modelled,
                "shard {i}: live handles {:?} but the model has {:?}",
                live.iter()
                    .map(|&b| Handle::from_bits(b))
                    .collect::<Vec<_>>(),
                modelled
                    .iter()
                    .map(|&b| Handle::from_bits(b))
                    .collect::<Vec<_>>()
            );
            ensure!(
                shard.live_isolates() as usize == live.len(),
                "shard {i}: live_isolates {} but {} live handles",
                shard.live_isolates(),
                live.len()
            );
            if let Some(r) = reports[i] {
                ensure!(
                    r.live_isolates as usize == live.len(),
                    "shard {i}: the step reported {} live isolates, {} are",
                    r.live_isolates,
                    live.len()
                );
                if r.status == ShardStatus::Stopped {
                    ensure!(live.is_empty(), "shard {i}: stopped with live isolates");
                }
                // Every submitted buffer stays in use until its completion; beyond those,
                // each live isolate holds at most one completion not yet handled.
                let (_, timers, bufs) = shard.resources_in_use();
                let in_flight = self
                    .outstanding
                    .iter()
                    .filter(|(j, s)| *j == i && s.buf.is_some())
                    .count() as u32;
                ensure!(
                    in_flight <= bufs && bufs <= in_flight + live.len() as u32,
                    "shard {i}: {bufs} I/O buffers in use, {in_flight} in flight, {} live",
                    live.len()
                );
                ensure!(
                    timers <= self.spec.shard.timer_entries,
                    "shard {i}: {timers} timers in use"
                );
                if !r.work_remaining {
                    // A platform sleeps until `next_deadline`: it must not pass a timer.
                    ensure!(
                        r.next_deadline.is_some() || timers == 0,
                        "shard {i}: idle with {timers} timers pending and no next deadline"
                    );
                    for &h in &live {
                        let h = Handle::from_bits(h);
                        let Some(s) = fz(shard, h) else { continue };
                        for t in s.timers.iter().filter(|t| t.deadline > self.now) {
                            ensure!(
                                r.next_deadline.is_some_and(|d| d.ticks() <= t.deadline),
                                "shard {i}: idle until {:?}, after {h:?}'s timer due at {}",
                                r.next_deadline,
                                t.deadline
                            );
                        }
                    }
                    self.sleep_until[i] = r.next_deadline.map(|d| d.ticks());
                } else {
                    self.sleep_until[i] = Some(self.now);
                }
            }
            self.model.history[i].push((self.now, inbound_drops(&c), c.timer_drops));
        }
        Ok(())
    }

    /// The value of a shard's (inbound drops, timer drops) after the last tick before `tick`.
    fn before(&self, shard: usize, tick: u64) -> (u64, u64) {
        self.model.history[shard]
            .iter()
            .rev()
            .find(|h| h.0 < tick)
            .map_or((0, 0), |h| (h.1, h.2))
    }

    fn quiet(&mut self) -> bool {
        self.outstanding.is_empty()
            && (0..2).all(|i| {
                let s = &mut self.shards[i];
                s.resources_in_use().1 == 0
                    && s.platform().io.completions.is_empty()
                    && !s.platform().transport.has_inbound()
            })
    }

    /// Completes every I/O operation and lets every timer fire, until nothing moves; then
    /// what was accepted must have arrived.
    fn drain(&mut self) -> Result<(), String> {
        self.trace.push("drain".into());
        for _ in 0..400 {
            while !self.outstanding.is_empty() {
                self.complete(self.outstanding.len() - 1, false);
            }
            let reports = self.step()?;
            // At rest: a tick dispatched nothing and left no work.
            let idle = reports
                .iter()
                .all(|r| r.is_some_and(|r| r.dispatched == 0 && !r.work_remaining));
            let busy = (0..2).any(|i| {
                // A quarantined or stopped shard does no work.
                self.shards[i].live_isolates() > 0 && {
                    let h: Vec<Handle> = self.shards[i].live_handles().collect();
                    h.iter()
                        .any(|&h| fz(&self.shards[i], h).is_some_and(|s| s.yields > 0))
                }
            });
            if idle && !busy && self.quiet() {
                return self.check_quiet();
            }
        }
        let mut why = String::from("the shards did not come to rest within 400 ticks:");
        for (i, s) in self.shards.iter_mut().enumerate() {
            let inbound = s.platform().transport.has_inbound();
            let live: Vec<_> = s.live_handles().map(|h| (h, fz(s, h))).collect();
            why += &format!(
                "\n  shard {i}: {:?}, resources {:?}, live {live:?}, inbound {}",
                s.status(),
                s.resources_in_use(),
                inbound
            );
        }
        Err(why)
    }

    fn check_quiet(&mut self) -> Result<(), String> {
        self.collect_submissions()?;
        self.absorb()?;
        for (&bits, &inc) in &self.model.alive {
            let h = Handle::from_bits(bits);
            let i = usize::from(h.shard().0);
            let Some(s) = fz(&self.shards[i], h) else {
                return Err(format!("{h:?} (incarnation {inc}) has no state"));
            };
            ensure!(s.inc == inc, "{h:?} holds incarnation {} not {inc}", s.inc);
            ensure!(
                s.io.is_none(),
                "{h:?} still waits for a {:?} completion though every submission completed",
                s.io
            );
            ensure!(
                s.tickets.is_empty(),
                "{h:?} still waits for submitted ops {:?} though every submission completed",
                s.tickets
            );
            ensure!(
                s.call.is_none(),
                "{h:?} still waits for call {:?} though every timeout passed",
                s.call
            );
            for t in &s.timers {
                let dropped = self.before(i, t.started).1 < self.shards[i].counters().timer_drops;
                ensure!(
                    dropped,
                    "{h:?}: timer {:#x} started at {} for {} never fired (no drop counted)",
                    t.tag,
                    t.started,
                    t.deadline
                );
            }
        }
        for (seq, rec) in &self.model.msgs {
            if rec.delivered || !self.model.is_alive(rec.to) {
                continue;
            }
            let i = usize::from(rec.to.shard().0);
            match rec.accepted {
                Accepted::Local => {
                    return Err(format!(
                        "message {seq} accepted at tick {} for the live {:?} never arrived",
                        rec.tick, rec.to
                    ));
                }
                Accepted::Remote => {
                    let dropped =
                        self.before(i, rec.tick).0 < inbound_drops(&self.shards[i].counters());
                    ensure!(
                        dropped,
                        "message {seq} handed to the ring at tick {} for the live {:?} never \
                         arrived (no drop counted)",
                        rec.tick,
                        rec.to
                    );
                }
                Accepted::Maybe | Accepted::Refused => {}
            }
        }
        for (seq, rec) in &self.model.io {
            ensure!(
                rec.delivered || !self.model.is_alive(rec.owner),
                "completion {seq} for the live {:?} never arrived",
                rec.owner
            );
        }
        for i in 0..2 {
            let (_, _, bufs) = self.shards[i].resources_in_use();
            ensure!(
                bufs == 0,
                "shard {i}: {bufs} I/O buffers in use with nothing in flight"
            );
            ensure!(
                self.shards[i].transfers_in_use() == 0,
                "shard {i}: transfer buffers in use at rest"
            );
        }
        Ok(())
    }

    /// A graceful shutdown of both shards (a quarantined one is stopped at once): every
    /// isolate ends, every resource comes back.
    fn shutdown(&mut self) -> Result<(), String> {
        self.trace.push("shutdown".into());
        for i in 0..2 {
            match self.shards[i].status() {
                ShardStatus::Quarantined | ShardStatus::AbortRequested => {
                    self.shards[i].force_stop()
                }
                _ => self.shards[i].shutdown(),
            }
        }
        self.absorb()?;
        // Sometimes the shutdown times out early: the rest is torn down at once, with I/O,
        // calls and timers in flight.
        let force_at = if self.rng.chance(15) {
            self.rng.below(4) as usize
        } else {
            usize::MAX
        };
        for k in 0..300 {
            if k == force_at {
                self.trace.push("  shutdown forced".into());
                for s in &mut self.shards {
                    s.force_stop();
                }
            }
            while !self.outstanding.is_empty() {
                self.complete(self.outstanding.len() - 1, true);
            }
            let reports = self.step()?;
            let stopped = self
                .shards
                .iter()
                .all(|s| s.status() == ShardStatus::Stopped);
            // A stopped shard may still hold closes of descriptors whose owner is gone (the
            // driver cannot close them at once and takes one submission per tick).
            let held = reports.iter().any(|r| r.is_some_and(|r| r.work_remaining));
            if stopped && !held && self.quiet() {
                break;
            }
        }
        for (i, shard) in self.shards.iter().enumerate() {
            ensure!(
                shard.status() == ShardStatus::Stopped,
                "shard {i}: not stopped 300 ticks after a graceful shutdown: {:?}; live: {:?}",
                shard.status(),
                shard
                    .live_handles()
                    .map(|h| (h, fz(shard, h)))
                    .collect::<Vec<_>>()
            );
            ensure!(
                shard.resources_in_use() == (0, 0, 0),
                "shard {i}: (envelopes, timers, buffers) still in use after shutdown: {:?}",
                shard.resources_in_use()
            );
            ensure!(
                shard.transfers_in_use() == 0,
                "shard {i}: transfer buffers still in use after shutdown"
            );
        }
        ensure!(
            self.model.alive.is_empty(),
            "incarnations never dropped: {:?}",
            self.model.alive
        );
        // Every descriptor an `Accept` handed out is closed exactly once: its owner's
        // `Close`, or the shard's when the owner exits — also when that close found the
        // batch full or the driver refused it (held and submitted again).
        let open: Vec<i32> = self.fds.iter().filter(|f| *f.1).map(|f| *f.0).collect();
        ensure!(open.is_empty(), "descriptors never closed: {open:?}");
        Ok(())
    }
}

/// Runs one seed: boot, `steps` random steps, drain, graceful shutdown. Returns the summed
/// counters of both shards.
pub(crate) fn run_seed(
    seed: u64,
    steps: usize,
    trace: &mut Vec<String>,
) -> Result<Counters, String> {
    reset_recording();
    let mut rng = Rng(seed);
    let types = [
        TypeSpec::of::<Fz<0>>("fz0")
            .capacity(6)
            .mailbox_capacity(4)
            .io_in_flight_max(3),
        TypeSpec::of::<Fz<1>>("fz1").capacity(6).mailbox_capacity(8),
    ];
    let plain = FzArgs::default();
    let busy = FzArgs {
        init_work: 3,
        ..plain
    };
    let inner = [
        ChildSpec::isolate::<Fz<0>>(&plain, Restart::Permanent),
        ChildSpec::isolate::<Fz<1>>(&busy, Restart::Permanent),
        ChildSpec::isolate::<Fz<0>>(&plain, Restart::Temporary),
    ];
    let children = [
        ChildSpec::isolate::<Fz<0>>(&plain, Restart::Permanent),
        ChildSpec::isolate::<Fz<1>>(&plain, Restart::Transient),
        ChildSpec::Group(
            GroupSpec::one_for_one(&inner)
                .strategy(Strategy::OneForAll)
                .budget(2, Duration::from_millis(30)),
        ),
        ChildSpec::isolate::<Fz<1>>(
            &FzArgs {
                stubborn: 2,
                ..busy
            },
            Restart::Permanent,
        ),
    ];
    let root = GroupSpec::one_for_one(&children)
        .dynamic(6)
        .budget(4, Duration::from_millis(40));
    let shard_specs = [ShardSpec { root }, ShardSpec { root }];
    let mut spec = SystemSpec::new(&shard_specs, &types);
    spec.shard = ShardConfig {
        message_pool_size: [16, 40, 96][rng.below(3) as usize],
        system_reserve: Some(4),
        timer_entries: [8, 24][rng.below(2) as usize],
        timer_spokes: 8,
        timer_expirations_per_tick_max: 1 + rng.below(4) as u32,
        io_buffer_count: 4 + rng.below(4) as u32,
        io_buffer_size: 80,
        // A third of the seeds never fill a batch (and their driver refuses nothing), so the
        // descriptor check below holds them to every close.
        io_submissions_per_tick_max: [1, 3, 64][rng.below(3) as usize],
        messages_per_dispatch_max: [1, 2, 16][rng.below(3) as usize],
        log_entries: 8,
        transfer_buffer_count: 2,
        transfer_buffer_size: 256,
    };
    spec.ring_capacity = 16;
    spec.recoveries_max = 2;
    spec.recovery_window = Duration::from_millis(80);
    let spec = &spec;

    let mut s01 = Slot::<Message>::array::<16>();
    let mut s10 = Slot::<Message>::array::<16>();
    let mut r01 = Ring::new(&mut s01).expect("ring");
    let mut r10 = Ring::new(&mut s10).expect("ring");
    let (p01, c01) = r01.split();
    let (p10, c10) = r10.split();
    let links = [ShardLink::new(), ShardLink::new()];
    let (mut out0, mut in0) = ([None, Some(p01)], [None, Some(c10)]);
    let (mut out1, mut in1) = ([Some(p10), None], [Some(c01), None]);
    let (mut seen0, mut seen1) = ([0u32; 2], [0u32; 2]);
    let t0 = RingTransport::new(ShardId(0), &mut out0, &mut in0, &links, &mut seen0, NoWake);
    let t1 = RingTransport::new(ShardId(1), &mut out1, &mut in1, &links, &mut seen1, NoWake);
    let mut m0 = region_for(spec, ShardId(0));
    let mut m1 = region_for(spec, ShardId(1));
    let platform = |transport| FuzzPlatform {
        transport,
        io: TestIo::default(),
        trap: CatchPanic,
        log: TestLog::default(),
    };
    let sh0 = Shard::new(spec, ShardId(0), m0.bytes(), platform(t0)).map_err(|e| e.to_string())?;
    let sh1 = Shard::new(spec, ShardId(1), m1.bytes(), platform(t1)).map_err(|e| e.to_string())?;
    let mut w = World {
        shards: [sh0, sh1],
        spec,
        model: Model::default(),
        rng,
        now: 0,
        outstanding: Vec::new(),
        completed: Vec::new(),
        seen_submissions: [0; 2],
        next_fd: FD_FIRST,
        fds: BTreeMap::new(),
        prev: [Counters::default(); 2],
        skip: [false; 2],
        shutdown_at: None,
        sleep_until: [Some(0); 2],
        trace: Vec::new(),
    };
    if steps > 40 && w.rng.chance(25) {
        w.shutdown_at = Some((
            10 + w.rng.below(steps as u64 / 3) as usize,
            w.rng.below(2) as usize,
        ));
    }
    w.trace
        .push(format!("seed {seed}: config {:?}", spec.shard));
    let result = (|| {
        w.absorb()?;
        w.check(&[None, None])?;
        for k in 0..steps {
            w.act(steps - k);
            w.step()?;
        }
        w.drain()?;
        w.shutdown()
    })();
    *trace = std::mem::take(&mut w.trace);
    result?;
    if std::env::var("TINA_FUZZ_DEBUG").is_ok() {
        let m = &w.model;
        let count = |a: Accepted| m.msgs.values().filter(|r| r.accepted == a).count();
        let delivered = m.msgs.values().filter(|r| r.delivered).count();
        eprintln!(
            "seed {seed}: subs {}, fds {}, msgs {} local {} remote {} maybe {} refused {} delivered {} io {} io delivered {} incarnations {} dead {}",
            spec.shard.io_submissions_per_tick_max,
            w.fds.len(),
            m.msgs.len(),
            count(Accepted::Local),
            count(Accepted::Remote),
            count(Accepted::Maybe),
            count(Accepted::Refused),
            delivered,
            m.io.len(),
            m.io.values().filter(|r| r.delivered).count(),
            m.ever.len(),
            m.dead.len()
        );
    }
    let mut sum = [0u64; Counters::FIELD_COUNT];
    for s in &w.shards {
        for (t, v) in sum.iter_mut().zip(s.counters().to_array()) {
            *t += v;
        }
    }
    Ok(Counters::from_array(&sum))
}
