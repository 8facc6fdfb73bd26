//! The shard: one scheduler loop's worth of state, and `step`, one tick as a pure transition.
//!
//! ```text
//!  step(now) ─┬─ 1. drain inbound channels ───────── Transport::receive → mailboxes
//!             ├─ 2. take I/O completions ─────────── IoDriver::complete → parked isolates
//!             ├─ 3. dispatch, grouped by type ────── each type ≤ weight × 256 handler calls,
//!             │                                      FIFO ready queue, ≤ k calls per isolate
//!             ├─ 4. submit this tick's I/O batch ─── IoDriver::submit (one batch)
//!             ├─ 5. publish outbound channels ────── Transport::publish (one release per ring)
//!             ├─ 6. advance timers ──────────────── ≤ timer_expirations_per_tick_max fire
//!             └─ 7. report ───────────────────────── work left? next deadline? counters
//! ```
//!
//! Every loop in `step` has a bound from the spec, so one tick has a worst-case cost that can
//! be stated. The platform uses the [`StepReport`] to decide between stepping again at once,
//! sleeping until `next_deadline`, or sleeping until woken.

use crate::arena::ArenaRef;
use crate::core::{Core, Exit, Meta, NOTICE_SHUTDOWN, State, TypeState};
use crate::counters::Counters;
use crate::ctx::{ArenaAccess, Ctx, CtxParts};
use crate::effect::{CrashReason, Effect};
use crate::handle::{Handle, ShardId, TypeId};
use crate::iobuf::{BufMeta, BufferPool, IoState, WorkChunk};
use crate::log::{LogRecord, LogRing};

use crate::io::IoError;
use crate::isolate::Isolate;
use crate::memory::{Measure, MemoryError, Region};
use crate::message::{Message, Outgoing};
use crate::platform::{
    CallKind, CompletionSink, IoBuffers, IoDriver, Parts, PeerEvent, Platform, Submission,
    Transport, Trap, TrapCall,
};
use crate::pool::{Class, Pool};
use crate::ring::{Ring, Slot};
use crate::spec::{DISPATCHES_PER_WEIGHT, Location, QuarantinePolicy, SpecError, SystemSpec};
use crate::supervision::{Departed, GroupState, Groups, Member, TreeSize, Verdict};
use crate::time::Instant;
use crate::timer::{TimerEntry, TimerWheel};
use core::fmt;
use core::mem::MaybeUninit;

/// Why a send was refused. Returned at once; the framework never retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum SendError {
    /// The target's mailbox (or, cross-shard, the outbound ring) is full.
    MailboxFull = 1,
    /// The shard's message pool has no envelope for user traffic.
    PoolExhausted = 2,
    /// The target no longer exists (torn down, its shard quarantined or unreachable).
    StaleHandle = 3,
    /// The payload exceeds 96 bytes.
    PayloadTooLarge = 4,
    /// Transfer buffers only travel within their shard.
    NotLocal = 5,
}

impl SendError {
    pub(crate) fn from_code(c: u8) -> Option<SendError> {
        Some(match c {
            1 => SendError::MailboxFull,
            2 => SendError::PoolExhausted,
            3 => SendError::StaleHandle,
            4 => SendError::PayloadTooLarge,
            5 => SendError::NotLocal,
            _ => return None,
        })
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::MailboxFull => "mailbox full",
            SendError::PoolExhausted => "message pool exhausted",
            SendError::StaleHandle => "stale handle",
            SendError::PayloadTooLarge => "payload larger than 96 bytes",
            SendError::NotLocal => "transfer buffers cannot leave their shard",
        })
    }
}

/// Why a spawn was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SpawnError {
    /// Every slot of the type's arena on this shard is in use.
    ArenaFull,
    /// The supervision group has no room for another dynamic child.
    GroupFull,
    /// The child's `init` failed or panicked.
    InitFailed,
    /// The type is not registered in the spec.
    UnknownType,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnError::ArenaFull => "arena full (raise TypeSpec::capacity)",
            SpawnError::GroupFull => "supervision group full (raise GroupSpec::dynamic_capacity)",
            SpawnError::InitFailed => "init failed",
            SpawnError::UnknownType => "type not registered in the spec",
        })
    }
}

/// Why a shard could not boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The spec is invalid.
    Spec(SpecError),
    /// The memory region is too small or misaligned.
    Memory(MemoryError),
    /// The shard id is not in the spec.
    NoSuchShard {
        /// The id asked for.
        shard: u8,
        /// Shards in the spec.
        shard_count: usize,
    },
    /// The supervision tree could not be started: a static child's `init` failed (at boot a
    /// failed `init` is not retried: the whole tree is refused).
    RootFailed(InitFailure),
}

