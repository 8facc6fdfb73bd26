//! The bank scenario: money moves between accounts on different shards with calls and
//! timeouts, survives crashes through durable files, and is always conserved.
//!
//! Every shard runs a `Branch` (the accounts of that shard) and a `Teller` (which moves
//! money from an account of its shard to an account of another shard). Both keep their
//! state in a file on their shard's simulated disk, written as two alternating checksummed
//! slots so that a torn write never loses the previous state.
//!
//! ```text
//!  Teller ── persist intent (Withdraw) ──► Call Branch(local): Withdraw{teller, seq}
//!     ▲                                        │ applied in memory, reply Pending, then
//!     │ Pending: call again after a tick       │ persist; a repeated call replies Durable
//!     │ timeout / NotRunning: call again       ▼
//!     │ (by name, after a tick)            Ack{durable, ok}
//!  persist (Deposit) ──► Call Branch(remote): Deposit{teller, seq} ──► … ──► persist (Idle)
//! ```
//!
//! Branches apply each (teller, seq) at most once (they remember the last sequence per
//! teller durably) and tellers trust only durable acknowledgements, so crashes, lost
//! messages, partitions and restarts can delay a transfer but never duplicate or lose money.
//! The checker reads every branch and teller file from the simulated disks after every few
//! rounds and checks: balances + money in flight (withdrawn durably, not yet deposited
//! durably) = the initial total. The goal: every teller finished its transfers.
//!
//! Finding a restarted branch: every branch is declared with the name [`BRANCH`], and tellers
//! call "the branch on shard S" by that name, so each call reaches whichever incarnation runs
//! when it arrives. A call that arrives while the branch is restarting is refused at once
//! (`NotRunning`, through the ring for a remote branch) and the teller calls again a moment
//! later: no handle to keep up to date, nothing to probe.

use tina_core::io::{Fd, IoCompletion, IoKind, IoOp, OpenFlags};
use tina_core::{
    ChildSpec, CrashReason, Ctx, Duration, Effect, GroupSpec, Isolate, Message, Name, Restart,
    SendError, ShardConfig, ShardId, ShardSpec, SystemSpec, TypeSpec, UserTag, accepts, payload,
};
use tina_sim::cli::ScenarioOptions;
use tina_sim::{FaultKind, FaultSet, Report, Scenario, SimConfig, SimView, TypeWatch, watch};

/// Shards (one branch and one teller each).
pub const SHARD_COUNT: usize = 3;
/// Accounts per branch.
pub const ACCOUNTS: usize = 4;
/// Initial balance of every account.
pub const INITIAL_BALANCE: u64 = 1_000;
/// Transfers each teller performs.
pub const TRANSFERS: u64 = 80;
/// The money in the system.
pub const TOTAL: u64 = (SHARD_COUNT * ACCOUNTS) as u64 * INITIAL_BALANCE;

const BRANCH_FILE: &str = "bank/branch";
const TELLER_FILE: &str = "bank/teller";
const CALL_TIMEOUT: Duration = Duration::from_millis(40);
const RETRY: UserTag = UserTag::new(0x83);
const FLUSH: UserTag = UserTag::new(0x84);

/// Every shard's branch has this name; tellers call it on the shard they need.
pub const BRANCH: Name<Branch> = Name::new("branch");

/// Branch arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchArgs {
    /// Planted bug (test-only): forget which deposits were applied when starting.
    pub forget_dedup: bool,
}

/// A withdraw or deposit request from a teller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Op {
    /// The transfer's sequence number (per teller).
    pub seq: u64,
    /// Amount in cents.
    pub amount: u64,
    /// 1 withdraw, 2 deposit.
    pub kind: u8,
    /// The teller (its shard).
    pub teller: u8,
    /// The account in the branch.
    pub account: u8,
    /// Padding.
    pub _pad: [u8; 5],
}
payload!(Op);
accepts!(Branch: Op);

const WITHDRAW: u8 = 1;
const DEPOSIT: u8 = 2;

/// A branch's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Ack {
    /// The request's sequence number.
    pub seq: u64,
    /// Whether the operation succeeded (a withdraw may lack funds).
    pub ok: u8,
    /// Whether the outcome is on disk.
    pub durable: u8,
    /// The request was older than one already applied.
    pub stale: u8,
    /// Padding.
    pub _pad: [u8; 5],
}
payload!(Ack);
accepts!(Teller: Ack);

