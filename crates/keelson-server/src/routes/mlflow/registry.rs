//! MLflow's model registry (model_registry.proto): registered models, versions, tags, stages and
//! aliases. Alias moves go through Keelson's promotion policies like every other alias move.

use super::experiments::missing;
use super::rpc;
use super::wire::{empty, opt_i64, opt_string, string_list, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::extract::State;
use axum::{Extension, Json};
use keelson_core::auth::{Permission, Principal, ResourceKind};
use keelson_core::tracking::Tag;
use keelson_tracking::{Actor, CreateModelVersion};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Models);
    let write = Permission::write(ResourceKind::Models);
    let routes = Routes::new(state);
    let routes = rpc!(routes, post, "/registered-models/create", write, create_model);
    let routes = rpc!(routes, get, "/registered-models/get", read, get_model);
    let routes = rpc!(routes, post, "/registered-models/rename", write, rename_model);
    let routes = rpc!(routes, patch, "/registered-models/update", write, update_model);
    let routes = rpc!(routes, delete, "/registered-models/delete", write, delete_model);
    let routes = rpc!(routes, get, "/registered-models/search", read, search_models);
    let routes = rpc!(routes, post, "/registered-models/get-latest-versions", read, latest_versions);
    let routes = rpc!(routes, get, "/registered-models/get-latest-versions", read, latest_versions);
    let routes = rpc!(routes, post, "/registered-models/set-tag", write, set_model_tag);
    let routes = rpc!(routes, delete, "/registered-models/delete-tag", write, delete_model_tag);
    let routes = rpc!(routes, post, "/registered-models/alias", write, set_alias);
    let routes = rpc!(routes, delete, "/registered-models/alias", write, delete_alias);
    let routes = rpc!(routes, get, "/registered-models/alias", read, get_by_alias);
    let routes = rpc!(routes, post, "/model-versions/create", write, create_version);
    let routes = rpc!(routes, get, "/model-versions/get", read, get_version);
    let routes = rpc!(routes, patch, "/model-versions/update", write, update_version);
    let routes = rpc!(routes, delete, "/model-versions/delete", write, delete_version);
    let routes = rpc!(routes, post, "/model-versions/transition-stage", write, transition_stage);
    let routes = rpc!(routes, get, "/model-versions/search", read, search_versions);
    let routes = rpc!(routes, get, "/model-versions/get-download-uri", read, download_uri);
    let routes = rpc!(routes, post, "/model-versions/set-tag", write, set_version_tag);
    rpc!(routes, delete, "/model-versions/delete-tag", write, delete_version_tag)
}

pub(crate) fn actor(principal: &Principal) -> Actor {
    Actor::new(principal.name(), principal.roles().to_vec())
}

/// The fields most registry messages share; each handler says which it requires.
#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    new_name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    version: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    key: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    value: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    alias: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    stage: Option<String>,
    #[serde(default)]
    archive_existing_versions: Option<bool>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default, deserialize_with = "string_list")]
    stages: Vec<String>,
}

fn required(field: Option<String>, name: &str) -> Result<String, ApiError> {
    field.ok_or_else(|| missing(name))
}

impl Fields {
    fn name(&mut self) -> Result<String, ApiError> {
        required(self.name.take(), "name")
    }
    fn version(&mut self) -> Result<String, ApiError> {
        required(self.version.take(), "version")
    }
}

