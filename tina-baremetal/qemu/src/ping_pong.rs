//! Test 2: request/response between the cores through two single-slot mailboxes, one per
//! direction, with 128-byte messages (the size Tina's cross-shard messages will have).
//!
//! Core 0 sends ping `seq` for `seq` in `1..=ROUND_TRIP_COUNT` and waits for the pong before
//! the next; core 1 checks each ping (sequence and every payload word) and answers with a pong
//! derived from it; core 0 checks the pong. Any lost, duplicated, reordered or torn message
//! fails the run.

use cortex_m_semihosting::hprintln;

use crate::deadline;
use crate::mailbox::{Mailbox, Receiver, Sender};
use crate::report::fail;

/// Round trips core 0 drives.
pub const ROUND_TRIP_COUNT: u32 = 5_000;
/// How long one side waits for the other to take or produce one message.
const MESSAGE_TIMEOUT_MS: u32 = 10_000;

const PAYLOAD_WORD_COUNT: usize = 31;

/// One message: a sequence number and a payload derived from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C)]
pub struct Message {
    seq: u32,
    words: [u32; PAYLOAD_WORD_COUNT],
}

const _: () = assert!(size_of::<Message>() == 128);

static TO_CORE1: Mailbox<Message> = Mailbox::new();
static TO_CORE0: Mailbox<Message> = Mailbox::new();

fn ping(seq: u32) -> Message {
    let mut words = [0; PAYLOAD_WORD_COUNT];
    for (word_index, word) in words.iter_mut().enumerate() {
        *word = seq.wrapping_mul(0x9E37_79B9) ^ (word_index as u32).wrapping_mul(0x85EB_CA6B);
    }
    Message { seq, words }
}

fn pong(ping: &Message) -> Message {
    let mut words = ping.words;
    for word in &mut words {
        *word = !word.rotate_left(7);
    }
    Message {
        seq: ping.seq,
        words,
    }
}

/// Core 0's side: drive all round trips and check every answer.
pub fn run_core0() {
    let mut to_core1 = claim_sender(&TO_CORE1);
    let mut from_core1 = claim_receiver(&TO_CORE0);
    let start_ms = deadline::elapsed_ms();
    for seq in 1..=ROUND_TRIP_COUNT {
        let request = ping(seq);
        send(&mut to_core1, request, "core 1 to take a ping");
        let reply = receive(&mut from_core1, "a pong from core 1");
        if reply != pong(&request) {
            fail!(
                "ping-pong: round trip {} got a wrong pong (seq {})",
                seq,
                reply.seq
            );
        }
    }
    hprintln!(
        "ping-pong: {} round trips of {}-byte messages in {} ms",
        ROUND_TRIP_COUNT,
        size_of::<Message>(),
        deadline::elapsed_ms() - start_ms
    );
}

/// Core 1's side: answer every ping in order.
pub fn run_core1() {
    let mut from_core0 = claim_receiver(&TO_CORE1);
    let mut to_core0 = claim_sender(&TO_CORE0);
    for seq in 1..=ROUND_TRIP_COUNT {
        let request = receive(&mut from_core0, "a ping from core 0");
        if request != ping(seq) {
            fail!(
                "ping-pong: expected ping {} but got a wrong one (seq {})",
                seq,
                request.seq
            );
        }
        send(&mut to_core0, pong(&request), "core 0 to take a pong");
    }
}

fn claim_sender(mailbox: &'static Mailbox<Message>) -> Sender<Message> {
    mailbox
        .claim_sender()
        .unwrap_or_else(|| fail!("ping-pong: mailbox sender claimed twice"))
}

fn claim_receiver(mailbox: &'static Mailbox<Message>) -> Receiver<Message> {
    mailbox
        .claim_receiver()
        .unwrap_or_else(|| fail!("ping-pong: mailbox receiver claimed twice"))
}

fn send(sender: &mut Sender<Message>, message: Message, what: &str) {
    deadline::wait_for(what, MESSAGE_TIMEOUT_MS, || sender.try_send(message).ok());
}

fn receive(receiver: &mut Receiver<Message>, what: &str) -> Message {
    deadline::wait_for(what, MESSAGE_TIMEOUT_MS, || receiver.try_recv())
}
