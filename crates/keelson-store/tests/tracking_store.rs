//! Tracking persistence on both backends: experiments, runs, atomic batches, metric semantics,
//! pagination, dataset inputs, logged models and traces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_core::search::RunFilter;
use keelson_core::tracking::{Dataset, DatasetInput, LifecycleStage, Metric, Param, Tag, ViewType};
use keelson_store::tracking::{NewLoggedModel, RunSearch, StoredTrace};
use keelson_store::StoreError;
use serde_json::json;

both_backends!(
    default_experiment_and_lifecycle,
    log_batch_is_all_or_nothing,
    concurrent_batches_share_a_commit_and_fail_alone,
    latest_metric_follows_step_then_timestamp_and_keeps_nan,
    metric_history_pages,
    run_search_pages_cover_every_run_once,
    dataset_inputs_are_shared_and_deduplicated,
    logged_models_and_traces_round_trip,
);

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric {
        key: key.into(),
        value,
        timestamp,
        step,
        run_id: None,
        model_id: None,
        dataset_name: None,
        dataset_digest: None,
    }
}

fn all_runs(experiment_id: &str, view: ViewType, max_results: i64, page_token: Option<String>) -> RunSearch {
    RunSearch {
        experiment_ids: vec![experiment_id.to_string()],
        filter: RunFilter::default(),
        view,
        max_results,
        order_by: Vec::new(),
        page_token,
    }
}

async fn default_experiment_and_lifecycle(db: TestDb) {
    let store = &db.store;
    let default = store.get_experiment("0").await.unwrap();
    assert_eq!(default.name, "Default");
    assert_eq!(default.artifact_location, "mlflow-artifacts:/0");

    let id = store.create_experiment("exp", None, &[Tag::new("team", "vision")]).await.unwrap();
    let experiment = store.get_experiment(&id).await.unwrap();
    assert_eq!(experiment.artifact_location, format!("mlflow-artifacts:/{id}"));
    assert_eq!(experiment.tags, vec![Tag::new("team", "vision")]);
    assert!(matches!(store.create_experiment("exp", None, &[]).await, Err(StoreError::AlreadyExists(_))));
    assert!(matches!(store.get_experiment("999").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.get_experiment("not-a-number").await, Err(StoreError::InvalidArgument(_))));

    let run = store.create_run(&id, "alice", 1_000, "first", &[]).await.unwrap();
    assert_eq!(run.info.artifact_uri, format!("mlflow-artifacts:/{id}/{}/artifacts", run.info.run_id));
    assert!(run.data.tags.contains(&Tag::new("mlflow.runName", "first")));

    store.set_experiment_lifecycle(&id, true).await.unwrap();
    assert_eq!(store.get_run(&run.info.run_id).await.unwrap().info.lifecycle_stage, LifecycleStage::Deleted);
    assert!(store.create_run(&id, "alice", 1_000, "second", &[]).await.is_err(), "deleted experiments take no runs");
    store.set_experiment_lifecycle(&id, false).await.unwrap();
    assert_eq!(store.get_run(&run.info.run_id).await.unwrap().info.lifecycle_stage, LifecycleStage::Active);
    assert!(store.set_experiment_lifecycle("0", true).await.is_err(), "the default experiment stays");

    let other = store.create_experiment("other", None, &[]).await.unwrap();
    assert!(matches!(store.rename_experiment(&other, "exp").await, Err(StoreError::AlreadyExists(_))));
    store.rename_experiment(&other, "renamed").await.unwrap();
    assert_eq!(store.get_experiment_by_name("renamed").await.unwrap().experiment_id, other);
}

async fn log_batch_is_all_or_nothing(db: TestDb) {
    let store = &db.store;
    let run = store.create_run("0", "u", 1, "r", &[]).await.unwrap();
    let run_id = &run.info.run_id;
    store.log_batch(run_id, &[], &[Param { key: "lr".into(), value: "0.1".into() }], &[]).await.unwrap();
    let err = store
        .log_batch(
            run_id,
            &[metric("m", 1.0, 1, 0)],
            &[Param { key: "lr".into(), value: "0.2".into() }],
            &[Tag::new("t", "v")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidArgument(ref m) if m.contains("Changing param values is not allowed")),
        "{err}"
    );
    let data = store.get_run(run_id).await.unwrap().data;
    assert!(data.metrics.is_empty(), "no metric of the refused batch was written");
    assert!(!data.tags.iter().any(|t| t.key == "t"), "no tag of the refused batch was written");
    // The same value again is fine.
    store.log_batch(run_id, &[], &[Param { key: "lr".into(), value: "0.1".into() }], &[]).await.unwrap();
    store.set_run_lifecycle(run_id, true).await.unwrap();
    assert!(store.log_batch(run_id, &[metric("m", 1.0, 1, 0)], &[], &[]).await.is_err(), "deleted runs are read-only");
}

