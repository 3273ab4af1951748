//! The HTTP surface in process: routing, the error shape, the authorisation seam, metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{app_with, call};
use keelson_core::auth::Permission;
use serde_json::{json, Value};
use tower::ServiceExt;

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
async fn with_auth_on_anonymous_callers_reach_only_public_routes() {
    let app = app_with(false, 1 << 20).await;
    let (status, _, _) = call(&app, Method::GET, "/health/live", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, headers) = call(&app, Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "UNAUTHENTICATED");
    assert!(headers["www-authenticate"].to_str().unwrap().contains("Basic"));
    let (status, _, _) = call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&app, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_permission() {
    let app = app_with(true, 1 << 20).await;
    let (status, document, _) = call(&app, Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    for route in &app.routes {
        let template = route.path.replace("{*", "{");
        let operation = &document["paths"][&template][route.method.as_str().to_ascii_lowercase()];
        assert_eq!(operation["x-keelson-permission"], route.permission.to_string(), "{} {}", route.method, route.path);
    }
    let listed: usize =
        document["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(listed, app.routes.len(), "no operation the route table lacks");
}
