//! Test 1: both cores increment one counter, each increment inside a critical section; the
//! total must come out exactly as the sum of the increments the two cores made.
//!
//! Each increment reads the counter, spins `RACE_WINDOW_SPIN_COUNT` times, then writes the value
//! plus one. The spin makes the read-modify-write window most of each iteration, so if the
//! critical section did not exclude the other core (`broken-critical-section`), the cores' windows
//! overlap often and increments are lost; with the multicore critical section the lock
//! serialises them and none is.
//!
//! Each core runs for at least `INCREMENT_DURATION_MIN_MS`, not just a fixed count: QEMU's
//! single-threaded TCG runs one vCPU at a time and switches every 100 ms of host time, so the
//! two cores only interleave (and a broken critical section only shows) if both are still
//! incrementing across several switches, however fast the host is.

use core::cell::Cell;
use core::hint::black_box;
use core::sync::atomic::Ordering;

use cortex_m::asm;
use cortex_m_semihosting::hprintln;
use critical_section::Mutex;
use portable_atomic::{AtomicBool, AtomicU32};

use crate::deadline;
use crate::multicore_cs;
use crate::report::fail;

/// Each core makes at least this many increments...
const INCREMENT_COUNT_MIN: u32 = 20_000;
/// ...and keeps going until at least this long after the start.
const INCREMENT_DURATION_MIN_MS: u32 = 1_000;
/// Increments between two looks at the clock (an MMIO read).
const INCREMENTS_PER_CLOCK_CHECK: u32 = 1_024;
/// Busy-wait iterations between reading and writing the counter (inside the critical section).
const RACE_WINDOW_SPIN_COUNT: u32 = 400;
/// How long core 0 waits for core 1 to finish its share.
const CORE1_DONE_TIMEOUT_MS: u32 = 45_000;

static SHARED_COUNTER: Mutex<Cell<u32>> = Mutex::new(Cell::new(0));
/// Set by core 0 when both cores may start incrementing.
static START: AtomicBool = AtomicBool::new(false);
/// How many increments core 1 made; 0 until it is done.
static CORE1_INCREMENT_COUNT: AtomicU32 = AtomicU32::new(0);

/// Core 0's side: start both cores, increment, wait for core 1, check the total. Returns the
/// total number of increments.
pub fn run_core0() -> u32 {
    let start_ms = deadline::elapsed_ms();
    START.store(true, Ordering::Release);
    asm::dsb();
    asm::sev();
    let core0_increment_count = increment_many(start_ms);
    let core1_increment_count = deadline::wait_for(
        "core 1 to finish the shared counter",
        CORE1_DONE_TIMEOUT_MS,
        || match CORE1_INCREMENT_COUNT.load(Ordering::Acquire) {
            0 => None,
            count => Some(count),
        },
    );
    let expected = core0_increment_count + core1_increment_count;
    let total = critical_section::with(|cs| SHARED_COUNTER.borrow(cs).get());
    if total != expected {
        fail!(
            "shared counter is {} but the cores made {} + {} = {} increments: {} lost, the \
             critical section does not exclude the other core",
            total,
            core0_increment_count,
            core1_increment_count,
            expected,
            expected.saturating_sub(total)
        );
    }
    hprintln!(
        "shared counter: {} = {} + {} increments in {} ms, {} contended lock acquires",
        total,
        core0_increment_count,
        core1_increment_count,
        deadline::elapsed_ms() - start_ms,
        multicore_cs::contended_acquire_count()
    );
    total
}

/// Core 1's side: wait for the start, increment, report done.
pub fn run_core1() {
    deadline::wait_for(
        "core 0 to start the shared counter",
        CORE1_DONE_TIMEOUT_MS,
        || START.load(Ordering::Acquire).then_some(()),
    );
    let increment_count = increment_many(deadline::elapsed_ms());
    CORE1_INCREMENT_COUNT.store(increment_count, Ordering::Release);
    asm::dsb();
    asm::sev();
}

/// Increments the shared counter at least `INCREMENT_COUNT_MIN` times and until
/// `INCREMENT_DURATION_MIN_MS` after `start_ms`; returns how many increments it made.
fn increment_many(start_ms: u32) -> u32 {
    let mut increment_count: u32 = 0;
    loop {
        for _ in 0..INCREMENTS_PER_CLOCK_CHECK {
            critical_section::with(|cs| {
                let counter = SHARED_COUNTER.borrow(cs);
                let value = counter.get();
                for spin_index in 0..RACE_WINDOW_SPIN_COUNT {
                    black_box(spin_index);
                }
                counter.set(value + 1);
            });
        }
        increment_count += INCREMENTS_PER_CLOCK_CHECK;
        let elapsed_ms = deadline::elapsed_ms() - start_ms;
        if increment_count >= INCREMENT_COUNT_MIN && elapsed_ms >= INCREMENT_DURATION_MIN_MS {
            return increment_count;
        }
    }
}
