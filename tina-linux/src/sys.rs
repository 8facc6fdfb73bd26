//! Every libc call the driver makes, behind small safe functions.
//!
//! This is one of the two modules of tina-linux that use `unsafe` (the other is [`uring`],
//! whose submissions hand raw pointers to the kernel). Each function here owns one syscall:
//! it prepares its arguments from Rust values, makes the call, and turns `-1`/`errno` into a
//! `Result` with the raw error number. Nothing here allocates; the fault handler only formats
//! into a stack buffer and calls `write(2)` and `_exit(2)`, both async-signal-safe.
//!
//! [`uring`]: crate::uring

use core::mem::MaybeUninit;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::cell::Cell;
use std::fmt::Write as _;

use tina_core::io::{Domain, ShutdownHow, SocketKind, SocketOption};

use crate::shared::ShardShared;

/// A raw OS error number.
pub(crate) type Errno = i32;

fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `Ok(value)` for a non-negative return, `Err(errno)` for `-1`.
fn check(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

fn check_size(ret: libc::ssize_t) -> Result<usize, Errno> {
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

const HUGE_PAGE_SIZE: usize = 2 << 20;
const PAGE_SIZE: usize = 4096;

impl Mapping {
    /// Maps at least `len` bytes (page aligned, so 128-byte aligned as the core requires),
    /// asks for transparent huge pages when the mapping is big enough (best effort), and
    /// touches every page so it is faulted in now, on the calling (pinned) thread's NUMA node.
    pub(crate) fn new_prefaulted(len: usize, huge_pages: bool) -> Result<Mapping, Errno> {
        let huge = huge_pages && len >= HUGE_PAGE_SIZE;
        let unit = if huge { HUGE_PAGE_SIZE } else { PAGE_SIZE };
        let len = len.max(1).div_ceil(unit) * unit;
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
        let ptr = ptr.cast::<u8>();
        let mut offset = 0;
        while offset < len {
            // SAFETY: `offset < len`, inside the fresh writable mapping nobody else sees.
            unsafe { ptr.add(offset).write_volatile(0) };
            offset += PAGE_SIZE;
        }
        Ok(Mapping { ptr, len })
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

/// Writes all of `bytes` to stderr with `write(2)` (no lock, no allocation; safe in a signal
/// handler). Errors are ignored: there is nowhere left to report them.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live byte slice of the length passed.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        rest = &rest[n as usize..];
    }
}

// ───────────────────────────── epoll ─────────────────────────────

/// An epoll instance.
pub(crate) struct Epoll(OwnedFd);

/// One readiness event: the registration's data word and the ready flags.
pub(crate) type EpollEvent = libc::epoll_event;

impl Epoll {
    pub(crate) fn new() -> Result<Epoll, Errno> {
        // SAFETY: plain syscall with an integer argument.
        check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).map(|fd| Epoll(OwnedFd(fd)))
    }

    /// Registers `fd` edge-triggered for input and output with `data`.
    pub(crate) fn add(&self, fd: i32, data: u64) -> Result<(), Errno> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: data,
        };
        // SAFETY: `ev` is a valid epoll_event that outlives the call.
        check(unsafe { libc::epoll_ctl(self.0.0, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
    }

    /// Registers `fd` level-triggered for input with `data` (the wake eventfd).
    pub(crate) fn add_level(&self, fd: i32, data: u64) -> Result<(), Errno> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: `ev` is a valid epoll_event that outlives the call.
        check(unsafe { libc::epoll_ctl(self.0.0, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
    }

    /// Waits up to `timeout_ms` (-1: forever, 0: poll) for events.
    pub(crate) fn wait(&self, events: &mut [EpollEvent], timeout_ms: i32) -> usize {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is a writable array of `max` epoll_events.
        let n = unsafe { libc::epoll_wait(self.0.0, events.as_mut_ptr(), max, timeout_ms) };
        n.max(0) as usize
    }
}

/// A zeroed epoll event array entry.
pub(crate) const EPOLL_EVENT_EMPTY: EpollEvent = libc::epoll_event { events: 0, u64: 0 };

/// Readiness flags of an event.
pub(crate) fn epoll_flags(ev: &EpollEvent) -> (bool, bool) {
    let e = ev.events as i32;
    let err = e & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
    (
        e & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0 || err,
        e & libc::EPOLLOUT != 0 || err,
    )
}

// ───────────────────────────── socket addresses ─────────────────────────────

/// A socket address in the kernel's layout.
#[derive(Clone, Copy)]
pub(crate) struct SockAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl SockAddr {
    /// An empty address with room for any family.
    pub(crate) fn empty() -> SockAddr {
        SockAddr {
            // SAFETY: sockaddr_storage is plain data; all-zero is valid.
            storage: unsafe { core::mem::zeroed() },
            len: core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// The kernel form of `addr`.
    pub(crate) fn from(addr: &SocketAddr) -> SockAddr {
        let mut s = SockAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    (&mut s.storage as *mut libc::sockaddr_storage)
                        .cast::<libc::sockaddr_in>()
                        .write(sin)
                };
                s.len = core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    (&mut s.storage as *mut libc::sockaddr_storage)
                        .cast::<libc::sockaddr_in6>()
                        .write(sin6)
                };
                s.len = core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        s
    }

    /// The Rust form, if the family is IPv4 or IPv6.
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        match i32::from(self.storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in; storage is aligned.
                let sin = unsafe {
                    &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6; storage is aligned.
                let sin6 = unsafe {
                    &*(&self.storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }
}

// ───────────────────────────── socket control ─────────────────────────────

/// Creates a non-blocking, close-on-exec socket.
pub(crate) fn socket(domain: Domain, kind: SocketKind) -> Result<i32, Errno> {
    let d = match domain {
        Domain::Ipv4 => libc::AF_INET,
        Domain::Ipv6 => libc::AF_INET6,
    };
    let t = match kind {
        SocketKind::Stream => libc::SOCK_STREAM,
        SocketKind::Datagram => libc::SOCK_DGRAM,
    };
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::socket(d, t | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })
}

/// Binds a socket.
pub(crate) fn bind(fd: i32, addr: &SocketAddr) -> Result<(), Errno> {
    let a = SockAddr::from(addr);
    // SAFETY: `a` holds a valid address of `a.len` bytes for the call's duration.
    check(unsafe { libc::bind(fd, a.as_ptr(), a.len) }).map(|_| ())
}

/// Starts listening.
pub(crate) fn listen(fd: i32, backlog: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::listen(fd, backlog.min(i32::MAX as u32) as i32) }).map(|_| ())
}

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> Result<(), Errno> {
    // SAFETY: passes a pointer to a live i32 and its size.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            core::mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Sets a socket option.
pub(crate) fn set_option(fd: i32, option: SocketOption) -> Result<(), Errno> {
    let (level, name, value) = match option {
        SocketOption::ReuseAddr(on) => (libc::SOL_SOCKET, libc::SO_REUSEADDR, i32::from(on)),
        SocketOption::ReusePort(on) => (libc::SOL_SOCKET, libc::SO_REUSEPORT, i32::from(on)),
        SocketOption::NoDelay(on) => (libc::IPPROTO_TCP, libc::TCP_NODELAY, i32::from(on)),
        SocketOption::KeepAlive(on) => (libc::SOL_SOCKET, libc::SO_KEEPALIVE, i32::from(on)),
        SocketOption::RecvBufferSize(n) => (
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            n.min(i32::MAX as u32) as i32,
        ),
        SocketOption::SendBufferSize(n) => (
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            n.min(i32::MAX as u32) as i32,
        ),
    };
    setsockopt_int(fd, level, name, value)
}

/// Shuts one or both directions down.
pub(crate) fn shutdown(fd: i32, how: ShutdownHow) -> Result<(), Errno> {
    let h = match how {
        ShutdownHow::Read => libc::SHUT_RD,
        ShutdownHow::Write => libc::SHUT_WR,
        ShutdownHow::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::shutdown(fd, h) }).map(|_| ())
}

/// The local address of a socket.
pub(crate) fn local_addr(fd: i32) -> Result<SocketAddr, Errno> {
    let mut a = SockAddr::empty();
    // SAFETY: `a` has room for `a.len` bytes; the kernel updates `a.len`.
    check(unsafe { libc::getsockname(fd, a.as_mut_ptr(), &mut a.len) })?;
    a.socket_addr().ok_or(libc::EAFNOSUPPORT)
}

/// The pending error of a socket (`SO_ERROR`), e.g. the outcome of a non-blocking connect.
pub(crate) fn take_socket_error(fd: i32) -> Result<(), Errno> {
    let mut v: i32 = 0;
    let mut len = core::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and sized as passed.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    })?;
    if v == 0 { Ok(()) } else { Err(v) }
}

// ───────────────────────────── non-blocking I/O (epoll backend) ─────────────────────────────

/// Accepts one connection; the new socket is non-blocking and close-on-exec.
pub(crate) fn accept(fd: i32, peer: &mut SockAddr) -> Result<i32, Errno> {
    peer.len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `peer` has room for `peer.len` bytes; the kernel updates `peer.len`.
    check(unsafe {
        libc::accept4(
            fd,
            peer.as_mut_ptr(),
            &mut peer.len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })
}

/// Starts (or checks) a non-blocking connect.
pub(crate) fn connect(fd: i32, addr: &SockAddr) -> Result<(), Errno> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes for the call's duration.
    check(unsafe { libc::connect(fd, addr.as_ptr(), addr.len) }).map(|_| ())
}

/// Receives into `buf` without blocking.
pub(crate) fn recv(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is writable for its whole length.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) })
}

