//! The simulator's command line for the built-in scenarios (`simulate --help` prints the
//! full usage).
//!
//! ```text
//! cargo run --release -p tina-examples --bin simulate -- run <scenario> --seed <u64> [--faults none|swarm] [--ticks N]
//! cargo run --release -p tina-examples --bin simulate -- sweep <scenario> --seeds <N> [--start <S>] [--faults swarm]
//! cargo run --release -p tina-examples --bin simulate -- soak all --seeds <N> --seeds-from-date [--jobs N]
//! cargo run --release -p tina-examples --bin simulate -- compare <event-log-a> <event-log-b>
//! ```
//!
//! Scenarios: `echo`, `bank`, `dispatcher`, `bulk`, `idle` (see `tina_examples::sim`). Exit codes:
//! 0 pass, 1 compare: the logs differ, 2 usage error or unreadable/unwritable file, 127 panic
//! in the framework, 128 liveness failure, 129 checker violation. Results go to stdout,
//! errors to stderr.

fn main() {
    tina_sim::cli::main(
        tina_examples::sim::PROGRAM,
        &tina_examples::sim::scenarios(),
    )
}
