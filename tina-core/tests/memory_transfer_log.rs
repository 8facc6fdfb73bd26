//! Working memory, scratch, transfer buffers, logging, shutdown and peer status events.
mod common;
use common::*;
use tina_core::log::Level;
use tina_core::platform::PeerEvent;
use tina_core::testing::TestPlatform;
use tina_core::*;

/// Exercises the memory APIs according to the command it receives.
struct Mem {
    /// What the last handler saw in scratch before writing to it.
    scratch_was_zero: Vec<bool>,
    working_sum: Vec<u64>,
    got: Vec<Vec<u8>>,
    results: Vec<String>,
    kept: Option<TransferBuf>,
}

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Do {
    op: u32,
    len: u32,
    to: u64,
}
impl Payload for Do {
    const TAG: UserTag = UserTag::new(0x44);
}

const BIG: UserTag = UserTag::new(0x45);

mod mop {
    pub(crate) const SCRATCH: u32 = 1;
    pub(crate) const WORKING_ADD: u32 = 2;
    pub(crate) const SEND_BIG: u32 = 3;
    pub(crate) const USE_KEPT: u32 = 4;
    pub(crate) const ALLOC_MANY: u32 = 5;
    pub(crate) const LOG: u32 = 6;
    pub(crate) const SEND_BIG_REMOTE: u32 = 7;
    /// `len` records from one call site, then one from another.
    pub(crate) const FLOOD: u32 = 8;
    /// One record from each of `len` distinct call sites (at most 20).
    pub(crate) const MANY_SITES: u32 = 9;
}

/// `log!` from `n` distinct call sites (each expansion is a site of its own).
macro_rules! log_sites {
    ($ctx:expr, $n:expr, $($i:literal)+) => {{
        let mut written = Vec::new();
        $(
            if $i < $n {
                written.push(log!($ctx, Warn, "site {}", $i));
            }
        )+
        written
    }};
}

impl Isolate for Mem {
    type Args = ();
    fn init(_: &(), ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.watch_shards(true);
        Ok((
            Mem {
                scratch_was_zero: Vec::new(),
                working_sum: Vec::new(),
                got: Vec::new(),
                results: Vec::new(),
                kept: None,
            },
            Effect::Receive,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            return Effect::Done;
        }
        if let Some(t) = msg.transfer() {
            self.got.push(ctx.transfer_data(t).unwrap().to_vec());
            self.kept = Some(t);
            return Effect::Receive;
        }
        if msg.tag().is_system() {
            self.results
                .push(format!("notice {} {:?}", msg.tag().0, msg.payload()));
            return Effect::Receive;
        }
        let Some(d) = msg.decode::<Do>() else {
            return Effect::Receive;
        };
        match d.op {
            mop::SCRATCH => {
                let s = ctx.scratch(d.len as usize).unwrap();
                self.scratch_was_zero.push(s.iter().all(|&b| b == 0));
                s.fill(0xAA);
                // Same call, second access: the bytes are still ours.
                let again = ctx.scratch(d.len as usize).unwrap();
                assert!(again.iter().all(|&b| b == 0xAA));
                let too_big = ctx.scratch(10_000).unwrap_err();
                self.results.push(too_big.to_string());
            }
            mop::WORKING_ADD => {
                let w = ctx.working_memory();
                let mut counter = u64::from_le_bytes(w[..8].try_into().unwrap());
                counter += u64::from(d.len);
                w[..8].copy_from_slice(&counter.to_le_bytes());
                self.working_sum.push(counter);
            }
            mop::SEND_BIG | mop::SEND_BIG_REMOTE => {
                let t = ctx.transfer_alloc(d.len as usize).unwrap();
                let bytes = ctx.transfer_mut(t).unwrap();
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = i as u8;
                }
                let r = ctx.send_transfer(Handle::from_bits(d.to), BIG, t);
                self.results.push(format!("{r:?}"));
            }
            mop::USE_KEPT => {
                let t = self.kept.unwrap();
                self.results
                    .push(format!("{:?}", ctx.transfer_data(t).map(|d| d.len())));
            }
            mop::ALLOC_MANY => {
                let mut errs = Vec::new();
                for _ in 0..d.len {
                    if let Err(e) = ctx.transfer_alloc(100) {
                        errs.push(e);
                    }
                }
                errs.push(ctx.transfer_alloc(1 << 20).unwrap_err());
                self.results.push(format!("{errs:?}"));
            }
            mop::LOG => {
                for i in 0..d.len {
                    let ok = log!(ctx, Info, "line {i} from {}", ctx.me());
                    self.results.push(format!("{ok}"));
                }
            }
            mop::FLOOD => {
                for i in 0..d.len {
                    let ok = log!(ctx, Warn, "refusing connection {i}");
                    self.results.push(format!("{ok}"));
                }
                let other = log!(ctx, Info, "another site");
                self.results.push(format!("other {other}"));
            }
            mop::MANY_SITES => {
                let written = log_sites!(
                    ctx, d.len, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
                );
                self.results.push(format!("{written:?}"));
            }
            _ => {}
        }
        Effect::Receive
    }
}

