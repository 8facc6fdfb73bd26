//! A single-slot mailbox from one core to the other: one producer, one consumer, no lock.
//!
//! This is a stand-in until `tina_core::ring` exists (the Tina shards will exchange messages
//! through one ring per direction). It is the same publication protocol with capacity 1:
//!
//! ```text
//! producer: full == false (Acquire)?  write slot;  full = true  (Release); DSB; SEV
//! consumer: full == true  (Acquire)?  read slot;   full = false (Release); DSB; SEV
//! ```
//!
//! The Release store of `full` publishes the slot write; the consumer's Acquire load of `full`
//! makes it visible before the read, and the consumer's Release store hands the slot back only
//! after its read is done. Each end is claimed once (`claim_sender`/`claim_receiver`), so at most
//! one core can ever produce and one consume, which is what makes the unsynchronised slot
//! access sound.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::Ordering;

use cortex_m::asm;
use portable_atomic::AtomicBool;

/// A one-message channel between the two cores. Lives in a `static`.
pub struct Mailbox<T> {
    full: AtomicBool,
    sender_claimed: AtomicBool,
    receiver_claimed: AtomicBool,
    slot: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the slot is only touched through the unique `Sender` (while `full` is false) and the
// unique `Receiver` (while `full` is true); `full` is an atomic with Release/Acquire hand-over,
// so the two never access the slot at the same time. `T: Send` because values cross cores.
unsafe impl<T: Send> Sync for Mailbox<T> {}

/// The producing end; at most one exists per mailbox.
pub struct Sender<T: 'static> {
    mailbox: &'static Mailbox<T>,
}

/// The consuming end; at most one exists per mailbox.
pub struct Receiver<T: 'static> {
    mailbox: &'static Mailbox<T>,
}

impl<T> Mailbox<T> {
    /// An empty mailbox with both ends unclaimed.
    pub const fn new() -> Self {
        Mailbox {
            full: AtomicBool::new(false),
            sender_claimed: AtomicBool::new(false),
            receiver_claimed: AtomicBool::new(false),
            slot: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl<T: Copy + Send> Mailbox<T> {
    /// The producing end, or `None` if it was already claimed.
    pub fn claim_sender(&'static self) -> Option<Sender<T>> {
        let taken = self.sender_claimed.swap(true, Ordering::AcqRel);
        (!taken).then_some(Sender { mailbox: self })
    }

    /// The consuming end, or `None` if it was already claimed.
    pub fn claim_receiver(&'static self) -> Option<Receiver<T>> {
        let taken = self.receiver_claimed.swap(true, Ordering::AcqRel);
        (!taken).then_some(Receiver { mailbox: self })
    }
}

impl<T: Copy + Send> Sender<T> {
    /// Puts `message` in the slot, or gives it back if the slot is still full.
    pub fn try_send(&mut self, message: T) -> Result<(), T> {
        let mailbox = self.mailbox;
        if mailbox.full.load(Ordering::Acquire) {
            return Err(message);
        }
        // SAFETY: `full` is false and this is the only `Sender`, so the receiver is done with
        // the slot (its Release store of `false` was observed by the Acquire load above) and
        // nobody else writes it.
        unsafe { ptr::write(mailbox.slot.get(), MaybeUninit::new(message)) };
        mailbox.full.store(true, Ordering::Release);
        wake_other_core();
        Ok(())
    }
}

impl<T: Copy + Send> Receiver<T> {
    /// Takes the message out of the slot, if there is one.
    pub fn try_recv(&mut self) -> Option<T> {
        let mailbox = self.mailbox;
        if !mailbox.full.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `full` is true, so the only `Sender` wrote an initialised `T` and published it
        // with a Release store that the Acquire load above observed; it will not write again
        // until we store `false` below. `T: Copy`, so reading it out leaves nothing to drop.
        let message = unsafe { ptr::read(mailbox.slot.get()).assume_init() };
        mailbox.full.store(false, Ordering::Release);
        wake_other_core();
        Some(message)
    }
}

/// Completes the preceding stores, then wakes the other core if it idles in WFE.
fn wake_other_core() {
    asm::dsb();
    asm::sev();
}
