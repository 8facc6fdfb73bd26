//! defmt's global logger for this board (feature `defmt`): frames go to the host through
//! semihosting's stderr, so they never mix with the plain-text PASS/FAIL lines on stdout.
//!
//! `run.sh` saves QEMU's stderr to `target/<variant>-<threading>.defmt`; decode it with
//! `defmt-print -e <elf> < that-file` (the ELF holds the format strings).
//!
//! Both cores log, so a frame is written whole inside the board's multicore critical section:
//! `acquire` enters it and `release` leaves it, as defmt's own loggers do. A frame is
//! collected in a buffer and sent in one `SYS_WRITE` at `release` (or when the buffer fills),
//! to keep the number of semihosting traps low.
//!
//! This is the board's only global choice about logging; tina-baremetal itself only calls
//! `defmt::info!` (its `BoardLog`), and never registers a logger.

use core::cell::UnsafeCell;
use core::sync::atomic::Ordering;

use cortex_m_semihosting::hio::{self, HostStream};
use critical_section::RestoreState;
use portable_atomic::AtomicBool;

use crate::deadline;

/// Bytes collected before a `SYS_WRITE`; a longer frame is sent in several writes.
const FRAME_BUFFER_SIZE: usize = 256;

defmt::timestamp!("{=u32:ms}", deadline::elapsed_ms());

#[defmt::global_logger]
struct SemihostingLogger;

/// Where encoded bytes collect until they are sent.
struct Sink {
    stderr: Option<HostStream>,
    buffer: [u8; FRAME_BUFFER_SIZE],
    buffered_size: usize,
}

impl Sink {
    /// Appends `bytes`, sending the buffer whenever it fills.
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let chunk_size = bytes.len().min(FRAME_BUFFER_SIZE - self.buffered_size);
            let end = self.buffered_size + chunk_size;
            self.buffer[self.buffered_size..end].copy_from_slice(&bytes[..chunk_size]);
            self.buffered_size = end;
            bytes = &bytes[chunk_size..];
            if self.buffered_size == FRAME_BUFFER_SIZE {
                self.send();
            }
        }
    }

    /// Writes the buffered bytes to semihosting stderr (best effort, as defmt asks).
    fn send(&mut self) {
        if self.buffered_size == 0 {
            return;
        }
        if self.stderr.is_none() {
            self.stderr = hio::hstderr().ok();
        }
        if let Some(stream) = &mut self.stderr {
            let _ = stream.write_all(&self.buffer[..self.buffered_size]);
        }
        self.buffered_size = 0;
    }
}

/// The logger's state between `acquire` and `release`.
struct Frame {
    restore: RestoreState,
    encoder: defmt::Encoder,
    sink: Sink,
}

struct FrameCell(UnsafeCell<Frame>);

// SAFETY: the frame is only reached through `frame()`, whose contract is that the caller holds
// the logger: the multicore critical section is held and `TAKEN` is set by this core, so no
// other core and no interrupt handler on this core can reach it at the same time.
unsafe impl Sync for FrameCell {}

static FRAME: FrameCell = FrameCell(UnsafeCell::new(Frame {
    restore: RestoreState::invalid(),
    encoder: defmt::Encoder::new(),
    sink: Sink {
        stderr: None,
        buffer: [0; FRAME_BUFFER_SIZE],
        buffered_size: 0,
    },
}));

/// Set while a frame is being written (inside the critical section).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The frame state.
///
/// # Safety
///
/// The caller holds the logger (between `acquire` and `release`, on this core) and does not
/// keep the reference beyond the current `Logger` method.
unsafe fn frame() -> &'static mut Frame {
    // SAFETY: exclusive by the caller's contract (see `FrameCell`'s `Sync`).
    unsafe { &mut *FRAME.0.get() }
}

// SAFETY: `acquire` enters the multicore critical section before anything touches `FRAME` and
// `release` leaves it after the frame is complete, so frames from the two cores (or from an
// interrupt handler on the same core) never interleave; a nested `acquire` on the same core
// panics, as the trait requires, instead of corrupting the frame.
unsafe impl defmt::Logger for SemihostingLogger {
    fn acquire() {
        // SAFETY: paired with the `critical_section::release` in `Logger::release`, which defmt
        // calls exactly once per `acquire`, in the same context.
        let restore = unsafe { critical_section::acquire() };
        if TAKEN.swap(true, Ordering::Relaxed) {
            panic!("defmt logger taken reentrantly");
        }
        // SAFETY: inside the critical section with `TAKEN` set by this core.
        let frame = unsafe { frame() };
        frame.restore = restore;
        let Frame { encoder, sink, .. } = frame;
        encoder.start_frame(|bytes| sink.push(bytes));
    }

    unsafe fn flush() {
        // SAFETY: defmt calls this only between `acquire` and `release`.
        unsafe { frame() }.sink.send();
    }

    unsafe fn release() {
        // SAFETY: defmt calls this only between `acquire` and `release`.
        let frame = unsafe { frame() };
        let Frame {
            encoder,
            sink,
            restore,
        } = frame;
        encoder.end_frame(|bytes| sink.push(bytes));
        sink.send();
        let restore = *restore;
        TAKEN.store(false, Ordering::Relaxed);
        // SAFETY: the state saved by the matching `acquire`, restored once, last.
        unsafe { critical_section::release(restore) };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: defmt calls this only between `acquire` and `release`.
        let Frame { encoder, sink, .. } = unsafe { frame() };
        encoder.write(bytes, |encoded| sink.push(encoded));
    }
}