fn mem_spec<'s>(types: &'s [TypeSpec], shards: &'s [ShardSpec<'s>]) -> SystemSpec<'s> {
    let mut spec = SystemSpec::new(shards, types);
    spec.shard.transfer_buffer_count = 4;
    spec.shard.transfer_buffer_size = 1000;
    spec.shard.log_entries = 4;
    spec
}

fn with_mems(n: usize, f: impl FnOnce(&mut Rig<'_>, Vec<Handle>)) {
    with_mems_tuned(n, |_| {}, f)
}

fn with_mems_tuned(
    n: usize,
    tune: impl FnOnce(&mut SystemSpec<'_>),
    f: impl FnOnce(&mut Rig<'_>, Vec<Handle>),
) {
    let types = [TypeSpec::of::<Mem>("mem")
        .capacity(4)
        .working_memory(64)
        .scratch(256)];
    let children: Vec<ChildSpec<'_>> = (0..n)
        .map(|_| ChildSpec::isolate::<Mem>(&(), Restart::Permanent))
        .collect();
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
    ];
    let mut spec = mem_spec(&types, &shards);
    tune(&mut spec);
    with_rig(&spec, |rig| {
        let hs: Vec<Handle> = rig.shard.handles::<Mem>().collect();
        f(rig, hs)
    });
}

/// Delivers a command and steps until the shard is idle.
fn tell(rig: &mut Rig<'_>, to: Handle, op: u32, len: u32, target: Handle) {
    tell_once(rig, to, op, len, target);
    rig.step_until_idle(5);
}

fn mem<'r>(rig: &'r Rig<'_>, h: Handle) -> &'r Mem {
    rig.shard.state::<Mem>(h).unwrap()
}

#[test]
fn scratch_is_zero_at_the_start_of_every_handler_call_and_bounded() {
    with_mems(2, |rig, hs| {
        tell(rig, hs[0], mop::SCRATCH, 200, Handle::NONE);
        tell(rig, hs[1], mop::SCRATCH, 200, Handle::NONE);
        tell(rig, hs[0], mop::SCRATCH, 256, Handle::NONE);
        assert_eq!(mem(rig, hs[0]).scratch_was_zero, [true, true]);
        assert_eq!(mem(rig, hs[1]).scratch_was_zero, [true]);
        assert!(mem(rig, hs[0]).results[0].contains("scratch_size is 256"));
    });
}

#[test]
fn working_memory_lives_with_the_isolate_and_starts_zeroed_after_a_restart() {
    with_mems(2, |rig, hs| {
        tell(rig, hs[0], mop::WORKING_ADD, 5, Handle::NONE);
        tell(rig, hs[0], mop::WORKING_ADD, 7, Handle::NONE);
        tell(rig, hs[1], mop::WORKING_ADD, 1, Handle::NONE);
        assert_eq!(mem(rig, hs[0]).working_sum, [5, 12]);
        assert_eq!(mem(rig, hs[1]).working_sum, [1], "each isolate has its own");
    });
}

#[test]
fn transfer_buffers_carry_large_payloads_with_their_exact_length() {
    with_mems(2, |rig, hs| {
        tell(rig, hs[0], mop::SEND_BIG, 777, hs[1]);
        assert_eq!(mem(rig, hs[0]).results, ["Ok(())"]);
        let got = &mem(rig, hs[1]).got;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 777);
        assert!(got[0].iter().enumerate().all(|(i, &b)| b == i as u8));
        assert_eq!(
            rig.shard.transfers_in_use(),
            0,
            "freed after the receiver's call"
        );
        // A reference kept past its handler call is stale.
        tell(rig, hs[1], mop::USE_KEPT, 0, Handle::NONE);
        assert_eq!(mem(rig, hs[1]).results, ["Err(Stale)"]);
    });
}

#[test]
fn transfer_exhaustion_size_and_locality_are_reported() {
    with_mems(2, |rig, hs| {
        tell(rig, hs[0], mop::ALLOC_MANY, 5, Handle::NONE);
        assert_eq!(mem(rig, hs[0]).results, ["[Exhausted, TooLarge]"]);
        assert_eq!(rig.shard.counters().transfer_exhausted, 1);
        assert_eq!(rig.shard.transfers_in_use(), 0, "unsent buffers are freed");
        let remote = Handle::new(ShardId(1), TypeId(0), 0, 1).unwrap();
        tell(rig, hs[0], mop::SEND_BIG_REMOTE, 200, remote);
        assert_eq!(mem(rig, hs[0]).results[1], "Err(NotLocal)");
        assert_eq!(rig.shard.transfers_in_use(), 0);
    });
}

#[test]
fn a_queued_transfer_is_reclaimed_when_its_receiver_is_torn_down() {
    let types = [
        TypeSpec::of::<Actor>("actor").capacity(2),
        TypeSpec::of::<Mem>("mem").capacity(1),
    ];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Temporary),
        ChildSpec::isolate::<Mem>(&(), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = mem_spec(&types, &shards);
    with_rig(&spec, |rig| {
        let receiver = rig.actors()[0];
        let sender = rig.shard.handles::<Mem>().next().unwrap();
        let mut busy = cmd(op::YIELD_THEN_CRASH);
        busy.count = 3;
        rig.send(receiver, busy);
        rig.step();
        tell_once(rig, sender, mop::SEND_BIG, 300, receiver);
        assert_eq!(mem(rig, sender).results, ["Ok(())"]);
        assert_eq!(
            rig.shard.transfers_in_use(),
            1,
            "queued in the busy receiver's mailbox"
        );
        // The receiver crashes before reading it: the buffer returns with its mailbox.
        rig.advance_to(rig.now + 5);
        assert!(!rig.shard.is_live(receiver));
        assert_eq!(rig.shard.transfers_in_use(), 0);
        assert_eq!(rig.shard.resources_in_use(), (0, 0, 0));
    });
}

/// Delivers a command and steps exactly once.
fn tell_once(rig: &mut Rig<'_>, to: Handle, op: u32, len: u32, target: Handle) {
    let cmd = Do {
        op,
        len,
        to: target.to_bits(),
    };
    rig.shard.deliver(to, &Outgoing::new(&cmd)).unwrap();
    rig.step();
}

#[test]
fn log_records_reach_the_sink_and_overflow_is_counted() {
    with_mems(1, |rig, hs| {
        tell(rig, hs[0], mop::LOG, 6, Handle::NONE);
        assert_eq!(
            mem(rig, hs[0]).results,
            ["true", "true", "true", "true", "false", "false"]
        );
        assert_eq!(rig.shard.counters().log_drops, 2);
        let records = &rig.shard.platform().log.records;
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].1.level, Level::Info);
        assert_eq!(records[0].1.isolate, hs[0]);
        assert_eq!(records[3].1.text(), format!("line 3 from {}", hs[0]));
        // The ring was flushed: the next tick logs again.
        tell(rig, hs[0], mop::LOG, 1, Handle::NONE);
        assert_eq!(rig.shard.platform().log.records.len(), 5);
    });
}

