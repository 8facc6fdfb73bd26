//! `SimPlatform`: the core's platform seam, implemented over the shared simulated world as
//! a `platform::Bundle` of four parts (the core borrows them through `Platform::parts`).
//!
//! | part | what it does in the simulator |
//! |---|---|
//! | [`SimTransport`] | the simulated network (`net`): bounded per-pair FIFO links, delay, drop, partitions, status broadcasts |
//! | [`SimIo`] | the simulated kernel (`kernel`, `ops`): TCP/UDP/files with real bytes; socket control |
//! | [`SimTrap`] | `catch_unwind`, plus the handler faults: crash instead of running, panic after running, failed `init`, whole-shard crash |
//! | [`SimLog`] | records every log line into the trace (and keeps the last lines for reports) |
//!
//! Each part holds the shard's id and a reference to the world; it borrows the world only for
//! the duration of one call from the core, never while user code runs.

use crate::config::FaultKind;
use crate::panic_hook;
use crate::trace::Ev;
use crate::world::WorldRef;
use tina_core::io::{Control, ControlOutcome, IoError};
use tina_core::log::{LogRecord, LogSink};
use tina_core::platform::{
    Bundle, CallKind, CompletionSink, IoBuffers, IoDriver, Panicked, PeerEvent, SocketControl,
    Submission, Transport, Trap, TrapCall,
};
use tina_core::{Handle, Message, SendError, ShardId};

/// One shard's platform in the simulator: the four simulated parts, bundled.
pub type SimPlatform = Bundle<SimTransport, SimIo, SimTrap, SimLog>;

/// Builds shard `shard`'s platform over the shared world.
pub(crate) fn sim_platform(shard: u8, world: &WorldRef) -> SimPlatform {
    Bundle {
        transport: SimTransport {
            shard,
            world: world.clone(),
        },
        io: SimIo {
            shard,
            world: world.clone(),
        },
        trap: SimTrap {
            shard,
            world: world.clone(),
        },
        log: SimLog {
            shard,
            world: world.clone(),
        },
    }
}

/// The simulated network, as one shard's transport.
pub struct SimTransport {
    shard: u8,
    world: WorldRef,
}

impl Transport for SimTransport {
    fn send(&mut self, to: ShardId, msg: &Message) -> Result<(), SendError> {
        self.world.borrow_mut().net_send(self.shard, to, msg)
    }

    fn receive(&mut self, deliver: &mut dyn FnMut(&Message)) {
        self.world.borrow_mut().net_receive(self.shard, deliver);
    }

    fn publish(&mut self) {
        self.world.borrow_mut().net_publish(self.shard);
    }

    fn announce(&mut self, event: PeerEvent) {
        self.world.borrow_mut().net_announce(self.shard, event);
    }

    fn peer_events(&mut self, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        self.world.borrow_mut().net_peer_events(self.shard, deliver);
    }
}

/// The simulated kernel, as one shard's I/O driver.
pub struct SimIo {
    shard: u8,
    world: WorldRef,
}

impl SocketControl for SimIo {
    fn control(&mut self, owner: Handle, op: Control) -> Result<ControlOutcome, IoError> {
        self.world.borrow_mut().control(self.shard, owner, op)
    }
}

impl IoDriver for SimIo {
    fn submit(&mut self, batch: &[Submission], buffers: IoBuffers<'_>) -> usize {
        self.world
            .borrow_mut()
            .io_submit(self.shard, batch, &buffers)
    }

    fn complete(&mut self, sink: &mut dyn CompletionSink) {
        self.world.borrow_mut().io_complete(self.shard, sink);
    }

    fn cancel(&mut self, owner: Handle, ticket: tina_core::io::IoTicket) {
        self.world.borrow_mut().io_cancel(self.shard, owner, ticket);
    }

    fn cancel_all(&mut self) {
        self.world.borrow_mut().kernel.cancel[usize::from(self.shard)] = true;
    }
}

/// What the trap decided for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Run,
    RunThenPanic,
    Fail(FaultKind),
}

