//! The ring transport: the cross-shard [`Transport`] over SPSC rings, for every platform.
//!
//! Shard `i` owns the producer half of ring `i → j` and the consumer half of ring `j → i` for
//! every peer `j` (N×(N−1) rings, each sized by
//! [`SystemSpec::ring_capacity_between`](crate::SystemSpec::ring_capacity_between)). All
//! storage is the caller's (slices), so the same code runs with `static`s on bare metal and
//! with memory allocated once at boot on Linux.
//!
//! - `send` stages into the ring; a full ring is `MailboxFull` (the core counts it).
//! - `publish` (once per tick) makes each ring's batch visible with one release store; then,
//!   only if something was published, one `SeqCst` fence and a wake-up for each peer that was
//!   published to **and** is asleep. A busy system never wakes anyone.
//! - `receive` drains every inbound ring (bounded by its capacity) and commits once per ring.
//! - `announce` / `peer_events` carry shard status (restarted, quarantined) through one
//!   [`ShardLink`] per shard: a sequence number bumped by its single writer.
//!
//! ## The sleep protocol (no lost wake-ups, no syscall on the busy path)
//!
//! ```text
//!   consumer (going to sleep)              producer (publishing)
//!   link.sleeping = true                   ring.tail = staged        (Release)
//!   fence(SeqCst)                          fence(SeqCst)
//!   if has_inbound(): don't sleep          if link.sleeping: wake(consumer)
//!   else: block until woken
//! ```
//!
//! With a `SeqCst` fence on both sides, at least one side sees the other's store: either the
//! consumer sees the published tail and does not sleep, or the producer sees `sleeping` and
//! wakes it. [`ShardLink::prepare_sleep`] and [`RingTransport::has_inbound`] are the consumer's
//! half; `publish` is the producer's.

use crate::cross_shard::ring::{Consumer, Producer};
use crate::cross_shard::sync::{AtomicBool, AtomicU32, Ordering, fence};
use crate::error::SendError;
use crate::model::handle::{ShardId, ShardSet};
use crate::model::message::Message;
use crate::platform::{PeerEvent, Transport};

/// The wake trait lives with the rest of the platform seam; named here too so
/// `tina_core::transport::Wake` keeps working.
pub use crate::platform::Wake;

/// What every shard shares with its peers: its sleep flag and its status announcements.
#[derive(Debug)]
pub struct ShardLink {
    sleeping: AtomicBool,
    status_seq: AtomicU32,
    status: AtomicU32,
}

impl Default for ShardLink {
    fn default() -> Self {
        ShardLink::new()
    }
}

const STATUS_RESTARTED: u32 = 1;
const STATUS_QUARANTINED: u32 = 2;

impl ShardLink {
    /// A link for a running shard that is awake.
    #[cfg(not(loom))]
    pub const fn new() -> ShardLink {
        ShardLink {
            sleeping: AtomicBool::new(false),
            status_seq: AtomicU32::new(0),
            status: AtomicU32::new(0),
        }
    }

    /// A link (loom build).
    #[cfg(loom)]
    pub fn new() -> ShardLink {
        ShardLink {
            sleeping: AtomicBool::new(false),
            status_seq: AtomicU32::new(0),
            status: AtomicU32::new(0),
        }
    }

    /// The consumer's first half of going to sleep: announce it, then fence. Afterwards check
    /// [`RingTransport::has_inbound`] (and anything else that can wake the shard) and sleep
    /// only if nothing is pending; call [`ShardLink::woke`] when running again.
    pub fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The shard is running again.
    pub fn woke(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Whether the shard said it is asleep (read after a `SeqCst` fence).
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }
}

/// One shard's cross-shard transport over rings.
pub struct RingTransport<'r, W: Wake> {
    me: ShardId,
    outbound: &'r mut [Option<Producer<'r, Message>>],
    inbound: &'r mut [Option<Consumer<'r, Message>>],
    links: &'r [ShardLink],
    seen: &'r mut [u32],
    wake: W,
}

