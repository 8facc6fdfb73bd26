//! Bounded pools of fixed-size byte buffers (reactor-owned I/O buffers and transfer buffers)
//! and the per-tick I/O submission batch.
//!
//! Buffer life cycle (one owner at a time, generation-checked references):
//!
//! ```text
//!   Free ──ctx.io_buffer()──> Held(owner, this handler call) ──returned in Io op──> InFlight
//!     ^                          │ not used by the end of the call                   │
//!     └──────────────────────────┘                                                   │
//!     ^                                                                               v
//!     └── freed after the handler call that saw it ── Delivered(owner) <── completion
//! ```
//!
//! A receive op takes a Free buffer straight to InFlight when it is submitted. A completion
//! for a torn-down owner frees its buffer instead of delivering it. Transfer buffers follow
//! the same states: InFlight means "attached to a message in a mailbox".

use crate::memory::pool::NIL;
use crate::model::handle::Handle;
use crate::model::io::IoBuf;
use crate::model::io::{IoBuffers, Submission};

/// Buffers one handler call can hold at once (obtained or delivered).
pub(crate) const HELD_PER_CALL_MAX: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BufState {
    Free,
    Held,
    InFlight,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct BufMeta {
    generation: u16,
    state: BufState,
    owner: Handle,
    next_free: u32,
    len: u32,
}

impl BufMeta {
    pub(crate) const FREE: BufMeta = BufMeta {
        generation: 0,
        state: BufState::Free,
        owner: Handle::NONE,
        next_free: NIL,
        len: 0,
    };
}

/// The I/O buffers and this tick's submission batch.
pub(crate) struct IoState<'a> {
    pub(crate) bufs: BufferPool<'a>,
    pub(crate) subs: &'a mut [Submission],
    pub(crate) sub_len: usize,
}

impl<'a> IoState<'a> {
    pub(crate) fn new(bufs: BufferPool<'a>, subs: &'a mut [Submission]) -> IoState<'a> {
        IoState {
            bufs,
            subs,
            sub_len: 0,
        }
    }

    /// The submission batch and the buffers, borrowed together for the platform.
    pub(crate) fn split(&mut self) -> (&[Submission], IoBuffers<'_>) {
        (self.subs, self.bufs.view())
    }
}

/// A pool of equally sized buffers with generation-checked references.
///
/// Hand-written, not a heapless container: the buffers are one contiguous byte
/// region (a driver registers it with the kernel) with per-buffer owner and state, sized by
/// the boot spec; `heapless::pool` hands out boxes from `static` memory instead.
pub(crate) struct BufferPool<'a> {
    bytes: &'a mut [u8],
    size: usize,
    metas: &'a mut [BufMeta],
    free_head: u32,
    free_tail: u32,
    free_count: u32,
    /// Buffers held by the handler calls in progress (a stack: a child's `init` runs inside
    /// its parent's handler and releases only what it took).
    held: [IoBuf; HELD_PER_CALL_MAX],
    held_len: usize,
}

impl<'a> BufferPool<'a> {
    pub(crate) fn new(bytes: &'a mut [u8], size: usize, metas: &'a mut [BufMeta]) -> Self {
        let n = metas.len() as u32;
        for (i, b) in metas.iter_mut().enumerate() {
            *b = BufMeta::FREE;
            b.next_free = if (i as u32) + 1 < n {
                i as u32 + 1
            } else {
                NIL
            };
        }
        BufferPool {
            bytes,
            size,
            metas,
            free_head: if n > 0 { 0 } else { NIL },
            free_tail: if n > 0 { n - 1 } else { NIL },
            free_count: n,
            held: [IoBuf {
                index: 0,
                generation: 0,
            }; HELD_PER_CALL_MAX],
            held_len: 0,
        }
    }

    pub(crate) fn total(&self) -> u32 {
        self.metas.len() as u32
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free_count
    }

    pub(crate) fn buffer_size(&self) -> usize {
        self.size
    }

    /// Takes a free buffer (FIFO, so generations wear evenly).
    pub(crate) fn alloc(&mut self, owner: Handle, state: BufState) -> Option<IoBuf> {
        let i = self.free_head;
        if i == NIL {
            return None;
        }
        let b = &mut self.metas[i as usize];
        self.free_head = b.next_free;
        if self.free_head == NIL {
            self.free_tail = NIL;
        }
        self.free_count -= 1;
        b.generation = b.generation.wrapping_add(1);
        b.state = state;
        b.owner = owner;
        b.next_free = NIL;
        b.len = 0;
        Some(IoBuf {
            index: i as u16,
            generation: b.generation,
        })
    }