fn checksum(words: &[u64]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in words {
        for b in w.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Bytes of one incarnation's region in a state file: two record slots and a claim byte.
const REGION_SIZE: u64 = 512;
/// Bytes of one record slot.
const SLOT_SIZE: u64 = 248;
/// Versions carry the writer's epoch (its region) above this many bits.
const EPOCH_SHIFT: u32 = 40;

/// Decodes one record slot of `W` words (version first), if its checksum holds.
fn decode_slot<const W: usize>(raw: &[u8]) -> Option<[u64; W]> {
    let raw = raw.get(..(W + 1) * 8)?;
    let mut w = [0u64; W];
    for (i, c) in raw.chunks_exact(8).take(W).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().ok()?);
    }
    let sum = u64::from_le_bytes(raw[W * 8..].try_into().ok()?);
    (w[0] != 0 && checksum(&w) == sum).then_some(w)
}

/// The record with the highest version in one region's bytes.
fn latest_in_region<const W: usize>(region: &[u8]) -> Option<[u64; W]> {
    let a = region.get(..SLOT_SIZE as usize).and_then(decode_slot::<W>);
    let b = region
        .get(SLOT_SIZE as usize..2 * SLOT_SIZE as usize)
        .and_then(decode_slot::<W>);
    match (a, b) {
        (Some(x), Some(y)) => Some(if x[0] >= y[0] { x } else { y }),
        (x, y) => x.or(y),
    }
}

/// The newest record of a whole state file (for checkers reading the disk).
pub fn latest_in_file<const W: usize>(file: &[u8]) -> Option<[u64; W]> {
    file.chunks(REGION_SIZE as usize)
        .filter_map(latest_in_region::<W>)
        .max_by_key(|w| w[0])
}

/// Durable state in a file shared by an isolate's successive incarnations.
///
/// Each incarnation writes only inside its own region of the file (two alternating
/// checksummed slots), so a write its crashed predecessor left in flight can never clobber
/// it, and a torn write never loses the previous record. At start an incarnation reads the
/// regions in order until the end of the file, keeps the newest record, and claims the next
/// region by writing its end marker (a predecessor's data writes only follow its own claim,
/// so any of them in flight already extended the file past its region). Versions carry the
/// epoch (region index) in their high bits, so a newer incarnation's records always win.
struct StateFile<const W: usize> {
    path: &'static str,
    fd: Fd,
    region: u64,
    scanning: bool,
    best: Option<[u64; W]>,
    slot: u64,
    counter: u64,
    /// The record being written, if any.
    writing: Option<[u64; W]>,
    write_len: u32,
}

/// What a state file's I/O completion means for its isolate.
enum FileStep<const W: usize> {
    /// Submit this and keep waiting.
    Continue(Effect),
    /// Loading finished: the newest record, if the file had one.
    Loaded(Option<[u64; W]>),
    /// A write finished; `Some` is the record now on disk.
    Written(Option<[u64; W]>),
    /// The file is unusable.
    Failed,
}

impl<const W: usize> StateFile<W> {
    const fn new(path: &'static str) -> Self {
        StateFile {
            path,
            fd: Fd(-1),
            region: 0,
            scanning: true,
            best: None,
            slot: 1,
            counter: 0,
            writing: None,
            write_len: 0,
        }
    }

    fn open(&self, ctx: &mut Ctx) -> Result<Effect, CrashReason> {
        let buf = ctx.io_buffer().map_err(|_| CrashReason("no I/O buffer"))?;
        let bytes = ctx
            .io_buffer_mut(buf)
            .map_err(|_| CrashReason("no I/O buffer"))?;
        bytes[..self.path.len()].copy_from_slice(self.path.as_bytes());
        Ok(Effect::Io(IoOp::Open {
            path: buf,
            path_len: self.path.len() as u32,
            flags: OpenFlags {
                read: true,
                write: true,
                create: true,
                ..OpenFlags::default()
            },
            mode: 0o600,
        }))
    }

    fn read_region(&self) -> Effect {
        Effect::Io(IoOp::Read {
            file: self.fd,
            offset: self.region * REGION_SIZE,
            len: REGION_SIZE as u32,
        })
    }

