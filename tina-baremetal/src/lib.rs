//! # tina-baremetal — the per-core driver for multicore microcontrollers (not built yet)
//!
//! This crate will run one shard per core with storage from statics, `critical-section` for the
//! few shared structures, and WFE/SEV-style idle waiting (SPEC §7).
//!
//! **Status: nothing here works yet.** The crate exists so the workspace has its final shape; it
//! exposes no API.
#![no_std]
