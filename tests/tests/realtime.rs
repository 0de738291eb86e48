//! Realtime channels at `/_ws` (DESIGN.md §5, issue 5) with real WebSocket
//! clients (tokio-tungstenite) against the real faztd binary.

use std::collections::HashSet;
use std::time::Duration;

use fazt_e2e::daemon::{libc_sig, Faztd};
use fazt_e2e::wait::{wait_for_async, wait_until_async};
use fazt_e2e::ws::{self, Received, WsClient};
use fazt_e2e::{http, PATIENCE};
use serde_json::{json, Value};

/// Deploys a one-page site, with `fazt.json` if given.
fn deploy(d: &Faztd, name: &str, fazt_json: Option<Value>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
    if let Some(config) = fazt_json {
        std::fs::write(dir.path().join("fazt.json"), config.to_string()).unwrap();
    }
    d.ctl(&["deploy", dir.path().to_str().unwrap(), "--site", name])
        .ok();
}

fn chat_site(d: &Faztd, name: &str) {
    deploy(
        d,
        name,
        Some(json!({ "realtime": { "clientPublish": ["room-*", "presence-*"] } })),
    );
}

async fn client(d: &Faztd, site: &str) -> WsClient {
    ws::connect(d.addr, &format!("{site}.localhost"))
        .await
        .expect("websocket connects")
}

