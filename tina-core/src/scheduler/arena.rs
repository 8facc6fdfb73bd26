//! Typed arenas: heterogeneous isolate types without `alloc` and without `unsafe`.
//!
//! Each registered type `T` gets one [`TypedArena`]: a dense `&mut [Option<T>]` carved from the
//! shard's region at boot. Everything the scheduler needs to decide *whether* to run an
//! isolate (generation, state, mailbox, queues) lives in separate per-type metadata
//! (structure of arrays, see `kernel`), so scanning for work never touches isolate memory.
//!
//! The shard sees each arena through the object-safe [`ErasedArena`] trait; trait objects over
//! `&'a mut` storage need no allocator. Only the per-type call is dynamic: inside `dispatch`
//! everything is monomorphized for `T`.
//!
//! **The borrow problem** (`ctx.spawn` while the current isolate is borrowed): during a
//! handler call the arena splits its slot slice around the running slot. The running isolate
//! is `&mut` borrowed from the middle; the halves before and after it go into the context as a
//! [`SlotPlacer`], so a spawn of the *same* type can still place its new isolate into any free
//! slot (a free slot is never the running one). Arenas of other types are reachable through
//! the shard's arena list split the same way. So `spawn` runs the child's `init` at once and
//! returns `InitFailed` synchronously, with no staging copy and no `unsafe`.

use crate::memory::args::InitArgs;
use crate::memory::{Measure, MemoryError, Region};
use crate::model::effect::{CrashReason, Effect};
use crate::model::isolate::Isolate;
use crate::model::message::Message;
use crate::scheduler::ctx::{Ctx, CtxParts};
use core::any::Any;
use core::fmt;

/// One entry of the shard's arena list (filled for every type at boot).
pub(crate) type ArenaRef<'a> = Option<&'a mut dyn ErasedArena<'a>>;

/// Places an initialized isolate (passed as `&mut Option<T>`) into a slot of its arena.
pub(crate) trait SlotPlacer {
    /// Moves the value out of `value` into `slot`. Returns false if the types do not match or
    /// the slot is occupied (the value is then left in place and dropped by the caller).
    fn place(&mut self, slot: u32, value: &mut dyn Any) -> bool;
    /// Drops the isolate in `slot`, if any.
    fn drop_slot(&mut self, slot: u32) -> bool;
}

/// The monomorphized operations of one type, stored in its `TypeSpec`.
#[derive(Clone, Copy)]
pub(crate) struct TypeVtable {
    pub(crate) rust_type: fn() -> core::any::TypeId,
    /// The `TypeId` of `T::Args`.
    pub(crate) args_type: fn() -> core::any::TypeId,
    pub(crate) size: usize,
    pub(crate) align: usize,
    pub(crate) measure: fn(&mut Measure, u32),
    pub(crate) build:
        for<'a> fn(&mut Region<'a>, u32) -> Result<&'a mut dyn ErasedArena<'a>, MemoryError>,
    pub(crate) init:
        for<'c, 'a> fn(&InitArgs, &mut Ctx<'c, 'a>, u32) -> Result<Effect, CrashReason>,
}

impl fmt::Debug for TypeVtable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeVtable")
            .field("size", &self.size)
            .field("align", &self.align)
            .finish()
    }
}

impl TypeVtable {
    pub(crate) const fn of<T: Isolate>() -> TypeVtable {
        TypeVtable {
            rust_type: core::any::TypeId::of::<T>,
            args_type: core::any::TypeId::of::<T::Args>,
            size: core::mem::size_of::<T>(),
            align: core::mem::align_of::<T>(),
            measure: measure::<T>,
            build: build::<T>,
            init: init::<T>,
        }
    }
}

fn measure<T: Isolate>(m: &mut Measure, capacity: u32) {
    m.slice::<Option<T>>(capacity as usize);
    m.one::<TypedArena<'static, T>>();
}

fn build<'a, T: Isolate>(
    r: &mut Region<'a>,
    capacity: u32,
) -> Result<&'a mut dyn ErasedArena<'a>, MemoryError> {
    let slots = r.slice::<Option<T>>(capacity as usize, |_| None)?;
    let arena = r.one(TypedArena { slots })?;
    Ok(arena)
}

/// Runs `T::init` with the child's context and places the value into `slot`. Arguments of
/// another type than `T::Args` are refused (an init failure), never reinterpreted; spec
/// validation rejects such a child before boot.
fn init<T: Isolate>(
    args: &InitArgs,
    ctx: &mut Ctx<'_, '_>,
    slot: u32,
) -> Result<Effect, CrashReason> {
    let Some(args) = args.decode::<T::Args>() else {
        return Err(CrashReason("init args are not of the type's Isolate::Args"));
    };
    let (value, effect) = T::init(&args, ctx)?;
    let mut value = Some(value);
    if ctx.place(slot, &mut value) {
        Ok(effect)
    } else {
        Err(CrashReason("internal: spawn slot unavailable"))
    }
}

