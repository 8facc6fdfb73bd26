//! Signals: the control loop's signal mask and synchronous wait, SIGPIPE, the hardware-fault
//! reporter (an async-signal-safe handler on an alternate stack), and a seccomp filter for
//! testing the epoll fallback.

use core::fmt::Write as _;
use std::cell::Cell;

use super::{Errno, Mapping, StackBuf, check, stderr};

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

/// Unblocks `signals` in the calling thread.
pub(crate) fn unblock_signals(signals: &[i32]) {
    let set = sigset(signals);
    // SAFETY: `set` is a valid sigset; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut()) };
}

/// A non-blocking `signalfd` for `signals` (which must be blocked in every thread).
pub(crate) fn signalfd(signals: &[i32]) -> Result<super::OwnedFd, Errno> {
    let set = sigset(signals);
    // SAFETY: `set` is a valid sigset; -1 asks for a new descriptor.
    check(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })
        .map(super::OwnedFd)
}

/// Takes one pending signal from a `signalfd` (`None`: none pending).
pub(crate) fn read_signal(fd: i32) -> Option<i32> {
    // SAFETY: `signalfd_siginfo` is plain data for which all-zero is valid.
    let mut info: libc::signalfd_siginfo = unsafe { core::mem::zeroed() };
    let size = core::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into the live `info`.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    (n == size as isize).then_some(info.ssi_signo as i32)
}

/// Blocks until one of `fds` is readable or `timeout_ms` passes (`None`: no timeout).
pub(crate) fn poll_readable(fds: &[i32; 2], timeout_ms: Option<i32>) {
    let mut p = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `p` is a live array of two pollfds.
    unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms.unwrap_or(-1)) };
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

/// What the fault reporter and the panic hook ask of the shard a thread runs: the user call
/// running now, as (isolate, type name, "init"/"handle"). The shard's shared state implements
/// it; this layer only knows the trait, so it imports nothing from the layers above it.
pub(crate) trait RunningCall {
    /// The user call running now, if any.
    fn running_call(&self)
    -> Option<(tina_core::platform::HandleBits, &'static str, &'static str)>;
}

thread_local! {
    /// The shard this thread runs (-1: not a shard thread), read by the fault handler.
    static FAULT_SHARD: Cell<i32> = const { Cell::new(-1) };
    /// That shard's shared state (none: not a shard thread), read by the fault handler and the
    /// panic hook.
    static FAULT_SHARED: Cell<Option<*const dyn RunningCall>> = const { Cell::new(None) };
}

/// Marks the calling thread as the thread of `shard` for fault reports. `shared` must stay
/// alive until [`clear_fault_shard`] is called on this thread.
pub(crate) fn set_fault_shard(shard: i32, shared: &(dyn RunningCall + 'static)) {
    FAULT_SHARD.with(|s| s.set(shard));
    FAULT_SHARED.with(|s| s.set(Some(shared as *const dyn RunningCall)));
}

/// Ends [`set_fault_shard`] (the shard thread is finishing).
pub(crate) fn clear_fault_shard() {
    FAULT_SHARD.with(|s| s.set(-1));
    FAULT_SHARED.with(|s| s.set(None));
}

/// The shared state of the shard the calling thread runs.
pub(crate) fn fault_shared() -> Option<&'static dyn RunningCall> {
    let p = FAULT_SHARED.with(|s| s.get())?;
    // SAFETY: the pointer was set by `set_fault_shard` from a reference its caller keeps
    // alive until `clear_fault_shard` on this same thread, which clears it; this thread
    // cannot observe it after that. The `'static` is only as long as this thread's current
    // shard run; callers use it for the duration of one report.
    Some(unsafe { &*p })
}

/// The shard the calling thread runs, or -1.
pub(crate) fn fault_shard() -> i32 {
    FAULT_SHARD.with(|s| s.get())
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
        match fault_shared().and_then(|s| s.running_call()) {
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
    // Best effort and never blocking: with stderr stalled (a full pipe) the line is lost but
    // the process still exits.
    stderr::write_now(b.as_bytes());
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(128 + sig) };
}

/// Installs the hardware-fault handler (SIGSEGV, SIGBUS, SIGILL, SIGFPE) process-wide. It runs
/// on the thread's alternate signal stack (see [`AltStack`]), prints one line naming the
/// signal, the address and the shard (a non-blocking write: lost if stderr is stalled), and
/// exits with `128 + signal`.
pub(crate) fn install_fault_handlers() {
    // Choose the non-blocking way to stderr now: the handler cannot.
    stderr::prepare();
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
