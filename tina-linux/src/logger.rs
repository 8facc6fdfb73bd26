//! The log writer: a bounded path from every thread of the runtime to stderr, on which no
//! thread that logs ever waits for stderr.
//!
//! ```text
//!   tina-shard-0 ──push──▶ [queue: fixed lines] ──┐
//!   tina-shard-1 ──push──▶ [queue]                ├──▶ tina-log ── non-blocking write;
//!   watchdog, control loop ──▶ [a queue each]     │               poll(POLLOUT) when full ──▶ fd 2
//!   any other thread ──push──▶ [shared queue] ────┘
//! ```
//!
//! - **Producers never wait for the sink.** A thread that logs copies its line (at most
//!   [`LINE_SIZE_MAX`] bytes) into a queue of fixed-size lines allocated when the queue was
//!   registered (at boot), and wakes the writer thread. A queue's lock is held only for that
//!   copy and, by the writer, for the copy out — never across a write. When the queue is
//!   full the line is dropped and counted; nothing allocates after registration.
//! - **Per-producer queues.** Each shard thread, the watchdog and the control loop register a
//!   queue of their own ([`Logger::register`]), so a flooding shard cannot take another's
//!   room, and lines of one producer keep their order. Threads without one (a binary's main
//!   thread outside `run`, any other thread of the program) share one queue.
//! - **One thread waits for stderr.** `tina-log` drains the queues round-robin and writes each
//!   line with one non-blocking write ([`crate::sys::stderr`]); when stderr is full (a pipe
//!   nobody reads) it waits in `poll(POLLOUT)` — only it. Once a write goes through again,
//!   it first writes `tina: N log lines dropped (stderr too slow)` for the lines dropped
//!   meanwhile. With nothing queued it parks without a timeout (no wake-ups when idle).
//! - **Flush is bounded.** [`Logger::flush`] waits until every queued line is written, at
//!   most for the time given; the runtime flushes when a run ends, the paths that end the
//!   process flush briefly and then write their last line without waiting.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use core::fmt::Write as _;

use crate::sys::stderr::{self, Target};
use crate::sys::{self, StackBuf};

/// Bytes one queued line holds (longer lines are cut).
pub(crate) const LINE_SIZE_MAX: usize = 512;

/// Lines of the queue shared by threads without one of their own.
const SHARED_LINES: usize = 64;

/// Lines the writer takes from one queue before turning to the next.
const LINES_PER_TURN_MAX: usize = 32;

#[derive(Clone, Copy)]
struct Line {
    len: u16,
    bytes: [u8; LINE_SIZE_MAX],
}

impl Line {
    const EMPTY: Line = Line {
        len: 0,
        bytes: [0; LINE_SIZE_MAX],
    };

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

const _: () = assert!(LINE_SIZE_MAX <= u16::MAX as usize);

/// A ring of fixed-size lines.
struct Lines {
    slots: Box<[Line]>,
    head: usize,
    len: usize,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) -> bool {
        if self.len == self.slots.len() {
            return false;
        }
        let i = (self.head + self.len) % self.slots.len();
        let n = bytes.len().min(LINE_SIZE_MAX);
        self.slots[i].bytes[..n].copy_from_slice(&bytes[..n]);
        self.slots[i].len = n as u16;
        self.len += 1;
        true
    }

    fn pop_into(&mut self, out: &mut Line) -> bool {
        if self.len == 0 {
            return false;
        }
        *out = self.slots[self.head];
        self.head = (self.head + 1) % self.slots.len();
        self.len -= 1;
        true
    }
}

/// One producer's bounded queue of lines.
pub(crate) struct LineQueue {
    lines: Mutex<Lines>,
    logger: &'static Logger,
    /// Its producer has finished: the writer forgets the queue once it is empty.
    closed: AtomicBool,
}