/// Ten writers queue while group commit is held back: they are written in one transaction, and
/// when one of them is refused (a changed param) the other nine are still written, each alone,
/// and nothing of the refused one is.
async fn concurrent_batches_share_a_commit_and_fail_alone(db: TestDb) {
    let store = db.store.clone();
    let mut runs = Vec::new();
    for i in 0..10 {
        runs.push(store.create_run("0", "u", 1, &format!("r{i}"), &[]).await.unwrap().info.run_id);
    }
    store.log_batch(&runs[3], &[], &[Param { key: "lr".into(), value: "0.1".into() }], &[]).await.unwrap();
    let points = |run: usize| -> Vec<Metric> {
        (0..300).map(|s| metric("loss", (run * 1000 + s) as f64, 5, s as i64)).collect()
    };

    // Round 1: all ten valid, one transaction.
    let before = store.group_commit_stats();
    let pause = store.pause_group_commit_for_tests().await;
    let mut writers = Vec::new();
    for (i, run_id) in runs.iter().enumerate() {
        let (store, run_id, points) = (store.clone(), run_id.clone(), points(i));
        writers.push(tokio::spawn(async move { store.log_batch(&run_id, &points, &[], &[]).await }));
    }
    wait_for_queue(&store, 10).await;
    drop(pause);
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let after = store.group_commit_stats();
    assert_eq!(after.transactions - before.transactions, 1, "{before:?} -> {after:?}");
    assert_eq!(after.batches - before.batches, 10);
    for (i, run_id) in runs.iter().enumerate() {
        let history = store.get_metric_history(run_id, "loss", None, None).await.unwrap().items;
        assert_eq!(history.len(), 300);
        assert_eq!(history[299].value, (i * 1000 + 299) as f64);
    }

    // Round 2: run 3 changes its param; the group is undone and each batch written alone.
    let before = store.group_commit_stats();
    let pause = store.pause_group_commit_for_tests().await;
    let mut writers = Vec::new();
    for (i, run_id) in runs.iter().enumerate() {
        let store = store.clone();
        let run_id = run_id.clone();
        let metrics = vec![metric("round2", i as f64, 6, 0)];
        let params = if i == 3 { vec![Param { key: "lr".into(), value: "0.2".into() }] } else { Vec::new() };
        writers.push(tokio::spawn(async move { store.log_batch(&run_id, &metrics, &params, &[]).await }));
    }
    wait_for_queue(&store, 10).await;
    drop(pause);
    for (i, writer) in writers.into_iter().enumerate() {
        let outcome = writer.await.unwrap();
        let latest = store.get_run(&runs[i]).await.unwrap().data.metrics;
        let round2 = latest.iter().find(|m| m.key == "round2");
        if i == 3 {
            let err = outcome.unwrap_err();
            assert!(matches!(err, StoreError::InvalidArgument(ref m) if m.contains("Changing param")), "{err}");
            assert!(round2.is_none(), "the refused batch wrote nothing");
        } else {
            outcome.unwrap();
            assert_eq!(round2.map(|m| m.value), Some(i as f64));
        }
    }
    let after = store.group_commit_stats();
    assert_eq!(after.transactions - before.transactions, 9, "nine batches committed alone after the group failed");
}

