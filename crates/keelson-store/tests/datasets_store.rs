//! Dataset persistence on both backends: datasets, content-addressed version registration with
//! never-reused numbers, inputs and consumers, refusals that write nothing, concurrent
//! registrations, validations and the quality trend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_core::datasets::{Layer, VersionRef};
use keelson_store::datasets::NewDatasetVersion;
use keelson_store::StoreError;
use serde_json::json;
use std::collections::BTreeMap;

both_backends!(
    datasets_create_get_list_update,
    duplicate_and_invalid_names_are_refused,
    ensure_dataset_gets_or_creates,
    versions_are_numbered_and_digests_register_once,
    inputs_and_consumers,
    missing_input_is_refused_and_nothing_is_written,
    concurrent_registrations_get_distinct_numbers,
    validations_make_the_quality_trend,
    json_fields_round_trip,
);

fn new_version(dataset: &str, digest: &str) -> NewDatasetVersion {
    NewDatasetVersion {
        dataset: dataset.into(),
        digest: format!("sha256:{digest}"),
        layer: Layer::Bronze,
        artifact_key: format!("datasets/{dataset}/{digest}.parquet"),
        row_count: 3,
        size_bytes: 1024,
        schema: json!([{"name": "id", "dtype": "Int64", "nullable": false}]),
        profile: json!({"row_count": 3}),
        source: json!({"kind": "file", "path": "raw/orders.csv"}),
        recipe_digest: None,
        inputs: Vec::new(),
        validation: None,
        quality_score: None,
        masked_columns: Vec::new(),
        created_by: None,
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn datasets_create_get_list_update(db: TestDb) {
    let (store, clock) = db.with_clock(1_000);
    let created = store
        .create_dataset(
            "orders",
            Some("raw orders"),
            &tags(&[("team", "sales")]),
            &["name".into(), "email".into(), "email".into()],
        )
        .await
        .unwrap();
    assert_eq!(created.pii_columns, vec!["email".to_string(), "name".to_string()], "sorted and unique");
    assert_eq!((created.created, created.updated, created.latest_version), (1_000, 1_000, None));
    assert_eq!(store.get_dataset("orders").await.unwrap(), created);
    store.create_dataset("customers", None, &BTreeMap::new(), &[]).await.unwrap();
    let names: Vec<_> = store.list_datasets().await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, vec!["customers", "orders"]);

    clock.advance(500);
    let updated = store.update_dataset("orders", Some(None), None, Some(vec!["ssn".into()])).await.unwrap();
    assert_eq!(updated.description, None);
    assert_eq!(updated.tags, tags(&[("team", "sales")]), "tags not given stay");
    assert_eq!(updated.pii_columns, vec!["ssn".to_string()]);
    assert_eq!((updated.created, updated.updated), (1_000, 1_500));
    let updated = store.update_dataset("orders", Some(Some("d".into())), Some(BTreeMap::new()), None).await.unwrap();
    assert_eq!((updated.description.as_deref(), updated.tags.len()), (Some("d"), 0));
    assert_eq!(updated.pii_columns, vec!["ssn".to_string()]);

    let err = store.get_dataset("nope").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("`nope`")), "{err}");
    let err = store.update_dataset("nope", None, None, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("`nope`")), "{err}");

    store.register_dataset_version(&new_version("orders", "a1")).await.unwrap();
    assert_eq!(store.get_dataset("orders").await.unwrap().latest_version, Some(1));
}

async fn duplicate_and_invalid_names_are_refused(db: TestDb) {
    let store = &db.store;
    store.create_dataset("orders", None, &BTreeMap::new(), &[]).await.unwrap();
    let err = store.create_dataset("orders", Some("again"), &BTreeMap::new(), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(ref m) if m == "dataset `orders` already exists"), "{err}");
    assert_eq!(store.get_dataset("orders").await.unwrap().description, None, "the refused create wrote nothing");
    let err = store.create_dataset("../etc", None, &BTreeMap::new(), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(ref m) if m.contains("`../etc`")), "{err}");
    let err = store.create_dataset("ok", None, &BTreeMap::new(), &[String::new()]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(store.list_datasets().await.unwrap().len(), 1);
}