/// Sends `buf` without blocking (never raises SIGPIPE).
pub(crate) fn send(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is readable for its whole length.
    check_size(unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// Sends a datagram without blocking.
pub(crate) fn send_to(fd: i32, buf: &[u8], to: &SockAddr) -> Result<usize, Errno> {
    // SAFETY: `buf` is readable for its length; `to` holds a valid address of `to.len` bytes.
    check_size(unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            to.as_ptr(),
            to.len,
        )
    })
}

/// Receives a datagram without blocking.
pub(crate) fn recv_from(fd: i32, buf: &mut [u8], from: &mut SockAddr) -> Result<usize, Errno> {
    from.len = core::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length; `from` has room for `from.len` bytes.
    check_size(unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            from.as_mut_ptr(),
            &mut from.len,
        )
    })
}

/// Reads at `offset`.
pub(crate) fn pread(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    // SAFETY: `buf` is writable for its whole length.
    check_size(unsafe {
        libc::pread(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    })
}

/// Writes at `offset`.
pub(crate) fn pwrite(fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
    // SAFETY: `buf` is readable for its whole length.
    check_size(unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), offset as libc::off_t) })
}

/// Open flags for `openat(2)` (always close-on-exec).
pub(crate) fn open_flags(f: tina_core::io::OpenFlags) -> i32 {
    let mut flags = match (f.read, f.write) {
        (true, true) => libc::O_RDWR,
        (false, true) => libc::O_WRONLY,
        _ => libc::O_RDONLY,
    };
    if f.create {
        flags |= libc::O_CREAT;
    }
    if f.truncate {
        flags |= libc::O_TRUNC;
    }
    if f.append {
        flags |= libc::O_APPEND;
    }
    flags | libc::O_CLOEXEC
}