    fn on_completion(&mut self, c: IoCompletion, ctx: &mut Ctx) -> FileStep<W> {
        match (c.kind, c.result) {
            (IoKind::Open, Ok(_)) => {
                self.fd = c.fd().unwrap_or(Fd(-1));
                ctx.own_fd(Some(self.fd));
                FileStep::Continue(self.read_region())
            }
            (IoKind::Read, Ok(n)) if n as u64 == REGION_SIZE => {
                let data = c.buf.and_then(|b| ctx.io_data(b, n as usize).ok());
                if let Some(r) = data.and_then(latest_in_region::<W>)
                    && self.best.is_none_or(|b| r[0] > b[0])
                {
                    self.best = Some(r);
                }
                self.region += 1;
                FileStep::Continue(self.read_region())
            }
            // A short read (the fault, or a region still being written): read it again.
            (IoKind::Read, Ok(n)) if n > 0 => FileStep::Continue(self.read_region()),
            (IoKind::Read, Ok(_)) => {
                // End of file: claim this region by writing its end marker.
                let Ok(buf) = ctx.io_buffer() else {
                    return FileStep::Failed;
                };
                if let Ok(b) = ctx.io_buffer_mut(buf) {
                    b[0] = 0xFF;
                }
                // One byte: it lands whole or not at all, so every region in the file is
                // complete and a read shorter than a region is only ever a short read.
                FileStep::Continue(Effect::Io(IoOp::Write {
                    file: self.fd,
                    offset: (self.region + 1) * REGION_SIZE - 1,
                    buf,
                    len: 1,
                }))
            }
            (IoKind::Write, Ok(n)) if self.scanning => {
                if n != 1 {
                    return FileStep::Failed;
                }
                self.scanning = false;
                FileStep::Loaded(self.best)
            }
            (IoKind::Write, Ok(n)) => {
                let written = self.writing.take();
                if written.is_some() && n == self.write_len {
                    self.slot = 1 - self.slot;
                    return FileStep::Written(written);
                }
                // Short write: the other slot still holds the previous record.
                FileStep::Written(None)
            }
            (IoKind::Write, Err(_)) => {
                self.writing = None;
                if self.scanning {
                    return FileStep::Failed;
                }
                FileStep::Written(None)
            }
            _ => FileStep::Failed,
        }
    }

    /// Writes `record` (its version word is assigned here) into this incarnation's region.
    fn write(&mut self, mut record: [u64; W], ctx: &mut Ctx) -> Option<Effect> {
        let buf = ctx.io_buffer().ok()?;
        self.counter += 1;
        record[0] = (self.region << EPOCH_SHIFT) | self.counter;
        let bytes = ctx.io_buffer_mut(buf).ok()?;
        for (i, w) in record.iter().chain([&checksum(&record)]).enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let len = (W as u32 + 1) * 8;
        self.writing = Some(record);
        self.write_len = len;
        let next = 1 - self.slot;
        Some(Effect::Io(IoOp::Write {
            file: self.fd,
            offset: self.region * REGION_SIZE + next * SLOT_SIZE,
            buf,
            len,
        }))
    }
}

/// A branch's durable state: balances, and per teller the last withdraw (seq, ok) and the
/// last deposit seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchState {
    /// Balances.
    pub balances: [u64; ACCOUNTS],
    /// Per teller: last withdraw seq, its outcome, last deposit seq.
    pub tellers: [(u64, bool, u64); SHARD_COUNT],
}

/// Words of a branch record: version, balances, three per teller.
const BRANCH_WORDS: usize = 1 + ACCOUNTS + 3 * SHARD_COUNT;

impl BranchState {
    fn initial() -> BranchState {
        BranchState {
            balances: [INITIAL_BALANCE; ACCOUNTS],
            tellers: [(0, false, 0); SHARD_COUNT],
        }
    }

    fn record(&self) -> [u64; BRANCH_WORDS] {
        let mut w = [0u64; BRANCH_WORDS];
        w[1..1 + ACCOUNTS].copy_from_slice(&self.balances);
        for (t, (wd, ok, dep)) in self.tellers.iter().enumerate() {
            let b = 1 + ACCOUNTS + 3 * t;
            w[b..b + 3].copy_from_slice(&[*wd, u64::from(*ok), *dep]);
        }
        w
    }

    fn from_record(w: Option<[u64; BRANCH_WORDS]>) -> BranchState {
        let mut s = BranchState::initial();
        let Some(w) = w else { return s };
        s.balances.copy_from_slice(&w[1..1 + ACCOUNTS]);
        for t in 0..SHARD_COUNT {
            let b = 1 + ACCOUNTS + 3 * t;
            s.tellers[t] = (w[b], w[b + 1] != 0, w[b + 2]);
        }
        s
    }

