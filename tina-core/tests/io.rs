//! The I/O contract: parking on one op, reactor-owned buffers, completions as messages,
//! stale completions reclaimed, exhaustion reported.
mod common;
use common::*;
use tina_core::io::*;
use tina_core::platform::Submission;
use tina_core::testing::TestPlatform;
use tina_core::*;

/// Echoes whatever it receives on its socket, zero-copy; closes on EOF.
struct Conn {
    fd: Fd,
    completions: Vec<IoCompletion>,
    stale_buf: Option<IoBuf>,
}

#[derive(Clone, Copy)]
struct ConnArgs {
    fd: i32,
    /// 1: on the first completion, send from a buffer kept from an earlier call (illegal).
    /// 2: accept instead of receive; on the accepted socket crash without owning it.
    /// 3: accept; spawn a `Conn` that owns the accepted socket, then crash.
    misuse: u32,
}

impl Isolate for Conn {
    type Args = ConnArgs;
    fn init(a: &ConnArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let stale_buf = if a.misuse == 1 {
            ctx.io_buffer().ok()
        } else {
            None
        };
        let fd = Fd(a.fd);
        if a.misuse == 4 {
            ctx.own_fd(Some(fd));
        }
        let first = if a.misuse == 2 || a.misuse == 3 {
            Effect::Io(IoOp::Accept { listener: fd })
        } else {
            Effect::Io(IoOp::Recv {
                socket: fd,
                len: 64,
            })
        };
        Ok((
            Conn {
                fd,
                completions: Vec::new(),
                stale_buf,
            },
            first,
        ))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        let Some(c) = msg.io_completion() else {
            return Effect::Receive;
        };
        self.completions.push(c);
        if let (IoKind::Accept, Some(accepted)) = (c.kind, c.fd()) {
            if self.fd.0 == 3 {
                // Listener test modes: 3 hands the socket to a child that owns it.
                let _ = ctx.spawn::<Conn>(&ConnArgs {
                    fd: accepted.0,
                    misuse: 4,
                });
            }
            return Effect::Crash(CrashReason("crash holding an accepted socket"));
        }
        if let Some(buf) = self.stale_buf.take() {
            return Effect::Io(IoOp::Send {
                socket: self.fd,
                buf,
                len: 1,
            });
        }
        match (c.kind, c.result) {
            (IoKind::Recv, Ok(0)) => Effect::Io(IoOp::Close { fd: self.fd }),
            (IoKind::Recv, Ok(n)) => {
                let buf = c.buf.expect("a receive delivers its buffer");
                assert_eq!(ctx.io_data(buf, n as usize).unwrap().len(), n as usize);
                Effect::Io(IoOp::Send {
                    socket: self.fd,
                    buf,
                    len: n,
                })
            }
            (IoKind::Send, Ok(_)) => Effect::Io(IoOp::Recv {
                socket: self.fd,
                len: 64,
            }),
            (IoKind::Close, _) => Effect::Done,
            (_, Err(_)) => Effect::Receive,
            _ => Effect::Receive,
        }
    }
}

fn conn(fd: i32) -> ChildSpec<'static> {
    ChildSpec::isolate::<Conn>(&ConnArgs { fd, misuse: 0 }, Restart::Temporary)
}

fn spec_with<'s>(
    types: &'s [TypeSpec],
    shards: &'s [ShardSpec<'s>],
    buffers: u32,
    subs: u32,
) -> SystemSpec<'s> {
    let mut spec = SystemSpec::new(shards, types);
    spec.shard.io_buffer_count = buffers;
    spec.shard.io_buffer_size = 128;
    spec.shard.io_submissions_per_tick_max = subs;
    spec
}

