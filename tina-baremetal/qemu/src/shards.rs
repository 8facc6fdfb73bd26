//! Each core's shard: boot it from `system::SPEC` in its static region, run it with
//! `tina_baremetal::run` on the `An521` board, then check the isolates' final state.
//!
//! ```text
//!   core 0                                        core 1
//!   (channels from wiring::wire_rings)            channels = CORE1_CHANNELS.take()
//!   boot shard 0 (Driver)                         boot shard 1 (Ponger, Silent, Phoenix)
//!   wait for SERVICES  <────────────────────────  SERVICES.put(their handles)
//!   deliver Start to the Driver                   run until STOP
//!   run until the Driver is Finished  ◄═ rings ═► (answers calls, Phoenix vanishes/restarts)
//!   STOP = true, SEV  ──────────────────────────► state of Ponger/Silent/Phoenix + counters
//!   wait for CORE1_REPORT  <────────────────────  CORE1_REPORT.put(report)
//!   verify both sides: PASS or FAIL
//! ```
//!
//! The handoffs are `tina_baremetal::Handoff`s (the board's multicore critical section); `STOP`
//! is one atomic flag. Every wait is bounded (`deadline`), and each shard loop checks the run
//! deadline after every step.

use core::sync::atomic::Ordering;

use cortex_m::asm;
use cortex_m_semihosting::hprintln;
use portable_atomic::AtomicBool;
use tina_baremetal::{CorePlatform, Exit, Handoff, core_platform, run};
use tina_core::{Counters, Handle, Isolate, Outgoing, SendError, Shard, ShardId};

use crate::deadline::{self, RUN_TIMEOUT_MS};
use crate::isolates::{
    CallOutcome, Driver, EXPIRING_CALL_TIMEOUT_MS, PROMPT_CALL_TIMEOUT_MS, Phoenix, Ponger,
    ROUND_TRIP_COUNT, Silent, Start,
};
use crate::platform::{An521, ShardLog};
use crate::report::fail;
use crate::system::{REGION_SIZE, SPEC};
use crate::wiring::{self, Channels, LINKS};

/// How long one core waits for the other at a handoff.
const HANDOFF_TIMEOUT_MS: u32 = 10_000;

type CoreShard<'b> = Shard<'static, CorePlatform<'static, 'b, An521, ShardLog>>;

/// Core 1's service handles, for core 0's driver.
#[derive(Clone, Copy, Debug)]
struct Services {
    ponger: Handle,
    silent: Handle,
    phoenix: Handle,
}

/// What core 1's isolates and shard ended with.
#[derive(Clone, Copy, Debug)]
struct Core1Report {
    exit: Exit,
    ponger: Option<Ponger>,
    silent: Option<Silent>,
    /// The current Phoenix incarnation and its state.
    phoenix: Option<(Handle, Phoenix)>,
    counters: Counters,
}

static SERVICES: Handoff<Services> = Handoff::new();
static CORE1_REPORT: Handoff<Core1Report> = Handoff::new();
/// Set by core 0 when its driver is finished: core 1's shard loop returns.
static STOP: AtomicBool = AtomicBool::new(false);

/// What the run showed, for the PASS line.
pub struct Summary {
    /// Ping-pong round trips.
    pub round_trips: u32,
    /// How long they took.
    pub ping_pong_ms: u64,
    /// After how long the call to `Silent` timed out.
    pub silent_timeout_ms: u64,
    /// After how long the call to the gone `Phoenix` incarnation was refused.
    pub stale_refused_ms: u64,
    /// How long the prompt call took.
    pub prompt_reply_ms: u64,
}

/// Boots shard `core` on this core with `channels`.
fn boot<'b>(board: &'b An521, core: usize, channels: &'static mut Channels) -> CoreShard<'b> {
    let id = ShardId(core as u8);
    let needed_size = CoreShard::memory_required(&SPEC, id)
        .unwrap_or_else(|error| fail!("shard {}: {}", core, error));
    let region = wiring::shard_region(core);
    let platform = core_platform(board, channels, &LINKS, ShardLog::default());
    let shard = Shard::new(&SPEC, id, region, platform)
        .unwrap_or_else(|error| fail!("shard {} did not boot: {}", core, error));
    hprintln!(
        "core {}: shard {} up, {} of {} region bytes, {} isolates",
        core,
        core,
        needed_size,
        REGION_SIZE,
        shard.live_isolates()
    );
    #[cfg(feature = "defmt")]
    defmt::info!(
        "core {=usize}: shard up, {=usize} of {=usize} region bytes",
        core,
        needed_size,
        REGION_SIZE
    );
    shard
}

