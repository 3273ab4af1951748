//! Experiments (MLflow service.proto: CreateExperiment … DeleteExperimentTag).

use super::rpc;
use super::wire::{empty, opt_i64, opt_string, string_list, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::extract::State;
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::tracking::{Tag, ViewType};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Experiments);
    let write = Permission::write(ResourceKind::Experiments);
    let routes = Routes::new(state);
    let routes = rpc!(routes, post, "/experiments/create", write, create);
    let routes = rpc!(routes, get, "/experiments/get", read, get);
    let routes = rpc!(routes, get, "/experiments/get-by-name", read, get_by_name);
    let routes = rpc!(routes, post, "/experiments/search", read, search);
    let routes = rpc!(routes, get, "/experiments/search", read, search);
    let routes = rpc!(routes, post, "/experiments/update", write, update);
    let routes = rpc!(routes, post, "/experiments/delete", write, delete);
    let routes = rpc!(routes, post, "/experiments/restore", write, restore);
    let routes = rpc!(routes, post, "/experiments/set-experiment-tag", write, set_tag);
    rpc!(routes, post, "/experiments/delete-experiment-tag", write, delete_tag)
}

#[derive(Deserialize)]
struct CreateExperiment {
    name: String,
    #[serde(default, deserialize_with = "opt_string")]
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create(State(state): State<AppState>, Rpc(req): Rpc<CreateExperiment>) -> Result<Json<Value>, ApiError> {
    let id = state.tracking.create_experiment(&req.name, req.artifact_location.as_deref(), &req.tags).await?;
    Ok(Json(json!({ "experiment_id": id })))
}

#[derive(Deserialize)]
struct ExperimentId {
    #[serde(deserialize_with = "opt_string", default)]
    experiment_id: Option<String>,
}

impl ExperimentId {
    fn required(self) -> Result<String, ApiError> {
        self.experiment_id.ok_or_else(|| missing("experiment_id"))
    }
}

pub(crate) fn missing(field: &str) -> ApiError {
    ApiError::invalid(format!("Missing value for required parameter '{field}'. See the API docs for more information about request parameters."))
}

async fn get(State(state): State<AppState>, Rpc(req): Rpc<ExperimentId>) -> Result<Json<Value>, ApiError> {
    let experiment = state.tracking.get_experiment(&req.required()?).await?;
    Ok(Json(json!({ "experiment": experiment })))
}

#[derive(Deserialize)]
struct ByName {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_name: Option<String>,
}

async fn get_by_name(State(state): State<AppState>, Rpc(req): Rpc<ByName>) -> Result<Json<Value>, ApiError> {
    let name = req.experiment_name.ok_or_else(|| missing("experiment_name"))?;
    let experiment = state.tracking.get_experiment_by_name(&name).await?;
    Ok(Json(json!({ "experiment": experiment })))
}

#[derive(Deserialize)]
struct SearchExperiments {
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    view_type: Option<String>,
}

pub(crate) fn view_type(raw: Option<&str>) -> Result<ViewType, ApiError> {
    raw.map(|v| v.parse::<ViewType>().map_err(ApiError::invalid)).transpose().map(Option::unwrap_or_default)
}

async fn search(State(state): State<AppState>, Rpc(req): Rpc<SearchExperiments>) -> Result<Json<Value>, ApiError> {
    let page = state
        .tracking
        .search_experiments(
            view_type(req.view_type.as_deref())?,
            req.filter.as_deref().unwrap_or(""),
            &req.order_by,
            req.max_results,
            req.page_token.as_deref().filter(|t| !t.is_empty()),
        )
        .await?;
    let mut body = json!({ "experiments": page.items });
    if let Some(token) = page.next_page_token {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct UpdateExperiment {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    new_name: Option<String>,
}

async fn update(State(state): State<AppState>, Rpc(req): Rpc<UpdateExperiment>) -> Result<Json<Value>, ApiError> {
    let id = req.experiment_id.ok_or_else(|| missing("experiment_id"))?;
    if let Some(name) = req.new_name {
        state.tracking.rename_experiment(&id, &name).await?;
    }
    Ok(empty())
}

async fn delete(State(state): State<AppState>, Rpc(req): Rpc<ExperimentId>) -> Result<Json<Value>, ApiError> {
    state.tracking.delete_experiment(&req.required()?).await?;
    Ok(empty())
}

async fn restore(State(state): State<AppState>, Rpc(req): Rpc<ExperimentId>) -> Result<Json<Value>, ApiError> {
    state.tracking.restore_experiment(&req.required()?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct ExperimentTag {
    #[serde(default, deserialize_with = "opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
}

async fn set_tag(State(state): State<AppState>, Rpc(req): Rpc<ExperimentTag>) -> Result<Json<Value>, ApiError> {
    let id = req.experiment_id.ok_or_else(|| missing("experiment_id"))?;
    let key = req.key.ok_or_else(|| missing("key"))?;
    let value = req.value.ok_or_else(|| missing("value"))?;
    state.tracking.set_experiment_tag(&id, &Tag::new(key, value)).await?;
    Ok(empty())
}

async fn delete_tag(State(state): State<AppState>, Rpc(req): Rpc<ExperimentTag>) -> Result<Json<Value>, ApiError> {
    let id = req.experiment_id.ok_or_else(|| missing("experiment_id"))?;
    let key = req.key.ok_or_else(|| missing("key"))?;
    state.tracking.delete_experiment_tag(&id, &key).await?;
    Ok(empty())
}
