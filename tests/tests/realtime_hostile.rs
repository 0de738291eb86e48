//! Hostile realtime clients against a real faztd (issue 13: "memory that
//! anonymous users can grow"). One WebSocket client publishing on allowed
//! `chat-*` channels once grew the daemon by 1.2 GB in 90 s and kept it
//! after it left. Each test here asserts the bound that stops one way of
//! doing that, that a normal client is still served, and that the refusal
//! is counted in `faztctl status`.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use fazt_e2e::daemon::Faztd;
use fazt_e2e::wait::wait_until_async;
use fazt_e2e::ws::{self, Received, WsClient};
use fazt_e2e::{http, PATIENCE};
use serde_json::{json, Value};

/// A site whose browsers may publish on `chat-*`.
fn chat_site(d: &Faztd, name: &str) -> tempfile::TempDir {
    let config = json!({ "realtime": { "clientPublish": ["chat-*"] } }).to_string();
    d.deploy_files(
        name,
        &[("index.html", "<h1>chat</h1>"), ("fazt.json", &config)],
    )
}

async fn client(d: &Faztd, site: &str) -> WsClient {
    ws::connect(d.addr, &format!("{site}.localhost"))
        .await
        .expect("websocket connects")
}

/// Waits until the daemon has handled every frame `c` sent before (one
/// task reads a connection's frames in order), and returns the error
/// frames it answered meanwhile.
async fn settled(c: &mut WsClient) -> Vec<Value> {
    c.send(json!({ "type": "ping", "data": "settled?" })).await;
    let mut errors = Vec::new();
    loop {
        let frame = c.recv().await;
        match frame["type"].as_str() {
            Some("pong") if frame["data"] == "settled?" => return errors,
            Some("error") => errors.push(frame),
            _ => {}
        }
    }
}

/// A normal subscriber on `chat-lobby` of site `chat` and a client that
/// speaks there, warmed up: the first frames allocate what any daemon
/// keeps, so memory measured afterwards is the attack's.
async fn lobby_and_speaker(d: &Faztd) -> (WsClient, WsClient) {
    let mut lobby = client(d, "chat").await;
    lobby.subscribe("chat-lobby").await;
    let mut speaker = client(d, "chat").await;
    for seq in 0..20 {
        speaker.publish("chat-lobby", json!({ "seq": seq })).await;
        lobby.recv_type("message").await;
    }
    (lobby, speaker)
}

fn status(d: &Faztd) -> Value {
    d.ctl(&["status", "--json"]).ok().json()
}

fn channels(d: &Faztd) -> u64 {
    status(d)["daemon"]["realtime_channels"]
        .as_u64()
        .expect("realtime_channels in status")
}

/// Subscribes with `since` and returns the `subscribed` frame and the
/// replayed messages' `seq`s.
async fn catch_up(c: &mut WsClient, channel: &str, since: u64) -> (Value, Vec<u64>) {
    c.send(json!({ "type": "subscribe", "channel": channel, "since": since }))
        .await;
    let head = c.recv().await;
    assert_eq!(head["type"], "subscribed", "{head}");
    let mut seqs = Vec::new();
    for _ in 0..head["replayed"].as_u64().unwrap() {
        let m = c.recv_type("message").await;
        seqs.push(m["data"]["seq"].as_u64().expect("seq"));
    }
    (head, seqs)
}

/// (a) The flood from the issue: 60 KB messages on 400 `chat-*` channels,
/// 240 MB in all (ten per channel: the message count bound alone kept it all). History is bounded by bytes per site (16 MiB by
/// default), so the daemon's memory stays bounded while it lasts; a
/// subscriber elsewhere on the site keeps being served; once the client
/// leaves, its channels expire and the memory is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_messages_on_many_channels_is_bounded_and_given_back() {
    let d = Faztd::start_with(&[("realtime_channel_idle_secs", "2")]);
    let _site = chat_site(&d, "chat");
    let (mut lobby, mut speaker) = lobby_and_speaker(&d).await;
    let before = d.rss_kib();

    let mut flood = client(&d, "chat").await;
    let pad = "x".repeat(60_000);
    const MESSAGES: u64 = 4000;
    const CHANNELS: u64 = 400;
    let mut during = before;
    for seq in 0..MESSAGES {
        let channel = format!("chat-{}", seq % CHANNELS);
        flood
            .publish(&channel, json!({ "seq": seq, "pad": pad }))
            .await;
        if seq % 250 == 249 {
            // The flood is taken in, and the lobby is still served.
            assert!(settled(&mut flood).await.is_empty());
            speaker.publish("chat-lobby", json!({ "seq": seq })).await;
            let m = lobby.recv_type("message").await;
            assert_eq!(m["data"]["seq"], seq);
            during = during.max(d.rss_kib());
        }
    }
    let peak = d.peak_rss_kib();
    eprintln!(
        "RSS: {before} KiB before, {during} KiB at most while sampled, {peak} KiB peak (VmHWM)"
    );
    // 240 MB were published; kept: at most 16 MiB of history (plus what
    // frames in flight and the allocator's slack hold).
    let grown_mib = during.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "the flood grew the daemon by {grown_mib} MiB ({before} KiB before, {during} KiB during)"
    );
    assert!(d.refused("realtime_history_trimmed") > 0);

    // The client leaves; its channels expire (2 s idle), the lobby stays.
    drop(flood);
    let deadline = std::time::Instant::now() + PATIENCE;
    while channels(&d) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the channels never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut after = d.rss_kib();
    while after > before + 16 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "RSS stayed at {after} KiB after the flood left ({before} KiB before, {during} KiB during)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = d.rss_kib();
    }
    eprintln!("RSS: {after} KiB once the flood's channels expired");
    speaker
        .publish("chat-lobby", json!({ "seq": "after" }))
        .await;
    assert_eq!(lobby.recv_type("message").await["data"]["seq"], "after");
}