/// The handle of the one isolate of type `T` on `shard`.
fn only_handle<T: Isolate>(shard: &CoreShard<'_>, name: &str) -> Handle {
    shard
        .handles::<T>()
        .next()
        .unwrap_or_else(|| fail!("no {} on shard {}", name, shard.id().0))
}

/// Core 0: runs the driver to the end, stops core 1, and checks both sides. Returns the
/// numbers for the PASS line; any failed check ends the run with FAIL.
pub fn run_core0(channels: Channels) -> Summary {
    let board = An521::this_core();
    let channels = wiring::keep_channels(0, channels);
    let mut shard = boot(&board, 0, channels);
    let driver = only_handle::<Driver>(&shard, "driver");
    let services = deadline::wait_for("core 1's service handles", HANDOFF_TIMEOUT_MS, || {
        SERVICES.take()
    });
    let start = Start::default();
    if let Err(error) = shard.deliver(driver, &Outgoing::new(&start)) {
        fail!("could not start the driver: {}", error);
    }

    let exit = run(&board, &mut shard, |shard, _report| {
        if deadline::run_expired() {
            fail!(
                "shard 0 still running after {} ms (driver: {:?})",
                RUN_TIMEOUT_MS,
                shard.state::<Driver>(driver).map(|d| d.phase)
            );
        }
        shard
            .state::<Driver>(driver)
            .is_none_or(Driver::is_finished)
    });
    let final_driver = shard.state::<Driver>(driver).copied();
    let counters = shard.counters();

    STOP.store(true, Ordering::Release);
    asm::dsb();
    asm::sev();
    let core1 = deadline::wait_for("core 1's report", HANDOFF_TIMEOUT_MS, || {
        CORE1_REPORT.take()
    });

    if exit != Exit::Done {
        fail!("shard 0 ended with {:?}", exit);
    }
    let Some(driver) = final_driver else {
        fail!(
            "the driver is gone (crashed?); shard 0 counters: {:?}",
            counters
        );
    };
    verify(&driver, &counters, &services, &core1)
}

/// Core 1: serves until core 0 says stop, then reports its isolates' state.
pub fn run_core1() {
    let board = An521::this_core();
    let channels = wiring::CORE1_CHANNELS
        .take()
        .unwrap_or_else(|| fail!("core 0 did not hand over core 1's ring channels"));
    let channels = wiring::keep_channels(1, channels);
    let mut shard = boot(&board, 1, channels);
    let services = Services {
        ponger: only_handle::<Ponger>(&shard, "ponger"),
        silent: only_handle::<Silent>(&shard, "silent"),
        phoenix: only_handle::<Phoenix>(&shard, "phoenix"),
    };
    if SERVICES.put(services).is_err() {
        fail!("core 1's service handles were handed over twice");
    }
    asm::dsb();
    asm::sev();

    let exit = run(&board, &mut shard, |_, _| {
        if deadline::run_expired() {
            fail!("shard 1 still running after {} ms", RUN_TIMEOUT_MS);
        }
        STOP.load(Ordering::Acquire)
    });

    let phoenix = shard.handles::<Phoenix>().next().and_then(|handle| {
        let state = shard.state::<Phoenix>(handle)?;
        Some((handle, *state))
    });
    let report = Core1Report {
        exit,
        ponger: shard.state::<Ponger>(services.ponger).copied(),
        silent: shard.state::<Silent>(services.silent).copied(),
        phoenix,
        counters: shard.counters(),
    };
    if CORE1_REPORT.put(report).is_err() {
        fail!("core 1 reported twice");
    }
    asm::dsb();
    asm::sev();
}