/// 100 ms ticks: a rate-limit window of one second is 10 ticks.
const LOG_TICK_NS: u64 = 100_000_000;
const LOG_WINDOW_TICKS: u64 = 10;

fn with_logging_mem(f: impl FnOnce(&mut Rig<'_>, Handle)) {
    with_logging_mem_ticking(LOG_TICK_NS, f)
}

fn with_logging_mem_ticking(tick_ns: u64, f: impl FnOnce(&mut Rig<'_>, Handle)) {
    with_mems_tuned(
        1,
        |spec| {
            spec.tick_ns = tick_ns;
            spec.shard.log_entries = 64;
        },
        |rig, hs| f(rig, hs[0]),
    );
}

fn texts(rig: &mut Rig<'_>) -> Vec<String> {
    let records = &rig.shard.platform().log.records;
    records.iter().map(|(_, r)| r.text().to_string()).collect()
}

#[test]
fn log_flood_from_one_site_is_rate_limited_and_reported_when_the_site_logs_again() {
    assert_eq!(
        tina_core::log::LOG_SITE_WINDOW_NS / LOG_TICK_NS,
        LOG_WINDOW_TICKS
    );
    let per_window = tina_core::log::LOG_SITE_LINES_PER_WINDOW_MAX as usize;
    with_logging_mem(|rig, h| {
        tell_once(rig, h, mop::FLOOD, 100, Handle::NONE);
        let opened = rig.now;
        let results = mem(rig, h).results.clone();
        let written = results.iter().filter(|r| *r == "true").count();
        assert_eq!(written, per_window, "the site writes its budget, no more");
        assert!(results[..per_window].iter().all(|r| r == "true"));
        assert_eq!(
            results.last().unwrap(),
            "other true",
            "another site has its own budget"
        );
        assert_eq!(
            rig.shard.counters().log_drops,
            0,
            "suppressed is not dropped"
        );
        let logged = texts(rig);
        assert_eq!(logged.len(), per_window + 1);
        assert_eq!(
            logged[per_window - 1],
            format!("refusing connection {}", per_window - 1)
        );
        // Idle, the shard asks to be woken when the window ends (the report is due then).
        let report = rig.step();
        assert_eq!(
            report.next_deadline,
            Some(Instant::from_ticks(opened + LOG_WINDOW_TICKS))
        );
        // Still inside the window: suppressed again, nothing reported yet.
        tell_once(rig, h, mop::FLOOD, 5, Handle::NONE);
        assert_eq!(
            texts(rig).len(),
            per_window + 2,
            "only the other site wrote"
        );
        // The site logs again in the next window: its first line carries the count.
        rig.advance_to(opened + LOG_WINDOW_TICKS - 1);
        assert_eq!(
            texts(rig).len(),
            per_window + 2,
            "no report before the window ends"
        );
        tell_once(rig, h, mop::FLOOD, 1, Handle::NONE);
        assert_eq!(rig.now, opened + LOG_WINDOW_TICKS);
        let logged = texts(rig);
        assert_eq!(
            logged[per_window + 2],
            format!(
                "refusing connection 0 (suppressed {} similar lines)",
                100 - per_window + 5
            )
        );
        // Reported once: no record of its own at the window's end.
        rig.advance_to(opened + 3 * LOG_WINDOW_TICKS);
        assert_eq!(texts(rig).len(), per_window + 4);
        assert!(rig.step().next_deadline.is_none(), "nothing pending");
    });
}

#[test]
fn log_flood_from_a_quiet_site_is_reported_when_its_window_ends() {
    let per_window = tina_core::log::LOG_SITE_LINES_PER_WINDOW_MAX;
    with_logging_mem(|rig, h| {
        tell_once(rig, h, mop::FLOOD, 200, Handle::NONE);
        let opened = rig.now;
        rig.advance_to(opened + LOG_WINDOW_TICKS - 1);
        assert_eq!(texts(rig).len(), per_window as usize + 1);
        rig.step();
        let records = &rig.shard.platform().log.records;
        let (_, report) = records.last().unwrap();
        assert_eq!(report.tick, Instant::from_ticks(opened + LOG_WINDOW_TICKS));
        assert_eq!(report.level, Level::Warn, "the report has the site's level");
        assert_eq!(report.isolate, h);
        assert!(
            report.text().starts_with(&format!(
                "suppressed {} similar lines from {}:",
                200 - per_window,
                file!()
            )),
            "{}",
            report.text()
        );
        // The site starts afresh: a full budget, no note.
        tell_once(rig, h, mop::FLOOD, per_window, Handle::NONE);
        let results = &mem(rig, h).results;
        assert!(
            results[results.len() - 1 - per_window as usize..]
                .iter()
                .all(|r| r.contains("true"))
        );
        let logged = texts(rig);
        let after_report = &logged[per_window as usize + 2..];
        assert_eq!(after_report.len(), per_window as usize + 1);
        assert!(after_report.iter().all(|t| !t.contains("suppressed")));
    });
}

#[test]
fn log_sites_are_tracked_in_a_bounded_table_and_evicted_counts_are_reported() {
    let sites_max = tina_core::log::LOG_SITES_MAX as u32;
    let per_window = tina_core::log::LOG_SITE_LINES_PER_WINDOW_MAX;
    assert!(
        sites_max < 20,
        "the test needs more sites than the table holds"
    );
    // 1 ms ticks: every call below falls in the first window.
    with_logging_mem_ticking(1_000_000, |rig, h| {
        // Fill the table: every site over its budget, with suppressed lines pending.
        for _ in 0..=per_window {
            tell_once(rig, h, mop::MANY_SITES, sites_max, Handle::NONE);
        }
        let pending = rig.shard.platform().log.records.len();
        assert_eq!(pending, (sites_max * per_window) as usize);
        // One more site evicts the entry whose window started first; its count is reported
        // at once, before the new site's line.
        tell_once(rig, h, mop::MANY_SITES, sites_max + 1, Handle::NONE);
        let logged = texts(rig);
        let fresh: Vec<_> = logged[pending..].to_vec();
        assert!(
            fresh[0].starts_with("suppressed 2 similar lines from "),
            "{fresh:?}"
        );
        assert_eq!(fresh.last().unwrap(), &format!("site {sites_max}"));
    });
}

#[test]
fn shutdown_delivers_a_notice_to_everyone_and_nothing_restarts() {
    let a = actors(3, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        let mut busy = cmd(op::YIELD);
        busy.count = 3;
        rig.send(hs[2], busy);
        rig.step();
        rig.shard.shutdown();
        let mut status = rig.step().status;
        for _ in 0..10 {
            if status == ShardStatus::Stopped {
                break;
            }
            status = rig.step().status;
        }
        assert_eq!(status, ShardStatus::Stopped);
        assert_eq!(rig.shard.live_isolates(), 0);
        assert_eq!(
            rig.shard.counters().restarts,
            0,
            "permanent children are not restarted"
        );
        assert_eq!(rig.shard.counters().exits, 3);
        assert_eq!(rig.shard.resources_in_use(), (0, 0, 0));
    });
}

#[test]
fn a_yielding_isolate_gets_the_shutdown_notice_in_place_of_its_next_resume() {
    let a = actors(2, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        let mut busy = cmd(op::YIELD);
        busy.count = 1_000_000;
        rig.send(hs[0], busy);
        let mut stubborn = cmd(op::STUBBORN);
        stubborn.count = 1_000_000;
        rig.send(hs[1], stubborn);
        rig.step();
        rig.shard.shutdown();
        rig.step();
        rig.step();
        // The one that honours the notice is gone after one tick; the stubborn one saw the
        // notice exactly once, in place of a resume, and keeps being resumed.
        assert_eq!(rig.actors(), vec![hs[1]]);
        assert_eq!(rig.shard.counters().exits, 1);
        let tags: Vec<u16> = rig.actor(hs[1]).seen.iter().map(|s| s.tag).collect();
        let shutdown = system_tag::SHUTDOWN.0;
        let resumed = system_tag::RESUMED.0;
        assert_eq!(
            tags.iter().filter(|&&t| t == shutdown).count(),
            1,
            "{tags:?}"
        );
        assert_eq!(tags[tags.len() - 2..], [shutdown, resumed], "{tags:?}");
    });
}