impl<'r, W: Wake> RingTransport<'r, W> {
    /// The transport of shard `me`. `outbound[j]` is the producer of ring `me → j`,
    /// `inbound[j]` the consumer of ring `j → me` (`None` at `me`); `links` has one entry per
    /// shard, shared by all; `seen` is this shard's scratch of one `u32` per shard.
    pub fn new(
        me: ShardId,
        outbound: &'r mut [Option<Producer<'r, Message>>],
        inbound: &'r mut [Option<Consumer<'r, Message>>],
        links: &'r [ShardLink],
        seen: &'r mut [u32],
        wake: W,
    ) -> RingTransport<'r, W> {
        for (s, l) in seen.iter_mut().zip(links) {
            *s = l.status_seq.load(Ordering::Acquire);
        }
        RingTransport {
            me,
            outbound,
            inbound,
            links,
            seen,
            wake,
        }
    }

    /// Whether any inbound ring holds a published message not yet drained (the consumer's
    /// re-check after [`ShardLink::prepare_sleep`]: one `Acquire` load per ring), or a peer
    /// announced a status change not yet reported.
    pub fn has_inbound(&mut self) -> bool {
        let rings = self.inbound.iter_mut().flatten().any(|c| !c.is_empty());
        rings
            || self
                .links
                .iter()
                .zip(self.seen.iter())
                .any(|(l, &s)| l.status_seq.load(Ordering::Acquire) != s)
    }

    /// This shard's link.
    pub fn link(&self) -> &ShardLink {
        &self.links[usize::from(self.me.0)]
    }

    /// The waker.
    pub fn waker(&self) -> &W {
        &self.wake
    }

    fn wake_sleepers(&self, shards: &ShardSet) {
        fence(Ordering::SeqCst);
        for (p, link) in self.links.iter().enumerate() {
            if shards.contains(ShardId(p as u8)) && link.is_sleeping() {
                self.wake.wake(ShardId(p as u8));
            }
        }
    }
}

impl<W: Wake> Transport for RingTransport<'_, W> {
    fn send(&mut self, to: ShardId, msg: &Message) -> Result<(), SendError> {
        match self.outbound.get_mut(usize::from(to.0)) {
            Some(Some(p)) => p.try_push(*msg).map_err(|_| SendError::MailboxFull),
            _ => Err(SendError::StaleHandle),
        }
    }

    fn receive(&mut self, deliver: &mut dyn FnMut(&Message)) {
        for c in self.inbound.iter_mut().flatten() {
            let n = c.capacity();
            // Commit only what was taken: an idle ring costs one load, no store to the line
            // the producer reads.
            if c.drain(n, |m| deliver(m)) > 0 {
                c.commit();
            }
        }
    }

    fn publish(&mut self) {
        let mut published = ShardSet::EMPTY;
        for (p, producer) in self.outbound.iter_mut().enumerate() {
            if let Some(producer) = producer
                && producer.publish()
            {
                published.insert(ShardId(p as u8));
            }
        }
        if !published.is_empty() {
            self.wake_sleepers(&published);
        }
    }

    fn announce(&mut self, event: PeerEvent) {
        let link = &self.links[usize::from(self.me.0)];
        let code = match event {
            PeerEvent::Restarted => STATUS_RESTARTED,
            PeerEvent::Quarantined => STATUS_QUARANTINED,
        };
        link.status.store(code, Ordering::Relaxed);
        // Single writer: a load and a store, no read-modify-write (works without CAS).
        let seq = link.status_seq.load(Ordering::Relaxed).wrapping_add(1);
        link.status_seq.store(seq, Ordering::Release);
        self.seen[usize::from(self.me.0)] = seq;
        self.wake_sleepers(&ShardSet::all_but(self.me));
    }

    fn peer_events(&mut self, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        for (p, link) in self.links.iter().enumerate() {
            let seq = link.status_seq.load(Ordering::Acquire);
            if seq == self.seen[p] || p == usize::from(self.me.0) {
                continue;
            }
            self.seen[p] = seq;
            let event = match link.status.load(Ordering::Relaxed) {
                STATUS_QUARANTINED => PeerEvent::Quarantined,
                _ => PeerEvent::Restarted,
            };
            deliver(ShardId(p as u8), event);
        }
    }
}
