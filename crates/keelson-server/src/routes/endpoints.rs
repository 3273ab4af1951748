//! `/api/v1/endpoints`: online endpoints, their deployments, traffic, mirror and rollback.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::error::ErrorCode;
use crate::extract::{ApiJson, ApiQuery};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use keelson_core::auth::{Permission, Principal, ResourceKind};
use keelson_core::clock::Clock;
use keelson_serving::collector::{
    check_ground_truth, read_back, write_ground_truth, GroundTruth, COLLECTED_PREFIX, GROUND_TRUTH_PREFIX,
};
use keelson_serving::endpoint::ConfigPatch;
use keelson_serving::rollout::RolloutSpec;
use keelson_serving::{DeploymentSpec, ServingError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Endpoints);
    let write = Permission::write(ResourceKind::Endpoints);
    Routes::new(state)
        .post("/api/v1/endpoints", write, create)
        .get("/api/v1/endpoints", read, list)
        .get("/api/v1/endpoints/{endpoint}", read, get)
        .delete("/api/v1/endpoints/{endpoint}", write, delete)
        .put("/api/v1/endpoints/{endpoint}/deployments/{deployment}", write, put_deployment)
        .get("/api/v1/endpoints/{endpoint}/deployments/{deployment}", read, get_deployment)
        .delete("/api/v1/endpoints/{endpoint}/deployments/{deployment}", write, delete_deployment)
        .put("/api/v1/endpoints/{endpoint}/traffic", write, set_traffic)
        .post("/api/v1/endpoints/{endpoint}/rollback", write, rollback)
        .get("/api/v1/endpoints/{endpoint}/history", read, history)
        .post("/api/v1/endpoints/{endpoint}/ground-truth", write, ground_truth)
        .post("/api/v1/endpoints/{endpoint}/rollouts", write, start_rollout)
        .get("/api/v1/endpoints/{endpoint}/rollouts", read, rollouts)
        .post("/api/v1/endpoints/{endpoint}/rollouts/abort", write, abort_rollout)
        .get("/api/v1/endpoints/{endpoint}/collected", read, collected)
}

impl From<ServingError> for ApiError {
    fn from(error: ServingError) -> Self {
        ApiError::from_domain(error)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let endpoint = state.serving.create_endpoint(&body.name, &body.description).await?;
    Ok((StatusCode::CREATED, Json(json!(endpoint))))
}

async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "endpoints": state.serving.endpoints() }))
}

async fn get(State(state): State<AppState>, Path(endpoint): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.serving.endpoint(&endpoint)?)))
}

async fn delete(State(state): State<AppState>, Path(endpoint): Path<String>) -> Result<Json<Value>, ApiError> {
    state.serving.delete_endpoint(&endpoint).await?;
    Ok(Json(json!({})))
}

async fn put_deployment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((endpoint, deployment)): Path<(String, String)>,
    ApiJson(spec): ApiJson<DeploymentSpec>,
) -> Result<Json<Value>, ApiError> {
    let view = state.serving.put_deployment(&endpoint, &deployment, spec, principal.name()).await?;
    Ok(Json(json!(view)))
}

async fn get_deployment(
    State(state): State<AppState>,
    Path((endpoint, deployment)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.serving.deployment(&endpoint, &deployment)?)))
}

async fn delete_deployment(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((endpoint, deployment)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state.serving.delete_deployment(&endpoint, &deployment, principal.name()).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficBody {
    #[serde(default)]
    traffic: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    mirror: Option<BTreeMap<String, u32>>,
    /// Absent keeps the current key; `null` removes it.
    #[serde(default)]
    sticky_header: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
}

/// Changes what the body names and keeps the rest.
async fn set_traffic(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(endpoint): Path<String>,
    ApiJson(body): ApiJson<TrafficBody>,
) -> Result<Json<Value>, ApiError> {
    let sticky_header = match body.sticky_header {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(header)) => Some(Some(header)),
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("`sticky_header` must be a header name or null, not {other}"),
            ))
        }
    };
    let patch = ConfigPatch { traffic: body.traffic, mirror: body.mirror, sticky_header };
    let reason = body.reason.unwrap_or_else(|| "traffic changed".to_string());
    let view = state.serving.patch_config(&endpoint, patch, principal.name(), &reason).await?;
    Ok(Json(json!(view)))
}

async fn rollback(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(endpoint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.serving.rollback(&endpoint, principal.name()).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default)]
    limit: Option<i64>,
}

async fn history(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let changes = state.serving.history(&endpoint, query.limit.unwrap_or(100)).await?;
    Ok(Json(json!({ "changes": changes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroundTruthBody {
    labels: Vec<GroundTruth>,
}

/// Labels for earlier predictions, by correlation id; written before the call is answered.
async fn ground_truth(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    ApiJson(body): ApiJson<GroundTruthBody>,
) -> Result<Json<Value>, ApiError> {
    state.serving.endpoint(&endpoint)?;
    check_ground_truth(&body.labels).map_err(|m| ApiError::new(ErrorCode::InvalidParameterValue, m))?;
    let now = keelson_core::clock::SystemClock.now_millis();
    let file = write_ground_truth(&state.artifacts, &endpoint, &body.labels, now).await.map_err(|message| {
        tracing::error!(%message, "ground truth could not be written");
        ApiError::new(ErrorCode::TemporarilyUnavailable, "the artifact store did not take the labels; retry")
    })?;
    Ok(Json(json!({ "accepted": body.labels.len(), "file": file })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectedQuery {
    /// `requests` (default) or `ground-truth`.
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// The newest collected records (or labels) of an endpoint and the files they are in.
async fn collected(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    ApiQuery(query): ApiQuery<CollectedQuery>,
) -> Result<Json<Value>, ApiError> {
    state.serving.endpoint(&endpoint)?;
    let prefix = match query.kind.as_deref().unwrap_or("requests") {
        "requests" => COLLECTED_PREFIX,
        "ground-truth" => GROUND_TRUTH_PREFIX,
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValue,
                format!("`kind` is `requests` or `ground-truth`, not `{other}`"),
            ))
        }
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    let (files, records) = read_back(&state.artifacts, prefix, &endpoint, limit).await.map_err(|message| {
        tracing::error!(%message, "collected data could not be read");
        ApiError::new(ErrorCode::TemporarilyUnavailable, "the artifact store could not be read; retry")
    })?;
    Ok(Json(json!({ "files": files, "records": records })))
}

async fn start_rollout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(endpoint): Path<String>,
    ApiJson(spec): ApiJson<RolloutSpec>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let rollout = state.serving.start_rollout(&endpoint, spec, principal.name()).await?;
    Ok((StatusCode::CREATED, Json(json!(rollout))))
}

async fn rollouts(
    State(state): State<AppState>,
    Path(endpoint): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let rollouts = state.serving.rollouts(&endpoint, query.limit.unwrap_or(20)).await?;
    Ok(Json(json!({ "rollouts": rollouts })))
}

async fn abort_rollout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(endpoint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.serving.abort_rollout(&endpoint, principal.name()).await?)))
}
