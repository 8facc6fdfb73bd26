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
//! - Ring memory: each consumer shard's inbound rings live in one mapping (sized by
//!   [`tina_core::ring_memory_required`]), pre-faulted on the consumer's pinned thread and
//!   carved there by the core's [`carve_inbound_rings`]; the producer halves reach their shards through
//!   an exchange once every shard has carved its rings.

use core::mem::MaybeUninit;
use std::sync::Mutex;

use tina_core::platform::{PeerEvent, Transport};
use tina_core::ring::{Consumer, Producer};
use tina_core::sleep::SleepLink;
use tina_core::transport::{RingTransport, ShardLink, Wake};
use tina_core::wiring::{WiringError, carve_inbound_rings};
use tina_core::{Message, SendError, ShardId, SystemSpec};

use crate::shared::{ShardShared, ShardState};

/// Where producer halves wait between the consumer shard that carved their ring and the
/// producer shard that takes them: slot `from × n + to` holds the producer of ring `from → to`.
pub(crate) type Exchange<'r> = [Mutex<Option<Producer<'r, Message>>>];

/// Carves the rings shard `consumer` drains from `bytes` (its ring memory, sized by
/// [`tina_core::ring_memory_required`]) with the core's [`carve_inbound_rings`], keeps each
/// consumer half in `inbound[from]` and leaves each producer half in the exchange for shard
/// `from` to take once every shard has carved its rings.
pub(crate) fn wire_inbound_rings<'r>(
    spec: &SystemSpec<'_>,
    consumer: usize,
    bytes: &'r mut [MaybeUninit<u8>],
    exchange: &Exchange<'r>,
    inbound: &mut [Option<Consumer<'r, Message>>],
) -> Result<(), WiringError> {
    let n = spec.shards.len();
    carve_inbound_rings(
        spec,
        ShardId(consumer as u8),
        bytes,
        |from, producer, half| {
            let from = usize::from(from.0);
            *exchange[from * n + consumer]
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(producer);
            inbound[from] = Some(half);
        },
    )
}

/// Wakes a sleeping shard by writing its eventfd (once per sleep).
pub struct EventfdWake<'r> {
    peers: &'r [ShardShared],
}

impl Wake for EventfdWake<'_> {
    fn wake(&self, peer: ShardId) {
        let p = self.peers.get(usize::from(peer.0));
        debug_assert!(
            p.is_some(),
            "woken shard {} has no eventfd: links and peers are one per shard",
            peer.0
        );
        if let Some(p) = p {
            p.ring_doorbell();
        }
    }
}

/// The transport of one shard on Linux.
pub struct LinuxTransport<'r> {
    me: ShardId,
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
            me,
            rings: RingTransport::new(me, outbound, inbound, links, seen, EventfdWake { peers }),
            peers,
        }
    }
}

/// The sleep protocol on Linux: the core's, with this shard's eventfd doorbell re-armed
/// before the shard announces sleep (the doorbell rings once per sleep).
impl SleepLink for LinuxTransport<'_> {
    #[inline]
    fn link(&self) -> &ShardLink {
        self.rings.link()
    }

    #[inline]
    fn has_inbound(&mut self) -> bool {
        self.rings.has_inbound()
    }

    fn prepare_sleep(&mut self) {
        self.peers[usize::from(self.me.0)].prepare_sleep(self.rings.link());
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
