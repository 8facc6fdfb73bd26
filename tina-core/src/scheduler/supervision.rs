//! Supervision: groups, strategies, restart budgets, escalation and shard recovery.
//!
//! Each shard's tree from the spec is flattened at boot into an array of groups (index 0 is
//! the root, children in depth-first order) and one array of member slots, a group's static
//! children being contiguous. Supervision runs as direct calls inside the scheduler after a
//! handler returns — never through the message pool or a mailbox — so it works when every
//! pool and mailbox is full.
//!
//! ```text
//!   child exits ──> should restart? (Permanent: always; Transient: after a crash;
//!        │                           Temporary: never)  ── no ──> slot left empty
//!        v yes
//!   budget ok? (≤ restarts_max within the window) ── no ──> escalate: stop the whole group,
//!        │                                                  report it to its parent as a
//!        v yes                                              failed child; the root escalating
//!   OneForOne:  restart the child                           means shard recovery
//!   OneForAll:  stop all running siblings (reverse order), restart all (in order)
//!   RestForOne: stop the later siblings (reverse order), restart it and them (in order)
//! ```
//!
//! A restarted child runs `init` again with its original arguments and gets a new handle;
//! nothing of its old state survives. A child whose `init` fails during a restart counts as
//! another failure against the same budget, so a child that can never start escalates after
//! a bounded number of attempts.

use crate::model::handle::{Handle, ShardId};
use crate::spec::{ChildSpec, GROUP_DEPTH_MAX, GroupPath, GroupSpec, Restart};

/// `Meta::member` of a dynamic child.
pub(crate) const DYNAMIC_MEMBER: u16 = u16::MAX;
pub(crate) const NO_PARENT: u16 = u16::MAX;

/// One static child position in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Member {
    /// Gone for good (a temporary child exited, or a child exited normally and is not
    /// restarted); not restarted by group restarts either.
    Empty,
    /// Stopped, to be started by the restart in progress.
    Stopped,
    /// Running isolate.
    Isolate(Handle),
    /// A nested group.
    Group { index: u16, running: bool },
}

pub(crate) struct GroupState<'a> {
    pub(crate) spec: &'a GroupSpec<'a>,
    pub(crate) parent: u16,
    pub(crate) index_in_parent: u16,
    members_start: u32,
    pub(crate) dynamic_count: u32,
    history_start: u32,
    history_count: u32,
    history_next: u32,
}

/// One entry of a shard's name table: a name's key and the member slot of the child that
/// bears it (`key` 0: empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NameSlot {
    key: u32,
    member: u32,
}

impl NameSlot {
    pub(crate) const EMPTY: NameSlot = NameSlot { key: 0, member: 0 };
}

/// Sizes of a shard's flattened tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeSize {
    pub(crate) groups: usize,
    pub(crate) members: usize,
    pub(crate) history: usize,
    /// Named children.
    pub(crate) names: usize,
}

impl TreeSize {
    /// Entries of the name table: a power of two at least twice the names (open addressing
    /// stays short), none without names.
    pub(crate) fn name_table_len(&self) -> usize {
        if self.names == 0 {
            0
        } else {
            (self.names * 2).next_power_of_two()
        }
    }
}

impl TreeSize {
    pub(crate) fn of(g: &GroupSpec<'_>) -> TreeSize {
        let mut size = TreeSize {
            groups: 1,
            members: g.children.len(),
            history: g.budget.restarts_max as usize,
            names: 0,
        };
        for c in g.children {
            if c.name().is_some() {
                size.names += 1;
            }
            if let ChildSpec::Group(inner) = c {
                let s = TreeSize::of(inner);
                size.groups += s.groups;
                size.members += s.members;
                size.history += s.history;
                size.names += s.names;
            }
        }
        size
    }
}

/// The flattened supervision tree of one shard.
pub(crate) struct Groups<'a> {
    pub(crate) groups: &'a mut [GroupState<'a>],
    pub(crate) members: &'a mut [Member],
    history: &'a mut [u64],
    /// Open-addressed by name key (linear probing); its length is a power of two.
    names: &'a mut [NameSlot],
}

