//! Supervision as kernel transitions: what happens when an isolate exits (restart, escalate,
//! recover the shard), and starting and stopping whole groups. The flattened tree these work
//! on ([`Groups`]) and the strategies are described in `scheduler::supervision`.

use super::{Env, Exit, Kernel, State};
use crate::error::SpawnError;
use crate::model::effect::CrashReason;
use crate::model::handle::{Handle, TypeId};
use crate::scheduler::boot::InitFailure;
use crate::scheduler::supervision::{DYNAMIC_MEMBER, Member, NO_PARENT, Registration, Verdict};
use crate::spec::{ChildSpec, Location, Restart, Strategy};

impl Kernel<'_> {
    /// An isolate's handler (or its effect) ended it: counts the exit, stops it, and lets
    /// its supervisor decide ([`Kernel::on_exit`]).
    pub(crate) fn exit(&mut self, env: &mut Env<'_>, ty: u8, slot: u32, exit: Exit) -> Verdict {
        let m = *self.meta(ty, slot);
        let departed = Registration {
            ty,
            group: m.group,
            member: m.member,
            restart: m.restart,
            args: self.types[usize::from(ty)].args[slot as usize],
        };
        match exit {
            Exit::Normal => self.counters.exits += 1,
            Exit::Crashed(_) => self.counters.crashes += 1,
        }
        self.stop(env, None, ty, slot);
        self.on_exit(env, departed, exit)
    }

    /// Stops the whole tree, then every isolate still live (the end of a shutdown that
    /// timed out); nothing is restarted.
    pub(crate) fn stop_all(&mut self, env: &mut Env<'_>) {
        self.shutting_down = true;
        self.stop_group(env, 0);
        for ty in 0..self.types.len() as u8 {
            for slot in 0..self.types[usize::from(ty)].metas.len() as u32 {
                if self.types[usize::from(ty)].metas[slot as usize].is_live() {
                    self.stop(env, None, ty, slot);
                }
            }
        }
    }

    /// Tears down the isolate in (ty, slot) without supervision (it is being stopped).
    pub(super) fn stop_isolate(&mut self, env: &mut Env<'_>, h: Handle) {
        if let Some((ty, slot)) = self.locate(h) {
            self.stop(env, None, ty, slot);
        }
    }

    /// Supervises an isolate that has been torn down.
    pub(super) fn on_exit(&mut self, env: &mut Env<'_>, d: Registration, exit: Exit) -> Verdict {
        let restart = match d.restart {
            Restart::Permanent => true,
            Restart::Transient => matches!(exit, Exit::Crashed(_)),
            Restart::Temporary => false,
        };
        let restart = restart && !self.shutting_down;
        if d.member == DYNAMIC_MEMBER {
            if !restart {
                self.groups.release_dynamic(d.group);
                return Verdict::Handled;
            }
            loop {
                if !self
                    .groups
                    .charge(d.group, self.now.ticks(), self.spec.tick_ns)
                {
                    self.groups.release_dynamic(d.group);
                    return self.escalate(env, d.group);
                }
                self.counters.restarts += 1;
                if self.spawn(env, None, d).is_ok() {
                    return Verdict::Handled;
                }
            }
        }
        if !restart {
            self.groups.set_member(d.group, d.member, Member::Empty);
            return Verdict::Handled;
        }
        self.groups.set_member(d.group, d.member, Member::Stopped);
        self.restart_in_group(env, d.group, d.member)
    }

    /// Applies the group's strategy for failed member `m`, retrying while the budget lasts.
    fn restart_in_group(&mut self, env: &mut Env<'_>, g: u16, mut m: u16) -> Verdict {
        loop {
            if !self.groups.charge(g, self.now.ticks(), self.spec.tick_ns) {
                return self.escalate(env, g);
            }
            self.counters.restarts += 1;
            let spec = self.groups.groups[usize::from(g)].spec;
            let len = spec.children.len() as u16;
            let (from, to) = match spec.strategy {
                Strategy::OneForOne => (m, m + 1),
                Strategy::OneForAll => (0, len),
                Strategy::RestForOne => (m, len),
            };
            self.stop_members(env, g, from, to);
            match self.start_members(env, g, from, to) {
                Ok(()) => return Verdict::Handled,
                Err(failed) => m = failed,
            }
        }
    }

    /// Stops the running members `from..to` of group `g` in reverse order, marking them to be
    /// restarted.
    fn stop_members(&mut self, env: &mut Env<'_>, g: u16, from: u16, to: u16) {
        for m in (from..to).rev() {
            match self.groups.member(g, m) {
                Member::Isolate(h) => {
                    self.stop_isolate(env, h);
                    self.groups.set_member(g, m, Member::Stopped);
                }
                Member::Group {
                    index,
                    running: true,
                } => {
                    self.stop_group(env, index);
                    self.groups.set_member(
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
    pub(crate) fn stop_group(&mut self, env: &mut Env<'_>, g: u16) {
        let len = self.groups.groups[usize::from(g)].spec.children.len() as u16;
        self.stop_members(env, g, 0, len);
        if self.groups.groups[usize::from(g)].dynamic_count > 0 {
            for ty in 0..self.types.len() as u8 {
                for slot in 0..self.types[usize::from(ty)].metas.len() as u32 {
                    let m = self.types[usize::from(ty)].metas[slot as usize];
                    if m.is_live()
                        && m.state != State::Initializing
                        && m.group == g
                        && m.member == DYNAMIC_MEMBER
                    {
                        let h = self.handle(ty, slot);
                        self.stop_isolate(env, h);
                    }
                }
            }
            self.groups.groups[usize::from(g)].dynamic_count = 0;
        }
    }

    /// Starts the stopped members `from..to` in order. On a failure returns the member.
    pub(super) fn start_members(
        &mut self,
        env: &mut Env<'_>,
        g: u16,
        from: u16,
        to: u16,
    ) -> Result<(), u16> {
        let spec = self.groups.groups[usize::from(g)].spec;
        for m in from..to {
            match (self.groups.member(g, m), spec.children[usize::from(m)]) {
                (
                    Member::Stopped,
                    ChildSpec::Isolate {
                        ty, args, restart, ..
                    },
                ) => {
                    let Some(TypeId(ty)) = self.spec.resolve(ty) else {
                        debug_assert!(false, "a validated spec's children have registered types");
                        return Err(m);
                    };
                    let child = Registration {
                        ty,
                        group: g,
                        member: m,
                        restart,
                        args,
                    };
                    match self.spawn(env, None, child) {
                        // An `init` that returned `Done` left nothing running: the member
                        // is stopped, not a handle to a dead isolate.
                        Ok(h) if self.locate(h).is_none() => {
                            self.groups.set_member(g, m, Member::Stopped)
                        }
                        Ok(h) => self.groups.set_member(g, m, Member::Isolate(h)),
                        Err(SpawnError::InitFailed) => return Err(m),
                        Err(_) => {
                            // No slot (dynamic children took the type's capacity): no
                            // `init` ran, so say so for the boot error.
                            self.init_failure = Some(InitFailure {
                                child: Location::Child(self.groups.path(self.shard, g), m),
                                type_name: self.spec.types[usize::from(ty)].name,
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
                    if self.start_group(env, index).is_err() {
                        return Err(m);
                    }
                    self.groups.set_member(
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
    pub(crate) fn start_group(&mut self, env: &mut Env<'_>, g: u16) -> Result<(), ()> {
        self.groups.reset_history(g);
        let spec = self.groups.groups[usize::from(g)].spec;
        for (i, c) in spec.children.iter().enumerate() {
            if let ChildSpec::Isolate { .. } = c
                && self.groups.member(g, i as u16) == Member::Empty
            {
                self.groups.set_member(g, i as u16, Member::Stopped);
            }
        }
        let len = spec.children.len() as u16;
        if self.start_members(env, g, 0, len).is_err() {
            self.stop_group(env, g);
            return Err(());
        }
        Ok(())
    }

    /// A group gave up: stop it and report it to its parent as a failed child.
    fn escalate(&mut self, env: &mut Env<'_>, g: u16) -> Verdict {
        self.stop_group(env, g);
        let gs = &self.groups.groups[usize::from(g)];
        let (parent, index) = (gs.parent, gs.index_in_parent);
        if parent == NO_PARENT {
            return Verdict::RecoverShard;
        }
        self.groups.set_member(
            parent,
            index,
            Member::Group {
                index: g,
                running: false,
            },
        );
        if self.shutting_down {
            return Verdict::Handled;
        }
        self.restart_in_group(env, parent, index)
    }
}
