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

use crate::error::SpawnError;
use crate::model::effect::CrashReason;
use crate::model::handle::{Handle, ShardId, TypeId};
use crate::scheduler::boot::InitFailure;
use crate::scheduler::ctx::{ArenaAccess, Ctx};
use crate::scheduler::kernel::{Exit, State};
use crate::spec::{ChildSpec, GROUP_DEPTH_MAX, GroupPath, GroupSpec, Location, Restart, Strategy};

/// `Meta::member` of a dynamic child.
pub(crate) const DYNAMIC_MEMBER: u16 = u16::MAX;
const NO_PARENT: u16 = u16::MAX;

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
    parent: u16,
    index_in_parent: u16,
    members_start: u32,
    pub(crate) dynamic_count: u32,
    history_start: u32,
    history_count: u32,
    history_next: u32,
}

/// Sizes of a shard's flattened tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeSize {
    pub(crate) groups: usize,
    pub(crate) members: usize,
    pub(crate) history: usize,
}

impl TreeSize {
    pub(crate) fn of(g: &GroupSpec<'_>) -> TreeSize {
        let mut size = TreeSize {
            groups: 1,
            members: g.children.len(),
            history: g.budget.restarts_max as usize,
        };
        for c in g.children {
            if let ChildSpec::Group(inner) = c {
                let s = TreeSize::of(inner);
                size.groups += s.groups;
                size.members += s.members;
                size.history += s.history;
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
}

impl<'a> Groups<'a> {
    pub(crate) fn new(
        root: &'a GroupSpec<'a>,
        groups: &'a mut [GroupState<'a>],
        members: &'a mut [Member],
        history: &'a mut [u64],
    ) -> Groups<'a> {
        let mut g = Groups {
            groups,
            members,
            history,
        };
        let mut next = (0u16, 0u32, 0u32);
        g.flatten(root, NO_PARENT, 0, &mut next);
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

    /// Records a restart if the budget allows it (sliding window).
    fn charge(&mut self, g: u16, now: u64) -> bool {
        let gs = &self.groups[usize::from(g)];
        let max = gs.spec.budget.restarts_max;
        let window = gs.spec.budget.window.ticks();
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

    fn reset_history(&mut self, g: u16) {
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

/// How an exited isolate was registered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Departed {
    pub(crate) ty: u8,
    pub(crate) group: u16,
    pub(crate) member: u16,
    pub(crate) restart: Restart,
    pub(crate) args: crate::model::isolate::InitArgs,
}

impl Ctx<'_, '_> {
    /// Tears down the isolate in (ty, slot) without supervision (it is being stopped).
    pub(crate) fn stop_isolate(&mut self, h: Handle) {
        if let Some((ty, slot)) = self.kernel.locate(h) {
            self.drop_slot(ty, slot);
            self.teardown(ty, slot);
        }
    }

    /// Supervises an isolate that has been torn down.
    pub(crate) fn on_exit(&mut self, d: Departed, exit: Exit) -> Verdict {
        let restart = match d.restart {
            Restart::Permanent => true,
            Restart::Transient => matches!(exit, Exit::Crashed(_)),
            Restart::Temporary => false,
        };
        let restart = restart && !self.kernel.shutting_down;
        if d.member == DYNAMIC_MEMBER {
            if !restart {
                self.kernel.groups.release_dynamic(d.group);
                return Verdict::Handled;
            }
            loop {
                if !self.kernel.groups.charge(d.group, self.kernel.now.ticks()) {
                    self.kernel.groups.release_dynamic(d.group);
                    return self.escalate(d.group);
                }
                self.kernel.counters.restarts += 1;
                if self
                    .spawn_raw(d.ty, d.args, d.group, DYNAMIC_MEMBER, d.restart)
                    .is_ok()
                {
                    return Verdict::Handled;
                }
            }
        }
        if !restart {
            self.kernel
                .groups
                .set_member(d.group, d.member, Member::Empty);
            return Verdict::Handled;
        }
        self.kernel
            .groups
            .set_member(d.group, d.member, Member::Stopped);
        self.restart_in_group(d.group, d.member)
    }

    /// Applies the group's strategy for failed member `m`, retrying while the budget lasts.
    fn restart_in_group(&mut self, g: u16, mut m: u16) -> Verdict {
        loop {
            if !self.kernel.groups.charge(g, self.kernel.now.ticks()) {
                return self.escalate(g);
            }
            self.kernel.counters.restarts += 1;
            let spec = self.kernel.groups.groups[usize::from(g)].spec;
            let len = spec.children.len() as u16;
            let (from, to) = match spec.strategy {
                Strategy::OneForOne => (m, m + 1),
                Strategy::OneForAll => (0, len),
                Strategy::RestForOne => (m, len),
            };
            self.stop_members(g, from, to);
            match self.start_members(g, from, to) {
                Ok(()) => return Verdict::Handled,
                Err(failed) => m = failed,
            }
        }
    }

    /// Stops the running members `from..to` of group `g` in reverse order, marking them to be
    /// restarted.
    fn stop_members(&mut self, g: u16, from: u16, to: u16) {
        for m in (from..to).rev() {
            match self.kernel.groups.member(g, m) {
                Member::Isolate(h) => {
                    self.stop_isolate(h);
                    self.kernel.groups.set_member(g, m, Member::Stopped);
                }
                Member::Group {
                    index,
                    running: true,
                } => {
                    self.stop_group(index);
                    self.kernel.groups.set_member(
                        g,
                        m,
                        Member::Group {
                            index,
                            running: false,
                        },
                    );
                }
                _ => {}
            }
        }
    }

    /// Stops everything in a group: static members in reverse order, then dynamic children.
    pub(crate) fn stop_group(&mut self, g: u16) {
        let len = self.kernel.groups.groups[usize::from(g)]
            .spec
            .children
            .len() as u16;
        self.stop_members(g, 0, len);
        if self.kernel.groups.groups[usize::from(g)].dynamic_count > 0 {
            for ty in 0..self.kernel.types.len() as u8 {
                for slot in 0..self.kernel.types[usize::from(ty)].metas.len() as u32 {
                    let m = self.kernel.types[usize::from(ty)].metas[slot as usize];
                    if m.is_live()
                        && m.state != State::Initializing
                        && m.group == g
                        && m.member == DYNAMIC_MEMBER
                    {
                        let h = self.kernel.handle(ty, slot);
                        self.stop_isolate(h);
                    }
                }
            }
            self.kernel.groups.groups[usize::from(g)].dynamic_count = 0;
        }
    }

    /// Starts the stopped members `from..to` in order. On a failure returns the member.
    pub(crate) fn start_members(&mut self, g: u16, from: u16, to: u16) -> Result<(), u16> {
        let spec = self.kernel.groups.groups[usize::from(g)].spec;
        for m in from..to {
            match (
                self.kernel.groups.member(g, m),
                spec.children[usize::from(m)],
            ) {
                (Member::Stopped, ChildSpec::Isolate { ty, args, restart }) => {
                    let Some(TypeId(ty)) = self.kernel.spec.resolve(ty) else {
                        return Err(m);
                    };
                    match self.spawn_raw(ty, args, g, m, restart) {
                        // An `init` that returned `Done` left nothing running: the member
                        // is stopped, not a handle to a dead isolate.
                        Ok(h) if self.kernel.locate(h).is_none() => {
                            self.kernel.groups.set_member(g, m, Member::Stopped)
                        }
                        Ok(h) => self.kernel.groups.set_member(g, m, Member::Isolate(h)),
                        Err(SpawnError::InitFailed) => return Err(m),
                        Err(_) => {
                            // No slot (dynamic children took the type's capacity): no
                            // `init` ran, so say so for the boot error.
                            self.kernel.init_failure = Some(InitFailure {
                                child: Location::Child(
                                    self.kernel.groups.path(self.kernel.shard, g),
                                    m,
                                ),
                                type_name: self.kernel.spec.types[usize::from(ty)].name,
                                reason: CrashReason(
                                    "no free slot of its type (other isolates hold its whole \
                                     capacity; raise TypeSpec::capacity)",
                                ),
                                io_error: None,
                            });
                            return Err(m);
                        }
                    }
                }
                (
                    Member::Group {
                        index,
                        running: false,
                    },
                    _,
                ) => {
                    if self.start_group(index).is_err() {
                        return Err(m);
                    }
                    self.kernel.groups.set_member(
                        g,
                        m,
                        Member::Group {
                            index,
                            running: true,
                        },
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts a (stopped) group from its spec with a fresh budget. On failure the group is
    /// left stopped.
    pub(crate) fn start_group(&mut self, g: u16) -> Result<(), ()> {
        self.kernel.groups.reset_history(g);
        let spec = self.kernel.groups.groups[usize::from(g)].spec;
        for (i, c) in spec.children.iter().enumerate() {
            if let ChildSpec::Isolate { .. } = c
                && self.kernel.groups.member(g, i as u16) == Member::Empty
            {
                self.kernel.groups.set_member(g, i as u16, Member::Stopped);
            }
        }
        let len = spec.children.len() as u16;
        if self.start_members(g, 0, len).is_err() {
            self.stop_group(g);
            return Err(());
        }
        Ok(())
    }

    /// A group gave up: stop it and report it to its parent as a failed child.
    fn escalate(&mut self, g: u16) -> Verdict {
        self.stop_group(g);
        let gs = &self.kernel.groups.groups[usize::from(g)];
        let (parent, index) = (gs.parent, gs.index_in_parent);
        if parent == NO_PARENT {
            return Verdict::RecoverShard;
        }
        self.kernel.groups.set_member(
            parent,
            index,
            Member::Group {
                index: g,
                running: false,
            },
        );
        if self.kernel.shutting_down {
            return Verdict::Handled;
        }
        self.restart_in_group(parent, index)
    }
}
