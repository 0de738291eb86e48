//! HTTPS against a real ACME CA: Debian's pebble on loopback, validating
//! every challenge against faztd for real (TLS-ALPN-01 on faztd's HTTPS
//! port, HTTP-01 on its HTTP port; no `PEBBLE_VA_ALWAYS_VALID`), with
//! pebble-challtestsrv resolving every name to 127.0.0.1.
//!
//! The instance's domain is `fazt.test`: `https on` accepts it (a private
//! CA can validate it), where `auto` would stay on plain HTTP.

use std::net::SocketAddr;

use fazt_e2e::daemon::Faztd;
use fazt_e2e::free_port;
use fazt_e2e::pebble::{Pebble, PebbleOptions};
use fazt_e2e::{http, skip_unless, tls, PATIENCE};

const DOMAIN: &str = "fazt.test";

/// A faztd with HTTPS on, pointed at a pebble.
struct Setup {
    pebble: Pebble,
    http: SocketAddr,
    https: SocketAddr,
    data: tempfile::TempDir,
}

impl Setup {
    /// Picks faztd's ports and prepares pebble for them (`ca_up`: started).
    fn new(ca_up: bool, validity_secs: Option<u64>) -> Setup {
        let (http, https) = (free_port(), free_port());
        let options = PebbleOptions {
            http_port: http,
            tls_port: https,
            validity_secs,
        };
        let pebble = if ca_up {
            Pebble::start(options)
        } else {
            Pebble::prepare(options)
        };
        Setup {
            pebble,
            http: ([127, 0, 0, 1], http).into(),
            https: ([127, 0, 0, 1], https).into(),
            data: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn faztd(&self, extra: &[&str]) -> Faztd {
        let (http, https) = (self.http.to_string(), self.https.to_string());
        let directory = self.pebble.directory();
        let root = self.pebble.ca_pem();
        let mut args = vec![
            "--listen",
            &http,
            "--https",
            "on",
            "--listen-https",
            &https,
            "--domain",
            DOMAIN,
            "--acme-directory",
            &directory,
            "--acme-root",
            root.to_str().expect("UTF-8 path"),
        ];
        args.extend(extra);
        Faztd::start_in(self.data.path(), &args).expect("faztd starts with https on")
    }
}

/// Waits until faztd logs that `name`'s certificate is issued.
fn wait_issued(faztd: &Faztd, name: &str) {
    let wanted = format!("name={name} ");
    faztd.wait_for_log(&format!("a certificate issued for {name}"), |line| {
        line.contains("certificate issued and stored") && line.contains(&wanted)
    });
}

/// ACME orders started, as the log says (one line per order).
fn orders_for(log: &str, name: &str) -> usize {
    let wanted = format!("name={name} ");
    log.lines()
        .filter(|l| l.contains("ACME order started") && l.contains(&wanted))
        .count()
}

/// New orders pebble received (it logs one `POST /order-plz` each).
fn pebble_orders(pebble: &Pebble) -> usize {
    pebble.log().matches("POST /order-plz").count()
}

/// Waits until every name faztd certifies has a certificate.
fn wait_all_issued(faztd: &Faztd) {
    fazt_e2e::wait_until(PATIENCE, "every name to have its certificate", || {
        let status = faztd.ctl(&["status", "--json"]).ok().json();
        status["daemon"]["certificates"]
            .as_array()
            .is_some_and(|all| all.iter().all(|c| c["valid_until"].as_u64().is_some()))
    });
}

/// `faztctl status --json`'s entry for `name`'s certificate.
fn certificate_status(faztd: &Faztd, name: &str) -> serde_json::Value {
    let status = faztd.ctl(&["status", "--json"]).ok().json();
    status["daemon"]["certificates"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no certificate for {name} in status: {status}"))
}

fn deploy_blog(faztd: &Faztd) -> tempfile::TempDir {
    faztd.deploy_files(
        "blog",
        &[
            ("index.html", "<h1>blog over tls</h1>\n"),
            (
                "api/hello.js",
                "export default async (req) => ({ hello: req.query.name });\n",
            ),
        ],
    )
}

#[test]
fn tls_alpn_issuance_h2_wss_redirect_hsts_unknown_sni_and_restart() {
    skip_unless!(fazt_e2e::pebble::missing());
    let setup = Setup::new(true, None);
    let faztd = setup.faztd(&[]);
    let https_line = faztd
        .banner
        .iter()
        .find(|l| l.starts_with("https: listening on"))
        .cloned();
    assert!(https_line.is_some(), "banner: {:?}", faztd.banner);
    // The domain (root site) and a site deployed while running.
    wait_issued(&faztd, DOMAIN);
    let _site = deploy_blog(&faztd);
    wait_issued(&faztd, "blog.fazt.test");
    let root = setup.pebble.issuing_root();
    let rt = fazt_e2e::runtime();
    let blog = certificate_status(&faztd, "blog.fazt.test");
    assert!(blog["valid_until"].as_u64().is_some(), "{blog}");
    assert!(
        blog["renew_at"].as_u64() < blog["valid_until"].as_u64(),
        "{blog}"
    );
    assert!(blog["last_error"].is_null(), "{blog}");

    // The chain reaches pebble's root and names the host (rustls checks
    // both), HTTP/2 was negotiated, and HSTS is on.
    let got = rt
        .block_on(tls::get(setup.https, "blog.fazt.test", "/", &[&root]))
        .expect("GET over TLS");
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.version, hyper::Version::HTTP_2);
    assert!(got.body.contains("blog over tls"), "{}", got.body);
    assert_eq!(
        got.headers
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some("max-age=31536000")
    );
    // Functions over HTTP/2 too.
    let function = rt
        .block_on(tls::get(
            setup.https,
            "blog.fazt.test",
            "/api/hello?name=h2",
            &[&root],
        ))
        .expect("a function over TLS");
    assert_eq!(function.version, hyper::Version::HTTP_2);
    assert_eq!(function.status, 200, "{function:?}");
    assert!(
        function.body.contains(r#""hello":"h2""#),
        "{}",
        function.body
    );
    let root_site = rt
        .block_on(tls::get(setup.https, DOMAIN, "/_fazt/health", &[&root]))
        .expect("the domain over TLS");
    assert_eq!(root_site.status, 200, "{root_site:?}");

    // WebSockets over TLS.
    let subscribed = rt
        .block_on(tls::wss_subscribe(
            setup.https,
            "blog.fazt.test",
            "news",
            &[&root],
        ))
        .expect("wss");
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");

    // Port 80: certified hosts go to HTTPS, path and query kept.
    let redirect = http::get(setup.http, "blog.fazt.test", "/a/b?x=1&y=2", &[]);
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://blog.fazt.test:{}/a/b?x=1&y=2", setup.https.port()).as_str())
    );

    // An unknown name gets the instance certificate (so the client, which
    // checks names, refuses it) and never an order: neither faztd's log
    // nor pebble's (one `POST /order-plz` per new order) shows one, once
    // every name faztd serves has its certificate.
    wait_all_issued(&faztd);
    let orders_at_pebble = pebble_orders(&setup.pebble);
    let orders_before = faztd.log().matches("ACME order started").count();
    let err = rt
        .block_on(tls::get(setup.https, "junk.fazt.test", "/", &[&root]))
        .expect_err("no certificate names junk.fazt.test");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for"),
        "{err}"
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        pebble_orders(&setup.pebble),
        orders_at_pebble,
        "pebble saw an order"
    );
    let log = faztd.log();
    assert_eq!(orders_for(&log, "junk.fazt.test"), 0, "{log}");
    assert_eq!(log.matches("ACME order started").count(), orders_before);

    // A removed site's name leaves the resolver at once (its host then
    // gets the instance certificate); deployed again, its stored
    // certificate serves again, with no new order.
    faztd.ctl(&["site", "rm", "blog", "--yes"]).ok();
    fazt_e2e::wait_until(PATIENCE, "blog's certificate to stop serving", || {
        rt.block_on(tls::get(setup.https, "blog.fazt.test", "/", &[&root]))
            .is_err()
    });
    let _again = deploy_blog(&faztd);
    fazt_e2e::wait_until(PATIENCE, "blog's stored certificate to serve again", || {
        rt.block_on(tls::get(setup.https, "blog.fazt.test", "/", &[&root]))
            .is_ok_and(|got| got.status == 200)
    });
    assert_eq!(orders_for(&faztd.log(), "blog.fazt.test"), 1);

    // A restart on the same data serves the stored certificates at once and
    // orders nothing.
    let orders = orders_for(&log, DOMAIN) + orders_for(&log, "blog.fazt.test");
    assert_eq!(orders, 2, "one order each: {log}");
    let before_restart = pebble_orders(&setup.pebble);
    drop(faztd);
    let faztd = setup.faztd(&[]);
    let started = faztd.wait_for_log("the certificate manager's start", |l| {
        l.contains("tls: certificate manager started")
    });
    assert!(started.contains("to_order=0"), "{started}");
    let again = rt
        .block_on(tls::get(setup.https, "blog.fazt.test", "/", &[&root]))
        .expect("GET after restart");
    assert_eq!(again.status, 200);
    assert_eq!(
        faztd.log().matches("ACME order started").count(),
        0,
        "{}",
        faztd.log()
    );
    assert_eq!(
        pebble_orders(&setup.pebble),
        before_restart,
        "pebble saw an order after the restart"
    );
}

/// A custom domain is certified like the site's own name, served over TLS,
/// shown with its certificate in `domain list`, and no longer served once
/// removed.
#[test]
fn custom_domains_are_certified_and_dropped() {
    skip_unless!(fazt_e2e::pebble::missing());
    let setup = Setup::new(true, None);
    let faztd = setup.faztd(&[]);
    let _site = deploy_blog(&faztd);
    faztd
        .ctl(&["domain", "add", "blog", "shop.example.org"])
        .ok();
    wait_issued(&faztd, "shop.example.org");
    let root = setup.pebble.issuing_root();
    let rt = fazt_e2e::runtime();
    let got = rt
        .block_on(tls::get(setup.https, "shop.example.org", "/", &[&root]))
        .expect("the custom domain over TLS");
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.contains("blog over tls"), "{}", got.body);

