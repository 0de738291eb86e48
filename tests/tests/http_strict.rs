//! HTTP requests as RFC 9112 reads them, sent byte for byte: every one gets
//! a status (never a panic), one Host field at most, and an absolute-form
//! target names the host.

use fazt_e2e::daemon::{libc_sig, Faztd};
use fazt_e2e::http;

fn status_line(d: &Faztd, request: &[u8]) -> (u16, String) {
    let res = http::raw(d.addr, request).expect("an answer, not a dropped connection");
    (res.status, res.text())
}

#[test]
fn odd_request_lines_get_a_status_not_a_panic() {
    let mut d = Faztd::start();
    let (status, body) = status_line(
        &d,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("CONNECT is for proxies"), "{body}");

    let (status, body) = status_line(
        &d,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("only one Host"), "{body}");

    // The absolute-form target wins over the Host field.
    let (status, body) = status_line(
        &d,
        b"GET http://demo.localhost/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Fazt demo"), "{body}");

    let (status, _) = status_line(
        &d,
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!((200..500).contains(&status), "OPTIONS * got {status}");

    // Still serving, and nothing panicked on the way.
    assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);
    let (_, log) = d.stop_with(libc_sig::SIGTERM);
    assert!(!log.contains("panicked"), "{log}");
}

/// Reads what the server sends until it closes the connection; fails if it
/// is still open after `fazt_e2e::PATIENCE`.
fn read_until_closed(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    stream.set_read_timeout(Some(fazt_e2e::PATIENCE)).unwrap();
    let mut data = Vec::new();
    match stream.read_to_end(&mut data) {
        Ok(_) => data,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => data,
        Err(e) => panic!("the server kept the connection open ({e}); got {data:?}"),
    }
}

/// Slow and idle clients do not keep a connection forever: one that sends
/// nothing, half a header, or nothing more after its response is closed
/// after `http_header_timeout_secs`; a head larger than 64 KiB is refused.
/// Everyone else is served meanwhile.
#[test]
fn slow_idle_and_oversized_heads_are_cut_off() {
    use std::io::Write;
    use std::net::TcpStream;
    let d = Faztd::start_with(&[("http_header_timeout_secs", "1")]);

    let mut silent = TcpStream::connect(d.addr).unwrap();
    let mut preface = TcpStream::connect(d.addr).unwrap();
    preface.write_all(b"PRI * HT").unwrap();
    let mut half = TcpStream::connect(d.addr).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: local").unwrap();
    let mut idle = TcpStream::connect(d.addr).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    // Served while the others wait.
    assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);

    assert!(read_until_closed(&mut silent).is_empty());
    assert!(read_until_closed(&mut preface).is_empty());
    let half_answer = read_until_closed(&mut half);
    assert!(
        half_answer.is_empty() || half_answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&half_answer)
    );
    let idle_answer = read_until_closed(&mut idle);
    assert!(
        idle_answer.starts_with(b"HTTP/1.1 200"),
        "the first request was answered"
    );

    let mut big = TcpStream::connect(d.addr).unwrap();
    let mut head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 100 * 1024));
    head.extend_from_slice(b"\r\n\r\n");
    let _ = big.write_all(&head);
    let answer = read_until_closed(&mut big);
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);
}

