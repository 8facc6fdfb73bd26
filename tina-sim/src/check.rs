//! Built-in checkers: structural invariants every run must keep, whatever the scenario.
//!
//! - every shard's `check_invariants` (pools conserved — free + in use = total, with no
//!   leaked envelope; mailbox lengths match their lists and capacities; timers and I/O
//!   buffers consistent; supervision members point at live isolates);
//! - generations only grow: for every (shard, type, slot), a handle seen live (sending,
//!   making a control call, or enumerated through a watched type) never has a lower
//!   generation than one seen live before;
//! - no two live isolates share a handle, and every enumerated handle is live on its shard;
//! - no completion reaches a wrong generation: after every step, the completions the core
//!   delivered equal those the simulator reported to live owners, the ones it reclaimed as
//!   stale equal those reported to torn-down owners, and it saw no bogus completion (this
//!   part runs after each step, in the round loop).

use crate::platform::SimPlatform;
use crate::scenario::TypeWatch;
use crate::world::World;
use tina_core::Shard;

/// Runs the structural checks; the first violation is returned.
pub(crate) fn builtin(
    shards: &[Shard<'_, SimPlatform>],
    world: &mut World,
    watches: &[TypeWatch],
) -> Result<(), String> {
    if let Some(v) = world.violations.first() {
        return Err(v.clone());
    }
    for (i, s) in shards.iter().enumerate() {
        s.check_invariants()
            .map_err(|e| format!("shard {i}: invariant broken: {e}"))?;
        let (free, used, total) = s.pool_usage();
        if free + used != total {
            return Err(format!(
                "shard {i}: pool free {free} + in use {used} != total {total}"
            ));
        }
    }
    let mut all = Vec::new();
    for w in watches {
        for (i, s) in shards.iter().enumerate() {
            for h in (w.handles)(s) {
                if usize::from(h.shard().0) != i || !s.is_live(h) {
                    return Err(format!(
                        "shard {i}: {} handle {h} is listed but not live there",
                        w.name
                    ));
                }
                let key = (h.shard().0, h.type_id().0, h.slot());
                let seen = world.generations.entry(key).or_insert(0);
                if h.generation() < *seen {
                    return Err(format!(
                        "shard {i}: {} {h} is live but generation {} of its slot was live before",
                        w.name, seen
                    ));
                }
                *seen = h.generation();
                all.push(h);
            }
        }
    }
    let n = all.len();
    all.sort_by_key(|h| h.to_bits());
    all.dedup();
    if all.len() != n {
        return Err("two live isolates share a handle".to_string());
    }
    Ok(())
}
