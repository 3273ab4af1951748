//! Which workspace a request is for: MLflow's `X-MLFLOW-WORKSPACE` header (what the `mlflow`
//! client sends when a workspace is set) or Keelson's own `X-Keelson-Workspace`; `default` when
//! neither is sent. Only `default` exists until resources carry a workspace, so a route asked for
//! any other answers it as a missing resource (404, in `auth::authorize`), the same answer a
//! workspace without a grant will get.

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

/// Refuses a workspace that does not exist, as absence.
pub fn check(workspace: Option<&Workspace>) -> Result<(), ApiError> {
    match workspace {
        Some(Workspace(name)) if name != DEFAULT_WORKSPACE => Err(ApiError::new(
            ErrorCode::ResourceDoesNotExist,
            format!("workspace `{}` does not exist", name.escape_debug()),
        )),
        _ => Ok(()),
    }
}