/// The static child whose `init` failed when a supervision tree was started, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitFailure {
    /// Where the child is in the spec (`shards[s].root.children[c]…`).
    pub child: Location,
    /// The name of its type.
    pub type_name: &'static str,
    /// What its `init` returned ([`CrashReason::PANIC`] if it panicked).
    pub reason: CrashReason,
    /// The error of the last socket-control call (`Ctx::socket`, `bind`, `listen`, …) the
    /// `init` made, if that call failed: usually the root cause (a `bind()` whose address is
    /// in use). `None` if the last such call succeeded or there was none.
    pub io_error: Option<IoError>,
}

impl InitFailure {
    /// When no child's failure was recorded (a child that could not even be spawned).
    pub(crate) fn unknown(shard: ShardId) -> InitFailure {
        InitFailure {
            child: Location::Shard(u16::from(shard.0)),
            type_name: "?",
            reason: CrashReason("a static child could not be spawned"),
            io_error: None,
        }
    }
}

impl fmt::Display for InitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (type `{}`) failed to initialise: {}",
            self.child, self.type_name, self.reason
        )?;
        if let Some(e) = self.io_error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Spec(e) => e.fmt(f),
            BootError::Memory(e) => e.fmt(f),
            BootError::NoSuchShard { shard, shard_count } => {
                write!(
                    f,
                    "shard {shard} does not exist (the spec has {shard_count} shards)"
                )
            }
            BootError::RootFailed(failure) => {
                write!(f, "the supervision tree failed to start: {failure}")
            }
        }
    }
}

impl core::error::Error for BootError {}

/// The shard's life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShardStatus {
    /// Serving.
    Running,
    /// Shutdown requested; isolates are finishing.
    ShuttingDown,
    /// Shutdown complete: no isolate is left.
    Stopped,
    /// Recovered too often; serves nothing until revived.
    Quarantined,
    /// Recovered too often and the policy says abort: the platform should exit.
    AbortRequested,
}

/// What one tick did and what the platform needs to know next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// Handler calls made this tick.
    pub dispatched: u32,
    /// Whether some isolate can run right away (step again without sleeping).
    pub work_remaining: bool,
    /// When no work remains: the earliest pending timer, so an idle platform can sleep
    /// until then (`None`: no timer at all). Always `None` while `work_remaining`.
    pub next_deadline: Option<Instant>,
    /// Timers fired this tick.
    pub timers_fired: u32,
    /// Live isolates after the tick.
    pub live_isolates: u32,
    /// The shard's status after the tick.
    pub status: ShardStatus,
}

/// One shard: the scheduler state of one core.
pub struct Shard<'a, P: Platform> {
    core: Core<'a>,
    arenas: &'a mut [ArenaRef<'a>],
    platform: P,
    status: ShardStatus,
    recoveries: &'a mut [u64],
    recovery_count: usize,
}

impl<'a, P: Platform> Shard<'a, P> {
    /// Exactly how many bytes [`Shard::new`] carves from its region for `shard` of `spec`.
    /// Every size computation is checked: a spec whose region does not fit in `usize` is
    /// [`MemoryError::Overflow`].
    pub fn memory_required(spec: &SystemSpec<'_>, shard: ShardId) -> Result<usize, BootError> {
        region_size(spec, shard, Measure::new())
    }

    /// [`Shard::memory_required`] as a target whose `usize` ends at `limit` computes it
    /// (`u32::MAX as usize`: a 32-bit MCU): every offset and product above `limit` is
    /// [`MemoryError::Overflow`]. (Type sizes are the host's.)
    pub fn memory_required_within(
        spec: &SystemSpec<'_>,
        shard: ShardId,
        limit: usize,
    ) -> Result<usize, BootError> {
        region_size(spec, shard, Measure::with_limit(limit))
    }

