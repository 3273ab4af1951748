//! Lineage: OpenLineage events into runs, nodes and edges; the graph walk; Keelson's own links.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use keelson_core::lineage::{
    parse_lineage_event, Dataset, EventType, LineageDirection, LineageEvent, LineageNode, RunEvent, SchemaField,
    KEELSON_PRODUCER,
};
use keelson_store::StoreError;
use serde_json::json;
use uuid::Uuid;

fn event(event_type: EventType, run_id: Uuid, time: i64, job: &str, inputs: &[&str], outputs: &[&str]) -> LineageEvent {
    let mut event = RunEvent::new(event_type, run_id, "etl", job, KEELSON_PRODUCER).at(time);
    for input in inputs {
        event = event.with_input(Dataset::new("keelson", *input));
    }
    for output in outputs {
        event = event.with_output(
            Dataset::new("keelson", *output).with_schema(KEELSON_PRODUCER, &[SchemaField::new("id", "Int64")]),
        );
    }
    event.into()
}

fn node<'a>(graph: &'a [LineageNode], id: &str) -> &'a LineageNode {
    graph.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id} in {graph:#?}"))
}

fn ids(graph: &[LineageNode]) -> Vec<&str> {
    let mut ids: Vec<&str> = graph.iter().map(|n| n.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

async fn records_runs_nodes_and_edges(db: TestDb) {
    let store = &db.store;
    let run = Uuid::new_v4();
    store.record_lineage_event(&event(EventType::Start, run, 1_000, "clean", &["raw"], &[])).await.unwrap();
    store.record_lineage_event(&event(EventType::Complete, run, 2_000, "clean", &["raw"], &["orders"])).await.unwrap();
    // The same edges again add nothing.
    store.record_lineage_event(&event(EventType::Complete, run, 2_000, "clean", &["raw"], &["orders"])).await.unwrap();
    assert_eq!(store.lineage_event_count().await.unwrap(), 3);

    let graph = store.lineage_graph("dataset:keelson:orders", 20, LineageDirection::Both).await.unwrap();
    assert_eq!(graph[0].id, "dataset:keelson:orders");
    assert_eq!(ids(&graph), vec!["dataset:keelson:orders", "dataset:keelson:raw", "job:etl:clean"]);
    let job = node(&graph, "job:etl:clean");
    assert_eq!(job.node_type, "JOB");
    assert_eq!(job.data["latestRun"]["state"], "COMPLETED");
    assert_eq!(job.data["latestRun"]["runId"], run.to_string());
    assert_eq!(job.data["latestRun"]["startedAt"], 1_000);
    assert_eq!(job.data["latestRun"]["endedAt"], 2_000);
    assert_eq!(job.in_edges.len(), 1);
    assert_eq!(job.in_edges[0].origin, "dataset:keelson:raw");
    assert_eq!(job.out_edges[0].destination, "dataset:keelson:orders");
    let orders = node(&graph, "dataset:keelson:orders");
    assert_eq!(orders.node_type, "DATASET");
    assert_eq!(orders.data["facets"]["schema"]["fields"], json!([{"name": "id", "type": "Int64"}]));

    // A late START does not reopen a finished run.
    store.record_lineage_event(&event(EventType::Start, run, 500, "clean", &[], &[])).await.unwrap();
    let graph = store.lineage_graph("job:etl:clean", 0, LineageDirection::Both).await.unwrap();
    assert_eq!(graph.len(), 1);
    assert!(graph[0].in_edges.is_empty(), "edges are trimmed to the nodes returned");
    assert_eq!(graph[0].data["latestRun"]["state"], "COMPLETED");
    assert_eq!(graph[0].data["latestRun"]["startedAt"], 500);

    // A newer run that fails becomes the job's latest.
    let failed = Uuid::new_v4();
    store.record_lineage_event(&event(EventType::Fail, failed, 3_000, "clean", &["raw"], &[])).await.unwrap();
    let graph = store.lineage_graph("job:etl:clean", 0, LineageDirection::Both).await.unwrap();
    assert_eq!(graph[0].data["latestRun"]["state"], "FAILED");
    assert_eq!(graph[0].data["latestRun"]["runId"], failed.to_string());
}

async fn facets_are_additive_and_the_newest_wins(db: TestDb) {
    let store = &db.store;
    let base = |time: &str, facets: serde_json::Value| {
        json!({
            "eventTime": time, "producer": "https://example.com/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {"namespace": "keelson", "name": "orders", "facets": facets}
        })
    };
    for (time, facets) in [
        ("2024-05-01T12:00:00Z", json!({"schema": {"fields": [{"name": "a", "type": "Int64"}]}})),
        ("2024-05-01T13:00:00Z", json!({"documentation": {"description": "orders"}})),
        ("2024-05-01T14:00:00Z", json!({"schema": {"fields": [{"name": "b", "type": "Utf8"}]}})),
        // Older than what is stored: adds a missing facet, replaces none.
        ("2024-05-01T11:00:00Z", json!({"schema": {"fields": []}, "ownership": {"owners": []}})),
    ] {
        store.record_lineage_event(&parse_lineage_event(&base(time, facets)).unwrap()).await.unwrap();
    }
    let graph = store.lineage_graph("dataset:keelson:orders", 5, LineageDirection::Both).await.unwrap();
    let facets = &graph[0].data["facets"];
    assert_eq!(facets["schema"]["fields"][0]["name"], "b");
    assert_eq!(facets["documentation"]["description"], "orders");
    assert!(facets["ownership"].is_object());
}

async fn walks_by_direction_and_depth(db: TestDb) {
    let store = &db.store;
    // a -> j1 -> b -> j2 -> c, and b -> j3 -> d
    for (job, input, output) in [("j1", "a", "b"), ("j2", "b", "c"), ("j3", "b", "d")] {
        store
            .record_lineage_event(&event(EventType::Complete, Uuid::new_v4(), 1_000, job, &[input], &[output]))
            .await
            .unwrap();
    }
    let up = store.lineage_graph("dataset:keelson:c", 20, LineageDirection::Upstream).await.unwrap();
    assert_eq!(
        ids(&up),
        vec!["dataset:keelson:a", "dataset:keelson:b", "dataset:keelson:c", "job:etl:j1", "job:etl:j2"]
    );
    let down = store.lineage_graph("dataset:keelson:b", 20, LineageDirection::Downstream).await.unwrap();
    assert_eq!(
        ids(&down),
        vec!["dataset:keelson:b", "dataset:keelson:c", "dataset:keelson:d", "job:etl:j2", "job:etl:j3"]
    );
    let near = store.lineage_graph("dataset:keelson:b", 1, LineageDirection::Both).await.unwrap();
    assert_eq!(ids(&near), vec!["dataset:keelson:b", "job:etl:j1", "job:etl:j2", "job:etl:j3"]);
    let everything = store.lineage_graph("dataset:keelson:c", 20, LineageDirection::Both).await.unwrap();
    assert_eq!(everything.len(), 7);

    let missing = store.lineage_graph("dataset:keelson:nope", 20, LineageDirection::Both).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(ref m) if m.contains("dataset:keelson:nope")), "{missing}");
    let too_deep = store.lineage_graph("dataset:keelson:c", 101, LineageDirection::Both).await.unwrap_err();
    assert!(matches!(too_deep, StoreError::InvalidArgument(_)), "{too_deep}");
}