/// Opens `path`, which must end with a NUL byte and contain no other.
pub(crate) fn open(path_nul: &[u8], flags: i32, mode: u32) -> Result<i32, Errno> {
    if path_nul.last() != Some(&0) || path_nul[..path_nul.len() - 1].contains(&0) {
        return Err(libc::EINVAL);
    }
    // SAFETY: `path_nul` is a NUL-terminated byte string (checked above).
    check(unsafe { libc::openat(libc::AT_FDCWD, path_nul.as_ptr().cast(), flags, mode) })
}

/// Copies up to `len` bytes of `file` at `offset` to socket `out` in the kernel.
pub(crate) fn sendfile(out: i32, file: i32, offset: u64, len: usize) -> Result<usize, Errno> {
    let mut off = offset as libc::off_t;
    // SAFETY: `off` is a live off_t the kernel updates; descriptors are integers.
    check_size(unsafe { libc::sendfile(out, file, &mut off, len) })
}

// ───────────────────────────── signals ─────────────────────────────

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: `set` is a valid sigset_t; an invalid number is simply not added.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

/// The signals the control loop handles synchronously.
pub(crate) const CONTROL_SIGNALS: [i32; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2];

/// Blocks `signals` in the calling thread (threads it spawns inherit the mask); returns the
/// previous mask so it can be restored.
pub(crate) fn block_signals(signals: &[i32]) -> libc::sigset_t {
    let set = sigset(signals);
    // SAFETY: sigset_t is plain data.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` and `old` are valid sigsets.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    old
}

