//! # tina-baremetal — one shard per core on multicore microcontrollers
//!
//! Each core runs the same loop around `tina_core::Shard::step`:
//!
//! ```text
//!   loop {
//!       report = shard.step(board clock)          // now() and wall_time() (None unless
//!                                                 // the board has an RTC); drains inbound
//!                                                 // rings, dispatches,
//!                                                 // publishes outbound rings (waking peers)
//!       if report says stop: return
//!       if no work remains:                       // tina_core::sleep::sleep_unless:
//!           announce sleep on the link            //   "I am asleep", SeqCst fence
//!           if nothing arrived meanwhile:         //   re-check the inbound rings
//!               board.wait_for_event(next_deadline)   // WFE on Cortex-M, WFI on RISC-V…
//!           awake again                           //   always, whichever way it went
//!   }
//! ```
//!
//! The sleep protocol is tina-core's sleep guard ([`tina_core::sleep::sleep_unless`]), so the
//! loop cannot block without announcing and re-checking first.
//!
//! A publish to a sleeping core's ring calls [`Board::send_event`] for it (SEV on Cortex-M): the
//! wake-up protocol is [`tina_core::transport`]'s, the same one the Linux driver uses with
//! eventfds. Cores never share a shard; they share only the rings (N×(N−1) single-producer
//! single-consumer rings of 128-byte envelopes, plain loads and stores, so they work on cores
//! without compare-and-swap such as the RP2040's Cortex-M0+) and one [`ShardLink`] per core.
//!
//! ## Storage
//!
//! Nothing is allocated. The board program puts each core's ring memory (128-byte aligned, sized
//! by [`tina_core::ring_memory_required`]), the shard regions and the supervision spec in
//! `static`s (e.g. with `static_cell`); [`wire`] carves every core's inbound rings from its ring
//! memory with tina-core's ring wiring ([`tina_core::wiring::carve_inbound_rings`], the same
//! code and layout the Linux driver uses) and the board program hands each core its
//! [`CoreChannels`] exactly once through a [`Handoff`] — so the single-producer /
//! single-consumer rule is enforced by ownership: a producer half exists once and moves to
//! exactly one core.
//!
//! ## Layout of this crate
//!
//! - [`Board`]: what a core offers (its id, the time, wait for an event, send an event);
//! - [`CorePlatform`]: a core's platform, tina-core's [`Bundle`] of the ring transport (woken by
//!   [`BoardWake`]), no I/O, direct calls and a log sink ([`BoardLog`]), built by
//!   [`core_platform`];
//! - [`run`]: the per-core loop above; [`Exit`]: why it returned;
//! - [`wire`] and [`CoreChannels`]: every core's ring halves; [`Handoff`]: moves a value to
//!   another core once;
//! - `host` (feature `host`): a board whose cores are threads, for tests.
//!
//! ## What this crate never does (and why you must not either)
//!
//! It uses the `critical-section` crate but never registers an implementation and never
//! enables `critical-section-single-core` (cortex-m) or `unsafe-assume-single-core`
//! (portable-atomic). Those are sound only when a single core exists: on a multicore chip,
//! masking interrupts on one core does not stop the other, so two cores inside "critical
//! sections" race. The board program provides a multicore-safe implementation instead (RP2040:
//! a SIO hardware spinlock; the QEMU `mps2-an521` board in `tina-baremetal/qemu`: a spinlock
//! with owner tracking plus PRIMASK).
//!
//! ## Porting to a real board (e.g. RP2040)
//!
//! 1. Implement [`Board`]: `core_id` from the SIO `CPUID` register, `now` from the 1 MHz
//!    timer divided to your tick, `wait_for_event` as `WFE` (after arming an alarm for the
//!    deadline), `send_event` as `SEV`.
//! 2. Provide `critical_section::set_impl!` with a SIO spinlock (the `rp2040-hal` crate's
//!    `critical-section-impl` feature does this correctly for both cores).
//! 3. Launch core 1 with the bootrom FIFO protocol (`rp2040-hal`'s `multicore::Core::spawn`)
//!    and give it a stack; in it, take its channels from the [`Handoff`] and call [`run`].
//! 4. Size the spec for your RAM: `Shard::memory_required` tells the exact bytes per shard,
//!    `tina_core::ring_memory_required` those of each core's inbound rings.
//!
//! ## Host support
//!
//! With the `host` feature, `host::ThreadBoard` makes each "core" a thread (wait = park,
//! event = unpark), so the driver loop itself is tested by `cargo test` on a PC.

