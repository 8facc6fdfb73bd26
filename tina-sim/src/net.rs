//! The simulated network between shards, in place of the rings.
//!
//! One bounded FIFO link per ordered pair of shards, with the ring's capacity from the `SystemSpec`.
//! A send stages the envelope on the link (refused with `MailboxFull` when staged plus
//! in-flight envelopes reach the capacity, as a full ring would be); `publish` puts the
//! staged envelopes in flight with a delivery time (latency, plus the `net-delay` fault),
//! keeping per-link FIFO order, and the `net-drop` fault loses some. The receiving shard
//! takes what is due at its next step. A partition refuses sends across it with
//! `StaleHandle` (as the core's contract asks) and drops envelopes that were in flight when
//! it began; sends to a quarantined shard are refused the same way.
//!
//! Shard status broadcasts (`announce`) travel on the same network: they are delayed by the
//! latency and held back (not lost) while a partition separates the two shards.

use crate::config::FaultKind;
use crate::trace::Ev;
use crate::world::{Node, World};
use std::collections::VecDeque;
use tina_core::platform::PeerEvent;
use tina_core::{Message, SendError, ShardId};

struct Link {
    staged: Vec<Message>,
    flight: VecDeque<(u64, Message)>,
    capacity: usize,
    last_delivery_at: u64,
}

/// Links, status broadcasts and shard reachability.
pub(crate) struct Network {
    n: usize,
    links: Vec<Link>,
    events: Vec<VecDeque<(u64, u8, PeerEvent)>>,
    pub(crate) quarantined: Vec<bool>,
}

impl Network {
    pub(crate) fn new(n: usize, capacity: impl Fn(u8, u8) -> usize) -> Network {
        let mut links = Vec::with_capacity(n * n);
        for from in 0..n {
            for to in 0..n {
                links.push(Link {
                    staged: Vec::new(),
                    flight: VecDeque::new(),
                    capacity: capacity(from as u8, to as u8),
                    last_delivery_at: 0,
                });
            }
        }
        Network {
            n,
            links,
            events: (0..n).map(|_| VecDeque::new()).collect(),
            quarantined: vec![false; n],
        }
    }

    fn link(&mut self, from: usize, to: usize) -> &mut Link {
        &mut self.links[from * self.n + to]
    }

    /// The earliest time something in flight becomes deliverable.
    pub(crate) fn next_delivery(&self) -> Option<u64> {
        let links = self
            .links
            .iter()
            .filter_map(|l| l.flight.front().map(|f| f.0));
        let events = self.events.iter().filter_map(|q| q.front().map(|e| e.0));
        links.chain(events).min()
    }
}

fn msg_words(m: &Message) -> [u64; 5] {
    [
        m.src().to_bits(),
        m.dst().to_bits(),
        u64::from(m.tag().0) | (u64::from(m.is_call()) << 16) | (u64::from(m.is_reply()) << 17),
        m.correlation(),
        crate::hash::digest64(m.payload()),
    ]
}

impl World {
    pub(crate) fn net_send(
        &mut self,
        from: u8,
        to: ShardId,
        msg: &Message,
    ) -> Result<(), SendError> {
        // A refusal's source is the address the refused call went to (perhaps a dead
        // incarnation): the shard sends it, not that isolate.
        if msg.refused().is_none() {
            self.observe_live(msg.src());
        }
        let t = usize::from(to.0);
        let result = if t >= self.shard_count
            || self.net.quarantined[t]
            || self.partitioned(Node::Shard(from), Node::Shard(to.0))
        {
            Err(SendError::StaleHandle)
        } else {
            let link = self.net.link(usize::from(from), t);
            if link.staged.len() + link.flight.len() >= link.capacity {
                Err(SendError::MailboxFull)
            } else {
                link.staged.push(*msg);
                Ok(())
            }
        };
        let w = msg_words(msg);
        let code = result.err().map_or(0, |e| e as u64);
        self.trace.ev(
            Ev::Send,
            &[
                u64::from(from),
                u64::from(to.0),
                w[0],
                w[1],
                w[2],
                w[3],
                w[4],
                code,
            ],
            || format!("s{from}->s{} {msg:?} result={result:?}", to.0),
        );
        result
    }

