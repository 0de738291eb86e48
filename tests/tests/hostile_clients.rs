//! Hostile clients against a real faztd, one class per test: too many
//! connections (from one address, and in total), bodies that stall or
//! claim too much, and a flood of half-sent request heads. Each asserts
//! that the attacker is refused in plain words, that a normal client is
//! still served within a bound meanwhile, that the refusal is counted in
//! `faztctl status`, and where memory is at stake, that the daemon's RSS
//! returns near where it started.
//!
//! Slow and idle heads (`http_header_timeout_secs`) are in `http_strict.rs`;
//! realtime floods in `realtime_hostile.rs`; one site starving the
//! JavaScript workers in `function_fairness.rs`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fazt_e2e::daemon::Faztd;
use fazt_e2e::http;

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8
/// is all loopback on Linux, so each is a distinct client address).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from.into(), 0).into())?;
    socket.connect(&to.into())?;
    Ok(socket.into())
}

/// A plain GET from `from`, with its status, answered within 5 s.
fn get_from(from: Ipv4Addr, d: &Faztd) -> u16 {
    let mut s = connect_from(from, d.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut data = Vec::new();
    let _ = s.read_to_end(&mut data);
    let line = String::from_utf8_lossy(&data[..data.len().min(12)]).into_owned();
    line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Reads what the server sends until it closes (or 10 s pass).
fn read_answer(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut data = Vec::new();
    let _ = s.read_to_end(&mut data);
    String::from_utf8_lossy(&data).into_owned()
}

/// The test process needs more descriptors than the usual soft limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

#[test]
fn one_address_cannot_take_every_connection() {
    let d = Faztd::start_with(&[("http_max_connections_per_address", "20")]);
    let attacker = Ipv4Addr::new(127, 0, 0, 1);
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(attacker, d.addr).unwrap())
        .collect();
    // Every one of the twenty is accepted (served, even).
    held[0]
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 12];
    held[0].read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");

    let mut extra = connect_from(attacker, d.addr).unwrap();
    let answer = read_answer(&mut extra);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("your address has as many open connections"),
        "{answer}"
    );
    assert!(answer.contains("Retry-After: 5"), "{answer}");

    // Another address is served meanwhile.
    assert_eq!(get_from(Ipv4Addr::new(127, 0, 0, 2), &d), 200);
    assert!(d.refused("http_connections_per_address") >= 1);

    // Closing one frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_from(attacker, &d) != 200 {
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The control socket never counted: faztctl works throughout.
    assert_eq!(d.refused("http_connections_total"), 0);
}

