//! Atomics shim: the one place tina-core names its atomic types.
//!
//! Under `cfg(loom)` everything here comes from [loom], so a model test explores every
//! interleaving of the code that uses it; otherwise the atomics come from [portable-atomic]
//! (native load/store on every target, including `thumbv6m-none-eabi`, which has no
//! compare-and-swap) and the cell from `core`.
//!
//! loom's `UnsafeCell` cannot hand out references (it must see every access to check that it
//! happens-before the next conflicting one), so both builds share one small closure API:
//! [`UnsafeCell::with`] for a read and [`UnsafeCell::with_mut`] for a write. The closures get a
//! raw pointer; dereferencing it is the caller's `unsafe`, with the caller's `SAFETY:` reason.
//!
//! The ring ([`crate::ring`]) and the bulk slots ([`crate::bulk`]) use this; anything else in tina-core that needs an
//! atomic must take it from here so loom sees it too.
//!
//! [loom]: https://docs.rs/loom
//! [portable-atomic]: https://docs.rs/portable-atomic

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, fence};
#[cfg(not(loom))]
pub use portable_atomic::{AtomicBool, AtomicU32, AtomicUsize, fence};

pub use core::sync::atomic::Ordering;

/// An interior-mutability cell with loom's closure API in every build.
///
/// Without loom this is a zero-cost wrapper around [`core::cell::UnsafeCell`]; with loom it is
/// loom's tracked cell, which panics with "Causality violation" when two accesses race.
#[repr(transparent)]
pub struct UnsafeCell<T: ?Sized>(
    #[cfg(not(loom))] core::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// Wraps `value`. `const`, so cells can live in `static`s (not under loom, whose cells
    /// register with the running model).
    #[cfg(not(loom))]
    #[inline(always)]
    pub const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Wraps `value` (loom build: registers the cell with the running model).
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }
}

impl<T: ?Sized> UnsafeCell<T> {
    /// Calls `f` with a pointer for **reading** the contents. Under loom this records a read
    /// access that must not race with a write.
    #[cfg(not(loom))]
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for **writing** the contents. Under loom this records a write
    /// access that must not race with any other access.
    #[cfg(not(loom))]
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for **reading** the contents. Under loom this records a read
    /// access that must not race with a write.
    #[cfg(loom)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        self.0.with(f)
    }

    /// Calls `f` with a pointer for **writing** the contents. Under loom this records a write
    /// access that must not race with any other access.
    #[cfg(loom)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        self.0.with_mut(f)
    }
}
