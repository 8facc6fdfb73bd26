//! In the simulator: a named store on shard 1 crashes and restarts again and again while
//! shard 0 keeps sending to it and calling it by name (see `names_script`). After every
//! restart the new incarnation gets the sends and answers the call; calls while it is
//! stopped are refused with `NotRunning`, and a call to a dead incarnation's handle with
//! `StaleHandle`, each within one network round trip (2 ticks at the default latency of 1,
//! network-delay faults off; 2d ticks with a latency of d), not at the 30 000-tick call
//! timeout.

mod names_script;

use names_script::*;
use std::sync::atomic::Ordering;
use tina_sim::{Scenario, SimConfig, SimView};

struct Names;

impl Scenario for Names {
    fn goal(&mut self, view: &SimView<'_, '_>) -> bool {
        FINISHED.load(Ordering::SeqCst) && view.quiescent()
    }
}

#[test]
fn a_named_store_restarting_again_and_again_is_reached_by_name_and_refusals_are_fast() {
    let spec = spec();
    for (seed, latency) in [(0, 1), (1, 1), (2, 1), (3, 5), (4, 12)] {
        reset();
        let mut config = SimConfig::new(seed);
        config.ticks = 400 * latency;
        config.liveness_ticks = 2_000;
        assert_eq!(config.net_latency_ticks, 1, "the default latency");
        config.net_latency_ticks = latency;
        let report = tina_sim::run(spec, &config, &mut Names);
        assert!(report.outcome.is_pass(), "seed {seed}: {}", report.outcome);
        assert!(
            FINISHED.load(Ordering::SeqCst),
            "seed {seed}: script not finished"
        );
        check_records(&RECORDS.lock().unwrap(), 2 * config.net_latency_ticks);
        let (client, store) = (&report.counters[0], &report.counters[1]);
        // Every crash and the revival restarted the store's group.
        assert_eq!(store.restarts, ROUNDS as u64 + 1, "seed {seed}");
        // The down calls, the put while stopped, and the stale call were refused on
        // shard 1 and sent back; no call waited out its timeout.
        assert_eq!(
            store.named_not_running,
            DOWN_CALLS as u64 + 1,
            "seed {seed}"
        );
        assert_eq!(
            store.call_refusals_sent,
            DOWN_CALLS as u64 + 1,
            "seed {seed}"
        );
        assert_eq!(client.call_refusals_received, DOWN_CALLS as u64 + 1);
        assert_eq!(client.call_timeouts, 0, "seed {seed}");
    }
}
