//! The echo scenario: [`crate::echo`]'s listener and connections on every shard, serving
//! simulated clients over simulated TCP.
//!
//! Every shard runs one `Listener` bound to the same service address with `SO_REUSEPORT`;
//! the simulated kernel hands each new connection to one of them. Each client runs sessions
//! back to back: connect, send a random number of random bytes in random chunks while reading
//! the echo, half-close, read until EOF, and check that it got back **exactly** what it sent.
//! Sometimes (faulty phase only) a session starts with the poison byte, which makes the
//! connection's handler panic: the client must then see its connection end, and nothing
//! else may be affected.
//!
//! Faults may break sessions (resets, crashes, partitions that outlast nothing — TCP holds
//! data until the heal); a broken session is counted, never accepted as verified. The goal:
//! after faults stop, every client completes a fresh verified session. The checker: no client
//! ever received a byte that differs from what it sent at that position.

use crate::echo::{Connection, ListenArgs, Listener, POISON_BYTE};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use tina_core::{
    ChildSpec, GroupSpec, Instant, Restart, ShardConfig, ShardSpec, SystemSpec, TypeSpec,
};
use tina_sim::cli::ScenarioOptions;
use tina_sim::{
    ClientRead, ClientSocket, ClientStatus, Env, FaultSet, Phase, Report, Scenario, SimConfig,
    SimView, TypeWatch, Wake, watch,
};

/// Shards in the echo system.
pub const SHARD_COUNT: usize = 3;
/// Simulated clients.
pub const CLIENT_COUNT: usize = 12;
/// The service address (a documentation range: nothing real).
pub const SERVICE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7000);
/// The fault kinds the echo system exercises: all of them (no cross-shard messages flow,
/// but drops — as retransmission delays —, delays and partitions apply to TCP between the
/// clients and the shards).
pub const FAULTS: FaultSet = FaultSet::ALL;
/// Ticks without progress after which a client gives a session up.
const STALL_TICKS: u64 = 3_000;