async fn ensure_dataset_gets_or_creates(db: TestDb) {
    let store = &db.store;
    let created = store.ensure_dataset("events").await.unwrap();
    store.update_dataset("events", Some(Some("kept".into())), None, None).await.unwrap();
    let again = store.ensure_dataset("events").await.unwrap();
    assert_eq!((again.created, again.description.as_deref()), (created.created, Some("kept")));
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ensure_dataset("raced").await })
        })
        .collect();
    for racer in racers {
        assert_eq!(racer.await.unwrap().unwrap().name, "raced");
    }
    assert_eq!(store.list_datasets().await.unwrap().len(), 2);
}

async fn versions_are_numbered_and_digests_register_once(db: TestDb) {
    let (store, clock) = db.with_clock(10_000);
    store.create_dataset("orders", None, &BTreeMap::new(), &[]).await.unwrap();
    store.create_dataset("other", None, &BTreeMap::new(), &[]).await.unwrap();
    for (expected, digest) in [(1, "a"), (2, "b"), (3, "c")] {
        clock.advance(10);
        let (version, created) = store.register_dataset_version(&new_version("orders", digest)).await.unwrap();
        assert!(created);
        assert_eq!(version.version, expected);
        assert_eq!(store.get_dataset_version("orders", expected).await.unwrap(), version);
    }
    // The same content another time: the existing version, nothing new.
    clock.advance(10);
    let mut again = new_version("orders", "b");
    again.layer = Layer::Gold;
    let (existing, created) = store.register_dataset_version(&again).await.unwrap();
    assert!(!created);
    assert_eq!((existing.version, existing.layer, existing.created), (2, Layer::Bronze, 10_020));
    let dataset = store.get_dataset("orders").await.unwrap();
    assert_eq!((dataset.latest_version, dataset.updated), (Some(3), 10_030), "a repeat does not touch the dataset");
    // Digests are per dataset.
    assert_eq!(
        store.register_dataset_version(&new_version("other", "a")).await.unwrap(),
        (store.get_dataset_version("other", 1).await.unwrap(), true)
    );

    let listed: Vec<i64> = store.list_dataset_versions("orders").await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(listed, vec![3, 2, 1]);
    let mut silver = new_version("orders", "d");
    silver.layer = Layer::Silver;
    store.register_dataset_version(&silver).await.unwrap();
    assert_eq!(store.latest_dataset_version("orders", None).await.unwrap().version, 4);
    assert_eq!(store.latest_dataset_version("orders", Some(Layer::Bronze)).await.unwrap().version, 3);
    assert_eq!(store.latest_dataset_version("orders", Some(Layer::Silver)).await.unwrap().version, 4);
    let err = store.latest_dataset_version("orders", Some(Layer::Gold)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("no gold versions")), "{err}");

    for err in [
        store.get_dataset_version("orders", 9).await.unwrap_err(),
        store.get_dataset_version("nope", 1).await.unwrap_err(),
        store.latest_dataset_version("nope", None).await.unwrap_err(),
        store.list_dataset_versions("nope").await.unwrap_err(),
        store.register_dataset_version(&new_version("nope", "a")).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }
    let err = store.get_dataset_version("orders", 9).await.unwrap_err();
    assert_eq!(err.to_string(), "version 9 of dataset `orders` does not exist");
}

