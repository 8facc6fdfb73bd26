//! Test doubles for stepping shards by hand on a hosted target (feature `std`).
//!
//! - [`TestPlatform`]: an in-memory transport (staged and published envelopes you can move
//!   between shards yourself), a scripted I/O driver, and a trap that catches panics.
//! - [`region_for`]: an exactly sized, 128-byte aligned memory region for one shard.

use crate::error::SendError;
use crate::memory::RegionBlock;
use crate::memory::log::{LogRecord, LogSink};
use crate::model::handle::{Handle, ShardId};
use crate::model::io::{Control, ControlOutcome, IoCompletion, IoError};
use crate::model::message::Message;
use crate::platform::{
    Bundle, CompletionSink, IoBuffers, IoDriver, Panicked, PeerEvent, SocketControl, Submission,
    Transport, Trap, TrapCall,
};
use crate::scheduler::shard::Shard;
use crate::spec::SystemSpec;
use core::mem::MaybeUninit;
use std::collections::VecDeque;
use std::vec::Vec;

/// An owned, aligned region sized for one shard.
pub struct OwnedRegion {
    blocks: Vec<RegionBlock>,
}

impl OwnedRegion {
    /// An aligned region of at least `bytes` bytes.
    pub fn with_size(bytes: usize) -> OwnedRegion {
        OwnedRegion {
            blocks: std::vec![RegionBlock::UNINIT; RegionBlock::blocks_for(bytes)],
        }
    }

    /// The bytes, for [`Shard::new`].
    pub fn bytes(&mut self) -> &mut [MaybeUninit<u8>] {
        RegionBlock::as_bytes(&mut self.blocks)
    }
}

/// A region of exactly the size `shard` of `spec` needs (panics on an invalid spec: tests
/// only).
pub fn region_for(spec: &SystemSpec<'_>, shard: ShardId) -> OwnedRegion {
    let n = Shard::<TestPlatform>::memory_required(spec, shard).expect("valid spec");
    OwnedRegion::with_size(n)
}

/// A transport that keeps envelopes in vectors.
#[derive(Default)]
pub struct TestTransport {
    /// Staged this tick, not yet published.
    pub staged: Vec<(ShardId, Message)>,
    /// Published (visible to peers); move them to the peer's `inbound` yourself.
    pub published: Vec<(ShardId, Message)>,
    /// Delivered to this shard at its next step.
    pub inbound: VecDeque<Message>,
    /// Outbound capacity per tick (`None`: unbounded); beyond it sends are `MailboxFull`.
    pub capacity: Option<usize>,
    /// Shards that are unreachable (`StaleHandle`).
    pub down: Vec<ShardId>,
    /// How many times `publish` was called.
    pub publishes: usize,
    /// Status changes this shard announced.
    pub announced: Vec<PeerEvent>,
    /// Peer status changes to report at the next step.
    pub peer_events: VecDeque<(ShardId, PeerEvent)>,
}

impl Transport for TestTransport {
    fn send(&mut self, to: ShardId, msg: &Message) -> Result<(), SendError> {
        if self.down.contains(&to) {
            return Err(SendError::StaleHandle);
        }
        if self.capacity.is_some_and(|c| self.staged.len() >= c) {
            return Err(SendError::MailboxFull);
        }
        self.staged.push((to, *msg));
        Ok(())
    }

    fn receive(&mut self, deliver: &mut dyn FnMut(&Message)) {
        while let Some(m) = self.inbound.pop_front() {
            deliver(&m);
        }
    }

    fn publish(&mut self) {
        self.publishes += 1;
        self.published.append(&mut self.staged);
    }

    fn announce(&mut self, event: PeerEvent) {
        self.announced.push(event);
    }

    fn peer_events(&mut self, deliver: &mut dyn FnMut(ShardId, PeerEvent)) {
        while let Some((s, e)) = self.peer_events.pop_front() {
            deliver(s, e);
        }
    }
}

/// A log sink that keeps every record.
#[derive(Default)]
pub struct TestLog {
    /// Records, in order.
    pub records: Vec<(ShardId, LogRecord)>,
}

impl LogSink for TestLog {
    fn write(&mut self, shard: ShardId, record: &LogRecord) {
        self.records.push((shard, *record));
    }
}

/// A scripted I/O driver: records submissions; completes what the test queues.
#[derive(Default)]
pub struct TestIo {
    /// Every submission accepted so far.
    pub submitted: Vec<Submission>,
    /// Completions to report at the next step: owner, completion, bytes to write into the
    /// completion's buffer first.
    pub completions: VecDeque<(Handle, IoCompletion, Vec<u8>)>,
    /// Submissions accepted per batch at most (`None`: all).
    pub accept_max: Option<usize>,
    /// Bytes of outbound buffers at submission time (copied so tests can check them).
    pub sent_bytes: Vec<Vec<u8>>,
    /// Control calls seen.
    pub controls: Vec<Control>,
    /// Cancels asked for (`IoDriver::cancel`), in order; the test scripts their completion.
    pub cancels: Vec<(Handle, crate::model::io::IoTicket)>,
}

impl SocketControl for TestIo {
    fn control(&mut self, _owner: Handle, op: Control) -> Result<ControlOutcome, IoError> {
        self.controls.push(op);
        match op {
            Control::Socket { .. } => Ok(ControlOutcome::Fd(crate::model::io::Fd(
                100 + self.controls.len() as i32,
            ))),
            _ => Ok(ControlOutcome::Done),
        }
    }
}

impl IoDriver for TestIo {
    fn submit(&mut self, batch: &[Submission], buffers: IoBuffers<'_>) -> usize {
        let n = self.accept_max.map_or(batch.len(), |m| m.min(batch.len()));
        for s in &batch[..n] {
            if let (Some(b), Some(_)) = (s.buf, s.op.outbound_buffer()) {
                self.sent_bytes
                    .push(buffers.get(b).map(<[u8]>::to_vec).unwrap_or_default());
            }
            self.submitted.push(*s);
        }
        n
    }

    fn cancel(&mut self, owner: Handle, ticket: crate::model::io::IoTicket) {
        self.cancels.push((owner, ticket));
    }

    fn complete(&mut self, sink: &mut dyn CompletionSink) {
        while let Some((owner, c, bytes)) = self.completions.pop_front() {
            if let Some(b) = c.buf
                && let Some(dst) = sink.buffers().get_mut(b)
            {
                let n = bytes.len().min(dst.len());
                dst[..n].copy_from_slice(&bytes[..n]);
            }
            sink.complete(owner, c);
        }
    }
}

/// A trap that turns panics into `Panicked` with `catch_unwind`.
#[derive(Clone, Copy, Default)]
pub struct CatchPanic;

impl Trap for CatchPanic {
    #[inline]
    fn run(&self, _call: TrapCall, f: &mut dyn FnMut()) -> Result<(), Panicked> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| Panicked)
    }
}

/// The test platform: in-memory transport, scripted I/O, panics trapped, logs kept.
pub type TestPlatform = Bundle<TestTransport, TestIo, CatchPanic, TestLog>;

/// Builds an envelope as a peer shard would send it (for feeding a test transport).
pub fn envelope(src: Handle, dst: Handle, out: &crate::model::message::Outgoing) -> Message {
    Message::build(src, dst, out)
}
