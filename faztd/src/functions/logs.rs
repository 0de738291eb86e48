//! Function logs: `console.*` output and errors, per site, the last
//! [`LOG_CAPACITY`] lines in memory (what `faztctl logs` reads, and follows
//! live with `-f`) and, in the daemon, in the database too, so they outlive a
//! restart. A writer thread stores new lines in batches (one transaction per
//! 100 ms at most), so logging never waits for the disk.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub use crate::store::LogLine;

use crate::store::Store;

pub const LOG_CAPACITY: usize = 1000;
/// Longest message kept; longer ones are cut.
pub const MAX_MESSAGE: usize = 8 * 1024;

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    /// What `lines` hold, roughly (see `line_bytes`).
    bytes: usize,
    next_seq: u64,
}

/// Memory one site's log may hold: a site writing long lines keeps fewer.
const SITE_LOG_BYTES: usize = 2 * 1024 * 1024;
/// Longest level name kept.
const MAX_LEVEL: usize = 16;

fn line_bytes(line: &LogLine) -> usize {
    line.message.capacity() + line.level.capacity() + std::mem::size_of::<LogLine>()
}

#[derive(Default)]
pub struct SiteLogs {
    rings: Mutex<HashMap<String, Ring>>,
    appended: Notify,
    /// To the writer thread, when lines are kept in the database.
    stored: Option<mpsc::Sender<ToWriter>>,
}

/// What the writer thread is asked to do, in order.
enum ToWriter {
    Line(String, LogLine),
    /// A removed site: delete its stored lines, after any still queued here
    /// (deleting them with the site alone would leave those behind).
    Forget(String),
    /// Write everything before this, then say so.
    Flush(mpsc::Sender<()>),
}

/// The longest a line waits before it is written.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

impl SiteLogs {
    /// Logs kept in `store` as well: starts from what it holds (sequence
    /// numbers continue), and starts the thread that writes new lines.
    pub fn stored_in(store: &Arc<Store>) -> anyhow::Result<SiteLogs> {
        use anyhow::Context as _;
        let mut rings: HashMap<String, Ring> = HashMap::new();
        let stored = store
            .function_logs()
            .context("cannot read the stored function logs")?;
        // The store keeps at most LOG_CAPACITY lines per site, oldest first.
        for (site, line) in stored {
            let ring = rings.entry(site).or_default();
            ring.next_seq = line.seq;
            ring.bytes += line_bytes(&line);
            ring.lines.push_back(line);
        }
        let (tx, rx) = mpsc::channel();
        // A weak reference: the writer must not keep the database open when
        // the daemon closes it at shutdown (after `flush`).
        let store = Arc::downgrade(store);
        std::thread::Builder::new()
            .name("fazt-logs".into())
            .spawn(move || write_batches(&store, &rx))
            .context("cannot start the function log writer")?;
        Ok(SiteLogs {
            rings: Mutex::new(rings),
            appended: Notify::new(),
            stored: Some(tx),
        })
    }

    /// Waits until every line appended so far is in the database.
    pub fn flush(&self) {
        if let Some(stored) = &self.stored {
            let (done, wait) = mpsc::channel();
            if stored.send(ToWriter::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(Duration::from_secs(10));
            }
        }
    }

