//! ws-load: the WebSocket load client of `scripts/bench-ws.sh`. The same
//! client measures faztd and the Node.js comparison server, so their numbers
//! differ only by the server.
//!
//! Modes:
//!   ws-load broadcast --url ws://127.0.0.1:PORT/_ws --host bench.localhost
//!           [--subscribers 100] [--messages 20000] [--window 64] [--size 64]
//!           [--rate 0]
//!     N subscribers on channel `bench`, one publisher. With --rate 0 the
//!     publisher goes as fast as the slowest subscriber allows, keeping at
//!     most --window messages in flight (so no server has to drop or buffer
//!     without bound); with --rate R it publishes R messages a second.
//!     Prints delivered messages/s and delivery latency percentiles.
//!   ws-load idle --url ... --host ... [--connections 10000] --pid PID
//!     Opens idle connections (each subscribed to one channel) and prints
//!     the server process's resident memory once they are all open.
//!
//! Output: one JSON line on stdout (and a summary on stderr).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CHANNEL: &str = "bench";

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> (String, Args) {
        let mut it = std::env::args().skip(1);
        let mode = it.next().unwrap_or_else(|| usage("a mode is required"));
        let mut map = HashMap::new();
        while let Some(key) = it.next() {
            let Some(key) = key.strip_prefix("--") else {
                usage(&format!("unexpected argument {key:?}"));
            };
            let value = it
                .next()
                .unwrap_or_else(|| usage(&format!("--{key} needs a value")));
            map.insert(key.to_string(), value);
        }
        (mode, Args(map))
    }

    fn str(&self, key: &str, default: Option<&str>) -> String {
        match (self.0.get(key), default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => usage(&format!("--{key} is required")),
        }
    }

    fn num(&self, key: &str, default: u64) -> u64 {
        self.0
            .get(key)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| usage(&format!("--{key} must be a number")))
            })
            .unwrap_or(default)
    }
}

fn usage(why: &str) -> ! {
    eprintln!("ws-load: {why}\nusage: ws-load broadcast|idle --url URL --host HOST [options] (see the source's header)");
    std::process::exit(2)
}

async fn connect(url: &str, host: &str) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("host", host.parse().map_err(|_| "bad host")?);
    // Small read buffers: 10,000 client sockets should not need 1.3 GB.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Subscribes and waits for the server's `subscribed`.
async fn subscribe(socket: &mut Socket, channel: &str) -> Result<(), String> {
    let frame = json!({ "type": "subscribe", "channel": channel }).to_string();
    socket
        .send(Message::text(frame))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"subscribed\"") => return Ok(()),
            Ok(Some(Ok(Message::Text(t)))) => return Err(format!("unexpected frame {t}")),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => return Err(format!("connection ended: {other:?}")),
            Err(_) => return Err("no subscribed frame within 10 s".into()),
        }
    }
}

/// The number after `key` in a frame (`"seq":` and `"t":` of our payload),
/// found without parsing the whole JSON: the client should cost little.
fn field(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..]
        .bytes()
        .take_while(|b| b.is_ascii_digit())
        .count();
    text[at..at + digits].parse().ok()
}

#[tokio::main]
async fn main() {
    let (mode, args) = Args::parse();
    let url = args.str("url", None);
    let host = args.str("host", Some("bench.localhost"));
    match mode.as_str() {
        "broadcast" => broadcast(&args, &url, &host).await,
        "idle" => idle(&args, &url, &host).await,
        other => usage(&format!("unknown mode {other:?}")),
    }
}

struct SubscriberResult {
    received: u64,
    latencies_us: Vec<u32>,
    finished: Option<Instant>,
    cut_off: bool,
}