/// Checks every expectation on both shards; the first one that does not hold fails the run.
fn verify(
    driver: &Driver,
    counters: &Counters,
    services: &Services,
    core1: &Core1Report,
) -> Summary {
    if let Some(failure) = driver.failure {
        fail!(
            "driver: {} after {} of {} round trips",
            failure,
            driver.round_trips,
            ROUND_TRIP_COUNT
        );
    }
    if driver.round_trips != ROUND_TRIP_COUNT {
        fail!(
            "driver: {} of {} round trips",
            driver.round_trips,
            ROUND_TRIP_COUNT
        );
    }
    let silent_timeout_ms = timed_out_after(driver.silent_call, "the call to the silent isolate");
    // Core 1 refuses the call to the gone incarnation and says so at once, well before
    // the call's timeout.
    let stale_refused_ms = match driver.stale_call {
        CallOutcome::Refused {
            why: SendError::StaleHandle,
            waited_ms,
        } if waited_ms < EXPIRING_CALL_TIMEOUT_MS => waited_ms,
        outcome => fail!(
            "the call to a gone incarnation should have been refused as stale within {} ms, \
             got {:?}",
            EXPIRING_CALL_TIMEOUT_MS,
            outcome
        ),
    };
    let prompt_reply_ms = match driver.prompt_call {
        CallOutcome::Replied { waited_ms } if waited_ms < PROMPT_CALL_TIMEOUT_MS => waited_ms,
        outcome => fail!(
            "the call with a {} ms timeout to the ponger should have been answered, got {:?}",
            PROMPT_CALL_TIMEOUT_MS,
            outcome
        ),
    };
    // Exactly the call that had to time out did, the stale one was refused; no reply
    // arrived late.
    if counters.call_timeouts != 1
        || counters.call_refusals_received != 1
        || counters.stale_replies != 0
    {
        fail!(
            "shard 0: {} call timeouts (expected 1), {} refusals received (expected 1), {} \
             stale replies (expected 0)",
            counters.call_timeouts,
            counters.call_refusals_received,
            counters.stale_replies
        );
    }

    if core1.exit != Exit::Done {
        fail!("shard 1 ended with {:?}", core1.exit);
    }
    match core1.ponger {
        Some(ponger) if ponger.calls_answered == ROUND_TRIP_COUNT + 1 => {}
        ponger => fail!(
            "ponger: {:?}, expected {} calls answered",
            ponger,
            ROUND_TRIP_COUNT + 1
        ),
    }
    match core1.silent {
        Some(silent) if silent.calls_received == 1 => {}
        silent => fail!("silent: {:?}, expected exactly 1 call received", silent),
    }
    check_phoenix(driver, services, core1);
    Summary {
        round_trips: driver.round_trips,
        ping_pong_ms: driver.ping_pong_ms,
        silent_timeout_ms,
        stale_refused_ms,
        prompt_reply_ms,
    }
}

/// The wait of a call that had to time out, failing the run unless it timed out, and not
/// before its timeout.
fn timed_out_after(outcome: CallOutcome, what: &str) -> u64 {
    match outcome {
        CallOutcome::TimedOut { waited_ms } if waited_ms >= EXPIRING_CALL_TIMEOUT_MS => waited_ms,
        outcome => fail!(
            "{} should have timed out after {} ms, got {:?}",
            what,
            EXPIRING_CALL_TIMEOUT_MS,
            outcome
        ),
    }
}

/// Phoenix went away once and came back as a new incarnation in the same slot, which the
/// call to the old handle never reached (it was dropped as a stale delivery).
fn check_phoenix(driver: &Driver, services: &Services, core1: &Core1Report) {
    let old = services.phoenix;
    if driver.gone_phoenix != old {
        fail!(
            "phoenix said {} is gone, but its handle was {}",
            driver.gone_phoenix,
            old
        );
    }
    let Some((new, state)) = core1.phoenix else {
        fail!("phoenix was not restarted");
    };
    if new == old || new.slot() != old.slot() || new.generation() == old.generation() {
        fail!(
            "phoenix restarted as {}, expected a new generation of {}",
            new,
            old
        );
    }
    if state.calls_received != 0 {
        fail!(
            "the call to the gone phoenix {} reached its new incarnation {}",
            old,
            new
        );
    }
    if core1.counters.restarts != 1 || core1.counters.stale_deliveries == 0 {
        fail!(
            "shard 1: {} restarts (expected 1), {} stale deliveries (expected at least 1)",
            core1.counters.restarts,
            core1.counters.stale_deliveries
        );
    }
}