/// The per-shard sizes of the echo system.
pub fn shard_config() -> ShardConfig {
    ShardConfig {
        message_pool_size: 256,
        timer_entries: 64,
        timer_spokes: 64,
        timer_expirations_per_tick_max: 64,
        io_buffer_count: 48,
        io_buffer_size: 2048,
        io_submissions_per_tick_max: 48,
        log_entries: 64,
        transfer_buffer_count: 1,
        transfer_buffer_size: 128,
        ..ShardConfig::DEFAULT
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting until `at` to connect.
    Waiting {
        at: u64,
    },
    Connecting,
    Talking,
    /// Half-closed; reading the rest of the echo.
    Draining,
}

struct Client {
    stage: Stage,
    socket: Option<ClientSocket>,
    sent: Vec<u8>,
    to_send: usize,
    received: usize,
    poison: bool,
    progress_at: u64,
    liveness_session: bool,
    verified: u64,
    verified_in_liveness: u64,
    broken: u64,
    refused: u64,
    poisoned_ok: u64,
}

/// The echo scenario's clients and checks.
pub struct EchoScenario {
    clients: Vec<Client>,
    corrupted: Option<String>,
    read_buf: Vec<u8>,
    chunk: Vec<u8>,
}

impl Default for EchoScenario {
    fn default() -> Self {
        EchoScenario::new()
    }
}

impl EchoScenario {
    /// Fresh clients.
    pub fn new() -> EchoScenario {
        EchoScenario {
            clients: (0..CLIENT_COUNT)
                .map(|i| Client {
                    stage: Stage::Waiting {
                        at: 2 + i as u64 * 3,
                    },
                    socket: None,
                    sent: Vec::new(),
                    to_send: 0,
                    received: 0,
                    poison: false,
                    progress_at: 0,
                    liveness_session: false,
                    verified: 0,
                    verified_in_liveness: 0,
                    broken: 0,
                    refused: 0,
                    poisoned_ok: 0,
                })
                .collect(),
            corrupted: None,
            read_buf: vec![0; 4096],
            chunk: Vec::new(),
        }
    }

    /// Sessions verified byte for byte, over all clients.
    pub fn verified(&self) -> u64 {
        self.clients.iter().map(|c| c.verified).sum()
    }
}

fn end_session(c: &mut Client, env: &mut Env<'_>, verified: bool) {
    if let Some(s) = c.socket.take() {
        env.close(s);
    }
    let now = env.now().ticks();
    if verified {
        c.verified += 1;
        if c.liveness_session {
            c.verified_in_liveness += 1;
        }
    } else if c.poison {
        c.poisoned_ok += 1;
    } else {
        c.broken += 1;
    }
    let pause = env.rng().range(0, 40);
    c.stage = Stage::Waiting {
        at: now + 1 + pause,
    };
}

impl Client {
    /// Starts a session at `now`: picks its length (and, in the faulty phase, sometimes the
    /// poison byte) and connects.
    fn start_session(&mut self, env: &mut Env<'_>, now: u64) {
        let liveness = env.phase() == Phase::Liveness;
        self.poison = !liveness && env.rng().below(40) == 0;
        self.to_send = env.rng().range(1, 6_000) as usize;
        self.sent.clear();
        self.received = 0;
        self.progress_at = now;
        self.liveness_session = liveness;
        self.socket = Some(env.connect(SERVICE));
        self.stage = Stage::Connecting;
    }

    /// Waits for the connection: `None` once connected (talk on), else when to come back (a
    /// refused connection is counted and retried after a pause).
    fn connecting(&mut self, env: &mut Env<'_>, now: u64) -> Option<Wake> {
        let Some(s) = self.socket else {
            return Some(Wake::Busy);
        };
        match env.status(s) {
            ClientStatus::Connecting => Some(Wake::Idle),
            ClientStatus::Connected => {
                self.stage = Stage::Talking;
                None
            }
            _ => {
                self.refused += 1;
                env.close(s);
                self.socket = None;
                let pause = env.rng().range(5, 60);
                self.stage = Stage::Waiting { at: now + pause };
                Some(Wake::At(Instant::from_ticks(now + pause)))
            }
        }
    }

    /// Reads whatever came back, checking every byte against what client `i` sent (the
    /// first difference goes to `corrupted`). `false`: the session ended (EOF or error).
    fn read_echo(
        &mut self,
        i: usize,
        s: ClientSocket,
        env: &mut Env<'_>,
        buf: &mut [u8],
        corrupted: &mut Option<String>,
    ) -> bool {
        let now = env.now().ticks();
        loop {
            match env.read(s, buf) {
                ClientRead::Data(n) => {
                    let expected = self.sent.get(self.received..self.received + n);
                    if expected != Some(&buf[..n]) && corrupted.is_none() {
                        *corrupted = Some(format!(
                            "client {i}: {n} bytes at offset {} differ from what it sent ({} sent)",
                            self.received,
                            self.sent.len()
                        ));
                    }
                    self.received += n;
                    self.progress_at = now;
                }
                ClientRead::WouldBlock => return true,
                ClientRead::Eof => {
                    let complete = self.stage == Stage::Draining
                        && self.received == self.sent.len()
                        && !self.poison;
                    end_session(self, env, complete);
                    return false;
                }
                ClientRead::Error(_) => {
                    end_session(self, env, false);
                    return false;
                }
            }
        }
    }

    /// Sends the next chunk of random bytes (never the poison byte, unless this is a poison
    /// session's first byte), keeping a bounded lead over what came back. `false`: the
    /// write failed and the session ended.
    fn send_chunk(
        &mut self,
        s: ClientSocket,
        env: &mut Env<'_>,
        now: u64,
        chunk: &mut Vec<u8>,
    ) -> bool {
        let lead = self.sent.len() - self.received;
        if lead >= 16_000 {
            return true;
        }
        let n = (env.rng().range(1, 1_500) as usize).min(self.to_send - self.sent.len());
        let start = self.sent.len();
        chunk.resize(n, 0);
        for part in chunk.chunks_mut(8) {
            let word = env.rng().next_u64().to_le_bytes();
            for (b, w) in part.iter_mut().zip(word) {
                *b = w % 0xFF; // never the poison byte
            }
        }
        if self.poison && start == 0 {
            chunk[0] = POISON_BYTE;
        }
        match env.write(s, chunk) {
            Ok(k) => {
                self.sent.extend_from_slice(&chunk[..k]);
                if k > 0 {
                    self.progress_at = now;
                }
                true
            }
            Err(_) => {
                end_session(self, env, false);
                false
            }
        }
    }
}

impl EchoScenario {
    /// Moves client `i` through its session's stages as far as it can go now.
    fn drive(&mut self, i: usize, env: &mut Env<'_>) -> Wake {
        let now = env.now().ticks();
        loop {
            let c = &mut self.clients[i];
            match c.stage {
                Stage::Waiting { at } => {
                    if now < at {
                        return Wake::At(Instant::from_ticks(at));
                    }
                    c.start_session(env, now);
                }
                Stage::Connecting => {
                    if let Some(wake) = c.connecting(env, now) {
                        return wake;
                    }
                }
                Stage::Talking | Stage::Draining => return self.talk(i, env, now),
            }
        }
    }

    /// A connected session: read and check the echo, send more (or half-close once all is
    /// sent), and give the session up when it stalls.
    fn talk(&mut self, i: usize, env: &mut Env<'_>, now: u64) -> Wake {
        let c = &mut self.clients[i];
        let Some(s) = c.socket else { return Wake::Busy };
        if !c.read_echo(i, s, env, &mut self.read_buf, &mut self.corrupted) {
            return Wake::Busy;
        }
        if c.stage == Stage::Talking {
            if c.sent.len() < c.to_send {
                if !c.send_chunk(s, env, now, &mut self.chunk) {
                    return Wake::Busy;
                }
            } else {
                env.shutdown_write(s);
                c.stage = Stage::Draining;
            }
        }
        if now.saturating_sub(c.progress_at) > STALL_TICKS {
            end_session(c, env, false);
            return Wake::Busy;
        }
        if c.stage == Stage::Talking && c.sent.len() < c.to_send {
            Wake::Busy
        } else {
            Wake::At(Instant::from_ticks(c.progress_at + STALL_TICKS + 1))
        }
    }
}

impl Scenario for EchoScenario {
    fn faults(&self) -> FaultSet {
        FAULTS
    }

    fn watched_types(&self) -> Vec<TypeWatch> {
        vec![
            watch::<Listener>("Listener"),
            watch::<Connection>("Connection"),
        ]
    }

    fn poll(&mut self, env: &mut Env<'_>) -> Wake {
        let mut wake = Wake::Idle;
        for i in 0..self.clients.len() {
            let w = self.drive(i, env);
            wake = match (wake, w) {
                (Wake::Busy, _) | (_, Wake::Busy) => Wake::Busy,
                (Wake::At(a), Wake::At(b)) => Wake::At(a.min(b)),
                (Wake::At(a), Wake::Idle) | (Wake::Idle, Wake::At(a)) => Wake::At(a),
                (Wake::Idle, Wake::Idle) => Wake::Idle,
            };
        }
        wake
    }

    fn check(&mut self, view: &SimView<'_, '_>) -> Result<(), String> {
        if let Some(c) = &self.corrupted {
            return Err(c.clone());
        }
        for s in 0..view.shard_count() {
            let live = view.shard(s).handles::<Connection>().count();
            if live > 32 {
                return Err(format!(
                    "shard {s}: {live} connections, over the arena capacity"
                ));
            }
        }
        Ok(())
    }

    fn goal(&mut self, _view: &SimView<'_, '_>) -> bool {
        self.clients.iter().all(|c| c.verified_in_liveness > 0)
    }

    fn summary(&self, view: &SimView<'_, '_>) -> String {
        let sum = |f: fn(&Client) -> u64| self.clients.iter().map(f).sum::<u64>();
        let accepted: u64 = view
            .isolates::<Listener>()
            .iter()
            .map(|(_, l)| l.accepted)
            .sum();
        format!(
            "sessions verified={} broken={} refused={} poisoned={} (live listeners accepted {accepted})",
            sum(|c| c.verified),
            sum(|c| c.broken),
            sum(|c| c.refused),
            sum(|c| c.poisoned_ok),
        )
    }
}

/// Runs the echo scenario.
pub fn run(config: &SimConfig, _options: &ScenarioOptions) -> Report {
    let types = [
        TypeSpec::of::<Listener>("listener").capacity(1),
        TypeSpec::of::<Connection>("connection")
            .capacity(32)
            .mailbox_capacity(8),
    ];
    let children = [ChildSpec::isolate::<Listener>(
        &ListenArgs::new(SERVICE, 8).with_poison_trigger(),
        Restart::Permanent,
    )];
    let root = GroupSpec::one_for_one(&children).dynamic(32);
    let shards = [ShardSpec { root }; SHARD_COUNT];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.shard = shard_config();
    let mut scenario = EchoScenario::new();
    tina_sim::run(&spec, config, &mut scenario)
}
