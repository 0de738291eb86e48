//! A subscriber's queue: the frames of one channel on their way to one
//! connection, bounded by `realtime_queue_messages`.
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
//! A subscriber that falls a whole queue behind is told once
//! ([`Delivery::Lagged`], in a slot kept for it) and gets nothing more; its
//! connection then closes with 4001. The publisher never waits.

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What a subscriber's queue carries.
#[derive(Debug)]
pub enum Delivery {
    Frame(Message),
    /// The subscriber fell a whole queue behind; nothing more comes.
    Lagged,
}

/// The hub's end of a subscriber's queue.
pub struct Outbox(mpsc::Sender<Delivery>);

/// The connection's end.
pub type Inbox = mpsc::Receiver<Delivery>;

/// What became of a frame offered to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// Its queue was full: it was told so, and must be offered nothing more.
    CutOff,
    /// Its connection is gone (it is leaving the channel anyway).
    Gone,
}

/// A queue for `messages` frames (at least one).
pub fn queue(messages: usize) -> (Outbox, Inbox) {
    // One more slot than frames, kept for the `Lagged` notice.
    let (tx, rx) = mpsc::channel(messages.max(1) + 1);
    (Outbox(tx), rx)
}

impl Outbox {
    /// Queues a copy of `frame` without waiting. Only the hub sends, under
    /// the channel's lock, so the free capacity it sees is still free when
    /// it sends.
    pub fn offer(&self, frame: &Message) -> Offered {
        if self.0.is_closed() {
            return Offered::Gone;
        }
        if self.0.capacity() > 1 {
            return match self.0.try_send(Delivery::Frame(frame.clone())) {
                Ok(()) => Offered::Queued,
                Err(_) => Offered::Gone,
            };
        }
        let _ = self.0.try_send(Delivery::Lagged);
        Offered::CutOff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_says_lagged_once_and_then_nothing() {
        let (outbox, mut inbox) = queue(2);
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
        let (outbox, mut inbox) = queue(2);
        for _ in 0..1000 {
            assert_eq!(outbox.offer(&Message::text("x")), Offered::Queued);
            assert!(matches!(inbox.try_recv(), Ok(Delivery::Frame(_))));
        }
    }
}
