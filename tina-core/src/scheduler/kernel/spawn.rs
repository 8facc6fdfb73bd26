//! Spawning and stopping isolates: reserving a slot, running `init` through the trap, placing
//! the value into its arena, and the reverse (dropping the value, tearing the slot down).

use super::{Env, Kernel, NOTICE_SHUTDOWN};
use crate::error::SpawnError;
use crate::memory::args::InitArgs;
use crate::memory::iobuf::WorkChunk;
use crate::model::effect::CrashReason;
use crate::model::handle::Handle;
use crate::platform::{CallKind, TrapCall};
use crate::scheduler::arena::{SlotPlacer, reborrow};
use crate::scheduler::boot::InitFailure;
use crate::scheduler::ctx::Ctx;
use crate::scheduler::supervision::{DYNAMIC_MEMBER, Registration};
use crate::spec::{Location, Restart};
use core::any::Any;

impl<'a> Kernel<'a> {
    /// Spawns a dynamic child of type `ty` into supervision group `group` (see
    /// [`Kernel::spawn`]), if the group has room for another.
    pub(crate) fn spawn_dynamic(
        &mut self,
        env: &mut Env<'_>,
        own: Option<&mut dyn SlotPlacer>,
        ty: u8,
        args: InitArgs,
        group: u16,
        restart: Restart,
    ) -> Result<Handle, SpawnError> {
        if !self.groups.reserve_dynamic(group) {
            self.counters.spawn_failures += 1;
            return Err(SpawnError::GroupFull);
        }
        let child = Registration {
            ty,
            group,
            member: DYNAMIC_MEMBER,
            restart,
            args,
        };
        let r = self.spawn(env, own, child);
        if r.is_err() {
            self.groups.release_dynamic(group);
        }
        r
    }

    /// Reserves a slot of the child's type, runs `init` through the trap (with a context whose
    /// identity is the child), places the isolate and applies its first effect. `own` is the
    /// running handler's own arena (its free slots), when a handler spawns; `None` outside
    /// handler calls (boot, supervision), when every arena is in [`Kernel::arenas`].
    pub(super) fn spawn(
        &mut self,
        env: &mut Env<'_>,
        mut own: Option<&mut dyn SlotPlacer>,
        registration: Registration,
    ) -> Result<Handle, SpawnError> {
        let Registration {
            ty,
            group,
            member,
            restart,
            args,
        } = registration;
        let Some((slot, _)) = self.types[usize::from(ty)].reserve(&mut self.counters) else {
            self.counters.spawn_failures += 1;
            return Err(SpawnError::ArenaFull);
        };
        let child = self.handle(ty, slot);
        let m = self.meta(ty, slot);
        m.group = group;
        m.member = member;
        m.restart = restart;
        self.types[usize::from(ty)].args[slot as usize] = args;
        let held_mark = self.io.bufs.held_mark();
        let transfer_mark = self.transfers.held_mark();
        let bulk_mark = self.bulk_held_mark();
        self.zero_working_memory(ty, slot);
        let call = TrapCall {
            isolate: child,
            type_name: self.spec.types[usize::from(ty)].name,
            kind: CallKind::Init,
        };
        let init = self.spec.types[usize::from(ty)].vtable.init;
        self.control_error = None;
        let mut result = Err(CrashReason::PANIC);
        let trap = env.trap;
        let trapped = {
            let mut ctx = Ctx::new(self, env, reborrow(&mut own), child, group);
            trap.run(call, &mut || result = init(&args, &mut ctx, slot))
        };
        if trapped.is_err() {
            self.counters.panics += 1;
        }
        let effect = match result {
            Ok(effect) => effect,
            Err(reason) => {
                let path = self.groups.path(self.shard, group);
                self.init_failure = Some(InitFailure {
                    child: Location::Child(path, member),
                    type_name: call.type_name,
                    reason,
                    io_error: self.control_error,
                });
                // Nothing was placed (or the placed value is dropped now); release the slot.
                self.io.bufs.release_held_from(held_mark);
                self.transfers.release_held_from(transfer_mark);
                self.bulk_release_held_from(bulk_mark);
                self.bulk_release_held_from(bulk_mark);
                self.stop(env, own, ty, slot);
                self.counters.spawn_failures += 1;
                return Err(SpawnError::InitFailed);
            }
        };
        self.counters.spawns += 1;
        if self.shutting_down {
            self.meta(ty, slot).notices |= NOTICE_SHUTDOWN;
        }
        let exit = self.apply_effect(env.transport, ty, slot, &effect, None);
        self.io.bufs.release_held_from(held_mark);
        self.transfers.release_held_from(transfer_mark);
        self.bulk_release_held_from(bulk_mark);
        if exit.is_some() {
            // `init` asked to stop at once: tear down without a restart.
            self.stop(env, own, ty, slot);
        } else {
            self.types[usize::from(ty)].make_ready(slot);
        }
        Ok(child)
    }

    /// Zeroes the working memory of the isolate in (ty, slot) (at every spawn).
    fn zero_working_memory(&mut self, ty: u8, slot: u32) {
        let t = &mut self.types[usize::from(ty)];
        let per = t.working_chunks;
        t.working[slot as usize * per..(slot as usize + 1) * per].fill(WorkChunk::ZERO);
    }

    /// Places an initialized isolate (`value`, an `&mut Option<T>`) into its reserved slot:
    /// through `own` for the running type, else through its arena.
    pub(crate) fn place(
        &mut self,
        own: Option<&mut dyn SlotPlacer>,
        ty: u8,
        slot: u32,
        value: &mut dyn Any,
    ) -> bool {
        match self.arenas.get_mut(usize::from(ty)) {
            Some(Some(a)) => a.place(slot, value),
            _ => own.is_some_and(|o| o.place(slot, value)),
        }
    }

    /// Drops the isolate value in (ty, slot), if any: through `own` for the running type,
    /// else through its arena.
    fn drop_isolate(&mut self, own: Option<&mut dyn SlotPlacer>, ty: u8, slot: u32) {
        match self.arenas.get_mut(usize::from(ty)) {
            Some(Some(a)) => {
                a.drop_slot(slot);
            }
            _ => {
                if let Some(o) = own {
                    o.drop_slot(slot);
                }
            }
        }
    }

    /// Stops the isolate in (ty, slot) without supervision: drops its value, tears its slot
    /// down ([`Kernel::teardown`]), then hands any descriptor it orphaned while the submission
    /// batch was full to the platform to close at once.
    pub(super) fn stop(
        &mut self,
        env: &mut Env<'_>,
        own: Option<&mut dyn SlotPlacer>,
        ty: u8,
        slot: u32,
    ) {
        self.drop_isolate(own, ty, slot);
        self.teardown(ty, slot);
        if !self.orphans.is_empty() {
            self.reclaim_orphans(env.control);
        }
    }
}
