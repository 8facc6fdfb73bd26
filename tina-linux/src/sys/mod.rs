//! Every libc call the driver makes, behind small safe functions.
//!
//! This is one of the two places in tina-linux that use `unsafe` (the other is [`uring`],
//! whose submissions hand raw pointers to the kernel): this module and its two children,
//! [`net`] (epoll, sockets, non-blocking I/O), [`signal`] (signal masks, the hardware-fault
//! reporter, seccomp) and [`stderr`] (writes to standard error that never block). Each
//! function here owns one syscall:
//! it prepares its arguments from Rust values, makes the call, and turns `-1`/`errno` into a
//! `Result` with the raw error number. Nothing here allocates; the fault handler only formats
//! into a stack buffer and calls a non-blocking `write(2)` and `_exit(2)`, both
//! async-signal-safe.
//!
//! [`uring`]: crate::reactor::uring

use core::mem::MaybeUninit;

pub(crate) mod net;
pub(crate) mod signal;
pub(crate) mod stderr;

pub(crate) use net::*;
pub(crate) use signal::*;

/// A raw OS error number.
pub(crate) type Errno = i32;

pub(crate) fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `Ok(value)` for a non-negative return, `Err(errno)` for `-1`.
pub(crate) fn check(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

pub(crate) fn check_size(ret: libc::ssize_t) -> Result<usize, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as usize)
    }
}

// ───────────────────────────── time, CPUs, threads ─────────────────────────────

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds since the Unix epoch on `CLOCK_REALTIME`, or `None` if the clock cannot be
/// read or is set before 1970.
pub(crate) fn realtime_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME always exists on Linux.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if r != 0 || ts.tv_sec < 0 {
        return None;
    }
    Some(
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64),
    )
}

/// The CPUs this process may run on (its affinity mask: honours `taskset` and cgroups), in
/// ascending order.
pub(crate) fn allowed_cpus() -> Result<Vec<usize>, Errno> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    check(unsafe {
        libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set)
    })?;
    let mut cpus = Vec::new();
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        if unsafe { libc::CPU_ISSET(cpu, &set) } {
            cpus.push(cpu);
        }
    }
    Ok(cpus)
}

/// Pins the calling thread to one CPU.
pub(crate) fn pin_current_thread(cpu: usize) -> Result<(), Errno> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(libc::EINVAL);
    }
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    check(unsafe { libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// CPU time (user + system) consumed by the calling thread, in nanoseconds.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// The soft limit on open descriptors.
pub(crate) fn open_files_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 1024;
    }
    r.rlim_cur
}

// ───────────────────────────── memory ─────────────────────────────

/// An anonymous private mapping, unmapped on drop.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a `Mapping` owns its bytes exclusively (like a `Box<[u8]>`): they are reachable only
// through it and borrows of it, so moving it, or a `&mut` to it, to another thread is sound.
unsafe impl Send for Mapping {}

const HUGE_PAGE_SIZE: usize = 2 << 20;
const PAGE_SIZE: usize = 4096;

impl Mapping {
    /// Bytes [`Mapping::new`] maps for a request of `len` bytes (whole pages, or whole 2 MiB
    /// pages when huge pages are asked for and `len` is at least one); `None` on overflow.
    pub(crate) fn mapped_len(len: usize, huge_pages: bool) -> Option<usize> {
        let unit = if huge_pages && len >= HUGE_PAGE_SIZE {
            HUGE_PAGE_SIZE
        } else {
            PAGE_SIZE
        };
        len.max(1).checked_next_multiple_of(unit)
    }

