//! `/api/v1/datasets` and `/api/v1/recipes`: versioned datasets — create and tag, ingest a
//! source, run a recipe, validate, read versions back, and the quality trend.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::TryStreamExt;
use keelson_core::auth::{Permission, Principal, ResourceKind};
use keelson_core::datasets::validate_column_list;
use keelson_data::{DataError, IngestRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Datasets);
    let write = Permission::write(ResourceKind::Datasets);
    Routes::new(state)
        .post("/api/v1/datasets", write, create)
        .get("/api/v1/datasets", read, list)
        .get("/api/v1/datasets/{name}", read, get)
        .patch("/api/v1/datasets/{name}", write, update)
        .post("/api/v1/datasets/{name}/ingest", write, ingest)
        .get("/api/v1/datasets/{name}/versions", read, versions)
        .get("/api/v1/datasets/{name}/versions/{version}", read, version)
        .get("/api/v1/datasets/{name}/versions/{version}/data", read, rows)
        .get("/api/v1/datasets/{name}/versions/{version}/download", read, download)
        .post("/api/v1/datasets/{name}/versions/{version}/validate", write, validate)
        .get("/api/v1/datasets/{name}/quality", read, quality)
        .post("/api/v1/recipes/run", write, run_recipe)
}

impl From<DataError> for ApiError {
    fn from(error: DataError) -> Self {
        ApiError::from_domain(error)
    }
}

/// `latest` or a version number.
fn version_number(text: &str) -> Result<Option<i64>, ApiError> {
    if text == "latest" {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| ApiError::invalid(format!("version `{text}` is not a positive number or `latest`")))
}

fn principal_name(principal: &Principal) -> Option<String> {
    Some(principal.name().to_string()).filter(|n| !n.is_empty())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    pii_columns: Vec<String>,
}

fn columns(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    validate_column_list(&list).map_err(|e| ApiError::invalid(e.to_string()))
}

async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pii = if request.pii_columns.is_empty() { Vec::new() } else { columns(request.pii_columns)? };
    let dataset =
        state.store.create_dataset(&request.name, request.description.as_deref(), &request.tags, &pii).await?;
    Ok((StatusCode::CREATED, Json(json!({ "dataset": dataset }))))
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "datasets": state.store.list_datasets().await? })))
}

async fn get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "dataset": state.store.get_dataset(&name).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    #[serde(default)]
    description: Option<Option<String>>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pii_columns: Option<Vec<String>>,
}

async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let pii = match request.pii_columns {
        Some(list) if list.is_empty() => Some(Vec::new()),
        Some(list) => Some(columns(list)?),
        None => None,
    };
    let dataset = state.store.update_dataset(&name, request.description, request.tags, pii).await?;
    Ok(Json(json!({ "dataset": dataset })))
}

async fn ingest(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<IngestRequest>,
) -> Result<Json<Value>, ApiError> {
    let registered = state.data.ingest(&name, request, principal_name(&principal).as_deref()).await?;
    Ok(Json(serde_json::to_value(registered).map_err(|e| ApiError::from_domain(DataError::Internal(e.to_string())))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeRequest {
    recipe: Value,
}

async fn run_recipe(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<RecipeRequest>,
) -> Result<Json<Value>, ApiError> {
    let registered = state.data.run_recipe(&request.recipe, principal_name(&principal).as_deref()).await?;
    Ok(Json(serde_json::to_value(registered).map_err(|e| ApiError::from_domain(DataError::Internal(e.to_string())))?))
}

async fn versions(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "versions": state.store.list_dataset_versions(&name).await? })))
}

async fn version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "version": state.data.version(&name, version_number(&version)?).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowsQuery {
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn rows(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<RowsQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .data
        .rows(&name, version_number(&version)?, query.offset.unwrap_or(0), query.limit.unwrap_or(100))
        .await?;
    Ok(Json(rows))
}

async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let version = state.data.version(&name, version_number(&version)?).await?;
    let key = keelson_artifacts::ArtifactKey::parse(&version.artifact_key)?;
    let reader = state.artifacts.get(&key).await?;
    let size = reader.size();
    let stream = reader.into_stream().map_err(std::io::Error::other);
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apache.parquet".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}-v{}.parquet\"", name, version.version)),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    expectations: Value,
}

async fn validate(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiJson(request): ApiJson<ValidateRequest>,
) -> Result<Json<Value>, ApiError> {
    let validation = state.data.validate(&name, version_number(&version)?, &request.expectations).await?;
    Ok(Json(json!({ "validation": validation })))
}

async fn quality(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    state.store.get_dataset(&name).await?;
    Ok(Json(json!({ "points": state.store.dataset_quality(&name).await? })))
}
