//! What a simulation test provides besides the `SystemSpec`: clients, checks and a goal.
//!
//! A [`Scenario`] is driven by the round loop:
//!
//! 1. [`Scenario::poll`] runs at the start of every round, before the shards step, with an
//!    [`Env`]: the virtual time, the phase, the scenario's own PRNG stream and the client
//!    side of the simulated network (connect, read, write, close). It returns a [`Wake`] so
//!    the simulator knows when it may skip time.
//! 2. [`Scenario::check`] runs with the built-in checkers every `check_every_rounds` rounds
//!    and at the end, with a [`SimView`]: typed, read-only access to every isolate on every
//!    shard (`view.state::<T>(handle)`, `view.handles::<T>()`) and to the shards' disks.
//! 3. [`Scenario::goal`] says whether the scenario got what it wanted; in the liveness phase
//!    (faults stopped, partitions healed, quarantined shards revived) it must become true
//!    within the bound, or the run fails as a liveness failure. The default goal is
//!    quiescence: nothing left to do anywhere.

use crate::config::FaultSet;
use crate::kernel::{SockId, TcpState};
use crate::platform::SimPlatform;
use crate::rng::SimRng;
use crate::trace::Ev;
use crate::world::{Node, Phase, World};
use core::net::SocketAddr;
use tina_core::io::{IoError, ShutdownHow};
use tina_core::{Counters, Handle, Instant, Isolate, Shard};

/// When the scenario wants to be polled again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// At the next tick.
    Busy,
    /// At this tick (or earlier, if a client socket changes).
    At(Instant),
    /// Only when a client socket changes.
    Idle,
}

/// A simulation scenario: the parts of a test that are not the system spec.
pub trait Scenario {
    /// The fault kinds this scenario can exercise; swarm mode only picks from these.
    fn faults(&self) -> FaultSet {
        FaultSet::ALL
    }

    /// Isolate types whose live handles the built-in checkers enumerate (generations only
    /// grow, no two live isolates share a handle).
    fn watched_types(&self) -> Vec<TypeWatch> {
        Vec::new()
    }

    /// Drives simulated clients; called at the start of every round.
    fn poll(&mut self, env: &mut Env<'_>) -> Wake {
        let _ = env;
        Wake::Idle
    }

    /// Checks scenario invariants over the whole system. An `Err` ends the run as a checker
    /// violation.
    fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
        let _ = view;
        Ok(())
    }

    /// Whether the scenario has reached its goal (default: the system is quiescent).
    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        view.quiescent()
    }

    /// Called once when the liveness phase starts.
    fn on_liveness(&mut self, view: &SimView<'_, '_>) {
        let _ = view;
    }

    /// A one-line summary of what happened, for the report.
    fn summary(&self, view: &SimView<'_, '_>) -> String {
        let _ = view;
        String::new()
    }
}

/// Enumerates the live handles of one isolate type on a shard.
#[derive(Clone, Copy)]
pub struct TypeWatch {
    /// The type's name, for messages.
    pub name: &'static str,
    pub(crate) handles: fn(&Shard<'_, SimPlatform>) -> Vec<Handle>,
}

fn handles_of<T: Isolate>(shard: &Shard<'_, SimPlatform>) -> Vec<Handle> {
    shard.handles::<T>().collect()
}

/// A [`TypeWatch`] for `T`.
pub fn watch<T: Isolate>(name: &'static str) -> TypeWatch {
    TypeWatch {
        name,
        handles: handles_of::<T>,
    }
}

/// Read-only access to the whole simulated system.
pub struct SimView<'v, 'a> {
    pub(crate) shards: &'v [Shard<'a, SimPlatform>],
    pub(crate) world: &'v World,
    pub(crate) quiescent: bool,
}

impl<'v, 'a> SimView<'v, 'a> {
    /// How many shards there are.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// One shard (for `counters`, `status`, `handles`, `state`, `check_invariants`, …).
    pub fn shard(&self, index: usize) -> &'v Shard<'a, SimPlatform> {
        &self.shards[index]
    }

