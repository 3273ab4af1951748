//! `/api/v1/jobs`: enqueue and inspect queued work.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::jobs::{Job, JobStatus, NewJob};
use keelson_store::jobs::{JobAttempt, JobFilter, JobPage};
use serde::Deserialize;

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Jobs);
    let write = Permission::write(ResourceKind::Jobs);
    Routes::new(state)
        .post("/api/v1/jobs", write, enqueue)
        .get("/api/v1/jobs", read, list)
        .get("/api/v1/jobs/{id}", read, get)
        .get("/api/v1/jobs/{id}/attempts", read, attempts)
        .post("/api/v1/jobs/{id}/cancel", write, cancel)
        .post("/api/v1/jobs/{id}/retry", write, retry)
}

async fn enqueue(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewJob>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    new.validate().map_err(|e| ApiError::invalid(e.to_string()))?;
    if !state.job_kinds.contains(&new.kind) {
        return Err(ApiError::invalid(format!(
            "unknown job kind `{}`; this server runs: {}",
            new.kind,
            state.job_kinds.kinds().join(", ")
        )));
    }
    let job = state.store.enqueue_job(&new, &state.retry).await?;
    Ok((StatusCode::CREATED, Json(job)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
    page_token: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<JobPage>, ApiError> {
    let status =
        params.status.map(|s| s.parse::<JobStatus>()).transpose().map_err(|e| ApiError::invalid(e.to_string()))?;
    let limit = params.limit.unwrap_or(100);
    if limit < 1 {
        return Err(ApiError::invalid(format!("limit {limit} must be at least 1")));
    }
    let filter = JobFilter { status, kind: params.kind, limit, page_token: params.page_token };
    Ok(Json(state.store.list_jobs(&filter).await?))
}

async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.store.get_job(&id).await?))
}

async fn attempts(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let attempts: Vec<JobAttempt> = state.store.list_job_attempts(&id).await?;
    Ok(Json(serde_json::json!({ "attempts": attempts })))
}

async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.store.cancel_job(&id).await?))
}

async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    Ok(Json(state.store.retry_job(&id).await?))
}