fn seq(frame: &Value) -> u64 {
    frame["data"]["seq"].as_u64().expect("seq in data")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_to_many_subscribers_in_order_per_channel() {
    let d = Faztd::start();
    chat_site(&d, "chat");
    const SUBSCRIBERS: usize = 40;
    const MESSAGES: u64 = 200;
    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut c = client(&d, "chat").await;
        c.subscribe("room-a").await;
        subs.push(c);
    }
    // One more listens to the other channel only.
    let mut other = client(&d, "chat").await;
    other.subscribe("room-b").await;

    let mut publisher = client(&d, "chat").await;
    for i in 0..MESSAGES {
        publisher.publish("room-a", json!({ "seq": i })).await;
        publisher.publish("room-b", json!({ "seq": i })).await;
    }
    let mut readers = Vec::new();
    for mut c in subs {
        readers.push(tokio::spawn(async move {
            let mut last_id = 0;
            for i in 0..MESSAGES {
                let m = c.recv_type("message").await;
                assert_eq!(m["channel"], "room-a");
                assert_eq!(seq(&m), i, "messages arrive in publish order");
                let id = m["id"].as_u64().unwrap();
                assert!(id > last_id, "ids increase along the channel");
                assert!(m["ts"].as_u64().unwrap() > 1_600_000_000_000);
                last_id = id;
            }
            c
        }));
    }
    let mut subs = Vec::new();
    for r in readers {
        subs.push(r.await.unwrap());
    }
    for i in 0..MESSAGES {
        let m = other.recv_type("message").await;
        assert_eq!((m["channel"].as_str(), seq(&m)), (Some("room-b"), i));
    }
    // Live counts reach the operator.
    let status = d.ctl(&["status", "--json"]).ok().json();
    assert_eq!(
        status["daemon"]["realtime_connections"],
        SUBSCRIBERS as u64 + 2
    );
    assert_eq!(status["daemon"]["realtime_channels"], 2);
    let table = d.ctl(&["status"]).ok().stdout;
    assert!(table.contains("42 connections, 2 channels"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_are_isolated() {
    let d = Faztd::start();
    chat_site(&d, "alpha");
    chat_site(&d, "beta");
    let mut a = client(&d, "alpha").await;
    let mut b = client(&d, "beta").await;
    a.subscribe("room-x").await;
    b.subscribe("room-x").await;
    // A client of alpha publishes; an operator publishes on alpha too.
    let mut pa = client(&d, "alpha").await;
    pa.publish("room-x", json!({ "seq": 1, "from": "alpha" }))
        .await;
    d.ctl(&["publish", "alpha", "room-x", r#"{"seq":2,"from":"alpha"}"#])
        .ok();
    d.ctl(&["publish", "beta", "room-x", r#"{"seq":3,"from":"beta"}"#])
        .ok();
    for want in [1, 2] {
        let m = a.recv_type("message").await;
        assert_eq!((seq(&m), m["data"]["from"].as_str()), (want, Some("alpha")));
    }
    let m = b.recv_type("message").await;
    assert_eq!(
        (seq(&m), m["data"]["from"].as_str()),
        (3, Some("beta")),
        "beta sees only beta's message"
    );
    assert!(a.quiet_for(Duration::from_millis(300)).await);
    assert!(b.quiet_for(Duration::from_millis(300)).await);
    // An unknown host has no realtime endpoint.
    let refused = ws::connect(d.addr, "nosuchsite.localhost").await;
    assert_eq!(refused.err().as_deref(), Some("HTTP 404 Not Found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_members_and_announces_join_and_leave() {
    let d = Faztd::start();
    chat_site(&d, "chat");
    let mut ann = client(&d, "chat").await;
    ann.send(json!({"type":"subscribe","channel":"presence-lobby","info":{"name":"ann"}}))
        .await;
    assert_eq!(ann.recv().await["type"], "subscribed");
    let members = ann.recv().await;
    assert_eq!(members["event"], "members");
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    assert_eq!(members["members"][0]["info"]["name"], "ann");
    assert_eq!(members["members"][0]["id"], members["me"]);

    let mut bob = client(&d, "chat").await;
    bob.send(json!({"type":"subscribe","channel":"presence-lobby","info":{"name":"bob"}}))
        .await;
    assert_eq!(bob.recv().await["type"], "subscribed");
    let members = bob.recv().await;
    let names: HashSet<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["info"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, HashSet::from(["ann", "bob"]));
    let bob_id = members["me"].clone();

    let join = ann.recv_type("presence").await;
    assert_eq!(join["event"], "join");
    assert_eq!(join["member"]["info"]["name"], "bob");
    assert_eq!(join["member"]["id"], bob_id);

    // Bob's connection drops without a goodbye: ann sees him leave.
    drop(bob);
    let leave = ann.recv_type("presence").await;
    assert_eq!(leave["event"], "leave");
    assert_eq!(leave["member"]["id"], bob_id);
    assert_eq!(leave["member"]["info"]["name"], "bob");

    // A plain unsubscribe is a leave too.
    let mut cy = client(&d, "chat").await;
    cy.send(json!({"type":"subscribe","channel":"presence-lobby"}))
        .await;
    cy.recv_type("presence").await;
    assert_eq!(ann.recv_type("presence").await["event"], "join");
    cy.send(json!({"type":"unsubscribe","channel":"presence-lobby"}))
        .await;
    assert_eq!(cy.recv().await["type"], "unsubscribed");
    assert_eq!(ann.recv_type("presence").await["event"], "leave");

    // Too much info is refused.
    let mut big = client(&d, "chat").await;
    big.send(json!({"type":"subscribe","channel":"presence-lobby","info":"x".repeat(5000)}))
        .await;
    assert_eq!(big.recv().await["code"], "info_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_replays_what_a_reconnecting_client_missed() {
    // History longer than all that is published: however slowly this
    // machine lets the client reconnect, the gap is covered, and what is
    // tested is the race itself (no gap, no duplicate).
    let d = Faztd::start_with(&[("realtime_history", "1000")]);
    chat_site(&d, "chat");
    let mut first = client(&d, "chat").await;
    first.subscribe("room-h").await;

    // A publisher keeps publishing the whole time, so the reconnect races it.
    let addr = d.addr;
    let publishing = tokio::spawn(async move {
        let mut p = ws::connect(addr, "chat.localhost").await.unwrap();
        for i in 0..400u64 {
            p.publish("room-h", json!({ "seq": i })).await;
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        p
    });
    let mut seen = Vec::new();
    let mut last_id = 0;
    for _ in 0..50 {
        let m = first.recv_type("message").await;
        seen.push(seq(&m));
        last_id = m["id"].as_u64().unwrap();
    }
    drop(first);

    let mut again = client(&d, "chat").await;
    again
        .send(json!({"type":"subscribe","channel":"room-h","since":last_id}))
        .await;
    let head = again.recv().await;
    assert_eq!(head["type"], "subscribed", "{head}");
    assert_eq!(head["missed"], false, "1000 kept covers the gap: {head}");
    let _ = publishing.await.unwrap();
    while seen.len() < 400 {
        let m = again.recv_type("message").await;
        seen.push(seq(&m));
    }
    assert_eq!(
        seen,
        (0..400).collect::<Vec<_>>(),
        "no gap and no duplicate across the reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_away_too_long_is_told_it_missed_messages() {
    let d = Faztd::start();
    chat_site(&d, "chat");
    let mut watcher = client(&d, "chat").await;
    watcher.subscribe("room-l").await;
    let mut publisher = client(&d, "chat").await;
    for i in 0..150u64 {
        publisher.publish("room-l", json!({ "seq": i })).await;
    }
    // Once the watcher has them all, the channel's history holds them too.
    for i in 0..150u64 {
        assert_eq!(seq(&watcher.recv_type("message").await), i);
    }
    let mut late = client(&d, "chat").await;
    late.send(json!({"type":"subscribe","channel":"room-l","since":1}))
        .await;
    let head = late.recv().await;
    assert_eq!(head["missed"], true, "{head}");
    assert_eq!(
        head["replayed"], 100,
        "history keeps the last 100 by default"
    );
    assert_eq!(seq(&late.recv_type("message").await), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_cut_off_while_others_keep_receiving() {
    let d = Faztd::start();
    chat_site(&d, "chat");
    d.ctl(&["config", "set", "realtime_queue_messages", "64"])
        .ok();
    let mut fast = client(&d, "chat").await;
    fast.subscribe("room-s").await;
    let mut slow = client(&d, "chat").await;
    slow.subscribe("room-s").await;
    let mut publisher = client(&d, "chat").await;

    // 2,000 messages of 8 KiB (16 MiB): more than the slow reader's socket
    // buffers and queue hold. The publisher stays within 32 of the fast
    // reader, so only the slow one can fall behind.
    const MESSAGES: u64 = 2000;
    let pad = "x".repeat(8192);
    let mut received = 0u64;
    for i in 0..MESSAGES {
        publisher
            .publish("room-s", json!({ "seq": i, "pad": pad }))
            .await;
        while received + 32 <= i {
            let m = fast.recv_type("message").await;
            assert_eq!(seq(&m), received);
            received += 1;
        }
    }
    while received < MESSAGES {
        assert_eq!(seq(&fast.recv_type("message").await), received);
        received += 1;
    }

    // The slow reader now reads: what was buffered, then the close.
    let mut got = 0;
    let close = loop {
        match slow.next().await {
            Received::Json(m) => {
                assert_eq!(m["type"], "message");
                assert_eq!(seq(&m), got, "what it got is in order");
                got += 1;
            }
            Received::Closed(frame) => break frame,
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), 4001);
    assert!(close.reason.contains("too slow"), "{}", close.reason);
    assert!(
        got < MESSAGES,
        "the slow reader was cut off ({got} received)"
    );

    // The fast reader and the daemon carry on.
    publisher
        .publish("room-s", json!({ "seq": MESSAGES }))
        .await;
    assert_eq!(seq(&fast.recv_type("message").await), MESSAGES);
    let health = http::get(d.addr, "chat.localhost", "/_fazt/health", &[]);
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_frames_and_nothing_breaks() {
    let d = Faztd::start();
    chat_site(&d, "chat");
    d.ctl(&["config", "set", "realtime_max_frame_bytes", "1024"])
        .ok();
    let mut c = client(&d, "chat").await;
    let cases: Vec<(String, &str)> = vec![
        ("not json at all".into(), "bad_frame"),
        (r#"{"type":"launch"}"#.into(), "bad_frame"),
        (r#"{"type":"subscribe"}"#.into(), "bad_frame"),
        (r#"[1,2,3]"#.into(), "bad_frame"),
        (
            json!({"type":"subscribe","channel":"has space"}).to_string(),
            "bad_channel",
        ),
        (
            json!({"type":"publish","channel":"room-1","data":"x".repeat(2000)}).to_string(),
            "frame_too_large",
        ),
        (
            json!({"type":"unsubscribe","channel":"room-1"}).to_string(),
            "not_subscribed",
        ),
    ];
    for (frame, code) in cases {
        c.send_text(frame.clone()).await;
        let reply = c.recv().await;
        assert_eq!(reply["type"], "error", "{frame}");
        assert_eq!(reply["code"], code, "{frame} → {reply}");
        assert!(!reply["message"].as_str().unwrap().is_empty());
    }
    c.socket
        .send(ws_message_binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(c.recv().await["code"], "bad_frame");
    // Still a working connection.
    c.send(json!({"type":"ping","data":7})).await;
    assert_eq!(c.recv().await, json!({"type":"pong","data":7}));
    c.subscribe("room-1").await;
    c.send(json!({"type":"subscribe","channel":"room-1"})).await;
    assert_eq!(c.recv().await["code"], "already_subscribed");

    // A frame beyond the hard cap (1 MiB here) ends that connection only.
    let mut huge = client(&d, "chat").await;
    huge.send_text("x".repeat(2 << 20)).await;
    match huge.next().await {
        Received::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected a 1009 close, got {other:?}"),
    }
    c.publish("room-1", json!({ "seq": 1 })).await;
    assert_eq!(seq(&c.recv_type("message").await), 1);
    let health = http::get(d.addr, "chat.localhost", "/_fazt/health", &[]);
    assert_eq!(health.status, 200);
}

fn ws_message_binary(bytes: Vec<u8>) -> tokio_tungstenite::tungstenite::Message {
    tokio_tungstenite::tungstenite::Message::binary(bytes)
}

use futures_util::SinkExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_publish_follows_the_sites_fazt_json() {
    let d = Faztd::start();
    deploy(
        &d,
        "open",
        Some(json!({ "realtime": { "clientPublish": ["chat-*"] } })),
    );
    deploy(&d, "closed", None);
    let mut listener = client(&d, "open").await;
    listener.subscribe("chat-1").await;
    listener.subscribe("news").await;
    let mut c = client(&d, "open").await;
    c.publish("chat-1", json!({ "seq": 1 })).await;
    assert_eq!(seq(&listener.recv_type("message").await), 1);
    c.publish("news", json!({ "seq": 2 })).await;
    let refused = c.recv().await;
    assert_eq!(refused["code"], "publish_not_allowed", "{refused}");
    assert_eq!(refused["channel"], "news");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("clientPublish"));
    // Operators may publish anywhere.
    d.ctl(&["publish", "open", "news", r#"{"seq":3}"#]).ok();
    assert_eq!(seq(&listener.recv_type("message").await), 3);

    // No fazt.json: clients may not publish at all.
    let mut other = client(&d, "closed").await;
    other.publish("chat-1", json!({ "seq": 4 })).await;
    assert_eq!(other.recv().await["code"], "publish_not_allowed");

    // A redeploy changes the rule for connected clients.
    deploy(
        &d,
        "closed",
        Some(json!({ "realtime": { "clientPublish": ["*"] } })),
    );
    other.subscribe("chat-1").await;
    other.publish("chat-1", json!({ "seq": 5 })).await;
    assert_eq!(seq(&other.recv_type("message").await), 5);

    // A malformed realtime section fails the deploy, naming the problem.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "x").unwrap();
    std::fs::write(
        dir.path().join("fazt.json"),
        r#"{"realtime":{"clientPublsh":["*"]}}"#,
    )
    .unwrap();
    let bad = d.ctl(&["deploy", dir.path().to_str().unwrap(), "--site", "open"]);
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("clientPublsh"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faztctl_publish() {
    let d = Faztd::start();
    let mut c = client(&d, "demo").await;
    c.subscribe("alerts").await;
    let out = d
        .ctl(&["publish", "demo", "alerts", r#"{"level":"info","n":1}"#])
        .ok();
    assert!(out.stdout.contains("to 1 subscriber"), "{}", out.stdout);
    let m = c.recv_type("message").await;
    assert_eq!(m["channel"], "alerts");
    assert_eq!(m["data"], json!({"level":"info","n":1}));
    let out = d
        .ctl(&["publish", "demo", "alerts", "\"plain text\"", "--json"])
        .ok()
        .json();
    let m = c.recv_type("message").await;
    assert_eq!(m["data"], "plain text");
    assert_eq!(out["id"], m["id"]);
    assert_eq!(out["subscribers"], 1);

    let bad = d.ctl(&["publish", "demo", "alerts", "not json"]);
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("not JSON"), "{}", bad.stderr);
    let bad = d.ctl(&["publish", "nosuch", "alerts", "1"]);
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("no site"), "{}", bad.stderr);
    let bad = d.ctl(&["publish", "demo", "bad channel", "1"]);
    assert_eq!(bad.code, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_connections_and_subscriptions() {
    let d = Faztd::start();
    d.ctl(&["config", "set", "realtime_max_connections_per_site", "2"])
        .ok();
    d.ctl(&["config", "set", "realtime_max_subscriptions", "2"])
        .ok();
    let mut a = client(&d, "demo").await;
    let _b = client(&d, "demo").await;
    let third = ws::connect(d.addr, "demo.localhost").await;
    assert_eq!(third.err().as_deref(), Some("HTTP 503 Service Unavailable"));
    // Another site has its own allowance.
    let _root = client(&d, "root").await;

    a.subscribe("one").await;
    a.subscribe("two").await;
    a.send(json!({"type":"subscribe","channel":"three"})).await;
    assert_eq!(a.recv().await["code"], "too_many_subscriptions");

    // A closed connection frees its slot.
    drop(a);
    let addr = d.addr;
    let _again = wait_for_async(
        PATIENCE,
        "the slot of a closed connection to be reused",
        || async move { ws::connect(addr, "demo.localhost").await.ok() },
    )
    .await;

    // A plain GET of /_ws explains itself.
    let res = http::get(d.addr, "demo.localhost", "/_ws", &[]);
    assert_eq!(res.status, 426);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_with_going_away() {
    let mut d = Faztd::start();
    let mut c = client(&d, "demo").await;
    c.subscribe("x").await;
    let (status, _) = d.stop_with(libc_sig::SIGTERM);
    assert!(status.success());
    match c.next().await {
        Received::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_drop_clients_that_stop_answering() {
    let d = Faztd::start();
    d.ctl(&["config", "set", "realtime_heartbeat_secs", "1"])
        .ok();
    let mut alive = client(&d, "demo").await;
    alive.subscribe("x").await;
    // This one never reads again, so it never answers the server's pings.
    let mut dead = client(&d, "demo").await;
    dead.subscribe("x").await;
    let connections = || {
        d.ctl(&["status", "--json"]).ok().json()["daemon"]["realtime_connections"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(connections(), 2);
    // The live client keeps reading (and so answers the pings) until the
    // server has dropped the silent one.
    tokio::select! {
        () = wait_until_async(PATIENCE, "the silent client to be dropped", || async {
            connections() == 1
        }) => {}
        // (Quiet for longer than the wait, so only a frame or a close ends it.)
        _ = alive.quiet_for(PATIENCE * 2) => panic!("the live client was sent a frame or closed"),
    }
    d.ctl(&["publish", "demo", "x", "1"]).ok();
    assert_eq!(alive.recv_type("message").await["data"], 1);
    drop(dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_publish_count_and_see_presence() {
    let d = Faztd::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("api")).unwrap();
    std::fs::write(
        dir.path().join("api/notify.js"),
        r#"export default (req) => ({
             id: fazt.realtime.publish("news", { headline: req.query.h }),
             listeners: fazt.realtime.count("news"),
             here: fazt.realtime.presence("presence-room").map((m) => m.info),
           });"#,
    )
    .unwrap();
    d.ctl(&["deploy", dir.path().to_str().unwrap(), "--site", "fnrt"])
        .ok();
    let mut news = client(&d, "fnrt").await;
    news.subscribe("news").await;
    let mut member = client(&d, "fnrt").await;
    member
        .send(json!({"type": "subscribe", "channel": "presence-room", "info": {"name": "ada"}}))
        .await;
    member.recv_type("subscribed").await;
    let addr = d.addr;
    let res = tokio::task::spawn_blocking(move || {
        http::get(addr, "fnrt.localhost", "/api/notify?h=hello", &[])
    })
    .await
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.text());
    let answer: Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(answer["listeners"], 1);
    assert_eq!(answer["here"], json!([{"name": "ada"}]));
    let m = news.recv_type("message").await;
    assert_eq!(m["data"], json!({"headline": "hello"}));
    assert_eq!(m["id"], answer["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_site_closes_its_connections_and_forgets_its_channels() {
    let d = Faztd::start();
    chat_site(&d, "gone");
    chat_site(&d, "stays");
    let mut member = client(&d, "gone").await;
    member.subscribe("room-a").await;
    let mut bystander = client(&d, "stays").await;
    bystander.subscribe("room-a").await;
    let mut publisher = client(&d, "gone").await;
    publisher.publish("room-a", json!({ "seq": 0 })).await;
    assert_eq!(seq(&member.recv_type("message").await), 0);

    d.ctl(&["site", "rm", "gone", "--yes"]).ok();
    let close = loop {
        match member.next().await {
            Received::Json(_) => continue,
            Received::Closed(frame) => break frame.expect("a close frame with a reason"),
        }
    };
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "the site was removed");

    // Other sites are untouched.
    bystander.send(json!({"type":"ping"})).await;
    assert_eq!(bystander.recv_type("pong").await["type"], "pong");

    // A new site of the same name starts with no history.
    chat_site(&d, "gone");
    let mut newcomer = client(&d, "gone").await;
    newcomer
        .send(json!({"type":"subscribe","channel":"room-a","since":0}))
        .await;
    let head = newcomer.recv().await;
    assert_eq!(head["type"], "subscribed", "{head}");
    assert_eq!(head["replayed"], 0, "the removed site's history: {head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_connect_from_the_sites_own_pages_or_listed_origins() {
    let d = Faztd::start();
    chat_site(&d, "chat");
    let host = "chat.localhost";
    let from = |origin: &'static str| [("origin", origin)];
    // The site's own pages, and clients that send no Origin (not browsers).
    ws::connect_with(d.addr, host, &from("http://chat.localhost"))
        .await
        .expect("same origin");
    ws::connect(d.addr, host).await.expect("no Origin");
    // Another site's pages may not make their visitors' browsers join.
    for origin in ["https://evil.example", "http://other.localhost", "null"] {
        let refused = ws::connect_with(d.addr, host, &from(origin)).await;
        assert_eq!(
            refused.err().as_deref(),
            Some("HTTP 403 Forbidden"),
            "{origin}"
        );
    }
    // Unless the site lists them.
    deploy(
        &d,
        "chat",
        Some(json!({ "realtime": { "allowedOrigins": ["https://*.example.org"] } })),
    );
    ws::connect_with(d.addr, host, &from("https://app.example.org"))
        .await
        .expect("listed origin");
    let refused = ws::connect_with(d.addr, host, &from("https://evil.example")).await;
    assert!(refused.is_err());
    // A refusal says why, in plain words.
    let res = http::raw(
        d.addr,
        b"GET /_ws HTTP/1.1\r\nHost: chat.localhost\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://evil.example\r\n\r\n",
    )
    .unwrap();
    assert_eq!(res.status, 403);
    assert!(
        res.text().contains("realtime.allowedOrigins"),
        "{}",
        res.text()
    );
}