async fn wait_for_queue(store: &keelson_store::Store, n: usize) {
    for _ in 0..500 {
        if store.queued_batches_for_tests() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("only {} of {n} batches queued", store.queued_batches_for_tests());
}

async fn latest_metric_follows_step_then_timestamp_and_keeps_nan(db: TestDb) {
    let store = &db.store;
    let run_id = store.create_run("0", "u", 1, "r", &[]).await.unwrap().info.run_id;
    store
        .log_batch(
            &run_id,
            &[
                metric("loss", 0.5, 100, 5),
                metric("loss", 0.9, 200, 3),
                metric("loss", 0.4, 50, 5),
                metric("nan", f64::NAN, 1, 0),
                metric("inf", f64::INFINITY, 1, 0),
                metric("loss", 0.5, 100, 5),
            ],
            &[],
            &[],
        )
        .await
        .unwrap();
    let run = store.get_run(&run_id).await.unwrap();
    let value = |key: &str| run.data.metrics.iter().find(|m| m.key == key).unwrap().value;
    assert_eq!(value("loss"), 0.5, "greatest step, then greatest timestamp");
    assert!(value("nan").is_nan());
    assert_eq!(value("inf"), f64::INFINITY);
    store.log_batch(&run_id, &[metric("loss", 0.1, 10, 9)], &[], &[]).await.unwrap();
    let history = store.get_metric_history(&run_id, "loss", None, None).await.unwrap().items;
    assert_eq!(history.len(), 4, "exact duplicates are stored once: {history:?}");
    let latest = store.get_run(&run_id).await.unwrap().data.metrics;
    assert_eq!(latest.iter().find(|m| m.key == "loss").unwrap().value, 0.1);
}

async fn metric_history_pages(db: TestDb) {
    let store = &db.store;
    let run_id = store.create_run("0", "u", 1, "r", &[]).await.unwrap().info.run_id;
    let points: Vec<Metric> = (0..25).map(|i| metric("m", i as f64, 1_000 + i, i)).collect();
    store.log_batch(&run_id, &points, &[], &[]).await.unwrap();
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = store.get_metric_history(&run_id, "m", Some(10), token.as_deref()).await.unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|m| m.step));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    assert!(store.get_metric_history(&run_id, "m", Some(10), Some("bogus")).await.is_err());
    assert!(store.get_metric_history("missing-run", "m", None, None).await.is_err());
}

async fn run_search_pages_cover_every_run_once(db: TestDb) {
    let store = &db.store;
    let id = store.create_experiment("paged", None, &[]).await.unwrap();
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(store.create_run(&id, "u", 1_000 + i, &format!("r{i}"), &[]).await.unwrap().info.run_id);
    }
    store.set_run_lifecycle(&created[0], true).await.unwrap();
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = store.search_runs(&all_runs(&id, ViewType::ActiveOnly, 10, token)).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.info.run_id.clone()));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    let mut expected: Vec<String> = created[1..].to_vec();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, deleted run hidden");
    let deleted = store.search_runs(&all_runs(&id, ViewType::DeletedOnly, 100, None)).await.unwrap();
    assert_eq!(deleted.items.len(), 1);
    let all = store.search_runs(&all_runs(&id, ViewType::All, 100, None)).await.unwrap();
    assert_eq!(all.items.len(), 25);
    let none = store.search_runs(&all_runs("12345", ViewType::All, 100, None)).await.unwrap();
    assert!(none.items.is_empty());
}

async fn dataset_inputs_are_shared_and_deduplicated(db: TestDb) {
    let store = &db.store;
    let input = DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "training")],
        dataset: Dataset {
            name: "iris".into(),
            digest: "abc123".into(),
            source_type: "local".into(),
            source: "{\"uri\": \"/data/iris.csv\"}".into(),
            schema: Some("{}".into()),
            profile: None,
        },
    };
    let first = store.create_run("0", "u", 1, "a", &[]).await.unwrap().info.run_id;
    let second = store.create_run("0", "u", 2, "b", &[]).await.unwrap().info.run_id;
    store.log_inputs(&first, std::slice::from_ref(&input), &[]).await.unwrap();
    store.log_inputs(&first, std::slice::from_ref(&input), &[]).await.unwrap();
    store.log_inputs(&second, std::slice::from_ref(&input), &[]).await.unwrap();
    let run = store.get_run(&first).await.unwrap();
    assert_eq!(run.inputs.dataset_inputs, vec![input.clone()]);
    let filter = keelson_core::search::parse_run_filter("datasets.context = 'training'").unwrap();
    let found =
        store.search_runs(&RunSearch { filter, ..all_runs("0", ViewType::ActiveOnly, 100, None) }).await.unwrap();
    assert_eq!(found.items.len(), 2);
}

