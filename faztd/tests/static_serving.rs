//! The static behaviour of DESIGN.md §2, over real HTTP against the real
//! server (warp on a loopback port) and a real redb store in a temp dir.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use fazt_e2e::http::{self, Response};
use faztd::content;
use faztd::http::catalog::SiteCatalog;
use faztd::http::host::SiteResolver;
use faztd::http::HttpState;
use faztd::shutdown::Shutdown;
use faztd::store::{NewFile, Store};

/// An in-process server on its own runtime thread; stops when dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Option<Shutdown>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.begin();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Site<'a> = (&'a str, bool, &'a [(&'a str, &'a [u8])]);

fn serve(sites: &[Site]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("data.redb")).unwrap());
    for (name, spa, files) in sites {
        let files: Vec<NewFile> = files
            .iter()
            .map(|(path, data)| {
                let content_type = content::content_type_for(path);
                let hash = store.put_blob(data, &content_type).unwrap();
                NewFile {
                    path: path.to_string(),
                    hash,
                    content_type,
                }
            })
            .collect();
        store
            .commit_version(
                name,
                &files,
                *spa,
                None,
                faztd::store::DEFAULT_RETAIN_VERSIONS,
            )
            .unwrap();
    }
    let catalog = Arc::new(SiteCatalog::load(store).unwrap());
    let limits = faztd::functions::Limits {
        timeout: std::time::Duration::from_secs(5),
        memory_bytes: 64 << 20,
        stack_bytes: 1 << 20,
    };
    let refusals = std::sync::Arc::new(faztd::refusals::Refusals::new());
    let shared = faztd::functions::pool::Shared {
        store: catalog.store().clone(),
        logs: Default::default(),
        realtime: None,
        refusals: refusals.clone(),
    };
    let state = Arc::new(HttpState {
        catalog,
        resolver: SiteResolver::new("example.test"),
        started: Instant::now(),
        functions: Arc::new(
            faztd::functions::FunctionPool::start(
                faztd::functions::PoolSize {
                    workers: 1,
                    shares: faztd::functions::Shares {
                        site_concurrency: 1,
                        site_queue: 64,
                        total_queue: 256,
                    },
                },
                limits,
                shared,
            )
            .unwrap(),
        ),
        function_body_limit: 1 << 20,
        header_timeout: Some(std::time::Duration::from_secs(20)),
        body_timeout: std::time::Duration::from_secs(20),
        connections: faztd::connections::Connections::new(Default::default()),
        realtime: Arc::new(faztd::realtime::ChannelHub::new(
            Default::default(),
            Shutdown::new(),
            refusals.clone(),
        )),
        refusals: refusals.clone(),
        https: None,
    });
    let stop = Shutdown::new();
    let stopped = stop.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            faztd::http::serve(listener, state, stopped, faztd::http::Transport::Plain).await;
        });
    });
    TestServer {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
        _dir: dir,
    }
}

const INDEX: &[u8] = b"<!doctype html><h1>home</h1>";
const ABOUT: &[u8] = b"<h1>about</h1>";
const DOCS: &[u8] = b"<h1>docs index</h1>";
const NOT_FOUND: &[u8] = b"<h1>site 404</h1>";

fn long_css() -> Vec<u8> {
    "body { color: red; margin: 0 auto; padding: 1rem; }\n"
        .repeat(100)
        .into_bytes()
}

fn big_file() -> Vec<u8> {
    // Over the 8 MiB cache limit, so it is streamed chunk by chunk.
    (0..9 * 1024 * 1024 + 17)
        .map(|i: u32| (i % 253) as u8)
        .collect()
}

fn standard_server() -> TestServer {
    let css = long_css();
    let big = big_file();
    let blog_files: Vec<(&str, &[u8])> = vec![
        ("index.html", INDEX),
        ("about.html", ABOUT),
        ("docs/index.html", DOCS),
        ("404.html", NOT_FOUND),
        ("assets/site.css", &css),
        ("assets/app.3f9a1c2b7d.js", b"console.log(1)"),
        ("big.bin", &big),
        ("empty.txt", b""),
    ];
    serve(&[
        ("root", false, &[("index.html", b"<h1>root</h1>")]),
        ("blog", false, &blog_files),
        (
            "app",
            true,
            &[("index.html", b"<div id=app></div>"), ("main.js", b"go()")],
        ),
        ("bare", false, &[("index.html", b"bare")]),
    ])
}

fn get(s: &TestServer, host: &str, path: &str) -> Response {
    http::get(s.addr, host, path, &[])
}

