//! The cross-shard SPSC ring (under construction).
