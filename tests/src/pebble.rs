//! A real ACME CA on loopback: Debian's `pebble` (Let's Encrypt's test
//! server) with `pebble-challtestsrv` as its DNS server, answering every
//! name with 127.0.0.1, so pebble validates challenges against faztd for
//! real: TLS-ALPN-01 on `tls_port`, HTTP-01 on `http_port` (faztd's ports).
//!
//! Two CAs are involved. [`Pebble::ca_pem`] is ours (made with openssl in
//! the temporary directory): pebble's own HTTPS certificate chains to it,
//! and faztd is told to trust it with `--acme-root`. The certificates pebble
//! *issues* chain to a root pebble generates at each start, fetched from its
//! management port ([`Pebble::issuing_root`]).
//!
//! Both processes are stopped by pid when dropped; pebble can be stopped and
//! started again on the same ports ("the CA is down").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{libc_sig, Process};
use crate::wait::{wait_for, PATIENCE};

/// `Some(what to install)` when pebble or openssl is not on this machine.
pub fn missing() -> Option<String> {
    crate::require::missing_programs(&[
        ("pebble", "pebble"),
        ("pebble-challtestsrv", "pebble"),
        ("openssl", "openssl"),
    ])
}

/// How pebble is set up.
#[derive(Debug, Clone, Copy)]
pub struct PebbleOptions {
    /// Where pebble validates HTTP-01 (faztd's plain HTTP port).
    pub http_port: u16,
    /// Where pebble validates TLS-ALPN-01 (faztd's HTTPS port).
    pub tls_port: u16,
    /// Lifetime of issued certificates in seconds (pebble's default: years).
    pub validity_secs: Option<u64>,
}

pub struct Pebble {
    pub acme: SocketAddr,
    pub management: SocketAddr,
    dir: tempfile::TempDir,
    dns: u16,
    pebble: Option<Process>,
    challtestsrv: Process,
}

impl Pebble {
    /// Starts the DNS server and pebble. Check [`missing`] first.
    pub fn start(options: PebbleOptions) -> Pebble {
        let mut pebble = Pebble::prepare(options);
        pebble.start_ca();
        pebble
    }

    /// Makes the certificates and config and starts the DNS server, but not
    /// pebble itself: until [`Pebble::start_ca`], the CA is unreachable.
    pub fn prepare(options: PebbleOptions) -> Pebble {
        let dir = tempfile::tempdir().expect("tempdir");
        make_certificates(dir.path());
        let acme: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
        let management: SocketAddr = ([127, 0, 0, 1], crate::free_port()).into();
        let validity = options
            .validity_secs
            .map(|s| format!(",\n    \"certificateValidityPeriod\": {s}"))
            .unwrap_or_default();
        std::fs::write(
            dir.path().join("pebble.json"),
            format!(
                "{{\n  \"pebble\": {{\n    \"listenAddress\": \"{acme}\",\n    \
                 \"managementListenAddress\": \"{management}\",\n    \
                 \"certificate\": \"{d}/localhost.pem\",\n    \"privateKey\": \"{d}/localhost.key\",\n    \
                 \"httpPort\": {http},\n    \"tlsPort\": {tls},\n    \"ocspResponderURL\": \"\",\n    \
                 \"externalAccountBindingRequired\": false{validity}\n  }}\n}}\n",
                d = dir.path().display(),
                http = options.http_port,
                tls = options.tls_port,
            ),
        )
        .expect("pebble config");
        let dns = crate::free_port();
        let management_dns = crate::free_port();
        let binary = crate::require::find_program("pebble-challtestsrv").expect("installed");
        let challtestsrv = Process::spawn(Command::new(binary).args([
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
            "-dns01",
            &format!("127.0.0.1:{dns}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            &format!("127.0.0.1:{management_dns}"),
        ]))
        .expect("pebble-challtestsrv starts");
        Pebble {
            acme,
            management,
            dir,
            dns,
            pebble: None,
            challtestsrv,
        }
    }

    /// Starts (or restarts) pebble and waits until it listens.
    pub fn start_ca(&mut self) {
        let binary = crate::require::find_program("pebble").expect("installed");
        let process = Process::spawn(
            Command::new(binary)
                .arg("-config")
                .arg(self.dir.path().join("pebble.json"))
                .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns)])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                // Every order validates for real: no authorization reuse.
                .env("PEBBLE_AUTHZREUSE", "0"),
        )
        .expect("pebble starts");
        self.pebble = Some(process);
        let acme = self.acme;
        wait_for(PATIENCE, "pebble to listen", || {
            if let Some(status) = self.pebble.as_mut().and_then(|p| p.exited()) {
                panic!("pebble exited ({status}): {}", self.log());
            }
            std::net::TcpStream::connect(acme).ok()
        });
    }

    /// Stops pebble (the DNS server stays), waiting until it has exited so
    /// its ports are free again.
    pub fn stop_ca(&mut self) {
        if let Some(mut process) = self.pebble.take() {
            process.stop(libc_sig::SIGTERM, Duration::from_secs(10));
        }
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.acme)
    }

    /// Our CA, which pebble's own HTTPS chains to (`--acme-root`).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// What pebble has logged.
    pub fn log(&self) -> String {
        self.pebble
            .as_ref()
            .map(|p| format!("{}{}", p.stdout.text(), p.stderr.text()))
            .unwrap_or_default()
    }

    /// The root the certificates pebble issues chain to (new at each start).
    pub fn issuing_root(&self) -> String {
        let ca = std::fs::read_to_string(self.ca_pem()).expect("ca.pem");
        let fetched = crate::runtime()
            .block_on(crate::tls::get(
                self.management,
                "localhost",
                "/roots/0",
                &[&ca],
            ))
            .expect("pebble's root");
        assert_eq!(fetched.status, 200, "{}", fetched.body);
        fetched.body
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop_ca();
        self.challtestsrv
            .stop(libc_sig::SIGTERM, Duration::from_secs(5));
    }
}

/// A CA and a `localhost`/127.0.0.1 certificate signed by it, for pebble's
/// own HTTPS (Debian's package ships none).
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=fazt test ACME CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "localhost.key",
        "-out",
        "localhost.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
    )
    .expect("ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "localhost.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "localhost.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}
