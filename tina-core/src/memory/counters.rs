//! Per-shard counters: every drop and every exhaustion is counted, never silent.

/// A snapshot of one shard's counters. All are monotonically increasing totals since boot
/// (shard recovery does not reset them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Handler calls (dispatches).
    pub dispatches: u64,
    /// Local sends accepted.
    pub sends_local: u64,
    /// Cross-shard sends handed to the transport.
    pub sends_remote: u64,
    /// Messages received from other shards and queued.
    pub inbound_delivered: u64,
    /// Sends refused (or inbound messages dropped) because the target was stale.
    pub stale_deliveries: u64,
    /// Sends refused (or inbound messages dropped) because a mailbox was full.
    pub mailbox_full: u64,
    /// Sends refused (or inbound messages dropped) because the message pool was exhausted.
    pub pool_exhausted: u64,
    /// Cross-shard sends refused because the outbound ring was full.
    pub ring_full: u64,
    /// Sends refused because the peer shard is quarantined or partitioned.
    pub quarantine_drops: u64,
    /// Replies dropped because no matching call was outstanding (late or stale).
    pub stale_replies: u64,
    /// Calls that timed out (or failed fast).
    pub call_timeouts: u64,
    /// Timers that could not be started (pool exhausted).
    pub timer_exhausted: u64,
    /// Timer messages that could not be delivered (pool exhausted or mailbox full).
    pub timer_drops: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// I/O operations refused because the buffer pool was exhausted.
    pub io_buffer_exhausted: u64,
    /// I/O operations refused because the submission queue was full.
    pub io_submission_full: u64,
    /// I/O operations submitted to the platform.
    pub io_submitted: u64,
    /// I/O completions delivered.
    pub io_completed: u64,
    /// Completions for torn-down isolates, reclaimed instead of delivered.
    pub io_stale_completions: u64,
    /// Completions the platform reported that match nothing in flight (platform bug).
    pub io_bogus_completions: u64,
    /// Transfer buffer allocations refused.
    pub transfer_exhausted: u64,
    /// Log entries dropped because the log ring was full.
    pub log_drops: u64,
    /// Isolates spawned (boot, dynamic and restarts).
    pub spawns: u64,
    /// Spawns refused (arena full, group full) or whose init failed.
    pub spawn_failures: u64,
    /// Isolates that crashed (voluntary crash, panic, protocol violation).
    pub crashes: u64,
    /// Handler panics trapped by the platform.
    pub panics: u64,
    /// Isolates that exited with `Done`.
    pub exits: u64,
    /// Restarts performed by supervision.
    pub restarts: u64,
    /// Whole-shard recoveries.
    pub shard_recoveries: u64,
    /// Slot generations that wrapped from `GENERATION_MAX` back to 1 at a spawn (see the
    /// handle module's docs for why a wrap cannot reach a live or recently stale handle).
    pub generation_wraps: u64,
    /// Closes of descriptors nobody owns any more that found the submission batch full, and
    /// were handed to the platform at once (or held for the next batch) instead.
    pub io_reclaims_deferred: u64,
    /// Such closes that could be neither run at once nor held (the hold list was full): a
    /// descriptor leaked. Stays zero on platforms that close at once (tina-linux).
    pub io_reclaims_lost: u64,
    /// Sends to a named isolate while no incarnation of it ran (`NotRunning`).
    pub named_not_running: u64,
    /// Calls from other shards that could not be delivered here, refused back to the caller.
    pub call_refusals_sent: u64,
    /// Refusals of this shard's calls received from their callees' shards (each ended a
    /// call at once instead of at its timeout).
    pub call_refusals_received: u64,
    /// Refusals that could not be sent (no system envelope, or the ring back was full): the
    /// caller waits out its timeout.
    pub call_refusals_dropped: u64,
}

impl Counters {
    /// How many counters there are.
    pub const FIELD_COUNT: usize = 36;

    /// Every counter, in declaration order (for platforms that publish them as atomics, and
    /// for hashing).
    pub fn to_array(&self) -> [u64; Self::FIELD_COUNT] {
        [
            self.dispatches,
            self.sends_local,
            self.sends_remote,
            self.inbound_delivered,
            self.stale_deliveries,
            self.mailbox_full,
            self.pool_exhausted,
            self.ring_full,
            self.quarantine_drops,
            self.stale_replies,
            self.call_timeouts,
            self.timer_exhausted,
            self.timer_drops,
            self.timers_fired,
            self.io_buffer_exhausted,
            self.io_submission_full,
            self.io_submitted,
            self.io_completed,
            self.io_stale_completions,
            self.io_bogus_completions,
            self.transfer_exhausted,
            self.log_drops,
            self.spawns,
            self.spawn_failures,
            self.crashes,
            self.panics,
            self.exits,
            self.restarts,
            self.shard_recoveries,
            self.generation_wraps,
            self.io_reclaims_deferred,
            self.io_reclaims_lost,
            self.named_not_running,
            self.call_refusals_sent,
            self.call_refusals_received,
            self.call_refusals_dropped,
        ]
    }

    /// The inverse of [`Counters::to_array`].
    pub fn from_array(a: &[u64; Self::FIELD_COUNT]) -> Counters {
        Counters {
            dispatches: a[0],
            sends_local: a[1],
            sends_remote: a[2],
            inbound_delivered: a[3],
            stale_deliveries: a[4],
            mailbox_full: a[5],
            pool_exhausted: a[6],
            ring_full: a[7],
            quarantine_drops: a[8],
            stale_replies: a[9],
            call_timeouts: a[10],
            timer_exhausted: a[11],
            timer_drops: a[12],
            timers_fired: a[13],
            io_buffer_exhausted: a[14],
            io_submission_full: a[15],
            io_submitted: a[16],
            io_completed: a[17],
            io_stale_completions: a[18],
            io_bogus_completions: a[19],
            transfer_exhausted: a[20],
            log_drops: a[21],
            spawns: a[22],
            spawn_failures: a[23],
            crashes: a[24],
            panics: a[25],
            exits: a[26],
            restarts: a[27],
            shard_recoveries: a[28],
            generation_wraps: a[29],
            io_reclaims_deferred: a[30],
            io_reclaims_lost: a[31],
            named_not_running: a[32],
            call_refusals_sent: a[33],
            call_refusals_received: a[34],
            call_refusals_dropped: a[35],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_array_roundtrip_keeps_every_field_in_place() {
        let mut a = [0u64; Counters::FIELD_COUNT];
        for (i, v) in a.iter_mut().enumerate() {
            *v = 1000 + i as u64;
        }
        let c = Counters::from_array(&a);
        assert_eq!(c.to_array(), a);
        assert_eq!(c.dispatches, 1000);
        assert_eq!(
            c.call_refusals_dropped,
            1000 + Counters::FIELD_COUNT as u64 - 1
        );
    }
}
