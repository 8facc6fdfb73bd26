//! How to run a system on Linux ([`Config`]), and how much memory the machine leaves for it
//! ([`available_memory`], the default of [`Config::memory_available`]).

use std::time::Duration as StdDuration;

use tina_core::log::Level;

use crate::reactor::Backend;
use crate::watchdog::WatchdogConfig;

/// How to run a system on Linux.
#[derive(Clone, Debug)]
pub struct Config {
    /// I/O backend (default: `Auto`).
    pub backend: Backend,
    /// CPU of each shard (shard `i` → `cpus[i]`). `None`: the `i`-th CPU of the process
    /// affinity mask (so `taskset` and cgroup limits are honoured), wrapping around.
    pub cpus: Option<Vec<usize>>,
    /// Pin shard threads (default true).
    pub pin: bool,
    /// Ask for transparent huge pages for shard regions of 2 MiB or more (best effort).
    pub huge_pages: bool,
    /// Handle SIGINT/SIGTERM/SIGUSR1/SIGUSR2 in the thread that calls [`run`](crate::run) (default true).
    /// `run` blocks them in its own thread, and the shard threads inherit that; threads that
    /// already exist keep their masks, so call `run` from the main thread before starting
    /// other threads (or block these signals in them), else a signal may take its default
    /// action there. Turn off when embedding runtimes in a larger program (e.g. tests) and
    /// use [`Control::shutdown`](crate::Control::shutdown) instead.
    pub signals: bool,
    /// Install the SIGSEGV/SIGBUS/SIGILL/SIGFPE reporter (default true).
    pub fault_handlers: bool,
    /// The watchdog (default: report a tick that runs over 2 s).
    pub watchdog: Option<WatchdogConfig>,
    /// Log records above this level are dropped (default `Info`).
    pub log_level: Level,
    /// Print the boot lines (backend, CPUs) on stderr (default true).
    pub announce: bool,
    /// Graceful shutdown bound; `None`: the spec's `shutdown_timeout`.
    pub shutdown_timeout: Option<StdDuration>,
    /// How many bytes the system may still map without swapping or being killed for memory
    /// (`None`: unknown, no check). [`run`](crate::run) refuses a spec whose shard regions, rings and
    /// reactor tables need more ([`RunError::Memory`](crate::RunError::Memory)) before it maps anything (thread stacks
    /// and the kernel's io_uring memory are not counted). Default: [`available_memory`]; tests
    /// inject their own.
    pub memory_available: fn() -> Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: Backend::Auto,
            cpus: None,
            pin: true,
            huge_pages: true,
            signals: true,
            fault_handlers: true,
            watchdog: Some(WatchdogConfig::default()),
            log_level: Level::Info,
            announce: true,
            shutdown_timeout: None,
            memory_available: available_memory,
        }
    }
}

/// Bytes this process may still use: `MemAvailable` from `/proc/meminfo`, lowered to what
/// the cgroup v2 memory limit leaves (`memory.max − memory.current`) when there is one.
/// `None` if `/proc/meminfo` cannot be read.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let available = kib.saturating_mul(1024);
    Some(cgroup_memory_left().map_or(available, |left| left.min(available)))
}

/// What the cgroup v2 memory limit of this process leaves, if it has one.
fn cgroup_memory_left() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = format!("/sys/fs/cgroup{}", path.trim_end());
    let max: u64 = std::fs::read_to_string(format!("{dir}/memory.max"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let current: u64 = std::fs::read_to_string(format!("{dir}/memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(max.saturating_sub(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_known_and_at_most_the_machine_total() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let total_kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        let available = available_memory().expect("MemAvailable on Linux");
        assert!(
            available > 0 && available <= total_kib * 1024,
            "{available}"
        );
    }
}