    pub(crate) fn net_publish(&mut self, from: u8) {
        for to in 0..self.shard_count {
            let staged = core::mem::take(&mut self.net.link(usize::from(from), to).staged);
            for msg in staged {
                if self.rng_drop.chance(self.faults.net_drop) {
                    let w = msg_words(&msg);
                    self.inject(
                        FaultKind::NetDrop,
                        &[u64::from(from), to as u64, w[0], w[1]],
                        || format!("s{from}->s{to} {msg:?}"),
                    );
                    continue;
                }
                let delay = self.transmission_delay();
                let now = self.now;
                let link = self.net.link(usize::from(from), to);
                // FIFO per link: never deliver before the previous envelope.
                let at = (now + delay).max(link.last_delivery_at);
                link.last_delivery_at = at;
                link.flight.push_back((at, msg));
            }
        }
    }

    pub(crate) fn net_receive(&mut self, to: u8, deliver: &mut dyn FnMut(&Message)) {
        for from in 0..self.shard_count {
            loop {
                let now = self.now;
                let cut = self.partitioned(Node::Shard(from as u8), Node::Shard(to));
                let link = self.net.link(from, usize::from(to));
                let Some(&(at, msg)) = link.flight.front() else {
                    break;
                };
                if at > now {
                    break;
                }
                link.flight.pop_front();
                let w = msg_words(&msg);
                if cut {
                    self.trace.ev(
                        Ev::NetDrop,
                        &[from as u64, u64::from(to), w[0], w[1]],
                        || format!("s{from}->s{to} cut by partition {msg:?}"),
                    );
                    continue;
                }
                self.trace.ev(
                    Ev::Deliver,
                    &[from as u64, u64::from(to), w[0], w[1], w[2], w[3], w[4]],
                    || format!("s{from}->s{to} {msg:?}"),
                );
                deliver(&msg);
            }
        }
    }

    pub(crate) fn net_announce(&mut self, from: u8, event: PeerEvent) {
        self.net.quarantined[usize::from(from)] = event == PeerEvent::Quarantined;
        // The shard-crash fault ends when the shard has recovered or been quarantined.
        let trap = &mut self.traps[usize::from(from)];
        trap.storm_until = None;
        let at = self.now + self.latency;
        for to in 0..self.shard_count {
            if to != usize::from(from) {
                self.net.events[to].push_back((at, from, event));
            }
        }
        self.trace
            .ev(Ev::Peer, &[u64::from(from), event as u64], || {
                format!("s{from} announces {event:?}")
            });
    }

    pub(crate) fn net_peer_events(&mut self, to: u8, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        let now = self.now;
        let mut held = VecDeque::new();
        while let Some((at, from, event)) = self.net.events[usize::from(to)].pop_front() {
            if at > now || self.partitioned(Node::Shard(from), Node::Shard(to)) {
                held.push_back((at, from, event));
                continue;
            }
            self.trace.ev(
                Ev::Peer,
                &[u64::from(from), u64::from(to), event as u64],
                || format!("s{to} learns s{from} {event:?}"),
            );
            deliver(ShardId(from), event);
        }
        self.net.events[usize::from(to)] = held;
    }

    /// Drops every envelope in flight between the two sides of a new partition.
    pub(crate) fn net_cut_partition(&mut self) {
        for from in 0..self.shard_count {
            for to in 0..self.shard_count {
                if self.partitioned(Node::Shard(from as u8), Node::Shard(to as u8)) {
                    let link = self.net.link(from, to);
                    link.flight.clear();
                    link.staged.clear();
                }
            }
        }
    }
}
