//! Zero heap allocations after boot: a counting global allocator over a steady-state echo run
//! (16 connections, thousands of round trips with random sizes up to 16 KiB), on both
//! backends. Counting covers every thread of the process — shard threads, the control loop,
//! the watchdog and the clients (which use pre-allocated buffers).

mod linux_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use linux_common::*;
use tina_linux::Backend;

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator with the caller's arguments, so the
// GlobalAlloc contract is exactly System's; counting touches only atomics.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const CLIENTS: usize = 4;
const CONNECTIONS_PER_CLIENT: usize = 4;
const WARMUP_ROUNDS: usize = 20;
const MEASURED_ROUNDS: usize = 400;
const PAYLOAD_SIZE_MAX: usize = 16 * 1024;

fn steady_state_allocations(backend: Backend) -> (u64, u64) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let rt = Running::start(echo_spec(addr, 2, 64), test_config(backend));
    let start = Barrier::new(CLIENTS + 1);
    let end = Barrier::new(CLIENTS + 1);
    let round_trips = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..CLIENTS {
            let (start, end, round_trips) = (&start, &end, &round_trips);
            scope.spawn(move || {
                let mut conns: Vec<_> =
                    (0..CONNECTIONS_PER_CLIENT).map(|_| connect(addr)).collect();
                let mut out = vec![0u8; PAYLOAD_SIZE_MAX];
                let mut back = vec![0u8; PAYLOAD_SIZE_MAX];
                let mut rng = Rng::new(100 + t as u64);
                let mut exchange = |conns: &mut Vec<std::net::TcpStream>, rounds: usize| {
                    for _ in 0..rounds {
                        for s in conns.iter_mut() {
                            let len = 1 + rng.next() as usize % PAYLOAD_SIZE_MAX;
                            rng.fill(&mut out[..len]);
                            echo_once(s, &out[..len], &mut back).expect("echo");
                            assert!(out[..len] == back[..len], "bytes differ");
                        }
                    }
                };
                exchange(&mut conns, WARMUP_ROUNDS);
                start.wait();
                exchange(&mut conns, MEASURED_ROUNDS);
                round_trips.fetch_add((MEASURED_ROUNDS * conns.len()) as u64, Ordering::Relaxed);
                end.wait();
            });
        }
        start.wait();
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::SeqCst);
        end.wait();
        COUNTING.store(false, Ordering::SeqCst);
    });
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let report = rt.stop();
    assert!(report.clean);
    (allocations, round_trips.load(Ordering::Relaxed))
}

#[test]
fn steady_state_echo_allocates_nothing_after_boot() {
    // The counter works: one deliberate allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let probe = std::hint::black_box(vec![1u8; 64]);
    COUNTING.store(false, Ordering::SeqCst);
    drop(probe);
    assert!(
        ALLOCATIONS.swap(0, Ordering::Relaxed) >= 1,
        "the counting allocator counts"
    );
    for backend in BACKENDS {
        let (allocations, round_trips) = steady_state_allocations(backend);
        eprintln!(
            "{backend:?}: {allocations} heap allocations over {round_trips} echo round trips"
        );
        assert_eq!(
            allocations, 0,
            "{backend:?}: the steady state must not touch the heap"
        );
        assert_eq!(
            round_trips,
            (CLIENTS * CONNECTIONS_PER_CLIENT * MEASURED_ROUNDS) as u64
        );
    }
}