#[test]
fn recv_send_echo_roundtrip_with_reactor_owned_buffers() {
    let types = [TypeSpec::of::<Conn>("conn").capacity(2)];
    let children = [conn(7)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 4, 8);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Conn>().next().unwrap();
        rig.step(); // submits the initial Recv
        let sub = rig.shard.platform().io.submitted[0];
        assert_eq!(sub.owner, h);
        assert_eq!(
            sub.op,
            IoOp::Recv {
                socket: Fd(7),
                len: 64
            }
        );
        let buf = sub.buf.expect("the core picked a receive buffer");
        rig.shard.platform().io.completions.push_back((
            h,
            IoCompletion {
                kind: IoKind::Recv,
                result: Ok(5),
                buf: Some(buf),
                peer: None,
                ticket: tina_core::io::IoTicket::PARKED,
            },
            b"hello".to_vec(),
        ));
        rig.step();
        let io = &rig.shard.platform().io;
        assert_eq!(io.submitted.len(), 2);
        assert_eq!(
            io.submitted[1].op,
            IoOp::Send {
                socket: Fd(7),
                buf,
                len: 5
            },
            "echoed from the same buffer, no copy"
        );
        assert_eq!(&io.sent_bytes[0][..5], b"hello");
        assert_eq!(rig.shard.resources_in_use().2, 1, "one buffer in flight");
        rig.shard.platform().io.completions.push_back((
            h,
            IoCompletion {
                kind: IoKind::Send,
                result: Ok(5),
                buf: Some(buf),
                peer: None,
                ticket: tina_core::io::IoTicket::PARKED,
            },
            Vec::new(),
        ));
        rig.step();
        assert!(matches!(
            rig.shard.platform().io.submitted[2].op,
            IoOp::Recv { .. }
        ));
        assert_eq!(rig.shard.counters().io_completed, 2);
        assert_eq!(rig.shard.state::<Conn>(h).unwrap().completions.len(), 2);
    });
}

#[test]
fn a_stale_completion_is_reclaimed_and_never_reaches_the_new_occupant() {
    let types = [
        TypeSpec::of::<Conn>("conn").capacity(1),
        TypeSpec::of::<Actor>("actor").capacity(1),
    ];
    let children = [
        conn(7),
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
    ];
    let children = [
        ChildSpec::isolate::<Conn>(&ConnArgs { fd: 7, misuse: 0 }, Restart::Permanent),
        children[1],
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).strategy(Strategy::OneForAll),
    }];
    let spec = spec_with(&types, &shards, 4, 8);
    with_rig(&spec, |rig| {
        let old = rig.shard.handles::<Conn>().next().unwrap();
        rig.step();
        let old_sub = rig.shard.platform().io.submitted[0];
        // Crash the sibling: one-for-all restarts the connection too (new generation).
        let actor = rig.actors()[0];
        rig.send(actor, cmd(op::CRASH));
        rig.step();
        let new = rig.shard.handles::<Conn>().next().unwrap();
        assert_eq!(new.slot(), old.slot());
        assert_ne!(new, old);
        // The old receive completes now, and an old accept too.
        let io = &mut rig.shard.platform().io;
        io.completions.push_back((
            old,
            IoCompletion {
                kind: IoKind::Recv,
                result: Ok(3),
                buf: old_sub.buf,
                peer: None,
                ticket: tina_core::io::IoTicket::PARKED,
            },
            b"old".to_vec(),
        ));
        io.completions
            .push_back((old, IoCompletion::new(IoKind::Accept, Ok(55)), Vec::new()));
        rig.step();
        assert_eq!(rig.shard.counters().io_stale_completions, 2);
        assert!(
            rig.shard.state::<Conn>(new).unwrap().completions.is_empty(),
            "the new occupant saw nothing"
        );
        let subs = &rig.shard.platform().io.submitted;
        assert!(
            subs.iter()
                .any(|s| s.owner.is_none() && s.op == IoOp::Close { fd: Fd(55) }),
            "the orphaned accepted socket is closed"
        );
        // Only the new connection's receive buffer is still out.
        assert_eq!(rig.shard.resources_in_use().2, 1);
    });
}

fn first_errors(buffers: u32, subs: u32) -> (Vec<Option<IoError>>, Counters) {
    let types = [TypeSpec::of::<Conn>("conn").capacity(4)];
    let children = [conn(1), conn(2), conn(3)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, buffers, subs);
    with_rig(&spec, |rig| {
        let hs: Vec<Handle> = rig.shard.handles::<Conn>().collect();
        rig.step();
        let errors = hs
            .iter()
            .map(|&h| {
                rig.shard
                    .state::<Conn>(h)
                    .unwrap()
                    .completions
                    .first()
                    .and_then(|c| c.result.err())
            })
            .collect();
        (errors, rig.shard.counters())
    })
}

#[test]
fn buffer_exhaustion_completes_with_no_buffers() {
    let (errors, c) = first_errors(1, 8);
    assert_eq!(
        errors,
        [None, Some(IoError::NoBuffers), Some(IoError::NoBuffers)]
    );
    assert_eq!(c.io_buffer_exhausted, 2);
}

#[test]
fn a_full_submission_batch_completes_with_queue_full() {
    let (errors, c) = first_errors(8, 1);
    assert_eq!(
        errors,
        [None, Some(IoError::QueueFull), Some(IoError::QueueFull)]
    );
    assert_eq!(c.io_submission_full, 2);
}

