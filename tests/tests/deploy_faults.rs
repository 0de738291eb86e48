//! Deploys that go wrong: hostile manifests, lying uploads, limits, dropped
//! clients and a daemon killed mid-deploy. In every case the previous
//! version keeps serving, byte for byte, and the next deploy works.

use std::path::Path;
use std::process::Command;

use fazt_e2e::control::{self, begin, chunk_of, commit, ctx, hash, upload};
use fazt_e2e::daemon::{libc_sig, Faztd};
use fazt_e2e::process::Process;
use fazt_e2e::{bin, http, wait_until, PATIENCE};
use fazt_proto::{Chunk, RpcError};

const BASELINE: &[u8] = b"<h1>the good version</h1>";
const MIB: usize = 1024 * 1024;

/// A daemon with site `keep` deployed, whose bytes every test re-checks.
fn daemon_with_baseline() -> (Faztd, tempfile::TempDir) {
    let d = Faztd::start();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), BASELINE).unwrap();
    d.deploy_json(site.path(), "keep");
    assert_baseline(&d);
    (d, site)
}

fn assert_baseline(d: &Faztd) {
    let res = http::get(d.addr, "keep.localhost", "/", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body, BASELINE,
        "the previous version serves byte for byte"
    );
}

#[test]
fn hostile_manifest_paths_are_refused() {
    let (d, _site) = daemon_with_baseline();
    let long = "a/".repeat(600) + "x";
    let cases: &[(&str, &str)] = &[
        ("../x", "climbs"),
        ("a/../../x", "climbs"),
        ("./x", "climbs"),
        ("/etc/passwd", "absolute"),
        ("a\0b", "control character"),
        ("a\\..\\b", "backslash"),
        ("a//b", "empty segment"),
        ("dir/", "empty segment"),
        ("", "empty path"),
        (&long, "longer than"),
    ];
    fazt_e2e::runtime().block_on(async {
        let client = control::greeted(&d.socket()).await;
        for (path, why) in cases {
            let err = begin(&client, "keep", &[(path, b"x")])
                .await
                .expect_err(path);
            assert!(matches!(err, RpcError::Invalid(_)), "{path:?}: {err:?}");
            assert!(err.to_string().contains(why), "{path:?}: {err}");
        }
        // Duplicates and bad site names, too.
        let err = begin(&client, "keep", &[("a", b"1"), ("a", b"2")])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        for site in ["../keep", "Keep", "admin", ""] {
            let refused = begin(&client, site, &[("index.html", b"x")]).await;
            assert!(refused.is_err(), "site {site:?}");
        }
    });
    assert_baseline(&d);
}

#[test]
fn a_blob_that_does_not_match_its_hash_is_refused() {
    let (d, _site) = daemon_with_baseline();
    fazt_e2e::runtime().block_on(async {
        let client = control::greeted(&d.socket()).await;
        let claimed = b"the bytes I promise";
        let plan = begin(&client, "keep", &[("index.html", claimed)])
            .await
            .unwrap();
        assert_eq!(plan.missing, vec![hash(claimed)]);
        let lie = Chunk {
            hash: hash(claimed),
            offset: 0,
            data: b"the bytes I deliver".to_vec(),
        };
        let err = upload(&client, plan.deploy_id, lie).await.unwrap_err();
        assert!(err.to_string().contains("do not match its hash"), "{err}");
        // The failed deploy cannot be committed.
        let err = commit(&client, plan.deploy_id).await.unwrap_err();
        assert!(err.to_string().contains("no open deploy"), "{err}");
    });
    assert_baseline(&d);
}