/// `catch_unwind` plus handler faults.
///
/// The core says which call it runs ([`TrapCall::kind`]): an `init` may fail under the
/// `init-failure` fault; a handler may crash instead of running (`isolate-crash`) or panic
/// after running (`handler-panic`); during a whole-shard crash (`shard-crash`) every call
/// fails. No fault is injected while the system boots (round 0) or after the faulty phase; a
/// shard the operator revives during the faulty phase runs its `init`s under the same faults
/// as any other.
pub struct SimTrap {
    shard: u8,
    world: WorldRef,
}

impl SimTrap {
    fn decide(&self, call: TrapCall) -> (Verdict, bool) {
        let mut w = self.world.borrow_mut();
        let faulty = w.phase == crate::world::Phase::Faulty && w.round > 0;
        let sh = usize::from(self.shard);
        let now = w.now;
        let faults = w.faults;
        let t = &mut w.traps[sh];
        let init = call.kind == CallKind::Init;
        if !faulty {
            return (Verdict::Run, init);
        }
        if t.storm_until.is_some_and(|until| now < until) {
            return (Verdict::Fail(FaultKind::ShardCrash), init);
        }
        let v = if init {
            if t.rng.chance(faults.init_failure) {
                Verdict::Fail(FaultKind::InitFailure)
            } else {
                Verdict::Run
            }
        } else if t.rng.chance(faults.isolate_crash) {
            Verdict::Fail(FaultKind::IsolateCrash)
        } else if t.rng.chance(faults.handler_panic) {
            Verdict::RunThenPanic
        } else {
            Verdict::Run
        };
        (v, init)
    }
}

impl Trap for SimTrap {
    #[inline]
    fn run(&self, call: TrapCall, f: &mut dyn FnMut()) -> Result<(), Panicked> {
        let (verdict, init) = self.decide(call);
        let outcome = match verdict {
            Verdict::Fail(_) => Err(Panicked),
            Verdict::Run | Verdict::RunThenPanic => {
                let panic_after = verdict == Verdict::RunThenPanic;
                panic_hook::trapped(|| {
                    f();
                    if panic_after {
                        std::panic::panic_any(panic_hook::InjectedPanic);
                    }
                })
            }
        };
        let mut w = self.world.borrow_mut();
        let shard = self.shard;
        let code = match (verdict, outcome) {
            (Verdict::Fail(kind), _) => {
                let t = &mut w.traps[usize::from(shard)];
                if kind != FaultKind::ShardCrash {
                    w.inject(kind, &[u64::from(shard), u64::from(init)], || {
                        format!("s{shard} {}", if init { "init" } else { "handler" })
                    });
                } else if !t.storm_counted {
                    // One whole-shard crash per storm, counted at its first failed call.
                    t.storm_counted = true;
                    w.inject(kind, &[u64::from(shard)], || {
                        format!("s{shard} every call fails")
                    });
                }
                2 + kind.index() as u64
            }
            (Verdict::RunThenPanic, Err(_)) => {
                w.inject(FaultKind::HandlerPanic, &[u64::from(shard)], || {
                    format!("s{shard}")
                });
                1
            }
            (_, Err(_)) => 0x100,
            (_, Ok(())) => 0,
        };
        w.trace
            .ev(Ev::Trap, &[u64::from(shard), u64::from(init), code], || {
                format!(
                    "s{shard} {} -> {code:#x}",
                    if init { "init" } else { "handler" }
                )
            });
        outcome
    }
}

/// Log records go into the trace.
pub struct SimLog {
    shard: u8,
    world: WorldRef,
}

impl LogSink for SimLog {
    fn write(&mut self, shard: ShardId, record: &LogRecord) {
        let mut w = self.world.borrow_mut();
        let text = record.text();
        let digest = crate::hash::digest64(text.as_bytes());
        w.trace.ev(
            Ev::Log,
            &[
                u64::from(self.shard),
                u64::from(shard.0),
                record.isolate.to_bits(),
                record.level as u64,
                digest,
            ],
            || format!("s{} {} {} {}", shard.0, record.isolate, record.level, text),
        );
        w.log_tail.push_back(format!(
            "[t{} s{} {} {}] {}",
            record.tick.ticks(),
            shard.0,
            record.isolate,
            record.level,
            text
        ));
        if w.log_tail.len() > crate::world::LOG_TAIL_MAX {
            w.log_tail.pop_front();
        }
    }
}