/// A WebSocket over a raw socket, for frames no client library would send.
fn raw_websocket(d: &Faztd) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(d.addr).unwrap();
    stream
        .write_all(
            b"GET /_ws HTTP/1.1\r\nHost: demo.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
    stream.set_read_timeout(Some(fazt_e2e::PATIENCE)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// The close code of the first close frame the server sends.
fn close_code(stream: &mut std::net::TcpStream) -> u16 {
    use std::io::Read;
    let mut data = Vec::new();
    let _ = stream.read_to_end(&mut data);
    let mut at = 0;
    while at + 2 <= data.len() {
        let (opcode, len) = (data[at] & 0x0f, (data[at + 1] & 0x7f) as usize);
        assert!(len < 126, "short frames only here");
        if opcode == 0x8 {
            return u16::from_be_bytes([data[at + 2], data[at + 3]]);
        }
        at += 2 + len;
    }
    panic!("no close frame in {data:?}");
}

/// WebSocket protocol errors are answered with the close code RFC 6455 asks
/// for, before the TCP connection closes.
#[test]
fn websocket_protocol_errors_close_with_their_code() {
    use std::io::Write;
    let d = Faztd::start();
    // A text frame that is not UTF-8: 1007.
    let mut bad_text = raw_websocket(&d);
    let mask = [1u8, 2, 3, 4];
    let payload = [0xffu8, 0xfe];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    bad_text.write_all(&frame).unwrap();
    assert_eq!(close_code(&mut bad_text), 1007);
    // An unmasked client frame: 1002.
    let mut unmasked = raw_websocket(&d);
    unmasked.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    assert_eq!(close_code(&mut unmasked), 1002);
}

/// The first line's status code, or 0 when the answer has none (HTTP/0.9
/// style: just a body) or there was no answer at all.
fn status_of(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(fazt_e2e::PATIENCE)).unwrap();
    stream.write_all(request).unwrap();
    let mut data = Vec::new();
    // A reset after the answer is still an answer.
    let _ = stream.read_to_end(&mut data);
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    match line.strip_prefix(b"HTTP/1.") {
        Some(rest) if rest.len() >= 5 => std::str::from_utf8(&rest[2..5])
            .ok()
            .and_then(|code| code.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Each odd request sent to faztd and to a real nginx, byte for byte. The
/// table holds what each answers; where they differ it says why, and the
/// test checks nginx still answers as written, so the comparison stays
/// true. None of these requests keeps the connection open after it.
#[test]
fn odd_requests_are_answered_as_nginx_does_or_better() {
    fazt_e2e::skip_unless!(fazt_e2e::nginx::missing());
    let nginx = fazt_e2e::nginx::Nginx::start();
    let d = Faztd::start();
    const H: &str = "Host: localhost\r\nConnection: close\r\n";
    // (case, request, faztd, nginx, why they differ)
    let cases: Vec<(&str, String, u16, u16, &str)> = vec![
        ("Transfer-Encoding gzip", format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: gzip\r\n\r\n"), 400, 501,
         "hyper refuses a last coding other than chunked before faztd sees the request; both refuse"),
        ("Transfer-Encoding chunked, gzip", format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"), 400, 501,
         "as above"),
        ("Transfer-Encoding gzip, chunked", format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501, 501, ""),
        ("chunked twice", format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, 400, ""),
        // Without Connection: close: faztd must close after it all the same.
        ("Transfer-Encoding and Content-Length", "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n".into(), 405, 400,
         "RFC 9112 §6.3 allows either: faztd (hyper) reads the chunks, ignores the length and closes the connection, so nothing can be smuggled behind it"),
        ("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(), 400, 400, ""),
        ("two Content-Lengths", format!("POST / HTTP/1.1\r\n{H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"), 400, 400, ""),
        ("negative Content-Length", format!("POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n"), 400, 400, ""),
        ("bad chunk size", format!("POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"), 405, 405,
         ""),
        ("no Host in HTTP/1.1", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n".into(), 400, 400, ""),
        ("no Host in HTTP/1.0", "GET / HTTP/1.0\r\n\r\n".into(), 400, 200,
         "faztd routes by host name and has no default server to guess"),
        ("two Host fields", "GET / HTTP/1.1\r\nHost: localhost\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n".into(), 400, 400, ""),
        ("empty Host", "GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n".into(), 400, 400, ""),
        ("userinfo in Host", "GET / HTTP/1.1\r\nHost: a@localhost\r\nConnection: close\r\n\r\n".into(), 400, 200,
         "RFC 9110 §7.2: Host is a host and port, never userinfo; nginx ignores it"),
        ("absolute-form target", "GET http://localhost/ HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n".into(), 200, 200, ""),
        ("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n".into(), 405, 400,
         "a web server does not tunnel: faztd says CONNECT is for proxies, with Allow (405)"),
        ("TRACE", format!("TRACE / HTTP/1.1\r\n{H}\r\n"), 405, 405, ""),
        ("lowercase method", format!("get / HTTP/1.1\r\n{H}\r\n"), 405, 400,
         "methods are case-sensitive: `get` is an unknown method, which the site does not allow (with Allow)"),
        ("HTTP/2.0 as text", format!("GET / HTTP/2.0\r\n{H}\r\n"), 400, 505,
         "hyper's parser answers any version but 1.0 and 1.1 with 400"),
        ("HTTP/3.0 as text", format!("GET / HTTP/3.0\r\n{H}\r\n"), 400, 505, "as above"),
        ("HTTP/1.2", format!("GET / HTTP/1.2\r\n{H}\r\n"), 400, 200, "as above"),
        ("HTTP/0.9", "GET /\r\n".into(), 400, 0, "HTTP/0.9 is gone: no status line is a worse answer than 400"),
        ("garbage version", format!("GET / FOO/1.1\r\n{H}\r\n"), 400, 400, ""),
        ("bare LF line ends", "GET / HTTP/1.1\nHost: localhost\nConnection: close\n\n".into(), 200, 200, ""),
        ("obs-fold", format!("GET / HTTP/1.1\r\n{H}X-A: a\r\n b\r\n\r\n"), 400, 400, ""),
        ("space before colon", "GET / HTTP/1.1\r\nHost : localhost\r\nConnection: close\r\n\r\n".into(), 400, 400, ""),
        ("NUL in a field", format!("GET / HTTP/1.1\r\n{H}X-A: a\0b\r\n\r\n"), 400, 400, ""),
        ("h2c upgrade", format!("GET / HTTP/1.1\r\n{H}Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"), 200, 200,
         ""),
    ];
    let mut wrong = Vec::new();
    for (case, request, ours, theirs, why) in &cases {
        assert!(
            (ours == theirs) == why.is_empty(),
            "{case}: say why faztd and nginx differ, and only where they do"
        );
        let got_ours = status_of(d.addr, request.as_bytes());
        let got_theirs = status_of(nginx.addr, request.as_bytes());
        if (got_ours, got_theirs) != (*ours, *theirs) {
            wrong.push(format!(
                "{case}: faztd {got_ours} (expected {ours}), nginx {got_theirs} (expected {theirs})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Still serving, and nothing panicked on the way.
    assert_eq!(http::get(d.addr, "localhost", "/", &[]).status, 200);
}

/// HTTP/2 with prior knowledge (h2c) is spoken on the plain port: the
/// preface is answered with the server's SETTINGS frame.
#[test]
fn http2_prior_knowledge_is_answered_with_settings() {
    use std::io::{Read, Write};
    let d = Faztd::start();
    let mut stream = std::net::TcpStream::connect(d.addr).unwrap();
    stream.set_read_timeout(Some(fazt_e2e::PATIENCE)).unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let mut frame = [0u8; 9];
    stream.read_exact(&mut frame).unwrap();
    assert_eq!(frame[3], 0x04, "the first frame is SETTINGS: {frame:?}");
}
