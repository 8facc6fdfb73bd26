//! Peer events: a peer shard restarted or was quarantined.

use super::{CallFailure, Kernel, State};
use crate::error::SendError;
use crate::memory::pool::{Class, NIL};
use crate::model::message::{Message, system_tag};
use crate::platform::PeerEvent;

impl<'a> Kernel<'a> {
    /// A peer shard changed status: calls waiting on it fail fast (as if their request had
    /// gone to a stale handle), and isolates that watch shards get a notice.
    pub(super) fn on_peer_event(&mut self, peer: crate::model::handle::ShardId, event: PeerEvent) {
        let tag = match event {
            PeerEvent::Restarted => {
                self.quarantined_peers.remove(peer);
                system_tag::SHARD_RESTARTED
            }
            PeerEvent::Quarantined => {
                self.quarantined_peers.insert(peer);
                system_tag::SHARD_QUARANTINED
            }
        };
        for ty in 0..self.types.len() as u8 {
            for slot in 0..self.types[usize::from(ty)].metas.len() as u32 {
                let m = &self.types[usize::from(ty)].metas[slot as usize];
                if !m.is_live() {
                    continue;
                }
                let waiting = m.state == State::AwaitingReply
                    && m.call_target.shard() == peer
                    && m.reply == NIL
                    && m.call_failure.is_none();
                let watches = m.watches_shards;
                if waiting {
                    let owner = self.handle(ty, slot);
                    let m = self.meta(ty, slot);
                    m.call_failure = Some((CallFailure::SendFailed, SendError::StaleHandle as u8));
                    let timer = m.call_timer.take();
                    let mut head = m.timers;
                    if let Some(id) = timer {
                        self.timers.cancel(id, owner, &mut head);
                    }
                    self.meta(ty, slot).timers = head;
                    self.counters.call_timeouts += 1;
                    self.wake(ty, slot);
                }
                if watches {
                    let me = self.handle(ty, slot);
                    let notice = Message::system(me, tag, &[peer.0]);
                    // A full mailbox or pool drops the notice; deliver_local counted it.
                    let _ = self.deliver_local(&notice, Class::System);
                }
            }
        }
    }

    pub(super) fn is_quarantined_peer(&self, peer: crate::model::handle::ShardId) -> bool {
        self.quarantined_peers.contains(peer)
    }
}