#[test]
fn the_total_connection_cap_holds_across_addresses() {
    let d = Faztd::start_with(&[
        ("http_max_connections", "30"),
        ("http_max_connections_per_address", "0"),
    ]);
    let held: Vec<TcpStream> = (0..30)
        .map(|i| connect_from(Ipv4Addr::new(127, 0, 1, 1 + (i % 5) as u8), d.addr).unwrap())
        .collect();
    let mut extra = connect_from(Ipv4Addr::new(127, 0, 2, 1), d.addr).unwrap();
    let answer = read_answer(&mut extra);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("as many open connections as it allows"),
        "{answer}"
    );
    assert!(d.refused("http_connections_total") >= 1);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_from(Ipv4Addr::new(127, 0, 2, 1), &d) != 200 {
        assert!(Instant::now() < deadline, "slots were not freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A function's body that stalls gets 408 after `http_body_timeout_secs`;
/// one that claims more than the limit gets 413 before it is sent.
#[test]
fn stalled_and_oversized_bodies_are_refused() {
    let d = Faztd::start_with(&[
        ("http_body_timeout_secs", "1"),
        ("function_body_bytes", "1000"),
    ]);
    let _site = d.deploy_files(
        "echo",
        &[(
            "api/echo.js",
            "export default (req) => `got ${req.body.length}`;",
        )],
    );
    let post = |extra: &str| {
        format!(
            "POST /api/echo HTTP/1.1\r\nHost: echo.localhost\r\nConnection: close\r\n{extra}\r\n"
        )
    };

    // Sent whole: answered.
    let ok = http::raw(
        d.addr,
        format!("{}hello", post("Content-Length: 5\r\n")).as_bytes(),
    )
    .unwrap();
    assert_eq!((ok.status, ok.text()), (200, "got 5".to_string()));

    // Ten bytes of a promised thousand, then nothing.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(d.addr).unwrap();
    stalled
        .write_all(format!("{}0123456789", post("Content-Length: 1000\r\n")).as_bytes())
        .unwrap();
    // Served meanwhile.
    assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);
    let answer = read_answer(&mut stalled);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("the request body stalled: nothing arrived for 1 s"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(d.refused("http_body_timeout") >= 1);

    // A chunked body that stalls between chunks: the same.
    let mut chunked = TcpStream::connect(d.addr).unwrap();
    chunked
        .write_all(format!("{}5\r\nhello\r\n", post("Transfer-Encoding: chunked\r\n")).as_bytes())
        .unwrap();
    let answer = read_answer(&mut chunked);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Claims a gigabyte: refused at once, without waiting for it.
    let mut huge = TcpStream::connect(d.addr).unwrap();
    huge.write_all(post("Content-Length: 1000000000\r\n").as_bytes())
        .unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut huge);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("larger than the limit of 1000 bytes"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_millis(900));
}

/// Two thousand connections each holding most of a 64 KiB head: the
/// daemon holds them (bounded by the head cap), serves everyone else
/// meanwhile, and gives the memory back when they go.
#[test]
fn a_flood_of_half_sent_heads_is_bounded_and_given_back() {
    raise_fd_limit();
    let d = Faztd::start_with(&[("http_header_timeout_secs", "60")]);
    // Warm up: the first requests allocate what any daemon keeps.
    for _ in 0..20 {
        assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);
    }
    let before = d.rss_kib();

    // A head that never ends: 60 KiB of one header, no blank line.
    let mut partial = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: ".to_vec();
    partial.extend(std::iter::repeat_n(b'a', 60 * 1024));
    const FLOOD: usize = 2000;
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        // Spread over addresses, under the per-address cap.
        let from = Ipv4Addr::new(127, 0, 3, 1 + (i % 8) as u8);
        let mut s = connect_from(from, d.addr).unwrap();
        s.write_all(&partial).unwrap();
        flood.push(s);
    }
    // Let the daemon read them all, then look.
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.open_fds() < FLOOD {
        assert!(Instant::now() < deadline, "the flood was not accepted");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let during = d.rss_kib();

    // A normal client is served promptly while the flood waits.
    let started = Instant::now();
    assert_eq!(get_from(Ipv4Addr::new(127, 0, 4, 1), &d), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a normal request took {:?} during the flood",
        started.elapsed()
    );
    // The operator is not locked out either: the control socket answers.
    let started = Instant::now();
    let status = d.ctl(&["status", "--json"]).ok().json();
    assert!(
        status["daemon"]["refusals"].is_object(),
        "faztctl status during the flood: {status}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "faztctl status took {:?} during the flood",
        started.elapsed()
    );
    // Each held head is bounded by the 64 KiB cap (plus the connection's
    // own buffers): well under what 2,000 × 370 KB heads once held.
    let held_mib = during.saturating_sub(before) / 1024;
    assert!(
        held_mib < 400,
        "the flood holds {held_mib} MiB ({before} KiB before, {during} KiB during)"
    );

    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = d.rss_kib();
    while after > before + 64 * 1024 {
        assert!(
            Instant::now() < deadline,
            "RSS stayed at {after} KiB after the flood left ({before} KiB before, {during} KiB during)"
        );
        std::thread::sleep(Duration::from_millis(200));
        after = d.rss_kib();
    }
    eprintln!("RSS: {before} KiB before, {during} KiB during, {after} KiB after the flood");
    assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);
}
