//! Memory the kernel refuses is a boot error, never an abort: with the address space capped
//! (`RLIMIT_AS`) and the available-memory check told that anything fits, a system whose rings
//! or whose shard region cannot be mapped makes `run` return `RunError::ShardBoot` with the
//! `mmap` errno. One test in its own binary: the limit applies to the whole process.

use tina_core::{
    ChildSpec, CrashReason, Ctx, Effect, GroupSpec, Isolate, Message, Restart, ShardSpec,
    SystemSpec, TypeSpec,
};
use tina_linux::{Backend, BootFailure, Config, Control, RunError, run};

struct Idle;
impl Isolate for Idle {
    type Args = ();
    fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
        Ok((Idle, Effect::Receive))
    }
    fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
        Effect::Done
    }
}

fn anything_fits() -> Option<u64> {
    Some(u64::MAX)
}

/// The process's virtual size now, in bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .expect("VmSize")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmSize in kB");
    kib * 1024
}

fn set_address_space_limit(bytes: u64) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with pointers to live rlimit values.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: bytes.min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &new), 0);
    }
    old
}

fn restore(old: libc::rlimit) {
    // SAFETY: setrlimit with a pointer to a live rlimit value (raising the soft limit back
    // up to its old value, at most the unchanged hard limit).
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) };
}

#[test]
fn memory_the_kernel_refuses_is_a_boot_error_not_an_abort() {
    let types = [TypeSpec::of::<Idle>("idle")];
    let children = [ChildSpec::isolate::<Idle>(&(), Restart::Permanent)];
    let config = Config {
        backend: Backend::Epoll,
        pin: false,
        signals: false,
        announce: false,
        watchdog: None,
        fault_handlers: false,
        memory_available: anything_fits,
        ..Config::default()
    };
    let old = set_address_space_limit(vm_size() + (768 << 20));

    // Eight shards with rings of 2^20 slots: 7 × 128 MiB of inbound rings per shard.
    let shards = [ShardSpec {
        root: GroupSpec::one_for_one(&children),
    }; 8];
    let mut spec = SystemSpec::new(&shards, &types);
    spec.ring_capacity = 1 << 20;
    let rings = run(&spec, &config, &Control::new());

    // One shard whose region holds 1 GiB of I/O buffers.
    let one = [shards[0]];
    let mut spec = SystemSpec::new(&one, &types);
    spec.shard.io_buffer_count = 65_535;
    spec.shard.io_buffer_size = 16 * 1024;
    let region = run(&spec, &config, &Control::new());
    restore(old);

    match rings {
        Err(RunError::ShardBoot {
            failure:
                BootFailure::Map {
                    what: "cross-shard rings",
                    errno: libc::ENOMEM,
                    bytes,
                },
            ..
        }) => assert!(bytes >= 7 << 27),
        other => panic!("rings that cannot be mapped: {other:?}"),
    }
    match &region {
        Err(RunError::ShardBoot {
            shard: 0,
            failure:
                BootFailure::Map {
                    what: "shard region",
                    errno: libc::ENOMEM,
                    bytes,
                },
        }) => assert!(*bytes >= 65_535 * 16 * 1024),
        other => panic!("a region that cannot be mapped: {other:?}"),
    }
    let text = region.unwrap_err().to_string();
    assert!(
        text.contains("shard 0 failed to boot") && text.contains("ENOMEM"),
        "{text}"
    );
}
