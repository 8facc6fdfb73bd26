//! Handler panics become isolate crashes: `catch_unwind` around every `init` and `handle`.
//!
//! The process-wide panic hook is replaced once so that a panic on a shard thread prints one
//! line naming the shard and the panic's location and message (no backtrace capture, no
//! allocation of its own); panics on other threads go to the previous hook unchanged. The
//! panic itself still allocates its payload box — a panicking handler is a crash path, not a
//! steady state.

use core::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use tina_core::platform::{Panicked, Trap, TrapCall};

use crate::sys::{self, StackBuf};

/// Catches panics of user code with `catch_unwind`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatchPanic;

impl Trap for CatchPanic {
    fn run(&self, _call: TrapCall, f: &mut dyn FnMut()) -> Result<(), Panicked> {
        catch_unwind(AssertUnwindSafe(f)).map_err(|_| Panicked)
    }
}

static HOOK: Once = Once::new();

/// Installs the shard-aware panic hook (once per process).
pub(crate) fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let shard = sys::fault_shard();
            if shard < 0 {
                previous(info);
                return;
            }
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string payload)");
            let mut b = StackBuf::<384>::new();
            let _ = write!(b, "tina: shard {shard}: a handler panicked");
            if let Some(loc) = info.location() {
                let _ = write!(b, " at {}:{}", loc.file(), loc.line());
            }
            let _ = writeln!(b, ": {msg} (the isolate crashes; supervision decides)");
            sys::write_stderr(b.as_bytes());
        }));
    });
}