/// Restores a mask returned by [`block_signals`].
pub(crate) fn restore_signal_mask(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid sigset.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, core::ptr::null_mut()) };
}

/// Waits up to `timeout_ms` for one of `signals` (which must be blocked) and returns it.
pub(crate) fn wait_signal(signals: &[i32], timeout_ms: u64) -> Option<i32> {
    let set = sigset(signals);
    let ts = libc::timespec {
        tv_sec: (timeout_ms / 1000) as libc::time_t,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: `set` and `ts` are valid; a null siginfo pointer is allowed.
    let s = unsafe { libc::sigtimedwait(&set, core::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// Makes SIGPIPE harmless for the whole process (writes to closed sockets return EPIPE).
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN for SIGPIPE touches no Rust memory.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// The signal's conventional name.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "signal",
    }
}

// ───────────────────────────── hardware faults ─────────────────────────────

thread_local! {
    /// The shard this thread runs (-1: not a shard thread), read by the fault handler.
    static FAULT_SHARD: Cell<i32> = const { Cell::new(-1) };
    /// That shard's shared state (null: none), read by the fault handler and the panic hook.
    static FAULT_SHARED: Cell<*const ShardShared> = const { Cell::new(core::ptr::null()) };
}

/// Marks the calling thread as the thread of `shard` for fault reports. `shared` must stay
/// alive until [`clear_fault_shard`] is called on this thread.
pub(crate) fn set_fault_shard(shard: i32, shared: &ShardShared) {
    FAULT_SHARD.with(|s| s.set(shard));
    FAULT_SHARED.with(|s| s.set(shared));
}

/// Ends [`set_fault_shard`] (the shard thread is finishing).
pub(crate) fn clear_fault_shard() {
    FAULT_SHARD.with(|s| s.set(-1));
    FAULT_SHARED.with(|s| s.set(core::ptr::null()));
}

/// The shared state of the shard the calling thread runs.
pub(crate) fn fault_shared() -> Option<&'static ShardShared> {
    let p = FAULT_SHARED.with(|s| s.get());
    // SAFETY: a non-null pointer was set by `set_fault_shard` from a reference its caller
    // keeps alive until `clear_fault_shard` on this same thread, which nulls it; this thread
    // cannot observe it after that. The `'static` is only as long as this thread's current
    // shard run; callers use it for the duration of one report.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The shard the calling thread runs, or -1.
pub(crate) fn fault_shard() -> i32 {
    FAULT_SHARD.with(|s| s.get())
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
}

impl<const N: usize> core::fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(N - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let shard = FAULT_SHARD.with(|s| s.get());
    // The kernel passes a valid siginfo to SA_SIGINFO handlers; si_addr is meaningful for
    // SIGSEGV/SIGBUS/SIGILL/SIGFPE.
    let addr = if info.is_null() {
        0
    } else {
        // SAFETY: see above: `info` is non-null and valid for this signal.
        (unsafe { (*info).si_addr() }) as usize
    };
    let mut b = StackBuf::<320>::new();
    let _ = write!(b, "tina: fatal {} at address {addr:#x} ", signal_name(sig));
    if shard >= 0 {
        let _ = write!(b, "on shard {shard}, ");
        match fault_shared().and_then(ShardShared::running_call) {
            Some((h, ty, kind)) => {
                let _ = write!(b, "in {kind} of isolate {h} (type {ty})");
            }
            None => {
                let _ = write!(b, "in the scheduler (no user call was running)");
            }
        }
    } else {
        let _ = write!(b, "outside any shard thread");
    }
    let _ = writeln!(
        b,
        "; a hardware fault cannot be recovered in-process: exiting with status {} so a \
         supervisor (systemd, k8s) restarts the process",
        128 + sig
    );
    write_stderr(b.as_bytes());
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(128 + sig) };
}

/// Installs the hardware-fault handler (SIGSEGV, SIGBUS, SIGILL, SIGFPE) process-wide. It runs
/// on the thread's alternate signal stack (see [`AltStack`]), prints one line naming the
/// signal, the address and the shard, and exits with `128 + signal`.
pub(crate) fn install_fault_handlers() {
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
        // SAFETY: sigaction is plain data; zeroed is a valid starting point.
        let mut sa: libc::sigaction = unsafe { core::mem::zeroed() };
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `sa.sa_mask` is a valid sigset.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: installs a handler that only performs async-signal-safe operations.
        unsafe { libc::sigaction(sig, &sa, core::ptr::null_mut()) };
    }
}