#![no_std]
#![deny(unsafe_code)]
#![deny(clippy::too_many_lines)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "host")]
pub mod host;

use core::cell::RefCell;
use core::mem::MaybeUninit;
use critical_section::Mutex;
use tina_core::log::{LogRecord, LogSink};
use tina_core::platform::{Bundle, DirectTrap, NoIo};
use tina_core::ring::{Consumer, Producer};
use tina_core::sleep::sleep_unless;
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::wiring::{WiringError, carve_inbound_rings};
use tina_core::{
    Clock, Instant, Message, Shard, ShardId, ShardStatus, StepReport, SystemSpec, WallTime,
};

/// What a core offers the driver.
pub trait Board {
    /// This core's index (0-based, also its shard id).
    fn core_id(&self) -> usize;
    /// The current tick (the spec's `tick_ns` resolution).
    fn now(&self) -> Instant;
    /// The calendar time, if the board has a real-time clock (handlers read it with
    /// `Ctx::wall_time`). None by default.
    fn wall_time(&self) -> Option<WallTime> {
        None
    }
    /// Sleeps until an event arrives or, if given, the deadline passes. May return early
    /// (spuriously); the loop re-checks everything.
    fn wait_for_event(&self, deadline: Option<Instant>);
    /// Wakes `core` if it is waiting (SEV on Cortex-M wakes all cores; that is allowed).
    fn send_event(&self, core: usize);
}

/// The ring transport's waker on a board: an event to the sleeping core.
pub struct BoardWake<'b, B: Board>(pub &'b B);

impl<B: Board> Wake for BoardWake<'_, B> {
    fn wake(&self, peer: ShardId) {
        self.0.send_event(usize::from(peer.0));
    }
}

/// A log sink on bare metal: `defmt` when the feature is on, otherwise records are dropped
/// (counted by the shard only when its own ring overflows).
#[derive(Clone, Copy, Debug, Default)]
pub struct BoardLog;

impl LogSink for BoardLog {
    fn write(&mut self, _shard: ShardId, _record: &LogRecord) {
        #[cfg(feature = "defmt")]
        defmt::info!(
            "[shard {} t{}] {}",
            _shard.0,
            _record.tick.ticks(),
            _record.text()
        );
    }
}

/// The platform of one core: the core's four-part bundle of the ring transport, no I/O,
/// direct calls (no unwinding on bare metal), and a log sink. Build it with [`core_platform`].
pub type CorePlatform<'r, 'b, B, L = BoardLog> =
    Bundle<RingTransport<'r, BoardWake<'b, B>>, NoIo, DirectTrap, L>;

/// The platform of the core that owns `channels`: its ring transport (woken by
/// [`Board::send_event`]) over `links`, one [`ShardLink`] per shard shared by all cores.
pub fn core_platform<'r, 'b, B: Board, L: LogSink, const N: usize>(
    board: &'b B,
    channels: &'r mut CoreChannels<'r, N>,
    links: &'r [ShardLink],
    log: L,
) -> CorePlatform<'r, 'b, B, L> {
    let me = ShardId(channels.core as u8);
    Bundle {
        transport: RingTransport::new(
            me,
            &mut channels.outbound,
            &mut channels.inbound,
            links,
            &mut channels.seen,
            BoardWake(board),
        ),
        io: NoIo,
        trap: DirectTrap,
        log,
    }
}

/// Why [`run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exit {
    /// The caller's `until` said stop.
    Done,
    /// The shard finished a shutdown.
    Stopped,
    /// The shard was quarantined (or asked for an abort).
    Quarantined,
}

