//! The simulator's command line for the built-in scenarios.
//!
//! ```text
//! cargo run --release -p tina-examples --bin simulate -- run <scenario> --seed <u64> [--faults none|swarm] [--ticks N]
//! cargo run --release -p tina-examples --bin simulate -- sweep <scenario> --seeds <N> [--start <S>] [--faults swarm]
//! cargo run --release -p tina-examples --bin simulate -- compare <event-log-a> <event-log-b>
//! ```
//!
//! Scenarios: `echo`, `bank`, `dispatcher` (see `tina_examples::sim`). Exit codes: 0 pass,
//! 127 panic in the framework, 128 liveness failure, 129 checker violation.

fn main() {
    tina_sim::cli::main(
        tina_examples::sim::PROGRAM,
        &tina_examples::sim::scenarios(),
    )
}
