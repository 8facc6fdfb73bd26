//! Sockets: epoll, socket addresses in the kernel's layout, synchronous socket control and
//! the non-blocking I/O calls of the epoll backend.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use tina_core::io::{Domain, ShutdownHow, SocketKind, SocketOption};

use super::{Errno, OwnedFd, check, check_size};

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
}