async fn create_model(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Rpc(mut req): Rpc<Fields>,
) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let model = state
        .registry
        .create_registered_model(&name, req.description.as_deref(), &req.tags, &actor(&principal))
        .await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn get_model(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let model = state.registry.get_registered_model(&req.name()?).await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn rename_model(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let new_name = required(req.new_name.take(), "new_name")?;
    let model = state.registry.rename_registered_model(&name, &new_name).await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn update_model(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let model = state.registry.update_registered_model(&name, req.description.as_deref()).await?;
    Ok(Json(json!({ "registered_model": model })))
}

async fn delete_model(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    state.registry.delete_registered_model(&req.name()?).await?;
    Ok(empty())
}

/// A list answer in proto3 JSON: an empty list and an absent token are left out, so an empty
/// result is `{}`.
fn list_body<T: serde::Serialize>(field: &str, items: &[T], next_page_token: Option<String>) -> Value {
    let mut body = serde_json::Map::new();
    if !items.is_empty() {
        body.insert(field.to_string(), json!(items));
    }
    if let Some(token) = next_page_token {
        body.insert("next_page_token".into(), json!(token));
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct Search {
    #[serde(default, deserialize_with = "opt_string")]
    filter: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "string_list")]
    order_by: Vec<String>,
    #[serde(default, deserialize_with = "opt_string")]
    page_token: Option<String>,
}

async fn search_models(State(state): State<AppState>, Rpc(req): Rpc<Search>) -> Result<Json<Value>, ApiError> {
    let page = state
        .registry
        .search_registered_models(req.filter.as_deref(), &req.order_by, req.max_results, req.page_token.as_deref())
        .await?;
    Ok(Json(list_body("registered_models", &page.items, page.next_page_token)))
}

async fn latest_versions(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let versions = state.registry.get_latest_versions(&name, &req.stages).await?;
    Ok(Json(list_body("model_versions", &versions, None)))
}

async fn set_model_tag(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let tag = Tag::new(required(req.key.take(), "key")?, required(req.value.take(), "value")?);
    state.registry.set_registered_model_tag(&name, &tag).await?;
    Ok(empty())
}

async fn delete_model_tag(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    state.registry.delete_registered_model_tag(&name, &required(req.key.take(), "key")?).await?;
    Ok(empty())
}

async fn set_alias(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Rpc(mut req): Rpc<Fields>,
) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let alias = required(req.alias.take(), "alias")?;
    let version = req.version()?;
    state.registry.set_alias(&name, &alias, &version, &actor(&principal), Some("set through the MLflow API")).await?;
    Ok(empty())
}

async fn delete_alias(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Rpc(mut req): Rpc<Fields>,
) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let alias = required(req.alias.take(), "alias")?;
    state.registry.delete_alias(&name, &alias, &actor(&principal), Some("deleted through the MLflow API")).await?;
    Ok(empty())
}

async fn get_by_alias(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let name = req.name()?;
    let alias = required(req.alias.take(), "alias")?;
    let version = state.registry.get_model_version_by_alias(&name, &alias).await?;
    Ok(Json(json!({ "model_version": version })))
}

#[derive(Deserialize)]
struct CreateVersion {
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    source: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    run_link: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    model_id: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

async fn create_version(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Rpc(req): Rpc<CreateVersion>,
) -> Result<Json<Value>, ApiError> {
    let request = CreateModelVersion {
        name: required(req.name, "name")?,
        source: required(req.source, "source")?,
        run_id: req.run_id,
        run_link: req.run_link,
        description: req.description,
        tags: req.tags,
        model_id: req.model_id,
    };
    let version = state.registry.create_model_version(request, &actor(&principal)).await?;
    Ok(Json(json!({ "model_version": version })))
}

async fn get_version(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    let version = state.registry.get_model_version(&name, &version).await?;
    Ok(Json(json!({ "model_version": version })))
}

async fn update_version(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    let version = state.registry.update_model_version(&name, &version, req.description.as_deref()).await?;
    Ok(Json(json!({ "model_version": version })))
}

async fn delete_version(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    state.registry.delete_model_version(&name, &version).await?;
    Ok(empty())
}

async fn transition_stage(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    let stage = required(req.stage.take(), "stage")?;
    let archive = req.archive_existing_versions.unwrap_or(false);
    let version = state.registry.transition_model_version_stage(&name, &version, &stage, archive).await?;
    Ok(Json(json!({ "model_version": version })))
}

async fn search_versions(State(state): State<AppState>, Rpc(req): Rpc<Search>) -> Result<Json<Value>, ApiError> {
    let page = state
        .registry
        .search_model_versions(req.filter.as_deref(), &req.order_by, req.max_results, req.page_token.as_deref())
        .await?;
    Ok(Json(list_body("model_versions", &page.items, page.next_page_token)))
}

async fn download_uri(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    let uri = state.registry.get_model_version_download_uri(&name, &version).await?;
    Ok(Json(json!({ "artifact_uri": uri })))
}

async fn set_version_tag(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    let tag = Tag::new(required(req.key.take(), "key")?, required(req.value.take(), "value")?);
    state.registry.set_model_version_tag(&name, &version, &tag).await?;
    Ok(empty())
}

async fn delete_version_tag(State(state): State<AppState>, Rpc(mut req): Rpc<Fields>) -> Result<Json<Value>, ApiError> {
    let (name, version) = (req.name()?, req.version()?);
    state.registry.delete_model_version_tag(&name, &version, &required(req.key.take(), "key")?).await?;
    Ok(empty())
}
