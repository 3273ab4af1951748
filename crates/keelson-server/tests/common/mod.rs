//! The in-process harness every HTTP test file shares: an app on a temp dir (SQLite, local
//! artifacts) and a `call` that answers status, JSON body and headers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use keelson_artifacts::ArtifactStore;
use keelson_core::jobs::RetryPolicy;
use keelson_server::auth::{AuthContext, RolePolicy, RouteSpec};
use keelson_server::metrics::HttpMetrics;
use keelson_server::{build_app, AppState};
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
    _dir: tempfile::TempDir,
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
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&format!("sqlite://{}/k.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    let artifacts = ArtifactStore::local(&dir.path().join("artifacts")).await.unwrap();
    let model_source = keelson_server::model_source::RegistryModelSource {
        registry: keelson_tracking::RegistryService::new(store.clone(), artifacts.clone()),
        artifacts: artifacts.clone(),
    };
    let identities = keelson_server::identity::IdentityService::new(store.clone(), tokens_file);
    // The default policy: loopback and private destinations are refused, as on a real server.
    let egress = keelson_egress::EgressPolicy::default();
    let state = AppState::new(keelson_server::app::SharedState {
        serving: keelson_serving::ServingService::new(store.clone(), Arc::new(model_source), None, egress.clone()),
        data: keelson_data::DataService::new(
            store.clone(),
            artifacts.clone(),
            keelson_data::DataSettings {
                import_root: dir.path().join("imports"),
                scratch_dir: dir.path().join("scratch"),
                egress: egress.clone(),
            },
        )
        .unwrap(),
        monitoring: keelson_monitor::MonitorService::new(
            store.clone(),
            artifacts.clone(),
            keelson_monitor::service::MonitorSettings {
                scratch_dir: dir.path().join("scratch"),
                job_kinds: vec!["system.noop".into()],
                retry: RetryPolicy::default(),
                egress: egress.clone(),
                secrets: Arc::new(keelson_server::secrets::SecretService::new(
                    store.clone(),
                    Ok(keelson_server::secrets::Keyring::with_key(&[42; 32])),
                )),
            },
        )
        .unwrap(),
        audit: keelson_server::audit::AuditLog::start(store.clone()),
        rate_limiter: keelson_server::rate_limit::PrincipalLimiter::new(rate_limit_per_second),
        rate_limit_per_second,
        secrets: keelson_server::secrets::SecretService::new(
            store.clone(),
            Ok(keelson_server::secrets::Keyring::with_key(&[42; 32])),
        ),
        tracking: keelson_tracking::TrackingService::new(store.clone(), artifacts.clone()),
        registry: keelson_tracking::RegistryService::new(store.clone(), artifacts.clone()),
        catalog: keelson_genai::CatalogService::new(store.clone(), Default::default(), None),
        catalog_sources: Default::default(),
        egress,
        store,
        artifacts,
        job_kinds: Arc::new(HandlerRegistry::with_builtins()),
        retry: RetryPolicy::default(),
        metrics: Arc::new(HttpMetrics::default()),
        browser: Default::default(),
        auth: AuthContext {
            authenticator: Arc::new(identities.clone()),
            policy: Arc::new(RolePolicy { auth_disabled }),
        },
        identities,
        max_body_bytes,
    });
    let store = state.store.clone();
    let identities = state.identities.clone();
    let (router, routes) = build_app(state);
    TestApp { router, identities, routes, store, _dir: dir }
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
    let mut request = Request::builder().method(method).uri(uri);
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
