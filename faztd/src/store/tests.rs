use super::*;
use crate::content;
use redb::{ReadableDatabase, ReadableTableMetadata};

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data.redb")).unwrap();
    (dir, store)
}

fn file(store: &Store, path: &str, data: &[u8]) -> NewFile {
    let content_type = content::content_type_for(path);
    let hash = store.put_blob(data, &content_type).unwrap();
    NewFile {
        path: path.into(),
        hash,
        content_type,
    }
}

#[test]
fn commit_and_read_back() {
    let (_dir, store) = temp_store();
    let files = vec![
        file(&store, "index.html", b"<h1>hi</h1>"),
        file(&store, "a/b.txt", b"bee"),
    ];
    let v = store
        .commit_version("site", &files, true, None, DEFAULT_RETAIN_VERSIONS)
        .unwrap()
        .id;
    let live = store.live_version("site").unwrap().unwrap();
    assert_eq!(live.site.live, v);
    assert!(live.version.spa);
    assert_eq!(live.version.file_count, 2);
    assert_eq!(live.version.total_bytes, 11 + 3);
    let paths: Vec<_> = live.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a/b.txt", "index.html"]);
    assert_eq!(
        store.read_blob(&files[1].hash).unwrap().unwrap(),
        &b"bee"[..]
    );
}

#[test]
fn large_blobs_are_chunked_and_ranges_cross_chunks() {
    let (_dir, store) = temp_store();
    let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 123))
        .map(|i| (i % 251) as u8)
        .collect();
    let hash = store.put_blob(&data, "application/octet-stream").unwrap();
    assert_eq!(store.read_blob(&hash).unwrap().unwrap(), data);
    let (s, e) = (CHUNK_SIZE as u64 - 10, CHUNK_SIZE as u64 * 2 + 5);
    assert_eq!(
        store.read_blob_range(&hash, s, e).unwrap(),
        &data[s as usize..e as usize]
    );
}

#[test]
fn a_missing_blob_fails_the_commit_and_keeps_the_live_version() {
    let (_dir, store) = temp_store();
    let good = vec![file(&store, "index.html", b"v1")];
    let v1 = store
        .commit_version("s", &good, false, None, DEFAULT_RETAIN_VERSIONS)
        .unwrap()
        .id;
    let bad = vec![NewFile {
        path: "x".into(),
        hash: [7; 32],
        content_type: "text/plain".into(),
    }];
    let err = store
        .commit_version("s", &bad, false, None, DEFAULT_RETAIN_VERSIONS)
        .unwrap_err();
    assert!(matches!(err, StoreError::MissingBlob { .. }), "{err}");
    assert_eq!(store.site("s").unwrap().unwrap().live, v1);
}

#[test]
fn retention_keeps_the_last_n_versions() {
    let (_dir, store) = temp_store();
    for i in 0..5 {
        let files = vec![file(&store, "index.html", format!("v{i}").as_bytes())];
        store.commit_version("s", &files, false, None, 3).unwrap();
    }
    let txn = store.db.begin_read().unwrap();
    let versions = txn.open_table(VERSIONS).unwrap();
    assert_eq!(versions.len().unwrap(), 3);
    let files = txn.open_table(FILES).unwrap();
    assert_eq!(files.len().unwrap(), 3);
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    {
        let store = Store::open(&path).unwrap();
        let files = vec![file(&store, "index.html", b"kept")];
        store
            .commit_version("s", &files, false, None, DEFAULT_RETAIN_VERSIONS)
            .unwrap();
        store.set_setting("domain", "example.com").unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(
        store.setting("domain").unwrap().as_deref(),
        Some("example.com")
    );
    assert!(store.live_version("s").unwrap().is_some());
}

#[test]
fn a_second_open_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    let _first = Store::open(&path).unwrap();
    let err = Store::open(&path).err().expect("second open must fail");
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
    assert!(err.to_string().contains("another faztd"), "{err}");
}

#[test]
fn a_corrupt_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let err = Store::open(&path).err().expect("corrupt open must fail");
    assert!(
        err.to_string().contains("corrupt") || err.to_string().contains("cannot open"),
        "{err}"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    {
        let store = Store::open(&path).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA_VERSION, SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path)
        .err()
        .expect("newer schema must be refused");
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
}

#[test]
fn versions_are_numbered_per_site() {
    let (_dir, store) = temp_store();
    let commit = |site: &str, body: &[u8]| {
        let files = vec![file(&store, "index.html", body)];
        store
            .commit_version(site, &files, false, None, DEFAULT_RETAIN_VERSIONS)
            .unwrap()
    };
    assert_eq!(commit("a", b"1").number(), 1);
    assert_eq!(commit("a", b"2").number(), 2);
    let b1 = commit("b", b"1");
    assert_eq!(b1.number(), 1, "another site starts at v1");
    assert_ne!(b1.id, 1, "store ids stay unique across sites");
    // A removed site starts again at v1, under a new id.
    store.remove_site("b").unwrap();
    let again = commit("b", b"again");
    assert_eq!(again.number(), 1);
    assert!(again.id > b1.id);
}

#[test]
fn a_version_stored_before_numbers_goes_by_its_id() {
    let old: VersionRecord = serde_json::from_str(
        r#"{"id": 7, "created_at": 1, "file_count": 1, "total_bytes": 1, "spa": false}"#,
    )
    .unwrap();
    assert_eq!(old.number(), 7);
    let (_dir, store) = temp_store();
    let txn = store.db.begin_write().unwrap();
    {
        let mut versions = txn.open_table(VERSIONS).unwrap();
        versions
            .insert(("legacy", 7), serde_json::to_vec(&old).unwrap().as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
    let files = vec![file(&store, "index.html", b"new")];
    let next = store
        .commit_version("legacy", &files, false, None, DEFAULT_RETAIN_VERSIONS)
        .unwrap();
    assert_eq!(next.number(), 8, "numbering goes on after the old ids");
}
