//! A completion the platform reports twice (a driver bug) is dropped and counted as bogus:
//! it never frees the buffer or closes the descriptor the first one handed to a live isolate.
use tina_core::io::{Fd, IoCompletion, IoKind, IoOp};
use tina_core::testing::{TestPlatform, region_for};
use tina_core::*;

/// Waits on one operation (`Recv` or `Accept`, by its argument) and keeps what arrives.
struct Waiter {
    got: Vec<(IoKind, Result<Vec<u8>, io::IoError>)>,
}

impl Isolate for Waiter {
    type Args = u32;
    fn init(accept: &u32, _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        let op = if *accept == 1 {
            IoOp::Accept { listener: Fd(3) }
        } else {
            IoOp::Recv {
                socket: Fd(3),
                len: 16,
            }
        };
        Ok((Waiter { got: Vec::new() }, Effect::Io(op)))
    }

    fn handle(&mut self, msg: &Message, ctx: &mut Ctx) -> Effect {
        if let Some(c) = msg.io_completion() {
            let data = match (c.buf, c.result) {
                (Some(b), Ok(n)) => ctx.io_data(b, n as usize).map(<[u8]>::to_vec),
                _ => Ok(Vec::new()),
            };
            if let Some(fd) = c.fd() {
                ctx.own_fd(Some(fd));
            }
            self.got.push((c.kind, data));
        }
        Effect::Receive
    }
}

fn with_waiter(accept: u32, f: impl FnOnce(&mut Shard<'_, TestPlatform>, Handle)) {
    let types = [TypeSpec::of::<Waiter>("waiter")];
    let children = [ChildSpec::isolate::<Waiter>(&accept, Restart::Temporary)];
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard.io_buffer_count = 2;
    spec.shard.io_buffer_size = 64;
    let mut memory = region_for(&spec, ShardId(0));
    let mut shard = Shard::new(&spec, ShardId(0), memory.bytes(), TestPlatform::default()).unwrap();
    let h = shard.handles::<Waiter>().next().unwrap();
    shard.step(Instant::from_ticks(1));
    f(&mut shard, h);
}

#[test]
fn a_receive_completion_reported_twice_is_delivered_once_and_its_buffer_kept() {
    with_waiter(0, |shard, h| {
        let buf = shard.platform().io.submitted[0].buf;
        let c = IoCompletion {
            kind: IoKind::Recv,
            result: Ok(5),
            buf,
            peer: None,
            ticket: tina_core::io::IoTicket::PARKED,
        };
        let io = &mut shard.platform().io;
        io.completions.push_back((h, c, b"hello".to_vec()));
        io.completions.push_back((h, c, Vec::new()));
        shard.step(Instant::from_ticks(2));
        shard.check_invariants().expect("the buffer pool is intact");
        let got = &shard.state::<Waiter>(h).unwrap().got;
        assert_eq!(got, &[(IoKind::Recv, Ok(b"hello".to_vec()))]);
        let c = shard.counters();
        assert_eq!((c.io_completed, c.io_bogus_completions), (1, 1));
        assert_eq!(c.io_stale_completions, 0);
        assert_eq!(
            shard.resources_in_use().2,
            0,
            "freed once, after the handler"
        );
    });
}

#[test]
fn an_accept_completion_reported_twice_does_not_close_the_owned_socket() {
    with_waiter(1, |shard, h| {
        let c = IoCompletion::new(IoKind::Accept, Ok(42));
        shard
            .platform()
            .io
            .completions
            .push_back((h, c, Vec::new()));
        shard.step(Instant::from_ticks(2));
        shard
            .platform()
            .io
            .completions
            .push_back((h, c, Vec::new()));
        shard.step(Instant::from_ticks(3));
        shard.step(Instant::from_ticks(4));
        assert_eq!(shard.state::<Waiter>(h).unwrap().got.len(), 1);
        assert_eq!(shard.counters().io_bogus_completions, 1);
        let closes = shard
            .platform()
            .io
            .submitted
            .iter()
            .filter(|s| s.op == IoOp::Close { fd: Fd(42) });
        assert_eq!(closes.count(), 0, "the live owner's socket stays open");
    });
}