    let list = faztd.ctl(&["domain", "list", "--json"]).ok().json();
    let entry = &list[0];
    assert_eq!(entry["domain"], "shop.example.org", "{list}");
    assert_eq!(
        entry["url"],
        format!("https://shop.example.org:{}/", setup.https.port()),
        "{list}"
    );
    assert!(
        entry["certificate"]["valid_until"].as_u64().is_some(),
        "{list}"
    );

    faztd.ctl(&["domain", "rm", "shop.example.org"]).ok();
    let status = faztd.ctl(&["status", "--json"]).ok().json();
    let names: Vec<&str> = status["daemon"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(!names.contains(&"shop.example.org"), "{names:?}");
    let err = rt
        .block_on(tls::get(setup.https, "shop.example.org", "/", &[&root]))
        .expect_err("a removed domain's certificate is no longer served");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for"),
        "{err}"
    );
}

#[test]
fn http01_issuance() {
    skip_unless!(fazt_e2e::pebble::missing());
    let setup = Setup::new(true, None);
    let faztd = setup.faztd(&["--acme-challenge", "http-01"]);
    wait_issued(&faztd, DOMAIN);
    let root = setup.pebble.issuing_root();
    let got = fazt_e2e::runtime()
        .block_on(tls::get(setup.https, DOMAIN, "/_fazt/health", &[&root]))
        .expect("GET over TLS");
    assert_eq!(got.status, 200, "{got:?}");
    assert!(faztd.log().contains("challenge=http-01"), "{}", faztd.log());
}

