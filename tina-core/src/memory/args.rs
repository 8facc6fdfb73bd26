//! Init arguments kept typed: the value an isolate was spawned with, stored so that a restart
//! runs `init` again with the same value.
//!
//! [`InitArgs`] holds a copy of one value of any `Copy + Send + Sync + 'static` type of at
//! most [`INIT_ARGS_SIZE_MAX`] bytes (any alignment), together with that type's identity.
//! It reads the value back only as that same type ([`InitArgs::decode`] returns `None` for
//! any other), so a spec that pairs an isolate type with the arguments of another type is
//! refused, never reinterpreted. The bytes are kept as `MaybeUninit<u8>`: a value's padding
//! may be uninitialised and is never read as an integer (not by `Debug` either, which shows
//! the type's name only).
//!
//! This is one of the few places in tina-core with `unsafe` (with the region and the ring):
//! copying a typed value into bytes and back.

use crate::model::isolate::INIT_ARGS_SIZE_MAX;
use core::any::TypeId;
use core::fmt;
use core::mem::MaybeUninit;

/// The bytes of one value, padding and the tail past the value left uninitialised.
type Bytes = [MaybeUninit<u8>; INIT_ARGS_SIZE_MAX];

/// A value of `A` seen as its bytes: writing `value` and reading `bytes` copies the value
/// bytewise (initialised or not, with any pointer provenance) — also in a `const fn`.
union Pack<A: Copy> {
    value: A,
    bytes: Bytes,
}

/// The identity of a Rust type: its `TypeId` and its name.
fn identity<A: 'static>() -> (TypeId, &'static str) {
    (TypeId::of::<A>(), core::any::type_name::<A>())
}

/// Init arguments as stored in specs and for restarts: one typed value (see the module docs).
///
/// ```
/// use core::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use tina_core::InitArgs;
///
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Listen { addr: SocketAddr, backlog: u32, name: &'static str }
///
/// const ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80);
/// static ARGS: InitArgs = InitArgs::new(&Listen { addr: ADDR, backlog: 64, name: "web" });
/// assert_eq!(ARGS.decode::<Listen>().unwrap().name, "web");
/// assert_eq!(ARGS.decode::<SocketAddr>(), None); // any other type is refused
/// ```
///
/// More than [`INIT_ARGS_SIZE_MAX`] bytes is a compile error:
///
/// ```compile_fail,E0080
/// let _ = tina_core::InitArgs::new(&[0u8; 65]);
/// ```
///
/// So is a value that may not be shared between shards' threads:
///
/// ```compile_fail,E0277
/// static COUNT: core::cell::Cell<u32> = core::cell::Cell::new(0);
/// let _ = tina_core::InitArgs::new(&&COUNT);
/// ```
#[derive(Clone, Copy)]
pub struct InitArgs {
    bytes: Bytes,
    ty: fn() -> (TypeId, &'static str),
}

impl Default for InitArgs {
    fn default() -> Self {
        InitArgs::EMPTY
    }
}

impl fmt::Debug for InitArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InitArgs").field(&self.type_name()).finish()
    }
}

impl InitArgs {
    /// The unit value `()`: the arguments of an isolate whose `Args` is `()`.
    pub const EMPTY: InitArgs = InitArgs::new(&());

