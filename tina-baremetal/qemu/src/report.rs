//! How the program tells CI what happened: lines on the host's stdout through semihosting, and
//! QEMU's exit status (0 on success, 1 on any failure) through semihosting's `SYS_EXIT`.
//!
//! Normal progress lines use `hprintln!`, which takes the critical section so the two cores'
//! lines do not interleave. The failure path does not: it may run while the other core holds the
//! critical section (or while the critical section itself is what broke), so it opens its own
//! host stream and writes without any lock.

use core::fmt::{self, Write};

use cortex_m::asm;
use cortex_m_semihosting::{debug, hio};

use crate::board;

/// Prints `FAIL: <message>` (tagged with the core) and exits QEMU with status 1.
pub fn fail_with(message: fmt::Arguments) -> ! {
    if let Ok(mut stdout) = hio::hstdout() {
        let _ = writeln!(stdout, "FAIL (core {}): {}", board::core_index(), message);
    }
    exit(debug::EXIT_FAILURE)
}

/// Exits QEMU with `status`. Under QEMU `SYS_EXIT` does not return; on a debugger without
/// semihosting exit support the core parks here.
pub fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    loop {
        asm::wfe();
    }
}

/// `fail!("format", args…)`: prints a `FAIL` line and exits with status 1.
macro_rules! fail {
    ($($arg:tt)*) => {
        $crate::report::fail_with(format_args!($($arg)*))
    };
}
pub(crate) use fail;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fail_with(format_args!("panic: {info}"))
}
