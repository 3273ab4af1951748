//! The in-process harness every HTTP test file shares: an app on a temp dir (SQLite, local
//! artifacts) and a `call` that answers status, JSON body and headers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use keelson_artifacts::ArtifactStore;
use keelson_server::auth::RouteSpec;
use keelson_server::{Platform, PlatformOptions};
use keelson_store::worker::HandlerRegistry;
use keelson_store::{Store, StoreOptions};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    /// Users, tokens and roles of the app, for tests that set up principals.
    pub identities: keelson_server::identity::IdentityService,
    pub routes: Vec<RouteSpec>,
    /// The app's metadata store, for tests that check what a call wrote.
    pub store: Store,
    /// The app's workspaces.
    pub platform: Arc<Platform>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// Where the app keeps its database and artifacts.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Another platform on this app's database and artifacts: a restart, or a second replica.
    pub async fn second_platform(&self, auth_disabled: bool) -> Arc<Platform> {
        let store =
            Store::open(&format!("sqlite://{}/k.db", self.dir().display()), &StoreOptions::default()).await.unwrap();
        let artifacts = ArtifactStore::local(&self.dir().join("artifacts")).await.unwrap();
        let mut config =
            keelson_core::config::Config { data_dir: self.dir().display().to_string(), ..Default::default() };
        config.auth.disabled = auth_disabled;
        config.worker.in_process = false;
        let options = PlatformOptions { config, job_handlers: HandlerRegistry::with_builtins(), tokens_file: None };
        Platform::start(options, store, artifacts).await.unwrap()
    }
}

/// An app on a temp dir; with `auth_disabled` anonymous callers act as admins (a loopback
/// server configured so), without it every route but the probes needs a principal with a role.
pub async fn app_with(auth_disabled: bool, max_body_bytes: usize) -> TestApp {
    app_configured(auth_disabled, max_body_bytes, None).await
}

/// [`app_with`] with an operator's tokens file.
pub async fn app_configured(
    auth_disabled: bool,
    max_body_bytes: usize,
    tokens_file: Option<keelson_server::auth::TokenAuthenticator>,
) -> TestApp {
    app_limited(auth_disabled, max_body_bytes, tokens_file, 0).await
}

/// [`app_configured`] with `auth.rate_limit_per_second`.
pub async fn app_limited(
    auth_disabled: bool,
    max_body_bytes: usize,
    tokens_file: Option<keelson_server::auth::TokenAuthenticator>,
    rate_limit_per_second: u32,
) -> TestApp {
    app_tweaked(auth_disabled, max_body_bytes, tokens_file, rate_limit_per_second, |_| {}).await
}

/// [`app_limited`] with further settings made by `tweak`.
pub async fn app_tweaked(
    auth_disabled: bool,
    max_body_bytes: usize,
    tokens_file: Option<keelson_server::auth::TokenAuthenticator>,
    rate_limit_per_second: u32,
    tweak: impl FnOnce(&mut keelson_core::config::Config),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&format!("sqlite://{}/k.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    let artifacts = ArtifactStore::local(&dir.path().join("artifacts")).await.unwrap();
    let mut config = keelson_core::config::Config { data_dir: dir.path().display().to_string(), ..Default::default() };
    config.auth.disabled = auth_disabled;
    config.auth.rate_limit_per_second = rate_limit_per_second;
    config.server.max_body_bytes = max_body_bytes as u64;
    config.secrets.key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    // Jobs stay queued, so tests see what a call enqueued; nothing runs on a timer.
    config.worker.in_process = false;
    config.monitoring.scheduler_interval_seconds = 0;
    tweak(&mut config);
    // The default egress policy: loopback and private destinations are refused, as on a real
    // server.
    let platform = Platform::start(
        PlatformOptions { config, job_handlers: HandlerRegistry::with_builtins(), tokens_file },
        store.clone(),
        artifacts,
    )
    .await
    .unwrap();
    let identities = platform.identities().clone();
    let routes = platform.routes().to_vec();
    let router = platform.router();
    TestApp { router, identities, routes, store, platform, _dir: dir }
}

/// [`call`] with `Authorization: <authorization>` (e.g. `Bearer kst_…`).
pub async fn call_as(
    app: &TestApp,
    authorization: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    send_json(app, Some(authorization), method, uri, body).await
}

pub async fn call(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    send_json(app, None, method, uri, body).await
}

/// One request with an optional JSON body and `Authorization`; answers status, the body as JSON
/// (or as a JSON string when it is not JSON) and headers.
async fn send_json(
    app: &TestApp,
    authorization: Option<&str>,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    call_in(app, None, authorization, method, uri, body).await
}

/// [`call_as`] in workspace `workspace` (sent as `X-MLFLOW-WORKSPACE`), with `Authorization`
/// when given.
pub async fn call_in(
    app: &TestApp,
    workspace: Option<&str>,
    authorization: Option<&str>,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(workspace) = workspace {
        request = request.header("x-mlflow-workspace", workspace);
    }
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
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

/// Sends a request built by the caller (headers of its choosing); answers status, body text and
/// headers.
pub async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, String, axum::http::HeaderMap) {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned(), headers)
}
