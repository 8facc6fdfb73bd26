//! Several I/O operations in flight per isolate (`Ctx::submit`): a receive pending while the
//! isolate takes mail and sends on the same socket, completions routed by ticket, the
//! `io_in_flight_max` bound, cancelling, and reclaiming at teardown and across restarts.
mod common;
use common::*;
use tina_core::io::*;
use tina_core::platform::Submission;
use tina_core::spec::Rule;
use tina_core::testing::TestPlatform;
use tina_core::*;

/// What a `Duplex` saw, in order.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    /// A mailbox message (the command's op).
    Mail(u32),
    /// A completion: its ticket, kind, result and the bytes it delivered.
    Done(IoTicket, IoKind, Result<u32, IoError>, Vec<u8>),
    /// The result of a `submit` or `cancel` made while handling a command.
    Submitted(Result<IoTicket, IoError>),
    Cancelled(Result<(), IoError>),
    /// A call ended: `true` with a reply, `false` with a timeout.
    CallEnded(bool),
}

/// A connection that keeps a receive pending on its socket and, on mail, sends on it.
struct Duplex {
    fd: Fd,
    recv: Option<IoTicket>,
    seen: Vec<Seen>,
}

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct DuplexArgs {
    fd: i32,
}

/// Commands (`Cmd::op`).
const SEND: u32 = 1;
const CANCEL_RECV: u32 = 2;
const RECV_AGAIN: u32 = 3;
const CRASH: u32 = 4;
/// Accept on `Cmd::arg` (a listener) as a submitted op.
const ACCEPT: u32 = 5;
/// Park on a parked `Effect::Io` receive on `Cmd::arg`; crash when it completes.
const PARK_THEN_CRASH: u32 = 6;
/// Call `Cmd::target` (a `Ping`, 5 ms timeout).
const CALL: u32 = 7;

impl Isolate for Duplex {
    type Args = DuplexArgs;
    fn init(a: &DuplexArgs, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let fd = Fd(a.fd);
        let first = ctx.submit(IoOp::Recv {
            socket: fd,
            len: 64,
        });
        let me = Duplex {
            fd,
            recv: first.ok(),
            seen: vec![Seen::Submitted(first)],
        };
        Ok((me, Effect::Receive))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if let Some(c) = msg.io_completion() {
            if c.kind == IoKind::Recv && c.ticket.is_parked() {
                return Effect::Crash(CrashReason("crash after the parked op"));
            }
            let data = match (c.buf, c.result, c.kind.fills_buffer()) {
                (Some(b), Ok(n), true) => ctx.io_data(b, n as usize).unwrap().to_vec(),
                _ => Vec::new(),
            };
            self.seen.push(Seen::Done(c.ticket, c.kind, c.result, data));
            return Effect::Receive;
        }
        if msg.is_call_timeout() || msg.is_reply() {
            self.seen.push(Seen::CallEnded(!msg.is_call_timeout()));
            return Effect::Receive;
        }
        let Some(cmd) = msg.decode::<Cmd>() else {
            return Effect::Receive;
        };
        self.seen.push(Seen::Mail(cmd.op));
        match cmd.op {
            SEND => {
                let buf = ctx.io_buffer().unwrap();
                ctx.io_buffer_mut(buf).unwrap()[..4].copy_from_slice(b"push");
                let r = ctx.submit(IoOp::Send {
                    socket: self.fd,
                    buf,
                    len: 4,
                });
                self.seen.push(Seen::Submitted(r));
            }
            CANCEL_RECV => {
                let r = ctx.cancel(self.recv.expect("a receive was submitted"));
                self.seen.push(Seen::Cancelled(r));
            }
            RECV_AGAIN => {
                let r = ctx.submit(IoOp::Recv {
                    socket: self.fd,
                    len: 64,
                });
                self.seen.push(Seen::Submitted(r));
            }
            ACCEPT => {
                let r = ctx.submit(IoOp::Accept {
                    listener: Fd(cmd.arg as i32),
                });
                self.seen.push(Seen::Submitted(r));
            }
            PARK_THEN_CRASH => {
                return Effect::Io(IoOp::Recv {
                    socket: Fd(cmd.arg as i32),
                    len: 8,
                });
            }
            CALL => {
                return Effect::Call {
                    to: Handle::from_bits(cmd.target),
                    message: Outgoing::new(&Ping { n: 1 }),
                    timeout: Duration::from_millis(5),
                };
            }
            CRASH => return Effect::Crash(CrashReason("asked to crash")),
            _ => {}
        }
        Effect::Receive
    }
}