impl LineQueue {
    fn new(logger: &'static Logger, capacity: usize) -> LineQueue {
        LineQueue {
            lines: Mutex::new(Lines {
                slots: vec![Line::EMPTY; capacity.max(1)].into_boxed_slice(),
                head: 0,
                len: 0,
            }),
            logger,
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one line, or drops and counts it when the queue is full. Never waits for the
    /// sink.
    fn push(&self, bytes: &[u8]) -> bool {
        if !self.logger.running() {
            return self.logger.write_without_writer(bytes);
        }
        let queued = {
            let mut lines = self.lock();
            // Counted before the line becomes visible, so the writer's decrement never
            // comes first.
            self.logger.queued.fetch_add(1, Ordering::AcqRel);
            let queued = lines.push(bytes);
            if !queued {
                self.logger.queued.fetch_sub(1, Ordering::AcqRel);
            }
            queued
        };
        if queued {
            self.logger.wake();
        } else {
            self.logger.count_drops(1);
        }
        queued
    }

    fn is_empty(&self) -> bool {
        self.lock().len == 0
    }
}

thread_local! {
    /// The calling thread's own queue, if it registered one.
    static OWN: RefCell<Option<Arc<LineQueue>>> = const { RefCell::new(None) };
}

/// A thread's registration as a producer with a queue of its own (see
/// [`Logger::register`]). Dropping it (on the same thread) closes the queue — the writer
/// still writes what is in it — and restores the thread's previous queue.
pub(crate) struct Producer {
    queue: Arc<LineQueue>,
    previous: Option<Arc<LineQueue>>,
    /// Restores a thread-local: stays on its thread.
    _not_send: PhantomData<*const ()>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        let previous = self.previous.take();
        let _ = OWN.try_with(|own| {
            if let Ok(mut own) = own.try_borrow_mut() {
                *own = previous;
            }
        });
        self.queue.logger.wake();
    }
}

/// The writer thread's state: registered queues, counts, and the flush handshake.
pub(crate) struct Logger {
    target: Target,
    queues: Mutex<Vec<Arc<LineQueue>>>,
    shared: OnceLock<Arc<LineQueue>>,
    /// The writer thread (`None`: it could not be started; lines are written at once,
    /// without waiting, instead).
    thread: OnceLock<Option<Thread>>,
    /// Lines in queues or being written.
    queued: AtomicUsize,
    /// Lines dropped since the last report line.
    dropped_unreported: AtomicU64,
    /// Lines dropped in all.
    dropped_total: AtomicU64,
    drained_lock: Mutex<()>,
    drained: Condvar,
}

static STDERR: Logger = Logger::new(Target::Stderr);

/// The process's stderr logger (its writer thread starts on first use).
pub(crate) fn stderr() -> &'static Logger {
    &STDERR
}

/// Queues one line (which should end with a newline) for stderr from the calling thread:
/// into its own queue if it registered one, else into the shared queue. Never waits for
/// stderr; returns false if the line was dropped (counted).
pub(crate) fn push_line(bytes: &[u8]) -> bool {
    let own = OWN
        .try_with(|own| {
            own.try_borrow()
                .ok()
                .and_then(|own| own.as_ref().map(|q| q.push(bytes)))
        })
        .ok()
        .flatten();
    match own {
        Some(queued) => queued,
        None => STDERR.push_shared(bytes),
    }
}

/// Writes `bytes` as a process's last words: flushes what is queued for at most `wait`,
/// then writes `bytes` without waiting (lost if stderr is still stalled).
pub(crate) fn last_words(bytes: &[u8], wait: StdDuration) {
    STDERR.flush(wait);
    stderr::write_now(bytes);
}

impl Logger {
    pub(crate) const fn new(target: Target) -> Logger {
        Logger {
            target,
            queues: Mutex::new(Vec::new()),
            shared: OnceLock::new(),
            thread: OnceLock::new(),
            queued: AtomicUsize::new(0),
            dropped_unreported: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            drained_lock: Mutex::new(()),
            drained: Condvar::new(),
        }
    }

    fn queues(&self) -> MutexGuard<'_, Vec<Arc<LineQueue>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the writer thread and the shared queue (once; allocates, so call it at boot).
    /// Returns whether the writer runs.
    pub(crate) fn start(&'static self) -> bool {
        if self.target == Target::Stderr {
            stderr::prepare();
        }
        self.shared.get_or_init(|| {
            let q = Arc::new(LineQueue::new(self, SHARED_LINES));
            self.queues().push(Arc::clone(&q));
            q
        });
        self.thread
            .get_or_init(|| {
                // The writer inherits a mask blocking the control signals: they are the
                // control loop's (a thread that leaves them unblocked may be the one the
                // kernel picks, and their default action ends the process).
                let old_mask = sys::block_signals(&sys::CONTROL_SIGNALS);
                let t = std::thread::Builder::new()
                    .name("tina-log".into())
                    .spawn(move || self.write_forever())
                    .ok()
                    .map(|t| t.thread().clone());
                sys::restore_signal_mask(&old_mask);
                t
            })
            .is_some()
    }

    /// Gives the calling thread a queue of its own, of `capacity` lines (allocated now).
    pub(crate) fn register(&'static self, capacity: usize) -> Producer {
        self.start();
        let queue = Arc::new(LineQueue::new(self, capacity));
        self.queues().push(Arc::clone(&queue));
        let previous = OWN
            .try_with(|own| own.replace(Some(Arc::clone(&queue))))
            .ok()
            .flatten();
        Producer {
            queue,
            previous,
            _not_send: PhantomData,
        }
    }

