//! Isolates shared by Tina's example programs and simulator scenarios.
//!
//! Everything here is written against `tina-core` only — the I/O vocabulary, effects and the
//! context — so the very same isolates run on Linux (io_uring or epoll) and in the
//! deterministic simulator unmodified.
//!
//! - [`echo`]: a TCP echo server: a listener isolate that accepts and spawns one connection
//!   isolate per client, each echoing bytes back zero-copy.
//! - [`dispatcher`]: a job dispatcher whose workers crash every k-th job and are restarted by
//!   supervision with new handles; stale sends are refused and reported.
//! - [`ping_pong`]: two isolates exchanging messages (the smallest runnable demo).

pub mod dispatcher;
pub mod echo;
pub mod ping_pong;
pub mod sim;
