//! Quiet, recorded panics.
//!
//! Panics inside trapped calls are expected in a simulation (injected ones, and isolates that
//! panic on bad input); printing a backtrace for each would drown the output. On first use
//! the simulator installs a process-wide panic hook that, while the current thread is inside
//! a trapped call, records the message instead of printing it, and otherwise records it and
//! defers to the previous hook. Panics on other threads, and outside the simulator, behave as
//! before.

use std::cell::{Cell, RefCell};
use std::sync::Once;

/// The payload of a panic the trap injects on purpose.
pub(crate) struct InjectedPanic;

thread_local! {
    static TRAPPED_DEPTH: Cell<u32> = const { Cell::new(0) };
    static LAST_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

fn message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let text = if payload.is::<InjectedPanic>() {
        "injected panic".to_string()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    };
    match info.location() {
        Some(l) => format!("{text} at {}:{}", l.file(), l.line()),
        None => text,
    }
}

/// Installs the hook (idempotent).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = message(info);
            let quiet = TRAPPED_DEPTH.with(|d| d.get() > 0);
            LAST_MESSAGE.with(|m| *m.borrow_mut() = Some(text));
            if !quiet {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, catching a panic quietly.
pub(crate) fn trapped(f: impl FnOnce()) -> Result<(), tina_core::platform::Panicked> {
    TRAPPED_DEPTH.with(|d| d.set(d.get() + 1));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    TRAPPED_DEPTH.with(|d| d.set(d.get() - 1));
    r.map_err(|_| tina_core::platform::Panicked)
}

/// The message of the last panic on this thread.
pub(crate) fn last_message() -> Option<String> {
    LAST_MESSAGE.with(|m| m.borrow().clone())
}