#[test]
fn submissions_the_platform_rejects_complete_with_its_error() {
    let types = [TypeSpec::of::<Conn>("conn").capacity(2)];
    let children = [conn(1)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 2, 4);
    let mut platform = TestPlatform::default();
    platform.io.accept_max = Some(0);
    with_rig_on(&spec, 0, platform, |rig| {
        let h = rig.shard.handles::<Conn>().next().unwrap();
        rig.step();
        rig.step();
        let c = &rig.shard.state::<Conn>(h).unwrap().completions;
        assert_eq!(c[0].result, Err(IoError::QueueFull));
        assert_eq!(rig.shard.resources_in_use().2, 0, "its buffer came back");
    });
}

#[test]
fn an_op_naming_a_buffer_from_an_earlier_call_crashes_the_isolate() {
    let types = [TypeSpec::of::<Conn>("conn").capacity(2)];
    let children = [ChildSpec::isolate::<Conn>(
        &ConnArgs { fd: 1, misuse: 1 },
        Restart::Temporary,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 4, 4);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Conn>().next().unwrap();
        rig.step();
        let sub = rig.shard.platform().io.submitted[0];
        rig.shard.platform().io.completions.push_back((
            h,
            IoCompletion {
                kind: IoKind::Recv,
                result: Ok(1),
                buf: sub.buf,
                peer: None,
                ticket: tina_core::io::IoTicket::PARKED,
            },
            vec![1],
        ));
        rig.step();
        assert!(!rig.shard.is_live(h));
        assert_eq!(rig.shard.counters().crashes, 1);
        assert_eq!(rig.shard.resources_in_use(), (0, 0, 0));
    });
}

fn accept_then_crash(mode: u32) -> Vec<Submission> {
    let types = [TypeSpec::of::<Conn>("conn").capacity(4)];
    let children = [ChildSpec::isolate::<Conn>(
        &ConnArgs {
            fd: if mode == 3 { 3 } else { 5 },
            misuse: mode,
        },
        Restart::Temporary,
    )];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).dynamic(2),
    }];
    let spec = spec_with(&types, &shards, 4, 8);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Conn>().next().unwrap();
        rig.step();
        rig.shard.platform().io.completions.push_back((
            h,
            IoCompletion::new(IoKind::Accept, Ok(42)),
            Vec::new(),
        ));
        rig.step();
        rig.step();
        assert!(!rig.shard.is_live(h));
        rig.shard.platform().io.submitted.clone()
    })
}

#[test]
fn an_accepted_socket_nobody_owns_is_closed_when_its_receiver_crashes() {
    let subs = accept_then_crash(2);
    let closes: Vec<&Submission> = subs
        .iter()
        .filter(|s| s.op == IoOp::Close { fd: Fd(42) })
        .collect();
    assert_eq!(closes.len(), 1, "{subs:?}");
    assert!(closes[0].owner.is_none(), "closed as reclaim work");
}

#[test]
fn an_accepted_socket_owned_by_a_spawned_child_is_left_open() {
    let subs = accept_then_crash(3);
    assert!(
        !subs.iter().any(|s| s.op == IoOp::Close { fd: Fd(42) }),
        "the child owns it: {subs:?}"
    );
    assert!(
        subs.iter().any(|s| s.op
            == IoOp::Recv {
                socket: Fd(42),
                len: 64
            }),
        "the child serves it"
    );
}

#[test]
fn a_completion_that_arrives_as_its_owner_is_torn_down_is_reclaimed() {
    let types = [
        TypeSpec::of::<Actor>("actor").capacity(1),
        TypeSpec::of::<Conn>("conn").capacity(1),
    ];
    let children = [
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
        ChildSpec::isolate::<Conn>(&ConnArgs { fd: 7, misuse: 0 }, Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).strategy(Strategy::OneForAll),
    }];
    let spec = spec_with(&types, &shards, 4, 8);
    with_rig(&spec, |rig| {
        let conn = rig.shard.handles::<Conn>().next().unwrap();
        rig.step();
        let sub = rig.shard.platform().io.submitted[0];
        // In one tick: the completion lands (phase 2), then the actor (dispatched before the
        // connection's type) crashes and one-for-all tears the connection down before it
        // could handle the completion.
        let io = &mut rig.shard.platform().io;
        io.completions.push_back((
            conn,
            IoCompletion {
                kind: IoKind::Recv,
                result: Ok(3),
                buf: sub.buf,
                peer: None,
                ticket: tina_core::io::IoTicket::PARKED,
            },
            b"abc".to_vec(),
        ));
        let actor = rig.actors()[0];
        rig.send(actor, cmd(op::CRASH));
        rig.step();
        assert!(!rig.shard.is_live(conn));
        // Only the new connection's receive buffer is out: the old one came back.
        assert_eq!(rig.shard.resources_in_use().2, 1);
        assert_eq!(rig.shard.counters().io_completed, 1);
    });
}

