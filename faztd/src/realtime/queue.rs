//! A subscriber's queue: the frames of one channel on their way to one
//! connection, bounded by `realtime_queue_messages`, and all the queues of
//! one connection together by `realtime_queue_bytes` (its [`Budget`]).
//!
//! Why not one `tokio::sync::broadcast` per channel (as mini-redis does)?
//! A broadcast ring allocates its whole capacity when the channel is made:
//! 512 slots of ~80 bytes is 40 KB for every channel, subscribed or not,
//! so a client creating channels or subscribing widely reserved memory it
//! never used. A bounded `mpsc` allocates in blocks of 32 slots as frames
//! actually queue up and frees them as they are read, so an idle
//! subscription costs one block. Frames are shared (`Bytes` underneath),
//! so fanning one out to many queues copies no payload.
//!
//! Why a byte budget too? Shared frames still stay alive as long as any
//! queue holds them: a client that subscribes to 100 channels and never
//! reads could keep 100 × 512 frames of up to 64 KiB each, gigabytes.
//! Each queued frame is charged to its connection's budget while it waits
//! ([`Queued`] gives the bytes back when it is taken or dropped, so an
//! unsubscribed queue's frames are refunded too).
//!
//! A subscriber that falls a whole queue (or budget) behind is told once
//! ([`Delivery::Lagged`], in a slot kept for it) and gets nothing more; its
//! connection then closes with 4001. The publisher never waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What a subscriber's queue carries.
#[derive(Debug)]
pub enum Delivery {
    Frame(Queued),
    /// The subscriber fell a whole queue behind; nothing more comes.
    Lagged,
}

/// The bytes of frames waiting for one connection, and how many may.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Charges `bytes` unless that would pass the limit.
    fn charge(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn refund(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes waiting now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A frame waiting in a queue, charged to its connection's budget until it
/// is taken out ([`Queued::into_message`]) or dropped with its queue.
#[derive(Debug)]
pub struct Queued {
    message: Option<Message>,
    bytes: usize,
    budget: Arc<Budget>,
}

impl Queued {
    pub fn into_message(mut self) -> Message {
        self.message.take().expect("a queued frame is taken once")
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.budget.refund(self.bytes);
    }
}

/// The hub's end of a subscriber's queue.
pub struct Outbox {
    tx: mpsc::Sender<Delivery>,
    budget: Arc<Budget>,
}

/// The connection's end.
pub type Inbox = mpsc::Receiver<Delivery>;

/// What became of a frame offered to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// Its queue or its connection's budget was full: it was told so, and
    /// must be offered nothing more.
    CutOff,
    /// Its connection is gone (it is leaving the channel anyway).
    Gone,
}

/// A queue for `messages` frames (at least one), charged to `budget`.
pub fn queue(messages: usize, budget: &Arc<Budget>) -> (Outbox, Inbox) {
    // One more slot than frames, kept for the `Lagged` notice.
    let (tx, rx) = mpsc::channel(messages.max(1) + 1);
    let budget = budget.clone();
    (Outbox { tx, budget }, rx)
}

impl Outbox {
    /// Queues a copy of `frame` without waiting. Only the hub sends, under
    /// the channel's lock, so the free capacity it sees is still free when
    /// it sends.
    pub fn offer(&self, frame: &Message) -> Offered {
        if self.tx.is_closed() {
            return Offered::Gone;
        }
        let bytes = frame.len();
        if self.tx.capacity() > 1 && self.budget.charge(bytes) {
            let queued = Queued {
                message: Some(frame.clone()),
                bytes,
                budget: self.budget.clone(),
            };
            // A refused send drops `queued`, which refunds it.
            return match self.tx.try_send(Delivery::Frame(queued)) {
                Ok(()) => Offered::Queued,
                Err(_) => Offered::Gone,
            };
        }
        let _ = self.tx.try_send(Delivery::Lagged);
        Offered::CutOff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_says_lagged_once_and_then_nothing() {
        let (outbox, mut inbox) = queue(2, &Budget::new(1 << 20));
        let frame = Message::text("hi");
        assert_eq!(outbox.offer(&frame), Offered::Queued);
        assert_eq!(outbox.offer(&frame), Offered::Queued);
        assert_eq!(outbox.offer(&frame), Offered::CutOff);
        assert!(matches!(inbox.try_recv(), Ok(Delivery::Frame(_))));
        assert!(matches!(inbox.try_recv(), Ok(Delivery::Frame(_))));
        assert!(matches!(inbox.try_recv(), Ok(Delivery::Lagged)));
        drop(inbox);
        assert_eq!(outbox.offer(&frame), Offered::Gone);
    }

    #[test]
    fn a_reader_that_keeps_up_is_never_cut_off() {
        let (outbox, mut inbox) = queue(2, &Budget::new(1 << 20));
        for _ in 0..1000 {
            assert_eq!(outbox.offer(&Message::text("x")), Offered::Queued);
            assert!(matches!(inbox.try_recv(), Ok(Delivery::Frame(_))));
        }
    }

    #[test]
    fn one_connection_s_queues_share_a_byte_budget() {
        let budget = Budget::new(10);
        let (a, mut a_in) = queue(100, &budget);
        let (b, b_in) = queue(100, &budget);
        let frame = Message::text("12345");
        assert_eq!(a.offer(&frame), Offered::Queued);
        assert_eq!(b.offer(&frame), Offered::Queued);
        assert_eq!(budget.used(), 10);
        assert_eq!(a.offer(&frame), Offered::CutOff, "past the budget");
        // Taking a frame out refunds it...
        let Ok(Delivery::Frame(queued)) = a_in.try_recv() else {
            panic!("a frame first")
        };
        assert_eq!(queued.into_message(), frame);
        assert_eq!(budget.used(), 5);
        // ...and so does dropping a queue with frames in it.
        drop(b_in);
        assert_eq!(budget.used(), 0);
    }
}
