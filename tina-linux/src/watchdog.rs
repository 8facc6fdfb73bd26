//! The watchdog: notices a shard whose tick has not finished for too long.
//!
//! Each shard stores the time its current tick started (`step_started_ns`, 0 between ticks
//! and while asleep — a sleeping shard is idle, not stuck). The watchdog thread wakes every
//! quarter of the stall threshold and reports every tick older than the threshold once, with
//! how long it has run; when the tick finally ends it reports that too. Policy `Abort` ends
//! the process instead (a supervisor such as systemd then restarts it).
//!
//! Reports go through the watchdog's own log queue ([`crate::log`]): a stalled stderr never
//! holds the watchdog up. Before an abort it flushes queued lines for at most
//! [`LAST_WORDS_WAIT`] and writes the report without waiting (lost if stderr is stalled).
//!
//! When every shard sleeps (or has stopped) no tick can be stuck, so the watchdog parks
//! without a timeout and an idle process makes no wake-ups at all. The hand-off uses the same
//! fence pattern as the shards' own sleep:
//!
//! ```text
//!   watchdog (going to park)                 shard (just woke)
//!   parked = true; fence(SeqCst)             link.woke(); fence(SeqCst)
//!   every link still asleep? → park()        parked? → swap(false) → unpark(watchdog)
//! ```
//!
//! Either the watchdog sees the shard awake and keeps watching, or the shard sees `parked`
//! and unparks it (an unpark before the park is kept by the thread's token).
//!
//! The report names the shard, how long the tick has run, and the isolate, its type and the
//! call (`init` or `handle`) the trap recorded as running — or says that no user call was
//! running (the scheduler itself is slow).

use core::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use std::sync::atomic::{AtomicBool, fence};

use tina_core::transport::ShardLink;

use crate::log::LAST_WORDS_WAIT;
use crate::logger;
use crate::shared::{ShardShared, ShardState};
use crate::sys::{self, StackBuf};

/// What the watchdog does about a stuck shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogPolicy {
    /// Print a report and keep going.
    Report,
    /// Print a report and abort the process.
    Abort,
}

/// Watchdog settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// A tick running longer than this is reported.
    pub stall_after: StdDuration,
    /// What to do then.
    pub policy: WatchdogPolicy,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            stall_after: StdDuration::from_secs(2),
            policy: WatchdogPolicy::Report,
        }
    }
}

/// Whether no shard can be in a tick: each sleeps, has stopped, or failed to boot.
fn all_idle(shards: &[ShardShared], links: &[ShardLink]) -> bool {
    shards.iter().zip(links).all(|(s, l)| {
        l.is_sleeping() || matches!(s.state(), ShardState::Stopped | ShardState::Failed)
    })
}

/// Watches `shards` until `done()` says every shard has finished. Allocation-free after its
/// first iteration. `parked` is the flag a waking shard checks (see the module docs).
pub(crate) fn watch(
    shards: &[ShardShared],
    links: &[ShardLink],
    parked: &AtomicBool,
    config: WatchdogConfig,
    done: &dyn Fn() -> bool,
) {
    let stall_ns = config
        .stall_after
        .as_nanos()
        .clamp(1_000_000, u128::from(u64::MAX)) as u64;
    let period = (config.stall_after / 4).max(StdDuration::from_millis(5));
    let mut reported = vec![0u64; shards.len()];
    while !done() {
        if all_idle(shards, links) && reported.iter().all(|&r| r == 0) {
            parked.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if all_idle(shards, links) {
                // Woken by a shard (which clears `parked`) or by the runtime at the end.
                std::thread::park();
            }
            parked.store(false, Ordering::Relaxed);
            continue;
        }
        std::thread::park_timeout(period);
        let now = sys::monotonic_ns();
        for (i, s) in shards.iter().enumerate() {
            let started = s.step_started_ns.load(Ordering::Relaxed);
            if started == 0 || started != reported[i] {
                if reported[i] != 0 && started != reported[i] {
                    let mut b = StackBuf::<256>::new();
                    let _ = writeln!(b, "tina watchdog: shard {i} is making progress again");
                    logger::push_line(b.as_bytes());
                    reported[i] = 0;
                }
                if started == 0 {
                    continue;
                }
            }
            let ran = now.saturating_sub(started);
            if ran < stall_ns || reported[i] == started {
                continue;
            }
            reported[i] = started;
            let mut b = StackBuf::<512>::new();
            let _ = write!(
                b,
                "tina watchdog: shard {i} has been stuck in one tick for {}.{:03} s: ",
                ran / 1_000_000_000,
                (ran / 1_000_000) % 1000
            );
            match s.running_call() {
                Some((h, ty, kind)) => {
                    let _ = writeln!(
                        b,
                        "{kind} of isolate {h} (type {ty}) is running (an endless loop or a \
                         blocking call?)"
                    );
                }
                None => {
                    let _ = writeln!(b, "no user call is running (the scheduler is slow)");
                }
            }
            if config.policy == WatchdogPolicy::Abort {
                // The process ends: flush briefly, then write without waiting for stderr.
                let _ = b.write_str("tina watchdog: policy is Abort: aborting the process\n");
                logger::last_words(b.as_bytes(), LAST_WORDS_WAIT);
                std::process::abort();
            }
            logger::push_line(b.as_bytes());
        }
    }
}