/// Owns the descriptor in its arguments; closes it when told (`GO`) and is done when the
/// close completes, whatever its result; receives on it when told (`READ`).
struct Owner {
    fd: Fd,
}

#[derive(Clone, Copy)]
struct FdArgs {
    fd: i32,
}

const GO: UserTag = UserTag::new(0x71);
const READ: UserTag = UserTag::new(0x72);

impl Isolate for Owner {
    type Args = FdArgs;
    fn init(a: &FdArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        ctx.own_fd(Some(Fd(a.fd)));
        Ok((Owner { fd: Fd(a.fd) }, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        match msg.io_completion() {
            Some(c) if c.kind == IoKind::Close => Effect::Done,
            Some(_) => Effect::Receive,
            None if msg.tag() == GO.into() => Effect::Io(IoOp::Close { fd: self.fd }),
            None if msg.tag() == READ.into() => Effect::Io(IoOp::Recv {
                socket: self.fd,
                len: 8,
            }),
            None => Effect::Receive,
        }
    }
}

/// Submits a receive on its descriptor when told (to fill the tick's submission batch).
struct Filler {
    fd: Fd,
}

impl Isolate for Filler {
    type Args = FdArgs;
    fn init(a: &FdArgs, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Filler { fd: Fd(a.fd) }, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.io_completion().is_none() && msg.tag() == GO.into() {
            return Effect::Io(IoOp::Recv {
                socket: self.fd,
                len: 8,
            });
        }
        Effect::Receive
    }
}

/// The descriptors closed as reclaim work (no owner) so far.
fn reclaimed(rig: &mut Rig<'_>) -> Vec<i32> {
    let mut fds: Vec<i32> = rig
        .shard
        .platform()
        .io
        .submitted
        .iter()
        .filter(|s| s.owner.is_none())
        .filter_map(|s| match s.op {
            IoOp::Close { fd } => Some(fd.0),
            _ => None,
        })
        .collect();
    fds.sort_unstable();
    fds
}

#[test]
fn a_close_refused_for_a_full_batch_leaves_the_descriptor_owned_and_reclaimed() {
    // The filler's type is dispatched first, so its receive takes the batch's one slot.
    let types = [
        TypeSpec::of::<Filler>("filler").capacity(1),
        TypeSpec::of::<Owner>("owner").capacity(1),
    ];
    let children = [
        ChildSpec::isolate::<Filler>(&FdArgs { fd: 8 }, Restart::Temporary),
        ChildSpec::isolate::<Owner>(&FdArgs { fd: 7 }, Restart::Temporary),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 4, 1);
    with_rig(&spec, |rig| {
        let filler = rig.shard.handles::<Filler>().next().unwrap();
        let owner = rig.shard.handles::<Owner>().next().unwrap();
        rig.shard.deliver(filler, &Outgoing::signal(GO)).unwrap();
        rig.shard.deliver(owner, &Outgoing::signal(GO)).unwrap();
        rig.step_until_idle(8);
        // The batch was still full when the owner was torn down: its close went to the
        // next batch.
        rig.step();
        assert_eq!(
            rig.shard.counters().io_submission_full,
            1,
            "the close was refused"
        );
        assert!(!rig.shard.is_live(owner), "done after its (refused) close");
        // Before, the refused close had already given the descriptor up: nobody closed it.
        assert_eq!(
            reclaimed(rig),
            vec![7],
            "the teardown closes what it still owned"
        );
    });
}

#[test]
fn orphaned_descriptors_beyond_the_batch_are_held_and_closed_in_later_batches() {
    const OWNERS: i32 = 6;
    let types = [TypeSpec::of::<Owner>("owner").capacity(OWNERS as u32)];
    let children: Vec<ChildSpec<'static>> = (0..OWNERS)
        .map(|k| ChildSpec::isolate::<Owner>(&FdArgs { fd: 10 + k }, Restart::Permanent))
        .collect();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 4, 2);
    with_rig(&spec, |rig| {
        rig.step_until_idle(8);
        // Every owner is torn down at once: six closes for a batch of two. The test
        // platform cannot close at once, so the rest are held for later batches.
        rig.shard.force_stop();
        for _ in 0..4 {
            rig.step();
        }
        assert_eq!(reclaimed(rig), (10..10 + OWNERS).collect::<Vec<_>>());
        let c = rig.shard.counters();
        assert_eq!(c.io_reclaims_deferred, OWNERS as u64 - 2, "{c:?}");
        assert_eq!(c.io_reclaims_lost, 0, "{c:?}");
    });
}

#[test]
fn a_teardown_with_the_batch_full_replaces_the_dead_owners_own_submission_by_the_close() {
    // The owner's type is dispatched first: its receive fills the batch, then the actor
    // crashes and (no restart budget) the shard recovers, tearing the owner down.
    let types = [
        TypeSpec::of::<Owner>("owner").capacity(1),
        TypeSpec::of::<Actor>("actor").capacity(1),
    ];
    let children = [
        ChildSpec::isolate::<Owner>(&FdArgs { fd: 7 }, Restart::Permanent),
        ChildSpec::isolate::<Actor>(&args(0), Restart::Permanent),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children).budget(0, Duration::from_millis(1_000)),
    }];
    let spec = spec_with(&types, &shards, 4, 1);
    with_rig(&spec, |rig| {
        let owner = rig.shard.handles::<Owner>().next().unwrap();
        let actor = rig.actors()[0];
        rig.shard.deliver(owner, &Outgoing::signal(READ)).unwrap();
        rig.send(actor, cmd(op::CRASH));
        rig.step();
        assert_eq!(rig.shard.counters().shard_recoveries, 1);
        let subs = rig.shard.platform().io.submitted.clone();
        // The dead owner's receive never reached the platform (it could have read from a
        // new socket that reuses the number); the close took its place, its buffer is free.
        assert!(
            !subs.iter().any(|s| s.owner == owner),
            "the dead owner's receive was submitted: {subs:?}"
        );
        assert_eq!(reclaimed(rig), vec![7]);
        assert_eq!(rig.shard.resources_in_use().2, 0, "no I/O buffer is held");
        assert_eq!(rig.shard.counters().io_reclaims_deferred, 1);
    });
}

