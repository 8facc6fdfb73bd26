//! Boot on Linux fails loudly and early: a spec too big for its memory is refused before
//! anything is mapped, a huge ring capacity is a spec error (not an allocation abort), and a
//! static child whose `init` fails on any shard makes `run` an `Err` naming the shard, the
//! child and the root cause (a listener's `bind()` on a port in use: EADDRINUSE) — after the
//! shards that did boot were stopped, and without `on_booted` ever being called.

mod linux_common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use linux_common::*;
use tina_core::io::IoError;
use tina_core::spec::Rule;
use tina_core::{
    BootError, ChildSpec, CrashReason, Ctx, Effect, GroupSpec, InitFailure, Isolate, Message,
    Restart, ShardSpec, SystemSpec, TypeSpec,
};
use tina_linux::{
    Backend, BootFailure, Config, Control, RunError, RunReport, ShardState, run, run_with,
};

/// Runs `spec` on a background thread and waits at most `limit` for `run` to return; on a
/// timeout it forces the system down and fails.
fn run_bounded(
    spec: &'static SystemSpec<'static>,
    config: Config,
    limit: StdDuration,
) -> (Result<RunReport, RunError>, usize) {
    let control: &'static Control = Box::leak(Box::new(Control::new()));
    let booted: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = run_with(spec, &config, control, |_| {
            booted.fetch_add(1, Ordering::SeqCst);
        });
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(r) => (r, booted.load(Ordering::SeqCst)),
        Err(_) => {
            control.force_stop();
            panic!(
                "run did not return within {limit:?} (states: {:?})",
                control.stats().iter().map(|s| s.state).collect::<Vec<_>>()
            );
        }
    }
}

fn quiet_config(backend: Backend) -> Config {
    Config {
        pin: false,
        announce: false,
        watchdog: None,
        fault_handlers: false,
        ..test_config(backend)
    }
}

#[test]
fn a_listener_on_a_port_in_use_is_a_boot_error_naming_bind_and_eaddrinuse() {
    for backend in BACKENDS {
        // Held without SO_REUSEPORT: the echo listener's bind() fails with EADDRINUSE.
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr: SocketAddr = taken.local_addr().unwrap();
        let spec = echo_spec(addr, 2, 8);
        let (r, booted) = run_bounded(spec, quiet_config(backend), StdDuration::from_secs(30));
        let err = r.expect_err("a listener that cannot bind must fail the boot");
        assert_eq!(booted, 0, "on_booted must not run when boot fails");
        let RunError::ShardBoot {
            shard,
            failure: BootFailure::Core(BootError::RootFailed(init)),
        } = &err
        else {
            panic!("not a static child's failure: {err:?}");
        };
        assert_eq!(*shard, 0, "the first failing shard is reported");
        assert_eq!(init.type_name, "listener");
        assert_eq!(init.reason, CrashReason("bind() failed"));
        assert_eq!(init.io_error, Some(IoError::AddrInUse));
        let text = err.to_string();
        for part in [
            "shard 0",
            "shards[0].root.children[0]",
            "bind() failed: address in use (EADDRINUSE, errno 98)",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
        drop(taken);
    }
}

/// Fails its `init` on the shards listed in its argument (a bit per shard).
struct FailsOn;
impl Isolate for FailsOn {
    type Args = u64;
    fn init(shards: &u64, ctx: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        if shards & (1 << ctx.me().shard().0) != 0 {
            return Err(CrashReason("told to fail on this shard"));
        }
        Ok((FailsOn, Effect::Receive))
    }
    fn handle(&mut self, msg: &Message, _: &mut Ctx) -> Effect {
        if msg.is_shutdown() {
            Effect::Done
        } else {
            Effect::Receive
        }
    }
}

fn fails_on_spec(shards: usize, failing: u64) -> &'static SystemSpec<'static> {
    let types: &'static [TypeSpec] = Box::leak(Box::new([TypeSpec::of::<FailsOn>("fails_on")]));
    let children: &'static [ChildSpec<'static>] =
        Box::leak(Box::new([ChildSpec::isolate::<FailsOn>(
            &failing,
            Restart::Permanent,
        )]));
    let shard_specs: &'static [ShardSpec<'static>] = Box::leak(
        vec![
            ShardSpec {
                root: GroupSpec::one_for_one(children),
            };
            shards
        ]
        .into_boxed_slice(),
    );
    Box::leak(Box::new(SystemSpec::new(shard_specs, types)))
}