    /// The state of the isolate `h`, wherever it lives.
    pub fn state<T: Isolate>(&self, h: Handle) -> Option<&'v T> {
        self.shards.get(usize::from(h.shard().0))?.state::<T>(h)
    }

    /// Live handles of type `T` on every shard, shard by shard.
    pub fn handles<T: Isolate>(&self) -> Vec<Handle> {
        self.shards.iter().flat_map(|s| s.handles::<T>()).collect()
    }

    /// Every live isolate of type `T` with its state.
    pub fn isolates<T: Isolate>(&self) -> Vec<(Handle, &'v T)> {
        let mut out = Vec::new();
        for s in self.shards {
            for h in s.handles::<T>() {
                if let Some(t) = s.state::<T>(h) {
                    out.push((h, t));
                }
            }
        }
        out
    }

    /// A file's bytes on a shard's simulated disk.
    pub fn file(&self, shard: usize, path: &str) -> Option<&'v [u8]> {
        self.world
            .kernel
            .disks
            .get(shard)?
            .get(path)
            .map(Vec::as_slice)
    }

    /// Paths on a shard's disk, in order.
    pub fn files(&self, shard: usize) -> Vec<&'v str> {
        self.world
            .kernel
            .disks
            .get(shard)
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Open descriptors of a shard.
    pub fn open_fds(&self, shard: usize) -> usize {
        self.world.kernel.open_fds(shard as u8)
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_ticks(self.world.now)
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.world.phase
    }

    /// Whether nothing is left to happen: no runnable isolate, no timer, nothing in flight
    /// on the network, no I/O that can complete.
    pub fn quiescent(&self) -> bool {
        self.quiescent
    }

    /// Counters summed over all shards.
    pub fn counters_total(&self) -> Counters {
        let mut t = Counters::default();
        for s in self.shards {
            let c = s.counters();
            t.dispatches += c.dispatches;
            t.crashes += c.crashes;
            t.panics += c.panics;
            t.restarts += c.restarts;
            t.shard_recoveries += c.shard_recoveries;
            t.stale_deliveries += c.stale_deliveries;
            t.io_completed += c.io_completed;
            t.io_stale_completions += c.io_stale_completions;
            t.sends_remote += c.sends_remote;
            t.sends_local += c.sends_local;
            t.call_timeouts += c.call_timeouts;
            t.spawns += c.spawns;
            t.spawn_failures += c.spawn_failures;
        }
        t
    }
}

/// A client-side TCP socket of the scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClientSocket(SockId);

/// What a client socket is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientStatus {
    /// The handshake is in progress.
    Connecting,
    /// Connected.
    Connected,
    /// The connection attempt failed.
    Failed(IoError),
    /// The connection was reset.
    Reset,
    /// Closed by this client.
    Closed,
}

/// The result of a client read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientRead {
    /// This many bytes were read.
    Data(usize),
    /// Nothing to read yet.
    WouldBlock,
    /// The peer closed its side and everything was read.
    Eof,
    /// The read failed (reset, not connected).
    Error(IoError),
}

/// The scenario's view of the world during [`Scenario::poll`].
pub struct Env<'w> {
    pub(crate) world: &'w mut World,
    pub(crate) rng: &'w mut SimRng,
}

