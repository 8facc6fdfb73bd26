//! Bounds on every wait, so a hang ends the run with exit status 1 instead of spinning until
//! CI's outer timeout.
//!
//! Time comes from the shared tick counter in `board` (timer 0, MAINCLK), so both cores measure
//! against the same clock. Three layers:
//! 1. every wait loop (`wait_for`, the critical-section spinlock) checks its own deadline;
//! 2. the whole run has `RUN_TIMEOUT_MS`, checked by those loops, by each core's shard loop
//!    after every step, and by a SysTick interrupt on each core (the backstop for a core stuck
//!    outside a wait loop with interrupts enabled);
//! 3. `run.sh` wraps QEMU in `timeout 120` for anything else (e.g. a lockup with PRIMASK set).
//!
//! The same per-core SysTick, every `WAKE_TICK_PERIOD_MS` (one Tina tick), is also what bounds
//! an idle core's WFE on hardware: taking the interrupt ends the WFE, so a core waiting for a
//! timer deadline wakes at most one tick late even if no other core sends an event.

use cortex_m::asm;
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;

use crate::board::{self, MAINCLK_HZ};
use crate::report::fail;

const TICKS_PER_MS: u32 = MAINCLK_HZ / 1_000;

/// The whole run (boot to PASS) must finish within this, measured from `board::start_ticks()`.
pub const RUN_TIMEOUT_MS: u32 = 100_000;

/// Polls of the awaited condition between two WFEs (and two looks at the clock).
const POLLS_PER_WFE: u32 = 64;

/// Period of each core's SysTick: the run-deadline backstop and the bound on an idle WFE.
/// Equal to Tina's tick (`system::TICK_NS`), so a timer deadline is never missed by more.
pub const WAKE_TICK_PERIOD_MS: u32 = 1;

// The tick counter must not wrap within a run, and SysTick's reload is 24 bits.
const _: () = assert!((RUN_TIMEOUT_MS as u64) * (TICKS_PER_MS as u64) < u32::MAX as u64);
const _: () = assert!(WAKE_TICK_PERIOD_MS * TICKS_PER_MS <= 1 << 24);

/// A point in time, in ticks since `board::start_ticks()`.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at_ticks: u32,
}

impl Deadline {
    /// `timeout_ms` from now, capped at the run deadline.
    pub fn after_ms(timeout_ms: u32) -> Self {
        let at_ticks = board::ticks().saturating_add(timeout_ms.saturating_mul(TICKS_PER_MS));
        Deadline {
            at_ticks: at_ticks.min(RUN_TIMEOUT_MS * TICKS_PER_MS),
        }
    }

    /// True once the deadline has passed.
    pub fn expired(self) -> bool {
        board::ticks() >= self.at_ticks
    }
}

/// True once the whole run has overstayed `RUN_TIMEOUT_MS`.
pub fn run_expired() -> bool {
    board::ticks() >= RUN_TIMEOUT_MS * TICKS_PER_MS
}

/// Milliseconds since `board::start_ticks()`.
pub fn elapsed_ms() -> u32 {
    board::ticks() / TICKS_PER_MS
}

/// Polls `ready` until it yields a value, idling with WFE between polls; fails the run if
/// `timeout_ms` passes first. `what` names the awaited event in the failure message.
///
/// The other core must SEV after it makes `ready` true. Checking before each WFE is race-free:
/// an SEV sent between the check and the WFE sets the event register, and that WFE returns at
/// once. (QEMU runs WFE as a yield to the other vCPU and never sleeps.)
pub fn wait_for<T>(what: &str, timeout_ms: u32, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Deadline::after_ms(timeout_ms);
    loop {
        for _ in 0..POLLS_PER_WFE {
            if let Some(value) = ready() {
                return value;
            }
            core::hint::spin_loop();
        }
        if deadline.expired() {
            fail!("timed out after {} ms waiting for {}", timeout_ms, what);
        }
        asm::wfe();
    }
}

/// Starts this core's SysTick (SysTick is per core; each core passes its own): an interrupt
/// every `WAKE_TICK_PERIOD_MS` that runs `on_wake_tick`.
pub fn start_wake_tick(mut syst: SYST) {
    // QEMU's SSE-200 wires no SysTick reference clock: count the processor clock.
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(WAKE_TICK_PERIOD_MS * TICKS_PER_MS - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// The SysTick handler of both cores (core 1 reaches it through its own vector table). Taking
/// the interrupt has already ended a WFE; all that is left is the run-deadline backstop.
pub fn on_wake_tick() {
    if run_expired() {
        fail!("run exceeded {} ms (SysTick backstop)", RUN_TIMEOUT_MS);
    }
}

#[exception]
fn SysTick() {
    on_wake_tick();
}
