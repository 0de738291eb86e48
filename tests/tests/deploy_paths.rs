//! A manifest path the daemon's old message code cut inside a multi-byte
//! character: the handler panicked, and faztctl waited out its 30-minute
//! deadline. Now the client gets a clear refusal at once, and the daemon
//! goes on serving and deploying.

use std::time::{Duration, Instant};

use fazt_e2e::control::{self, hash};
use fazt_e2e::daemon::Faztd;
use fazt_e2e::http;
use fazt_proto::{DeployManifest, ManifestEntry, RpcError};

#[test]
fn a_long_path_with_a_multibyte_character_is_refused_at_once() {
    let d = Faztd::start();
    // 39 ASCII bytes, then 'é' (2 bytes) across byte 40, then enough to pass 1,024 bytes.
    let path = format!("{}é{}", "a".repeat(39), "b".repeat(1100));
    fazt_e2e::runtime().block_on(async {
        let client = control::greeted(&d.socket()).await;
        let manifest = DeployManifest {
            site: "paths".into(),
            files: vec![ManifestEntry {
                path: path.clone(),
                hash: hash(b"x"),
                size: 1,
            }],
            force: false,
        };
        // A short deadline: the answer must come at once, not at a timeout.
        let mut ctx = tarpc::context::current();
        ctx.deadline = Instant::now() + Duration::from_secs(10);
        let err = client
            .begin_deploy(ctx, manifest)
            .await
            .expect("the daemon answers (it used to drop the request)")
            .expect_err("the path is refused");
        assert!(matches!(err, RpcError::Invalid(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("longer than 1024 bytes"), "{text}");
        assert!(text.contains("aaaaé") || text.contains("aaa"), "{text}");
        assert!(
            text.len() < 300,
            "the message quotes a short prefix: {text}"
        );
    });
    // The daemon is unharmed: it serves, and a normal deploy works.
    assert_eq!(http::get(d.addr, "demo.localhost", "/", &[]).status, 200);
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), b"fine").unwrap();
    d.ctl(&["deploy", site.path().to_str().unwrap(), "--site", "paths"])
        .ok();
    assert_eq!(http::get(d.addr, "paths.localhost", "/", &[]).body, b"fine");
}