    /// Keeps a copy of `value`. Usable in `const` and `static` specs. A type larger than
    /// [`INIT_ARGS_SIZE_MAX`] bytes is a compile error.
    pub const fn new<A: Copy + Send + Sync + 'static>(value: &A) -> InitArgs {
        const { assert!(core::mem::size_of::<A>() <= INIT_ARGS_SIZE_MAX) };
        let pack = Pack { value: *value };
        InitArgs {
            // SAFETY: every bit pattern, initialised or not, is a valid `[MaybeUninit<u8>; N]`,
            // and the field lies within the union (it is at least `INIT_ARGS_SIZE_MAX` bytes).
            bytes: unsafe { pack.bytes },
            ty: identity::<A>,
        }
    }

    /// The value, if these are arguments of type `A`; `None` for any other type.
    pub fn decode<A: Copy + Send + Sync + 'static>(&self) -> Option<A> {
        const { assert!(core::mem::size_of::<A>() <= INIT_ARGS_SIZE_MAX) };
        if !self.is::<A>() {
            return None;
        }
        // SAFETY: only `new::<A>` stores `identity::<A>` (and `TypeId`s of distinct types
        // differ), so `bytes` begin with the bytes of a valid `A`, copied bytewise with their
        // provenance; `A` fits in them (checked above at compile time), and the unaligned
        // read needs no alignment. `A: Copy`, so reading it out leaves nothing owned behind.
        Some(unsafe { self.bytes.as_ptr().cast::<A>().read_unaligned() })
    }

    /// Whether these are arguments of type `A`.
    pub fn is<A: 'static>(&self) -> bool {
        (self.ty)().0 == TypeId::of::<A>()
    }

    /// The name of the arguments' Rust type (as `core::any::type_name`, for messages).
    pub fn type_name(&self) -> &'static str {
        (self.ty)().1
    }

    /// The `TypeId` of the arguments' Rust type.
    pub(crate) fn rust_type(&self) -> TypeId {
        (self.ty)().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Mode {
        Idle,
        Listen { port: u16, backlog: u32 },
        Named(&'static str),
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(align(32))]
    struct Aligned {
        a: u8,
        b: u64,
    }

    fn roundtrip<A: Copy + Send + Sync + PartialEq + fmt::Debug + 'static>(value: A) {
        let args = InitArgs::new(&value);
        assert!(args.is::<A>());
        assert_eq!(args.decode::<A>(), Some(value));
        let copied = args;
        assert_eq!(copied.decode::<A>(), Some(value), "a copy keeps the value");
    }

    #[test]
    fn init_args_roundtrip_values_with_padding_pointers_and_enums() {
        roundtrip((7u8, 0x0102_0304_0506_0708u64));
        roundtrip((1u8, 2u16, 3u8, 4u32));
        roundtrip(Mode::Idle);
        roundtrip(Mode::Listen {
            port: 8080,
            backlog: 128,
        });
        roundtrip(Mode::Named("store"));
        roundtrip("a &'static str");
        roundtrip(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7000));
        roundtrip(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 7001));
        roundtrip(Aligned { a: 1, b: 2 });
        roundtrip([0xa5u8; INIT_ARGS_SIZE_MAX]);
        roundtrip(Some(5u32));
        roundtrip(());
    }

    #[test]
    fn init_args_refuse_to_decode_as_another_type() {
        let args = InitArgs::new(&(7u8, 9u64));
        assert_eq!(args.decode::<u64>(), None);
        assert_eq!(args.decode::<(u64, u8)>(), None);
        assert_eq!(args.decode::<[u8; 16]>(), None);
        assert_eq!(args.decode::<()>(), None);
        assert!(!args.is::<u64>());
        assert_eq!(InitArgs::EMPTY.decode::<u32>(), None);
        assert_eq!(InitArgs::EMPTY.decode::<()>(), Some(()));
        assert_eq!(InitArgs::new(&"x").decode::<usize>(), None);
    }

    #[test]
    fn init_args_built_in_a_static_decode_at_run_time() {
        static NAMED: InitArgs = InitArgs::new(&Mode::Named("from a static"));
        static PADDED: InitArgs = InitArgs::new(&(3u8, 4u64));
        const ADDR: InitArgs =
            InitArgs::new(&SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 53));
        assert_eq!(NAMED.decode::<Mode>(), Some(Mode::Named("from a static")));
        assert_eq!(PADDED.decode::<(u8, u64)>(), Some((3, 4)));
        assert_eq!(
            ADDR.decode::<SocketAddr>(),
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 53))
        );
    }

    #[test]
    fn init_args_debug_names_the_type_without_reading_the_bytes() {
        extern crate std;
        use std::format;
        let args = InitArgs::new(&(1u8, 2u64));
        let name = core::any::type_name::<(u8, u64)>();
        assert_eq!(format!("{args:?}"), format!("InitArgs({name:?})"));
        assert_eq!(args.type_name(), name);
        assert_eq!(
            InitArgs::default().type_name(),
            core::any::type_name::<()>()
        );
    }
}