#[test]
fn orphan_closes_the_platform_refuses_are_held_and_submitted_again() {
    const OWNERS: i32 = 4;
    let types = [TypeSpec::of::<Owner>("owner").capacity(OWNERS as u32)];
    let children: Vec<ChildSpec<'static>> = (0..OWNERS)
        .map(|k| ChildSpec::isolate::<Owner>(&FdArgs { fd: 20 + k }, Restart::Permanent))
        .collect();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 4, 8);
    with_rig(&spec, |rig| {
        rig.step_until_idle(8);
        // Every owner is torn down; the batch has room for every close, but the platform
        // takes only one submission of it.
        rig.shard.platform().io.accept_max = Some(1);
        rig.shard.force_stop();
        rig.step();
        assert_eq!(reclaimed(rig).len(), 1, "the platform took one close");
        rig.shard.platform().io.accept_max = None;
        for _ in 0..3 {
            rig.step();
        }
        // The refused closes were held and went out in a later batch: none leaked.
        assert_eq!(reclaimed(rig), (20..20 + OWNERS).collect::<Vec<_>>());
        assert_eq!(rig.shard.counters().io_reclaims_lost, 0);
    });
}

#[test]
fn a_stopped_shard_reports_work_while_closes_of_orphaned_descriptors_wait() {
    const OWNERS: i32 = 5;
    let types = [TypeSpec::of::<Owner>("owner").capacity(OWNERS as u32)];
    let children: Vec<ChildSpec<'static>> = (0..OWNERS)
        .map(|k| ChildSpec::isolate::<Owner>(&FdArgs { fd: 30 + k }, Restart::Permanent))
        .collect();
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_with(&types, &shards, 4, 1);
    with_rig(&spec, |rig| {
        rig.step_until_idle(8);
        // Five closes for a batch of one, on a platform that cannot close at once: the
        // stopped shard holds the rest, and a platform that steps it only while it reports
        // work must still see every close.
        rig.shard.force_stop();
        assert_eq!(rig.shard.status(), ShardStatus::Stopped);
        let mut steps = 0;
        loop {
            let r = rig.step();
            steps += 1;
            assert_eq!(r.status, ShardStatus::Stopped);
            if !r.work_remaining {
                break;
            }
            assert!(
                steps < 3 * OWNERS,
                "still reporting work after {steps} steps"
            );
        }
        // Before, the first step after the stop reported no work with four closes held.
        assert_eq!(reclaimed(rig), (30..30 + OWNERS).collect::<Vec<_>>());
        assert_eq!(rig.shard.counters().io_reclaims_lost, 0);
        // Once nothing is held, the stopped shard reports no work again.
        let r = rig.step();
        assert!(!r.work_remaining);
        assert_eq!(reclaimed(rig).len(), OWNERS as usize, "each closed once");
    });
}
