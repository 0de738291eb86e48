//! What faztd refused to do for a client, and why: one counter per kind
//! for `faztctl status`, and a log line per kind at most every
//! [`LOG_EVERY`], saying how many more were refused in between.
//!
//! Every limit that protects the daemon from a client (a slow head, too
//! many connections, a full function queue, a realtime flood) reports here
//! when it bites. A flood of refusals must not become a flood of log lines
//! (that would be the next thing an attacker fills), hence the rate limit.
//!
//! A leaf: it imports nothing of the crate, so every layer may use it.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one log line per kind this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

macro_rules! refusals {
    ($( $kind:ident = $key:literal, $what:literal; )*) => {
        /// A kind of refusal. `key` names it in status; `what` says it in
        /// plain words in the log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Refusal { $( $kind, )* }

        impl Refusal {
            /// Every kind, in the order status lists them.
            pub const ALL: &'static [Refusal] = &[ $( Refusal::$kind, )* ];

            /// The name in `faztctl status` and its JSON.
            pub fn key(self) -> &'static str {
                match self { $( Refusal::$kind => $key, )* }
            }

            /// What happened, for the operator's log.
            pub fn what(self) -> &'static str {
                match self { $( Refusal::$kind => $what, )* }
            }
        }
    };
}

refusals! {
    HeaderTimeout = "http_header_timeout",
        "closed a connection that did not send a request head in time";
    HeadTooLarge = "http_head_too_large",
        "refused a request head over 64 KiB";
    BodyTimeout = "http_body_timeout",
        "closed a connection that stalled while sending a request body";
    MalformedRequest = "http_malformed",
        "refused a request that breaks HTTP's rules";
    ConnectionsTotal = "http_connections_total",
        "refused a connection: the instance has as many open as it allows";
    ConnectionsPerAddress = "http_connections_per_address",
        "refused a connection: its address has as many open as it allows";
    WsHandshakeTimeout = "ws_handshake_timeout",
        "closed a WebSocket upgrade that did not complete in time";
    RealtimeChannelsFull = "realtime_channels_full",
        "refused a new realtime channel: the site has as many as it allows";
    RealtimeConnectionsFull = "realtime_connections_full",
        "refused a WebSocket: the site has as many as it allows";
    RealtimeHistoryTrimmed = "realtime_history_trimmed",
        "dropped old realtime history to stay within its byte bounds";
    RealtimeSlowClient = "realtime_slow_client",
        "disconnected a WebSocket client that fell too far behind";
    FunctionQueueFull = "function_queue_full",
        "refused a function call: every JavaScript worker is busy and the queue is full";
    FunctionSiteBusy = "function_site_busy",
        "refused a function call: its site already has its fair share of the workers";
}

/// The counters and the log's rate limit.
pub struct Refusals {
    counts: Vec<AtomicU64>,
    /// Per kind: when it was last logged, and how many since then.
    logged: Vec<Mutex<(Option<Instant>, u64)>>,
}

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals::new()
    }
}

impl Refusals {
    pub fn new() -> Refusals {
        Refusals {
            counts: Refusal::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            logged: Refusal::ALL.iter().map(|_| Mutex::new((None, 0))).collect(),
        }
    }

    /// Counts one refusal of `kind`, and logs it (with `detail`: the
    /// client's address, the site) unless one of that kind was logged less
    /// than [`LOG_EVERY`] ago. `detail` is only formatted when logged.
    pub fn record(&self, kind: Refusal, detail: impl Display) {
        let i = kind as usize;
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let suppressed = {
            let mut logged = self.logged[i].lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match logged.0 {
                Some(at) if now.duration_since(at) < LOG_EVERY => {
                    logged.1 += 1;
                    return;
                }
                _ => {
                    let suppressed = logged.1;
                    *logged = (Some(now), 0);
                    suppressed
                }
            }
        };
        if suppressed > 0 {
            tracing::warn!(
                refusal = kind.key(),
                "{} ({detail}); {suppressed} more since the last report",
                kind.what()
            );
        } else {
            tracing::warn!(refusal = kind.key(), "{} ({detail})", kind.what());
        }
    }

    /// How many of `kind` since the start.
    pub fn count(&self, kind: Refusal) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }

    /// Every kind with its count (zeros included), for status.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Refusal::ALL
            .iter()
            .map(|&kind| (kind.key(), self.count(kind)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_refusal_and_lists_every_kind() {
        let r = Refusals::new();
        for _ in 0..3 {
            r.record(Refusal::HeaderTimeout, "127.0.0.1:1");
        }
        r.record(Refusal::FunctionSiteBusy, "site demo");
        assert_eq!(r.count(Refusal::HeaderTimeout), 3);
        assert_eq!(r.count(Refusal::FunctionSiteBusy), 1);
        assert_eq!(r.count(Refusal::BodyTimeout), 0);
        let snapshot = r.snapshot();
        assert_eq!(snapshot.len(), Refusal::ALL.len());
        assert!(snapshot.contains(&("http_header_timeout", 3)));
    }

    #[test]
    fn logs_at_most_once_per_interval_and_counts_the_rest() {
        let r = Refusals::new();
        r.record(Refusal::HeadTooLarge, "a");
        r.record(Refusal::HeadTooLarge, "b");
        r.record(Refusal::HeadTooLarge, "c");
        let logged = r.logged[Refusal::HeadTooLarge as usize].lock().unwrap();
        assert!(logged.0.is_some());
        assert_eq!(logged.1, 2, "two were held back from the log");
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<_> = Refusal::ALL.iter().map(|k| k.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Refusal::ALL.len());
    }
}