    /// Whether `buf` is live, in `state`, and owned by `owner`.
    pub(crate) fn is(&self, buf: IoBuf, owner: Handle, state: BufState) -> bool {
        self.metas
            .get(buf.index())
            .is_some_and(|b| b.generation == buf.generation && b.state == state && b.owner == owner)
    }

    /// Records the meaningful length of a buffer (transfer buffers).
    pub(crate) fn set_len(&mut self, buf: IoBuf, len: u32) {
        if let Some(b) = self.metas.get_mut(buf.index())
            && b.generation == buf.generation
        {
            b.len = len;
        }
    }

    pub(crate) fn len_of(&self, buf: IoBuf) -> usize {
        self.metas.get(buf.index()).map_or(0, |b| b.len as usize)
    }

    /// Hands a buffer to a new owner in a new state.
    pub(crate) fn transfer(&mut self, buf: IoBuf, owner: Handle, state: BufState) {
        if let Some(b) = self.metas.get_mut(buf.index())
            && b.generation == buf.generation
        {
            b.owner = owner;
            b.state = state;
        }
    }

    pub(crate) fn set_state(&mut self, buf: IoBuf, state: BufState) {
        if let Some(b) = self.metas.get_mut(buf.index())
            && b.generation == buf.generation
        {
            b.state = state;
        }
    }

    /// Returns a buffer to the free list (no-op for a stale reference).
    pub(crate) fn free(&mut self, buf: IoBuf) {
        let i = buf.index() as u32;
        let Some(b) = self.metas.get_mut(i as usize) else {
            return;
        };
        if b.generation != buf.generation || b.state == BufState::Free {
            return;
        }
        b.state = BufState::Free;
        b.owner = Handle::NONE;
        b.next_free = NIL;
        if self.free_tail == NIL {
            self.free_head = i;
        } else {
            self.metas[self.free_tail as usize].next_free = i;
        }
        self.free_tail = i;
        self.free_count += 1;
    }

    /// The bytes of a buffer the handler holds.
    pub(crate) fn bytes(&self, buf: IoBuf) -> &[u8] {
        let start = buf.index() * self.size;
        &self.bytes[start..start + self.size]
    }

    pub(crate) fn bytes_mut(&mut self, buf: IoBuf) -> &mut [u8] {
        let start = buf.index() * self.size;
        &mut self.bytes[start..start + self.size]
    }

    pub(crate) fn view(&mut self) -> IoBuffers<'_> {
        IoBuffers {
            bytes: self.bytes,
            size: self.size,
        }
    }

    /// Records a buffer as held by the current handler call. False if the calls in progress
    /// hold too many already.
    pub(crate) fn hold(&mut self, buf: IoBuf) -> bool {
        if self.held_len == HELD_PER_CALL_MAX {
            return false;
        }
        self.held[self.held_len] = buf;
        self.held_len += 1;
        true
    }

    /// Whether a call in progress holds `buf`.
    pub(crate) fn holds(&self, buf: IoBuf) -> bool {
        self.held[..self.held_len].contains(&buf)
    }

    /// Marks the start of a handler call's holdings.
    pub(crate) fn held_mark(&self) -> usize {
        self.held_len
    }

    /// Ends a handler call: frees every buffer it took that was not handed to an I/O op.
    #[inline]
    pub(crate) fn release_held_from(&mut self, mark: usize) {
        if self.held_len > mark {
            self.release_held_slow(mark);
        }
    }

    #[cold]
    fn release_held_slow(&mut self, mark: usize) {
        while self.held_len > mark {
            self.held_len -= 1;
            let buf = self.held[self.held_len];
            if self
                .metas
                .get(buf.index())
                .is_some_and(|b| b.generation == buf.generation && b.state == BufState::Held)
            {
                self.free(buf);
            }
        }
    }

    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let free = self
            .metas
            .iter()
            .filter(|b| b.state == BufState::Free)
            .count() as u32;
        if free != self.free_count {
            return Err("I/O buffers: free list count differs from free buffers");
        }
        Ok(())
    }
}

/// 16-byte aligned memory, the unit of working memory and scratch (so typed views of `Pod`
/// data up to 16-byte alignment work).
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(16))]
pub(crate) struct WorkChunk([u8; 16]);

impl WorkChunk {
    pub(crate) const ZERO: WorkChunk = WorkChunk([0; 16]);

    pub(crate) fn count_for(bytes: u32) -> usize {
        (bytes as usize).div_ceil(16)
    }
}
