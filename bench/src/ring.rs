//! B1 — cross-core ring (micro-benchmark).
//!
//! One producer thread streams `messages` 128-byte, 128-aligned envelopes to one consumer
//! thread, the two pinned to two different CPUs, through a bounded queue of capacity 16 and
//! 1024. Contenders, run interleaved (A B C D E, A B C D E, …) for `rounds` rounds:
//!
//! - **tina (batched)**: Tina's ring as a shard uses it. The producer stages up to
//!   [`PUBLISH_BATCH_MAX`] envelopes (fewer when the ring is full) and makes them visible with one
//!   `publish`; the consumer drains everything available and frees it with one `commit`.
//! - **tina (per message)**: the same ring with `publish` after every push and `commit` after
//!   every pop: the un-batched worst case, for honesty.
//! - **rtrb**: the near-physical reference SPSC ring (`push`/`pop`, one index store each).
//! - **crossbeam**: `crossbeam_channel::bounded`, blocking `send`/`recv`.
//! - **std**: `std::sync::mpsc::sync_channel`, blocking `send`/`recv`.
//!
//! Every consumer copies each envelope out (as a shard copies it into its pool) and checks its
//! sequence number. The Tina and rtrb sides spin (`spin_loop`) on a full or empty ring, so
//! their CPU time is their wall time; the channels block.

use std::hint::{black_box, spin_loop};
use std::sync::mpsc;

use tina_core::ring::{Ring, Slot};

use crate::harness::{
    Row, Sample, Spread, Summary, cpu_model, milli, ratio, run_pair, two_cpus, verdict,
};

/// The batched producer publishes after this many pushes at most (or when the ring is full).
const PUBLISH_BATCH_MAX: u64 = 32;
/// A spinning thread that was on its CPU for less of a round than this shared the core with
/// other work: the run is flagged as contended.
const ON_CPU_PERCENT_MIN: u64 = 90;
/// Capacities measured.
const CAPACITIES: [usize; 2] = [16, 1024];

/// The shape of Tina's message envelope.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Envelope {
    sequence: u64,
    words: [u64; 15],
}

const _: () = assert!(size_of::<Envelope>() == 128);

#[inline(always)]
fn envelope(sequence: u64) -> Envelope {
    Envelope {
        sequence,
        words: [sequence; 15],
    }
}

/// The consumer's work per message: copy it out, check its place in the stream.
struct Sink {
    next: u64,
}

impl Sink {
    #[inline(always)]
    fn take(&mut self, envelope: &Envelope) {
        let copy = *envelope;
        black_box(&copy);
        assert!(
            copy.sequence == self.next,
            "out of order: {} != {}",
            copy.sequence,
            self.next
        );
        self.next += 1;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    TinaBatched,
    TinaPerMessage,
    Rtrb,
    Crossbeam,
    Std,
}

const CONTENDERS: [Contender; 5] = [
    Contender::TinaBatched,
    Contender::TinaPerMessage,
    Contender::Rtrb,
    Contender::Crossbeam,
    Contender::Std,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::TinaBatched => "tina (batched, publish ≤ 32)",
            Contender::TinaPerMessage => "tina (publish per message)",
            Contender::Rtrb => "rtrb 0.4",
            Contender::Crossbeam => "crossbeam-channel bounded",
            Contender::Std => "std sync_channel",
        }
    }

    fn run(self, cpus: Option<[usize; 2]>, capacity: usize, messages: u64) -> Sample {
        match self {
            Contender::TinaBatched => tina_batched(cpus, capacity, messages),
            Contender::TinaPerMessage => tina_per_message(cpus, capacity, messages),
            Contender::Rtrb => rtrb(cpus, capacity, messages),
            Contender::Crossbeam => crossbeam(cpus, capacity, messages),
            Contender::Std => std_sync_channel(cpus, capacity, messages),
        }
    }
}