#[test]
fn force_stop_ends_a_shutdown_that_does_not_finish() {
    let a = actors(2, Restart::Permanent);
    let shards = a.shards();
    with_rig(&a.spec(&shards), |rig| {
        let hs = rig.actors();
        let mut busy = cmd(op::STUBBORN);
        busy.count = 1_000_000;
        rig.send(hs[0], busy);
        rig.step();
        rig.shard.shutdown();
        for _ in 0..5 {
            assert_eq!(rig.step().status, ShardStatus::ShuttingDown);
        }
        rig.shard.force_stop();
        assert_eq!(rig.shard.status(), ShardStatus::Stopped);
        assert_eq!(rig.shard.live_isolates(), 0);
        rig.shard.check_invariants().unwrap();
    });
}

#[test]
fn a_peer_restart_fails_pending_calls_fast_and_notifies_watchers() {
    let types = [
        TypeSpec::of::<Actor>("actor").capacity(2),
        TypeSpec::of::<Mem>("mem").capacity(1),
    ];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::isolate::<Mem>(&(), Restart::Permanent),
    ];
    let shards = [
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
        ShardSpec {
            root: GroupSpec::one_for_one(&children),
        },
    ];
    let spec = SystemSpec::new(&shards, &types);
    with_rig_on(&spec, 0, TestPlatform::default(), |rig| {
        let caller = rig.actors()[0];
        let watcher = rig.shard.handles::<Mem>().next().unwrap();
        let remote = Handle::new(ShardId(1), TypeId(0), 0, 1).unwrap();
        rig.send(caller, cmd_to(op::CALL, remote, 1, 10_000));
        rig.step();
        rig.shard
            .platform()
            .transport
            .peer_events
            .push_back((ShardId(1), PeerEvent::Restarted));
        rig.step_until_idle(5);
        assert!(rig.now < 10, "no waiting for the 10 000-tick timeout");
        let seen = &rig.actor(caller).seen;
        assert_eq!(seen.last().unwrap().tag, system_tag::CALL_TIMEOUT.0);
        assert_eq!(
            rig.shard.state::<Mem>(watcher).unwrap().results,
            [format!("notice {} [1]", system_tag::SHARD_RESTARTED.0)]
        );
    });
}