#[test]
fn a_commit_with_missing_blobs_is_refused() {
    let (d, _site) = daemon_with_baseline();
    fazt_e2e::runtime().block_on(async {
        let client = control::greeted(&d.socket()).await;
        let data = vec![7u8; 3 * MIB];
        let files = [("index.html", &data)];
        let plan = begin(&client, "keep", &files).await.unwrap();
        // Send only the first of three chunks, then commit.
        upload(&client, plan.deploy_id, chunk_of(&data, 0..MIB))
            .await
            .unwrap();
        let err = commit(&client, plan.deploy_id).await.unwrap_err();
        assert!(err.to_string().contains("upload is incomplete"), "{err}");
        // Out-of-order and oversized chunks are refused too.
        let plan = begin(&client, "keep", &files).await.unwrap();
        let skip = Chunk {
            offset: MIB as u64,
            ..chunk_of(&data, 0..MIB)
        };
        let err = upload(&client, plan.deploy_id, skip).await.unwrap_err();
        assert!(err.to_string().contains("expected offset 0"), "{err}");
    });
    assert_baseline(&d);
}

#[test]
fn files_over_the_size_limits_are_refused_with_the_setting_to_change() {
    let (d, _site) = daemon_with_baseline();
    d.ctl(&["config", "set", "max_file_bytes", "1000"]).ok();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), vec![b'x'; 1001]).unwrap();
    let out = d.ctl(&["deploy", site.path().to_str().unwrap(), "--site", "keep"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("over the file size limit"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("max_file_bytes"),
        "says what to change: {}",
        out.stderr
    );
    d.ctl(&["config", "set", "max_files", "1"]).ok();
    d.ctl(&["config", "set", "max_file_bytes", "100000"]).ok();
    std::fs::write(site.path().join("other.html"), b"2").unwrap();
    let out = d.ctl(&["deploy", site.path().to_str().unwrap(), "--site", "keep"]);
    assert!(
        out.stderr.contains("more than the limit of 1"),
        "{}",
        out.stderr
    );
    assert_baseline(&d);
}

#[test]
fn the_handshake_comes_first_and_mismatches_say_what_to_upgrade() {
    let d = Faztd::start();
    fazt_e2e::runtime().block_on(async {
        let client = control::connect(&d.socket()).await;
        let err = client.status(ctx()).await.unwrap().unwrap_err();
        assert!(matches!(err, RpcError::NoHandshake), "{err:?}");
        let err = client
            .hello(ctx(), control::hello(99))
            .await
            .unwrap()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("faztctl 9.9.9 speaks protocol 99"), "{text}");
        assert!(
            text.contains(&format!("speaks {}", fazt_proto::PROTOCOL_VERSION)),
            "{text}"
        );
        assert!(text.contains("upgrade faztd"), "{text}");
        let err = client
            .hello(ctx(), control::hello(0))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("upgrade faztctl"), "{err}");
        // Still refused after a failed handshake.
        assert!(client.sites(ctx()).await.unwrap().is_err());
    });
}

fn big_site(dir: &Path, mib: usize) {
    // Random-looking bytes so nothing compresses or deduplicates.
    let mut block = vec![0u8; MIB];
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("big.bin")).unwrap());
    for i in 0..mib {
        blake3::Hasher::new()
            .update(&(i as u64).to_le_bytes())
            .finalize_xof()
            .fill(&mut block);
        std::io::Write::write_all(&mut out, &block).unwrap();
    }
    std::fs::write(dir.join("index.html"), b"<h1>big</h1>").unwrap();
}

/// Starts `faztctl deploy DIR --site keep` (a big site), and returns once
/// its upload is under way: the daemon's database has grown by 16 MiB.
fn deploy_under_way(d: &Faztd, dir: &Path) -> Process {
    let before = d.db_bytes();
    // (Dropped, e.g. by a failing assertion, it is killed by pid.)
    let deploy = Process::spawn(
        Command::new(bin("faztctl"))
            .args(["--socket", d.socket().to_str().unwrap(), "deploy"])
            .arg(dir)
            .args(["--site", "keep"]),
    )
    .unwrap();
    wait_until(PATIENCE, "the upload to be under way", || {
        d.db_bytes() > before + 16 * MIB as u64
    });
    deploy
}