    /// Validates the spec, carves every structure from `memory` (see
    /// [`Shard::memory_required`]) and starts the shard's supervision tree: static children
    /// are spawned in order and their `init` runs now.
    pub fn new(
        spec: &'a SystemSpec<'a>,
        shard: ShardId,
        memory: &'a mut [MaybeUninit<u8>],
        platform: P,
    ) -> Result<Shard<'a, P>, BootError> {
        let needed = Self::memory_required(spec, shard)?;
        if memory.len() < needed {
            return Err(BootError::Memory(MemoryError::Exhausted {
                needed,
                available: memory.len(),
            }));
        }
        let mut r = Region::new(memory).map_err(BootError::Memory)?;
        let mut shard = Self::carve(spec, shard, &mut r, platform).map_err(BootError::Memory)?;
        debug_assert_eq!(r.consumed(), needed, "memory_required must match the carve");
        let started = shard.with_ctx(|ctx| ctx.start_group(0));
        if started.is_err() {
            return Err(BootError::RootFailed(shard.init_failure()));
        }
        Ok(shard)
    }

    fn carve(
        spec: &'a SystemSpec<'a>,
        id: ShardId,
        r: &mut Region<'a>,
        platform: P,
    ) -> Result<Shard<'a, P>, MemoryError> {
        let c = &spec.shard;
        let types = r.slice(spec.types.len(), |_| TypeState::new(&mut [], 1, 1))?;
        for (i, t) in spec.types.iter().enumerate() {
            let metas = r.slice(t.capacity as usize, |_| Meta::FREE)?;
            types[i] = TypeState::new(
                metas,
                t.mailbox_capacity,
                t.budget_weight * DISPATCHES_PER_WEIGHT,
            );
        }
        let arenas: &'a mut [ArenaRef<'a>] = r.slice(spec.types.len(), |_| None)?;
        for (i, t) in spec.types.iter().enumerate() {
            arenas[i] = Some((t.vtable.build)(r, t.capacity)?);
        }
        let n = c.message_pool_size as usize;
        let pool = Pool::new(
            r.slice(n, |_| Message::EMPTY)?,
            r.slice(n, |_| 0u32)?,
            c.system_reserve(),
        );
        // Call timeouts may use the last eighth of the timer pool; user timers may not.
        let timers = TimerWheel::new(
            r.slice(c.timer_entries as usize, |_| TimerEntry::FREE)?,
            r.slice(c.timer_spokes as usize, |_| 0u32)?,
            c.timer_entries / 8,
        );
        let due = r.slice(c.timer_expirations_per_tick_max as usize, |_| 0u32)?;
        let io = IoState::new(
            BufferPool::new(
                r.zeroed_bytes(
                    (c.io_buffer_count as usize)
                        .checked_mul(c.io_buffer_size as usize)
                        .ok_or(MemoryError::Overflow)?,
                )?,
                c.io_buffer_size as usize,
                r.slice(c.io_buffer_count as usize, |_| BufMeta::FREE)?,
            ),
            r.slice(c.io_submissions_per_tick_max as usize, |_| Submission {
                owner: Handle::NONE,
                op: crate::io::IoOp::Close {
                    fd: crate::io::Fd(-1),
                },
                buf: None,
            })?,
        );
        let root = &spec.shards[usize::from(id.0)].root;
        let tree = TreeSize::of(root);
        let groups = Groups::new(
            root,
            r.slice(tree.groups, |_| Groups::placeholder(root))?,
            r.slice(tree.members, |_| Member::Empty)?,
            r.slice(tree.history, |_| 0u64)?,
        );
        let recoveries = r.slice(spec.recoveries_max as usize, |_| 0u64)?;
        let log = LogRing::new(
            r.slice(c.log_entries as usize, |_| LogRecord::EMPTY)?,
            spec.tick_ns,
        );
        for (i, t) in spec.types.iter().enumerate() {
            let per = WorkChunk::count_for(t.working_memory_size);
            let chunks = (t.capacity as usize)
                .checked_mul(per)
                .ok_or(MemoryError::Overflow)?;
            types[i].working = r.slice(chunks, |_| WorkChunk::ZERO)?;
            types[i].working_chunks = per;
        }
        let scratch = r.slice(WorkChunk::count_for(scratch_size_max(spec)), |_| {
            WorkChunk::ZERO
        })?;
        let transfers = BufferPool::new(
            r.zeroed_bytes(
                (c.transfer_buffer_count as usize)
                    .checked_mul(c.transfer_buffer_size as usize)
                    .ok_or(MemoryError::Overflow)?,
            )?,
            c.transfer_buffer_size as usize,
            r.slice(c.transfer_buffer_count as usize, |_| BufMeta::FREE)?,
        );
        Ok(Shard {
            core: Core {
                shard: id,
                spec,
                types,
                pool,
                timers,
                due,
                io,
                counters: Counters::default(),
                now: Instant::ZERO,
                correlation_next: 0,
                shutting_down: false,
                groups,
                log,
                scratch,
                scratch_dirty: true,
                transfers,
                quarantined_peers: [0; 4],
                pending_fd: None,
                control_error: None,
                init_failure: None,
                orphans: crate::core::Orphans::EMPTY,
            },
            arenas,
            platform,
            status: ShardStatus::Running,
            recoveries,
            recovery_count: 0,
        })
    }

    /// The last failed `init` (taken), or a placeholder if none was recorded.
    fn init_failure(&mut self) -> InitFailure {
        self.core
            .init_failure
            .take()
            .unwrap_or_else(|| InitFailure::unknown(self.core.shard))
    }

    /// Runs `f` with a context that is not inside any handler (boot, supervision).
    fn with_ctx<R>(&mut self, f: impl FnOnce(&mut Ctx<'_, 'a>) -> R) -> R {
        let Parts {
            transport,
            io,
            trap,
            ..
        } = self.platform.parts();
        let mut parts = CtxParts {
            core: &mut self.core,
            before: self.arenas,
            after: &mut [],
            split: None,
            transport,
            control: io,
            trap,
            me: Handle::NONE,
            group: 0,
            call: None,
        };
        let mut ctx = Ctx::new(&mut parts, None);
        f(&mut ctx)
    }

    /// Performs one tick at time `now` (see the module docs for the phases).
    pub fn step(&mut self, now: Instant) -> StepReport {
        self.core.now = now;
        let quarantined = matches!(
            self.status,
            ShardStatus::Quarantined | ShardStatus::AbortRequested
        );
        // 1. Inbound channels.
        {
            let transport = self.platform.parts().transport;
            let core = &mut self.core;
            transport.peer_events(&mut |peer, event| core.on_peer_event(peer, event));
            transport.receive(&mut |msg: &Message| {
                if quarantined {
                    core.counters.quarantine_drops += 1;
                } else {
                    core.deliver_inbound(msg);
                }
            });
        }
        // 2. I/O completions.
        {
            let io = self.platform.parts().io;
            io.complete(&mut Sink {
                core: &mut self.core,
            });
            if !self.core.orphans.is_empty() {
                self.core.reclaim_orphans(io);
            }
        }
        // 3. Dispatch.
        let mut dispatched = 0;
        if !quarantined {
            for ty in 0..self.core.types.len() {
                self.core.types[ty].promote_yielded();
            }
            for ty in 0..self.core.types.len() as u8 {
                dispatched += self.dispatch_type(ty);
            }
        }
        // 4. One I/O submission batch.
        self.submit_io();
        // 5. Publish.
        {
            let transport = self.platform.parts().transport;
            transport.publish();
        }
        // 6. Timers.
        let timers_fired = self.core.advance_timers(now);
        // 7. Flush the log ring.
        {
            let log = self.platform.parts().log;
            self.core.log.flush(self.core.shard, self.core.now, log);
        }
        // 8. Report.
        if self.status == ShardStatus::ShuttingDown && self.core.live() == 0 {
            self.status = ShardStatus::Stopped;
        }
        // A quarantined or stopped shard dispatches nothing, whatever its ready queues still
        // name (isolates torn down while queued): it has no work until revived.
        let work_remaining = self.is_running() && self.core.has_ready();
        StepReport {
            dispatched,
            work_remaining,
            // Only an idle platform needs it, and finding it after the earliest timer was
            // cancelled costs a scan of the timer pool: skip that while busy.
            next_deadline: if work_remaining {
                None
            } else {
                // A pending rate-limit report is due when its window ends.
                match (
                    self.core.timers.next_deadline(),
                    self.core.log.report_deadline(),
                ) {
                    (Some(t), Some(l)) => Some(t.min(l)),
                    (t, l) => t.or(l),
                }
            },
            timers_fired,
            live_isolates: self.core.live(),
            status: self.status,
        }
    }

    fn submit_io(&mut self) {
        let n = self.core.io.sub_len;
        let io = self.platform.parts().io;
        if n == 0 {
            if !self.core.orphans.is_empty() {
                self.core.reclaim_orphans(io);
            }
            return;
        }
        let (subs, buffers) = self.core.io.split();
        let accepted = io.submit(&subs[..n], buffers).min(n);
        self.core.counters.io_submitted += accepted as u64;
        let rejection = io.rejection();
        for i in accepted..n {
            let s = self.core.io.subs[i];
            if s.owner.is_none() {
                // Reclaim work the platform refused: the close of a descriptor nobody owns
                // is held and retried, never dropped.
                if let crate::io::IoOp::Close { fd } = s.op {
                    self.core.hold_orphan(fd);
                }
                continue;
            }
            self.core.complete_io(
                s.owner,
                crate::io::IoCompletion {
                    kind: s.op.kind(),
                    result: Err(rejection),
                    buf: s.buf,
                    peer: None,
                },
            );
        }
        self.core.io.sub_len = 0;
        // Held orphans (a platform that cannot close at once) go into the next batch.
        if !self.core.orphans.is_empty() {
            self.core.reclaim_orphans(io);
        }
    }

    fn dispatch_type(&mut self, ty: u8) -> u32 {
        let quota = self.core.types[usize::from(ty)].quota;
        let mut calls = 0;
        while calls < quota {
            let Some((slot, exit)) = self.dispatch_batch(ty, quota, &mut calls) else {
                break;
            };
            // Tearing an isolate down (and perhaps restarting its group or the shard) needs
            // the whole shard, so it ends the batch; the next batch goes on with the queue.
            self.exit_isolate(ty, slot, exit);
            self.core.types[usize::from(ty)].make_ready(slot);
            if !self.is_running() {
                break;
            }
        }
        calls
    }

    fn is_running(&self) -> bool {
        matches!(
            self.status,
            ShardStatus::Running | ShardStatus::ShuttingDown
        )
    }

    /// Runs handler calls of type `ty` (ready queue in FIFO order, at most
    /// `messages_per_dispatch_max` in a row per isolate) with one set of context parts,
    /// until `calls` reaches `quota`, the ready queue is empty, or an isolate exits: that
    /// one is returned, with its exit, for the caller to tear down. The shard's status
    /// cannot change within a batch (only a teardown changes it).
    fn dispatch_batch(&mut self, ty: u8, quota: u32, calls: &mut u32) -> Option<(u32, Exit)> {
        let per_isolate = self.core.spec.shard.messages_per_dispatch_max;
        let type_name = self.core.spec.types[usize::from(ty)].name;
        let shard = self.core.shard;
        let Parts {
            transport,
            io,
            trap,
            ..
        } = self.platform.parts();
        let (before, rest) = self.arenas.split_at_mut(usize::from(ty));
        let (current, after) = rest.split_first_mut()?;
        let mut parts = CtxParts {
            core: &mut self.core,
            before,
            after,
            split: Some(ty),
            transport,
            control: io,
            trap,
            me: Handle::NONE,
            group: 0,
            call: None,
        };
        let mut msg = Message::EMPTY;
        while *calls < quota {
            // Both `next_ready` and `after_dispatch` queue the isolate again (if it has work)
            // when its run ends.
            let Some((slot, mut next)) = parts.core.next_ready(ty, &mut msg) else {
                break;
            };
            let mut run = 0;
            while let Some((generation, group)) = next {
                *calls += 1;
                run += 1;
                parts.me = Handle::pack(shard, TypeId(ty), slot, generation);
                parts.group = group;
                parts.call = msg.is_call().then(|| (msg.src(), msg.correlation()));
                let mut effect = Effect::Receive;
                // The trap is the platform's own type, known here: its call is static and
                // the per-type call inside it is the one dynamic call of a dispatch. Inside
                // the trap only the context is built before the user call; nothing is
                // half-updated if it panics.
                let trap_call = TrapCall {
                    isolate: parts.me,
                    type_name,
                    kind: CallKind::Handle,
                };
                let mut ran = false;
                let trapped = match current.as_mut() {
                    Some(a) => trap.run(trap_call, &mut || {
                        ran = a.dispatch(slot, &msg, &mut parts, &mut effect);
                    }),
                    None => Ok(()),
                };
                let core = &mut *parts.core;
                core.counters.dispatches += 1;
                if trapped.is_err() {
                    core.counters.panics += 1;
                    effect = Effect::Crash(CrashReason::PANIC);
                } else if !ran {
                    effect = Effect::Crash(CrashReason("internal: dispatched an empty slot"));
                }
                // The common transition is applied by `after_dispatch`; the rest (and
                // everything `init` returns) by `apply_effect`.
                let receive = matches!(effect, Effect::Receive);
                let exit = if receive {
                    None
                } else {
                    core.apply_effect(&mut *parts.transport, ty, slot, &effect, parts.call)
                };
                core.io.bufs.release_held_from(0);
                core.transfers.release_held_from(0);
                core.scratch_dirty = true;
                if let Some((fd, claimed)) = core.pending_fd.take()
                    && !claimed
                    && exit.is_some()
                {
                    core.queue_reclaim(crate::io::IoOp::Close { fd });
                    if !core.orphans.is_empty() {
                        core.reclaim_orphans(&mut *parts.control);
                    }
                }
                if let Some(exit) = exit {
                    return Some((slot, exit));
                }
                let more = run < per_isolate && *calls < quota;
                next = core.after_dispatch(ty, slot, generation, receive, more, &mut msg);
            }
        }
        None
    }

    fn exit_isolate(&mut self, ty: u8, slot: u32, exit: Exit) {
        let m = *self.core.meta(ty, slot);
        let departed = Departed {
            ty,
            group: m.group,
            member: m.member,
            restart: m.restart,
            args: m.args,
        };
        match exit {
            Exit::Normal => self.core.counters.exits += 1,
            Exit::Crashed(_) => self.core.counters.crashes += 1,
        }
        let verdict = self.with_ctx(|ctx| {
            ctx.drop_slot(ty, slot);
            ctx.teardown(ty, slot);
            ctx.on_exit(departed, exit)
        });
        if verdict == Verdict::RecoverShard {
            self.recover();
        }
    }

    /// Tears everything down and rebuilds the tree from the spec, unless the shard recovered
    /// too often within the window: then it is quarantined (or asks the platform to abort).
    fn recover(&mut self) {
        loop {
            self.with_ctx(|ctx| ctx.stop_group(0));
            if !self.charge_recovery() {
                self.status = match self.core.spec.quarantine {
                    QuarantinePolicy::Quarantine => ShardStatus::Quarantined,
                    QuarantinePolicy::Abort => ShardStatus::AbortRequested,
                };
                self.platform
                    .parts()
                    .transport
                    .announce(PeerEvent::Quarantined);
                return;
            }
            self.core.counters.shard_recoveries += 1;
            self.platform
                .parts()
                .transport
                .announce(PeerEvent::Restarted);
            if self.with_ctx(|ctx| ctx.start_group(0)).is_ok() {
                return;
            }
        }
    }

    fn charge_recovery(&mut self) -> bool {
        let now = self.core.now.ticks();
        let window = self.core.spec.recovery_window.ticks();
        let max = self.recoveries.len();
        let in_window = self.recoveries[..self.recovery_count.min(max)]
            .iter()
            .filter(|&&t| now.saturating_sub(t) < window)
            .count();
        if in_window >= max {
            return false;
        }
        // Overwrite the oldest entry.
        let oldest = (0..max)
            .min_by_key(|&i| {
                if i < self.recovery_count {
                    self.recoveries[i]
                } else {
                    0
                }
            })
            .unwrap_or(0);
        let i = if self.recovery_count < max {
            self.recovery_count
        } else {
            oldest
        };
        self.recoveries[i] = now;
        self.recovery_count = (self.recovery_count + 1).min(max);
        true
    }

    /// Brings a quarantined shard back at time `now`: a fresh supervision tree from the spec
    /// (its `init`s, and the timers they start, see `now`, not the time of the last step).
    pub fn revive(&mut self, now: Instant) -> Result<(), BootError> {
        self.core.now = self.core.now.max(now);
        if !matches!(
            self.status,
            ShardStatus::Quarantined | ShardStatus::AbortRequested
        ) {
            return Ok(());
        }
        self.recovery_count = 0;
        self.status = ShardStatus::Running;
        self.platform
            .parts()
            .transport
            .announce(PeerEvent::Restarted);
        if self.with_ctx(|ctx| ctx.start_group(0)).is_err() {
            let failure = self.init_failure();
            self.recover();
            return Err(BootError::RootFailed(failure));
        }
        Ok(())
    }

    /// Starts a graceful shutdown: every isolate gets a `SHUTDOWN` notice (without using the
    /// message pool) when it next waits for messages; nothing is restarted any more. The
    /// status becomes `Stopped` once no isolate is left.
    pub fn shutdown(&mut self) {
        if self.status != ShardStatus::Running {
            return;
        }
        self.status = ShardStatus::ShuttingDown;
        self.core.shutting_down = true;
        self.platform.parts().io.cancel_all();
        for ty in 0..self.core.types.len() {
            let t = &mut self.core.types[ty];
            for slot in 0..t.metas.len() as u32 {
                if t.metas[slot as usize].is_live() {
                    t.metas[slot as usize].notices |= NOTICE_SHUTDOWN;
                    t.make_ready(slot);
                }
            }
        }
    }

    /// Tears down every remaining isolate at once (the end of a shutdown that timed out).
    pub fn force_stop(&mut self) {
        self.core.shutting_down = true;
        self.with_ctx(|ctx| ctx.stop_group(0));
        for ty in 0..self.core.types.len() as u8 {
            for slot in 0..self.core.types[usize::from(ty)].metas.len() as u32 {
                if self.core.types[usize::from(ty)].metas[slot as usize].is_live() {
                    self.with_ctx(|ctx| {
                        ctx.drop_slot(ty, slot);
                        ctx.teardown(ty, slot);
                    });
                }
            }
        }
        self.status = ShardStatus::Stopped;
    }

    /// Delivers a message from outside any isolate (a test, or the platform) to a local
    /// isolate. The sender is `Handle::NONE`.
    pub fn deliver(&mut self, to: Handle, out: &Outgoing) -> Result<(), SendError> {
        if to.shard() != self.core.shard {
            return Err(SendError::StaleHandle);
        }
        self.core
            .deliver_local(&Message::build(Handle::NONE, to, out), Class::User)
    }

    /// The shard's id.
    pub fn id(&self) -> ShardId {
        self.core.shard
    }

    /// The shard's status.
    pub fn status(&self) -> ShardStatus {
        self.status
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.core.counters
    }

    /// The platform parts (e.g. a test transport).
    pub fn platform(&mut self) -> &mut P {
        &mut self.platform
    }

    /// Live isolates.
    pub fn live_isolates(&self) -> u32 {
        self.core.live()
    }

    /// Handles of every live isolate on this shard, type by type, in slot order.
    pub fn live_handles(&self) -> impl Iterator<Item = Handle> + '_ {
        self.core.types.iter().enumerate().flat_map(move |(ty, t)| {
            t.metas
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_live() && m.state != State::Initializing)
                .map(move |(slot, m)| {
                    Handle::pack(self.core.shard, TypeId(ty as u8), slot as u32, m.generation)
                })
        })
    }

    /// Handles of the live isolates of type `T`, in slot order.
    pub fn handles<T: Isolate>(&self) -> impl Iterator<Item = Handle> + '_ {
        let ty = self.core.spec.type_id_of::<T>();
        let metas: &[Meta] = match ty {
            Some(TypeId(t)) => self.core.types[usize::from(t)].metas,
            None => &[],
        };
        metas.iter().enumerate().filter_map(move |(slot, m)| {
            let ty = ty?;
            (m.is_live() && m.state != State::Initializing)
                .then(|| Handle::new(self.core.shard, ty, slot as u32, m.generation))
                .flatten()
        })
    }

    /// Read-only typed access to a live isolate's state (for tests and checkers).
    pub fn state<T: Isolate>(&self, h: Handle) -> Option<&T> {
        let (ty, slot) = self.core.locate(h)?;
        self.arenas[usize::from(ty)]
            .as_ref()?
            .state(slot)?
            .downcast_ref::<T>()
    }

    /// Whether `h` addresses a live isolate on this shard.
    pub fn is_live(&self, h: Handle) -> bool {
        self.core.locate(h).is_some()
    }

    /// Pool occupancy: (free, in use, total) envelopes.
    pub fn pool_usage(&self) -> (u32, u32, u32) {
        (
            self.core.pool.free_count(),
            self.core.pool.in_use(),
            self.core.pool.total(),
        )
    }

    /// Checks every structural invariant (O(shard size); for tests and the simulator's
    /// checkers). Returns the first violation found.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let core = &self.core;
        core.pool.check()?;
        if core.pool.free_count() + core.pool.in_use() != core.pool.total() {
            return Err("pool: free + in use != total");
        }
        let mut queued = 0u32;
        for (ty, t) in core.types.iter().enumerate() {
            let mut live = 0;
            for (slot, m) in t.metas.iter().enumerate() {
                if m.is_live() {
                    live += 1;
                    if m.generation == 0 {
                        return Err("a live isolate has generation 0");
                    }
                    let occupied = self.arenas[ty]
                        .as_ref()
                        .is_some_and(|a| a.occupied(slot as u32));
                    if m.state != State::Initializing && !occupied {
                        return Err("a live isolate's arena slot is empty");
                    }
                } else {
                    if m.mailbox.len != 0 || m.reply != crate::pool::NIL {
                        return Err("a dead slot still holds messages");
                    }
                    if self.arenas[ty]
                        .as_ref()
                        .is_some_and(|a| a.occupied(slot as u32))
                    {
                        return Err("a dead slot still holds an isolate");
                    }
                }
                if core.pool.walk_len(&m.mailbox) != m.mailbox.len {
                    return Err("mailbox length differs from its list");
                }
                if m.mailbox.len > t.mailbox_capacity {
                    return Err("mailbox over capacity");
                }
                queued += m.mailbox.len + u32::from(m.reply != crate::pool::NIL);
            }
            if live != t.live {
                return Err("type live count differs from live slots");
            }
        }
        if queued != core.pool.in_use() {
            return Err("pool: envelopes in use != envelopes queued (leak)");
        }
        core.timers.check()?;
        core.io.bufs.check()?;
        core.transfers.check()?;
        for member in core.groups.members.iter() {
            if let Member::Isolate(h) = member
                && core.locate(*h).is_none()
            {
                return Err("a supervision member points at a dead isolate");
            }
        }
        Ok(())
    }

    /// Resources in use: (message envelopes, timer entries, I/O buffers) — all zero on an
    /// empty, quiet shard.
    pub fn resources_in_use(&self) -> (u32, u32, u32) {
        (
            self.core.pool.in_use(),
            self.core.timers.total() - self.core.timers.free_count(),
            self.core.io.bufs.total() - self.core.io.bufs.free_count(),
        )
    }

    /// Transfer buffers in use.
    pub fn transfers_in_use(&self) -> u32 {
        self.core.transfers.total() - self.core.transfers.free_count()
    }
}