/// The dense storage of one isolate type.
pub(crate) struct TypedArena<'a, T> {
    slots: &'a mut [Option<T>],
}

/// Type-erased access to one arena.
pub(crate) trait ErasedArena<'a> {
    /// Runs the handler of the isolate in `slot` on `msg`, writing its effect into `effect`,
    /// which the caller sets to `Effect::Receive` beforehand (so the common answer costs no
    /// copy of the large enum). Returns false, running nothing, if the slot is empty. The scheduler calls it inside the platform's trap, which it knows
    /// statically, so the trap costs no dynamic call.
    fn dispatch(
        &mut self,
        slot: u32,
        msg: &Message,
        parts: &mut CtxParts<'_, 'a>,
        effect: &mut Effect,
    ) -> bool;
    /// See [`SlotPlacer::place`].
    fn place(&mut self, slot: u32, value: &mut dyn Any) -> bool;
    /// See [`SlotPlacer::drop_slot`].
    fn drop_slot(&mut self, slot: u32) -> bool;
    /// Whether `slot` holds an isolate.
    fn occupied(&self, slot: u32) -> bool;
    /// Read-only access to an isolate's state (for checkers), as `&T`.
    fn state(&self, slot: u32) -> Option<&dyn Any>;
    /// Drops every isolate.
    fn clear(&mut self);
}

impl<'a, T: Isolate> ErasedArena<'a> for TypedArena<'a, T> {
    #[inline]
    fn dispatch(
        &mut self,
        slot: u32,
        msg: &Message,
        parts: &mut CtxParts<'_, 'a>,
        effect: &mut Effect,
    ) -> bool {
        let (before, rest) = self.slots.split_at_mut(slot as usize);
        let Some((current, after)) = rest.split_first_mut() else {
            return false;
        };
        let Some(isolate) = current.as_mut() else {
            return false;
        };
        let mut own = SplitSlots {
            before,
            after,
            split: slot,
        };
        let mut ctx = Ctx::of_call(parts, Some(&mut own));
        let returned = isolate.handle(msg, &mut ctx);
        // `effect` starts as `Receive` (the common answer): only another effect is copied.
        if !matches!(returned, Effect::Receive) {
            *effect = returned;
        }
        true
    }

    fn place(&mut self, slot: u32, value: &mut dyn Any) -> bool {
        place_into(self.slots.get_mut(slot as usize), value)
    }

    fn drop_slot(&mut self, slot: u32) -> bool {
        self.slots
            .get_mut(slot as usize)
            .is_some_and(|s| s.take().is_some())
    }

    fn occupied(&self, slot: u32) -> bool {
        self.slots.get(slot as usize).is_some_and(Option::is_some)
    }

    fn state(&self, slot: u32) -> Option<&dyn Any> {
        self.slots
            .get(slot as usize)?
            .as_ref()
            .map(|t| t as &dyn Any)
    }

    fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            *s = None;
        }
    }
}

fn place_into<T: 'static>(target: Option<&mut Option<T>>, value: &mut dyn Any) -> bool {
    match (target, value.downcast_mut::<Option<T>>()) {
        (Some(target), Some(value)) if target.is_none() && value.is_some() => {
            *target = value.take();
            true
        }
        _ => false,
    }
}

/// The slots of the running isolate's own arena, minus the running slot.
struct SplitSlots<'x, T> {
    before: &'x mut [Option<T>],
    after: &'x mut [Option<T>],
    split: u32,
}

impl<T> SplitSlots<'_, T> {
    fn get_mut(&mut self, slot: u32) -> Option<&mut Option<T>> {
        if slot < self.split {
            self.before.get_mut(slot as usize)
        } else if slot > self.split {
            self.after.get_mut((slot - self.split - 1) as usize)
        } else {
            None
        }
    }
}

impl<T: 'static> SlotPlacer for SplitSlots<'_, T> {
    fn place(&mut self, slot: u32, value: &mut dyn Any) -> bool {
        place_into(self.get_mut(slot), value)
    }

    fn drop_slot(&mut self, slot: u32) -> bool {
        self.get_mut(slot).is_some_and(|s| s.take().is_some())
    }
}

/// Reborrows an optional placer for a shorter call (the trait object's lifetime shrinks with
/// the borrow, which `Option::as_deref_mut` cannot express).
pub(crate) fn reborrow<'r>(
    own: &'r mut Option<&mut dyn SlotPlacer>,
) -> Option<&'r mut dyn SlotPlacer> {
    match own {
        Some(o) => Some(&mut **o),
        None => None,
    }
}
