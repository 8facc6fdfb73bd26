//! Why a run could not start ([`RunError`]), why one shard did not boot ([`BootFailure`]), and
//! a spec that needs more memory than there is ([`MemoryShortfall`]), each worded the way
//! Linux reports its errors.

use tina_core::BootError;
use tina_core::io::IoError;

use crate::sys;

/// Why the runtime could not start.
#[derive(Debug)]
pub enum RunError {
    /// The spec is invalid.
    Spec(tina_core::SpecError),
    /// The requested backend is unavailable (the text says why and what to do).
    Backend(String),
    /// A CPU could not be chosen or used.
    Cpu(String),
    /// A resource could not be created at boot.
    Boot(String),
    /// The system needs more memory than is available (checked before anything is mapped).
    Memory(MemoryShortfall),
    /// A shard failed to boot: nothing was left serving (the shards that had booted were
    /// shut down) and this is the first failure, by shard index.
    ShardBoot {
        /// The shard.
        shard: usize,
        /// Why.
        failure: BootFailure,
    },
    /// This [`Control`](crate::Control) already ran a system.
    ControlInUse,
}

impl core::fmt::Display for RunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            // The spec error says "invalid spec: …" itself.
            RunError::Spec(e) => e.fmt(f),
            RunError::Backend(s) | RunError::Cpu(s) | RunError::Boot(s) => f.write_str(s),
            RunError::Memory(m) => m.fmt(f),
            RunError::ShardBoot { shard, failure } => {
                write!(f, "shard {shard} failed to boot: {failure}")
            }
            RunError::ControlInUse => f.write_str("this Control already ran a system"),
        }
    }
}

impl std::error::Error for RunError {}

/// Memory a spec needs, against what is available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryShortfall {
    /// Bytes of the shard regions, as mapped (whole pages).
    pub regions: u64,
    /// Bytes of the N×(N−1) cross-shard rings, as mapped.
    pub rings: u64,
    /// Bytes of the reactors' operation tables (heap).
    pub reactors: u64,
    /// Bytes available ([`Config::memory_available`](crate::Config::memory_available)).
    pub available: u64,
}

impl MemoryShortfall {
    /// Everything the system needs.
    pub fn needed(&self) -> u64 {
        self.regions
            .saturating_add(self.rings)
            .saturating_add(self.reactors)
    }
}

impl core::fmt::Display for MemoryShortfall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the system needs {} bytes of memory ({} for the shard regions, {} for the \
             cross-shard rings, {} for the I/O operation tables) but only {} bytes are available; \
             reduce ring_capacity, the shard count or the per-shard sizes (the spec's shard \
             config and type capacities)",
            self.needed(),
            self.regions,
            self.rings,
            self.reactors,
            self.available
        )
    }
}

/// Why one shard did not boot.
#[derive(Clone, Debug)]
pub enum BootFailure {
    /// Memory could not be mapped.
    Map {
        /// What was being mapped ("shard region", "cross-shard rings").
        what: &'static str,
        /// How many bytes.
        bytes: usize,
        /// The `mmap` errno.
        errno: i32,
    },
    /// The inbound rings could not be carved from their memory.
    Rings(String),
    /// The I/O reactor could not be created.
    Reactor(String),
    /// The shard thread could not be started.
    Thread(String),
    /// The core refused to boot: the region, or a static child whose `init` failed
    /// ([`BootError::RootFailed`], which names the child, its reason and its last socket
    /// error).
    Core(BootError),
}

impl core::fmt::Display for BootFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootFailure::Map { what, bytes, errno } => write!(
                f,
                "cannot map {bytes} bytes for the {what}: {}",
                errno_text(*errno)
            ),
            BootFailure::Rings(s) | BootFailure::Reactor(s) | BootFailure::Thread(s) => {
                f.write_str(s)
            }
            BootFailure::Core(BootError::RootFailed(init)) => {
                write!(
                    f,
                    "the supervision tree failed to start: {} (type `{}`) failed to \
                     initialise: {}",
                    init.child, init.type_name, init.reason
                )?;
                if let Some(e) = init.io_error {
                    write!(f, ": {}", io_error_text(e))?;
                }
                Ok(())
            }
            BootFailure::Core(e) => e.fmt(f),
        }
    }
}

/// An errno as "NAME (text), errno N".
fn errno_text(errno: i32) -> String {
    format!("{}, errno {errno}", sys::errno_name(errno))
}

/// A core I/O error as Linux reported it: "text (NAME, errno N)".
fn io_error_text(e: IoError) -> String {
    let (text, name, errno) = match e {
        IoError::ConnectionRefused => ("connection refused", "ECONNREFUSED", libc::ECONNREFUSED),
        IoError::ConnectionReset => ("connection reset", "ECONNRESET", libc::ECONNRESET),
        IoError::ConnectionAborted => ("connection aborted", "ECONNABORTED", libc::ECONNABORTED),
        IoError::BrokenPipe => ("broken pipe", "EPIPE", libc::EPIPE),
        IoError::NotConnected => ("not connected", "ENOTCONN", libc::ENOTCONN),
        IoError::AddrInUse => ("address in use", "EADDRINUSE", libc::EADDRINUSE),
        IoError::AddrNotAvailable => (
            "address not available",
            "EADDRNOTAVAIL",
            libc::EADDRNOTAVAIL,
        ),
        IoError::NotFound => ("not found", "ENOENT", libc::ENOENT),
        IoError::PermissionDenied => return "permission denied (EACCES or EPERM)".into(),
        IoError::AlreadyExists => ("already exists", "EEXIST", libc::EEXIST),
        IoError::InvalidInput => ("invalid argument", "EINVAL", libc::EINVAL),
        IoError::TimedOut => ("timed out", "ETIMEDOUT", libc::ETIMEDOUT),
        IoError::TooManyOpenFiles => return "too many open files (EMFILE or ENFILE)".into(),
        IoError::BadDescriptor => ("bad descriptor", "EBADF", libc::EBADF),
        IoError::Os(errno) => return format!("OS error ({})", errno_text(errno)),
        other => return other.to_string(),
    };
    format!("{text} ({name}, errno {errno})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_read_as_linux_reports_them() {
        assert_eq!(
            io_error_text(IoError::AddrInUse),
            "address in use (EADDRINUSE, errno 98)"
        );
        assert!(io_error_text(IoError::Os(libc::ENOMEM)).contains("ENOMEM"));
        assert_eq!(
            io_error_text(IoError::NoBuffers),
            IoError::NoBuffers.to_string()
        );
    }
}