impl<P: Platform> Drop for Shard<'_, P> {
    fn drop(&mut self) {
        // Isolates may own resources; drop them. Everything else in the region is plain data.
        for a in self.arenas.iter_mut().flatten() {
            a.clear();
        }
    }
}

/// The carve sequence of [`Shard::carve`], measured (it needs no platform).
fn region_size(spec: &SystemSpec<'_>, shard: ShardId, mut m: Measure) -> Result<usize, BootError> {
    spec.validate().map_err(BootError::Spec)?;
    let root = &spec
        .shards
        .get(usize::from(shard.0))
        .ok_or(BootError::NoSuchShard {
            shard: shard.0,
            shard_count: spec.shards.len(),
        })?
        .root;
    let c = &spec.shard;
    m.slice::<TypeState<'static>>(spec.types.len());
    for t in spec.types {
        m.slice::<Meta>(t.capacity as usize);
    }
    m.slice::<ArenaRef<'static>>(spec.types.len());
    for t in spec.types {
        (t.vtable.measure)(&mut m, t.capacity);
    }
    m.slice::<Message>(c.message_pool_size as usize);
    m.slice::<u32>(c.message_pool_size as usize);
    m.slice::<TimerEntry>(c.timer_entries as usize);
    m.slice::<u32>(c.timer_spokes as usize);
    m.slice::<u32>(c.timer_expirations_per_tick_max as usize);
    m.slice_of::<u8>(c.io_buffer_count as usize, c.io_buffer_size as usize);
    m.slice::<BufMeta>(c.io_buffer_count as usize);
    m.slice::<Submission>(c.io_submissions_per_tick_max as usize);
    let tree = TreeSize::of(root);
    m.slice::<GroupState<'static>>(tree.groups);
    m.slice::<Member>(tree.members);
    m.slice::<u64>(tree.history);
    m.slice::<u64>(spec.recoveries_max as usize);
    m.slice::<LogRecord>(c.log_entries as usize);
    for t in spec.types {
        m.slice_of::<WorkChunk>(
            t.capacity as usize,
            WorkChunk::count_for(t.working_memory_size),
        );
    }
    m.slice::<WorkChunk>(WorkChunk::count_for(scratch_size_max(spec)));
    m.slice_of::<u8>(
        c.transfer_buffer_count as usize,
        c.transfer_buffer_size as usize,
    );
    m.slice::<BufMeta>(c.transfer_buffer_count as usize);
    m.total().map_err(BootError::Memory)
}

