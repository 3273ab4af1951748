//! MLflow 3 logged models (service.proto: CreateLoggedModel … LogLoggedModelParams).

use super::wire::{empty, opt_i64, opt_string, string_list, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::tracking::{LoggedModel, Param, Tag};
use keelson_store::tracking::NewLoggedModel;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Models);
    let write = Permission::write(ResourceKind::Models);
    let mut routes = Routes::new(state);
    for base in super::rpc_paths("/logged-models") {
        routes = routes
            .post(&base, write, create)
            .post(&format!("{base}/search"), read, search)
            .get(&format!("{base}/{{model_id}}"), read, get)
            .patch(&format!("{base}/{{model_id}}"), write, finalize)
            .delete(&format!("{base}/{{model_id}}"), write, delete)
            .patch(&format!("{base}/{{model_id}}/tags"), write, set_tags)
            .delete(&format!("{base}/{{model_id}}/tags/{{tag_key}}"), write, delete_tag)
            .post(&format!("{base}/{{model_id}}/params"), write, log_params);
    }
    routes
}

/// LoggedModel { info, data } as the wire shows it.
fn wire_model(model: &LoggedModel) -> Value {
    let mut info = json!({
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp_ms,
        "last_updated_timestamp_ms": model.last_updated_timestamp_ms,
        "artifact_uri": model.artifact_uri,
        "status": model.status,
        "tags": model.tags,
    });
    if let Some(v) = &model.model_type {
        info["model_type"] = json!(v);
    }
    if let Some(v) = &model.source_run_id {
        info["source_run_id"] = json!(v);
    }
    if let Some(v) = &model.status_message {
        info["status_message"] = json!(v);
    }
    json!({ "info": info, "data": { "params": model.params, "metrics": model.metrics } })
}

#[derive(Deserialize)]
struct CreateRequest {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    model_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create(State(state): State<AppState>, Rpc(req): Rpc<CreateRequest>) -> Result<Json<Value>, ApiError> {
    let experiment_id = req.experiment_id.ok_or_else(|| super::experiments::missing("experiment_id"))?;
    let name = req.name.filter(|n| !n.is_empty()).unwrap_or_else(|| "model".to_string());
    let model = state
        .tracking
        .create_logged_model(NewLoggedModel {
            experiment_id,
            name,
            model_type: req.model_type.filter(|s| !s.is_empty()),
            source_run_id: req.source_run_id.filter(|s| !s.is_empty()),
            params: req.params,
            tags: req.tags,
        })
        .await?;
    Ok(Json(json!({ "model": wire_model(&model) })))
}

async fn get(State(state): State<AppState>, Path(model_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let model = state.tracking.get_logged_model(&model_id).await?;
    Ok(Json(json!({ "model": wire_model(&model) })))
}

#[derive(Deserialize)]
struct FinalizeRequest {
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
}

async fn finalize(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    Rpc(req): Rpc<FinalizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let status = req.status.ok_or_else(|| super::experiments::missing("status"))?;
    let model = state.tracking.finalize_logged_model(&model_id, &status).await?;
    Ok(Json(json!({ "model": wire_model(&model) })))
}

async fn delete(State(state): State<AppState>, Path(model_id): Path<String>) -> Result<Json<Value>, ApiError> {
    state.tracking.delete_logged_model(&model_id).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct TagsRequest {
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn set_tags(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    Rpc(req): Rpc<TagsRequest>,
) -> Result<Json<Value>, ApiError> {
    state.tracking.set_logged_model_tags(&model_id, &req.tags).await?;
    Ok(empty())
}

async fn delete_tag(
    State(state): State<AppState>,
    Path((model_id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state.tracking.delete_logged_model_tag(&model_id, &key).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct ParamsRequest {
    #[serde(default)]
    params: Vec<Param>,
}

async fn log_params(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    Rpc(req): Rpc<ParamsRequest>,
) -> Result<Json<Value>, ApiError> {
    state.tracking.log_logged_model_params(&model_id, &req.params).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct SearchRequest {
    #[serde(default, deserialize_with = "string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

async fn search(State(state): State<AppState>, Rpc(req): Rpc<SearchRequest>) -> Result<Json<Value>, ApiError> {
    let page = state
        .tracking
        .search_logged_models(&req.experiment_ids, req.max_results, req.page_token.as_deref().filter(|t| !t.is_empty()))
        .await?;
    let mut body = json!({ "models": page.items.iter().map(wire_model).collect::<Vec<_>>() });
    if let Some(token) = page.next_page_token {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}
