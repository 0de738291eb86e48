//! Log output, filtered by `RUST_LOG` (default `info`):
//! - under systemd (`JOURNAL_STREAM` set: stderr is connected to the journal)
//!   records go to journald through tracing-journald, with their fields as
//!   journal fields (`SITE=`, `REQUEST_ID=`, ...);
//! - otherwise (a terminal, or no journald socket) human-readable lines on stderr.
//!
//! Every record is also kept in a small in-memory ring, which
//! `faztctl logs --daemon` reads over the control socket: it works with or
//! without journald and needs no journal permissions.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How many lines the ring keeps.
const RING_LINES: usize = 2000;

static RING: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

/// Where the log went, for the daemon's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Journald,
    Stderr,
}

/// `RUST_LOG`, or `info`. tarpc's own per-request span (`RPC{rpc.trace_id=00
/// otel.kind=server otel.name=...}`) is left out unless `RUST_LOG` names
/// tarpc: each control request logs in faztd's short `request{id, method}`
/// span instead.
fn filter() -> EnvFilter {
    let wanted = std::env::var("RUST_LOG").unwrap_or_default();
    let directives = match wanted.trim() {
        "" => "info,tarpc=warn".to_string(),
        w if w.contains("tarpc") => w.to_string(),
        w => format!("{w},tarpc=warn"),
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info,tarpc=warn"))
}

/// Colour only for a person at a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>): a log file or pipe gets plain text.
fn stderr_wants_colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn init() -> LogTarget {
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
        vec![tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(false)
            .with_writer(RingWriter)
            .with_filter(filter())
            .boxed()];
    let journald = if std::env::var_os("JOURNAL_STREAM").is_some() {
        // Fails where no journald socket exists: then stderr it is.
        tracing_journald::layer()
            .ok()
            // No `F_` prefix: `journalctl --user -u faztd SITE=blog` just works.
            .map(|layer| {
                layer
                    .with_syslog_identifier("faztd".to_string())
                    .with_field_prefix(None)
            })
    } else {
        None
    };
    let target = match journald {
        Some(layer) => {
            layers.push(layer.with_filter(filter()).boxed());
            LogTarget::Journald
        }
        None => {
            layers.push(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(stderr_wants_colour())
                    .with_target(false)
                    .with_filter(filter())
                    .boxed(),
            );
            LogTarget::Stderr
        }
    };
    let _ = tracing_subscriber::registry().with(layers).try_init();
    target
}

/// The last `max` lines, oldest first.
pub fn recent(max: usize) -> Vec<String> {
    let ring = RING.lock().unwrap_or_else(|p| p.into_inner());
    ring.iter()
        .skip(ring.len().saturating_sub(max))
        .cloned()
        .collect()
}

/// Collects one formatted record and pushes its lines into the ring when dropped.
#[derive(Default)]
struct RingLine(Vec<u8>);

impl Write for RingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RingLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let mut ring = RING.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines().filter(|l| !l.is_empty()) {
            if ring.len() == RING_LINES {
                ring.pop_front();
            }
            ring.push_back(line.to_string());
        }
    }
}

struct RingWriter;

impl<'a> MakeWriter<'a> for RingWriter {
    type Writer = RingLine;
    fn make_writer(&'a self) -> RingLine {
        RingLine::default()
    }
}