/// Bytes of the cross-shard rings shard `consumer` drains (one from every other shard), laid
/// out one after the other from a 128-aligned base: for each producer in shard order, its
/// slots (`capacity × size_of::<Slot<Message>>()`) and then the [`Ring`] itself. A platform
/// that maps ring memory per consumer (Linux) carves it in this order; one that keeps rings in
/// `static`s (bare metal) can use it to size them. Checked like [`Shard::memory_required`].
pub fn ring_memory_required(spec: &SystemSpec<'_>, consumer: ShardId) -> Result<usize, BootError> {
    spec.validate().map_err(BootError::Spec)?;
    let n = spec.shards.len();
    if usize::from(consumer.0) >= n {
        return Err(BootError::NoSuchShard {
            shard: consumer.0,
            shard_count: n,
        });
    }
    let mut m = Measure::new();
    for from in 0..n {
        if from != usize::from(consumer.0) {
            let capacity = spec.ring_capacity_between(from as u8, consumer.0);
            m.slice::<Slot<Message>>(capacity as usize);
            m.one::<Ring<'static, Message>>();
        }
    }
    m.total().map_err(BootError::Memory)
}

/// The memory a whole system needs: every shard's region and every cross-shard ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemMemory {
    /// The sum of every shard's [`Shard::memory_required`].
    pub regions: usize,
    /// The sum of every shard's [`ring_memory_required`] (the N×(N−1) rings).
    pub rings: usize,
}