/// (b) One message on each of many channels fills the site's channel cap;
/// a new channel still works, because the least recently used channel
/// nobody subscribes to gives its place away. Only when every channel has
/// subscribers is a new one refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_one_message_channels_does_not_lock_the_site_out() {
    let d = Faztd::start_with(&[("realtime_max_channels_per_site", "50")]);
    let _site = chat_site(&d, "chat");
    let mut flood = client(&d, "chat").await;
    for i in 0..500 {
        flood
            .publish(&format!("chat-flood-{i}"), json!({ "seq": i }))
            .await;
    }
    let errors = settled(&mut flood).await;
    assert!(errors.is_empty(), "the flood was refused: {errors:?}");
    assert_eq!(channels(&d), 50, "the cap holds");

    // A newcomer's channel works: subscribed, and hears what is published.
    let mut newcomer = client(&d, "chat").await;
    newcomer.subscribe("chat-new").await;
    flood.publish("chat-new", json!({ "seq": 1 })).await;
    assert_eq!(newcomer.recv_type("message").await["data"]["seq"], 1);
    // The newest flood channel kept its message; the oldest gave way.
    let (head, _) = catch_up(&mut newcomer, "chat-flood-499", 0).await;
    assert_eq!(head["replayed"], 1, "{head}");
    let (head, _) = catch_up(&mut newcomer, "chat-flood-0", 0).await;
    assert_eq!(head["replayed"], 0, "{head}");
    assert_eq!(d.refused("realtime_channels_full"), 0);

    // Every channel watched: now a new channel is refused, in words. Three
    // are (chat-new, chat-flood-499, chat-flood-0); 47 more fill the site,
    // each displacing an unwatched flood channel.
    let mut watcher = client(&d, "chat").await;
    for i in 0..47 {
        watcher
            .send(json!({ "type": "subscribe", "channel": format!("chat-watched-{i}") }))
            .await;
    }
    let refusals = settled(&mut watcher).await;
    assert!(refusals.is_empty(), "{refusals:?}");
    flood.publish("chat-one-too-many", json!(0)).await;
    let errors = settled(&mut flood).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "too_many_channels", "{}", errors[0]);
    assert!(d.refused("realtime_channels_full") >= 1);
    // The watcher leaving frees places again.
    drop(watcher);
    wait_until_async(PATIENCE, "the watcher to be gone", || async {
        status(&d)["daemon"]["realtime_connections"] == 2
    })
    .await;
    flood.publish("chat-one-more", json!(0)).await;
    assert!(settled(&mut flood).await.is_empty());
}

/// (c) A channel's history is bounded in bytes: of 20 messages of 20 KB
/// under a 100,000-byte bound, only the newest that fit are replayed, and
/// the subscriber is told it missed the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_beyond_its_byte_bound_keeps_the_newest_and_reports_the_gap() {
    let d = Faztd::start_with(&[("realtime_history_bytes_per_channel", "100000")]);
    let _site = chat_site(&d, "chat");
    let mut publisher = client(&d, "chat").await;
    let pad = "y".repeat(20_000);
    for seq in 0..20u64 {
        publisher
            .publish("chat-bytes", json!({ "seq": seq, "pad": pad }))
            .await;
    }
    assert!(settled(&mut publisher).await.is_empty());
    let mut late = client(&d, "chat").await;
    let (head, seqs) = catch_up(&mut late, "chat-bytes", 0).await;
    assert_eq!(head["missed"], true, "{head}");
    // Each message counts its ~20.1 KB frame plus 128 bytes: four fit.
    assert_eq!(seqs, vec![16, 17, 18, 19], "{head}");
    assert!(d.refused("realtime_history_trimmed") > 0);
}

