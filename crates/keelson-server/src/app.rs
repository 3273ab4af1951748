//! Builds the axum application from its parts, so tests run it in-process and `serve` binds it.

use crate::auth::{resolve_principal, AuthContext, RouteSpec, Routes};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::HttpMetrics;
use crate::routes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use axum::Router;
use keelson_artifacts::ArtifactStore;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::jobs::RetryPolicy;
use keelson_store::worker::HandlerRegistry;
use keelson_store::Store;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What handlers share: one pointer, since axum clones the state for every request (a clone of
/// every service handle and map per request showed as ~10% of a small prediction's CPU).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    /// The workspace this state serves; every store and service below is that workspace's.
    pub workspace: String,
    /// This workspace's metadata store.
    pub store: Store,
    /// Per-resource grants in this workspace.
    pub access: crate::access::AccessControl,
    /// The default workspace's store: users, tokens, roles, secrets, the audit log, the list of
    /// workspaces and the model catalog, which every workspace shares.
    pub system_store: Store,
    /// The process's workspaces, for the routes that create and delete them.
    pub platform: std::sync::Weak<crate::platform::Platform>,
    pub artifacts: ArtifactStore,
    /// Job kinds this deployment can run; enqueueing another kind is refused.
    pub job_kinds: Arc<HandlerRegistry>,
    pub retry: RetryPolicy,
    pub metrics: Arc<HttpMetrics>,
    pub auth: AuthContext,
    /// Host, Origin and response-header rules for browsers (`browser.rs`).
    pub browser: Arc<crate::browser::BrowserGuard>,
    pub max_body_bytes: usize,
    pub tracking: keelson_tracking::TrackingService,
    pub registry: keelson_tracking::RegistryService,
    pub catalog: keelson_genai::CatalogService,
    /// Configured catalog sources by name (`catalog.sources`).
    pub catalog_sources: std::collections::BTreeMap<String, String>,
    /// Where server-side requests to API-given destinations may go.
    pub egress: keelson_egress::EgressPolicy,
    pub serving: keelson_serving::ServingService,
    pub data: keelson_data::DataService,
    pub monitoring: keelson_monitor::MonitorService,
    pub secrets: crate::secrets::SecretService,
    /// Users, tokens and roles; also the request authenticator in `auth`.
    pub identities: crate::identity::IdentityService,
    /// Requests per second per principal; `None` for no limit.
    pub rate_limiter: Option<Arc<crate::rate_limit::PrincipalLimiter>>,
    pub rate_limit_per_second: u32,
    /// Where every mutating call is recorded.
    pub audit: crate::audit::AuditLog,
}

/// Every route of the API, each with its declared permission. Users, tokens, secrets and the
/// audit log belong to the whole server and are served in the default workspace only.
pub fn api_routes(state: &AppState) -> Routes {
    let routes = Routes::new(state.clone())
        .merge(routes::health::routes(state.clone()))
        .merge(routes::jobs::routes(state.clone()))
        .merge(routes::mlflow::routes(state.clone()))
        .merge(routes::models::routes(state.clone()))
        .merge(routes::catalog::routes(state.clone()))
        .merge(routes::datasets::routes(state.clone()))
        .merge(routes::endpoints::routes(state.clone()))
        .merge(routes::inference::routes(state.clone()))
        .merge(routes::lineage::routes(state.clone()))
        .merge(routes::monitoring::routes(state.clone()))
        .merge(routes::workspaces::routes(state.clone()))
        .merge(routes::identities::role_routes(state.clone()));
    if state.workspace != crate::identity::DEFAULT_WORKSPACE {
        return routes;
    }
    routes
        .merge(routes::secrets::routes(state.clone()))
        .merge(routes::audit::routes(state.clone()))
        .merge(routes::identities::routes(state.clone()))
}

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The route table with the OpenAPI document's own route, which lists every route, itself
/// included.
pub fn route_table(state: &AppState) -> Vec<RouteSpec> {
    let mut listed = api_routes(state).specs().to_vec();
    listed.push(RouteSpec {
        method: axum::http::Method::GET,
        path: OPENAPI_PATH.to_string(),
        permission: Permission::read(ResourceKind::System),
    });
    listed
}

/// One workspace's application: its routes, their fallbacks and the middleware that runs after
/// a request is known to be for this workspace (body limits, audit, metrics, rate limits).
/// `document` is the OpenAPI document, serialised once per process.
pub fn workspace_router(state: AppState, document: bytes::Bytes) -> Router {
    let routes = api_routes(&state).get(OPENAPI_PATH, Permission::read(ResourceKind::System), move || {
        let document = document.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document) }
    });
    let (limited, streaming, _specs) = routes.into_parts();
    limited
        .layer(axum::middleware::from_fn_with_state(state.max_body_bytes, refuse_declared_oversize))
        // Bodies without a declared length (chunked) are cut off by this limit while being read.
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .merge(streaming)
        // Inside the audit layer, so refusals by a resource's grants are recorded too.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::access::enforce))
        .fallback(|| async { ApiError::new(ErrorCode::EndpointNotFound, "no such endpoint") })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(ErrorCode::MethodNotAllowed, format!("method {method} is not allowed on this endpoint"))
        })
        // Runs after routing (the route template is known) and inside principal resolution.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::audit::record))
        // Runs after routing, so the route template is known.
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::record))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::rate_limit::limit))
        .with_state(state)
}

/// The middleware every request passes before it is handed to its workspace: request ids,
/// tracing, panics as 500s, browser checks, the caller's identity and the workspace named.
pub fn outer_layers(router: Router, auth: AuthContext, browser: Arc<crate::browser::BrowserGuard>) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .layer(axum::middleware::from_fn(crate::workspace::resolve))
        .layer(axum::middleware::from_fn_with_state(auth, resolve_principal))
        // Outside routing, so unknown paths and refusals get the same checks and headers.
        .layer(axum::middleware::from_fn_with_state(browser, crate::browser::guard))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            ApiError::new(ErrorCode::InternalError, "internal error; details are in the server log").into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id =
                        request.headers().get(REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Refuses a body whose declared length is over the limit before reading any of it, so a client
/// learns at once and the server spends nothing on it. Streaming routes (artifact uploads) get
/// their own limit when they arrive.
async fn refuse_declared_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body of {length} bytes is over the limit of {limit} bytes (server.max_body_bytes)"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}
