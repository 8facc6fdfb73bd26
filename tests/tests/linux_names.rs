//! On tina-linux, over real threads and rings: a named store on shard 1 crashes and restarts
//! again and again while shard 0 keeps sending to it and calling it by name (see
//! `names_script`). After every restart the new incarnation gets the sends and answers the
//! call; calls while it is stopped are refused with `NotRunning`, and a call to a dead
//! incarnation's handle with `StaleHandle`, far sooner than the 30 000-tick call timeout.

mod linux_common;
mod names_script;

use linux_common::*;
use names_script::*;
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant as StdInstant};

/// Far below the 30 000-tick call timeout; a ring round trip takes well under a tick on an
/// idle machine, so this allows for a very noisy one.
const MAX_ELAPSED_TICKS: u64 = 3_000;

#[test]
fn a_named_store_restarting_again_and_again_is_reached_by_name_and_refusals_are_fast() {
    let spec = spec();
    for backend in BACKENDS {
        reset();
        let rt = Running::start(spec, test_config(backend));
        let deadline = StdInstant::now() + StdDuration::from_secs(20);
        while !FINISHED.load(Ordering::SeqCst) && StdInstant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(
            FINISHED.load(Ordering::SeqCst),
            "{backend:?}: the client did not finish its script within 20 s: {:#?}; {:#?}",
            RECORDS.lock().unwrap(),
            rt.control.stats()
        );
        check_records(&RECORDS.lock().unwrap(), MAX_ELAPSED_TICKS);
        let refused = DOWN_CALLS as u64 + 1;
        let stats = rt.stats_when(|st| {
            st[1].counters.named_not_running >= refused
                && st[0].counters.call_refusals_received >= refused
        });
        let (client, store) = (&stats[0].counters, &stats[1].counters);
        assert_eq!(store.restarts, ROUNDS as u64 + 1, "{backend:?}");
        assert_eq!(store.named_not_running, refused, "{backend:?}");
        assert_eq!(client.call_refusals_received, refused, "{backend:?}");
        assert_eq!(client.call_timeouts, 0, "{backend:?}");
        let report = rt.stop();
        assert!(report.clean, "{backend:?}");
    }
}