#[test]
fn ca_down_at_start_then_back() {
    skip_unless!(fazt_e2e::pebble::missing());
    let mut setup = Setup::new(false, None);
    let faztd = setup.faztd(&[]);
    faztd.wait_for_log("a failed order for the domain", |l| {
        l.contains("cannot get a certificate") && l.contains("name=fazt.test ")
    });
    let failing = certificate_status(&faztd, DOMAIN);
    assert!(failing["valid_until"].is_null(), "{failing}");
    assert!(
        failing["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot use the ACME server")),
        "{failing}"
    );
    // Meanwhile plain HTTP serves the sites (no redirect without a
    // certificate).
    let plain = http::get(setup.http, DOMAIN, "/_fazt/health", &[]);
    assert_eq!(plain.status, 200, "{}", plain.text());
    setup.pebble.start_ca();
    wait_issued(&faztd, DOMAIN);
    let root = setup.pebble.issuing_root();
    let got = fazt_e2e::runtime()
        .block_on(tls::get(setup.https, DOMAIN, "/_fazt/health", &[&root]))
        .expect("GET over TLS once the CA is back");
    assert_eq!(got.status, 200);
    let redirect = http::get(setup.http, DOMAIN, "/", &[]);
    assert_eq!(redirect.status, 301);
}

#[test]
fn short_lived_certificates_are_renewed() {
    skip_unless!(fazt_e2e::pebble::missing());
    // Pebble issues 30-second certificates: renewal is due after 20.
    let setup = Setup::new(true, Some(30));
    let faztd = setup.faztd(&[]);
    wait_issued(&faztd, DOMAIN);
    fazt_e2e::wait_until(
        PATIENCE + PATIENCE,
        "a renewal of the domain's certificate",
        || {
            faztd
                .log()
                .lines()
                .filter(|l| {
                    l.contains("certificate issued and stored") && l.contains("name=fazt.test ")
                })
                .count()
                >= 2
        },
    );
    let root = setup.pebble.issuing_root();
    let got = fazt_e2e::runtime()
        .block_on(tls::get(setup.https, DOMAIN, "/_fazt/health", &[&root]))
        .expect("GET with the renewed certificate");
    assert_eq!(got.status, 200);
}

#[test]
fn https_on_with_an_ip_domain_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let (code, log) = fazt_e2e::daemon::faztd_refusing(
        data.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--https",
            "on",
            "--domain",
            "127.0.0.1",
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("is an IP address"), "{log}");
}