    /// Maps at least `len` bytes (page aligned, so 128-byte aligned as the core requires) and
    /// asks for transparent huge pages when the mapping is big enough (best effort). Nothing
    /// is touched: see [`Mapping::prefault`].
    pub(crate) fn new(len: usize, huge_pages: bool) -> Result<Mapping, Errno> {
        let huge = huge_pages && len >= HUGE_PAGE_SIZE;
        let len = Self::mapped_len(len, huge_pages).ok_or(libc::ENOMEM)?;
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(errno());
        }
        if huge {
            // SAFETY: `ptr..ptr+len` is the mapping we just created. Failure is harmless.
            unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        }
        Ok(Mapping {
            ptr: ptr.cast::<u8>(),
            len,
        })
    }

    /// Touches every page so it is faulted in now, on the calling (pinned) thread's NUMA
    /// node. Writes zeros: call it before anything is stored in the mapping.
    pub(crate) fn prefault(&mut self) {
        let mut offset = 0;
        while offset < self.len {
            // SAFETY: `offset < len`, inside our writable mapping; `&mut self` means no
            // reference into it is alive.
            unsafe { self.ptr.add(offset).write_volatile(0) };
            offset += PAGE_SIZE;
        }
    }

    /// [`Mapping::new`], then [`Mapping::prefault`].
    pub(crate) fn new_prefaulted(len: usize, huge_pages: bool) -> Result<Mapping, Errno> {
        let mut m = Mapping::new(len, huge_pages)?;
        m.prefault();
        Ok(m)
    }

    /// The mapping as the byte region a shard is carved from.
    pub(crate) fn region(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: the mapping is `len` readable and writable bytes, owned by `self` and
        // reachable through no other reference; `&mut self` keeps it exclusive for the borrow.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.cast::<MaybeUninit<u8>>(), self.len) }
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is our mapping; every borrow of it ended with `self`'s.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

// ───────────────────────────── descriptors ─────────────────────────────

/// Closes a descriptor.
pub(crate) fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: closing an integer descriptor affects no Rust memory.
    check(unsafe { libc::close(fd) }).map(|_| ())
}

/// An owned descriptor, closed on drop.
#[derive(Debug)]
pub(crate) struct OwnedFd(pub(crate) i32);

impl Drop for OwnedFd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            let _ = close(self.0);
        }
    }
}

/// A non-blocking `eventfd`, the doorbell of a sleeping shard.
pub(crate) fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) }).map(OwnedFd)
}

/// Rings an eventfd (adds 1).
pub(crate) fn eventfd_signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; an error (counter overflow) is harmless.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Resets an eventfd to zero (non-blocking); returns the count it held (0: none).
pub(crate) fn eventfd_drain(fd: i32) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into a live u64; EAGAIN when already zero is fine.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n == 8 { v } else { 0 }
}

/// A pipe pair `(read, write)` for splice.
pub(crate) fn pipe() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    Ok((fds[0], fds[1]))
}

/// A fixed buffer that formats without allocating.
pub(crate) struct StackBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub(crate) const fn new() -> Self {
        StackBuf {
            bytes: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Ends the text with a newline (in place of its last byte when the buffer is full).
    pub(crate) fn end_line(&mut self) {
        if N == 0 {
            return;
        }
        if self.len == N {
            self.len -= 1;
        }
        self.bytes[self.len] = b'\n';
        self.len += 1;
    }
}

impl<const N: usize> core::fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(N - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `strerror`-like short text for common errors (no allocation).
pub(crate) fn errno_name(e: Errno) -> &'static str {
    match e {
        libc::EPERM => "EPERM (operation not permitted)",
        libc::ENOSYS => "ENOSYS (not implemented by this kernel)",
        libc::EINVAL => "EINVAL (invalid argument)",
        libc::ENOMEM => "ENOMEM (out of memory)",
        libc::EMFILE => "EMFILE (too many open files)",
        libc::EACCES => "EACCES (permission denied)",
        libc::EAGAIN => "EAGAIN (resource temporarily unavailable)",
        _ => "OS error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn stack_buf_truncates_instead_of_growing() {
        let mut b = StackBuf::<8>::new();
        let _ = write!(b, "0123456789");
        assert_eq!(b.as_bytes(), b"01234567");
        b.end_line();
        assert_eq!(
            b.as_bytes(),
            b"0123456\n",
            "a full line still ends with a newline"
        );
    }

    #[test]
    fn mapping_is_aligned_and_sized_for_the_core() {
        let mut m = Mapping::new_prefaulted(10_000, true).unwrap();
        let r = m.region();
        assert!(r.len() >= 10_000);
        assert_eq!(r.as_ptr() as usize % tina_core::memory::REGION_ALIGN, 0);
    }

    #[test]
    fn eventfd_counts_and_drains() {
        let fd = eventfd().unwrap();
        assert_eq!(eventfd_drain(fd.0), 0);
        eventfd_signal(fd.0);
        eventfd_signal(fd.0);
        assert_eq!(eventfd_drain(fd.0), 2);
        assert_eq!(eventfd_drain(fd.0), 0);
    }
}
