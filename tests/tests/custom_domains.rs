//! Custom domains (issue 14): `faztctl domain add|rm|list` against a real
//! faztd on its real socket, and real HTTP and WebSocket clients sending
//! the custom domain as their `Host`.

use fazt_e2e::daemon::{CtlOutput, Faztd};
use fazt_e2e::http;
use fazt_e2e::ws;
use serde_json::{json, Value};

/// A site with a page and a function, so both kinds of request are seen.
fn deploy_blog(d: &Faztd, name: &str) {
    let page = format!("<h1>{name} home</h1>");
    d.deploy_files(
        name,
        &[
            ("index.html", page.as_str()),
            (
                "api/hello.js",
                "export default (req) => `hello from a function at ${req.path}`;",
            ),
        ],
    );
}

/// Asserts that faztctl exited with `code` and said `words` on stderr.
fn refused(out: CtlOutput, code: i32, words: &str) {
    assert_eq!(out.code, Some(code), "{out:?}");
    assert!(out.stderr.contains(words), "expected {words:?} in {out:?}");
}

/// The custom domains as `domain list --json` has them.
fn listed(d: &Faztd) -> Vec<Value> {
    let list = d.ctl(&["domain", "list", "--json"]).ok().json();
    list.as_array().expect("a JSON array").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_domain_serves_its_sites_files_functions_and_realtime() {
    let d = Faztd::start();
    deploy_blog(&d, "blog");
    let out = d.ctl(&["domain", "add", "blog", "Example.org."]).ok();
    assert!(
        out.stdout.contains("example.org now serves blog"),
        "{out:?}"
    );

    // Any spelling of the host: case, port, trailing dot.
    let port = d.addr.port();
    for host in [
        "example.org".to_string(),
        format!("EXAMPLE.org:{port}"),
        "example.org.".to_string(),
        format!("Example.Org.:{port}"),
    ] {
        let page = http::get(d.addr, &host, "/", &[]);
        assert_eq!(page.status, 200, "{host}: {}", page.text());
        assert!(page.text().contains("blog home"), "{host}: {}", page.text());
        let function = http::get(d.addr, &host, "/api/hello", &[]);
        assert_eq!(function.status, 200, "{host}: {}", function.text());
        assert_eq!(
            function.text(),
            "hello from a function at /api/hello",
            "{host}"
        );
    }
    // The site's own name still serves it, and other hosts are still no site.
    assert!(http::get(d.addr, "blog.localhost", "/", &[])
        .text()
        .contains("blog home"));
    assert_eq!(http::get(d.addr, "example.net", "/", &[]).status, 404);

    // Realtime: a page at the custom domain connects (there, and at the
    // site's own name), and an operator's message arrives.
    let origin = [("origin", "http://example.org")];
    let mut here = ws::connect_with(d.addr, "example.org", &origin)
        .await
        .expect("the custom domain's own page connects");
    here.subscribe("news").await;
    let mut there = ws::connect_with(d.addr, &format!("blog.localhost:{port}"), &origin)
        .await
        .expect("a page at the site's custom domain connects to its NAME.localhost too");
    there.subscribe("news").await;
    d.ctl(&["publish", "blog", "news", r#"{"n":1}"#]).ok();
    for client in [&mut here, &mut there] {
        let message = client.recv_type("message").await;
        assert_eq!(message["data"], json!({ "n": 1 }), "{message}");
    }
    let stranger = ws::connect_with(d.addr, "example.org", &[("origin", "http://example.net")])
        .await
        .err();
    assert_eq!(stranger.as_deref(), Some("HTTP 403 Forbidden"));

    // Adding it again to the same site changes nothing and succeeds.
    let again = d.ctl(&["domain", "add", "blog", "example.org"]).ok();
    assert!(again.stdout.contains("already serves blog"), "{again:?}");

    // The list, for scripts and for people.
    let domains = listed(&d);
    assert_eq!(domains.len(), 1, "{domains:?}");
    let entry = &domains[0];
    assert_eq!(entry["domain"], "example.org");
    assert_eq!(entry["site"], "blog");
    assert!(entry["added_at"].as_u64().is_some_and(|t| t > 0), "{entry}");
    assert_eq!(entry["url"], format!("http://example.org:{port}/"));
    assert_eq!(entry["certificate"], Value::Null, "no HTTPS yet");
    let table = d.ctl(&["domain", "list"]).ok().stdout;
    for column in [
        "domain",
        "site",
        "url",
        "certificate",
        "example.org",
        "no HTTPS",
    ] {
        assert!(table.contains(column), "{column:?} in {table}");
    }
    assert_eq!(
        d.ctl(&["domain", "list", "blog", "--json"]).ok().json(),
        json!(domains)
    );
    assert_eq!(
        d.ctl(&["domain", "list", "demo", "--json"]).ok().json(),
        json!([])
    );

    // Removed: the host is no site any more, for pages and for realtime.
    let out = d.ctl(&["domain", "rm", "example.org"]).ok();
    assert!(
        out.stdout.contains("example.org no longer serves blog"),
        "{out:?}"
    );
    let gone = http::get(d.addr, "example.org", "/", &[]);
    assert_eq!(gone.status, 404);
    assert!(
        gone.text().contains("serves no site or page"),
        "{}",
        gone.text()
    );
    assert_eq!(
        ws::connect(d.addr, "example.org").await.err().as_deref(),
        Some("HTTP 404 Not Found")
    );
    assert!(listed(&d).is_empty());
}

#[test]
fn names_that_cannot_be_custom_domains_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = Faztd::start_in(dir.path(), &["--domain", "fazt.test"]).expect("faztd starts");
    deploy_blog(&d, "blog");
    deploy_blog(&d, "shop");
    d.ctl(&["domain", "add", "blog", "example.org"]).ok();

    // Wrong on its face: faztctl says so without asking the daemon (exit 2).
    for (name, words) in [
        ("example", "has no dot"),
        ("http://example.org/", "give the name alone"),
        ("example.org:8080", "has a port"),
        ("exa_mple.org", "is not a DNS name"),
        ("bad-.example.org", "is not a DNS name"),
        ("192.0.2.1", "is an IP address"),
        ("blog.localhost", "localhost name"),
    ] {
        refused(d.ctl(&["domain", "add", "blog", name]), 2, words);
    }
    refused(
        d.ctl(&["domain", "rm", "not a name"]),
        2,
        "is not a DNS name",
    );

    // Only the daemon knows these (exit 1): names that route already, a
    // name another site has, a site or a domain that does not exist.
    for (args, words) in [
        (
            ["domain", "add", "blog", "fazt.test"],
            "is this instance's own domain",
        ),
        (
            ["domain", "add", "blog", "www.FAZT.test."],
            "NAME.fazt.test already serves site NAME",
        ),
        (
            ["domain", "add", "shop", "example.org"],
            "example.org already serves site blog",
        ),
        (
            ["domain", "add", "nosuch", "nosuch.org"],
            "there is no site named nosuch",
        ),
    ] {
        refused(d.ctl(&args), 1, words);
    }
    refused(
        d.ctl(&["domain", "rm", "example.net"]),
        1,
        "example.net is not a custom domain of any site",
    );
    refused(
        d.ctl(&["domain", "list", "nosuch"]),
        1,
        "there is no site named nosuch",
    );

    // Nothing changed: example.org still serves blog.
    let domains = listed(&d);
    assert_eq!(domains.len(), 1, "{domains:?}");
    assert_eq!(domains[0]["site"], "blog");
    assert!(http::get(d.addr, "example.org", "/", &[])
        .text()
        .contains("blog home"));
}

#[test]
fn domains_survive_a_restart_and_go_with_their_site() {
    let mut d = Faztd::start();
    deploy_blog(&d, "blog");
    deploy_blog(&d, "shop");
    d.ctl(&["domain", "add", "blog", "example.org"]).ok();
    d.ctl(&["domain", "add", "blog", "www.example.org"]).ok();
    d.ctl(&["domain", "add", "shop", "shop.example"]).ok();

    d.restart();
    for (host, site) in [
        ("example.org", "blog"),
        ("www.example.org", "blog"),
        ("shop.example", "shop"),
    ] {
        let page = http::get(d.addr, host, "/", &[]);
        assert!(
            page.text().contains(&format!("{site} home")),
            "{host} after a restart: {} {}",
            page.status,
            page.text()
        );
    }
    assert_eq!(listed(&d).len(), 3);

    // Removing a site removes its domains, at once and for good.
    d.ctl(&["site", "rm", "blog", "--yes"]).ok();
    for host in ["example.org", "www.example.org"] {
        assert_eq!(http::get(d.addr, host, "/", &[]).status, 404, "{host}");
    }
    let names =
        |d: &Faztd| -> Vec<Value> { listed(d).iter().map(|e| e["domain"].clone()).collect() };
    assert_eq!(names(&d), [json!("shop.example")]);
    // A new site of the same name starts without them.
    deploy_blog(&d, "blog");
    assert_eq!(http::get(d.addr, "example.org", "/", &[]).status, 404);
    d.restart();
    assert_eq!(names(&d), [json!("shop.example")]);
    assert!(http::get(d.addr, "shop.example", "/", &[])
        .text()
        .contains("shop home"));
}