async fn logged_models_and_traces_round_trip(db: TestDb) {
    let store = &db.store;
    let run_id = store.create_run("0", "u", 1, "r", &[]).await.unwrap().info.run_id;
    let model = store
        .create_logged_model(&NewLoggedModel {
            experiment_id: "0".into(),
            name: "clf".into(),
            model_type: Some("sklearn".into()),
            source_run_id: Some(run_id.clone()),
            params: vec![Param { key: "C".into(), value: "1.0".into() }],
            tags: vec![Tag::new("k", "v")],
        })
        .await
        .unwrap();
    assert!(model.model_id.starts_with("m-"));
    assert_eq!(model.status, "LOGGED_MODEL_PENDING");
    assert_eq!(model.artifact_uri, format!("mlflow-artifacts:/0/models/{}/artifacts", model.model_id));
    let ready = store.finalize_logged_model(&model.model_id, "LOGGED_MODEL_READY").await.unwrap();
    assert_eq!(ready.status, "LOGGED_MODEL_READY");
    assert_eq!(ready.params.len(), 1);
    let page = store.search_logged_models(&["0".into()], 10, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    store.delete_logged_model(&model.model_id).await.unwrap();
    assert!(store.search_logged_models(&["0".into()], 10, None).await.unwrap().items.is_empty());

    let trace = StoredTrace {
        trace_id: "tr-1".into(),
        experiment_id: "0".into(),
        request_time: 5,
        state: "OK".into(),
        info: json!({"trace_id": "tr-1", "tags": {"a": "b"}}),
    };
    store.upsert_trace(&trace).await.unwrap();
    store.upsert_trace(&StoredTrace { state: "ERROR".into(), ..trace.clone() }).await.unwrap();
    let stored = store.get_trace("tr-1").await.unwrap();
    assert_eq!(stored.state, "ERROR");
    assert_eq!(stored.info["tags"]["a"], "b");
    assert_eq!(store.search_traces(&["0".into()], 10, None).await.unwrap().items.len(), 1);
    assert_eq!(store.delete_traces("0", &["tr-1".into()]).await.unwrap(), 1);
    assert!(matches!(store.get_trace("tr-1").await, Err(StoreError::NotFound(_))));
}

/// A database left at schema 2 (metric history with a rowid) keeps every point, NaN and
/// infinity included, when migration 3 rebuilds the history as a clustered table.
#[tokio::test]
async fn sqlite_upgrade_to_clustered_metrics_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keelson.db", dir.path().display());
    let old = keelson_store::Store::connect(&url, &keelson_store::StoreOptions::default()).await.unwrap();
    assert_eq!(old.migrate_to(2).await.unwrap().to_version, 2);
    let run_id = old.create_run("0", "u", 1, "r", &[]).await.unwrap().info.run_id;
    let mut points: Vec<Metric> = (0..50).map(|s| metric("loss", 1.0 / (s + 1) as f64, 100 + s, s)).collect();
    points.push(metric("odd", f64::NAN, 1, 0));
    points.push(metric("odd", f64::NEG_INFINITY, 2, 1));
    old.log_batch(&run_id, &points, &[], &[]).await.unwrap();
    old.close().await;

    let store = keelson_store::Store::open(&url, &keelson_store::StoreOptions::default()).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), keelson_store::LATEST_SCHEMA_VERSION);
    let loss = store.get_metric_history(&run_id, "loss", None, None).await.unwrap().items;
    assert_eq!(
        loss.iter().map(|m| (m.step, m.value)).collect::<Vec<_>>(),
        points[..50].iter().map(|m| (m.step, m.value)).collect::<Vec<_>>()
    );
    let odd = store.get_metric_history(&run_id, "odd", None, None).await.unwrap().items;
    assert!(odd[0].value.is_nan());
    assert_eq!(odd[1].value, f64::NEG_INFINITY);
    // The rebuilt table still ignores exact duplicates and cascades with its run.
    store.log_batch(&run_id, &points[..5], &[], &[]).await.unwrap();
    assert_eq!(store.get_metric_history(&run_id, "loss", None, None).await.unwrap().items.len(), 50);
}