impl SystemMemory {
    /// Measures `spec` (checked: a total that does not fit in `usize` is an overflow).
    pub fn of(spec: &SystemSpec<'_>) -> Result<SystemMemory, BootError> {
        spec.validate().map_err(BootError::Spec)?;
        let mut total = SystemMemory {
            regions: 0,
            rings: 0,
        };
        let overflow = BootError::Memory(MemoryError::Overflow);
        for i in 0..spec.shards.len() {
            let shard = ShardId(i as u8);
            let region = region_size(spec, shard, Measure::new())?;
            let rings = ring_memory_required(spec, shard)?;
            total.regions = total.regions.checked_add(region).ok_or(overflow)?;
            total.rings = total.rings.checked_add(rings).ok_or(overflow)?;
        }
        total.total().ok_or(overflow)?;
        Ok(total)
    }

    /// Regions and rings together (`None` if that overflows `usize`).
    pub fn total(&self) -> Option<usize> {
        self.regions.checked_add(self.rings)
    }
}

fn scratch_size_max(spec: &SystemSpec<'_>) -> u32 {
    spec.types.iter().map(|t| t.scratch_size).max().unwrap_or(0)
}

struct Sink<'x, 'a> {
    core: &'x mut Core<'a>,
}

impl CompletionSink for Sink<'_, '_> {
    fn complete(&mut self, owner: Handle, completion: crate::io::IoCompletion) {
        self.core.complete_io(owner, completion);
    }

    fn buffers(&mut self) -> IoBuffers<'_> {
        self.core.io.bufs.view()
    }
}
