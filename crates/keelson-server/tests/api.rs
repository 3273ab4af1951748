//! The HTTP surface in process: routing, the error shape, the authorisation seam, metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use keelson_artifacts::ArtifactStore;
use keelson_core::auth::Permission;
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

fn assert_error(body: &Value, code: &str) {
    let object = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert_eq!(object.len(), 2, "error shape has exactly error_code and message: {body}");
    assert_eq!(object["error_code"], code, "{body}");
    assert!(!object["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn every_route_declares_a_permission_and_only_probes_are_public() {
    let app = app_with(true, 1 << 20).await;
    assert!(app.routes.len() >= 9, "{:?}", app.routes);
    for route in &app.routes {
        let public = route.permission == Permission::Public;
        // Health probes (ours and the inference protocol's), and MLflow's capability document,
        // which clients read before they authenticate (it names capabilities only).
        let meant_public = route.path.starts_with("/health/")
            || route.path.starts_with("/v2/health/")
            || route.path.ends_with("/3.0/mlflow/server-info");
        assert_eq!(public, meant_public, "{route:?}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let app = app_with(true, 1 << 20).await;
    let (status, body, headers) = call(&app, Method::GET, "/no/such/route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ENDPOINT_NOT_FOUND");
    assert!(headers.contains_key("x-request-id"));
    let (status, body, _) = call(&app, Method::DELETE, "/health/live", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn bad_bodies_are_rejected_with_codes() {
    let app = app_with(true, 1024).await;
    let request =
        Request::post("/api/v1/jobs").header("content-type", "application/json").body(Body::from("{nope")).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_error(&body, "MALFORMED_REQUEST");

    let (status, body, _) = call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": 5}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "INVALID_PARAMETER_VALUE");

    let (status, body, _) =
        call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": "x", "payload": "y".repeat(2048)}))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "PAYLOAD_TOO_LARGE");

    let (status, body, _) = call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": "not.registered"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("not.registered"));

    let (status, body, _) = call(&app, Method::GET, "/api/v1/jobs?limit=abc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "INVALID_PARAMETER_VALUE");
    let (status, _, _) = call(&app, Method::GET, "/api/v1/jobs?status=finished", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(&app, Method::GET, "/api/v1/jobs?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, page, _) = call(&app, Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(page["jobs"], json!([]), "nothing was written by rejected requests");
}

#[tokio::test]
async fn job_lifecycle_over_http() {
    let app = app_with(true, 1 << 20).await;
    let (status, job, _) = call(
        &app,
        Method::POST,
        "/api/v1/jobs",
        Some(json!({"kind": "system.noop", "payload": {"a": 1}, "delay_ms": 60000})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = job["id"].as_str().unwrap().to_string();
    let (status, fetched, _) = call(&app, Method::GET, &format!("/api/v1/jobs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, job);
    let (status, cancelled, _) = call(&app, Method::POST, &format!("/api/v1/jobs/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");
    let (status, body, _) = call(&app, Method::POST, &format!("/api/v1/jobs/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "INVALID_STATE");
    let (status, retried, _) = call(&app, Method::POST, &format!("/api/v1/jobs/{id}/retry"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retried["status"], "queued");
    let (status, attempts, _) = call(&app, Method::GET, &format!("/api/v1/jobs/{id}/attempts"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(attempts, json!({"attempts": []}));
    let (status, body, _) = call(&app, Method::GET, "/api/v1/jobs/unknown", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn non_loopback_binding_refuses_all_but_public_routes() {
    let app = app_with(false, 1 << 20).await;
    let (status, _, _) = call(&app, Method::GET, "/health/live", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = call(&app, Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "PERMISSION_DENIED");
    let (status, _, _) = call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&app, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_count_by_route_template() {
    let app = app_with(true, 1 << 20).await;
    for _ in 0..3 {
        call(&app, Method::GET, "/api/v1/jobs/abc", None).await;
    }
    call(&app, Method::GET, "/random/scanner/path", None).await;
    let response = app.router.clone().oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text =
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    assert!(
        text.contains("keelson_http_requests_total{method=\"GET\",route=\"/api/v1/jobs/{id}\",status=\"404\"} 3"),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"), "{text}");
    assert!(!text.contains("scanner"), "raw paths must not become labels");
    assert!(text.contains("keelson_jobs{status=\"queued\"} 0"), "{text}");
}
