//! The messages kept for catch-up (`subscribe` with `since`), bounded three
//! ways: messages per channel (`realtime_history`), bytes per channel
//! (`realtime_history_bytes_per_channel`) and bytes per site
//! (`realtime_history_bytes_per_site`).
//!
//! A count alone does not bound memory: 10,000 channels × 100 messages ×
//! 64 KiB is 64 GB, and one anonymous client publishing on `chat-*` could
//! grow it. Bytes do.
//!
//! One [`SiteHistory`] holds every channel of a site, so that the per-site
//! bound drops the site's *oldest* message, whichever channel it is on.
//! Ids grow with time across the whole hub, so "oldest" is "smallest id":
//! `order` maps each kept id to its channel, and its first entry is the one
//! to drop. Whatever is dropped is always the oldest of its channel too, so
//! each channel keeps a suffix of what was published on it, and `since`
//! can tell exactly whether a client missed something.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Message;

/// What keeping one message costs beyond its frame: its slot in the
/// channel's ring and its entry in the site's order. Counting it means a
/// flood of tiny messages is bounded by bytes too.
pub const ENTRY_OVERHEAD: usize = 128;

/// The bounds in force (from `RealtimeLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryBounds {
    pub messages: usize,
    pub channel_bytes: usize,
    pub site_bytes: usize,
}

/// Every kept message of one site.
#[derive(Default)]
pub struct SiteHistory {
    channels: HashMap<Arc<str>, ChannelHistory>,
    /// Each kept message's id → its channel; the first is the site's oldest.
    order: BTreeMap<u64, Arc<str>>,
    /// What every kept message counts as, together.
    bytes: usize,
}

struct ChannelHistory {
    /// Oldest first.
    messages: VecDeque<(u64, Message)>,
    bytes: usize,
    /// Every id up to this one is no longer kept (dropped, or published
    /// before this channel existed in this process).
    forgotten_up_to: u64,
}

/// What a subscriber with a `since` gets.
#[derive(Debug, Default)]
pub struct Replay {
    /// Kept messages newer than `since`, oldest first.
    pub messages: Vec<Message>,
    /// Some messages after `since` are no longer kept: the client has a gap.
    pub missed: bool,
}

/// What a message counts as against the byte bounds.
fn cost(frame: &Message) -> usize {
    frame.len() + ENTRY_OVERHEAD
}

impl SiteHistory {
    /// Starts a channel's history: nothing kept, and nothing up to
    /// `forgotten_up_to` ever will be (those ids came before it).
    pub fn open(&mut self, channel: &Arc<str>, forgotten_up_to: u64) {
        self.channels.insert(
            channel.clone(),
            ChannelHistory {
                messages: VecDeque::new(),
                bytes: 0,
                forgotten_up_to,
            },
        );
    }

    /// Forgets a channel's history (the channel is dropped); returns the
    /// bytes it counted.
    pub fn close(&mut self, channel: &str) -> usize {
        let Some(history) = self.channels.remove(channel) else {
            return 0;
        };
        for (id, _) in &history.messages {
            self.order.remove(id);
        }
        self.bytes -= history.bytes;
        history.bytes
    }

    /// Keeps `frame` (message `id`) on `channel`, then drops the oldest
    /// messages until every bound holds again. Returns true if a *byte*
    /// bound dropped something (the message count bound is the ordinary
    /// ring; the byte bounds are a refusal worth counting).
    pub fn keep(
        &mut self,
        channel: &Arc<str>,
        id: u64,
        frame: &Message,
        bounds: &HistoryBounds,
    ) -> bool {
        if bounds.messages == 0 {
            return false;
        }
        let Some(history) = self.channels.get_mut(channel) else {
            return false;
        };
        let size = cost(frame);
        history.messages.push_back((id, frame.clone()));
        history.bytes += size;
        self.bytes += size;
        self.order.insert(id, channel.clone());

        while self.len(channel) > bounds.messages {
            self.drop_oldest_of(channel);
        }
        let mut trimmed = false;
        while self.channels.get(channel).map_or(0, |h| h.bytes) > bounds.channel_bytes {
            self.drop_oldest_of(channel);
            trimmed = true;
        }
        while self.bytes > bounds.site_bytes {
            let Some((_, oldest_channel)) = self.order.first_key_value() else {
                break;
            };
            let oldest_channel = oldest_channel.clone();
            self.drop_oldest_of(&oldest_channel);
            trimmed = true;
        }
        trimmed
    }

    /// The kept messages of `channel` newer than `since`.
    pub fn replay(&self, channel: &str, since: u64) -> Replay {
        let Some(history) = self.channels.get(channel) else {
            return Replay::default();
        };
        Replay {
            messages: history
                .messages
                .iter()
                .filter(|(id, _)| *id > since)
                .map(|(_, m)| m.clone())
                .collect(),
            missed: since < history.forgotten_up_to,
        }
    }

    /// Whether `channel` keeps nothing.
    pub fn is_empty(&self, channel: &str) -> bool {
        self.len(channel) == 0
    }

    /// What the site's kept messages count as, together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// After a flood has gone, the maps' emptied capacity is given back.
    pub fn shrink(&mut self) {
        if self.channels.capacity() > 64 && self.channels.capacity() > 4 * self.channels.len() {
            self.channels.shrink_to_fit();
        }
    }