#[test]
fn one_shard_failing_to_boot_stops_the_others_and_is_an_error() {
    // Shard 1 of 3 fails; shards 0 and 2 boot and must be stopped, not left serving.
    let spec = fails_on_spec(3, 0b010);
    let control: &'static Control = Box::leak(Box::new(Control::new()));
    let (tx, rx) = mpsc::channel();
    let config = quiet_config(Backend::Epoll);
    std::thread::spawn(move || {
        let _ = tx.send(run(spec, &config, control));
    });
    let r = rx.recv_timeout(StdDuration::from_secs(30));
    let Ok(r) = r else {
        control.force_stop();
        panic!(
            "run kept the booted shards serving after shard 1 failed: {:?}",
            control.stats().iter().map(|s| s.state).collect::<Vec<_>>()
        );
    };
    let err = r.expect_err("a failed shard is a boot error");
    match &err {
        RunError::ShardBoot {
            shard: 1,
            failure:
                BootFailure::Core(BootError::RootFailed(InitFailure {
                    type_name: "fails_on",
                    reason,
                    io_error: None,
                    ..
                })),
        } => assert_eq!(reason.0, "told to fail on this shard"),
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("told to fail on this shard"),
        "{err}"
    );
    let states: Vec<ShardState> = control.stats().iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [ShardState::Stopped, ShardState::Failed, ShardState::Stopped]
    );
}

#[test]
fn on_booted_runs_once_after_every_shard_booted_and_before_serving_ends() {
    let spec = fails_on_spec(2, 0);
    let control = Control::new();
    let mut seen = Vec::new();
    let report = run_with(spec, &quiet_config(Backend::Epoll), &control, |booted| {
        // Every shard is running when the callback runs.
        seen.push((
            booted.cpus.len(),
            control
                .stats()
                .iter()
                .all(|s| s.state == ShardState::Running),
            booted.memory.rings > 0,
        ));
        control.shutdown();
    })
    .expect("boots");
    assert_eq!(seen, [(2, true, true)]);
    assert!(report.clean);
}

#[test]
fn a_ring_capacity_too_large_to_allocate_is_a_spec_error_not_an_abort() {
    let spec: &'static mut SystemSpec<'static> = Box::leak(Box::new(*fails_on_spec(2, 0)));
    spec.ring_capacity = 1 << 31;
    let err =
        run(spec, &quiet_config(Backend::Epoll), &Control::new()).expect_err("must be refused");
    let RunError::Spec(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((e.field, e.rule), ("ring_capacity", Rule::RingCapacity));
    assert!(err.to_string().contains("ring_capacity"), "{err}");
    assert!(
        !err.to_string().contains("invalid spec: invalid spec"),
        "{err}"
    );
}

fn sixty_four_mib() -> Option<u64> {
    Some(64 << 20)
}

#[test]
fn a_system_bigger_than_the_available_memory_is_refused_before_mapping() {
    // 256 shards with default rings: 8.5 GB of rings alone.
    let spec = fails_on_spec(256, 0);
    let config = Config {
        memory_available: sixty_four_mib,
        ..quiet_config(Backend::Epoll)
    };
    let control = Control::new();
    let started = std::time::Instant::now();
    let err = run(spec, &config, &control).expect_err("must be refused");
    let RunError::Memory(m) = &err else {
        panic!("{err:?}")
    };
    assert!(m.rings >= 256 * 255 * 1024 * 128, "{m:?}");
    assert_eq!(m.available, 64 << 20);
    assert!(m.needed() > m.rings + m.regions - 1);
    let text = err.to_string();
    assert!(
        text.contains("cross-shard rings") && text.contains(&m.rings.to_string()),
        "{text}"
    );
    // Nothing ran: no shard was started.
    assert_eq!(control.shard_count(), 0);
    assert!(started.elapsed() < StdDuration::from_secs(10));

    // A small system under the same limit boots.
    let small = fails_on_spec(2, 0);
    let control = Control::new();
    let r = run_with(small, &config, &control, |_| control.shutdown());
    assert!(r.is_ok_and(|r| r.clean));
}
