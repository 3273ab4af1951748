//! `/api/v1/secrets`: store secrets by name; list their names and times. No route returns a
//! value: the server reads them itself where a channel, source or provider names one.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::{ApiError, ErrorCode};
use crate::extract::ApiJson;
use crate::secrets::SecretError;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use keelson_core::auth::{Permission, Principal, ResourceKind};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Secrets);
    let admin = Permission::admin(ResourceKind::Secrets);
    Routes::new(state)
        .get("/api/v1/secrets", read, list)
        .put("/api/v1/secrets/{name}", admin, put)
        .delete("/api/v1/secrets/{name}", admin, delete)
        .post("/api/v1/secrets/rotate", admin, rotate)
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> Self {
        match error {
            // The operator's fix is in the message (which setting); it holds no secret.
            SecretError::Unavailable(message) => ApiError::new(ErrorCode::TemporarilyUnavailable, message),
            other => ApiError::from_domain(other),
        }
    }
}

/// The value arrives in the body, never in the path or query, which logs and proxies keep.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutSecret {
    value: String,
}

async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PutSecret>,
) -> Result<Json<Value>, ApiError> {
    let info = state.secrets.put(&name, &request.value, principal.name()).await?;
    Ok(Json(json!({ "secret": info })))
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "secrets": state.secrets.list().await? })))
}

async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    state.secrets.delete(&name).await?;
    Ok(Json(json!({})))
}

async fn rotate(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "rotation": state.secrets.rotate().await? })))
}