#[test]
fn host_routing() {
    let s = standard_server();
    let cases = [
        ("example.test", "/", 200, "<h1>root</h1>"),
        ("root.example.test", "/", 200, "<h1>root</h1>"),
        (
            "blog.example.test",
            "/",
            200,
            "<!doctype html><h1>home</h1>",
        ),
        (
            "BLOG.Example.Test:8080",
            "/",
            200,
            "<!doctype html><h1>home</h1>",
        ),
        ("blog.localhost", "/", 200, "<!doctype html><h1>home</h1>"),
        ("localhost", "/", 200, "<h1>root</h1>"),
        ("127.0.0.1", "/", 200, "<h1>root</h1>"),
        (
            "blog.127.0.0.1.nip.io",
            "/",
            200,
            "<!doctype html><h1>home</h1>",
        ),
    ];
    for (host, path, status, body) in cases {
        let res = get(&s, host, path);
        assert_eq!(res.status, status, "{host}{path}");
        assert_eq!(res.text(), body, "{host}{path}");
    }
    let unknown = get(&s, "nosuch.example.test", "/");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.text().contains("nothing here"),
        "{}",
        unknown.text()
    );
    let elsewhere = get(&s, "other.org", "/");
    assert_eq!(elsewhere.status, 404);
}

#[test]
fn a_deployed_404_site_answers_for_unknown_hosts() {
    let s = serve(&[(
        "404",
        false,
        &[("index.html", b"<h1>custom instance 404</h1>")],
    )]);
    let res = get(&s, "nosuch.localhost", "/");
    assert_eq!(res.status, 404);
    assert_eq!(res.text(), "<h1>custom instance 404</h1>");
}

#[test]
fn index_clean_urls_and_the_sites_404() {
    let s = standard_server();
    let cases: &[(&str, u16, &[u8])] = &[
        ("/", 200, INDEX),
        ("/index.html", 200, INDEX),
        ("/about", 200, ABOUT),
        ("/about.html", 200, ABOUT),
        ("/docs", 200, DOCS),
        ("/docs/", 200, DOCS),
        ("/docs/index.html", 200, DOCS),
        ("/missing", 404, NOT_FOUND),
        ("/about/", 404, NOT_FOUND),
        ("/assets/missing.css", 404, NOT_FOUND),
        ("/?q=1", 200, INDEX),
    ];
    for (path, status, body) in cases {
        let res = get(&s, "blog.localhost", path);
        assert_eq!(res.status, *status, "{path}");
        assert_eq!(res.body, *body, "{path}");
    }
    // A site without 404.html: the page is missing on that site (the
    // instance's "no site here" page would mislead).
    let res = get(&s, "bare.localhost", "/nope&x");
    assert_eq!(res.status, 404);
    let text = res.text();
    assert!(
        text.contains("The site <code>bare</code> has no page at <code>/nope&amp;x</code>"),
        "{text}"
    );
    assert!(!text.contains("nothing here"), "{text}");
}

#[test]
fn spa_fallback_only_when_enabled_and_only_for_routes() {
    let s = standard_server();
    let route = get(&s, "app.localhost", "/settings/profile");
    assert_eq!(
        (route.status, route.text().as_str()),
        (200, "<div id=app></div>")
    );
    let asset = get(&s, "app.localhost", "/missing.js");
    assert_eq!(asset.status, 404);
    let real = get(&s, "app.localhost", "/main.js");
    assert_eq!(real.text(), "go()");
    // Without SPA mode the same kind of path is a 404.
    assert_eq!(get(&s, "blog.localhost", "/settings/profile").status, 404);
}

#[test]
fn etag_last_modified_and_conditional_requests() {
    let s = standard_server();
    let first = get(&s, "blog.localhost", "/about");
    let etag = first.header("etag").expect("etag").to_string();
    let modified = first
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(httpdate_ok(&modified), "{modified}");

    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("If-None-Match", etag.as_str())], 304),
        (vec![("If-None-Match", weak.as_str())], 304),
        (vec![("If-None-Match", list.as_str())], 304),
        (vec![("If-None-Match", "*")], 304),
        (vec![("If-None-Match", "\"other\"")], 200),
        (vec![("If-Modified-Since", modified.as_str())], 304),
        (
            vec![("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
            200,
        ),
        // If-None-Match wins over If-Modified-Since.
        (
            vec![
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", modified.as_str()),
            ],
            200,
        ),
    ];
    for (headers, status) in cases {
        let res = http::get(s.addr, "blog.localhost", "/about", &headers);
        assert_eq!(res.status, status, "{headers:?}");
        if status == 304 {
            assert!(res.body.is_empty());
            assert_eq!(res.header("etag"), Some(etag.as_str()));
        }
    }
    // A 404 page is never answered with 304.
    let res = http::get(
        s.addr,
        "blog.localhost",
        "/missing",
        &[("If-None-Match", "*")],
    );
    assert_eq!(res.status, 404);
}

