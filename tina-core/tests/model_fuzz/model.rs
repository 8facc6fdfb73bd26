//! The reference model: which incarnation holds which handle, what was sent and accepted,
//! what arrived.

use crate::isolate::*;
use std::collections::BTreeMap;
use tina_core::*;

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Accepted for a local mailbox: exactly once unless the receiver dies.
    Local,
    /// Handed to the ring: at most once; a loss must be a counted drop on the receiver.
    Remote,
    /// Outcome unknown (replies, calls not ended yet): at most once.
    Maybe,
    /// Refused: never delivered.
    Refused,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct MsgRec {
    pub(crate) to: Handle,
    /// Sent from the receiver's shard.
    pub(crate) local: bool,
    pub(crate) tick: u64,
    pub(crate) accepted: Accepted,
    pub(crate) delivered: bool,
}

pub(crate) struct IoRec {
    pub(crate) owner: Handle,
    pub(crate) delivered: bool,
}

#[derive(Default)]
pub(crate) struct Model {
    /// Live incarnations by handle bits.
    pub(crate) alive: BTreeMap<u64, u64>,
    /// Every handle ever given out, with its incarnation.
    pub(crate) ever: BTreeMap<u64, u64>,
    pub(crate) inc_handle: BTreeMap<u64, Handle>,
    pub(crate) dead: Vec<Handle>,
    /// Highest generation seen per (shard, type, slot).
    pub(crate) generations: BTreeMap<(u8, u8, u32), u32>,
    pub(crate) msgs: BTreeMap<u64, MsgRec>,
    pub(crate) io: BTreeMap<u64, IoRec>,
    /// Per shard, after each tick: (tick, drops that may lose an inbound message, timer drops).
    pub(crate) history: [Vec<(u64, u64, u64)>; 2],
}

pub(crate) fn inbound_drops(c: &Counters) -> u64 {
    c.mailbox_full + c.pool_exhausted + c.stale_deliveries + c.quarantine_drops
}

impl Model {
    pub(crate) fn is_alive(&self, h: Handle) -> bool {
        self.alive.contains_key(&h.to_bits())
    }

    pub(crate) fn on_event(&mut self, ev: Ev, tick: u64) -> Result<(), String> {
        match ev {
            Ev::Spawned { inc, h } => {
                ensure!(
                    !self.ever.contains_key(&h.to_bits()),
                    "handle aliasing: {h:?} given to incarnation {inc} was given to {:?} before",
                    self.ever.get(&h.to_bits())
                );
                let key = (h.shard().0, h.type_id().0, h.slot());
                if let Some(&g) = self.generations.get(&key) {
                    ensure!(
                        h.generation() > g,
                        "slot {key:?}: generation went from {g} to {}",
                        h.generation()
                    );
                }
                self.generations.insert(key, h.generation());
                self.ever.insert(h.to_bits(), inc);
                self.alive.insert(h.to_bits(), inc);
                self.inc_handle.insert(inc, h);
            }
            Ev::Dropped { inc } => {
                let Some(&h) = self.inc_handle.get(&inc) else {
                    return Err(format!("incarnation {inc} dropped but never spawned"));
                };
                ensure!(
                    self.alive.remove(&h.to_bits()) == Some(inc),
                    "incarnation {inc} ({h:?}) dropped twice"
                );
                self.dead.push(h);
            }
            Ev::Delivered { inc, me, seq } => {
                ensure!(
                    self.alive.get(&me.to_bits()) == Some(&inc),
                    "message {seq} handled by incarnation {inc} as {me:?}, which the model has as {:?}",
                    self.alive.get(&me.to_bits())
                );
                let Some(rec) = self.msgs.get_mut(&seq) else {
                    return Err(format!("{me:?} got message {seq}, which was never sent"));
                };
                ensure!(
                    rec.to == me,
                    "message {seq} for {:?} was delivered to {me:?} (another incarnation?)",
                    rec.to
                );
                ensure!(
                    rec.accepted != Accepted::Refused,
                    "message {seq} was refused at send and delivered anyway"
                );
                ensure!(!rec.delivered, "message {seq} delivered twice to {me:?}");
                rec.delivered = true;
            }
            Ev::Sent {
                seq,
                from_shard,
                to,
                r,
                kind,
            } => {
                let local = to.shard().0 == from_shard;
                if local && kind == SendKind::Data {
                    if r.is_ok() {
                        ensure!(
                            self.is_alive(to),
                            "a send of {seq} to {to:?}, not live, was accepted"
                        );
                    } else if !self.is_alive(to) {
                        ensure!(
                            r == Err(SendError::StaleHandle),
                            "a send of {seq} to the dead {to:?} returned {r:?}"
                        );
                    }
                }
                let accepted = match (r, kind, local) {
                    (Err(_), _, _) => Accepted::Refused,
                    (Ok(()), SendKind::Reply, _) => Accepted::Maybe,
                    (Ok(()), SendKind::Data, true) => Accepted::Local,
                    (Ok(()), SendKind::Data, false) => Accepted::Remote,
                };
                let old = self.msgs.insert(
                    seq,
                    MsgRec {
                        to,
                        local,
                        tick,
                        accepted,
                        delivered: false,
                    },
                );
                ensure!(old.is_none(), "sequence number {seq} used twice");
            }
            Ev::CallMade { seq, from, to } => {
                ensure!(self.is_alive(from), "a dead isolate {from:?} made a call");
                self.msgs.insert(
                    seq,
                    MsgRec {
                        to,
                        local: to.shard() == from.shard(),
                        tick,
                        accepted: Accepted::Maybe,
                        delivered: false,
                    },
                );
            }
            Ev::CallEnded { seq, how } => {
                let Some(rec) = self.msgs.get_mut(&seq) else {
                    return Err(format!("call {seq} ended but was never made"));
                };
                match how {
                    CallEnd::Replied => {}
                    // The request was accepted: locally it must arrive unless the callee dies.
                    CallEnd::TimedOut if rec.local => rec.accepted = Accepted::Local,
                    CallEnd::TimedOut => {}
                    CallEnd::SendFailed if rec.local => {
                        ensure!(
                            !rec.delivered,
                            "call {seq} failed to send but was delivered"
                        );
                        rec.accepted = Accepted::Refused;
                    }
                    CallEnd::SendFailed => {}
                }
            }
            Ev::IoDelivered { inc, me, seq } => {
                ensure!(
                    self.alive.get(&me.to_bits()) == Some(&inc),
                    "completion {seq} handled by incarnation {inc} as {me:?}, not live in the model"
                );
                let Some(rec) = self.io.get_mut(&seq) else {
                    return Err(format!("{me:?} got completion {seq}, never completed"));
                };
                ensure!(
                    rec.owner == me,
                    "completion {seq} for {:?} reached {me:?}",
                    rec.owner
                );
                ensure!(!rec.delivered, "completion {seq} delivered twice");
                rec.delivered = true;
            }
            Ev::SpawnResult { r } => {
                if let Ok(h) = r {
                    ensure!(
                        self.ever.contains_key(&h.to_bits()),
                        "spawn returned {h:?}, whose init never ran"
                    );
                }
            }
            Ev::Violation(s) => return Err(s),
        }
        Ok(())
    }
}