#[test]
fn recovery_and_quarantine_are_announced_to_peers() {
    let types = [TypeSpec::of::<Actor>("actor").capacity(4)];
    let c = [ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&c).budget(0, Duration::from_millis(100)),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.recoveries_max = 1;
    with_rig(&spec, |rig| {
        rig.send(rig.actors()[0], cmd(op::CRASH));
        rig.step();
        rig.send(rig.actors()[0], cmd(op::CRASH));
        rig.step();
        assert_eq!(
            rig.shard.platform().transport.announced,
            [PeerEvent::Restarted, PeerEvent::Quarantined]
        );
    });
}

#[test]
fn sends_to_a_quarantined_peer_fail_until_it_is_revived() {
    let a = actors(1, Restart::Permanent);
    let shards = [a.shards()[0], a.shards()[0]];
    let spec = a.spec(&shards);
    with_rig(&spec, |rig| {
        let me = rig.actors()[0];
        let remote = Handle::new(ShardId(1), TypeId(0), 0, 1).unwrap();
        let events = &mut rig.shard.platform().transport.peer_events;
        events.push_back((ShardId(1), PeerEvent::Quarantined));
        rig.step();
        rig.send(me, cmd_to(op::SEND_PINGS, remote, 1, 0));
        rig.step();
        rig.shard
            .platform()
            .transport
            .peer_events
            .push_back((ShardId(1), PeerEvent::Restarted));
        rig.step();
        rig.send(me, cmd_to(op::SEND_PINGS, remote, 1, 0));
        rig.step();
        assert_eq!(
            rig.actor(me).last_send,
            [Err(SendError::StaleHandle), Ok(())]
        );
        assert_eq!(rig.shard.counters().quarantine_drops, 1);
        assert_eq!(rig.shard.platform().transport.published.len(), 1);
    });
}