fn spec_for<'s>(types: &'s [TypeSpec], shards: &'s [ShardSpec<'s>]) -> SystemSpec<'s> {
    let mut spec = SystemSpec::new(shards, types);
    spec.shard.io_buffer_count = 8;
    spec.shard.io_buffer_size = 128;
    spec.shard.io_submissions_per_tick_max = 8;
    spec
}

fn duplex(restart: Restart) -> ChildSpec<'static> {
    ChildSpec::isolate::<Duplex>(&DuplexArgs { fd: 7 }, restart)
}

fn seen(rig: &Rig<'_>, h: Handle) -> Vec<Seen> {
    rig.shard.state::<Duplex>(h).expect("live").seen.clone()
}

fn complete(rig: &mut Rig<'_>, owner: Handle, s: &Submission, r: Result<u32, IoError>, b: &[u8]) {
    let c = IoCompletion {
        kind: s.op.kind(),
        result: r,
        buf: s.buf,
        peer: None,
        ticket: s.ticket,
    };
    rig.shard
        .platform()
        .io
        .completions
        .push_back((owner, c, b.to_vec()));
}

fn submitted(rig: &mut Rig<'_>, i: usize) -> Submission {
    rig.shard.platform().io.submitted[i]
}

fn mail(rig: &mut Rig<'_>, h: Handle, op: u32, arg: u64) {
    let mut c = cmd(op);
    c.arg = arg;
    rig.send(h, c);
}

#[test]
fn a_pending_receive_does_not_stop_mail_or_a_send_on_the_same_socket() {
    let types = [TypeSpec::of::<Duplex>("duplex").io_in_flight_max(3)];
    let children = [duplex(Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_for(&types, &shards);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Duplex>().next().unwrap();
        rig.step();
        let recv = submitted(rig, 0);
        assert_eq!(
            recv.op,
            IoOp::Recv {
                socket: Fd(7),
                len: 64
            }
        );
        assert!(
            !recv.ticket.is_parked(),
            "a submitted op has its own ticket"
        );
        // Mail while the receive is pending: handled at once, and it sends on the socket.
        mail(rig, h, SEND, 0);
        rig.step();
        assert_eq!(rig.shard.platform().io.submitted.len(), 2);
        let send = submitted(rig, 1);
        assert_eq!(send.op.kind(), IoKind::Send);
        assert_ne!(send.ticket, recv.ticket);
        assert_eq!(&rig.shard.platform().io.sent_bytes[0][..4], b"push");
        assert_eq!(
            seen(rig, h),
            vec![
                Seen::Submitted(Ok(recv.ticket)),
                Seen::Mail(SEND),
                Seen::Submitted(Ok(send.ticket)),
            ]
        );
        // The send completes before the receive; each completion names its own op.
        complete(rig, h, &send, Ok(4), b"");
        rig.step();
        complete(rig, h, &recv, Ok(5), b"hello");
        mail(rig, h, 99, 0);
        rig.step();
        let s = seen(rig, h);
        assert_eq!(
            s[3..],
            [
                Seen::Done(send.ticket, IoKind::Send, Ok(4), Vec::new()),
                Seen::Done(recv.ticket, IoKind::Recv, Ok(5), b"hello".to_vec()),
                Seen::Mail(99),
            ],
            "completions are delivered ahead of mail, each to its ticket"
        );
        assert_eq!(rig.shard.resources_in_use().2, 0, "every buffer came back");
        assert_eq!(rig.shard.counters().io_completed, 2);
    });
}

