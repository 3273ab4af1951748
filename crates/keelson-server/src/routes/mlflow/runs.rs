//! Runs, metrics, params, tags, inputs/outputs and run search (MLflow service.proto).

use super::experiments::{missing, view_type};
use super::rpc;
use super::wire::{empty, opt_i64, opt_string, string_list, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::tracking::{parse_double, DatasetInput, Metric, ModelInput, ModelOutput, Param, RunStatus, Tag};
use keelson_store::tracking::RunUpdate;
use keelson_tracking::CreateRun;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Experiments);
    let write = Permission::write(ResourceKind::Experiments);
    let routes = Routes::new(state);
    let routes = rpc!(routes, post, "/runs/create", write, create);
    let routes = rpc!(routes, get, "/runs/get", read, get);
    let routes = rpc!(routes, post, "/runs/update", write, update);
    let routes = rpc!(routes, post, "/runs/delete", write, delete);
    let routes = rpc!(routes, post, "/runs/restore", write, restore);
    let routes = rpc!(routes, post, "/runs/log-metric", write, log_metric);
    let routes = rpc!(routes, post, "/runs/log-parameter", write, log_param);
    let routes = rpc!(routes, post, "/runs/set-tag", write, set_tag);
    let routes = rpc!(routes, post, "/runs/delete-tag", write, delete_tag);
    let routes = rpc!(routes, post, "/runs/log-batch", write, log_batch);
    let routes = rpc!(routes, post, "/runs/log-inputs", write, log_inputs);
    let routes = rpc!(routes, post, "/runs/outputs", write, log_outputs);
    let routes = rpc!(routes, post, "/runs/search", read, search);
    let routes = rpc!(routes, get, "/metrics/get-history", read, metric_history);
    rpc!(routes, get, "/metrics/get-history-bulk-interval", read, metric_history_bulk)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `run_id`, or its deprecated alias `run_uuid`.
#[derive(Deserialize)]
struct RunRef {
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
}

impl RunRef {
    fn id(self) -> Result<String, ApiError> {
        self.run_id
            .filter(|s| !s.is_empty())
            .or(self.run_uuid.filter(|s| !s.is_empty()))
            .ok_or_else(|| missing("run_id"))
    }
}

#[derive(Deserialize)]
struct CreateRunRequest {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_name: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create(State(state): State<AppState>, Rpc(req): Rpc<CreateRunRequest>) -> Result<Json<Value>, ApiError> {
    let run = state
        .tracking
        .create_run(
            CreateRun {
                experiment_id: req.experiment_id.unwrap_or_default(),
                user_id: req.user_id.unwrap_or_default(),
                start_time: req.start_time,
                run_name: req.run_name,
                tags: req.tags,
            },
            now_ms(),
        )
        .await?;
    Ok(Json(json!({ "run": run })))
}

async fn get(State(state): State<AppState>, Rpc(req): Rpc<RunRef>) -> Result<Json<Value>, ApiError> {
    let run = state.tracking.get_run(&req.id()?).await?;
    Ok(Json(json!({ "run": run })))
}

#[derive(Deserialize)]
struct UpdateRunRequest {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default, deserialize_with = "opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    end_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    run_name: Option<String>,
}

async fn update(State(state): State<AppState>, Rpc(req): Rpc<UpdateRunRequest>) -> Result<Json<Value>, ApiError> {
    let status = req.status.map(|s| s.parse::<RunStatus>().map_err(ApiError::invalid)).transpose()?;
    let update = RunUpdate { status, end_time: req.end_time, run_name: req.run_name };
    let info = state.tracking.update_run(&req.run.id()?, update).await?;
    Ok(Json(json!({ "run_info": info })))
}

async fn delete(State(state): State<AppState>, Rpc(req): Rpc<RunRef>) -> Result<Json<Value>, ApiError> {
    state.tracking.delete_run(&req.id()?).await?;
    Ok(empty())
}

async fn restore(State(state): State<AppState>, Rpc(req): Rpc<RunRef>) -> Result<Json<Value>, ApiError> {
    state.tracking.restore_run(&req.id()?).await?;
    Ok(empty())
}

/// A metric as sent on the wire.
#[derive(Deserialize)]
struct WireMetric {
    #[serde(default, deserialize_with = "opt_string")]
    key: Option<String>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default, deserialize_with = "opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    step: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    model_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    dataset_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    dataset_digest: Option<String>,
}

impl WireMetric {
    fn into_metric(self, path: &str) -> Result<Metric, ApiError> {
        let key = self.key.ok_or_else(|| missing(&format!("{path}key")))?;
        let raw = self.value.ok_or_else(|| missing(&format!("{path}value")))?;
        let value = parse_double(&raw).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {raw} for parameter '{path}value' supplied: Please specify value as a valid double \
                 (64-bit floating point)"
            ))
        })?;
        let timestamp = self.timestamp.ok_or_else(|| missing(&format!("{path}timestamp")))?;
        Ok(Metric {
            key,
            value,
            timestamp,
            step: self.step.unwrap_or(0),
            run_id: None,
            model_id: self.model_id.filter(|s| !s.is_empty()),
            dataset_name: self.dataset_name.filter(|s| !s.is_empty()),
            dataset_digest: self.dataset_digest.filter(|s| !s.is_empty()),
        })
    }
}