    /// The newest state in a branch file (the initial state for a missing or empty file).
    pub fn from_file(file: &[u8]) -> BranchState {
        BranchState::from_record(latest_in_file::<BRANCH_WORDS>(file))
    }
}

/// Phase of a teller's current transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TellerPhase {
    /// Nothing in flight.
    Idle,
    /// Withdrawing from the local account.
    Withdraw,
    /// Depositing into the remote account.
    Deposit,
}

/// A teller's durable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TellerState {
    /// Current transfer.
    pub seq: u64,
    /// Its phase.
    pub phase: TellerPhase,
    /// Source account (on the teller's shard).
    pub from_account: u8,
    /// Destination shard.
    pub to_shard: u8,
    /// Destination account.
    pub to_account: u8,
    /// Amount.
    pub amount: u64,
    /// Transfers finished (including refused ones).
    pub done: u64,
}

/// Words of a teller record: version, seq, phase, accounts, amount, done.
const TELLER_WORDS: usize = 6;

impl TellerState {
    const INITIAL: TellerState = TellerState {
        seq: 0,
        phase: TellerPhase::Idle,
        from_account: 0,
        to_shard: 0,
        to_account: 0,
        amount: 0,
        done: 0,
    };

    fn record(&self) -> [u64; TELLER_WORDS] {
        let phase = match self.phase {
            TellerPhase::Idle => 0,
            TellerPhase::Withdraw => 1,
            TellerPhase::Deposit => 2,
        };
        let mut w = [0u64; TELLER_WORDS];
        w[1..6].copy_from_slice(&[
            self.seq,
            phase,
            u64::from(self.from_account)
                | (u64::from(self.to_shard) << 8)
                | (u64::from(self.to_account) << 16),
            self.amount,
            self.done,
        ]);
        w
    }

    fn from_record(w: Option<[u64; TELLER_WORDS]>) -> TellerState {
        let Some(w) = w else {
            return TellerState::INITIAL;
        };
        TellerState {
            seq: w[1],
            phase: match w[2] {
                1 => TellerPhase::Withdraw,
                2 => TellerPhase::Deposit,
                _ => TellerPhase::Idle,
            },
            from_account: w[3] as u8,
            to_shard: (w[3] >> 8) as u8,
            to_account: (w[3] >> 16) as u8,
            amount: w[4],
            done: w[5],
        }
    }

    /// The newest state in a teller file.
    pub fn from_file(file: &[u8]) -> TellerState {
        TellerState::from_record(latest_in_file::<TELLER_WORDS>(file))
    }
}

/// The accounts of one shard.
pub struct Branch {
    args: BranchArgs,
    file: StateFile<BRANCH_WORDS>,
    loaded: bool,
    /// State in memory (ahead of the disk while `version > persisted`).
    pub state: BranchState,
    /// Operations applied by this incarnation.
    pub version: u64,
    /// Operations of this incarnation known to be on disk.
    pub persisted: u64,
    /// The `version` being written.
    writing: Option<u64>,
    flush_queued: bool,
}

impl Branch {
    fn flush(&mut self, ctx: &mut Ctx) -> Effect {
        self.flush_queued = false;
        if self.writing.is_some() || self.version == self.persisted {
            return Effect::Receive;
        }
        match self.file.write(self.state.record(), ctx) {
            Some(effect) => {
                self.writing = Some(self.version);
                effect
            }
            None => self.retry_flush(ctx),
        }
    }

    fn retry_flush(&mut self, ctx: &mut Ctx) -> Effect {
        if !self.flush_queued && ctx.start_timer(Duration::from_millis(3), FLUSH).is_ok() {
            self.flush_queued = true;
        }
        Effect::Receive
    }

