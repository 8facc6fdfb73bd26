//! The shard's message pool and the intrusive FIFOs built on it (mailboxes, reply slots).
//!
//! One array of envelopes plus one array of `next` links. A free envelope sits on the free
//! list; a queued one sits in exactly one [`Fifo`] (an isolate's mailbox). Mailboxes therefore
//! cost 12 bytes per isolate, not `mailbox_capacity × 128`: the pool bounds the total number
//! of queued messages and each mailbox's `len` bounds its share.
//!
//! The last `reserve` free envelopes can only be taken with [`Class::System`]: timers, replies
//! and other control-plane traffic still flow when user traffic has exhausted the pool.
//!
//! Invariant (checked by [`Pool::check`]): `free + in_use == total`, the free list has exactly
//! `free` entries.

use crate::model::message::Message;

/// Sentinel for "no index".
pub(crate) const NIL: u32 = u32::MAX;

/// Who is allocating: user traffic cannot dip into the system reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    User,
    System,
}

/// A FIFO of pool indices linked through the pool's `next` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fifo {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: u32,
}

impl Fifo {
    pub(crate) const EMPTY: Fifo = Fifo {
        head: NIL,
        tail: NIL,
        len: 0,
    };

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The shard's message pool: envelopes, a free list, and the mailbox FIFOs linked by index.
///
/// Hand-written, not a heapless container: mailboxes are intrusive FIFOs threaded
/// through this one pool (12 bytes per isolate), and its capacity comes from the boot spec
/// with storage carved from the region, where heapless queues each own a const-sized buffer.
pub(crate) struct Pool<'a> {
    slots: &'a mut [Message],
    next: &'a mut [u32],
    free: Fifo,
    reserve: u32,
}

