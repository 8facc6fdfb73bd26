//! Handler panics become isolate crashes: `catch_unwind` around every `init` and `handle`.
//!
//! Around each call the trap records which isolate runs (two relaxed stores before, one
//! after), so the watchdog, the fault reporter and the panic hook can name the isolate, its
//! type and the call.
//!
//! The process-wide panic hook is replaced once so that a panic on a shard thread prints one
//! line naming the shard and the panic's location and message (no backtrace capture, no
//! allocation of its own), queued on the shard's log queue so it never waits for a stalled
//! stderr; panics on other threads go to the previous hook unchanged. The
//! panic itself still allocates its payload box — a panicking handler is a crash path, not a
//! steady state.

use core::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use std::sync::atomic::Ordering;

use tina_core::platform::{CallKind, Panicked, Trap, TrapCall};

use crate::shared::ShardShared;

use crate::sys::{self, StackBuf};

/// Catches panics of user code with `catch_unwind`, recording the running isolate in its
/// shard's shared state.
#[derive(Clone, Copy, Default)]
pub struct CatchPanic<'r> {
    shared: Option<&'r ShardShared>,
}

impl<'r> CatchPanic<'r> {
    pub(crate) fn new(shared: &'r ShardShared) -> CatchPanic<'r> {
        CatchPanic {
            shared: Some(shared),
        }
    }
}

impl Trap for CatchPanic<'_> {
    #[inline]
    fn run(&self, call: TrapCall, f: &mut dyn FnMut()) -> Result<(), Panicked> {
        if let Some(s) = self.shared {
            let kind = match call.kind {
                CallKind::Init => 1,
                CallKind::Handle => 2,
            };
            s.running_kind.store(kind, Ordering::Relaxed);
            s.running.store(call.isolate.to_bits(), Ordering::Relaxed);
        }
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(|_| Panicked);
        if let Some(s) = self.shared {
            s.running.store(0, Ordering::Relaxed);
        }
        r
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
            let _ = write!(b, "tina: shard {shard}: ");
            match sys::fault_shared().and_then(|s| s.running_call()) {
                Some((h, ty, kind)) => {
                    let _ = write!(b, "isolate {h} (type {ty}) panicked in {kind}");
                }
                None => {
                    let _ = write!(b, "a user call panicked");
                }
            }
            if let Some(loc) = info.location() {
                let _ = write!(b, " at {}:{}", loc.file(), loc.line());
            }
            let _ = writeln!(b, ": {msg} (the isolate crashes; supervision decides)");
            // Queued like the shard's other lines: never waits for stderr.
            crate::logger::push_line(b.as_bytes());
        }));
    });
}