#[derive(Deserialize)]
struct LogMetricRequest {
    #[serde(flatten)]
    run: RunRef,
    #[serde(flatten)]
    metric: WireMetric,
}

async fn log_metric(State(state): State<AppState>, Rpc(req): Rpc<LogMetricRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = req.run.id()?;
    let metric = req.metric.into_metric("")?;
    state.tracking.log_metric(&run_id, &metric).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct KeyValueRequest {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default, deserialize_with = "opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
}

async fn log_param(State(state): State<AppState>, Rpc(req): Rpc<KeyValueRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = req.run.id()?;
    let param =
        Param { key: req.key.ok_or_else(|| missing("key"))?, value: req.value.ok_or_else(|| missing("value"))? };
    state.tracking.log_param(&run_id, &param).await?;
    Ok(empty())
}

async fn set_tag(State(state): State<AppState>, Rpc(req): Rpc<KeyValueRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = req.run.id()?;
    let tag = Tag::new(req.key.ok_or_else(|| missing("key"))?, req.value.ok_or_else(|| missing("value"))?);
    state.tracking.set_tag(&run_id, &tag).await?;
    Ok(empty())
}

async fn delete_tag(State(state): State<AppState>, Rpc(req): Rpc<KeyValueRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = req.run.id()?;
    state.tracking.delete_tag(&run_id, &req.key.ok_or_else(|| missing("key"))?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LogBatchRequest {
    // Not flattened: serde buffers a flattened struct's whole input, metrics included.
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<WireMetric>,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn log_batch(State(state): State<AppState>, Rpc(req): Rpc<LogBatchRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = RunRef { run_id: req.run_id, run_uuid: req.run_uuid }.id()?;
    let metrics = req
        .metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| m.into_metric(&format!("metrics[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    state.tracking.log_batch(&run_id, &metrics, &req.params, &req.tags).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LogInputsRequest {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
    #[serde(default)]
    models: Vec<ModelInput>,
}

async fn log_inputs(State(state): State<AppState>, Rpc(req): Rpc<LogInputsRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = req.run.id()?;
    state.tracking.log_inputs(&run_id, &req.datasets, &req.models).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct LogOutputsRequest {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default)]
    models: Vec<ModelOutput>,
}

async fn log_outputs(State(state): State<AppState>, Rpc(req): Rpc<LogOutputsRequest>) -> Result<Json<Value>, ApiError> {
    let run_id = req.run.id()?;
    state.tracking.log_outputs(&run_id, &req.models).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct SearchRunsRequest {
    #[serde(default, deserialize_with = "string_list")]
    experiment_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

/// SearchRuns.Response, serialised straight from the runs (no intermediate JSON tree).
#[derive(serde::Serialize)]
struct SearchRunsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    runs: Vec<keelson_core::tracking::Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    Rpc(req): Rpc<SearchRunsRequest>,
) -> Result<Json<SearchRunsResponse>, ApiError> {
    let page = state
        .tracking
        .search_runs(
            req.experiment_ids,
            req.filter.as_deref().unwrap_or(""),
            view_type(req.run_view_type.as_deref())?,
            req.max_results,
            &req.order_by,
            req.page_token.filter(|t| !t.is_empty()),
        )
        .await?;
    Ok(Json(SearchRunsResponse { runs: page.items, next_page_token: page.next_page_token }))
}

#[derive(Deserialize)]
struct MetricHistoryRequest {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default, deserialize_with = "opt_string")]
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

async fn metric_history(
    State(state): State<AppState>,
    Rpc(req): Rpc<MetricHistoryRequest>,
) -> Result<axum::response::Response, ApiError> {
    let run_id = req.run.id()?;
    let key = req.metric_key.ok_or_else(|| missing("metric_key"))?;
    let (metrics, token) = state
        .tracking
        .get_metric_history_json(&run_id, &key, req.max_results, req.page_token.as_deref().filter(|t| !t.is_empty()))
        .await?;
    // GetMetricHistory.Response, assembled around the array the store rendered.
    let mut body = String::with_capacity(metrics.len() + 64);
    body.push_str("{\"metrics\":");
    body.push_str(&metrics);
    if let Some(token) = token {
        body.push_str(",\"next_page_token\":");
        body.push_str(&serde_json::Value::String(token).to_string());
    }
    body.push('}');
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
struct BulkIntervalRequest {
    #[serde(default, deserialize_with = "string_list")]
    run_ids: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
}

async fn metric_history_bulk(
    State(state): State<AppState>,
    Rpc(req): Rpc<BulkIntervalRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = req.metric_key.ok_or_else(|| missing("metric_key"))?;
    let metrics = state
        .tracking
        .get_metric_history_bulk_interval(&req.run_ids, &key, req.start_step, req.end_step, req.max_results)
        .await?;
    // MetricWithRunId: key, value, timestamp, step, run_id.
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|m| {
            json!({
                "key": m.key,
                "value": serde_json::to_value(m).ok().and_then(|v| v.get("value").cloned()).unwrap_or(Value::Null),
                "timestamp": m.timestamp,
                "step": m.step,
                "run_id": m.run_id,
            })
        })
        .collect();
    Ok(Json(json!({ "metrics": metrics })))
}