impl<'a> Pool<'a> {
    pub(crate) fn new(slots: &'a mut [Message], next: &'a mut [u32], reserve: u32) -> Pool<'a> {
        debug_assert_eq!(slots.len(), next.len());
        let n = slots.len() as u32;
        for (i, link) in next.iter_mut().enumerate() {
            *link = if (i as u32) + 1 < n {
                i as u32 + 1
            } else {
                NIL
            };
        }
        Pool {
            slots,
            next,
            free: Fifo {
                head: if n > 0 { 0 } else { NIL },
                tail: NIL,
                len: n,
            },
            reserve,
        }
    }

    pub(crate) fn total(&self) -> u32 {
        self.slots.len() as u32
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free.len
    }

    pub(crate) fn in_use(&self) -> u32 {
        self.total() - self.free.len
    }

    /// Takes a free envelope and writes `msg` into it.
    #[inline]
    pub(crate) fn alloc(&mut self, class: Class, msg: &Message) -> Option<u32> {
        self.alloc_with(class, |slot| *slot = *msg)
    }

    /// Takes a free envelope and lets `write` fill it in place (all 128 bytes: the slot
    /// still holds an earlier message).
    #[inline]
    pub(crate) fn alloc_with(
        &mut self,
        class: Class,
        write: impl FnOnce(&mut Message),
    ) -> Option<u32> {
        if class == Class::User && self.free.len <= self.reserve {
            return None;
        }
        let i = self.pop_free()?;
        write(&mut self.slots[i as usize]);
        Some(i)
    }

    pub(crate) fn release(&mut self, i: u32) {
        self.push_free(i);
    }

    pub(crate) fn get(&self, i: u32) -> &Message {
        &self.slots[i as usize]
    }

    #[inline]
    pub(crate) fn push(&mut self, fifo: &mut Fifo, i: u32) {
        self.next[i as usize] = NIL;
        if fifo.tail == NIL {
            fifo.head = i;
        } else {
            self.next[fifo.tail as usize] = i;
        }
        fifo.tail = i;
        fifo.len += 1;
    }

    #[inline]
    pub(crate) fn pop_from(&mut self, fifo: &mut Fifo) -> Option<u32> {
        let i = fifo.head;
        if i == NIL {
            return None;
        }
        fifo.head = self.next[i as usize];
        if fifo.head == NIL {
            fifo.tail = NIL;
        }
        fifo.len -= 1;
        self.next[i as usize] = NIL;
        Some(i)
    }

    /// Takes the head of `fifo`: copies it into `out` and returns its envelope to the free
    /// list at once (one pass over the links). False if `fifo` is empty.
    #[inline]
    pub(crate) fn take_from(&mut self, fifo: &mut Fifo, out: &mut Message) -> bool {
        let i = fifo.head;
        if i == NIL {
            return false;
        }
        let next = &mut self.next[i as usize];
        fifo.head = *next;
        if fifo.head == NIL {
            fifo.tail = NIL;
        }
        fifo.len -= 1;
        *next = self.free.head;
        self.free.head = i;
        self.free.len += 1;
        *out = self.slots[i as usize];
        true
    }

    /// Returns every envelope of `fifo` to the free list.
    #[cfg(test)]
    pub(crate) fn release_all(&mut self, fifo: &mut Fifo) -> u32 {
        let mut n = 0;
        while let Some(i) = self.pop_from(fifo) {
            self.push_free(i);
            n += 1;
        }
        n
    }

    /// The free list is a LIFO stack through `next` (the most recently freed envelope is
    /// the warmest in cache); `free.len` counts it, `free.tail` is unused.
    #[inline]
    fn push_free(&mut self, i: u32) {
        self.next[i as usize] = self.free.head;
        self.free.head = i;
        self.free.len += 1;
    }

    #[inline]
    fn pop_free(&mut self) -> Option<u32> {
        let i = self.free.head;
        if i == NIL {
            return None;
        }
        self.free.head = self.next[i as usize];
        self.free.len -= 1;
        Some(i)
    }

    /// Walks the free list and checks it against its count.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let mut n = 0u32;
        let mut i = self.free.head;
        while i != NIL {
            n += 1;
            if n > self.total() {
                return Err("pool free list has a cycle");
            }
            i = self.next[i as usize];
        }
        if n != self.free.len {
            return Err("pool free list length differs from its count");
        }
        Ok(())
    }

    /// Counts the entries of `fifo` by walking it.
    pub(crate) fn walk_len(&self, fifo: &Fifo) -> u32 {
        let mut n = 0u32;
        let mut i = fifo.head;
        while i != NIL && n <= self.total() {
            n += 1;
            i = self.next[i as usize];
        }
        n
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn pool_user_class_cannot_take_the_reserve() {
        let mut slots = vec![Message::EMPTY; 10];
        let mut next = vec![0u32; 10];
        let mut pool = Pool::new(&mut slots, &mut next, 2);
        let m = Message::EMPTY;
        let user: std::vec::Vec<_> = (0..8)
            .map(|_| pool.alloc(Class::User, &m).unwrap())
            .collect();
        assert_eq!(
            pool.alloc(Class::User, &m),
            None,
            "user traffic stops at the reserve"
        );
        let s1 = pool.alloc(Class::System, &m).unwrap();
        let s2 = pool.alloc(Class::System, &m).unwrap();
        assert_eq!(pool.alloc(Class::System, &m), None, "pool exhausted");
        assert_eq!(pool.free_count() + pool.in_use(), pool.total());
        for i in user.into_iter().chain([s1, s2]) {
            pool.release(i);
        }
        assert_eq!(pool.free_count(), 10);
        pool.check().unwrap();
    }

    #[test]
    fn pool_fifo_preserves_order_and_release_all_returns_everything() {
        let mut slots = vec![Message::EMPTY; 8];
        let mut next = vec![0u32; 8];
        let mut pool = Pool::new(&mut slots, &mut next, 0);
        let mut q = Fifo::EMPTY;
        let mut ids = std::vec::Vec::new();
        for k in 0..5u32 {
            let mut m = Message::EMPTY;
            m.set_aux(k);
            let i = pool.alloc(Class::User, &m).unwrap();
            pool.push(&mut q, i);
            ids.push(i);
        }
        assert_eq!(pool.walk_len(&q), 5);
        let first = pool.pop_from(&mut q).unwrap();
        assert_eq!(pool.get(first).aux(), 0);
        pool.release(first);
        assert_eq!(pool.release_all(&mut q), 4);
        assert!(q.is_empty());
        assert_eq!(pool.free_count(), 8);
        pool.check().unwrap();
    }
}