impl Env<'_> {
    /// The virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_ticks(self.world.now)
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.world.phase
    }

    /// The scenario's PRNG stream.
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }

    /// Records a scenario event in the trace (hashed; logged when recording).
    pub fn record(&mut self, words: &[u64], text: impl FnOnce() -> String) {
        self.world.trace.ev(Ev::Client, words, text);
    }

    /// Starts a TCP connection to `addr` from the outside world.
    pub fn connect(&mut self, addr: SocketAddr) -> ClientSocket {
        let id = self.world.kernel.new_socket(Node::Outside, false);
        self.world.tcp_connect(id, addr);
        self.world.trace.ev(Ev::Client, &[1, id.0 as u64], || {
            format!("connect #{} {addr}", id.0)
        });
        ClientSocket(id)
    }

    /// The socket's status.
    pub fn status(&self, s: ClientSocket) -> ClientStatus {
        let sock = self.world.kernel.sock(s.0);
        if sock.reset {
            return ClientStatus::Reset;
        }
        match sock.state {
            TcpState::Established { ready_at, .. } if ready_at <= self.world.now => {
                ClientStatus::Connected
            }
            TcpState::Established { .. } => ClientStatus::Connecting,
            TcpState::Failed { error, ready_at } if ready_at <= self.world.now => {
                ClientStatus::Failed(error)
            }
            TcpState::Failed { .. } => ClientStatus::Connecting,
            TcpState::Closed => ClientStatus::Closed,
            TcpState::Idle | TcpState::Listening { .. } => {
                ClientStatus::Failed(IoError::NotConnected)
            }
        }
    }

    /// Writes as much of `bytes` as the peer's receive buffer takes; `Ok(0)` when it is
    /// full (try again later).
    pub fn write(&mut self, s: ClientSocket, bytes: &[u8]) -> Result<usize, IoError> {
        let r = self.world.stream_send_id(s.0, bytes, None).unwrap_or(Ok(0));
        let d = crate::hash::digest64(bytes);
        let code = match r {
            Ok(n) => n as u64,
            Err(_) => u64::MAX,
        };
        self.world
            .trace
            .ev(Ev::Client, &[2, s.0.0 as u64, d, code], || {
                format!("write #{} {} bytes -> {r:?}", s.0.0, bytes.len())
            });
        r
    }

    /// Reads what has arrived.
    pub fn read(&mut self, s: ClientSocket, out: &mut [u8]) -> ClientRead {
        let now = self.world.now;
        let sock = self.world.kernel.sock(s.0);
        let r = if sock.reset {
            ClientRead::Error(IoError::ConnectionReset)
        } else {
            match sock.state {
                TcpState::Established { peer, ready_at } if ready_at <= now => {
                    let cut = self
                        .world
                        .partitioned(Node::Outside, self.world.kernel.sock(peer).owner);
                    if self.world.kernel.readable(s.0, now, cut) > 0 {
                        ClientRead::Data(self.world.kernel.take_bytes(s.0, now, out))
                    } else if self.world.kernel.at_eof(s.0, now, cut) {
                        ClientRead::Eof
                    } else {
                        ClientRead::WouldBlock
                    }
                }
                TcpState::Established { .. } => ClientRead::WouldBlock,
                TcpState::Failed { error, .. } => ClientRead::Error(error),
                _ => ClientRead::Error(IoError::NotConnected),
            }
        };
        if r != ClientRead::WouldBlock {
            let (code, d) = match r {
                ClientRead::Data(n) => (n as u64, crate::hash::digest64(&out[..n])),
                ClientRead::Eof => (0, 1),
                _ => (u64::MAX, 2),
            };
            self.world
                .trace
                .ev(Ev::Client, &[3, s.0.0 as u64, code, d], || {
                    format!("read #{} -> {r:?}", s.0.0)
                });
        }
        r
    }

    /// Closes the writing side (the server reads EOF after the data sent so far).
    pub fn shutdown_write(&mut self, s: ClientSocket) {
        let at = self.world.now + self.world.latency;
        let _ = self.world.shutdown_socket(s.0, ShutdownHow::Write, at);
        self.world.trace.ev(Ev::Client, &[4, s.0.0 as u64], || {
            format!("shutdown #{}", s.0.0)
        });
    }

    /// Closes the socket.
    pub fn close(&mut self, s: ClientSocket) {
        let at = self.world.now + self.world.latency;
        self.world.kernel.close_socket(s.0, at);
        self.world.trace.ev(Ev::Client, &[5, s.0.0 as u64], || {
            format!("close #{}", s.0.0)
        });
    }

    /// A file's bytes on a shard's disk.
    pub fn file(&self, shard: usize, path: &str) -> Option<&[u8]> {
        self.world
            .kernel
            .disks
            .get(shard)?
            .get(path)
            .map(Vec::as_slice)
    }
}
