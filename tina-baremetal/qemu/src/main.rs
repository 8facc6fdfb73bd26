//! Two-core bring-up of QEMU's `mps2-an521` (Arm SSE-200, two Cortex-M33) for Tina's bare-metal
//! CI run (SPEC §7).
//!
//! Core 0 boots through cortex-m-rt, starts the shared tick counter and a SysTick backstop,
//! then launches core 1 (`core1`). Both cores then run two tests:
//! 1. `shared_counter`: both cores increment one counter inside critical sections
//!    (`multicore_cs`, PRIMASK plus an inter-core spinlock); the total must be exact;
//! 2. `ping_pong`: thousands of 128-byte request/response round trips through two single-slot
//!    mailboxes (`mailbox`), idling with WFE and waking the peer with SEV.
//!
//! Results go to the host through semihosting: a line containing `PASS` and exit status 0, or a
//! `FAIL` line and exit status 1 (`report`), also on panic, fault or timeout (`deadline`).
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
mod mailbox;
mod multicore_cs;
mod ping_pong;
mod report;
mod shared_counter;

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
    deadline::start_backstop(peripherals.SYST);

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
    ping_pong::run_core0();

    hprintln!(
        "PASS: 2 cores, shared counter exact over {} increments, {} ping-pong round trips, {} ms",
        increment_count,
        ping_pong::ROUND_TRIP_COUNT,
        deadline::elapsed_ms()
    );
    report::exit(debug::EXIT_SUCCESS)
}

/// Core 1's program, entered from `core1::core1_reset` with its own stack.
fn core1_main() -> ! {
    let core_index = board::core_index();
    // Printed before checking in, so it never overlaps core 0's lines.
    hprintln!("core 1: up, CPU_IDENTITY = {}", core_index);
    CORE1_IDENTITY.store(core_index + 1, Ordering::Release);
    asm::dsb();
    asm::sev();

    shared_counter::run_core1();
    ping_pong::run_core1();

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