fn httpdate_ok(s: &str) -> bool {
    s.ends_with(" GMT") && s.len() == 29
}

#[test]
fn ranges() {
    let s = standard_server();
    let css = long_css();
    let res = http::get(
        s.addr,
        "blog.localhost",
        "/assets/site.css",
        &[("Range", "bytes=10-19")],
    );
    assert_eq!(res.status, 206);
    assert_eq!(res.body, &css[10..20]);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes 10-19/{}", css.len()).as_str())
    );
    assert_eq!(
        res.header("content-encoding"),
        None,
        "ranges are served from the identity bytes"
    );

    let res = http::get(
        s.addr,
        "blog.localhost",
        "/assets/site.css",
        &[("Range", "bytes=-5")],
    );
    assert_eq!(
        (res.status, res.body.as_slice()),
        (206, &css[css.len() - 5..])
    );

    let res = http::get(
        s.addr,
        "blog.localhost",
        "/assets/site.css",
        &[("Range", "bytes=999999-")],
    );
    assert_eq!(res.status, 416);
    assert_eq!(
        res.header("content-range"),
        Some(format!("bytes */{}", css.len()).as_str())
    );

    // A stale If-Range gets the whole file.
    let res = http::get(
        s.addr,
        "blog.localhost",
        "/assets/site.css",
        &[("Range", "bytes=0-1"), ("If-Range", "\"stale\"")],
    );
    assert_eq!((res.status, res.body.len()), (200, css.len()));

    // Streamed large files: a range across the 1 MiB chunk boundary, and the whole file.
    let big = big_file();
    let res = http::get(
        s.addr,
        "blog.localhost",
        "/big.bin",
        &[("Range", "bytes=1048570-1048600")],
    );
    assert_eq!(res.status, 206);
    assert_eq!(res.body, &big[1048570..1048601]);
    let res = get(&s, "blog.localhost", "/big.bin");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert!(res.body == big, "streamed body differs");

    let res = http::get(
        s.addr,
        "blog.localhost",
        "/empty.txt",
        &[("Range", "bytes=0-")],
    );
    assert_eq!(res.status, 416);
}

#[test]
fn head_has_the_headers_and_no_body() {
    let s = standard_server();
    let get_res = get(&s, "blog.localhost", "/assets/site.css");
    let head = http::request(s.addr, "HEAD", "blog.localhost", "/assets/site.css", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        get_res.header("content-length")
    );
    assert_eq!(head.header("etag"), get_res.header("etag"));
    assert_eq!(head.header("content-type"), Some("text/css; charset=utf-8"));
}