/// An alternate signal stack for the calling thread, so a stack overflow can still be
/// reported. Disabled and unmapped on drop (drop it on the thread that created it).
pub(crate) struct AltStack {
    mapping: Mapping,
}

impl AltStack {
    pub(crate) fn install() -> Result<AltStack, Errno> {
        let size = (libc::SIGSTKSZ * 4).max(64 * 1024);
        let mut mapping = Mapping::new_prefaulted(size, false)?;
        let ss = libc::stack_t {
            ss_sp: mapping.region().as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: mapping.len(),
        };
        // SAFETY: `ss` describes our own live mapping, which outlives the registration (it is
        // disabled in Drop before the mapping is unmapped).
        check(unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) })?;
        Ok(AltStack { mapping })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let ss = libc::stack_t {
            ss_sp: core::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling the alternate stack of the calling thread.
        unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) };
        let _ = self.mapping.len();
    }
}

// ───────────────────────────── seccomp ─────────────────────────────

/// Installs a seccomp filter on the calling thread (and threads it spawns later) that makes
/// `io_uring_setup` fail with `EPERM`, as container runtimes' default profiles do. For
/// testing the epoll fallback; irreversible for the thread.
pub(crate) fn deny_io_uring() -> Result<(), Errno> {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    const NR_OFFSET: u32 = 0;
    const ARCH_OFFSET: u32 = 4;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let nr = libc::SYS_io_uring_setup as u32;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    let ld_w_abs = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq_k = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut filter = [
        stmt(ld_w_abs, ARCH_OFFSET),
        jump(jeq_k, AUDIT_ARCH, 1, 0),
        stmt(ret_k, RET_ALLOW),
        stmt(ld_w_abs, NR_OFFSET),
        jump(jeq_k, nr, 0, 1),
        stmt(ret_k, RET_ERRNO | libc::EPERM as u32),
        stmt(ret_k, RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // SAFETY: `prog` points to a valid BPF program that lives for the duration of the call
    // (the kernel copies it).
    check(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
            0,
            0,
        )
    })?;
    Ok(())
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

    #[test]
    fn sockaddr_roundtrips_v4_and_v6() {
        for a in [
            "127.0.0.1:7000",
            "[::1]:53",
            "[fe80::1%3]:8080",
            "0.0.0.0:0",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(SockAddr::from(&addr).socket_addr(), Some(addr));
        }
        assert_eq!(
            SockAddr::empty().socket_addr(),
            None,
            "family 0 is no address"
        );
    }

    #[test]
    fn stack_buf_truncates_instead_of_growing() {
        let mut b = StackBuf::<8>::new();
        let _ = write!(b, "0123456789");
        assert_eq!(b.as_bytes(), b"01234567");
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
