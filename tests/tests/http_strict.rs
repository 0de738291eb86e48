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
