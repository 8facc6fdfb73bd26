//! Cross-shard transport over tina-core's SPSC rings, with eventfd wake-ups for sleeping
//! peers.
//!
//! Shard `i` owns the producer half of ring `i → j` and the consumer half of ring `j → i` for
//! every peer `j` (N×(N−1) rings, each sized by `SystemSpec::ring_capacity_between`).
//!
//! - `send` stages into the ring (no atomic store; a full ring is `MailboxFull`, counted by
//!   the core; a quarantined peer is `StaleHandle`).
//! - `publish` (once per tick) makes each ring's batch visible with one release store, then —
//!   only if something was published — issues one SeqCst fence and wakes the peers that are
//!   asleep (see [`crate::shared`] for the protocol). A busy system makes no syscall here.
//! - `receive` drains each inbound ring (bounded by its capacity) and commits once per ring.
//! - `announce` publishes this shard's status change to every peer; `peer_events` reports
//!   peers' changes since the last tick (the latest one per peer).

use std::sync::atomic::{Ordering, fence};

use tina_core::platform::{PeerEvent, Transport};
use tina_core::ring::{Consumer, Producer};
use tina_core::{Message, SendError, ShardId};

use crate::shared::{ShardShared, ShardState};

/// The transport of one shard.
pub struct RingTransport<'r> {
    me: usize,
    outbound: Vec<Option<Producer<'r, Message>>>,
    inbound: Vec<Option<Consumer<'r, Message>>>,
    peers: &'r [ShardShared],
    /// Peers published to this tick (reused; never grows past the shard count).
    published: Vec<bool>,
    /// The last `event_seq` seen per peer.
    seen_events: Vec<u32>,
}

impl<'r> RingTransport<'r> {
    pub(crate) fn new(
        me: usize,
        outbound: Vec<Option<Producer<'r, Message>>>,
        inbound: Vec<Option<Consumer<'r, Message>>>,
        peers: &'r [ShardShared],
    ) -> RingTransport<'r> {
        let n = peers.len();
        RingTransport {
            me,
            outbound,
            inbound,
            peers,
            published: vec![false; n],
            seen_events: peers
                .iter()
                .map(|p| p.event_seq.load(Ordering::Acquire))
                .collect(),
        }
    }

    /// Whether any inbound ring has a published message not yet drained (the consumer's
    /// check before sleeping: one Acquire load per ring).
    pub(crate) fn has_inbound(&mut self) -> bool {
        self.inbound.iter_mut().flatten().any(|c| !c.is_empty())
    }

    /// Whether a peer announced a status change not yet reported.
    pub(crate) fn has_peer_events(&self) -> bool {
        self.peers
            .iter()
            .zip(&self.seen_events)
            .enumerate()
            .any(|(j, (p, &seen))| j != self.me && p.event_seq.load(Ordering::Acquire) != seen)
    }
}

impl Transport for RingTransport<'_> {
    fn send(&mut self, to: ShardId, msg: &Message) -> Result<(), SendError> {
        let j = usize::from(to.0);
        let Some(peer) = self.peers.get(j) else {
            return Err(SendError::StaleHandle);
        };
        if matches!(
            peer.state(),
            ShardState::Quarantined | ShardState::Stopped | ShardState::Failed
        ) {
            return Err(SendError::StaleHandle);
        }
        match self.outbound.get_mut(j).and_then(Option::as_mut) {
            Some(p) => p.try_push(*msg).map_err(|_| SendError::MailboxFull),
            None => Err(SendError::StaleHandle),
        }
    }

    fn receive(&mut self, deliver: &mut dyn FnMut(&Message)) {
        for c in self.inbound.iter_mut().flatten() {
            let capacity = c.capacity();
            if c.drain(capacity, |m| deliver(m)) > 0 {
                c.commit();
            }
        }
    }

    fn publish(&mut self) {
        let mut any = false;
        for (j, p) in self.outbound.iter_mut().enumerate() {
            if let Some(p) = p
                && p.publish()
            {
                self.published[j] = true;
                any = true;
            }
        }
        if !any {
            return;
        }
        fence(Ordering::SeqCst);
        for (j, flag) in self.published.iter_mut().enumerate() {
            if *flag {
                *flag = false;
                self.peers[j].wake_if_sleeping();
            }
        }
    }

    fn announce(&mut self, event: PeerEvent) {
        let me = &self.peers[self.me];
        me.set_state(match event {
            PeerEvent::Quarantined => ShardState::Quarantined,
            PeerEvent::Restarted => ShardState::Running,
        });
        me.last_event.store(
            match event {
                PeerEvent::Restarted => 1,
                PeerEvent::Quarantined => 2,
            },
            Ordering::Relaxed,
        );
        me.event_seq.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        for (j, p) in self.peers.iter().enumerate() {
            if j != self.me {
                p.wake_if_sleeping();
            }
        }
    }

    fn peer_events(&mut self, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        for (j, p) in self.peers.iter().enumerate() {
            if j == self.me {
                continue;
            }
            let seq = p.event_seq.load(Ordering::Acquire);
            if seq == self.seen_events[j] {
                continue;
            }
            self.seen_events[j] = seq;
            let event = match p.last_event.load(Ordering::Relaxed) {
                2 => PeerEvent::Quarantined,
                _ => PeerEvent::Restarted,
            };
            deliver(ShardId(j as u8), event);
        }
    }
}