    fn on_op(&mut self, op: Op, ctx: &mut Ctx) -> Effect {
        let t = usize::from(op.teller).min(SHARD_COUNT - 1);
        let account = usize::from(op.account).min(ACCOUNTS - 1);
        let (wd_seq, wd_ok, dep_seq) = self.state.tellers[t];
        let last = if op.kind == WITHDRAW { wd_seq } else { dep_seq };
        let ack = |seq, ok: bool, durable: bool, stale: bool| Ack {
            seq,
            ok: u8::from(ok),
            durable: u8::from(durable),
            stale: u8::from(stale),
            _pad: [0; 5],
        };
        if op.seq < last {
            return Effect::reply(&ack(op.seq, false, false, true));
        }
        if op.seq == last {
            let ok = op.kind == DEPOSIT || wd_ok;
            // On disk once everything applied so far is (conservative, never wrong).
            let durable = self.persisted == self.version;
            return Effect::reply(&ack(op.seq, ok, durable, false));
        }
        // A new operation: apply it once.
        let ok = if op.kind == WITHDRAW {
            let ok = self.state.balances[account] >= op.amount;
            if ok {
                self.state.balances[account] -= op.amount;
            }
            self.state.tellers[t].0 = op.seq;
            self.state.tellers[t].1 = ok;
            ok
        } else {
            self.state.balances[account] += op.amount;
            self.state.tellers[t].2 = op.seq;
            true
        };
        self.version += 1;
        if !self.flush_queued {
            let me = ctx.me();
            if ctx.send_bytes(me, FLUSH, &[]).is_ok() {
                self.flush_queued = true;
            }
        }
        Effect::reply(&ack(op.seq, ok, false, false))
    }
}

impl Isolate for Branch {
    type Args = BranchArgs;

