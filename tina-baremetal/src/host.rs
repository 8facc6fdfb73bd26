//! Host support: each "core" is a thread, so the driver loop runs under `cargo test`.
//!
//! `wait_for_event` parks the thread (with a timeout for a deadline, converting ticks with
//! `tick_ns`); `send_event` unparks the target core's thread. A park may return spuriously,
//! exactly like `WFE` — the loop re-checks.

use crate::Board;
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant as WallInstant};
use tina_core::Instant;

/// A board whose cores are threads.
pub struct ThreadBoard<'a> {
    core: usize,
    threads: &'a [OnceLock<Thread>],
    epoch: WallInstant,
    tick_ns: u64,
}

impl<'a> ThreadBoard<'a> {
    /// The board of `core`, run on the current thread (registers it so peers can wake it).
    pub fn on_this_thread(
        core: usize,
        threads: &'a [OnceLock<Thread>],
        epoch: WallInstant,
        tick_ns: u64,
    ) -> ThreadBoard<'a> {
        let _ = threads[core].set(std::thread::current());
        ThreadBoard {
            core,
            threads,
            epoch,
            tick_ns: tick_ns.max(1),
        }
    }
}

impl Board for ThreadBoard<'_> {
    fn core_id(&self) -> usize {
        self.core
    }

    fn now(&self) -> Instant {
        Instant::from_ticks(self.epoch.elapsed().as_nanos() as u64 / self.tick_ns)
    }

    fn wait_for_event(&self, deadline: Option<Instant>) {
        match deadline {
            Some(d) => {
                let ticks = d.ticks().saturating_sub(self.now().ticks());
                let wait = Duration::from_nanos(ticks.saturating_mul(self.tick_ns));
                if !wait.is_zero() {
                    std::thread::park_timeout(wait);
                }
            }
            None => std::thread::park(),
        }
    }

    fn send_event(&self, core: usize) {
        if let Some(t) = self.threads.get(core).and_then(OnceLock::get) {
            t.unpark();
        }
    }
}
