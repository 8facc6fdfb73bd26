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
    /// Slots retired because their generation reached the maximum.
    pub slots_retired: u64,
}
