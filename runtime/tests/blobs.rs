//! The blob store against a real local directory: content addressing, streaming with a
//! limit, and nothing left behind on failure, including a dropped upload (A5).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use cruxlog_runtime::blobs::{BlobConfig, BlobError, BlobStore};
use futures::{StreamExt as _, stream};
use sha2::{Digest as _, Sha256};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn chunks(count: usize, size: usize) -> Vec<Result<Bytes, std::io::Error>> {
    (0..count)
        .map(|i| Ok(Bytes::from(vec![(i % 251) as u8; size])))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_stream_lands_at_its_hash_and_comes_back_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::open(&BlobConfig {
        url: format!("file://{}", dir.path().display()),
        ..BlobConfig::default()
    })
    .expect("store");
    // 12 MiB in 1 MiB chunks: three multipart parts.
    let parts = chunks(12, 1 << 20);
    let expected: Vec<u8> = parts
        .iter()
        .flat_map(|c| c.as_ref().expect("chunk").to_vec())
        .collect();
    let stored = store
        .put_stream("videos", stream::iter(parts), 64 << 20)
        .await
        .expect("stored");
    let hash = sha256_hex(&expected);
    assert_eq!(stored.sha256, hash);
    assert_eq!(stored.size, expected.len() as u64);
    assert_eq!(stored.key, format!("videos/sha256/{}/{hash}", &hash[..2]));
    assert!(store.exists(&stored.key).await.expect("head"));

    let again = store
        .put_stream("videos", stream::iter(chunks(12, 1 << 20)), 64 << 20)
        .await
        .expect("an identical object is fine");
    assert_eq!(again, stored);
    assert_eq!(
        files_under(dir.path()).len(),
        1,
        "one object, no staging left"
    );

    let out = dir.path().join("copy.bin");
    let fetched = store.get_to_file(&stored.key, &out).await.expect("fetched");
    assert_eq!(fetched, stored);
    assert_eq!(std::fs::read(&out).expect("file"), expected);

    let from_file = store.put_file("analyses", &out).await.expect("put_file");
    assert_eq!(from_file.sha256, hash);
    assert!(from_file.key.starts_with("analyses/sha256/"));

    store.delete(&stored.key).await.expect("deleted");
    store
        .delete(&stored.key)
        .await
        .expect("deleting twice is fine");
    assert!(!store.exists(&stored.key).await.expect("head"));
    assert!(matches!(
        store.get_to_file(&stored.key, &out).await,
        Err(BlobError::NotFound(_))
    ));
}

#[tokio::test]
async fn too_large_and_failing_streams_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::local(dir.path()).expect("store");
    let error = store
        .put_stream("videos", stream::iter(chunks(8, 1 << 20)), 6 << 20)
        .await
        .expect_err("over the limit");
    assert!(
        matches!(error, BlobError::TooLarge { limit } if limit == 6 << 20),
        "{error}"
    );

    let mut broken = chunks(7, 1 << 20);
    broken.push(Err(std::io::Error::other("client went away")));
    let error = store
        .put_stream("videos", stream::iter(broken), 64 << 20)
        .await
        .expect_err("source failed");
    assert!(matches!(error, BlobError::Source(_)), "{error}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
}

#[tokio::test]
async fn a_dropped_upload_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::local(dir.path()).expect("store");
    // Six parts arrive, then the client stalls forever; the request handler gives up.
    let stalled = stream::iter(chunks(6, 1 << 20)).chain(stream::pending());
    let upload = store.put_stream("videos", stalled, 64 << 20);
    let timed_out = tokio::time::timeout(Duration::from_millis(500), upload).await;
    assert!(timed_out.is_err(), "the upload was still waiting");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
}

#[tokio::test]
async fn sweeping_removes_staging_left_by_a_killed_process_and_corruption_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = BlobStore::local(dir.path()).expect("store");
    // What a process killed mid-upload leaves: a staging object and a half-written part file.
    let staging = dir.path().join("_staging");
    std::fs::create_dir_all(&staging).expect("dir");
    std::fs::write(staging.join("0b6c4f7e"), b"finished but never published").expect("write");
    std::fs::write(staging.join("5d1a9e20#1"), b"half a part").expect("write");
    assert_eq!(
        store
            .sweep_staging(Duration::from_secs(600))
            .await
            .expect("sweep"),
        0,
        "fresh staging may belong to a running upload"
    );
    assert_eq!(store.sweep_staging(Duration::ZERO).await.expect("sweep"), 2);
    assert!(files_under(dir.path()).is_empty());

    let stored = store
        .put_stream("images", stream::iter(chunks(1, 1000)), 1 << 20)
        .await
        .expect("stored");
    let on_disk = dir.path().join(&stored.key);
    std::fs::write(&on_disk, b"bit rot").expect("tamper");
    let out = dir.path().join("out.bin");
    assert!(matches!(
        store.get_to_file(&stored.key, &out).await,
        Err(BlobError::Corrupt { .. })
    ));
    assert!(!out.exists(), "a corrupt download is removed");
}
