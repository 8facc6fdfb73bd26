//! Containment and capacity on loopback, both backends: a poisoned connection panics and dies
//! alone; a flood beyond capacity is refused cleanly and counted.

mod linux_common;

use std::io::Write;
use std::net::SocketAddr;

use linux_common::*;
use tina_examples::echo::POISON_BYTE;

#[test]
fn poisoned_connection_dies_alone_others_keep_echoing() {
    for backend in BACKENDS {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let rt = Running::start(echo_spec(addr, 2, 64), test_config(backend));
        let mut healthy: Vec<_> = (0..10).map(|_| connect(addr)).collect();
        let mut back = [0u8; 512];
        for s in healthy.iter_mut() {
            echo_once(s, b"before", &mut back).expect("echo before the poison");
        }
        let mut victim = connect(addr);
        echo_once(&mut victim, b"fine so far", &mut back).expect("victim echoes first");
        victim.write_all(&[POISON_BYTE, 1, 2, 3]).unwrap();
        assert!(
            closed_by_peer(&mut victim),
            "{backend:?}: the poisoned connection must be closed by the server"
        );
        for (k, s) in healthy.iter_mut().enumerate() {
            let msg = format!("after the poison {k}");
            echo_once(s, msg.as_bytes(), &mut back).expect("healthy connection still echoes");
            assert_eq!(&back[..msg.len()], msg.as_bytes());
        }
        let stats = rt.control.stats();
        let panics: u64 = stats.iter().map(|s| s.counters.panics).sum();
        let crashes: u64 = stats.iter().map(|s| s.counters.crashes).sum();
        assert_eq!(panics, 1, "{backend:?}: exactly one handler panicked");
        assert_eq!(crashes, 1, "{backend:?}: exactly one isolate crashed");
        drop(healthy);
        let report = rt.stop();
        assert!(report.clean);
    }
}

#[test]
fn connection_flood_beyond_capacity_is_refused_and_counted() {
    const CAPACITY: u32 = 16;
    const FLOOD: usize = 60;
    for backend in BACKENDS {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let rt = Running::start(echo_spec(addr, 1, CAPACITY), test_config(backend));
        let mut back = [0u8; 64];
        let mut accepted: Vec<_> = (0..CAPACITY).map(|_| connect(addr)).collect();
        for s in accepted.iter_mut() {
            echo_once(s, b"accepted", &mut back).expect("within capacity echoes");
        }
        let mut refused = 0;
        for _ in 0..FLOOD {
            let mut s = connect(addr);
            // The kernel completes the handshake; the server then closes the socket at once.
            if closed_by_peer(&mut s) {
                refused += 1;
            }
        }
        assert_eq!(
            refused, FLOOD,
            "{backend:?}: every connection over capacity is closed"
        );
        for (k, s) in accepted.iter_mut().enumerate() {
            let msg = format!("still here {k}");
            echo_once(s, msg.as_bytes(), &mut back).expect("accepted connections unaffected");
            assert_eq!(&back[..msg.len()], msg.as_bytes());
        }
        let stats = rt.control.stats();
        let c = &stats[0].counters;
        assert_eq!(
            c.spawn_failures, FLOOD as u64,
            "{backend:?}: every refusal counted"
        );
        assert_eq!(c.panics, 0);
        assert_eq!(stats[0].live_isolates, 1 + CAPACITY);
        drop(accepted);
        let report = rt.stop();
        assert!(report.clean);
    }
}
