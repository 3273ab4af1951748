//! `/api/v1/lineage` in process: OpenLineage ingest, validation answers and the graph read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use keelson_artifacts::ArtifactStore;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::jobs::RetryPolicy;
use keelson_server::auth::{AnonymousAuthenticator, AuthContext, LoopbackOnlyPolicy, RouteSpec};
use keelson_server::metrics::HttpMetrics;
use keelson_server::{build_app, AppState};
use keelson_store::worker::HandlerRegistry;
use keelson_store::{Store, StoreOptions};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

struct TestApp {
    router: Router,
    routes: Vec<RouteSpec>,
    _dir: tempfile::TempDir,
}

async fn app_with(bound_to_loopback: bool, max_body_bytes: usize) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&format!("sqlite://{}/k.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    let artifacts = ArtifactStore::local(&dir.path().join("artifacts")).await.unwrap();
    let model_source = keelson_server::model_source::RegistryModelSource {
        registry: keelson_tracking::RegistryService::new(store.clone(), artifacts.clone()),
        artifacts: artifacts.clone(),
    };
    let state = AppState::new(keelson_server::app::SharedState {
        serving: keelson_serving::ServingService::new(store.clone(), Arc::new(model_source), None),
        data: keelson_data::DataService::new(
            store.clone(),
            artifacts.clone(),
            keelson_data::DataSettings {
                import_root: dir.path().join("imports"),
                scratch_dir: dir.path().join("scratch"),
            },
        )
        .unwrap(),
        tracking: keelson_tracking::TrackingService::new(store.clone(), artifacts.clone()),
        registry: keelson_tracking::RegistryService::new(store.clone(), artifacts.clone()),
        catalog: keelson_genai::CatalogService::new(store.clone(), Default::default(), None),
        catalog_sources: Default::default(),
        store,
        artifacts,
        job_kinds: Arc::new(HandlerRegistry::with_builtins()),
        retry: RetryPolicy::default(),
        metrics: Arc::new(HttpMetrics::default()),
        auth: AuthContext {
            authenticator: Arc::new(AnonymousAuthenticator),
            policy: Arc::new(LoopbackOnlyPolicy { bound_to_loopback }),
        },
        max_body_bytes,
    });
    let (router, routes) = build_app(state);
    TestApp { router, routes, _dir: dir }
}

async fn call(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&value).unwrap())
        }
        None => Body::empty(),
    };
    let response = app.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value, headers)
}

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