/// Runs one core's shard until `until` returns true for a step's report, the shard stops,
/// or it is quarantined. Sleeps with [`Board::wait_for_event`] whenever no work remains.
pub fn run<B: Board, L: LogSink>(
    board: &B,
    shard: &mut Shard<'_, CorePlatform<'_, '_, B, L>>,
    mut until: impl FnMut(&mut Shard<'_, CorePlatform<'_, '_, B, L>>, &StepReport) -> bool,
) -> Exit {
    loop {
        let report = shard.step(Clock::new(board.now(), board.wall_time()));
        if until(shard, &report) {
            return Exit::Done;
        }
        match report.status {
            ShardStatus::Stopped => return Exit::Stopped,
            ShardStatus::Quarantined | ShardStatus::AbortRequested => return Exit::Quarantined,
            ShardStatus::Running | ShardStatus::ShuttingDown => {}
        }
        if !report.work_remaining {
            // The core's sleep guard: announce, re-check the rings, wait, awake.
            sleep_unless(
                shard,
                |_| false,
                |_| board.wait_for_event(report.next_deadline),
            );
        }
    }
}

/// The ring halves and status scratch one core owns.
pub struct CoreChannels<'r, const N: usize> {
    /// This core's index.
    pub core: usize,
    /// `outbound[j]`: producer of ring `core → j`.
    pub outbound: [Option<Producer<'r, Message>>; N],
    /// `inbound[j]`: consumer of ring `j → core`.
    pub inbound: [Option<Consumer<'r, Message>>; N],
    /// Status sequence numbers seen (transport scratch).
    pub seen: [u32; N],
}

/// Why [`wire`] could not build the cores' channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WireError {
    /// The spec's shard count is not the number of cores.
    CoreCount {
        /// Cores wired.
        cores: usize,
        /// Shards in the spec.
        shards: usize,
    },
    /// A core's ring memory could not hold its inbound rings (or is misaligned).
    Rings(WiringError),
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::CoreCount { cores, shards } => write!(
                f,
                "{cores} cores wired for a spec of {shards} shards (one shard per core)"
            ),
            WireError::Rings(e) => e.fmt(f),
        }
    }
}

/// Carves every core's inbound rings from its ring memory (`ring_memory[c]`: 128-byte aligned,
/// at least [`tina_core::ring_memory_required`] bytes for shard `c`) with the core's
/// [`carve_inbound_rings`], and splits them into each core's halves: every producer and every
/// consumer ends up in exactly one core's bundle.
pub fn wire<'r, const N: usize>(
    spec: &SystemSpec<'_>,
    ring_memory: [&'r mut [MaybeUninit<u8>]; N],
) -> Result<[CoreChannels<'r, N>; N], WireError> {
    if spec.shards.len() != N {
        return Err(WireError::CoreCount {
            cores: N,
            shards: spec.shards.len(),
        });
    }
    let mut cores: [CoreChannels<'r, N>; N] = core::array::from_fn(|core| CoreChannels {
        core,
        outbound: core::array::from_fn(|_| None),
        inbound: core::array::from_fn(|_| None),
        seen: [0; N],
    });
    for (to, bytes) in ring_memory.into_iter().enumerate() {
        carve_inbound_rings(
            spec,
            ShardId(to as u8),
            bytes,
            |from, producer, consumer| {
                let from = usize::from(from.0);
                cores[from].outbound[to] = Some(producer);
                cores[to].inbound[from] = Some(consumer);
            },
        )
        .map_err(WireError::Rings)?;
    }
    Ok(cores)
}

/// Hands a value from one core to another exactly once (e.g. core 0 wires the rings and
/// puts core 1's channels here; core 1 takes them after it starts). Uses the board's
/// `critical-section` implementation, which must exclude the other core.
pub struct Handoff<T> {
    cell: Mutex<RefCell<Option<T>>>,
}

impl<T> Handoff<T> {
    /// An empty handoff (usable in a `static`).
    pub const fn new() -> Handoff<T> {
        Handoff {
            cell: Mutex::new(RefCell::new(None)),
        }
    }

    /// Puts the value; gives it back if one is already waiting.
    pub fn put(&self, value: T) -> Result<(), T> {
        critical_section::with(|cs| {
            let mut slot = self.cell.borrow_ref_mut(cs);
            if slot.is_some() {
                return Err(value);
            }
            *slot = Some(value);
            Ok(())
        })
    }

    /// Takes the value if it is there.
    pub fn take(&self) -> Option<T> {
        critical_section::with(|cs| self.cell.borrow_ref_mut(cs).take())
    }
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Handoff::new()
    }
}
