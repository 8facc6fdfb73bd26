//! The context a handler gets: everything an isolate can *do* besides returning an effect.
//!
//! Every method returns at once with a value; none panics on bad input (a stale handle, a
//! full mailbox, an exhausted pool or timer wheel, an oversized payload are all results).
//! So when user code panics after several context calls, the shard's structures are still
//! consistent: each call completed its own update before returning.

use crate::error::{ScratchTooSmall, SendError, SpawnError};
use crate::memory::args::InitArgs;
use crate::memory::timer::{TimerId, TimersExhausted};
use crate::model::address::{Address, Name, Recipient, ShardKey};
use crate::model::handle::{Handle, ShardId, TypeId};
use crate::model::io::{
    Control, ControlOutcome, Domain, Fd, IoBuf, IoError, IoOp, IoTicket, ShutdownHow, SocketKind,
    SocketOption,
};
use crate::model::isolate::Isolate;
use crate::model::message::{CallToken, Message, Outgoing, Payload, PayloadTooLarge, UserTag};
use crate::model::time::{Duration, Instant, WallTime};
use crate::model::transfer::{TransferBuf, TransferError};
use crate::scheduler::arena::SlotPlacer;
use crate::scheduler::kernel::{Env, Kernel};
use crate::spec::{Restart, TypeRef};
use core::any::Any;
use core::net::SocketAddr;

/// What the scheduler lends a handler call: the kernel, the platform parts, and who is
/// called with which call (the arena builds the [`Ctx`] from it, with the running arena's
/// free slots).
pub(crate) struct CtxParts<'p, 'a> {
    pub(crate) kernel: &'p mut Kernel<'a>,
    pub(crate) env: Env<'p>,
    pub(crate) me: Handle,
    pub(crate) group: u16,
    pub(crate) call: Option<(Handle, u64)>,
}

/// What a handler can do besides returning an effect: a thin borrow of the shard's kernel,
/// plus who is running (`me` and its supervision group). (The call being answered, if any,
/// stays with the scheduler: `Effect::Reply` goes to it.)
pub struct Ctx<'x, 'a> {
    kernel: &'x mut Kernel<'a>,
    env: Env<'x>,
    /// The free slots of the arena lent out of the kernel to the running dispatch batch
    /// (where a spawn of the running type places its child); `None` when no arena is lent
    /// out (boot, supervision).
    own: Option<&'x mut dyn SlotPlacer>,
    me: Handle,
    group: u16,
}

impl<'x, 'a> Ctx<'x, 'a> {
    /// A context for `me` (in supervision group `group`).
    #[inline]
    pub(crate) fn new(
        kernel: &'x mut Kernel<'a>,
        env: &'x mut Env<'_>,
        own: Option<&'x mut dyn SlotPlacer>,
        me: Handle,
        group: u16,
    ) -> Ctx<'x, 'a> {
        Ctx {
            kernel,
            env: Env {
                transport: &mut *env.transport,
                control: &mut *env.control,
                trap: env.trap,
            },
            own,
            me,
            group,
        }
    }

    /// The context of a handler call, from the parts the scheduler lent.
    #[inline]
    pub(crate) fn of_call(
        parts: &'x mut CtxParts<'_, 'a>,
        own: Option<&'x mut dyn SlotPlacer>,
    ) -> Ctx<'x, 'a> {
        let (me, group) = (parts.me, parts.group);
        Ctx::new(parts.kernel, &mut parts.env, own, me, group)
    }

    /// This isolate's handle.
    pub fn me(&self) -> Handle {
        self.me
    }

    /// This shard's id.
    pub fn shard_id(&self) -> ShardId {
        self.kernel.shard()
    }

    /// How many shards the system has.
    pub fn shard_count(&self) -> u16 {
        self.kernel.spec().shards.len() as u16
    }

    /// The current tick.
    pub fn now(&self) -> Instant {
        self.kernel.now()
    }

    /// The time since `earlier` (an earlier [`Ctx::now`]) in real units: whole ticks times
    /// the shard's tick length, or zero if `earlier` is later. Compare it with a
    /// [`Duration`] directly (`ctx.elapsed_since(t) >= Duration::from_secs(2)`).
    pub fn elapsed_since(&self, earlier: Instant) -> Duration {
        let ticks = self.kernel.now().ticks_since(earlier);
        Duration::from_ticks_of(ticks, self.kernel.spec().tick_ns)
    }

    /// The calendar time the platform read at the start of this step (for an HTTP `Date`
    /// header, TTLs, log stamps), or `None` on a platform without a calendar clock. It can
    /// jump when the host's clock is set: measure spans with [`Ctx::now`] instead.
    ///
    /// An HTTP `Date` header, without allocating:
    /// `ctx.wall_time().map(|t| t.http_date())` gives the 29 bytes of
    /// `Sun, 06 Nov 1994 08:49:37 GMT` ([`WallTime::http_date`]).
    pub fn wall_time(&self) -> Option<WallTime> {
        self.kernel.wall()
    }