fn tina_batched(cpus: Option<[usize; 2]>, capacity: usize, messages: u64) -> Sample {
    let mut slots: Vec<Slot<Envelope>> = (0..capacity).map(|_| Slot::new()).collect();
    let mut ring = Ring::new(&mut slots).expect("power-of-two capacity ≥ 16");
    let (mut tx, mut rx) = ring.split();
    run_pair(
        cpus,
        move || {
            let mut sequence = 0;
            while sequence < messages {
                let batch_end = (sequence + PUBLISH_BATCH_MAX).min(messages);
                while sequence < batch_end && tx.try_push(envelope(sequence)).is_ok() {
                    sequence += 1;
                }
                if !tx.publish() {
                    spin_loop(); // full, and everything staged is already visible
                }
            }
        },
        move || {
            let mut sink = Sink { next: 0 };
            while sink.next < messages {
                if rx.drain(usize::MAX, |e| sink.take(e)) > 0 {
                    rx.commit();
                } else {
                    spin_loop();
                }
            }
        },
    )
}

fn tina_per_message(cpus: Option<[usize; 2]>, capacity: usize, messages: u64) -> Sample {
    let mut slots: Vec<Slot<Envelope>> = (0..capacity).map(|_| Slot::new()).collect();
    let mut ring = Ring::new(&mut slots).expect("power-of-two capacity ≥ 16");
    let (mut tx, mut rx) = ring.split();
    run_pair(
        cpus,
        move || {
            for sequence in 0..messages {
                while tx.try_push(envelope(sequence)).is_err() {
                    spin_loop();
                }
                tx.publish();
            }
        },
        move || {
            let mut sink = Sink { next: 0 };
            while sink.next < messages {
                match rx.pop() {
                    Some(e) => {
                        sink.take(&e);
                        rx.commit();
                    }
                    None => spin_loop(),
                }
            }
        },
    )
}

fn rtrb(cpus: Option<[usize; 2]>, capacity: usize, messages: u64) -> Sample {
    let (mut tx, mut rx) = rtrb::RingBuffer::<Envelope>::new(capacity);
    run_pair(
        cpus,
        move || {
            for sequence in 0..messages {
                let mut value = envelope(sequence);
                while let Err(rtrb::PushError::Full(back)) = tx.push(value) {
                    value = back;
                    spin_loop();
                }
            }
        },
        move || {
            let mut sink = Sink { next: 0 };
            while sink.next < messages {
                match rx.pop() {
                    Ok(e) => sink.take(&e),
                    Err(_) => spin_loop(),
                }
            }
        },
    )
}

fn crossbeam(cpus: Option<[usize; 2]>, capacity: usize, messages: u64) -> Sample {
    let (tx, rx) = crossbeam_channel::bounded::<Envelope>(capacity);
    run_pair(
        cpus,
        move || {
            for sequence in 0..messages {
                tx.send(envelope(sequence)).expect("consumer alive");
            }
        },
        move || {
            let mut sink = Sink { next: 0 };
            while sink.next < messages {
                sink.take(&rx.recv().expect("producer alive"));
            }
        },
    )
}

fn std_sync_channel(cpus: Option<[usize; 2]>, capacity: usize, messages: u64) -> Sample {
    let (tx, rx) = mpsc::sync_channel::<Envelope>(capacity);
    run_pair(
        cpus,
        move || {
            for sequence in 0..messages {
                tx.send(envelope(sequence)).expect("consumer alive");
            }
        },
        move || {
            let mut sink = Sink { next: 0 };
            while sink.next < messages {
                sink.take(&rx.recv().expect("producer alive"));
            }
        },
    )
}

/// Settings of one B1 run.
pub(crate) struct Options {
    /// Messages per timed run.
    pub(crate) messages: u64,
    /// Interleaved rounds per capacity.
    pub(crate) rounds: usize,
}

/// Picoseconds per message of a sample (integer fixed point: nanoseconds × 1000).
fn ps_per_message(wall_or_cpu_ns: u64, messages: u64) -> u64 {
    (u128::from(wall_or_cpu_ns) * 1000 / u128::from(messages)) as u64
}

