//! `/api/v1/lineage` in process: OpenLineage ingest, validation answers and the graph read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app_with, call};
use keelson_core::auth::{Permission, ResourceKind};
use serde_json::{json, Value};

fn run_event(event_type: &str, run_id: &str, time: &str) -> Value {
    json!({
        "eventType": event_type,
        "eventTime": time,
        "run": {"runId": run_id},
        "job": {"namespace": "etl", "name": "clean_orders", "facets": {}},
        "inputs": [{"namespace": "keelson", "name": "raw_orders", "facets": {}}],
        "outputs": [{"namespace": "keelson", "name": "orders",
                     "facets": {"schema": {"_producer": "https://p", "_schemaURL": "https://s",
                                           "fields": [{"name": "id", "type": "Int64"}]}}}],
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    })
}

const RUN_ID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

#[tokio::test]
async fn ingests_events_and_answers_the_graph() {
    let app = app_with(true, 1 << 20).await;
    let permission = |method: Method| {
        app.routes.iter().find(|r| r.path == "/api/v1/lineage" && r.method == method).map(|r| r.permission)
    };
    assert_eq!(permission(Method::POST), Some(Permission::write(ResourceKind::Datasets)));
    assert_eq!(permission(Method::GET), Some(Permission::read(ResourceKind::Datasets)));
    for (event_type, time) in [("START", "2024-05-01T12:00:00Z"), ("COMPLETE", "2024-05-01T12:05:00.5+00:00")] {
        let (status, body, _) =
            call(&app, Method::POST, "/api/v1/lineage", Some(run_event(event_type, RUN_ID, time))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body, json!({}));
    }
    let dataset_event = json!({
        "eventTime": "2024-05-01T12:06:00Z", "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "keelson", "name": "orders", "facets": {"documentation": {"description": "clean"}}}
    });
    let (status, _, _) = call(&app, Method::POST, "/api/v1/lineage", Some(dataset_event)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body, _) =
        call(&app, Method::GET, "/api/v1/lineage?nodeId=dataset:keelson:orders&depth=5&direction=upstream", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let graph = body["graph"].as_array().unwrap();
    assert_eq!(graph.len(), 3, "{body}");
    assert_eq!(graph[0]["id"], "dataset:keelson:orders");
    assert_eq!(graph[0]["type"], "DATASET");
    assert_eq!(graph[0]["data"]["facets"]["schema"]["fields"][0]["name"], "id");
    assert_eq!(graph[0]["data"]["facets"]["documentation"]["description"], "clean");
    assert_eq!(
        graph[0]["inEdges"],
        json!([{"origin": "job:etl:clean_orders", "destination": "dataset:keelson:orders"}])
    );
    assert_eq!(graph[0]["outEdges"], json!([]));
    let job = graph.iter().find(|n| n["id"] == "job:etl:clean_orders").unwrap();
    assert_eq!(job["type"], "JOB");
    assert_eq!(job["data"]["latestRun"]["state"], "COMPLETED");

    let (_, body, _) =
        call(&app, Method::GET, "/api/v1/lineage?nodeId=dataset:keelson:orders&direction=downstream", None).await;
    assert_eq!(body["graph"].as_array().unwrap().len(), 1);
    let (_, body, _) = call(&app, Method::GET, "/api/v1/lineage?nodeId=dataset:keelson:raw_orders", None).await;
    assert_eq!(body["graph"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn invalid_events_and_queries_are_refused_with_the_field_named() {
    let app = app_with(true, 1 << 20).await;
    let cases = [
        (run_event("START", "not-a-uuid", "2024-05-01T12:00:00Z"), "run.runId"),
        (run_event("FINISHED", RUN_ID, "2024-05-01T12:00:00Z"), "eventType"),
        (run_event("START", RUN_ID, "May 1st"), "eventTime"),
        (json!({"eventTime": "2024-05-01T12:00:00Z"}), "producer"),
        (json!([]), "JSON object"),
    ];
    for (event, field) in cases {
        let (status, body, _) = call(&app, Method::POST, "/api/v1/lineage", Some(event)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
        assert!(body["message"].as_str().unwrap().contains(field), "{field}: {body}");
    }
    let mut no_name = run_event("START", RUN_ID, "2024-05-01T12:00:00Z");
    no_name["outputs"][0].as_object_mut().unwrap().remove("name");
    let (status, body, _) = call(&app, Method::POST, "/api/v1/lineage", Some(no_name)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("`outputs[0].name` is required"), "{body}");

    let (status, body, _) = call(&app, Method::GET, "/api/v1/lineage?nodeId=dataset:keelson:nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert!(body["message"].as_str().unwrap().contains("dataset:keelson:nothing"));
    for query in ["nodeId=x&depth=101", "nodeId=x&direction=sideways", "nodeId=x&depth=-1", "depth=3"] {
        let (status, body, _) = call(&app, Method::GET, &format!("/api/v1/lineage?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{query}");
    }
}