    fn len(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |h| h.messages.len())
    }

    fn drop_oldest_of(&mut self, channel: &str) {
        let Some(history) = self.channels.get_mut(channel) else {
            return;
        };
        let Some((id, frame)) = history.messages.pop_front() else {
            return;
        };
        let size = cost(&frame);
        history.bytes -= size;
        history.forgotten_up_to = id;
        // A ring that held a burst keeps its capacity otherwise.
        if history.messages.capacity() > 16
            && history.messages.len() < history.messages.capacity() / 4
        {
            history.messages.shrink_to_fit();
        }
        self.bytes -= size;
        self.order.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(size: usize) -> Message {
        Message::text("x".repeat(size))
    }

    fn ids(replay: &Replay) -> Vec<usize> {
        replay.messages.iter().map(|m| m.len()).collect()
    }

    const ROOMY: HistoryBounds = HistoryBounds {
        messages: 1000,
        channel_bytes: 1 << 30,
        site_bytes: 1 << 30,
    };

    #[test]
    fn the_channel_byte_bound_drops_the_oldest_and_reports_the_gap() {
        let mut h = SiteHistory::default();
        let c: Arc<str> = "c".into();
        h.open(&c, 0);
        let bounds = HistoryBounds {
            channel_bytes: 3 * (1000 + ENTRY_OVERHEAD),
            ..ROOMY
        };
        for id in 1..=3 {
            assert!(!h.keep(&c, id, &frame(1000), &bounds), "fits");
        }
        assert!(h.keep(&c, 4, &frame(1000), &bounds), "a byte bound bit");
        let replay = h.replay("c", 0);
        assert_eq!(replay.messages.len(), 3);
        assert!(replay.missed, "message 1 is gone");
        assert!(!h.replay("c", 1).missed);
        assert_eq!(h.bytes(), 3 * (1000 + ENTRY_OVERHEAD));

        // A message larger than the bound takes everything older with it:
        // what is kept is always a suffix, so `missed` stays exact.
        assert!(h.keep(&c, 5, &frame(10_000), &bounds));
        let replay = h.replay("c", 4);
        assert!(replay.messages.is_empty() && replay.missed);
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn the_site_byte_bound_drops_the_sites_oldest_whichever_channel() {
        let mut h = SiteHistory::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        h.open(&a, 0);
        h.open(&b, 0);
        let bounds = HistoryBounds {
            site_bytes: 3 * (100 + ENTRY_OVERHEAD),
            ..ROOMY
        };
        h.keep(&a, 1, &frame(100), &bounds);
        h.keep(&b, 2, &frame(100), &bounds);
        h.keep(&a, 3, &frame(100), &bounds);
        assert!(h.keep(&b, 4, &frame(100), &bounds));
        // Message 1 (on a) was the site's oldest.
        assert!(h.replay("a", 0).missed);
        assert_eq!(h.replay("a", 0).messages.len(), 1);
        assert!(!h.replay("b", 0).missed);
        assert_eq!(h.replay("b", 0).messages.len(), 2);
        assert!(h.keep(&b, 5, &frame(100), &bounds));
        // Then message 2 (on b).
        assert!(h.replay("b", 0).missed && !h.replay("b", 2).missed);
        assert_eq!(h.bytes(), 3 * (100 + ENTRY_OVERHEAD));
    }

    #[test]
    fn the_count_bound_is_the_ordinary_ring_and_no_trim() {
        let mut h = SiteHistory::default();
        let c: Arc<str> = "c".into();
        h.open(&c, 10);
        let bounds = HistoryBounds {
            messages: 2,
            ..ROOMY
        };
        for id in 11..=14 {
            assert!(!h.keep(&c, id, &frame(id as usize), &bounds));
        }
        assert_eq!(ids(&h.replay("c", 0)), vec![13, 14]);
        assert!(h.replay("c", 11).missed && !h.replay("c", 12).missed);
        assert!(h.replay("c", 9).missed, "before the channel existed");
        // No history at all keeps nothing.
        let none = HistoryBounds {
            messages: 0,
            ..ROOMY
        };
        assert!(!h.keep(&c, 15, &frame(1), &none));
        assert_eq!(h.replay("c", 14).messages.len(), 0);
    }

    #[test]
    fn closing_a_channel_gives_back_its_bytes_and_order() {
        let mut h = SiteHistory::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        h.open(&a, 0);
        h.open(&b, 0);
        h.keep(&a, 1, &frame(50), &ROOMY);
        h.keep(&b, 2, &frame(70), &ROOMY);
        assert_eq!(h.close("a"), 50 + ENTRY_OVERHEAD);
        assert_eq!(h.bytes(), 70 + ENTRY_OVERHEAD);
        assert_eq!(h.order.len(), 1);
        assert!(h.is_empty("a") && !h.is_empty("b"));
        // The site bound now only sees b.
        let tight = HistoryBounds {
            site_bytes: 70 + ENTRY_OVERHEAD,
            ..ROOMY
        };
        assert!(!h.keep(&b, 3, &frame(0), &ROOMY));
        assert!(h.keep(&b, 4, &frame(0), &tight));
        assert_eq!(ids(&h.replay("b", 0)), vec![0]);
    }
}
