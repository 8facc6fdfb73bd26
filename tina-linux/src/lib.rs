//! # tina-linux — the Linux driver (not built yet)
//!
//! This crate will run one pinned OS thread per shard around `tina_core::Shard::step`, with an
//! io_uring reactor (and an epoll fallback), idle sleeping, signals and a watchdog (SPEC §5).
//!
//! **Status: nothing here works yet.** The crate exists so the workspace has its final shape; it
//! exposes no API. Use `tina-core` directly (stepping shards by hand) until this driver lands.