    fn push_shared(&'static self, bytes: &[u8]) -> bool {
        if !self.start() {
            return self.write_without_writer(bytes);
        }
        match self.shared.get() {
            Some(q) => q.push(bytes),
            None => false,
        }
    }

    /// Whether the writer thread runs.
    fn running(&self) -> bool {
        matches!(self.thread.get(), Some(Some(_)))
    }

    /// No writer thread could be started: writes `bytes` now if that needs no waiting, else
    /// drops and counts them.
    fn write_without_writer(&self, bytes: &[u8]) -> bool {
        let written = stderr::write_now(bytes);
        if !written {
            self.count_drops(1);
        }
        written
    }

    fn wake(&self) {
        if let Some(Some(t)) = self.thread.get() {
            t.unpark();
        }
    }

    fn count_drops(&self, n: u64) {
        self.dropped_unreported.fetch_add(n, Ordering::Relaxed);
        self.dropped_total.fetch_add(n, Ordering::Relaxed);
    }

    /// Lines dropped so far (queue full, or stderr failed).
    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Waits until every queued line has been written, at most `timeout`. Returns whether
    /// everything was written (false: stderr is too slow or stalled; the lines stay queued).
    pub(crate) fn flush(&self, timeout: StdDuration) -> bool {
        let deadline = StdInstant::now() + timeout;
        self.wake();
        let mut guard = self.drained_lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.queued.load(Ordering::Acquire) > 0 {
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .drained
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// The writer thread.
    fn write_forever(&self) {
        let mut line = Line::EMPTY;
        loop {
            let mut i = 0;
            loop {
                // Clone the queue out of the registry: producers may register while this
                // thread waits for stderr.
                let Some(q) = self.queues().get(i).map(Arc::clone) else {
                    break;
                };
                for _ in 0..LINES_PER_TURN_MAX {
                    if !q.lock().pop_into(&mut line) {
                        break;
                    }
                    self.write_line(line.as_bytes());
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                }
                i += 1;
            }
            if self.dropped_unreported.load(Ordering::Relaxed) > 0 {
                self.report_drops();
            }
            self.queues()
                .retain(|q| !(q.closed.load(Ordering::Acquire) && q.is_empty()));
            if self.queued.load(Ordering::Acquire) == 0 {
                drop(self.drained_lock.lock().unwrap_or_else(|e| e.into_inner()));
                self.drained.notify_all();
                // A push after this check unparks (the token is kept), so nothing is missed.
                if self.queued.load(Ordering::Acquire) == 0 {
                    std::thread::park();
                }
            }
        }
    }

    fn write_line(&self, bytes: &[u8]) {
        if self.dropped_unreported.load(Ordering::Relaxed) > 0 {
            self.report_drops();
        }
        if !self.write_all(bytes) {
            self.count_drops(1);
        }
    }

    /// Writes `tina: N log lines dropped (stderr too slow)` for the drops since the last one.
    fn report_drops(&self) {
        let n = self.dropped_unreported.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        let mut b = StackBuf::<96>::new();
        let _ = writeln!(b, "tina: {n} log lines dropped (stderr too slow)");
        if !self.write_all(b.as_bytes()) {
            self.dropped_unreported.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Writes all of `bytes`, waiting for the sink as long as it takes (only this thread
    /// waits). False if the sink failed (closed, broken pipe).
    fn write_all(&self, bytes: &[u8]) -> bool {
        let mut rest = bytes;
        while !rest.is_empty() {
            match stderr::try_write(self.target, rest) {
                Ok(0) => return false,
                Ok(n) => rest = &rest[n.min(rest.len())..],
                Err(libc::EAGAIN) => {
                    stderr::wait_writable(self.target, -1);
                }
                Err(libc::EINTR) => {}
                Err(_) => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A logger writing to a pipe the test controls (its own writer thread).
    fn pipe_logger() -> (&'static Logger, i32, i32) {
        let (r, w) = crate::sys::pipe().expect("pipe");
        let logger: &'static Logger = Box::leak(Box::new(Logger::new(Target::Fd(w))));
        assert!(logger.start(), "the writer thread starts");
        (logger, r, w)
    }

    /// Fills the pipe until a write would block.
    fn fill(w: i32) {
        let chunk = [b'.'; 4096];
        while stderr::try_write(Target::Fd(w), &chunk).is_ok() {}
    }

    /// Reads from the (non-blocking) read end until `done` holds for what was read, at most
    /// 10 s; returns everything read.
    fn read_until(r: i32, done: impl Fn(&str) -> bool) -> String {
        let deadline = StdInstant::now() + StdDuration::from_secs(10);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while StdInstant::now() < deadline {
            let n = stderr::read_some(r, &mut buf, 100);
            got.extend_from_slice(&buf[..n]);
            if done(&String::from_utf8_lossy(&got)) {
                break;
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// The numbers of the `flood N` lines in `text`, and the sum of its drop reports.
    fn floods_and_reported_drops(text: &str) -> (Vec<usize>, u64) {
        let mut floods = Vec::new();
        let mut reported = 0;
        for l in text.split('\n') {
            let l = l.trim_start_matches('.');
            if let Some(n) = l.strip_prefix("flood ") {
                floods.push(n.parse().expect("a flood line"));
            } else if let Some(rest) = l.strip_prefix("tina: ") {
                let n = rest.strip_suffix(" log lines dropped (stderr too slow)");
                reported += n
                    .and_then(|n| n.parse::<u64>().ok())
                    .expect("a drop report");
            }
        }
        (floods, reported)
    }

    #[test]
    fn lines_reach_the_sink_in_order_and_flush_waits_for_them() {
        let (logger, r, w) = pipe_logger();
        let lines = 200;
        let handle = std::thread::spawn(move || {
            let _me = logger.register(lines);
            for i in 0..lines {
                assert!(push_line_to(logger, format!("line {i}\n").as_bytes()));
            }
            assert!(
                logger.flush(StdDuration::from_secs(10)),
                "an open pipe drains"
            );
        });
        handle.join().unwrap();
        let last = format!("line {}\n", lines - 1);
        let got = read_until(r, |got| got.contains(&last));
        let expected: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        assert_eq!(got, expected);
        assert_eq!(logger.dropped_total(), 0);
        crate::sys::close(r).unwrap();
        crate::sys::close(w).unwrap();
    }

    #[test]
    fn a_stalled_sink_never_blocks_a_producer_and_drops_are_reported_once_it_drains() {
        let (logger, r, w) = pipe_logger();
        fill(w);
        const CAPACITY: usize = 8;
        const LINES: usize = 10_000;
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let _me = logger.register(CAPACITY);
            let mut queued = 0;
            for i in 0..LINES {
                let mut b = StackBuf::<64>::new();
                let _ = writeln!(b, "flood {i}");
                if push_line_to(logger, b.as_bytes()) {
                    queued += 1;
                }
            }
            let flushed = logger.flush(StdDuration::from_millis(50));
            let _ = done.send((queued, flushed));
        });
        // Bounded wait for the producer: on a stalled sink it must finish by itself.
        let (queued, flushed) = finished
            .recv_timeout(StdDuration::from_secs(20))
            .expect("logging to a stalled stderr returned");
        assert!(
            !flushed,
            "a flush cannot complete while the sink is stalled"
        );
        // The writer may hold one line in hand besides a full queue.
        assert!(
            (CAPACITY..=CAPACITY + 1).contains(&queued),
            "{queued} lines queued"
        );
        let dropped = (LINES - queued) as u64;
        assert_eq!(logger.dropped_total(), dropped);
        // The reader comes back: the queued lines come out, in order, and the drops are
        // reported (before the line that follows them), every one.
        let got = read_until(r, |got| {
            let (floods, reported) = floods_and_reported_drops(got);
            floods.len() == queued && reported == dropped
        });
        let (floods, reported) = floods_and_reported_drops(&got);
        assert_eq!(floods.len(), queued, "{:?}", tail(&got));
        assert_eq!(reported, dropped, "{:?}", tail(&got));
        assert_eq!(floods[0], 0, "the first line was queued");
        assert!(
            floods.windows(2).all(|w| w[0] < w[1]),
            "in order: {floods:?}"
        );
        assert!(logger.flush(StdDuration::from_secs(10)));
        crate::sys::close(r).unwrap();
        crate::sys::close(w).unwrap();
    }

    fn tail(s: &str) -> &str {
        let start = s.len().saturating_sub(400);
        let mut i = start;
        while !s.is_char_boundary(i) {
            i += 1;
        }
        &s[i..]
    }

    /// `push_line`, for a logger other than the process's stderr one.
    fn push_line_to(logger: &'static Logger, bytes: &[u8]) -> bool {
        OWN.with(|own| match own.borrow().as_ref() {
            Some(q) if core::ptr::eq(q.logger, logger) => q.push(bytes),
            _ => panic!("the thread has no queue of this logger"),
        })
    }
}
