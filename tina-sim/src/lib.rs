//! # tina-sim — the deterministic simulator (not built yet)
//!
//! This crate will run every shard of a system on one thread from a seed, with a simulated
//! network, simulated I/O, fault injection, checkers and seed replay (SPEC §6).
//!
//! **Status: nothing here works yet.** The crate exists so the workspace has its final shape; it
//! exposes no API.