async fn inputs_and_consumers(db: TestDb) {
    let store = &db.store;
    for name in ["raw", "customers", "clean", "report"] {
        store.create_dataset(name, None, &BTreeMap::new(), &[]).await.unwrap();
    }
    store.register_dataset_version(&new_version("raw", "r1")).await.unwrap();
    store.register_dataset_version(&new_version("raw", "r2")).await.unwrap();
    store.register_dataset_version(&new_version("customers", "c1")).await.unwrap();
    let mut clean = new_version("clean", "k1");
    clean.inputs = vec![VersionRef::new("raw", 2), VersionRef::new("customers", 1), VersionRef::new("raw", 2)];
    clean.recipe_digest = Some("sha256:recipe".into());
    let (clean, _) = store.register_dataset_version(&clean).await.unwrap();
    assert_eq!(
        clean.inputs,
        vec![VersionRef::new("raw", 2), VersionRef::new("customers", 1)],
        "order kept, duplicate dropped"
    );
    let mut report = new_version("report", "p1");
    report.inputs = vec![VersionRef::new("raw", 2), VersionRef::new("clean", 1)];
    store.register_dataset_version(&report).await.unwrap();

    assert_eq!(store.get_dataset_version("clean", 1).await.unwrap().inputs, clean.inputs);
    assert_eq!(store.list_dataset_versions("clean").await.unwrap()[0].inputs, clean.inputs);
    assert_eq!(
        store.dataset_version_consumers("raw", 2).await.unwrap(),
        vec![VersionRef::new("clean", 1), VersionRef::new("report", 1)]
    );
    assert_eq!(store.dataset_version_consumers("clean", 1).await.unwrap(), vec![VersionRef::new("report", 1)]);
    assert!(store.dataset_version_consumers("raw", 1).await.unwrap().is_empty());
    assert!(store.dataset_version_consumers("report", 1).await.unwrap().is_empty());
    let err = store.dataset_version_consumers("raw", 7).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("version 7")), "{err}");
}

async fn missing_input_is_refused_and_nothing_is_written(db: TestDb) {
    let (store, clock) = db.with_clock(5_000);
    store.create_dataset("raw", None, &BTreeMap::new(), &[]).await.unwrap();
    store.create_dataset("clean", None, &BTreeMap::new(), &[]).await.unwrap();
    store.register_dataset_version(&new_version("raw", "r1")).await.unwrap();
    clock.advance(100);
    let mut clean = new_version("clean", "k1");
    clean.inputs = vec![VersionRef::new("raw", 1), VersionRef::new("raw", 5)];
    let err = store.register_dataset_version(&clean).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref m) if m == "input version 5 of dataset `raw` does not exist"),
        "{err}"
    );
    clean.inputs = vec![VersionRef::new("ghost", 1)];
    assert!(matches!(store.register_dataset_version(&clean).await, Err(StoreError::NotFound(_))));
    clean.quality_score = Some(f64::NAN);
    clean.inputs = Vec::new();
    assert!(matches!(store.register_dataset_version(&clean).await, Err(StoreError::InvalidArgument(_))));

    let dataset = store.get_dataset("clean").await.unwrap();
    assert_eq!((dataset.latest_version, dataset.updated), (None, 5_000));
    assert!(store.list_dataset_versions("clean").await.unwrap().is_empty());
    assert!(store.dataset_version_consumers("raw", 1).await.unwrap().is_empty());
    // The refused attempts did not use up a number.
    clean.quality_score = None;
    assert_eq!(store.register_dataset_version(&clean).await.unwrap().0.version, 1);
}

async fn concurrent_registrations_get_distinct_numbers(db: TestDb) {
    db.store.create_dataset("busy", None, &BTreeMap::new(), &[]).await.unwrap();
    let other = db.second_store().await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = if i % 2 == 0 { db.store.clone() } else { other.clone() };
            // Pairs of tasks register the same content: one creates it, the other finds it.
            tokio::spawn(
                async move { store.register_dataset_version(&new_version("busy", &format!("d{}", i / 2))).await },
            )
        })
        .collect();
    let mut created = Vec::new();
    let mut by_digest: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for task in tasks {
        let (version, was_created) = task.await.unwrap().unwrap();
        if was_created {
            created.push(version.version);
        }
        by_digest.entry(version.digest).or_default().push(version.version);
    }
    created.sort_unstable();
    assert_eq!(created, (1..=6).collect::<Vec<i64>>());
    for (digest, versions) in by_digest {
        assert_eq!(versions.len(), 2, "{digest}");
        assert_eq!(versions[0], versions[1], "both registrations of {digest} answer one version");
    }
    assert_eq!(db.store.list_dataset_versions("busy").await.unwrap().len(), 6);
    other.close().await;
}