    fn init(args: &BranchArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let file = StateFile::new(BRANCH_FILE);
        let first = file.open(ctx)?;
        Ok((
            Branch {
                args: *args,
                file,
                loaded: false,
                state: BranchState::initial(),
                version: 0,
                persisted: 0,
                writing: None,
                flush_queued: false,
            },
            first,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if let Some(c) = msg.io_completion() {
            return match self.file.on_completion(c, ctx) {
                FileStep::Continue(effect) => effect,
                FileStep::Loaded(record) => {
                    self.state = BranchState::from_record(record);
                    if self.args.forget_dedup {
                        for t in self.state.tellers.iter_mut() {
                            t.2 = 0; // the planted bug: deposits seen before are forgotten
                        }
                    }
                    self.loaded = true;
                    Effect::Receive
                }
                FileStep::Written(done) => {
                    if let (Some(v), Some(_)) = (self.writing.take(), done) {
                        self.persisted = v;
                    }
                    // More applied meanwhile, or a short/failed write: write again.
                    self.flush(ctx)
                }
                FileStep::Failed => Effect::Crash(CrashReason("branch state file unavailable")),
            };
        }
        if msg.tag() == FLUSH.into() {
            return self.flush(ctx);
        }
        if let Some(op) = msg.decode::<Op>()
            && msg.is_call()
            && self.loaded
        {
            return self.on_op(op, ctx);
        }
        Effect::Receive
    }
}

/// Moves money from its shard's accounts to other shards'.
pub struct Teller {
    shard: u8,
    file: StateFile<TELLER_WORDS>,
    /// Durable state (as last written).
    pub state: TellerState,
    pending: Option<TellerState>,
    /// Calls that ended without an answer (timed out, or refused while the branch was not
    /// running).
    pub failed_calls: u64,
    /// Calls refused because the branch's shard had no isolate of that name (never expected:
    /// every shard declares [`BRANCH`]).
    pub unknown_names: u64,
    /// Transfers that ended with a durable acknowledgement.
    pub acknowledged: u64,
    retry_armed: bool,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Teller {
    fn persist(&mut self, next: TellerState, ctx: &mut Ctx) -> Effect {
        match self.file.write(next.record(), ctx) {
            Some(effect) => {
                self.pending = Some(next);
                effect
            }
            None => self.retry_later(ctx),
        }
    }

    fn retry_later(&mut self, ctx: &mut Ctx) -> Effect {
        // One retry chain at a time: a second timer would start a second, redundant chain.
        if !self.retry_armed && ctx.start_timer(Duration::from_millis(2), RETRY).is_ok() {
            self.retry_armed = true;
        }
        Effect::Receive
    }

    /// Continues from the durable state: write the next transfer's intent, or call for the
    /// current one (or finish a write that did not land).
    fn proceed(&mut self, ctx: &mut Ctx) -> Effect {
        if let Some(next) = self.pending.take() {
            return self.persist(next, ctx);
        }
        let s = self.state;
        match s.phase {
            TellerPhase::Idle if s.done >= TRANSFERS => Effect::Receive,
            TellerPhase::Idle => {
                let seq = s.seq + 1;
                let r = mix((u64::from(self.shard) << 32) ^ seq);
                let others = SHARD_COUNT as u64 - 1;
                let to_shard =
                    ((u64::from(self.shard) + 1 + r % others) % SHARD_COUNT as u64) as u8;
                let next = TellerState {
                    seq,
                    phase: TellerPhase::Withdraw,
                    from_account: ((r >> 8) % ACCOUNTS as u64) as u8,
                    to_shard,
                    to_account: ((r >> 16) % ACCOUNTS as u64) as u8,
                    amount: 1 + (r >> 24) % (INITIAL_BALANCE / 2),
                    ..s
                };
                self.persist(next, ctx)
            }
            TellerPhase::Withdraw => self.call(self.shard, WITHDRAW, s.from_account, ctx),
            TellerPhase::Deposit => self.call(s.to_shard, DEPOSIT, s.to_account, ctx),
        }
    }

    fn call(&self, shard: u8, kind: u8, account: u8, ctx: &mut Ctx) -> Effect {
        let op = Op {
            seq: self.state.seq,
            amount: self.state.amount,
            kind,
            teller: self.shard,
            account,
            _pad: [0; 5],
        };
        Effect::call(ctx.on_shard(BRANCH, ShardId(shard)), &op, CALL_TIMEOUT)
    }

    fn on_ack(&mut self, ack: Ack, ctx: &mut Ctx) -> Effect {
        if self.state.phase == TellerPhase::Idle {
            return self.proceed(ctx);
        }
        if ack.seq != self.state.seq || ack.stale != 0 || ack.durable == 0 {
            // Not durable yet: ask again shortly.
            return self.retry_later(ctx);
        }
        let mut next = self.state;
        match (self.state.phase, ack.ok != 0) {
            (TellerPhase::Withdraw, true) => next.phase = TellerPhase::Deposit,
            _ => {
                next.phase = TellerPhase::Idle;
                next.done += 1;
                self.acknowledged += 1;
            }
        }
        self.persist(next, ctx)
    }
}

impl Isolate for Teller {
    type Args = u8;

    fn init(shard: &u8, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let file = StateFile::new(TELLER_FILE);
        let first = file.open(ctx)?;
        Ok((
            Teller {
                shard: *shard,
                file,
                state: TellerState::INITIAL,
                pending: None,
                failed_calls: 0,
                unknown_names: 0,
                acknowledged: 0,
                retry_armed: false,
            },
            first,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if let Some(c) = msg.io_completion() {
            return match self.file.on_completion(c, ctx) {
                FileStep::Continue(effect) => effect,
                FileStep::Loaded(record) => {
                    self.state = TellerState::from_record(record);
                    self.proceed(ctx)
                }
                FileStep::Written(Some(_)) => {
                    if let Some(next) = self.pending.take() {
                        self.state = next;
                    }
                    self.proceed(ctx)
                }
                // A short or failed write: try again shortly (`pending` is kept).
                FileStep::Written(None) => self.retry_later(ctx),
                FileStep::Failed => Effect::Crash(CrashReason("teller state file unavailable")),
            };
        }
        if msg.is_call_timeout() {
            // Timed out, or refused at once while the branch was restarting: call again
            // (by name) shortly.
            self.failed_calls += 1;
            if msg.call_failed_to_send() == Some(SendError::UnknownName) {
                self.unknown_names += 1;
            }
            return self.retry_later(ctx);
        }
        if let Some(ack) = msg.decode::<Ack>() {
            return self.on_ack(ack, ctx);
        }
        if msg.tag() == RETRY.into() {
            self.retry_armed = false;
            return self.proceed(ctx);
        }
        Effect::Receive
    }
}

/// The fault kinds the bank exercises: all but TCP resets (it uses no sockets).
pub const FAULTS: FaultSet = FaultSet::ALL.without(FaultSet::of(&[FaultKind::TcpReset]));

/// The bank's checks and goal, all over the shards' disks.
#[derive(Default)]
pub struct BankScenario {
    /// Highest total ever seen in flight (for the summary).
    in_flight_max: u64,
}

/// Money on the disks: (sum of balances, money in flight, tellers done).
pub fn audit(view: &SimView<'_, '_>) -> Result<(u64, u64, u64), String> {
    let mut branches = Vec::new();
    for s in 0..view.shard_count() {
        branches.push(BranchState::from_file(
            view.file(s, BRANCH_FILE).unwrap_or(&[]),
        ));
    }
    let balances: u64 = branches.iter().flat_map(|b| b.balances).sum();
    let mut in_flight = 0;
    let mut done = 0;
    for (t, _) in branches.iter().enumerate() {
        let teller = TellerState::from_file(view.file(t, TELLER_FILE).unwrap_or(&[]));
        done += teller.done;
        match teller.phase {
            TellerPhase::Idle => {}
            TellerPhase::Withdraw => {
                let (wd, ok, _) = branches[t].tellers[t];
                if wd == teller.seq && ok {
                    in_flight += teller.amount;
                }
            }
            TellerPhase::Deposit => {
                let to = usize::from(teller.to_shard).min(SHARD_COUNT - 1);
                if branches[to].tellers[t].2 != teller.seq {
                    in_flight += teller.amount;
                }
            }
        }
    }
    if balances + in_flight != TOTAL {
        return Err(format!(
            "money not conserved: balances {balances} + in flight {in_flight} = {} != {TOTAL}",
            balances + in_flight
        ));
    }
    Ok((balances, in_flight, done))
}

impl Scenario for BankScenario {
    fn faults(&self) -> FaultSet {
        FAULTS
    }

    fn watched_types(&self) -> Vec<TypeWatch> {
        vec![watch::<Branch>("Branch"), watch::<Teller>("Teller")]
    }

    fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
        let (_, in_flight, _) = audit(view)?;
        self.in_flight_max = self.in_flight_max.max(in_flight);
        for (h, b) in view.isolates::<Branch>() {
            if b.persisted > b.version {
                return Err(format!("{h}: persisted version ahead of memory"));
            }
        }
        for (h, t) in view.isolates::<Teller>() {
            if t.unknown_names != 0 {
                return Err(format!("{h}: a call by name found no branch of that name"));
            }
        }
        Ok(())
    }

    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        audit(view).is_ok_and(|(_, in_flight, done)| {
            in_flight == 0 && done == TRANSFERS * SHARD_COUNT as u64
        })
    }

    fn summary(&self, view: &SimView<'_, '_>) -> String {
        let c = view.counters_total();
        match audit(view) {
            Ok((balances, in_flight, done)) => format!(
                "transfers done={done}/{} balances={balances} in-flight={in_flight} (max {}) calls timed out={} refused by name={} not-running={} restarts={} recoveries={}",
                TRANSFERS * SHARD_COUNT as u64,
                self.in_flight_max,
                c.call_timeouts,
                c.call_refusals_received,
                c.named_not_running,
                c.restarts,
                c.shard_recoveries
            ),
            Err(e) => e,
        }
    }
}

/// Runs the bank scenario. `--plant forget-dedup` makes branches forget, when they restart,
/// which deposits they already applied (a bug the checker must catch).
pub fn run(config: &SimConfig, options: &ScenarioOptions) -> Report {
    let branch = BranchArgs {
        forget_dedup: options.plant.as_deref() == Some("forget-dedup"),
    };
    let types = [
        TypeSpec::of::<Branch>("branch")
            .capacity(1)
            .mailbox_capacity(64),
        TypeSpec::of::<Teller>("teller")
            .capacity(1)
            .mailbox_capacity(16),
    ];
    let children: Vec<[ChildSpec<'static>; 2]> = (0..SHARD_COUNT)
        .map(|s| {
            [
                ChildSpec::named(BRANCH, &branch, Restart::Permanent),
                ChildSpec::isolate::<Teller>(&(s as u8), Restart::Permanent),
            ]
        })
        .collect();
    let shards: Vec<ShardSpec<'_>> = children
        .iter()
        .map(|c| ShardSpec {
            root: GroupSpec::one_for_one(c).budget(20, Duration::from_millis(500)),
        })
        .collect();
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = ShardConfig {
        message_pool_size: 256,
        timer_entries: 64,
        timer_spokes: 64,
        io_buffer_count: 16,
        io_buffer_size: 512,
        io_submissions_per_tick_max: 16,
        log_entries: 32,
        transfer_buffer_count: 0,
        ..ShardConfig::DEFAULT
    };
    spec.ring_capacity = 64;
    let mut scenario = BankScenario::default();
    tina_sim::run(&spec, config, &mut scenario)
}