/// Runs B1 and prints its markdown table.
pub(crate) fn run(options: &Options, summary: &mut Summary) {
    let cpus = two_cpus();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## B1 — cross-core ring (micro-benchmark)\n");
    println!(
        "{} messages of 128 bytes per run, {} interleaved rounds; machine: {nproc} CPUs, {}.",
        options.messages,
        options.rounds,
        cpu_model()
    );
    match cpus {
        Some([p, c]) => println!("Producer pinned to CPU {p}, consumer pinned to CPU {c}.\n"),
        None => println!("UNPINNED: fewer than two CPUs are allowed to this process.\n"),
    }
    println!(
        "| capacity | contender | ns/msg median | ns/msg min–max | tina batched ÷ this, \
         median (min–max) | tina per-message ÷ this, median (min–max) | CPU ns/msg \
         producer + consumer (median) | on-CPU % of wall, producer / consumer (min) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut contended = false;

    for capacity in CAPACITIES {
        // Warm-up: page in the storage, ramp the CPU clocks, start the threads once.
        for contender in CONTENDERS {
            contender.run(cpus, capacity, (options.messages / 10).max(1000));
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); CONTENDERS.len()];
        for _ in 0..options.rounds {
            for (i, contender) in CONTENDERS.into_iter().enumerate() {
                samples[i].push(contender.run(cpus, capacity, options.messages));
            }
        }
        let wall_ps: Vec<Vec<u64>> = samples
            .iter()
            .map(|runs| {
                runs.iter()
                    .map(|s| ps_per_message(s.wall_ns, options.messages))
                    .collect()
            })
            .collect();
        let index_of = |c: Contender| CONTENDERS.iter().position(|&x| x == c).unwrap();
        let ratios_against = |tina: usize, peer: usize| -> Spread {
            let per_round: Vec<u64> = (0..options.rounds)
                .map(|r| wall_ps[tina][r] * 1000 / wall_ps[peer][r].max(1))
                .collect();
            Spread::of(&per_round)
        };
        for (i, contender) in CONTENDERS.into_iter().enumerate() {
            let wall = Spread::of(&wall_ps[i]);
            let batched = ratios_against(index_of(Contender::TinaBatched), i);
            let per_message = ratios_against(index_of(Contender::TinaPerMessage), i);
            let producer_cpu = Spread::of(
                &samples[i]
                    .iter()
                    .map(|s| ps_per_message(s.producer_cpu_ns, options.messages))
                    .collect::<Vec<_>>(),
            );
            let consumer_cpu = Spread::of(
                &samples[i]
                    .iter()
                    .map(|s| ps_per_message(s.consumer_cpu_ns, options.messages))
                    .collect::<Vec<_>>(),
            );
            let on_cpu_percent = |cpu: fn(&Sample) -> u64| {
                samples[i]
                    .iter()
                    .map(|s| cpu(s) * 100 / s.wall_ns.max(1))
                    .min()
                    .unwrap_or(0)
            };
            let producer_on_cpu = on_cpu_percent(|s| s.producer_cpu_ns);
            let consumer_on_cpu = on_cpu_percent(|s| s.consumer_cpu_ns);
            let spins = matches!(
                contender,
                Contender::TinaBatched | Contender::TinaPerMessage | Contender::Rtrb
            );
            contended |= spins && producer_on_cpu.min(consumer_on_cpu) < ON_CPU_PERCENT_MIN;
            if contender == Contender::Rtrb {
                let tina = Spread::of(&wall_ps[index_of(Contender::TinaBatched)]);
                summary.add(Row {
                    id: format!("B1 cap {capacity}"),
                    metric: "cross-core ns/msg (128 B)".into(),
                    tina: milli(tina.median),
                    peer: format!("rtrb {}", milli(wall.median)),
                    ratio: format!(
                        "{} ({}–{})",
                        ratio(batched.median),
                        ratio(batched.min),
                        ratio(batched.max)
                    ),
                    target: verdict("≤ 1.5× raw SPSC", batched.median <= 1500),
                });
            }
            println!(
                "| {capacity} | {} | {} | {}–{} | {} ({}–{}) | {} ({}–{}) | {} + {} | {} / {} |",
                contender.name(),
                milli(wall.median),
                milli(wall.min),
                milli(wall.max),
                ratio(batched.median),
                ratio(batched.min),
                ratio(batched.max),
                ratio(per_message.median),
                ratio(per_message.min),
                ratio(per_message.max),
                milli(producer_cpu.median),
                milli(consumer_cpu.median),
                producer_on_cpu,
                consumer_on_cpu,
            );
        }
    }
    if contended {
        println!(
            "\n**CONTENDED**: a spinning thread was on its CPU less than \
             {ON_CPU_PERCENT_MIN}% of a round; other work shared these cores and the \
             numbers above overstate the cost."
        );
    }
    println!(
        "\nRatios are computed per round, then summarised (below 1.00: Tina is faster). \
         Spinning sides (tina, rtrb) burn their core while waiting, so their CPU equals their \
         wall time; the channels block instead."
    );
}
