//! The `critical-section` implementation for two cores: mask interrupts on this core (PRIMASK)
//! *and* hold an inter-core spinlock that records which core owns it.
//!
//! # Why PRIMASK alone is not enough
//!
//! PRIMASK is per core. Setting it stops this core's interrupt handlers from running, which is
//! all a critical section needs on a single core. The other core keeps running, and it can set
//! its own PRIMASK and enter "the" critical section at the same moment: both then read-modify-
//! write the same `critical_section::Mutex` data and updates are lost (the `broken-critical-section`
//! feature builds exactly that, and the shared-counter test catches it). So on a multicore chip
//! the critical section must also exclude the other core, and it must mask interrupts too, or
//! an interrupt handler on the lock owner's core could try to take the lock its own thread holds.
//!
//! # Design
//!
//! ```text
//! acquire:  save PRIMASK, cpsid i
//!           owner == me?  -> nested: return {interrupts_were_enabled}
//!           CAS owner 0 -> me (Acquire), WFE while it fails
//!           return {interrupts_were_enabled, took_lock}
//! release:  took_lock?  -> owner = 0 (Release), DSB, SEV
//!           interrupts_were_enabled? -> cpsie i
//! ```
//!
//! - Re-entrant on the same core: the nested acquire sees its own core index as owner (only
//!   this core ever stores that value, and with interrupts masked nothing else on this core
//!   runs in between) and does not touch the lock; only the outermost release frees it.
//! - The restore state is a `u32` (critical-section's `restore-state-u32`) with two bits, so the
//!   release of a nested section neither frees the lock nor unmasks interrupts.
//! - Armv8-M mainline has LDREX/STREX, so the lock is a plain compare-and-swap on a
//!   `portable_atomic::AtomicU32` with no fallback. A port to a core without CAS (Armv6-M, the
//!   RP2040) needs a hardware spinlock instead: see README.md.
//! - A waiting core idles with WFE and the releasing core SEVs. The wait is bounded by the
//!   run deadline, so a core that dies holding the lock fails the run instead of hanging it.

use core::sync::atomic::{Ordering, compiler_fence};

use cortex_m::{asm, interrupt, register::primask};
use critical_section::RawRestoreState;
use portable_atomic::AtomicU32;

use crate::board;
use crate::deadline;
use crate::report::fail;

/// False only in the `broken-critical-section` negative test: PRIMASK without the lock.
const TAKES_INTER_CORE_LOCK: bool = !cfg!(feature = "broken-critical-section");

/// Value of `LOCK_OWNER` when no core holds the lock; otherwise it holds `core_index() + 1`.
const LOCK_FREE: u32 = 0;
/// Restore-state bit: PRIMASK was clear (interrupts enabled) before this acquire.
const STATE_INTERRUPTS_WERE_ENABLED: RawRestoreState = 1 << 0;
/// Restore-state bit: this acquire took the lock (it is the outermost on this core).
const STATE_TOOK_LOCK: RawRestoreState = 1 << 1;

/// Failed lock attempts between two looks at the clock (reading it is an MMIO access).
const ATTEMPTS_PER_CLOCK_CHECK: u32 = 256;

static LOCK_OWNER: AtomicU32 = AtomicU32::new(LOCK_FREE);
/// Acquires that found the lock held by the other core (a measure of real contention).
static CONTENDED_ACQUIRE_COUNT: AtomicU32 = AtomicU32::new(0);

/// How many acquires had to wait for the other core so far.
pub fn contended_acquire_count() -> u32 {
    CONTENDED_ACQUIRE_COUNT.load(Ordering::Relaxed)
}

struct MulticoreCriticalSection;
critical_section::set_impl!(MulticoreCriticalSection);

// SAFETY: `acquire` returns only once interrupts are masked on this core and (unless the
// `broken-critical-section` test feature is on) this core owns `LOCK_OWNER`, which the other
// core cannot also own; nested acquires on the owning core are recognised and only the
// outermost `release` (which gets back `STATE_TOOK_LOCK`) frees the lock. `release` restores
// PRIMASK to what the matching `acquire` saw. critical-section guarantees acquire/release pairs
// are properly nested per core.
unsafe impl critical_section::Impl for MulticoreCriticalSection {
    unsafe fn acquire() -> RawRestoreState {
        let mut state = 0;
        if primask::read().is_active() {
            state |= STATE_INTERRUPTS_WERE_ENABLED;
        }
        interrupt::disable();
        if TAKES_INTER_CORE_LOCK {
            let me = board::core_index() + 1;
            // Relaxed is enough: only this core ever stores `me`, and it saw its own stores.
            if LOCK_OWNER.load(Ordering::Relaxed) != me {
                lock(me);
                state |= STATE_TOOK_LOCK;
            }
        }
        state
    }

    unsafe fn release(state: RawRestoreState) {
        if state & STATE_TOOK_LOCK != 0 {
            LOCK_OWNER.store(LOCK_FREE, Ordering::Release);
            // Make the store visible before waking the other core from WFE.
            asm::dsb();
            asm::sev();
        }
        compiler_fence(Ordering::SeqCst);
        if state & STATE_INTERRUPTS_WERE_ENABLED != 0 {
            // SAFETY: interrupts were enabled when the matching acquire ran, so this is the
            // outermost critical section on this core (or a nested one that never masked them);
            // unmasking restores exactly the caller's state.
            unsafe { interrupt::enable() };
        }
    }
}

/// Spins (with WFE) until `LOCK_OWNER` goes from free to `me`.
fn lock(me: u32) {
    if LOCK_OWNER
        .compare_exchange(LOCK_FREE, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    CONTENDED_ACQUIRE_COUNT.fetch_add(1, Ordering::Relaxed);
    let mut attempt_count: u32 = 0;
    loop {
        asm::wfe();
        if LOCK_OWNER
            .compare_exchange_weak(LOCK_FREE, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        attempt_count = attempt_count.wrapping_add(1);
        if attempt_count.is_multiple_of(ATTEMPTS_PER_CLOCK_CHECK) && deadline::run_expired() {
            fail!(
                "critical section: core {} still waiting for the lock held by owner tag {}",
                me - 1,
                LOCK_OWNER.load(Ordering::Relaxed)
            );
        }
    }
}