    /// Whether the shard is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.kernel.is_shutting_down()
    }

    /// The [`TypeId`] of a registered isolate type.
    pub fn type_id_of<T: Isolate>(&self) -> Option<TypeId> {
        self.kernel.spec().type_id_of::<T>()
    }

    /// Sends a typed message to an [`Address`] whose type accepts it (checked at compile
    /// time), or to any untyped [`Handle`]. Returns at once; nothing is retried by the
    /// framework. What this shard can see is the result (`MailboxFull` for a full mailbox or
    /// ring, `StaleHandle`, `NotRunning` for a local named isolate between incarnations,
    /// `PoolExhausted`); a send to another shard that its shard cannot deliver is dropped
    /// there and counted (a [`Call`](crate::Effect::Call) is refused back to its caller
    /// instead).
    #[inline]
    pub fn send<M: Payload>(&mut self, to: impl Recipient<M>, value: &M) -> Result<(), SendError> {
        self.kernel
            .send_typed(self.env.transport, self.me, to.to_handle(), value)
    }

    /// The isolate named `name` on `shard`, whichever incarnation runs when a message
    /// arrives. (The name must be declared on that shard with
    /// [`ChildSpec::named`](crate::ChildSpec::named); otherwise sends to it are refused
    /// with `UnknownName`.)
    pub fn on_shard<T: Isolate>(&self, name: Name<T>, shard: ShardId) -> Address<T> {
        Address::new(Handle::named(shard, name.key()))
    }

    /// The isolate named `name` on the shard that owns `key`:
    /// [`key_to_shard`](crate::key_to_shard) of the key's [`ShardKey`] (integers as
    /// themselves, byte strings through FNV-1a 64), stable across releases.
    pub fn by_key<T: Isolate, K: ShardKey + ?Sized>(&self, name: Name<T>, key: &K) -> Address<T> {
        let shard = crate::key_to_shard(key.shard_key(), self.shard_count());
        self.on_shard(name, shard)
    }

    /// `handle` as an address of `T`, if it names an isolate of type `T` (for a handle
    /// learned from a message's source, say).
    /// (A named address carries no type id, so it is never accepted here.)
    pub fn address_of<T: Isolate>(&self, handle: Handle) -> Option<Address<T>> {
        let ty = self.kernel.spec().type_id_of::<T>()?;
        let plain = !handle.is_none() && !handle.is_named();
        (plain && handle.type_id() == ty).then(|| Address::new(handle))
    }

    /// Sends raw bytes under a user tag (at most 96 bytes).
    pub fn send_bytes(&mut self, to: Handle, tag: UserTag, bytes: &[u8]) -> Result<(), SendError> {
        match Outgoing::from_bytes(tag, bytes) {
            Ok(out) => self.send_outgoing(to, &out),
            Err(PayloadTooLarge { .. }) => Err(SendError::PayloadTooLarge),
        }
    }

    /// Sends a prepared message.
    pub fn send_outgoing(&mut self, to: Handle, out: &Outgoing) -> Result<(), SendError> {
        let msg = Message::build(self.me, to, out);
        self.kernel.send(self.env.transport, &msg)
    }

    /// Spawns a dynamic child of type `T` into this isolate's supervision group, runs its
    /// `init` at once and returns its handle. The child is `Temporary` (never restarted);
    /// see [`Ctx::spawn_with`].
    pub fn spawn<T: Isolate>(&mut self, args: &T::Args) -> Result<Address<T>, SpawnError> {
        self.spawn_with::<T>(args, Restart::Temporary)
    }

    /// Spawns a dynamic child with a restart type.
    pub fn spawn_with<T: Isolate>(
        &mut self,
        args: &T::Args,
        restart: Restart,
    ) -> Result<Address<T>, SpawnError> {
        let ty = self
            .kernel
            .spec()
            .resolve(TypeRef::of::<T>())
            .ok_or(SpawnError::UnknownType)?;
        self.kernel
            .spawn_dynamic(
                &mut self.env,
                crate::scheduler::arena::reborrow(&mut self.own),
                ty.0,
                InitArgs::new(args),
                self.group,
                restart,
            )
            .map(Address::new)
    }

    /// Starts a one-shot timer: after `after` a message with `tag` (and no payload) arrives
    /// in this isolate's mailbox. Cancel it with [`Ctx::cancel_timer`].
    ///
    /// `after` is converted to ticks with the shard's tick length, rounding up, so a timer
    /// never fires early: `Duration::from_secs(2)` is 2000 ticks of 1 ms, a 1 ns timer waits
    /// one tick, and a zero duration is due at once (in this step's timer phase).
    pub fn start_timer(
        &mut self,
        after: Duration,
        tag: UserTag,
    ) -> Result<TimerId, TimersExhausted> {
        self.kernel.start_timer(self.me, after, tag)
    }

    /// Cancels a pending timer. Returns whether it was still pending (a timer that already
    /// fired, or another isolate's timer, is left alone).
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.kernel.cancel_timer(self.me, id)
    }

    /// Takes a reactor-owned buffer to fill and hand to an I/O op in the returned effect.
    /// Freed automatically after this handler call if not handed over.
    pub fn io_buffer(&mut self) -> Result<IoBuf, IoError> {
        self.kernel.io_buffer(self.me)
    }

    /// The writable bytes of a buffer this handler call holds.
    pub fn io_buffer_mut(&mut self, buf: IoBuf) -> Result<&mut [u8], IoError> {
        self.kernel.io_buffer_mut(self.me, buf)
    }

    /// The bytes of a buffer this handler call holds (e.g. the one a receive completion
    /// delivered), limited to `len`.
    pub fn io_data(&self, buf: IoBuf, len: usize) -> Result<&[u8], IoError> {
        self.kernel.io_data(self.me, buf, len)
    }

    /// Submits one I/O op without parking: the handler goes on, and the op's completion
    /// arrives later as an `IO_COMPLETED` message carrying the returned ticket
    /// ([`IoCompletion::ticket`](crate::io::IoCompletion::ticket)), delivered while the
    /// isolate waits for mail. Refused at once — nothing handed over, an outbound buffer
    /// stays this call's — with `InFlightLimit` (the type's `io_in_flight_max − 1` submitted
    /// ops are in flight; the default allows none), `QueueFull`, `NoBuffers`, `BadBuffer`
    /// or `InvalidInput` (a length beyond the buffer).
    pub fn submit(&mut self, op: IoOp) -> Result<IoTicket, IoError> {
        self.kernel.submit_ticket(self.me, op)
    }

    /// Asks the platform to cancel a submitted op. Its completion still arrives exactly
    /// once: `Err(IoError::Canceled)` if the cancel won, the normal result if the op
    /// finished first. `InFlightLimit` if the ticket is not in flight (its completion came
    /// already), `QueueFull` if this tick's cancels are full.
    pub fn cancel(&mut self, ticket: IoTicket) -> Result<(), IoError> {
        self.kernel.cancel_io(self.me, ticket)
    }

    /// Bytes per I/O buffer on this shard.
    pub fn io_buffer_size(&self) -> usize {
        self.kernel.io_buffer_size()
    }

    /// Runs a synchronous socket-control call.
    pub fn control(&mut self, op: Control) -> Result<ControlOutcome, IoError> {
        let result = self.env.control.control(self.me, op);
        self.kernel.record_control(result.err());
        result
    }

    /// Creates a socket.
    pub fn socket(&mut self, domain: Domain, kind: SocketKind) -> Result<Fd, IoError> {
        match self.control(Control::Socket { domain, kind })? {
            ControlOutcome::Fd(fd) => Ok(fd),
            _ => Err(IoError::InvalidInput),
        }
    }

    /// Binds a socket.
    pub fn bind(&mut self, socket: Fd, addr: SocketAddr) -> Result<(), IoError> {
        self.control(Control::Bind { socket, addr }).map(|_| ())
    }

    /// Starts listening.
    pub fn listen(&mut self, socket: Fd, backlog: u32) -> Result<(), IoError> {
        self.control(Control::Listen { socket, backlog })
            .map(|_| ())
    }

    /// Sets a socket option.
    pub fn set_option(&mut self, socket: Fd, option: SocketOption) -> Result<(), IoError> {
        self.control(Control::SetOption { socket, option })
            .map(|_| ())
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&mut self, socket: Fd, how: ShutdownHow) -> Result<(), IoError> {
        self.control(Control::Shutdown { socket, how }).map(|_| ())
    }

    /// The local address of a socket.
    pub fn local_addr(&mut self, socket: Fd) -> Result<SocketAddr, IoError> {
        match self.control(Control::LocalAddr { socket })? {
            ControlOutcome::Addr(a) => Ok(a),
            _ => Err(IoError::InvalidInput),
        }
    }

    /// This isolate's working memory: `TypeSpec::working_memory_size` bytes that live as
    /// long as the isolate, zeroed when it is spawned (and so at every restart), 16-byte
    /// aligned. Empty if the type has none.
    pub fn working_memory(&mut self) -> &mut [u8] {
        self.kernel.working_memory(self.me)
    }

    /// `len` bytes of the shard's scratch area, zeroed at the first use in each handler call
    /// (nothing survives from another call, of this isolate or any other). At most the type's
    /// `scratch_size`; more is an error, not a panic.
    pub fn scratch(&mut self, len: usize) -> Result<&mut [u8], ScratchTooSmall> {
        self.kernel.scratch(self.me, len)
    }

    /// Takes a transfer buffer for a payload of `len` bytes (> 96): a bulk slot of this shard's
    /// pool when the platform attached bulk pools (sendable to any shard), else a shard-local
    /// buffer. It is this handler call's until sent with [`Ctx::send_transfer`]; otherwise
    /// freed after the call. See [`TransferBuf`] for what a receiver may do with it.
    pub fn transfer_alloc(&mut self, len: usize) -> Result<TransferBuf, TransferError> {
        self.kernel.transfer_alloc(self.me, len)
    }

    /// The writable bytes of a transfer buffer this call holds (its full recorded length).
    pub fn transfer_mut(&mut self, t: TransferBuf) -> Result<&mut [u8], TransferError> {
        self.kernel.transfer_mut(self.me, t)
    }

    /// The bytes of a transfer buffer this call holds (e.g. the one attached to the message
    /// being handled).
    pub fn transfer_data(&self, t: TransferBuf) -> Result<&[u8], TransferError> {
        self.kernel.transfer_data(self.me, t)
    }

    /// Sends a message with tag `tag` and the transfer buffer attached: to an isolate of any
    /// shard for a bulk slot, of this shard for a shard-local buffer (`NotLocal` otherwise).
    /// On success the buffer belongs to the message; on failure it stays this call's.
    pub fn send_transfer(
        &mut self,
        to: Handle,
        tag: UserTag,
        t: TransferBuf,
    ) -> Result<(), SendError> {
        self.kernel
            .send_transfer(self.env.transport, self.me, to, tag, t)
    }

    /// Writes a log record (formatted now into the shard's bounded log ring, flushed to the
    /// platform after dispatch). Returns false, and counts a drop, when the ring is full.
    /// Not rate-limited: the [`log!`](crate::log!) macro, which names its call site, is.
    pub fn log(
        &mut self,
        level: crate::memory::log::Level,
        args: core::fmt::Arguments<'_>,
    ) -> bool {
        self.kernel.log(self.me, level, args)
    }

    /// Writes a log record from call site `site`, subject to the site's rate limit (see
    /// [`mod@crate::log`]). Returns false when the record was suppressed (counted, reported
    /// later) or dropped because the ring is full (counted as a drop). What the
    /// [`log!`](crate::log!) macro calls.
    pub fn log_at(
        &mut self,
        site: &'static crate::memory::log::LogSite,
        level: crate::memory::log::Level,
        args: core::fmt::Arguments<'_>,
    ) -> bool {
        self.kernel.log_at(self.me, site, level, args)
    }

    /// Makes this isolate the owner of a descriptor (or of none): if the isolate is torn down
    /// while owning it — a crash, a panic, a group restart — the shard closes it, so a crashed
    /// connection never leaks its socket. Returning `Io(Close)` on it ends the ownership.
    ///
    /// A descriptor delivered by an `Accept` or `Open` completion belongs to the handler call
    /// that receives it until some isolate owns it this way (e.g. the connection isolate the
    /// handler spawns, from its `init`); if the receiver exits without that happening, the
    /// shard closes the descriptor.
    pub fn own_fd(&mut self, fd: Option<Fd>) {
        self.kernel.own_fd(self.me, fd)
    }

    /// Answers a call later — after the handler that received it has returned (e.g. once a
    /// write completed). `token` comes from [`Message::call_token`]; the reply is accepted
    /// only if the caller still waits for exactly that call, otherwise it is dropped and
    /// counted as stale by the caller's shard.
    pub fn reply_to(&mut self, token: CallToken, out: &Outgoing) -> Result<(), SendError> {
        let msg = Message::build(self.me, token.caller, out).with_reply(token.correlation);
        self.kernel.send(self.env.transport, &msg)
    }

    /// Subscribes (or not) this isolate to peer shard status notices: `SHARD_RESTARTED` and
    /// `SHARD_QUARANTINED` system messages whose payload's first byte is the shard id.
    pub fn watch_shards(&mut self, on: bool) {
        self.kernel.watch_shards(self.me, on)
    }

    /// Places an initialized isolate into its reserved slot (what a type's `init` glue
    /// calls).
    pub(crate) fn place(&mut self, slot: u32, value: &mut dyn Any) -> bool {
        let ty = self.me.type_id().0;
        self.kernel.place(
            crate::scheduler::arena::reborrow(&mut self.own),
            ty,
            slot,
            value,
        )
    }
}
