//! MLflow 3 traces (service.proto: StartTraceV3, GetTraceInfoV3, SearchTracesV3, tags, delete)
//! under `/api/3.0/mlflow/traces`.

use super::wire::{empty, opt_i64, opt_string, string_list, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Experiments);
    let write = Permission::write(ResourceKind::Experiments);
    let mut routes = Routes::new(state);
    for base in ["/api/3.0/mlflow/traces", "/ajax-api/3.0/mlflow/traces"] {
        routes = routes
            .post(base, write, start)
            .post(&format!("{base}/search"), read, search)
            .post(&format!("{base}/delete-traces"), write, delete)
            .get(&format!("{base}/{{trace_id}}"), read, get)
            .patch(&format!("{base}/{{trace_id}}/tags"), write, set_tag)
            .delete(&format!("{base}/{{trace_id}}/tags"), write, delete_tag);
    }
    routes
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[derive(Deserialize)]
struct StartRequest {
    trace: Value,
}

async fn start(State(state): State<AppState>, Rpc(req): Rpc<StartRequest>) -> Result<Json<Value>, ApiError> {
    let info = req.trace.get("trace_info").cloned().ok_or_else(|| super::experiments::missing("trace.trace_info"))?;
    let info = state.tracking.start_trace(info, now_ms()).await?;
    Ok(Json(json!({ "trace": { "trace_info": info } })))
}

async fn get(State(state): State<AppState>, Path(trace_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let info = state.tracking.get_trace_info(&trace_id).await?;
    Ok(Json(json!({ "trace": { "trace_info": info } })))
}

#[derive(Deserialize)]
struct SearchRequest {
    #[serde(default)]
    locations: Vec<Value>,
    #[serde(default, deserialize_with = "string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

async fn search(State(state): State<AppState>, Rpc(req): Rpc<SearchRequest>) -> Result<Json<Value>, ApiError> {
    let mut experiment_ids = req.experiment_ids;
    for location in &req.locations {
        if let Some(id) = location.get("mlflow_experiment").and_then(|e| e.get("experiment_id")).and_then(Value::as_str)
        {
            experiment_ids.push(id.to_string());
        }
    }
    let page = state
        .tracking
        .search_traces(&experiment_ids, req.max_results, req.page_token.as_deref().filter(|t| !t.is_empty()))
        .await?;
    let mut body = json!({ "traces": page.items });
    if let Some(token) = page.next_page_token {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct TagRequest {
    #[serde(default, deserialize_with = "opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
}

async fn set_tag(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    Rpc(req): Rpc<TagRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = req.key.ok_or_else(|| super::experiments::missing("key"))?;
    let value = req.value.ok_or_else(|| super::experiments::missing("value"))?;
    state.tracking.set_trace_tag(&trace_id, &key, Some(&value)).await?;
    Ok(empty())
}

async fn delete_tag(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    Rpc(req): Rpc<TagRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = req.key.ok_or_else(|| super::experiments::missing("key"))?;
    state.tracking.set_trace_tag(&trace_id, &key, None).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct DeleteRequest {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "string_list")]
    request_ids: Vec<String>,
    #[serde(default, deserialize_with = "string_list")]
    trace_ids: Vec<String>,
}

async fn delete(State(state): State<AppState>, Rpc(req): Rpc<DeleteRequest>) -> Result<Json<Value>, ApiError> {
    let experiment_id = req.experiment_id.ok_or_else(|| super::experiments::missing("experiment_id"))?;
    let mut ids = req.trace_ids;
    ids.extend(req.request_ids);
    let deleted = state.tracking.delete_traces(&experiment_id, &ids).await?;
    Ok(Json(json!({ "traces_deleted": deleted })))
}
