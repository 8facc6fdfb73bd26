//! The few registers of QEMU's `mps2-an521` (Arm SSE-200 subsystem) this program touches.
//!
//! Every address below was checked against QEMU's model of the board, not only the Arm
//! documents: `hw/arm/armsse.c` (device placement), `hw/misc/iotkit-sysctl.c` (INITSVTOR1,
//! CPUWAIT) and `hw/misc/armsse-cpuid.c` (CPU_IDENTITY). README.md records what was found.
//!
//! This module owns all of the program's MMIO; everything else calls the safe functions here.

use core::ptr;

use cortex_m::asm;

/// CPU_IDENTITY.CPUID: reads 0 on core 0 and 1 on core 1. QEMU maps a separate device at this
/// address into each core's private view (`cpu_container[i]`), so the same load answers
/// differently on each core.
const CPU_IDENTITY_CPUID: *const u32 = 0x4001_F000 as *const u32;

/// The SSE-200 system control element, Secure-only (there is no Non-secure alias).
const SYSCTL_BASE: usize = 0x5002_1000;
/// Initial Secure VTOR of core 1, latched into the core when it leaves reset.
const SYSCTL_INITSVTOR1: *mut u32 = (SYSCTL_BASE + 0x114) as *mut u32;
/// Bit n holds core n in reset; QEMU resets it to `0b10` (core 1 waits). Clearing a set bit
/// powers the core on and resets it, which loads SP and PC from its INITSVTOR.
const SYSCTL_CPUWAIT: *mut u32 = (SYSCTL_BASE + 0x118) as *mut u32;
const CPUWAIT_CORE1_MASK: u32 = 1 << 1;

/// VTOR ignores the low 7 bits: a vector table of up to 32 entries needs 128-byte alignment.
pub const VECTOR_TABLE_ALIGN_SIZE: usize = 128;

/// CMSDK APB timer 0 of the SSE-200, clocked by MAINCLK. Used as a free-running tick counter
/// that both cores can read (it is shared, unlike SysTick).
const TIMER0_BASE: usize = 0x4000_0000;
const TIMER0_CTRL: *mut u32 = TIMER0_BASE as *mut u32;
const TIMER0_VALUE: *mut u32 = (TIMER0_BASE + 0x04) as *mut u32;
const TIMER0_RELOAD: *mut u32 = (TIMER0_BASE + 0x08) as *mut u32;
const TIMER0_CTRL_ENABLE: u32 = 1 << 0;

/// MAINCLK (and so the CPU clock and timer 0) of the AN521 model: 20 MHz.
pub const MAINCLK_HZ: u32 = 20_000_000;

/// Index of the core running this code: 0 or 1.
pub fn core_index() -> u32 {
    // SAFETY: CPU_IDENTITY is a read-only, side-effect-free register that exists on this board
    // for both cores; a 32-bit aligned volatile load is its documented access.
    unsafe { ptr::read_volatile(CPU_IDENTITY_CPUID) }
}

/// True while core 1 is still held by CPUWAIT.
pub fn core1_is_waiting() -> bool {
    // SAFETY: reading CPUWAIT has no side effect; the register is Secure-only and this program
    // runs in the Secure state (both cores boot Secure and never leave it).
    unsafe { ptr::read_volatile(SYSCTL_CPUWAIT) & CPUWAIT_CORE1_MASK != 0 }
}

/// Points core 1 at `vector_table` and lets it out of reset.
///
/// # Safety
///
/// - `vector_table` is `VECTOR_TABLE_ALIGN_SIZE`-aligned, stays valid forever, and starts with an
///   8-byte-aligned initial stack pointer for a stack that nothing else uses, followed by the
///   Thumb address of an entry function that never returns;
/// - every exception core 1 can take has a valid handler in that table;
/// - core 1 has not been released before.
pub unsafe fn release_core1(vector_table: *const u32) {
    let table_address = vector_table as usize;
    assert!(
        table_address.is_multiple_of(VECTOR_TABLE_ALIGN_SIZE),
        "core 1 vector table is misaligned"
    );
    // Everything core 1 will read (statics initialised by cortex-m-rt, the mailboxes) must be in
    // memory before it starts.
    asm::dsb();
    // SAFETY: INITSVTOR1 and CPUWAIT are Secure-only sysctl registers and we run Secure. Writing
    // INITSVTOR1 only takes effect at core 1's next reset; the caller guarantees the table is
    // valid. CPUWAIT is read-modify-written so core 0's own bit is left as it is; clearing bit 1
    // starts core 1 (QEMU: `arm_set_cpu_on_and_reset(1)`).
    unsafe {
        ptr::write_volatile(SYSCTL_INITSVTOR1, table_address as u32);
        let cpuwait = ptr::read_volatile(SYSCTL_CPUWAIT);
        ptr::write_volatile(SYSCTL_CPUWAIT, cpuwait & !CPUWAIT_CORE1_MASK);
    }
    asm::dsb();
}

/// Starts timer 0 as a free-running counter, from which `ticks()` counts up at `MAINCLK_HZ`.
/// Called once by core 0 before anything waits on a deadline.
pub fn start_ticks() {
    // SAFETY: timer 0 is a CMSDK APB timer at this address, reachable from the Secure state
    // (its PPC port resets to Secure). Nothing else in this program uses it. Stopping it first
    // makes the sequence valid even if it was running.
    unsafe {
        ptr::write_volatile(TIMER0_CTRL, 0);
        ptr::write_volatile(TIMER0_RELOAD, u32::MAX);
        ptr::write_volatile(TIMER0_VALUE, u32::MAX);
        ptr::write_volatile(TIMER0_CTRL, TIMER0_CTRL_ENABLE);
    }
}

/// MAINCLK ticks since `start_ticks()`; wraps after 2^32 ticks (about 214 s at 20 MHz).
pub fn ticks() -> u32 {
    // SAFETY: reading the timer's VALUE register has no side effect.
    let value = unsafe { ptr::read_volatile(TIMER0_VALUE) };
    u32::MAX - value
}
