//! The sleep guard: the consumer's half of the ring transport's sleep protocol as one call, so
//! a driver cannot get its order wrong.
//!
//! [`sleep_unless`] always runs the protocol of [`crate::transport`] in full:
//!
//! ```text
//!   1. announce    transport.prepare_sleep()   the link's sleep flag, then a SeqCst fence
//!   2. re-check    transport.has_inbound()     a published ring or a peer's status change
//!                  || pending(shard)           whatever else wakes the driver (I/O, requests)
//!   3. block       block(shard)                only if nothing was pending
//!   4. wake up     link.woke()                 whichever way step 2 or 3 went
//! ```
//!
//! A driver therefore never blocks without announcing and re-checking first (a lost wake-up),
//! never forgets the rings in its re-check, and never leaves the flag set while it runs (which
//! would make every producer pay a wake-up it does not need).

use crate::Shard;
use crate::platform::Platform;
use crate::transport::{RingTransport, ShardLink, Wake};

/// A transport that takes part in the sleep protocol: it knows its shard's [`ShardLink`] and
/// whether anything arrived on it.
pub trait SleepLink {
    /// This shard's link (its sleep flag).
    fn link(&self) -> &ShardLink;

    /// Whether anything that must wake the shard arrived on the transport (for rings:
    /// [`RingTransport::has_inbound`]).
    fn has_inbound(&mut self) -> bool;

    /// Announces that the shard is going to sleep. The default is
    /// [`ShardLink::prepare_sleep`]; a transport with its own wake-up state (such as a doorbell
    /// that rings once per sleep) resets it and then does the same.
    fn prepare_sleep(&mut self) {
        self.link().prepare_sleep();
    }
}

impl<W: Wake> SleepLink for RingTransport<'_, W> {
    #[inline]
    fn link(&self) -> &ShardLink {
        RingTransport::link(self)
    }

    #[inline]
    fn has_inbound(&mut self) -> bool {
        RingTransport::has_inbound(self)
    }
}

/// Puts `shard` to sleep unless work is pending: announces sleep on its transport, re-checks
/// the transport and then `pending`, calls `block` only if both found nothing, and marks the
/// shard awake again in every case. Returns `None` if something was pending (and `block` did
/// not run), else `Some` of what `block` returned.
///
/// `block` may still decide not to wait (a deadline already due); it is the driver's wait
/// (`epoll_wait`, `WFE`, a thread park), and the shard counts as asleep while it runs.
pub fn sleep_unless<'a, P, R>(
    shard: &mut Shard<'a, P>,
    pending: impl FnOnce(&mut Shard<'a, P>) -> bool,
    block: impl FnOnce(&mut Shard<'a, P>) -> R,
) -> Option<R>
where
    P: Platform,
    P::Transport: SleepLink,
{
    shard.platform().parts().transport.prepare_sleep();
    let pending = shard.platform().parts().transport.has_inbound() || pending(shard);
    let slept = if pending { None } else { Some(block(shard)) };
    shard.platform().parts().transport.link().woke();
    slept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::RegionBlock;
    use crate::platform::{Bundle, DirectTrap, NoIo};
    use crate::ring::{Consumer, Producer};
    use crate::testing::{TestLog, region_for};
    use crate::wiring::carve_inbound_rings;
    use crate::{ChildSpec, GroupSpec, Isolate, Restart, ShardId, ShardSpec, SystemSpec, TypeSpec};
    use crate::{CrashReason, Ctx, Effect, Message};
    use std::vec;
    use std::vec::Vec;

    struct Idle;
    impl Isolate for Idle {
        type Args = ();
        fn init(_: &(), _: &mut Ctx) -> Result<(Self, Effect), CrashReason> {
            Ok((Idle, Effect::Receive))
        }
        fn handle(&mut self, _: &Message, _: &mut Ctx) -> Effect {
            Effect::Receive
        }
    }

    struct NoWake;
    impl Wake for NoWake {
        fn wake(&self, _: ShardId) {}
    }

    #[test]
    fn the_shard_blocks_only_when_nothing_is_pending_and_is_awake_afterwards() {
        let types = [TypeSpec::of::<Idle>("idle")];
        let children = [ChildSpec::isolate::<Idle>(&(), Restart::Permanent)];
        let shards = [ShardSpec {
            root: GroupSpec::one_for_one(&children),
        }; 2];
        let spec = SystemSpec::new(&shards, &types);
        let bytes = crate::ring_memory_required(&spec, ShardId(1)).unwrap();
        let mut blocks = vec![RegionBlock::UNINIT; RegionBlock::blocks_for(bytes)];
        let mut producer: Option<Producer<'_, Message>> = None;
        let mut inbound: Vec<Option<Consumer<'_, Message>>> = vec![None, None];
        carve_inbound_rings(
            &spec,
            ShardId(1),
            RegionBlock::as_bytes(&mut blocks),
            |f, p, c| {
                producer = Some(p);
                inbound[usize::from(f.0)] = Some(c);
            },
        )
        .unwrap();
        let mut producer = producer.unwrap();
        let mut outbound: Vec<Option<Producer<'_, Message>>> = vec![None, None];
        let links = [ShardLink::new(), ShardLink::new()];
        let mut seen = [0u32; 2];
        let transport = RingTransport::new(
            ShardId(1),
            &mut outbound,
            &mut inbound,
            &links,
            &mut seen,
            NoWake,
        );
        let platform = Bundle {
            transport,
            io: NoIo,
            trap: DirectTrap,
            log: TestLog::default(),
        };
        let mut memory = region_for(&spec, ShardId(1));
        let mut shard = Shard::new(&spec, ShardId(1), memory.bytes(), platform).unwrap();

        // Nothing pending: the shard blocks, announced as asleep, and is awake afterwards.
        let slept = sleep_unless(&mut shard, |_| false, |_| links[1].is_sleeping());
        assert_eq!(slept, Some(true), "asleep while blocking");
        assert!(!links[1].is_sleeping());

        // The driver's own check finds work: no block.
        let mut blocked = false;
        assert_eq!(sleep_unless(&mut shard, |_| true, |_| blocked = true), None);
        assert!(!blocked && !links[1].is_sleeping());

        // A published ring message is found by the transport's re-check, without asking the
        // driver.
        assert!(producer.try_push(Message::default()).is_ok());
        assert!(producer.publish());
        let mut asked = false;
        let slept = sleep_unless(
            &mut shard,
            |_| {
                asked = true;
                false
            },
            |_| blocked = true,
        );
        assert_eq!(slept, None);
        assert!(!asked && !blocked && !links[1].is_sleeping());
    }
}