/// (d) A function publishing in a loop goes through the same hub, so the
/// same bounds hold it: its channel's history is trimmed by bytes, and a
/// loop over new channels reclaims places instead of failing at the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_publishing_in_a_loop_is_held_by_the_same_bounds() {
    let d = Faztd::start_with(&[
        ("realtime_history_bytes_per_channel", "100000"),
        ("realtime_max_channels_per_site", "50"),
    ]);
    let _site = d.deploy_files(
        "fnflood",
        &[(
            "api/flood.js",
            r#"export default () => {
                 const pad = "z".repeat(20000);
                 for (let i = 0; i < 200; i++) fazt.realtime.publish("fn-" + i, { seq: i });
                 for (let seq = 0; seq < 300; seq++) fazt.realtime.publish("feed", { seq, pad });
                 return { done: true };
               };"#,
        )],
    );
    let addr = d.addr;
    let res = tokio::task::spawn_blocking(move || {
        http::get(addr, "fnflood.localhost", "/api/flood", &[])
    })
    .await
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(channels(&d), 50, "the cap holds for functions too");
    let mut late = client(&d, "fnflood").await;
    let (head, seqs) = catch_up(&mut late, "feed", 0).await;
    assert_eq!(head["missed"], true, "{head}");
    assert_eq!(seqs, vec![296, 297, 298, 299], "{head}");
    assert!(d.refused("realtime_history_trimmed") > 0);
    // The newest of the loop's channels kept their messages; the oldest
    // gave their places away.
    let (head, seqs) = catch_up(&mut late, "fn-199", 0).await;
    assert_eq!(seqs, vec![199], "{head}");
    let (head, seqs) = catch_up(&mut late, "fn-0", 0).await;
    assert!(seqs.is_empty(), "{head}");
}

/// (e) A WebSocket is a connection: with at most 3 per address, three open
/// WebSockets leave no place for a fourth connection of any kind, and one
/// closing frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_count_against_the_connection_caps() {
    let d = Faztd::start_with(&[("http_max_connections_per_address", "3")]);
    let _site = chat_site(&d, "chat");
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = client(&d, "chat").await;
        c.subscribe("chat-room").await;
        open.push(c);
    }
    let addr = d.addr;
    let fourth = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(fourth.starts_with("HTTP/1.1 503"), "{fourth}");
    assert!(
        ws::connect(d.addr, "chat.localhost").await.is_err(),
        "a fourth WebSocket"
    );
    assert!(d.refused("http_connections_per_address") >= 2);

    // The three are still served.
    open[0].publish("chat-room", json!({ "seq": 1 })).await;
    for c in &mut open {
        assert_eq!(c.recv_type("message").await["data"]["seq"], 1);
    }
    // One leaves (a close, answered): its place is free again.
    let mut leaving = open.pop().unwrap();
    leaving.socket.close(None).await.unwrap();
    while !matches!(leaving.next().await, Received::Closed(_)) {}
    wait_until_async(PATIENCE, "a place for a new WebSocket", || async {
        ws::connect(d.addr, "chat.localhost").await.is_ok()
    })
    .await;
}

/// (f) A client that subscribes widely and never reads: frames are shared,
/// but every frame waiting in its queues stays alive for it. All its queues
/// together are bounded by `realtime_queue_bytes`; past that it is cut off
/// (and counted), while a reading subscriber is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_hold_frames_beyond_its_byte_budget() {
    let d = Faztd::start_with(&[
        ("realtime_queue_bytes", "65536"),
        // No history: what is kept is what the queues keep.
        ("realtime_history", "0"),
    ]);
    let _site = chat_site(&d, "chat");
    let (mut lobby, mut speaker) = lobby_and_speaker(&d).await;
    const CHANNELS: u64 = 50;
    let mut sleeper = client(&d, "chat").await;
    for n in 0..CHANNELS {
        sleeper.subscribe(&format!("chat-{n}")).await;
    }
    // From here on `sleeper` is never read: the kernel's buffers fill, and
    // then its queues.
    let before = d.rss_kib();
    let pad = "x".repeat(60_000);
    let mut during = before;
    for seq in 0..1000u64 {
        let channel = format!("chat-{}", seq % CHANNELS);
        speaker
            .publish(&channel, json!({ "seq": seq, "pad": pad }))
            .await;
        if seq % 100 == 99 {
            speaker.publish("chat-lobby", json!({ "seq": seq })).await;
            let m = lobby.recv_type("message").await;
            assert_eq!(m["data"]["seq"], seq, "the reading subscriber is served");
            during = during.max(d.rss_kib());
        }
    }
    // 60 MB went to a client that reads nothing: without the budget its
    // queues (512 frames each) would have kept most of it.
    let grown_mib = during.saturating_sub(before) / 1024;
    eprintln!("RSS: {before} KiB before, {during} KiB at most during");
    assert!(
        grown_mib < 24,
        "a client that never reads made the daemon keep {grown_mib} MiB"
    );
    assert!(d.refused("realtime_slow_client") > 0);
    drop(sleeper);
}