async fn validations_make_the_quality_trend(db: TestDb) {
    let (store, clock) = db.with_clock(100);
    store.create_dataset("orders", None, &BTreeMap::new(), &[]).await.unwrap();
    store.register_dataset_version(&new_version("orders", "a")).await.unwrap();
    store.register_dataset_version(&new_version("orders", "b")).await.unwrap();
    let result = json!({"success": false, "score": 0.5, "evaluated": 2, "passed": 1, "results": [{"index": 0}]});
    let mut ids = Vec::new();
    for (version, score, success) in [(1, 0.5, false), (1, 1.0, true), (2, 0.75, true)] {
        clock.advance(1_000);
        ids.push(
            store.record_dataset_validation("orders", version, "sha256:suite", &result, score, success).await.unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let points = store.dataset_quality("orders").await.unwrap();
    let trend: Vec<_> =
        points.iter().map(|p| (p.version, p.validation_id, p.score, p.success, p.validated_at)).collect();
    assert_eq!(
        trend,
        vec![(1, ids[0], 0.5, false, 1_100), (1, ids[1], 1.0, true, 2_100), (2, ids[2], 0.75, true, 3_100)]
    );
    assert_eq!(store.get_dataset_version("orders", 1).await.unwrap().quality_score, Some(1.0), "the newest score");
    assert_eq!(store.get_dataset_version("orders", 2).await.unwrap().quality_score, Some(0.75));

    let recorded = store.get_dataset_validation(ids[0]).await.unwrap();
    assert_eq!(
        (recorded.dataset.as_str(), recorded.version, recorded.suite_digest.as_str()),
        ("orders", 1, "sha256:suite")
    );
    assert_eq!(
        (recorded.result, recorded.score, recorded.success, recorded.validated_at),
        (result.clone(), 0.5, false, 1_100)
    );

    let err = store.record_dataset_validation("orders", 3, "s", &result, 1.0, true).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("version 3")), "{err}");
    let err = store.record_dataset_validation("nope", 1, "s", &result, 1.0, true).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(ref m) if m.contains("`nope`")), "{err}");
    let err = store.record_dataset_validation("orders", 1, "s", &result, f64::INFINITY, true).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert_eq!(store.dataset_quality("orders").await.unwrap().len(), 3, "refusals recorded nothing");
    assert!(matches!(store.get_dataset_validation(999_999).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.dataset_quality("nope").await, Err(StoreError::NotFound(_))));
}

async fn json_fields_round_trip(db: TestDb) {
    let store = &db.store;
    store.create_dataset("orders", None, &tags(&[("a", "1"), ("ünï", "cødé \"q\"")]), &[]).await.unwrap();
    assert_eq!(store.get_dataset("orders").await.unwrap().tags, tags(&[("a", "1"), ("ünï", "cødé \"q\"")]));
    let mut new = new_version("orders", "x");
    new.schema = json!([{"name": "id", "dtype": "Int64", "nullable": false}, {"name": "amount", "dtype": "Float64", "nullable": true}]);
    new.profile = json!({"row_count": 3, "columns": {"amount": {"mean": 1.5, "quantiles": {"0.5": 1.25}, "top_values": [], "min": null}}});
    new.source = json!({"kind": "http", "url": "http://127.0.0.1:8000/orders.csv", "csv": {"separator": ";"}});
    new.validation = Some(json!({"success": true, "score": 1.0, "results": []}));
    new.quality_score = Some(0.875);
    new.masked_columns = vec!["email".into(), "card".into()];
    new.recipe_digest = Some("sha256:r".into());
    new.created_by = Some("alice".into());
    new.layer = Layer::Gold;
    new.row_count = 3_000_000_000;
    new.size_bytes = 5_000_000_000;
    let (registered, _) = store.register_dataset_version(&new).await.unwrap();
    let read = store.get_dataset_version("orders", 1).await.unwrap();
    assert_eq!(read, registered);
    assert_eq!(
        (read.schema, read.profile, read.source, read.validation),
        (new.schema, new.profile, new.source, new.validation)
    );
    assert_eq!((read.quality_score, read.masked_columns, read.layer), (Some(0.875), new.masked_columns, Layer::Gold));
    assert_eq!(
        (read.row_count, read.size_bytes, read.created_by),
        (3_000_000_000, 5_000_000_000, Some("alice".into()))
    );
    assert_eq!(read.recipe_digest.as_deref(), Some("sha256:r"));
}
