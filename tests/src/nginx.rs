//! A real nginx on loopback, serving a small static directory: the peer
//! that faztd's answers to odd requests are compared with.
//!
//! It runs with `master_process off` (one process, so stopping it by pid
//! stops everything it started) and every path it writes in its own
//! temporary directory.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::process::{libc_sig, Process};

/// `Some(what to install)` when nginx is not on this machine.
pub fn missing() -> Option<String> {
    crate::require::missing_programs(&[("nginx", "nginx-light")])
}

/// A running nginx; stopped (by pid) and its directory removed when
/// dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    process: Process,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx serving `index.html` ("hello") at `/`. Check
    /// [`missing`] first.
    pub fn start() -> Nginx {
        let binary = crate::require::find_program("nginx").expect("nginx is installed");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("html")).unwrap();
        std::fs::write(d.join("html/index.html"), "hello\n").unwrap();
        let port = crate::free_port();
        // As root nginx would serve as `nobody`, who cannot read a
        // private temporary directory.
        let user = if nix::unistd::geteuid().is_root() {
            "user root;"
        } else {
            ""
        };
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "{user}\nmaster_process off;\ndaemon off;\npid {dir}/nginx.pid;\n\
                 error_log {dir}/error.log;\nevents {{}}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n\
                 proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n\
                 uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
                 server {{ listen 127.0.0.1:{port}; root {dir}/html; }}\n}}\n",
                dir = d.display()
            ),
        )
        .unwrap();
        let process = Process::spawn(
            Command::new(binary)
                .arg("-e")
                .arg(d.join("error.log"))
                .arg("-p")
                .arg(d)
                .arg("-c")
                .arg(d.join("nginx.conf")),
        )
        .expect("nginx starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut nginx = Nginx {
            addr,
            process,
            _dir: dir,
        };
        crate::wait::wait_for(crate::wait::PATIENCE, "nginx to listen", || {
            if let Some(status) = nginx.process.exited() {
                let log = std::fs::read_to_string(nginx._dir.path().join("error.log"));
                panic!(
                    "nginx exited ({status}): {}{}",
                    nginx.process.stderr.text(),
                    log.unwrap_or_default()
                );
            }
            std::net::TcpStream::connect(addr).ok()
        });
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.process.stop(libc_sig::SIGTERM, Duration::from_secs(5));
    }
}
