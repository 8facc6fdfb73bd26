//! Cross-shard transport: tina-core's [`RingTransport`] (the same SPSC rings and sleep
//! protocol every platform uses) with eventfd doorbells, plus the one Linux rule the core
//! cannot know: a peer shard that has stopped or failed to boot refuses sends.
//!
//! - Rings, batching, status announcements and the fence protocol are the core's
//!   ([`tina_core::transport`]); this module only supplies [`EventfdWake`].
//! - [`EventfdWake`] rings a sleeping peer's eventfd at most once per sleep: the shard clears
//!   its `rung` flag before it announces sleep, the first waker swaps it to true and pays the
//!   one `write(2)`, later wakers of the same sleep see it set and return.
//! - [`LinuxTransport::send`] refuses (`StaleHandle`) a peer whose state is Stopped, Failed
//!   or Quarantined before touching its ring, so a message is never parked in a ring nobody
//!   will drain.

use tina_core::platform::{PeerEvent, Transport};
use tina_core::ring::{Consumer, Producer};
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::{Message, SendError, ShardId};

use crate::shared::{ShardShared, ShardState};

/// Wakes a sleeping shard by writing its eventfd (once per sleep).
pub struct EventfdWake<'r> {
    peers: &'r [ShardShared],
}

impl Wake for EventfdWake<'_> {
    fn wake(&self, peer: ShardId) {
        if let Some(p) = self.peers.get(usize::from(peer.0)) {
            p.ring_doorbell();
        }
    }
}

/// The transport of one shard on Linux.
pub struct LinuxTransport<'r> {
    rings: RingTransport<'r, EventfdWake<'r>>,
    peers: &'r [ShardShared],
}

impl<'r> LinuxTransport<'r> {
    /// The transport of shard `me` (see [`RingTransport::new`] for the slices).
    pub(crate) fn new(
        me: ShardId,
        outbound: &'r mut [Option<Producer<'r, Message>>],
        inbound: &'r mut [Option<Consumer<'r, Message>>],
        links: &'r [ShardLink],
        seen: &'r mut [u32],
        peers: &'r [ShardShared],
    ) -> LinuxTransport<'r> {
        LinuxTransport {
            rings: RingTransport::new(me, outbound, inbound, links, seen, EventfdWake { peers }),
            peers,
        }
    }

    /// Whether a message or a peer's status change is waiting (the re-check after
    /// [`ShardLink::prepare_sleep`]).
    pub(crate) fn has_inbound(&mut self) -> bool {
        self.rings.has_inbound()
    }
}

impl Transport for LinuxTransport<'_> {
    fn send(&mut self, to: ShardId, msg: &Message) -> Result<(), SendError> {
        match self.peers.get(usize::from(to.0)).map(ShardShared::state) {
            None | Some(ShardState::Quarantined | ShardState::Stopped | ShardState::Failed) => {
                Err(SendError::StaleHandle)
            }
            Some(_) => self.rings.send(to, msg),
        }
    }

    fn receive(&mut self, deliver: &mut dyn FnMut(&Message)) {
        self.rings.receive(deliver);
    }

    fn publish(&mut self) {
        self.rings.publish();
    }

    fn announce(&mut self, event: PeerEvent) {
        self.rings.announce(event);
    }

    fn peer_events(&mut self, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        self.rings.peer_events(deliver);
    }
}
