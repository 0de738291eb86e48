//! Function logs: `console.*` output and errors, per site, kept in memory
//! (the last [`LOG_CAPACITY`] lines) and followed live by `faztctl logs -f`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

pub const LOG_CAPACITY: usize = 1000;
/// Longest message kept; longer ones are cut.
pub const MAX_MESSAGE: usize = 8 * 1024;

#[derive(Debug, Clone)]
pub struct LogLine {
    pub seq: u64,
    pub ts_ms: u64,
    pub level: String,
    pub message: String,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    next_seq: u64,
}

#[derive(Default)]
pub struct SiteLogs {
    rings: Mutex<HashMap<String, Ring>>,
    appended: Notify,
}

impl SiteLogs {
    pub fn append(&self, site: &str, level: &str, message: &str) {
        let mut message = message.to_string();
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let ts_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        {
            let mut rings = self.rings.lock().expect("logs");
            let ring = rings.entry(site.to_string()).or_default();
            ring.next_seq += 1;
            let seq = ring.next_seq;
            ring.lines.push_back(LogLine {
                seq,
                ts_ms,
                level: level.to_string(),
                message,
            });
            if ring.lines.len() > LOG_CAPACITY {
                ring.lines.pop_front();
            }
        }
        self.appended.notify_waiters();
    }

    /// Lines after `after` (or the last `limit` when `None`).
    pub fn read(&self, site: &str, after: Option<u64>, limit: usize) -> Vec<LogLine> {
        let rings = self.rings.lock().expect("logs");
        let Some(ring) = rings.get(site) else {
            return Vec::new();
        };
        match after {
            Some(after) => ring
                .lines
                .iter()
                .filter(|l| l.seq > after)
                .take(limit)
                .cloned()
                .collect(),
            None => {
                let skip = ring.lines.len().saturating_sub(limit);
                ring.lines.iter().skip(skip).cloned().collect()
            }
        }
    }

    /// Like [`SiteLogs::read`], but waits up to `wait` for a new line when
    /// there is none yet (long polling for `logs -f`).
    pub async fn read_or_wait(
        &self,
        site: &str,
        after: Option<u64>,
        limit: usize,
        wait: Duration,
    ) -> Vec<LogLine> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.appended.notified();
            let lines = self.read(site, after, limit);
            if !lines.is_empty() || after.is_none() {
                return lines;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    pub fn forget(&self, site: &str) {
        self.rings.lock().expect("logs").remove(site);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_and_reads_after_a_sequence() {
        let logs = SiteLogs::default();
        for i in 0..(LOG_CAPACITY + 5) {
            logs.append("s", "info", &format!("line {i}"));
        }
        let last = logs.read("s", None, 3);
        assert_eq!(last.len(), 3);
        assert_eq!(last[2].message, format!("line {}", LOG_CAPACITY + 4));
        let after = logs.read("s", Some(last[0].seq), 10);
        assert_eq!(after.len(), 2);
        assert!(logs.read("other", None, 10).is_empty());
        logs.append("s", "info", &"x".repeat(MAX_MESSAGE * 2));
        assert!(logs.read("s", None, 1)[0].message.ends_with("[cut]"));
    }
}