#[test]
fn the_in_flight_bound_is_explicit_refused_clearly_and_counted_in_memory() {
    // Default 1: only the parked way, so `submit` is refused.
    let types = [TypeSpec::of::<Duplex>("duplex")];
    let children = [duplex(Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_for(&types, &shards);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Duplex>().next().unwrap();
        rig.step();
        assert_eq!(
            seen(rig, h),
            vec![Seen::Submitted(Err(IoError::InFlightLimit))]
        );
        assert!(rig.shard.platform().io.submitted.is_empty());
    });
    // 2: one submitted op; a second is refused, its buffer stays the handler's and is freed.
    let types2 = [TypeSpec::of::<Duplex>("duplex").io_in_flight_max(2)];
    let spec2 = spec_for(&types2, &shards);
    with_rig(&spec2, |rig| {
        let h = rig.shard.handles::<Duplex>().next().unwrap();
        rig.step();
        mail(rig, h, SEND, 0);
        rig.step();
        assert_eq!(
            seen(rig, h)[2],
            Seen::Submitted(Err(IoError::InFlightLimit))
        );
        assert_eq!(rig.shard.platform().io.submitted.len(), 1);
        assert_eq!(
            rig.shard.resources_in_use().2,
            1,
            "only the receive's buffer"
        );
        assert!(
            IoError::InFlightLimit
                .to_string()
                .contains("io_in_flight_max")
        );
    });
    // Validated: 1 to 16.
    for bad in [0u8, 17] {
        let t = [TypeSpec::of::<Duplex>("duplex").io_in_flight_max(bad)];
        let e = spec_for(&t, &shards).validate().expect_err("refused");
        assert_eq!(
            (e.field, e.value, e.rule),
            ("io_in_flight_max", u64::from(bad), Rule::IoInFlight)
        );
    }
    // Each submitted slot per instance is carved at boot.
    let size = |n: u8| {
        let t = [TypeSpec::of::<Duplex>("duplex")
            .capacity(4)
            .io_in_flight_max(n)];
        Shard::<TestPlatform>::memory_required(&spec_for(&t, &shards), ShardId(0)).unwrap()
    };
    assert!(size(2) > size(1));
    assert!(size(16) - size(2) >= 4 * 14 * core::mem::size_of::<IoCompletion>());
}

#[test]
fn a_cancelled_receive_completes_once_as_cancelled() {
    let types = [TypeSpec::of::<Duplex>("duplex").io_in_flight_max(3)];
    let children = [duplex(Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_for(&types, &shards);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Duplex>().next().unwrap();
        rig.step();
        let recv = submitted(rig, 0);
        mail(rig, h, CANCEL_RECV, 0);
        rig.step();
        assert_eq!(rig.shard.platform().io.cancels, vec![(h, recv.ticket)]);
        complete(rig, h, &recv, Err(IoError::Canceled), b"");
        rig.step();
        // A second cancel, after the completion, names nothing in flight.
        mail(rig, h, CANCEL_RECV, 0);
        rig.step();
        assert_eq!(
            seen(rig, h)[1..],
            [
                Seen::Mail(CANCEL_RECV),
                Seen::Cancelled(Ok(())),
                Seen::Done(
                    recv.ticket,
                    IoKind::Recv,
                    Err(IoError::Canceled),
                    Vec::new()
                ),
                Seen::Mail(CANCEL_RECV),
                Seen::Cancelled(Err(IoError::InFlightLimit)),
            ]
        );
        assert_eq!(rig.shard.platform().io.cancels.len(), 1);
        assert_eq!(rig.shard.resources_in_use().2, 0);
    });
}

#[test]
fn teardown_with_several_ops_in_flight_reclaims_everything() {
    let types = [TypeSpec::of::<Duplex>("duplex").io_in_flight_max(4)];
    let children = [duplex(Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_for(&types, &shards);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Duplex>().next().unwrap();
        rig.step();
        mail(rig, h, SEND, 0);
        mail(rig, h, ACCEPT, 9);
        mail(rig, h, PARK_THEN_CRASH, 11);
        rig.step();
        let [recv, send, accept, parked] = [0, 1, 2, 3].map(|i| submitted(rig, i));
        assert_eq!(accept.op, IoOp::Accept { listener: Fd(9) });
        assert!(parked.ticket.is_parked());
        // While it is parked on the Effect::Io, the accept and the receive complete: they
        // wait undelivered. Then the parked op completes and the isolate crashes.
        complete(rig, h, &accept, Ok(55), b"");
        complete(rig, h, &recv, Ok(3), b"abc");
        rig.step();
        assert_eq!(rig.shard.resources_in_use().2, 3, "recv, send, parked recv");
        complete(rig, h, &parked, Ok(1), b"x");
        rig.step();
        assert!(rig.shard.handles::<Duplex>().next().is_none(), "torn down");
        // The undelivered receive's buffer is free; the accepted socket is closed.
        let subs = &rig.shard.platform().io.submitted;
        assert!(
            subs.iter()
                .any(|s| s.owner.is_none() && s.op == IoOp::Close { fd: Fd(55) }),
            "the undelivered accepted socket is closed: {subs:?}"
        );
        assert_eq!(
            rig.shard.resources_in_use().2,
            1,
            "only the send's buffer is out"
        );
        // The send still in flight comes back stale: its buffer is freed.
        let stale = rig.shard.counters().io_stale_completions;
        complete(rig, h, &send, Ok(4), b"");
        rig.step();
        assert_eq!(rig.shard.counters().io_stale_completions, stale + 1);
        assert_eq!(rig.shard.resources_in_use(), (0, 0, 0));
        rig.shard.check_invariants().unwrap();
    });
}