#[test]
fn a_client_that_disappears_mid_upload_leaves_nothing_behind() {
    let (d, _site) = daemon_with_baseline();
    // A raw client sends part of a blob and drops the connection.
    fazt_e2e::runtime().block_on(async {
        let client = control::greeted(&d.socket()).await;
        let data = vec![9u8; 2 * MIB + 5];
        let plan = begin(&client, "keep", &[("index.html", &data)])
            .await
            .unwrap();
        upload(&client, plan.deploy_id, chunk_of(&data, 0..MIB))
            .await
            .unwrap();
        drop(client);
    });
    // The real faztctl killed in the middle of a large upload.
    let site = tempfile::tempdir().unwrap();
    big_site(site.path(), 64);
    let mut deploy = deploy_under_way(&d, site.path());
    deploy.stop(libc_sig::SIGKILL, PATIENCE);
    assert_baseline(&d);
    // A fresh deploy works.
    let out = d.deploy_json(site.path(), "fresh");
    assert_eq!(out["files"], 2);
    assert_eq!(
        http::get(d.addr, "fresh.localhost", "/", &[]).body,
        b"<h1>big</h1>"
    );
    // Nothing left over: both deploys were cancelled and what they had
    // uploaded was collected.
    wait_until(PATIENCE, "both deploys to be cancelled", || {
        d.log().matches("deploy cancelled").count() >= 2
    });
    d.wait_for_log("the partial uploads collected", |line| {
        line.contains("collected garbage") && !line.contains("orphan_chunks=0")
    });
}

#[test]
fn faztd_killed_mid_deploy_keeps_the_previous_version_and_the_deploy_can_be_redone() {
    let (mut d, _baseline) = daemon_with_baseline();
    let data_dir = d.data_dir.clone();
    let keep_dir = tempfile::tempdir().unwrap();
    let moved = keep_dir.path().join("data");
    let site = tempfile::tempdir().unwrap();
    big_site(site.path(), 96);
    let mut deploy = deploy_under_way(&d, site.path());
    d.kill_hard();
    let status = deploy.wait(PATIENCE).expect("faztctl ends when faztd dies");
    deploy.stderr.wait_closed(PATIENCE);
    let stderr = deploy.stderr.text();
    assert_eq!(
        status.code(),
        Some(1),
        "the deploy failed and says so ({status}): {stderr}"
    );
    assert!(stderr.contains("error:"), "{stderr}");

    std::fs::rename(&data_dir, &moved).unwrap();
    let restarted = Faztd::start_in(&moved, &[]).expect("the database opens after a crash");
    assert_baseline(&restarted);
    let out = restarted.deploy_json(site.path(), "keep");
    assert_eq!(out["files"], 2);
    assert_eq!(
        http::get(restarted.addr, "keep.localhost", "/", &[]).body,
        b"<h1>big</h1>"
    );
}

#[test]
fn a_200_mib_file_deploys_without_holding_it_in_memory() {
    let d = Faztd::start();
    let site = tempfile::tempdir().unwrap();
    big_site(site.path(), 200);
    let before = d.peak_rss_kib();
    let out = d.deploy_json(site.path(), "huge");
    assert_eq!(out["total_bytes"].as_u64(), Some(200 * 1024 * 1024 + 12));
    let peak = d.peak_rss_kib();
    assert!(
        peak < before + 150 * 1024,
        "faztd's peak RSS grew from {before} KiB to {peak} KiB for a 200 MiB upload"
    );
    // Served back byte for byte: compare hashes of a ranged read and the whole.
    let res = http::get(d.addr, "huge.localhost", "/big.bin", &[]);
    assert_eq!(res.status, 200);
    let expected = std::fs::read(site.path().join("big.bin")).unwrap();
    assert_eq!(res.body.len(), expected.len());
    assert!(
        blake3::hash(&res.body) == blake3::hash(&expected),
        "bytes differ"
    );
}
