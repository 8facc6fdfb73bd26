//! Spec fuzzing on Linux: random specs (extreme sizes included, from tina-core's `spec_gen`)
//! through [`run_with`], each system shut down as soon as it has booted. Every spec ends in
//! a clear error (invalid spec, more memory than available, a static child that failed) or
//! a system that boots, runs and stops — never a panic, an abort or a hang.
//!
//! The memory check is given 256 MiB, so large specs are refused before anything is mapped.
//! Seeded and bounded: `TINA_SPEC_FUZZ_CASES` specs (default 150) from seed
//! `TINA_SPEC_FUZZ_SEED` (default 0x5EED_11E7); a failure prints the seed that replays it
//! (`TINA_SPEC_FUZZ_SEED=<seed> TINA_SPEC_FUZZ_CASES=1 cargo test -p tina-linux --test
//! spec_fuzz`). Long mode: `TINA_SPEC_FUZZ_CASES=5000 cargo test -p tina-linux --release
//! --test spec_fuzz`.

#[path = "../../tina-core/tests/spec_gen/mod.rs"]
mod spec_gen;

use std::sync::mpsc;
use std::time::Duration as StdDuration;

use spec_gen::{Rng, Settings, SpecPlan};
use tina_core::{BootError, SystemSpec};
use tina_linux::{Backend, BootFailure, Config, Control, RunError, run_with};

const MEMORY: u64 = 256 << 20;

fn memory_256_mib() -> Option<u64> {
    Some(MEMORY)
}

/// How one spec ended (for the summary), or a description of what went wrong.
#[derive(Debug)]
enum Outcome {
    Served,
    SpecError,
    TooBig,
    InitFailed,
}

fn run_case(spec: &SystemSpec<'_>, plan: &SpecPlan, backend: Backend) -> Result<Outcome, String> {
    let config = Config {
        backend,
        pin: false,
        signals: false,
        fault_handlers: false,
        watchdog: None,
        announce: false,
        shutdown_timeout: Some(StdDuration::from_secs(2)),
        memory_available: memory_256_mib,
        ..Config::default()
    };
    let control = Control::new();
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let control = &control;
        let config = &config;
        scope.spawn(move || {
            let mut booted = false;
            let r = run_with(spec, config, control, |_| {
                booted = true;
                control.shutdown();
            });
            let _ = tx.send((r, booted));
        });
        let Ok((r, booted)) = rx.recv_timeout(StdDuration::from_secs(60)) else {
            control.force_stop();
            return Err("run did not return within 60 s".to_string());
        };
        match r {
            Ok(report) if booted && report.stats.len() == spec.shards.len() => Ok(Outcome::Served),
            Ok(report) => Err(format!("served without a boot callback: {report:?}")),
            Err(_) if booted => Err("an error after on_booted".into()),
            Err(RunError::Spec(e)) if spec.validate() == Err(e) => Ok(Outcome::SpecError),
            Err(RunError::Memory(m)) if m.needed() > m.available => Ok(Outcome::TooBig),
            Err(RunError::Boot(s)) if s.contains("memory size") => Ok(Outcome::TooBig),
            Err(RunError::ShardBoot {
                failure: BootFailure::Core(BootError::RootFailed(f)),
                ..
            }) if plan.has_failing_init() || f.reason.0.starts_with("no free slot") => {
                Ok(Outcome::InitFailed)
            }
            Err(e) => Err(format!("unexpected error: {e}")),
        }
    })
}

#[test]
fn random_specs_through_run_end_in_a_clear_error_or_a_clean_run() {
    spec_gen::quiet_expected_panics();
    let settings = Settings::from_env(0x5EED_11E7, 150);
    eprintln!(
        "spec fuzz (linux): {} specs from seed {} (TINA_SPEC_FUZZ_SEED / TINA_SPEC_FUZZ_CASES)",
        settings.cases, settings.first_seed
    );
    let uring = tina_linux::probe_io_uring().is_ok();
    let mut counts = [0u64; 4];
    for case in 0..settings.cases {
        let seed = settings.first_seed.wrapping_add(case);
        let mut rng = Rng::new(seed);
        let plan = SpecPlan::random(&mut rng, 4);
        let backend = if uring && rng.chance(50) {
            Backend::Uring
        } else {
            Backend::Epoll
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            plan.with_spec(&mut |spec| run_case(spec, &plan, backend))
        }));
        match outcome {
            Ok(Ok(o)) => counts[o as usize] += 1,
            Ok(Err(why)) => panic!(
                "spec fuzz failed at seed {seed} ({backend:?}): {why}\nreplay with \
                 TINA_SPEC_FUZZ_SEED={seed} TINA_SPEC_FUZZ_CASES=1 cargo test -p tina-linux \
                 --test spec_fuzz\nspec: {}",
                plan.summary()
            ),
            Err(_) => panic!(
                "spec fuzz panicked at seed {seed} ({backend:?}); replay with \
                 TINA_SPEC_FUZZ_SEED={seed} TINA_SPEC_FUZZ_CASES=1 cargo test -p tina-linux \
                 --test spec_fuzz\nspec: {}",
                plan.summary()
            ),
        }
    }
    eprintln!(
        "spec fuzz (linux): served {}, invalid {}, too big {}, init failed {}",
        counts[0], counts[1], counts[2], counts[3]
    );
    if settings.cases >= 40 {
        assert!(counts[0] > 0, "no spec booted: {counts:?}");
        assert!(counts[1] > 0, "no spec was invalid: {counts:?}");
    }
}
