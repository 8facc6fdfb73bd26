//! Tina on both cores of QEMU's `mps2-an521` (Arm SSE-200, two Cortex-M33), the bare-metal
//! CI run of the bare-metal platform (multicore microcontrollers, no allocation, a multicore-safe
//! critical section): one tina-core shard per core, driven by `tina_baremetal::run`, with
//! isolates on the two cores talking through tina-core's SPSC rings.
//!
//! Core 0 boots through cortex-m-rt, starts the shared tick counter and its SysTick, wires the
//! rings (`wiring`) and hands core 1 its halves, then launches core 1 (`core1`). Both cores
//! then
//! 1. run the shared-counter test (`shared_counter`): both cores increment one counter inside
//!    critical sections (`multicore_cs`, PRIMASK plus an inter-core spinlock); the total must
//!    be exact (this is what the `broken-critical-section` variant fails);
//! 2. boot their shard from the static spec (`system`) and run it (`shards`): thousands of
//!    Call/Reply round trips between core 0's driver and core 1's ponger, a call that must
//!    time out (to an isolate that never answers), one to an incarnation that is gone (must
//!    time out too) and one that must be answered within its timeout (`isolates`); at the end
//!    core 0 checks both shards' isolate state and counters.
//!
//! Results go to the host through semihosting: a line containing `PASS` and exit status 0, or a
//! `FAIL` line and exit status 1 (`report`), also on panic, fault or timeout (`deadline`).
//! Tina's own log records go out as semihosting text (`platform::SemihostingLog`), or as defmt
//! frames with the `defmt` feature (`defmt_log`).
//!
//! Features `never-release-core1` and `broken-critical-section` build negative tests that must
//! fail; see README.md.
#![no_std]
#![no_main]

#[cfg(all(feature = "never-release-core1", feature = "broken-critical-section"))]
compile_error!(
    "enable one negative-test feature at a time: `never-release-core1` fails before the \
     critical section is ever exercised"
);

mod board;
mod core1;
mod deadline;
#[cfg(feature = "defmt")]
mod defmt_log;
mod isolates;
mod multicore_cs;
mod platform;
mod report;
mod shards;
mod shared_counter;
mod system;
mod wiring;

use core::sync::atomic::Ordering;

use cortex_m::asm;
use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use portable_atomic::AtomicU32;

use report::fail;

/// How long core 0 waits for core 1 to come out of reset and check in.
const CORE1_START_TIMEOUT_MS: u32 = 5_000;

/// `CORE1_IDENTITY` before core 1 checks in; afterwards it holds core 1's CPU_IDENTITY + 1.
const CORE1_NOT_STARTED: u32 = 0;
static CORE1_IDENTITY: AtomicU32 = AtomicU32::new(CORE1_NOT_STARTED);

#[entry]
fn main() -> ! {
    board::start_ticks();
    let peripherals =
        cortex_m::Peripherals::take().unwrap_or_else(|| fail!("core peripherals already taken"));
    deadline::start_wake_tick(peripherals.SYST);

    let core_index = board::core_index();
    hprintln!("core 0: up, CPU_IDENTITY = {}", core_index);
    if core_index != 0 {
        fail!(
            "the boot core reads CPU_IDENTITY {} instead of 0",
            core_index
        );
    }
    if !board::core1_is_waiting() {
        fail!("core 1 is not held by CPUWAIT at boot");
    }

    // Core 0 wires every ring before core 1 exists: core 1 can only take its own halves.
    let [core0_channels, core1_channels] = wiring::wire_rings();
    if wiring::CORE1_CHANNELS.put(core1_channels).is_err() {
        fail!("core 1's channels were handed over twice");
    }

    if cfg!(feature = "never-release-core1") {
        hprintln!("core 0: negative test `never-release-core1`: core 1 stays in CPUWAIT");
    } else {
        core1::launch();
    }
    let core1_index =
        deadline::wait_for(
            "core 1 to start",
            CORE1_START_TIMEOUT_MS,
            || match CORE1_IDENTITY.load(Ordering::Acquire) {
                CORE1_NOT_STARTED => None,
                tag => Some(tag - 1),
            },
        );
    if core1_index != 1 {
        fail!(
            "the second core reads CPU_IDENTITY {} instead of 1",
            core1_index
        );
    }
    hprintln!(
        "core 0: core 1 checked in after {} ms",
        deadline::elapsed_ms()
    );

    let increment_count = shared_counter::run_core0();
    let summary = shards::run_core0(core0_channels);

    hprintln!(
        "ping-pong: {} Call/Reply round trips between shard 0 and shard 1 in {} ms",
        summary.round_trips,
        summary.ping_pong_ms
    );
    hprintln!(
        "calls: silent isolate timed out after {} ms, gone incarnation refused after {} ms \
         (timeout {} ms); prompt call answered in {} ms (timeout {} ms)",
        summary.silent_timeout_ms,
        summary.stale_refused_ms,
        isolates::EXPIRING_CALL_TIMEOUT_MS,
        summary.prompt_reply_ms,
        isolates::PROMPT_CALL_TIMEOUT_MS
    );
    hprintln!(
        "PASS: 2 cores, 2 Tina shards, {} round trips through the rings, 1 call timed out, 1 \
         refused and 1 answered as expected, shared counter exact over {} increments, {} ms",
        summary.round_trips,
        increment_count,
        deadline::elapsed_ms()
    );
    report::exit(debug::EXIT_SUCCESS)
}

/// Core 1's program, entered from `core1::core1_reset` with its own stack.
fn core1_main() -> ! {
    let core_index = board::core_index();
    // Printed before checking in, so it never overlaps core 0's lines.
    hprintln!("core 1: up, CPU_IDENTITY = {}", core_index);
    // SAFETY: the SCS (SysTick included) is banked per core, so this is core 1's own SysTick,
    // and nothing else on core 1 touches it. `steal` also stores `true` to cortex-m's plain
    // `TAKEN` flag; core 0 stored the same value in `Peripherals::take` before it released
    // core 1 (ordered by the launch's DSB) and never accesses the flag again, so the two
    // accesses cannot race.
    let peripherals = unsafe { cortex_m::Peripherals::steal() };
    deadline::start_wake_tick(peripherals.SYST);
    CORE1_IDENTITY.store(core_index + 1, Ordering::Release);
    asm::dsb();
    asm::sev();

    shared_counter::run_core1();
    shards::run_core1();

    // Done: idle until core 0 ends the run.
    loop {
        asm::wfe();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    fail!("HardFault at pc {:#010x}", frame.pc())
}

#[exception]
unsafe fn DefaultHandler(irq_number: i16) {
    fail!("unexpected exception or interrupt {}", irq_number)
}