    pub fn append(&self, site: &str, level: &str, message: &str) {
        // A copy of only what is kept: cutting a copy of the whole message
        // would keep its whole allocation.
        let message = if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{} [cut]", &message[..cut])
        } else {
            message.to_string()
        };
        let level: String = level.chars().take(MAX_LEVEL).collect();
        let ts_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        {
            let mut rings = self.rings.lock().expect("logs");
            let ring = rings.entry(site.to_string()).or_default();
            ring.next_seq += 1;
            let seq = ring.next_seq;
            let line = LogLine {
                seq,
                ts_ms,
                level,
                message,
            };
            if let Some(stored) = &self.stored {
                let _ = stored.send(ToWriter::Line(site.to_string(), line.clone()));
            }
            ring.bytes += line_bytes(&line);
            ring.lines.push_back(line);
            while ring.lines.len() > LOG_CAPACITY || ring.bytes > SITE_LOG_BYTES {
                match ring.lines.pop_front() {
                    Some(old) => ring.bytes -= line_bytes(&old),
                    None => break,
                }
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
        if let Some(stored) = &self.stored {
            let _ = stored.send(ToWriter::Forget(site.to_string()));
        }
    }
}

/// The writer thread: collects lines for up to [`BATCH_WINDOW`] and stores
/// them in one transaction. Ends when the [`SiteLogs`] is dropped.
fn write_batches(store: &Weak<Store>, requests: &mpsc::Receiver<ToWriter>) {
    let mut batch: Vec<(String, LogLine)> = Vec::new();
    // The store is upgraded only while there is something to write: at
    // shutdown the daemon must be able to take the last reference.
    let write = |batch: &mut Vec<(String, LogLine)>| {
        if batch.is_empty() {
            return;
        }
        if let Some(store) = store.upgrade() {
            if let Err(err) = store.append_function_logs(batch, LOG_CAPACITY as u64) {
                tracing::warn!(error = %err, lines = batch.len(), "cannot store function log lines");
            }
        }
        batch.clear();
    };
    while let Ok(first) = requests.recv() {
        let deadline = Instant::now() + BATCH_WINDOW;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                ToWriter::Line(site, line) => batch.push((site, line)),
                ToWriter::Forget(site) => {
                    write(&mut batch);
                    let forgotten = store.upgrade().map(|s| s.forget_function_logs(&site));
                    if let Some(Err(err)) = forgotten {
                        tracing::warn!(error = %err, site, "cannot delete function log lines");
                    }
                }
                ToWriter::Flush(done) => {
                    write(&mut batch);
                    let _ = done.send(());
                }
            }
            if batch.len() < LOG_CAPACITY {
                let left = deadline.saturating_duration_since(Instant::now());
                next = requests.recv_timeout(left).ok();
            }
        }
        write(&mut batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_lines_come_back_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("t.redb")).unwrap());
        let logs = SiteLogs::stored_in(&store).unwrap();
        for i in 0..3 {
            logs.append("s", "info", &format!("line {i}"));
        }
        logs.append("gone", "info", "bye");
        logs.forget("gone");
        logs.flush();
        drop(logs);

        let again = SiteLogs::stored_in(&store).unwrap();
        let lines = again.read("s", None, 10);
        let seen: Vec<_> = lines.iter().map(|l| (l.seq, l.message.as_str())).collect();
        assert_eq!(seen, [(1, "line 0"), (2, "line 1"), (3, "line 2")]);
        assert!(again.read("gone", None, 10).is_empty());
        again.append("s", "info", "after");
        assert_eq!(again.read("s", None, 1)[0].seq, 4);
    }

    #[test]
    fn long_lines_are_cut_copies_and_a_sites_log_is_bounded_in_bytes() {
        let logs = SiteLogs::default();
        let huge = "é".repeat(1 << 20);
        logs.append("s", "a-very-long-level-name-indeed", &huge);
        let line = &logs.read("s", None, 1)[0];
        assert!(line.message.ends_with(" [cut]"));
        assert!(
            line.message.capacity() < MAX_MESSAGE + 64,
            "kept the whole allocation"
        );
        assert_eq!(line.level.len(), MAX_LEVEL);
        // 1,000 lines of 8 KiB would hold 8 MiB: the byte bound keeps fewer.
        let long = "x".repeat(MAX_MESSAGE);
        for _ in 0..LOG_CAPACITY {
            logs.append("s", "info", &long);
        }
        let rings = logs.rings.lock().unwrap();
        let ring = &rings["s"];
        assert!(ring.bytes <= SITE_LOG_BYTES, "{}", ring.bytes);
        assert!(ring.lines.len() < LOG_CAPACITY / 2, "{}", ring.lines.len());
        assert_eq!(ring.bytes, ring.lines.iter().map(line_bytes).sum::<usize>());
    }

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
