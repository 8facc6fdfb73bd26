//! The control signals (SIGINT, SIGTERM, SIGUSR1, SIGUSR2) before and around [`run`].
//!
//! [`run`] (with `Config::signals`) takes these signals synchronously from a `signalfd`, so
//! they must be blocked in every thread; it blocks them itself in the thread that calls it.
//! Until then their default actions apply: SIGUSR1 in the first moments of a process (while it
//! parses its arguments, builds its spec, probes io_uring) would kill it. A program that
//! handles the signals calls [`block_signals`] first thing in `main`, before any other thread
//! exists: a signal that arrives early then stays pending and is handled once [`run`] starts.
//!
//! [`run`]: crate::run

use crate::sys;

/// Blocks the control signals in the calling thread; threads it spawns afterwards inherit the
/// mask. Call it first thing in `main` of a program that runs [`run`](crate::run) with
/// `Config::signals`; [`run`](crate::run) may then run on any thread.
pub fn block_signals() {
    let _ = sys::block_signals(&sys::CONTROL_SIGNALS);
}

/// Unblocks the control signals in the calling thread (their default actions apply again to
/// it and to threads it spawns afterwards), for a program that blocked them early and then
/// decides not to handle them.
pub fn unblock_signals() {
    sys::unblock_signals(&sys::CONTROL_SIGNALS);
}