async fn broadcast(args: &Args, url: &str, host: &str) {
    let n = args.num("subscribers", 100) as usize;
    let m = args.num("messages", 20_000);
    let window = args.num("window", 64).max(1);
    let size = args.num("size", 64) as usize;
    let rate = args.num("rate", 0);
    let base = Instant::now();
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let advanced = Arc::new(Notify::new());

    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = connect(url, host).await.unwrap_or_else(|e| {
            eprintln!("ws-load: cannot connect a subscriber: {e}");
            std::process::exit(1)
        });
        subscribe(&mut s, CHANNEL).await.unwrap_or_else(|e| {
            eprintln!("ws-load: cannot subscribe: {e}");
            std::process::exit(1)
        });
        sockets.push(s);
    }
    let mut tasks = Vec::with_capacity(n);
    for (i, mut socket) in sockets.into_iter().enumerate() {
        let progress = progress.clone();
        let advanced = advanced.clone();
        tasks.push(tokio::spawn(async move {
            let mut result = SubscriberResult {
                received: 0,
                latencies_us: Vec::with_capacity(m as usize),
                finished: None,
                cut_off: false,
            };
            while let Some(message) = socket.next().await {
                let text = match message {
                    Ok(Message::Text(t)) => t,
                    Ok(Message::Close(_)) | Err(_) => {
                        result.cut_off = true;
                        break;
                    }
                    Ok(_) => continue,
                };
                let (Some(seq), Some(sent)) = (field(&text, "\"seq\":"), field(&text, "\"t\":"))
                else {
                    continue;
                };
                let now = base.elapsed().as_micros() as u64;
                result
                    .latencies_us
                    .push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
                result.received += 1;
                progress[i].store(seq + 1, Ordering::Release);
                if seq % 8 == 0 || seq + 1 == m {
                    advanced.notify_one();
                }
                if seq + 1 == m {
                    result.finished = Some(Instant::now());
                    break;
                }
            }
            if result.finished.is_none() {
                result.cut_off = true;
            }
            progress[i].store(u64::MAX, Ordering::Release);
            advanced.notify_one();
            result
        }));
    }

    let mut publisher = connect(url, host).await.expect("publisher connects");
    let pad = "x".repeat(size.saturating_sub(30));
    let started = Instant::now();
    let mut ticker = (rate > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    for seq in 0..m {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        } else {
            loop {
                let notified = advanced.notified();
                let slowest = progress
                    .iter()
                    .map(|p| p.load(Ordering::Acquire))
                    .min()
                    .unwrap_or(u64::MAX);
                if seq < slowest.saturating_add(window) {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
            }
        }
        let t = base.elapsed().as_micros() as u64;
        let frame = format!(
            r#"{{"type":"publish","channel":"{CHANNEL}","data":{{"seq":{seq},"t":{t},"pad":"{pad}"}}}}"#
        );
        if publisher.send(Message::text(frame)).await.is_err() {
            eprintln!("ws-load: the publisher's connection failed at message {seq}");
            break;
        }
    }
    let mut results = Vec::with_capacity(n);
    let deadline = Duration::from_secs(60);
    for task in tasks {
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(r)) => results.push(r),
            _ => results.push(SubscriberResult {
                received: 0,
                latencies_us: Vec::new(),
                finished: None,
                cut_off: true,
            }),
        }
    }
    let ended = results
        .iter()
        .filter_map(|r| r.finished)
        .max()
        .unwrap_or_else(Instant::now);
    let secs = ended.duration_since(started).as_secs_f64().max(1e-9);
    let delivered: u64 = results.iter().map(|r| r.received).sum();
    let cut_off = results.iter().filter(|r| r.cut_off).count();
    let mut lat: Vec<u32> = results.into_iter().flat_map(|r| r.latencies_us).collect();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    let out = json!({
        "mode": "broadcast",
        "subscribers": n,
        "messages": m,
        "window": window,
        "rate": rate,
        "size": size,
        "seconds": secs,
        "delivered": delivered,
        "expected": n as u64 * m,
        "delivered_per_sec": delivered as f64 / secs,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "cut_off": cut_off,
    });
    eprintln!(
        "ws-load: {delivered} of {} delivered in {secs:.2} s = {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms, {cut_off} cut off",
        n as u64 * m,
        delivered as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
    println!("{out}");
}

async fn idle(args: &Args, url: &str, host: &str) {
    let count = args.num("connections", 10_000) as usize;
    let pid = args.num("pid", 0);
    let rss = |key: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let before = rss("VmRSS:");
    let started = Instant::now();
    let sockets: Vec<Result<Socket, String>> = futures_util::stream::iter(0..count)
        .map(|i| async move {
            let mut s = connect(url, host).await?;
            subscribe(&mut s, &format!("idle-{}", i % 100)).await?;
            Ok(s)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let open = sockets.iter().filter(|s| s.is_ok()).count();
    if let Some(Err(e)) = sockets.iter().find(|s| s.is_err()) {
        eprintln!("ws-load: {} connections failed, e.g.: {e}", count - open);
    }
    let opened_in = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss("VmRSS:");
    let out = json!({
        "mode": "idle",
        "connections": open,
        "wanted": count,
        "open_seconds": opened_in,
        "rss_before_kib": before,
        "rss_kib": after,
        "per_connection_bytes": if open > 0 { (after.saturating_sub(before)) * 1024 / open as u64 } else { 0 },
    });
    eprintln!(
        "ws-load: {open} idle connections; server RSS {:.1} MiB (was {:.1} MiB)",
        after as f64 / 1024.0,
        before as f64 / 1024.0
    );
    println!("{out}");
    drop(sockets);
}
