//! Atomics shim: loom under `cfg(loom)`, portable-atomic otherwise (under construction).