async fn joins_keelson_runs_models_and_deployments(db: TestDb) {
    let store = &db.store;
    let seed = [
        "INSERT INTO experiments (name, artifact_location, creation_time, last_update_time) VALUES ('e', 'file:///a', 1, 1)",
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, artifact_uri) \
         SELECT 'r1', experiment_id, 'train', 'u', 'FINISHED', 10, 'file:///a/r1' FROM experiments WHERE name = 'e'",
        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source) \
         SELECT 'd1', experiment_id, 'orders', 'abc', 'keelson', '{\"uri\": \"keelson:orders\"}' FROM experiments WHERE name = 'e'",
        "INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, tags, context) VALUES ('r1', 'd1', '[]', 'training')",
        "INSERT INTO registered_models (name, creation_time, last_updated_time) VALUES ('churn', 1, 1)",
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, source, run_id) \
         VALUES ('churn', 1, 20, 20, 'runs:/r1/model', 'r1')",
        "INSERT INTO serving_endpoints (name, description, config, created, updated) VALUES ('prod', '', '{}', 1, 1)",
        "INSERT INTO serving_deployments (endpoint, name, spec, model_name, model_version, created, updated) \
         VALUES ('prod', 'blue', '{}', 'churn', '1', 30, 30)",
    ];
    for sql in seed {
        store.execute_for_tests(sql).await.unwrap();
    }
    // An OpenLineage job wrote the dataset the MLflow run read.
    store
        .record_lineage_event(&event(EventType::Complete, Uuid::new_v4(), 5, "ingest", &["raw"], &["orders"]))
        .await
        .unwrap();

    let graph = store.lineage_graph("deployment:prod:blue", 20, LineageDirection::Upstream).await.unwrap();
    assert_eq!(
        ids(&graph),
        vec![
            "dataset:keelson:orders",
            "dataset:keelson:raw",
            "deployment:prod:blue",
            "job:etl:ingest",
            "model:churn:1",
            "run:r1"
        ]
    );
    let deployment = node(&graph, "deployment:prod:blue");
    assert_eq!(deployment.node_type, "DEPLOYMENT");
    assert_eq!(deployment.in_edges[0].origin, "model:churn:1");
    let model = node(&graph, "model:churn:1");
    assert_eq!(model.data["runId"], "r1");
    assert_eq!(model.in_edges[0].origin, "run:r1");
    let run = node(&graph, "run:r1");
    assert_eq!(run.node_type, "RUN");
    assert_eq!(run.data["status"], "FINISHED");
    assert_eq!(run.in_edges[0].origin, "dataset:keelson:orders");
    // The OpenLineage dataset node keeps its OpenLineage data and gains the run downstream.
    let orders = node(&graph, "dataset:keelson:orders");
    assert!(orders.data["facets"]["schema"].is_object());
    assert!(orders.out_edges.iter().any(|e| e.destination == "run:r1"));

    let down = store.lineage_graph("dataset:keelson:raw", 20, LineageDirection::Downstream).await.unwrap();
    assert!(ids(&down).contains(&"deployment:prod:blue"), "{:?}", ids(&down));
}

