//! Which workspace a request is for: MLflow's `X-MLFLOW-WORKSPACE` header (what the `mlflow`
//! client sends when a workspace is set) or Keelson's own `X-Keelson-Workspace`; `default` when
//! neither is sent. A workspace that does not exist and one the caller has no role in get the
//! same answer, a missing resource (404, in `auth::authorize`).

use crate::error::{ApiError, ErrorCode};
use crate::identity::DEFAULT_WORKSPACE;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub const MLFLOW_WORKSPACE_HEADER: &str = "x-mlflow-workspace";
pub const KEELSON_WORKSPACE_HEADER: &str = "x-keelson-workspace";

/// The request's workspace, for handlers and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace(pub String);

pub async fn resolve(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let named = headers
        .get(MLFLOW_WORKSPACE_HEADER)
        .or_else(|| headers.get(KEELSON_WORKSPACE_HEADER))
        .map(|value| value.to_str().map(str::trim).unwrap_or("\u{0}").to_string());
    let workspace = named.filter(|name| !name.is_empty()).unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
    request.extensions_mut().insert(Workspace(workspace));
    next.run(request).await
}

/// Marks a request for a workspace the caller cannot see (it does not exist, or the caller has
/// no role in it). The platform hands such a request to the default workspace's routes, so it
/// is routed and audited like any other, and every route that needs a principal refuses it.
#[derive(Debug, Clone, Copy)]
pub struct Hidden;

/// Refuses a request for a workspace the caller cannot see, as absence.
pub fn check(request: &Request) -> Result<(), ApiError> {
    if request.extensions().get::<Hidden>().is_none() {
        return Ok(());
    }
    let name = request.extensions().get::<Workspace>().map_or("", |workspace| workspace.0.as_str());
    Err(ApiError::new(ErrorCode::ResourceDoesNotExist, format!("workspace `{}` does not exist", name.escape_debug())))
}