impl<'a> Groups<'a> {
    pub(crate) fn new(
        root: &'a GroupSpec<'a>,
        groups: &'a mut [GroupState<'a>],
        members: &'a mut [Member],
        history: &'a mut [u64],
        names: &'a mut [NameSlot],
    ) -> Groups<'a> {
        let mut g = Groups {
            groups,
            members,
            history,
            names,
        };
        // Empty slices are a measurement of the layout: nothing to flatten into.
        if !g.groups.is_empty() {
            let mut next = (0u16, 0u32, 0u32);
            g.flatten(root, NO_PARENT, 0, &mut next);
        }
        g
    }

    pub(crate) fn placeholder(root: &'a GroupSpec<'a>) -> GroupState<'a> {
        GroupState {
            spec: root,
            parent: NO_PARENT,
            index_in_parent: 0,
            members_start: 0,
            dynamic_count: 0,
            history_start: 0,
            history_count: 0,
            history_next: 0,
        }
    }

    fn flatten(
        &mut self,
        spec: &'a GroupSpec<'a>,
        parent: u16,
        index_in_parent: u16,
        next: &mut (u16, u32, u32),
    ) -> u16 {
        let me = next.0;
        next.0 += 1;
        let members_start = next.1;
        next.1 += spec.children.len() as u32;
        let history_start = next.2;
        next.2 += spec.budget.restarts_max;
        self.groups[usize::from(me)] = GroupState {
            spec,
            parent,
            index_in_parent,
            members_start,
            dynamic_count: 0,
            history_start,
            history_count: 0,
            history_next: 0,
        };
        for (i, c) in spec.children.iter().enumerate() {
            let slot = members_start as usize + i;
            if let Some(name) = c.name() {
                self.insert_name(name.key(), slot as u32);
            }
            self.members[slot] = match c {
                ChildSpec::Isolate { .. } => Member::Stopped,
                ChildSpec::Group(inner) => Member::Group {
                    index: self.flatten(inner, me, i as u16, next),
                    running: false,
                },
            };
        }
        me
    }

    /// Enters a name (keys are unique per shard: validated).
    fn insert_name(&mut self, key: u32, member: u32) {
        let mask = self.names.len() - 1;
        let mut i = key as usize & mask;
        while self.names[i].key != 0 {
            i = (i + 1) & mask;
        }
        self.names[i] = NameSlot { key, member };
    }

    /// The member that bears the name with `key`, if this shard has one: O(1) expected, at
    /// most a pass over the (half-empty) table.
    pub(crate) fn named(&self, key: u32) -> Option<Member> {
        let mask = self.names.len().checked_sub(1)?;
        let mut i = key as usize & mask;
        for _ in 0..self.names.len() {
            let e = self.names[i];
            if e.key == key {
                return self.members.get(e.member as usize).copied();
            }
            if e.key == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The spec path of group `g` on shard `shard` (for error reports).
    pub(crate) fn path(&self, shard: ShardId, g: u16) -> GroupPath {
        let mut steps = [0u16; GROUP_DEPTH_MAX];
        let mut depth = 0;
        let mut at = g;
        while let Some(gs) = self.groups.get(usize::from(at)) {
            if gs.parent == NO_PARENT || depth == GROUP_DEPTH_MAX {
                break;
            }
            steps[depth] = gs.index_in_parent;
            depth += 1;
            at = gs.parent;
        }
        GroupPath::from_steps(u16::from(shard.0), steps[..depth].iter().rev().copied())
    }

    fn member_slot(&self, g: u16, m: u16) -> usize {
        self.groups[usize::from(g)].members_start as usize + usize::from(m)
    }

    pub(crate) fn member(&self, g: u16, m: u16) -> Member {
        self.members[self.member_slot(g, m)]
    }

    pub(crate) fn set_member(&mut self, g: u16, m: u16, v: Member) {
        let i = self.member_slot(g, m);
        self.members[i] = v;
    }

    /// Records a restart at tick `now` if the budget allows it (sliding window; the window is
    /// converted to ticks of `tick_ns`, rounding up).
    pub(crate) fn charge(&mut self, g: u16, now: u64, tick_ns: u64) -> bool {
        let gs = &self.groups[usize::from(g)];
        let max = gs.spec.budget.restarts_max;
        let window = gs.spec.budget.window.to_ticks(tick_ns);
        let start = gs.history_start as usize;
        let recent = &self.history[start..start + max as usize];
        let in_window = recent[..gs.history_count as usize]
            .iter()
            .filter(|&&t| now.saturating_sub(t) < window)
            .count() as u32;
        if in_window >= max {
            return false;
        }
        let gs = &mut self.groups[usize::from(g)];
        self.history[start + gs.history_next as usize] = now;
        gs.history_next = (gs.history_next + 1) % max;
        gs.history_count = (gs.history_count + 1).min(max);
        true
    }

    pub(crate) fn reset_history(&mut self, g: u16) {
        let gs = &mut self.groups[usize::from(g)];
        gs.history_count = 0;
        gs.history_next = 0;
    }

    pub(crate) fn reserve_dynamic(&mut self, g: u16) -> bool {
        let gs = &mut self.groups[usize::from(g)];
        if gs.dynamic_count < gs.spec.dynamic_capacity {
            gs.dynamic_count += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn release_dynamic(&mut self, g: u16) {
        let gs = &mut self.groups[usize::from(g)];
        gs.dynamic_count = gs.dynamic_count.saturating_sub(1);
    }
}

/// What the scheduler must do after supervision ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handled within the tree.
    Handled,
    /// The root group gave up: recover the shard.
    RecoverShard,
}

/// How an isolate is registered with supervision: what a spawn needs to start it, and what
/// its supervisor needs to restart it when it exits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registration {
    pub(crate) ty: u8,
    pub(crate) group: u16,
    pub(crate) member: u16,
    pub(crate) restart: Restart,
    pub(crate) args: crate::memory::args::InitArgs,
}