#[test]
fn content_types_cache_control_and_security_headers() {
    let s = standard_server();
    let cases = [
        ("/", "text/html; charset=utf-8", "no-cache"),
        (
            "/assets/site.css",
            "text/css; charset=utf-8",
            "public, max-age=0, must-revalidate",
        ),
        (
            "/assets/app.3f9a1c2b7d.js",
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        (
            "/big.bin",
            "application/octet-stream",
            "public, max-age=0, must-revalidate",
        ),
    ];
    for (path, content_type, cache) in cases {
        let res = http::request(s.addr, "HEAD", "blog.localhost", path, &[]);
        assert_eq!(res.header("content-type"), Some(content_type), "{path}");
        assert_eq!(res.header("cache-control"), Some(cache), "{path}");
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("x-frame-options"), Some("SAMEORIGIN"), "{path}");
        assert!(res.header("referrer-policy").is_some(), "{path}");
        assert_eq!(res.header("accept-ranges"), Some("bytes"), "{path}");
    }
    // Even errors carry the security headers.
    let res = get(&s, "blog.localhost", "/%2e%2e/x");
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn precompressed_variants_by_accept_encoding() {
    let s = standard_server();
    let css = long_css();
    let cases: &[(&str, Option<&str>)] = &[
        ("br", Some("br")),
        ("gzip, deflate, br", Some("br")),
        ("gzip", Some("gzip")),
        ("br;q=0, gzip", Some("gzip")),
        ("*", Some("br")),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=0", None),
    ];
    for (accept, want) in cases {
        let res = http::get(
            s.addr,
            "blog.localhost",
            "/assets/site.css",
            &[("Accept-Encoding", accept)],
        );
        assert_eq!(res.status, 200);
        assert_eq!(
            res.header("content-encoding"),
            *want,
            "Accept-Encoding: {accept}"
        );
        assert_eq!(res.header("vary"), Some("accept-encoding"));
        let decoded = match *want {
            Some("br") => {
                let mut out = Vec::new();
                brotli::BrotliDecompress(&mut res.body.as_slice(), &mut out).unwrap();
                out
            }
            Some("gzip") => {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(res.body.as_slice())
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            _ => res.body.clone(),
        };
        assert_eq!(decoded, css, "Accept-Encoding: {accept}");
        if want.is_some() {
            assert!(res.body.len() < css.len() / 4, "compressed well");
        }
    }
    // Tiny and binary files have no variants.
    let res = http::get(
        s.addr,
        "blog.localhost",
        "/big.bin",
        &[("Range", "bytes=0-0"), ("Accept-Encoding", "br")],
    );
    assert_eq!(res.header("content-encoding"), None);
}

#[test]
fn health_endpoint_on_every_host() {
    let s = standard_server();
    for host in ["blog.localhost", "localhost", "nosuch.example.test"] {
        let res = get(&s, host, "/_fazt/health");
        assert_eq!(res.status, 200, "{host}");
        assert_eq!(res.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    }
    assert_eq!(get(&s, "localhost", "/_fazt/nope").status, 404);
}

#[test]
fn hostile_paths_never_escape_and_never_panic() {
    let s = standard_server();
    let cases: &[(&str, u16)] = &[
        ("/../../etc/passwd", 400),
        ("/..%2f..%2fetc%2fpasswd", 400),
        ("/%2e%2e/%2e%2e/etc/passwd", 400),
        ("/%2E%2E%2F", 400),
        ("/docs/../about", 400),
        ("/./about", 400),
        ("/..\\..\\windows", 400),
        ("/%5c..%5cabout", 400),
        ("/about%00.html", 400),
        ("/%0d%0aX-Injected:%201", 400),
        ("/%c0%ae%c0%ae/etc/passwd", 400),
        ("/%ff", 400),
        ("//etc/passwd", 404),
        ("/etc/passwd", 404),
        ("/.env", 404),
    ];
    for (path, status) in cases {
        let res = get(&s, "blog.localhost", path);
        assert_eq!(res.status, *status, "{path}");
        assert!(!res.text().contains("root:"), "{path} leaked a system file");
    }
    let long = format!("/{}", "a/".repeat(1500));
    assert_eq!(get(&s, "blog.localhost", &long).status, 414);
    // Absolute-form request targets name a host, not a file.
    let res = http::raw(s.addr, b"GET http://blog.localhost/about HTTP/1.1\r\nHost: blog.localhost\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.body, ABOUT);
    // The server is still fine afterwards.
    assert_eq!(get(&s, "blog.localhost", "/about").status, 200);
}

#[test]
fn malformed_hosts_and_requests() {
    let s = standard_server();
    for host in ["", "bad host", "a..b", "x:notaport", "[::1", "ex/ample"] {
        let res = get(&s, host, "/");
        assert!(res.status == 400, "host {host:?} gave {}", res.status);
    }
    // No Host header at all (HTTP/1.0 style).
    let res = http::raw(s.addr, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(res.status, 400);
    // Garbage instead of HTTP, then the server keeps serving.
    let _ = http::raw(s.addr, b"\x00\x01\x02 nonsense\r\n\r\n");
    let res = http::raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: blog.localhost\r\nHost: other\r\nConnection: close\r\n\r\n",
    );
    if let Ok(res) = res {
        assert!(res.status < 500, "duplicate Host gave {}", res.status);
    }
    assert_eq!(get(&s, "blog.localhost", "/").status, 200);
}

#[test]
fn other_methods_are_refused_politely() {
    let s = standard_server();
    let res = http::request(
        s.addr,
        "POST",
        "blog.localhost",
        "/",
        &[("Content-Length", "0")],
    );
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD, OPTIONS"));
    let res = http::request(s.addr, "OPTIONS", "blog.localhost", "/", &[]);
    assert_eq!(res.status, 204);
}

#[test]
fn shutdown_lets_in_flight_requests_finish() {
    use std::io::{Read, Write};
    let mut s = standard_server();
    let big = big_file();
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: blog.localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    stream.read_exact(&mut first).unwrap();
    // Ask the server to stop while the body is still being sent, and wait
    // until it has: it no longer accepts connections.
    s.stop.take().unwrap().begin();
    fazt_e2e::wait_until(fazt_e2e::PATIENCE, "the server to stop accepting", || {
        std::net::TcpStream::connect(s.addr).is_err()
    });
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    first.extend_from_slice(&rest);
    let body_start = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        first[body_start..] == big[..],
        "the in-flight download completed intact"
    );
    // And new connections are no longer accepted once it is done.
    s.thread.take().unwrap().join().unwrap();
    assert!(std::net::TcpStream::connect(s.addr).is_err());
}
