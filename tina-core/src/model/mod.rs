//! The data model: what the rest of the crate talks about.
//!
//! Handles and ids ([`handle`]), messages and payloads ([`message`]), the effect a handler
//! returns ([`effect`]), the [`Isolate`](crate::Isolate) trait and its boot arguments
//! ([`isolate`]), time: ticks, real-unit durations and wall-clock readings ([`time`], [`wall`]), shard-local transfer buffers ([`transfer`]) and the I/O
//! contract ([`io`]). Plain values: nothing here owns memory or schedules anything. (The one
//! reference upwards is unavoidable: `Isolate::handle` takes the scheduler's `Ctx`.)

pub(crate) mod address;
pub(crate) mod effect;
pub(crate) mod handle;
pub mod io;
pub(crate) mod isolate;
pub(crate) mod message;
pub(crate) mod time;
pub(crate) mod transfer;
pub(crate) mod wall;
