//! # tina-net
//!
//! Reusable network building blocks for Tina applications: `no_std`, allocation-free and free
//! of `unsafe`, so they run on every platform Tina runs on (Linux, the simulator, bare metal).
//!
//! ## What the crate holds today
//!
//! [`codec`]: framing codecs that turn the bytes of successive receives into frames.
//!
//! - [`codec::Lines`]: lines of at most a maximum length, ended by LF or CRLF.
//! - [`codec::LengthPrefixed`]: a big-endian `u32` length, then that many bytes.
//! - [`codec::HeaderBody`]: a header line, then a body whose length a function of the header
//!   gives (memcached-style `SET key 5\r\nhello\r\n`).
//!
//! A [`codec::FrameDecoder`] lives in a connection's state. Each receive buffer is handed to it
//! once; a frame that lies wholly inside the buffer borrows it (no copy), and only a frame split
//! across receives is copied into the decoder's fixed storage, never more than the codec's
//! maximum frame length. An over-long or malformed frame is a [`codec::FrameError`] the
//! application can answer before it closes the connection. Encoders
//! ([`codec::encode_line`], [`codec::encode_length_prefixed`], [`codec::encode_header_body`])
//! write frames into a caller's buffer.
//!
//! ```
//! use tina_net::codec::{FrameDecoder, FrameError, Lines};
//!
//! // Lines of at most 64 bytes; the storage holds a line plus its CRLF.
//! let mut decoder: FrameDecoder<Lines, 66> = FrameDecoder::new(Lines::new(64));
//! let mut lines = Vec::new();
//! for receive in [&b"GET a\r\nGET"[..], b" b\n"] {
//!     let mut frames = decoder.frames(receive);
//!     while let Some(line) = frames.next_frame()? {
//!         lines.push(line.to_vec());
//!     }
//! }
//! assert_eq!(lines, [b"GET a".to_vec(), b"GET b".to_vec()]);
//! # Ok::<(), FrameError>(())
//! ```
//!
//! ## Planned, not yet built
//!
//! The rest of the crate is a plan; none of the following exists yet. They are isolates an
//! application spawns and configures instead of writing its own I/O lifecycle:
//!
//! - **Acceptor**: listens, accepts, spawns a connection isolate with each socket, refuses
//!   cleanly (closes and counts) when the connection type is full, stops accepting on
//!   shutdown, and can place a connection on another shard by a key.
//! - **Connector**: an outbound connect with a timeout and bounded backoff between attempts.
//! - **Connection driver**: owns one socket for a user protocol. It feeds each receive to a
//!   [`codec::FrameDecoder`] kept in the connection state, resumes partial sends, retries
//!   transient `NoBuffers`/`QueueFull` answers on a timer, enforces idle, read and write
//!   deadlines so a slow or silent peer is cut off, runs the close-then-`Done` handshake, and
//!   honours shutdown.
//!
//! These depend on isolates that can keep a receive and a send in flight while taking mail;
//! they will be built on `tina-core` once it offers that.

#![no_std]
#![forbid(unsafe_code)]

pub mod codec;
