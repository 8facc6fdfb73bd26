//! Cross-shard messaging: everything two shards share.
//!
//! The SPSC [`ring`] (one per ordered pair of shards, the other module that uses `unsafe`),
//! the [`bulk`] slots that carry payloads larger than an envelope (one pool per shard, read in
//! place by the receiving shard; `unsafe` too), the [`transport`] that implements the
//! platform's `Transport` over a shard's rings, the [`sync`] shim that lets loom check the ring
//! and the bulk hand-off, and the key-to-shard `placement` helper.

#[allow(unsafe_code)]
pub mod bulk;
pub(crate) mod placement;
#[allow(unsafe_code)]
pub mod ring;
pub mod sync;
pub mod transport;
