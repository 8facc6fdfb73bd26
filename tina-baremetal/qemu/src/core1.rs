//! Core 1's boot: its own stack, its own vector table, and the launch from core 0.
//!
//! Core 0 boots through cortex-m-rt (vector table at 0x1000_0000, the INITSVTOR0 reset value;
//! cortex-m-rt initialises `.data`/`.bss`). Core 1 is held in reset by CPUWAIT bit 1 until
//! core 0 calls `launch()`, which
//! 1. writes the address of `CORE1_VECTOR_TABLE` (128-byte aligned) to INITSVTOR1, then
//! 2. clears CPUWAIT bit 1.
//!
//! Core 1 then resets like any Armv8-M core: SP = word 0 of its table (the top of
//! `CORE1_STACK`), PC = word 1 (`core1_reset`, plain Rust: hardware has already set up the stack,
//! and `.data`/`.bss` were initialised by core 0 before the launch). Core 1 never runs
//! cortex-m-rt's reset handler. Its faults end the run; its SysTick is the same wake tick as
//! core 0's (`deadline::on_wake_tick`).
//!
//! ```text
//!   core 0                                  core 1
//!   cortex-m-rt Reset -> main               (held by CPUWAIT[1])
//!   launch(): INITSVTOR1 = &table; DSB
//!             CPUWAIT &= !0b10  ----------> reset: SP = table[0], PC = table[1]
//!                                           core1_reset -> MSPLIM -> crate::core1_main
//! ```

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering;

use cortex_m::peripheral::SCB;
use cortex_m::register::msplim;
use portable_atomic::AtomicBool;

use crate::board;
use crate::deadline;
use crate::report::fail;

/// Core 1's main stack. Overflow faults (MSPLIM is set to its bottom) instead of corrupting
/// the statics below it.
const CORE1_STACK_SIZE: usize = 16 * 1024;
const _: () = assert!(CORE1_STACK_SIZE.is_multiple_of(8));

#[repr(C, align(8))]
struct Core1Stack(UnsafeCell<MaybeUninit<[u8; CORE1_STACK_SIZE]>>);

// SAFETY: no Rust reference to the contents is ever created; only core 1's SP points into it,
// and only core 1 runs on it.
unsafe impl Sync for Core1Stack {}

static CORE1_STACK: Core1Stack = Core1Stack(UnsafeCell::new(MaybeUninit::uninit()));

/// Core 1's reset vector: entered with the stack already set up, never returns.
type ResetHandler = extern "C" fn() -> !;
/// Any other entry of core 1's vector table. A plain AAPCS function is a valid Armv8-M
/// exception handler: the hardware stacks the caller-saved registers and returns through
/// EXC_RETURN in LR.
type Handler = extern "C" fn();

/// Armv8-M vector table: initial SP, Reset, then the 14 system exception slots (2..=15).
/// Core 1 enables no external interrupt, so the table stops there; 16 words fit the 128-byte
/// alignment VTOR requires.
#[repr(C, align(128))]
struct VectorTable {
    initial_stack_pointer: *const u8,
    reset: ResetHandler,
    /// NMI, HardFault, MemManage, BusFault, UsageFault, SecureFault, 3 reserved, SVCall,
    /// DebugMonitor, reserved, PendSV, SysTick.
    system_exceptions: [Option<Handler>; 14],
}

const _: () = assert!(align_of::<VectorTable>() == board::VECTOR_TABLE_ALIGN_SIZE);
const _: () = assert!(size_of::<VectorTable>() <= board::VECTOR_TABLE_ALIGN_SIZE);

// SAFETY: the table is immutable; the raw pointer in it is only read by core 1's reset logic.
unsafe impl Sync for VectorTable {}

const RESERVED: Option<Handler> = None;

static CORE1_VECTOR_TABLE: VectorTable = VectorTable {
    initial_stack_pointer: (&raw const CORE1_STACK)
        .cast::<u8>()
        .wrapping_add(CORE1_STACK_SIZE),
    reset: core1_reset,
    system_exceptions: [
        Some(core1_fault), // NMI
        Some(core1_fault), // HardFault
        Some(core1_fault), // MemManage
        Some(core1_fault), // BusFault
        Some(core1_fault), // UsageFault
        Some(core1_fault), // SecureFault
        RESERVED,
        RESERVED,
        RESERVED,
        Some(core1_fault), // SVCall
        Some(core1_fault), // DebugMonitor
        RESERVED,
        Some(core1_fault), // PendSV
        Some(core1_systick),
    ],
};

static LAUNCHED: AtomicBool = AtomicBool::new(false);

/// Releases core 1 into `crate::core1_main`. Core 0 only; at most once.
pub fn launch() {
    assert_eq!(board::core_index(), 0, "only core 0 launches core 1");
    assert!(
        !LAUNCHED.swap(true, Ordering::AcqRel),
        "core 1 launched twice"
    );
    // SAFETY: the table is a 128-byte-aligned static that lives forever; word 0 is the
    // 8-byte-aligned top of `CORE1_STACK`, which nothing else uses; word 1 is `core1_reset`,
    // which never returns; every system exception slot that can fire holds `core1_fault`, and
    // core 1 enables no external interrupts. `LAUNCHED` makes this the only release.
    unsafe { board::release_core1((&raw const CORE1_VECTOR_TABLE).cast::<u32>()) };
}

/// Core 1's reset vector.
extern "C" fn core1_reset() -> ! {
    let stack_bottom = (&raw const CORE1_STACK) as u32;
    // SAFETY: MSPLIM only adds a fault when SP goes below the bottom of core 1's own stack,
    // which is where a stack overflow would start overwriting other statics.
    unsafe { msplim::write(stack_bottom) };
    crate::core1_main()
}

/// Every fault core 1 can take: report and end the run (never returns).
extern "C" fn core1_fault() {
    fail!("core 1 took exception {:?}", SCB::vect_active())
}

/// Core 1's SysTick (started by `crate::core1_main`): the same wake tick as core 0's.
extern "C" fn core1_systick() {
    deadline::on_wake_tick();
}
