//! The conformance suite against an S3-compatible server (moto's `moto_server` from PyPI), plus
//! what only S3 can show: the URL prefix inside a bucket, unfinished multipart uploads, missing
//! buckets. Every test is `#[ignore]`d and needs `KEELSON_TEST_S3_ENDPOINT` (such as
//! `http://127.0.0.1:5000`); scripts/test starts `moto_server`, sets it and runs ignored tests.
//! Run by hand without the variable, a test fails and says what to set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::stream;
use keelson_artifacts::{ArtifactError, ArtifactStore, MARKER_KEY, MIN_PART_SIZE};
use keelson_core::{ErrorKind, HasErrorKind};

const ENDPOINT_VAR: &str = "KEELSON_TEST_S3_ENDPOINT";

fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.is_empty() => endpoint.trim_end_matches('/').to_owned(),
        _ => panic!(
            "{ENDPOINT_VAR} must point at an S3-compatible server (such as moto_server) for these \
             tests; scripts/test starts one and sets it"
        ),
    }
}

fn options(endpoint: &str) -> Vec<(String, String)> {
    [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_region", "us-east-1"),
        ("aws_access_key_id", "keelson-test"),
        ("aws_secret_access_key", "keelson-test"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// A fresh bucket per test keeps parallel tests apart.
async fn new_bucket(endpoint: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let bucket = format!("keelson-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let response = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert!(response.status().is_success(), "{response:?}");
    bucket
}

/// Keys of the multipart uploads the bucket still holds (S3 ListMultipartUploads).
async fn unfinished_uploads(endpoint: &str, bucket: &str) -> Vec<String> {
    let body =
        reqwest::Client::new().get(format!("{endpoint}/{bucket}?uploads")).send().await.unwrap().text().await.unwrap();
    body.split("<Key>").skip(1).filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned())).collect()
}

async fn s3_fixture() -> Fixture {
    let endpoint = endpoint();
    let bucket = new_bucket(&endpoint).await;
    let url = format!("s3://{bucket}/tenant/artifacts");
    let store = ArtifactStore::open(&url, &options(&endpoint)).await.unwrap();
    assert_eq!(store.describe(), url);
    Fixture { store, part_size: MIN_PART_SIZE, root: None, _dir: None }
}

conformance!(
    s3,
    s3_fixture,
    #[ignore = "needs KEELSON_TEST_S3_ENDPOINT; scripts/test runs it"]
);

#[tokio::test]
#[ignore = "needs KEELSON_TEST_S3_ENDPOINT; scripts/test runs it"]
async fn url_prefix_roots_every_key_in_the_bucket() {
    let endpoint = endpoint();
    let bucket = new_bucket(&endpoint).await;
    let options = options(&endpoint);
    let prefixed = ArtifactStore::open(&format!("s3://{bucket}/team/x"), &options).await.unwrap();
    prefixed.put_bytes(&key("runs/1/a"), Bytes::from_static(b"a")).await.unwrap();
    let whole = ArtifactStore::open(&format!("s3://{bucket}"), &options).await.unwrap();
    let everything = whole.list_recursive(None).await.unwrap();
    assert_eq!(keys(&everything), ["team/x/.keelson/store-marker", "team/x/runs/1/a"]);
    assert_eq!(keys(&prefixed.list_recursive(None).await.unwrap()), ["runs/1/a"]);
    assert_eq!(whole.list(None).await.unwrap().dirs, ["team"]);
}

#[tokio::test]
#[ignore = "needs KEELSON_TEST_S3_ENDPOINT; scripts/test runs it"]
async fn failed_and_abandoned_uploads_leave_no_parts() {
    let endpoint = endpoint();
    let bucket = new_bucket(&endpoint).await;
    let store = ArtifactStore::open(&format!("s3://{bucket}"), &options(&endpoint))
        .await
        .unwrap()
        .with_part_size(MIN_PART_SIZE)
        .unwrap();
    let data = pseudo_random(2 * MIN_PART_SIZE + 1);

    let mut body = chunks_of(&data, 256 * 1024);
    body.push(Err(std::io::Error::other("client went away")));
    let error = store.put_stream(&key("failed.bin"), stream::iter(body)).await.unwrap_err();
    assert!(matches!(error, ArtifactError::UploadBody { .. }), "{error:?}");
    assert!(unfinished_uploads(&endpoint, &bucket).await.is_empty());

    let body = futures::StreamExt::chain(stream::iter(chunks_of(&data, 256 * 1024)), stream::pending());
    let target = key("abandoned.bin");
    let abandoned = store.put_stream(&target, body);
    assert!(tokio::time::timeout(Duration::from_secs(2), abandoned).await.is_err());
    let mut remaining = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        remaining = unfinished_uploads(&endpoint, &bucket).await;
        if remaining.is_empty() {
            break;
        }
    }
    assert!(remaining.is_empty(), "{remaining:?}");
    assert_eq!(keys(&store.list_recursive(None).await.unwrap()), Vec::<&str>::new());
    assert!(store.head(&key(MARKER_KEY)).await.is_ok());
}

#[tokio::test]
#[ignore = "needs KEELSON_TEST_S3_ENDPOINT; scripts/test runs it"]
async fn missing_bucket_fails_open() {
    let endpoint = endpoint();
    let error = ArtifactStore::open("s3://keelson-no-such-bucket/p", &options(&endpoint)).await.unwrap_err();
    assert!(matches!(error, ArtifactError::NotReady { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}
