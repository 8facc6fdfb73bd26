//! What every benchmark shares: CPU pinning, per-thread CPU time, a two-thread run with a start
//! barrier, and integer statistics (median, min–max) printed as fixed-point decimals.
//!
//! Integer arithmetic only (nanoseconds, picoseconds, per-mille ratios): the workspace warns on
//! floating point, and integers print the same on every machine.

use std::sync::Barrier;
use std::thread;
use std::time::Instant;

/// Up to two CPUs this process may run on, in order. `None` if fewer than two are allowed.
pub(crate) fn two_cpus() -> Option<[usize; 2]> {
    // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is a valid, writable `cpu_set_t` of the size
    // passed.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    let mut allowed = (0..libc::CPU_SETSIZE as usize).filter(|&cpu| {
        // SAFETY: `cpu < CPU_SETSIZE` and `set` is initialised.
        unsafe { libc::CPU_ISSET(cpu, &set) }
    });
    Some([allowed.next()?, allowed.next()?])
}

/// Pins the calling thread to `cpu`. Panics if the kernel refuses (a benchmark that silently
/// runs unpinned would report the wrong thing).
pub(crate) fn pin_current_thread(cpu: usize) {
    // SAFETY: the all-zero `cpu_set_t` is the empty set; `CPU_SET` writes inside it because
    // `cpu < CPU_SETSIZE` (asserted); pid 0 is the calling thread.
    let rc = unsafe {
        assert!(cpu < libc::CPU_SETSIZE as usize);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(rc, 0, "sched_setaffinity(cpu {cpu}) failed");
}

/// CPU time (user + system) the calling thread has used, in nanoseconds.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One timed run of a producer/consumer pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Wall time from the start barrier until the consumer took the last message.
    pub(crate) wall_ns: u64,
    /// CPU time of the producer thread over its part of the window.
    pub(crate) producer_cpu_ns: u64,
    /// CPU time of the consumer thread over the same window.
    pub(crate) consumer_cpu_ns: u64,
}

/// Runs `producer` and `consumer` on two threads (pinned to `cpus[0]` and `cpus[1]` when
/// given), starts both at a barrier and times the consumer until it returns.
pub(crate) fn run_pair(
    cpus: Option<[usize; 2]>,
    producer: impl FnOnce() + Send,
    consumer: impl FnOnce() + Send,
) -> Sample {
    let barrier = Barrier::new(2);
    thread::scope(|scope| {
        let barrier = &barrier;
        let producer = scope.spawn(move || {
            if let Some([cpu, _]) = cpus {
                pin_current_thread(cpu);
            }
            barrier.wait();
            let cpu_start = thread_cpu_ns();
            producer();
            thread_cpu_ns() - cpu_start
        });
        let consumer = scope.spawn(move || {
            if let Some([_, cpu]) = cpus {
                pin_current_thread(cpu);
            }
            barrier.wait();
            let (start, cpu_start) = (Instant::now(), thread_cpu_ns());
            consumer();
            let wall_ns = start.elapsed().as_nanos() as u64;
            (wall_ns, thread_cpu_ns() - cpu_start)
        });
        let producer_cpu_ns = producer.join().expect("producer panicked");
        let (wall_ns, consumer_cpu_ns) = consumer.join().expect("consumer panicked");
        Sample {
            wall_ns,
            producer_cpu_ns,
            consumer_cpu_ns,
        }
    })
}

/// Median, minimum and maximum of some integer samples.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    /// The median (the upper middle for an even count).
    pub(crate) median: u64,
    /// The smallest sample.
    pub(crate) min: u64,
    /// The largest sample.
    pub(crate) max: u64,
}

impl Spread {
    /// The spread of `samples`, which must not be empty.
    pub(crate) fn of(samples: &[u64]) -> Spread {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Spread {
            median: sorted[sorted.len() / 2],
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

/// `value / 1000` with one decimal (e.g. picoseconds printed as nanoseconds).
pub(crate) fn milli(value: u64) -> String {
    let tenths = (value + 50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A per-mille ratio printed with two decimals (`1234` → `1.23`).
pub(crate) fn ratio(per_mille: u64) -> String {
    let hundredths = (per_mille + 5) / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The CPU model from `/proc/cpuinfo`, for the report header.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// One line of the suite's closing summary: a headline comparison of one workload.
pub(crate) struct Row {
    /// Workload id and case, e.g. `B1 cap 1024`.
    pub(crate) id: String,
    /// What is compared and in which unit.
    pub(crate) metric: String,
    /// Tina's median (with unit).
    pub(crate) tina: String,
    /// The peer's name and median (with unit).
    pub(crate) peer: String,
    /// Tina ÷ peer per round, median (min–max), or the headline relation for non-ratio rows.
    pub(crate) ratio: String,
    /// The target from the issue, and whether this run met it.
    pub(crate) target: String,
}

/// The rows every benchmark contributes; `all` prints them as one markdown table at the end.
#[derive(Default)]
pub(crate) struct Summary {
    rows: Vec<Row>,
}

impl Summary {
    /// Adds one row.
    pub(crate) fn add(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Prints the table (nothing if no benchmark added a row).
    pub(crate) fn print(&self) {
        if self.rows.is_empty() {
            return;
        }
        println!("## Summary\n");
        println!(
            "| id | metric | tina (median) | peer (median) | tina ÷ peer, median (min–max) | target |"
        );
        println!("|---|---|---:|---:|---:|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.id, r.metric, r.tina, r.peer, r.ratio, r.target
            );
        }
        println!();
    }
}

/// `median (min–max)` of per-mille ratios, printed with two decimals.
pub(crate) fn ratio_spread(per_mille: &[u64]) -> String {
    let s = Spread::of(per_mille);
    format!("{} ({}–{})", ratio(s.median), ratio(s.min), ratio(s.max))
}

/// Whether a target was met, as the summary prints it.
pub(crate) fn verdict(target: &str, met: bool) -> String {
    format!("{target}: {}", if met { "met" } else { "**missed**" })
}

/// Options every duration-based workload takes from the command line.
pub(crate) struct Common {
    /// CI mode: check that the harness works, in seconds; the numbers mean nothing.
    pub(crate) quick: bool,
    /// Interleaved rounds (at least 5 for a result worth recording; 1 in quick mode).
    pub(crate) rounds: usize,
    /// `--seconds S`: overrides the workload's default timed window.
    pub(crate) seconds: Option<u64>,
    /// Running as part of `all`: long workloads may use shorter default windows.
    pub(crate) whole_suite: bool,
}

/// The calling thread's CPU affinity, to put back after a workload pinned the thread (the
/// next workload, and the child processes it starts, must see every allowed CPU again).
pub(crate) struct Affinity(libc::cpu_set_t);

impl Affinity {
    /// The calling thread's affinity now.
    pub(crate) fn current() -> Affinity {
        // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; `set` is a valid, writable `cpu_set_t` of the
        // size passed.
        let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        assert_eq!(rc, 0, "sched_getaffinity failed");
        Affinity(set)
    }

    /// Gives the calling thread this affinity again.
    pub(crate) fn restore(&self) {
        // SAFETY: pid 0 is the calling thread; `self.0` is a valid `cpu_set_t`.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.0) };
        assert_eq!(rc, 0, "sched_setaffinity failed");
    }
}