async fn an_openlineage_run_with_an_mlflow_run_id_is_that_run(db: TestDb) {
    let store = &db.store;
    let run_id = Uuid::new_v4();
    let seed = [
        "INSERT INTO experiments (name, artifact_location, creation_time, last_update_time) VALUES ('e', 'file:///a', 1, 1)"
            .to_string(),
        format!(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, artifact_uri) \
             SELECT '{}', experiment_id, 'train', 'u', 'FINISHED', 10, 'file:///a/r' FROM experiments WHERE name = 'e'",
            run_id.simple()
        ),
        "INSERT INTO registered_models (name, creation_time, last_updated_time) VALUES ('churn', 1, 1)".to_string(),
        format!(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, source, run_id) \
             VALUES ('churn', 1, 20, 20, 'models:/m', '{}')",
            run_id.simple()
        ),
    ];
    for sql in seed {
        store.execute_for_tests(&sql).await.unwrap();
    }
    store.record_lineage_event(&event(EventType::Complete, run_id, 5, "train", &["features"], &[])).await.unwrap();
    let up = store.lineage_graph("model:churn:1", 20, LineageDirection::Upstream).await.unwrap();
    let run = format!("run:{}", run_id.simple());
    assert_eq!(ids(&up), vec!["dataset:keelson:features", "job:etl:train", "model:churn:1", run.as_str()]);
    assert_eq!(node(&up, &run).in_edges[0].origin, "job:etl:train");
    let down = store.lineage_graph("dataset:keelson:features", 20, LineageDirection::Downstream).await.unwrap();
    assert_eq!(ids(&down), vec!["dataset:keelson:features", "job:etl:train", "model:churn:1", run.as_str()]);
}

both_backends!(
    records_runs_nodes_and_edges,
    facets_are_additive_and_the_newest_wins,
    walks_by_direction_and_depth,
    joins_keelson_runs_models_and_deployments,
    an_openlineage_run_with_an_mlflow_run_id_is_that_run,
);
