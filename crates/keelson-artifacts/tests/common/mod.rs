//! Shared by the store test binaries: fixtures, helpers and the conformance suite every backend
//! runs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use keelson_artifacts::{ArtifactError, ArtifactKey, ArtifactStore, ObjectInfo, MARKER_KEY};
use keelson_core::{ErrorKind, HasErrorKind};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// Instantiates the suite for one backend. Extra attributes go on every test: a backend that needs
/// an outside service passes `#[ignore = "..."]` (scripts/test runs ignored tests too), and its
/// `$fixture` panics when the service is not configured, so no test passes without running.
macro_rules! conformance {
    ($backend:ident, $fixture:path $(, #[$attr:meta])* $(,)?) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            $(#[$attr])*
            async fn round_trip_empty() {
                suite::round_trip_empty($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn round_trip_small() {
                suite::round_trip_small($fixture().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn multipart_stream() {
                suite::multipart_stream($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn failed_stream_leaves_nothing() {
                suite::failed_stream_leaves_nothing($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn abandoned_upload_is_cleaned_up() {
                suite::abandoned_upload_is_cleaned_up($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn listing() {
                suite::listing($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn deleting() {
                suite::deleting($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn missing_objects() {
                suite::missing_objects($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn ranges() {
                suite::ranges($fixture().await).await;
            }

            #[tokio::test]
            $(#[$attr])*
            async fn reserved_prefix() {
                suite::reserved_prefix($fixture().await).await;
            }
        }
    };
}

pub const MIB: usize = 1024 * 1024;
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub struct Fixture {
    pub store: ArtifactStore,
    /// Smallest part size the backend takes (S3 wants 5 MiB); multipart tests use it.
    pub part_size: usize,
    /// The local store's root, to look at the files behind the API.
    pub root: Option<PathBuf>,
    pub _dir: Option<TempDir>,
}

impl Fixture {
    /// Files under the local root, relative and sorted; `None` for other backends.
    pub fn files_on_disk(&self) -> Option<Vec<String>> {
        let root = self.root.as_ref()?;
        let mut found = Vec::new();
        walk(root, root, &mut found);
        found.sort();
        Some(found)
    }

    pub fn dirs_on_disk(&self) -> Option<Vec<String>> {
        let root = self.root.as_ref()?;
        let mut found = Vec::new();
        walk_dirs(root, root, &mut found);
        found.sort();
        Some(found)
    }
}

pub fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, found);
        } else {
            let relative = path.strip_prefix(root).unwrap();
            found.push(relative.to_string_lossy().into_owned());
        }
    }
}

pub fn walk_dirs(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            walk_dirs(root, &path, found);
        }
    }
}

pub async fn local_fixture() -> Fixture {
    local_store().await
}

pub async fn local_store() -> Fixture {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("store");
    let url = url::Url::from_file_path(&root).unwrap();
    let store = ArtifactStore::open(url.as_str(), &[]).await.unwrap();
    Fixture { store, part_size: MIB, root: Some(root.canonicalize().unwrap()), _dir: Some(dir) }
}

pub async fn memory_fixture() -> Fixture {
    let store = ArtifactStore::open("memory://", &[]).await.unwrap();
    assert_eq!(store.describe(), "memory://");
    Fixture { store, part_size: MIB, root: None, _dir: None }
}

pub fn key(text: &str) -> ArtifactKey {
    ArtifactKey::parse(text).unwrap()
}

/// Deterministic bytes that do not repeat with any small period.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn chunks_of(data: &[u8], size: usize) -> Vec<Result<Bytes, std::io::Error>> {
    data.chunks(size).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub async fn read_all(store: &ArtifactStore, key: &ArtifactKey) -> Vec<u8> {
    let reader = store.get(key).await.unwrap();
    let size = reader.size();
    let chunks: Vec<Bytes> = reader.into_stream().try_collect().await.unwrap();
    let data: Vec<u8> = chunks.concat();
    assert_eq!(data.len() as u64, size);
    data
}

pub fn keys(infos: &[ObjectInfo]) -> Vec<&str> {
    infos.iter().map(|info| info.key.as_str()).collect()
}

pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, ArtifactError>, expected_key: &str) {
    let error = result.expect_err("expected not found");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error:?}");
    assert!(matches!(&error, ArtifactError::NotFound { key } if key == expected_key), "{error:?}");
}

pub mod suite {
    use super::*;

    pub async fn round_trip_empty(fx: Fixture) {
        let store = &fx.store;
        let empty = key("runs/1/empty");
        let outcome = store.put_bytes(&empty, Bytes::new()).await.unwrap();
        assert_eq!(outcome.size, 0);
        assert_eq!(outcome.sha256, EMPTY_SHA256);
        assert_eq!(outcome.parts, 1);
        assert_eq!(read_all(store, &empty).await, b"");
        assert_eq!(store.get_bytes(&empty).await.unwrap().len(), 0);
        let info = store.head(&empty).await.unwrap();
        assert_eq!(info.key, "runs/1/empty");
        assert_eq!(info.size, 0);
        assert!(info.last_modified_ms.is_some());

        let outcome =
            store.put_stream(&empty, stream::iter(Vec::<Result<Bytes, std::io::Error>>::new())).await.unwrap();
        assert_eq!((outcome.size, outcome.sha256.as_str()), (0, EMPTY_SHA256));
    }

    pub async fn round_trip_small(fx: Fixture) {
        let store = &fx.store;
        for name in ["hello.txt", "dir/file with spaces.txt", "unicode/ü.txt", "odd/%zz", "odd/a.b..c", "odd/tag#v1"] {
            let small = key(name);
            let outcome = store.put_bytes(&small, Bytes::from_static(b"hello world")).await.unwrap();
            assert_eq!(outcome.size, 11);
            assert_eq!(outcome.sha256, sha256_hex(b"hello world"));
            assert_eq!(outcome.parts, 1);
            assert_eq!(read_all(store, &small).await, b"hello world");
            let reader = store.get(&small).await.unwrap();
            assert_eq!(reader.size(), 11);
            assert!(reader.last_modified_ms().is_some());
            assert_eq!(&store.get_bytes(&small).await.unwrap()[..], b"hello world");
            assert_eq!(store.head(&small).await.unwrap().key, name);
        }
        let listed = store.list_recursive(None).await.unwrap();
        assert_eq!(
            keys(&listed),
            ["dir/file with spaces.txt", "hello.txt", "odd/%zz", "odd/a.b..c", "odd/tag#v1", "unicode/ü.txt"]
        );

        // Overwrite replaces.
        let small = key("hello.txt");
        store.put_bytes(&small, Bytes::from_static(b"bye")).await.unwrap();
        assert_eq!(read_all(store, &small).await, b"bye");
    }

    pub async fn multipart_stream(fx: Fixture) {
        let part = fx.part_size;
        let store = fx.store.clone().with_any_part_size(part);
        let data = pseudo_random(20 * MIB);
        let big = key("runs/7/model.bin");
        // An odd chunk size so parts are cut across chunk boundaries.
        let body = stream::iter(chunks_of(&data, 100_003));
        let outcome = store.put_stream(&big, body).await.unwrap();
        assert_eq!(outcome.size, data.len() as u64);
        assert_eq!(outcome.parts, data.len().div_ceil(part));
        assert!(outcome.parts > 1);
        assert_eq!(outcome.sha256, sha256_hex(&data));

        let read = read_all(&store, &big).await;
        assert!(read == data, "multipart object differs from what was sent");
        assert_eq!(store.head(&big).await.unwrap().size, data.len() as u64);

        let range = store.get_range(&big, 5_000_000..5_000_100).await.unwrap();
        assert_eq!(&range[..], &data[5_000_000..5_000_100]);

        // One whole part plus one byte takes the multipart path with two parts; exactly one
        // part stays a single put.
        let exact = key("runs/7/exact");
        let one_part = stream::iter(chunks_of(&data[..part], 4096));
        assert_eq!(store.put_stream(&exact, one_part).await.unwrap().parts, 1);
        let just_over = stream::iter(chunks_of(&data[..part + 1], 4096));
        let outcome = store.put_stream(&exact, just_over).await.unwrap();
        assert_eq!(outcome.parts, 2);
        assert_eq!(read_all(&store, &exact).await, &data[..part + 1]);

        // put_bytes of a large body is cut into parts as well.
        let outcome = store.put_bytes(&exact, Bytes::from(data[..3 * part + 5].to_vec())).await.unwrap();
        assert_eq!(outcome.parts, 4);
        assert_eq!(outcome.sha256, sha256_hex(&data[..3 * part + 5]));
        assert_eq!(read_all(&store, &exact).await, &data[..3 * part + 5]);
    }

    async fn failing_upload(store: &ArtifactStore, target: &ArtifactKey, good_bytes: usize) {
        let data = pseudo_random(good_bytes);
        let mut body = chunks_of(&data, 64 * 1024);
        body.push(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")));
        body.extend(chunks_of(&data, 64 * 1024));
        let error =
            store.put_stream(target, stream::iter(body)).await.expect_err("a failing body must fail the upload");
        assert!(matches!(&error, ArtifactError::UploadBody { key, .. } if key == target.as_str()), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::InvalidArgument);
        assert!(error.to_string().contains("client went away"), "{error}");
    }

    pub async fn failed_stream_leaves_nothing(fx: Fixture) {
        let part = fx.part_size;
        let store = fx.store.clone().with_any_part_size(part);
        let target = key("runs/3/partial.bin");

        // Fails in the multipart phase, after several parts were uploaded.
        failing_upload(&store, &target, 3 * part + part / 2).await;
        assert_not_found(store.head(&target).await, "runs/3/partial.bin");
        assert_not_found(store.get(&target).await, "runs/3/partial.bin");
        // Fails before one part was full.
        failing_upload(&store, &target, 10).await;
        assert_not_found(store.head(&target).await, "runs/3/partial.bin");
        assert!(store.list_recursive(None).await.unwrap().is_empty());

        // A failed overwrite keeps the old object.
        store.put_bytes(&target, Bytes::from_static(b"v1")).await.unwrap();
        failing_upload(&store, &target, 2 * part + 7).await;
        assert_eq!(read_all(&store, &target).await, b"v1");

        if let Some(files) = fx.files_on_disk() {
            // No staged parts are left behind.
            assert_eq!(files, [MARKER_KEY, "runs/3/partial.bin"]);
        }
    }

    pub async fn abandoned_upload_is_cleaned_up(fx: Fixture) {
        let part = fx.part_size;
        let store = fx.store.clone().with_any_part_size(part);
        let target = key("runs/4/abandoned.bin");
        let data = pseudo_random(3 * part);
        let body = stream::iter(chunks_of(&data, 64 * 1024)).chain(stream::pending());
        let upload = store.put_stream(&target, body);
        let outcome = tokio::time::timeout(Duration::from_millis(500), upload).await;
        assert!(outcome.is_err(), "the upload must still be waiting for its body");
        // The abort runs in the background.
        let mut remaining = None;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            remaining = fx.files_on_disk();
            if remaining.as_deref().is_none_or(|files| files == [MARKER_KEY]) {
                break;
            }
        }
        if let Some(files) = remaining {
            assert_eq!(files, [MARKER_KEY]);
        }
        assert_not_found(store.head(&target).await, "runs/4/abandoned.bin");
    }

    pub async fn listing(fx: Fixture) {
        let store = &fx.store;
        for name in ["runs/1/a.txt", "runs/1/b.txt", "runs/1/sub/c.txt", "runs/2/d.txt", "runs10/x", "top.txt"] {
            store.put_bytes(&key(name), Bytes::from(name.to_owned())).await.unwrap();
        }

        let root = store.list(None).await.unwrap();
        assert_eq!(keys(&root.files), ["top.txt"]);
        assert_eq!(root.files[0].size, 7);
        assert_eq!(root.dirs, ["runs", "runs10"], "the marker stays hidden");

        let runs = store.list(Some(&key("runs"))).await.unwrap();
        assert!(runs.files.is_empty());
        assert_eq!(runs.dirs, ["runs/1", "runs/2"]);

        let run1 = store.list(Some(&key("runs/1"))).await.unwrap();
        assert_eq!(keys(&run1.files), ["runs/1/a.txt", "runs/1/b.txt"]);
        assert_eq!(run1.dirs, ["runs/1/sub"]);

        let missing = store.list(Some(&key("nothing/here"))).await.unwrap();
        assert!(missing.files.is_empty() && missing.dirs.is_empty());
        // A prefix that names an object lists nothing below it.
        let file = store.list(Some(&key("top.txt"))).await.unwrap();
        assert!(file.files.is_empty() && file.dirs.is_empty(), "{file:?}");

        let all_runs = store.list_recursive(Some(&key("runs"))).await.unwrap();
        assert_eq!(keys(&all_runs), ["runs/1/a.txt", "runs/1/b.txt", "runs/1/sub/c.txt", "runs/2/d.txt"]);
        let everything = store.list_recursive(None).await.unwrap();
        assert_eq!(everything.len(), 6, "{everything:?}");
        assert!(everything.iter().all(|info| !info.key.starts_with(".keelson")));
        assert!(store.list_recursive(Some(&key("top.txt"))).await.unwrap().is_empty());

        // The marker is still reachable under its own prefix.
        let own = store.list_recursive(Some(&key(".keelson"))).await.unwrap();
        assert_eq!(keys(&own), [MARKER_KEY]);
    }

    pub async fn deleting(fx: Fixture) {
        let store = &fx.store;
        for name in ["runs/1/a.txt", "runs/1/sub/b.txt", "runs/1/sub/deeper/c.txt", "runs/10/d.txt", "runs/1.txt"] {
            store.put_bytes(&key(name), Bytes::from_static(b"x")).await.unwrap();
        }
        store.delete(&key("runs/1/a.txt")).await.unwrap();
        assert_not_found(store.head(&key("runs/1/a.txt")).await, "runs/1/a.txt");
        assert_not_found(store.delete(&key("runs/1/a.txt")).await, "runs/1/a.txt");
        assert_not_found(store.delete(&key("never/was")).await, "never/was");

        assert_eq!(store.delete_prefix(&key("runs/1")).await.unwrap(), 2);
        assert_eq!(keys(&store.list_recursive(None).await.unwrap()), ["runs/1.txt", "runs/10/d.txt"]);
        assert_eq!(store.delete_prefix(&key("runs/1")).await.unwrap(), 0);
        assert_eq!(store.delete_prefix(&key("nothing")).await.unwrap(), 0);
        // Segment-wise: `runs/1.txt` is not below `runs/1`, and an object named like the
        // prefix is not below it either.
        assert_eq!(store.delete_prefix(&key("runs/1.txt")).await.unwrap(), 0);
        assert!(store.head(&key("runs/1.txt")).await.is_ok());

        if let Some(dirs) = fx.dirs_on_disk() {
            assert_eq!(dirs, [".keelson", "runs", "runs/10"], "emptied directories are removed");
        }
        assert_eq!(store.delete_prefix(&key("runs")).await.unwrap(), 2);
        assert!(store.list_recursive(None).await.unwrap().is_empty());
        store.check().await.unwrap();
    }

    pub async fn missing_objects(fx: Fixture) {
        let store = &fx.store;
        let missing = key("no/such/object");
        assert_not_found(store.head(&missing).await, "no/such/object");
        assert_not_found(store.get(&missing).await, "no/such/object");
        assert_not_found(store.get_bytes(&missing).await, "no/such/object");
        assert_not_found(store.get_range(&missing, 0..10).await, "no/such/object");
        let error = store.get(&missing).await.unwrap_err();
        assert_eq!(error.to_string(), "artifact \"no/such/object\" not found");
    }

    pub async fn ranges(fx: Fixture) {
        let store = &fx.store;
        let target = key("r");
        store.put_bytes(&target, Bytes::from_static(b"0123456789")).await.unwrap();
        assert_eq!(&store.get_range(&target, 2..5).await.unwrap()[..], b"234");
        assert_eq!(&store.get_range(&target, 8..100).await.unwrap()[..], b"89");
        for (start, end) in [(10, 20), (50, 60), (5, 5), (7, 3)] {
            let range = start..end;
            let error = store.get_range(&target, range.clone()).await.unwrap_err();
            assert!(matches!(error, ArtifactError::InvalidRange { .. }), "{range:?}: {error:?}");
            assert_eq!(error.kind(), ErrorKind::InvalidArgument);
        }
    }

    pub async fn reserved_prefix(fx: Fixture) {
        let store = &fx.store;
        let marker = key(MARKER_KEY);
        for result in [
            store.put_bytes(&marker, Bytes::new()).await.map(drop),
            store.delete(&marker).await,
            store.delete_prefix(&key(".keelson")).await.map(drop),
        ] {
            let error = result.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error}");
            assert!(error.to_string().contains("reserved"), "{error}");
        }
        assert!(store.head(&marker).await.is_ok());
        store.check().await.unwrap();
        // Only the exact segment is reserved.
        store.put_bytes(&key(".keelsonx/a"), Bytes::new()).await.unwrap();
    }
}