#[test]
fn a_restarted_incarnation_never_sees_its_predecessors_completions() {
    let types = [TypeSpec::of::<Duplex>("duplex").io_in_flight_max(3)];
    let children = [duplex(Restart::Permanent)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_for(&types, &shards);
    with_rig(&spec, |rig| {
        let h1 = rig.shard.handles::<Duplex>().next().unwrap();
        rig.step();
        let old = submitted(rig, 0);
        mail(rig, h1, CRASH, 0);
        rig.step_until_idle(20);
        let h2 = rig.shard.handles::<Duplex>().next().expect("restarted");
        assert_ne!(h1, h2);
        assert_eq!(h1.slot(), h2.slot());
        let new = *rig
            .shard
            .platform()
            .io
            .submitted
            .iter()
            .rfind(|s| s.owner == h2)
            .expect("the new incarnation's receive");
        assert_ne!(
            new.ticket, old.ticket,
            "a new sequence number in the same slot"
        );
        // The predecessor's receive completes: stale, reclaimed, never delivered.
        complete(rig, h1, &old, Ok(3), b"old");
        // A completion naming the new incarnation with the old ticket: refused too.
        let forged = Submission { owner: h2, ..old };
        let bogus = rig.shard.counters().io_bogus_completions;
        complete(rig, h2, &forged, Ok(0), b"");
        rig.step();
        assert_eq!(rig.shard.counters().io_bogus_completions, bogus + 1);
        assert_eq!(seen(rig, h2), vec![Seen::Submitted(Ok(new.ticket))]);
        complete(rig, h2, &new, Ok(3), b"new");
        rig.step();
        assert_eq!(
            seen(rig, h2)[1],
            Seen::Done(new.ticket, IoKind::Recv, Ok(3), b"new".to_vec())
        );
        assert_eq!(rig.shard.resources_in_use().2, 0);
    });
}

/// Takes calls and never answers them.
struct Silent;

impl Isolate for Silent {
    type Args = u64;
    fn init(_: &u64, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Silent, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Receive
    }
}

#[test]
fn a_submitted_receive_stays_in_flight_through_a_call_and_completes_after_it() {
    let types = [
        TypeSpec::of::<Duplex>("duplex").io_in_flight_max(2),
        TypeSpec::of::<Silent>("silent"),
    ];
    let children = [
        duplex(Restart::Temporary),
        ChildSpec::isolate::<Silent>(&0u64, Restart::Temporary),
    ];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let spec = spec_for(&types, &shards);
    with_rig(&spec, |rig| {
        let h = rig.shard.handles::<Duplex>().next().unwrap();
        let callee = rig.shard.handles::<Silent>().next().unwrap();
        rig.step();
        let recv = submitted(rig, 0);
        rig.send(h, cmd_to(CALL, callee, 0, 0));
        rig.step();
        // Parked on the call (the callee never answers), the receive completes: it waits.
        complete(rig, h, &recv, Ok(2), b"hi");
        rig.step();
        assert_eq!(seen(rig, h).len(), 2, "nothing delivered during the call");
        rig.advance_to(rig.now + 20);
        assert_eq!(
            seen(rig, h)[1..],
            [
                Seen::Mail(CALL),
                Seen::CallEnded(false),
                Seen::Done(recv.ticket, IoKind::Recv, Ok(2), b"hi".to_vec()),
            ],
            "the call ends by its timeout, then the completion is delivered"
        );
        assert_eq!(rig.shard.resources_in_use().2, 0);
    });
}
