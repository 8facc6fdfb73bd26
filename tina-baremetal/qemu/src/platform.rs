//! The an521 behind `tina_baremetal::Board`, and where Tina's log records go.
//!
//! | `Board` | here |
//! |---|---|
//! | `core_id` | CPU_IDENTITY, read once per core |
//! | `now` | the shared timer 0 in milliseconds (one Tina tick, `system::TICK_NS`) |
//! | `wait_for_event(deadline)` | WFE, unless the deadline has passed; bounded by the core's 1 ms SysTick |
//! | `send_event` | DSB, then SEV (wakes every core waiting in WFE; allowed by the trait) |
//!
//! On hardware an SEV between the driver's "nothing to do" check and its WFE sets the event
//! register, so that WFE returns at once: no wake-up is lost. QEMU does not model the event
//! register (WFE yields to the other vCPU under single-threaded TCG and is a no-op under
//! multi-threaded TCG), so there an idle core spins through its loop; the protocol is the one
//! for hardware all the same.

use cortex_m::asm;
use tina_baremetal::Board;
use tina_core::Instant;

use crate::{board, deadline};

/// One core of the an521 as `tina_baremetal::run` sees it.
#[derive(Debug)]
pub struct An521 {
    core_index: usize,
}

impl An521 {
    /// The core running this code.
    pub fn this_core() -> An521 {
        An521 {
            core_index: board::core_index() as usize,
        }
    }
}

impl Board for An521 {
    fn core_id(&self) -> usize {
        self.core_index
    }

    fn now(&self) -> Instant {
        Instant::from_ticks(u64::from(deadline::elapsed_ms()))
    }

    fn wait_for_event(&self, deadline: Option<Instant>) {
        if deadline.is_some_and(|at| self.now() >= at) {
            return;
        }
        // Ends at the next SEV from the other core or at the next interrupt, the 1 ms SysTick
        // at the latest, so a timer deadline is never overslept by more than one tick.
        asm::wfe();
    }

    fn send_event(&self, _core: usize) {
        // The ring's Release store and the transport's SeqCst fence order memory; DSB makes
        // them complete before the event goes out, as the architecture asks for SEV.
        asm::dsb();
        asm::sev();
    }
}

/// Tina's log records as semihosting text lines (`log: shard 0 t123 INFO …`), when defmt is
/// off. `hprintln!` writes each line inside the (multicore) critical section, so the two cores'
/// lines never interleave.
#[cfg(not(feature = "defmt"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct SemihostingLog;

#[cfg(not(feature = "defmt"))]
impl tina_core::log::LogSink for SemihostingLog {
    fn write(&mut self, shard: tina_core::ShardId, record: &tina_core::log::LogRecord) {
        cortex_m_semihosting::hprintln!(
            "log: shard {} t{} {} {}{}",
            shard.0,
            record.tick.ticks(),
            record.level,
            record.text(),
            if record.truncated() { "…" } else { "" }
        );
    }
}

/// Where each shard's log records go: semihosting text, or with the `defmt` feature
/// tina-baremetal's `BoardLog`, which emits them as defmt frames (`defmt_log`).
#[cfg(not(feature = "defmt"))]
pub type ShardLog = SemihostingLog;
/// Where each shard's log records go: semihosting text, or with the `defmt` feature
/// tina-baremetal's `BoardLog`, which emits them as defmt frames (`defmt_log`).
#[cfg(feature = "defmt")]
pub type ShardLog = tina_baremetal::BoardLog;
