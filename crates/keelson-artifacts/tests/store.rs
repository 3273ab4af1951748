//! One conformance suite run against the local and the in-memory backend, plus tests of what
//! only one backend can show (files on disk, URL handling).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use bytes::Bytes;
use common::*;
use keelson_artifacts::{ArtifactError, ArtifactStore, DEFAULT_PART_SIZE, MARKER_KEY};
use keelson_core::{ErrorKind, HasErrorKind};
use tempfile::TempDir;

conformance!(local, local_fixture);
conformance!(memory, memory_fixture);

#[tokio::test]
async fn file_url_prefix_roots_every_key() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("x").join("sub");
    let url = format!("file://{}", root.display());
    let store = ArtifactStore::open(&url, &[]).await.unwrap();
    let canonical = root.canonicalize().unwrap();
    assert_eq!(store.describe(), format!("file://{}", canonical.display()));

    store.put_bytes(&key("a"), Bytes::from_static(b"in sub")).await.unwrap();
    assert_eq!(std::fs::read(canonical.join("a")).unwrap(), b"in sub");
    store.put_bytes(&key("runs/1/m.bin"), Bytes::from_static(b"m")).await.unwrap();
    assert_eq!(std::fs::read(canonical.join("runs/1/m.bin")).unwrap(), b"m");
    assert!(canonical.join(MARKER_KEY).is_file());
    // Nothing escaped the prefix.
    let mut outside = Vec::new();
    walk(dir.path(), dir.path(), &mut outside);
    assert!(outside.iter().all(|path| path.starts_with("x/sub/")), "{outside:?}");
}

#[tokio::test]
async fn local_opens_relative_and_existing_roots() {
    let dir = TempDir::new().unwrap();
    let first = ArtifactStore::local(dir.path()).await.unwrap();
    first.put_bytes(&key("kept"), Bytes::from_static(b"1")).await.unwrap();
    let again = ArtifactStore::local(dir.path()).await.unwrap();
    assert_eq!(&again.get_bytes(&key("kept")).await.unwrap()[..], b"1");
    assert_eq!(again.part_size(), DEFAULT_PART_SIZE);
}

#[tokio::test]
async fn check_fails_after_the_root_is_removed() {
    let fx = local_store().await;
    fx.store.check().await.unwrap();
    std::fs::remove_dir_all(fx.root.as_ref().unwrap()).unwrap();
    let error = fx.store.check().await.unwrap_err();
    assert!(matches!(error, ArtifactError::NotReady { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("file://"), "{error}");
}

#[tokio::test]
async fn local_root_that_is_a_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"not a dir").unwrap();
    let error = ArtifactStore::local(&file).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
}

#[tokio::test]
async fn memory_url_with_prefix() {
    let store = ArtifactStore::open("memory:///team/a", &[]).await.unwrap();
    assert_eq!(store.describe(), "memory:///team/a");
    store.put_bytes(&key("x"), Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(keys(&store.list_recursive(None).await.unwrap()), ["x"]);
    store.check().await.unwrap();
}

#[tokio::test]
async fn bad_urls_and_options_are_refused() {
    let no_options: &[(String, String)] = &[];
    type Options<'a> = &'a [(String, String)];
    let cases: &[(&str, Options, &str)] = &[
        ("ftp://host/x", no_options, "scheme \"ftp\" is not supported"),
        ("not a url", no_options, "not a url"),
        ("file://host/x", no_options, "must not name a host"),
        ("memory://name", no_options, "no host"),
        ("file:///tmp/x", &[("aws_region".to_owned(), "x".to_owned())], "take no options"),
        ("s3://bucket/a%2Fb", no_options, "percent-encoded"),
        ("s3://bucket/a/../b", no_options, "dot segments"),
        ("file:///tmp/a/./b", no_options, "dot segments"),
        ("s3://bucket/p?x-amz-security-token=abc", no_options, "query"),
        (
            "s3://bucket/p",
            &[("aws_secret_acces_key".to_owned(), "x".to_owned())],
            "\"aws_secret_acces_key\" is not known",
        ),
        ("gs://bucket/p", &[("aws_region".to_owned(), "x".to_owned())], "not known to gs stores"),
        ("az://container/p", &[("google_service_account".to_owned(), "x".to_owned())], "not known to az stores"),
    ];
    for (url, options, fragment) in cases {
        let error = ArtifactStore::open(url, options).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{url}: {error:?}");
        assert!(error.to_string().contains(fragment), "{url}: {error}");
        assert!(!error.to_string().contains("abc"), "{url}: {error}");
    }

    let error = ArtifactStore::open("s3://user:hunter2@bucket/p", &[("aws_bogus".to_owned(), "x".to_owned())])
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn part_size_is_bounded() {
    let store = ArtifactStore::open("memory://", &[]).await.unwrap();
    assert!(store.clone().with_part_size(MIB).is_err());
    assert!(store.clone().with_part_size(6 * 1024 * 1024 * 1024).is_err());
    assert_eq!(store.with_part_size(16 * MIB).unwrap().part_size(), 16 * MIB);
}

/// A workspace's store sees only its own objects, none of the root's or another workspace's,
/// and the root cannot name them; deleting a workspace removes exactly its objects.
async fn workspaces_are_isolated(root: ArtifactStore) {
    root.put_bytes(&key("shared/a.txt"), Bytes::from_static(b"root")).await.unwrap();
    let team_a = root.for_workspace("team-a").await.unwrap();
    let team_b = root.for_workspace("team-b").await.unwrap();
    team_a.put_bytes(&key("shared/a.txt"), Bytes::from_static(b"team a")).await.unwrap();
    team_b.put_bytes(&key("runs/1/m.bin"), Bytes::from_static(b"team b")).await.unwrap();

    assert_eq!(root.get_bytes(&key("shared/a.txt")).await.unwrap(), Bytes::from_static(b"root"));
    assert_eq!(team_a.get_bytes(&key("shared/a.txt")).await.unwrap(), Bytes::from_static(b"team a"));
    assert!(team_b.get_bytes(&key("shared/a.txt")).await.is_err());
    assert!(team_a.get_bytes(&key("runs/1/m.bin")).await.is_err());
    // The root lists neither workspace, and cannot write into the reserved prefix that holds them.
    let listed = root.list(None).await.unwrap();
    assert!(listed.dirs.iter().all(|p| !p.starts_with(".keelson")), "{:?}", listed.dirs);
    assert!(root.put_bytes(&key(".keelson/workspaces/team-b/runs/1/m.bin"), Bytes::new()).await.is_err());
    assert!(root.for_workspace("../escape").await.is_err());
    assert!(root.for_workspace("a/b").await.is_err());

    assert!(root.delete_workspace("team-a").await.unwrap() >= 1);
    assert!(team_a.get_bytes(&key("shared/a.txt")).await.is_err());
    assert_eq!(team_b.get_bytes(&key("runs/1/m.bin")).await.unwrap(), Bytes::from_static(b"team b"));
    assert_eq!(root.get_bytes(&key("shared/a.txt")).await.unwrap(), Bytes::from_static(b"root"));
}

#[tokio::test]
async fn workspaces_are_isolated_on_local_stores() {
    let dir = TempDir::new().unwrap();
    workspaces_are_isolated(ArtifactStore::local(dir.path()).await.unwrap()).await;
}

#[tokio::test]
async fn workspaces_are_isolated_on_object_stores() {
    workspaces_are_isolated(ArtifactStore::open("memory:///bucket-root", &[]).await.unwrap()).await;
}
