//! `/api/v1/models`: Keelson's registry governance — promotion policies, alias moves with a
//! reason, rollback, the alias history and approvals. MLflow's registry calls live under
//! `/api/2.0/mlflow`; both reach the same `RegistryService`, so policies hold on either.

use super::mlflow::registry::actor;
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use keelson_core::auth::{Permission, Principal, ResourceKind};
use keelson_core::promotion::PromotionPolicy;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Models);
    let write = Permission::write(ResourceKind::Models);
    let admin = Permission::admin(ResourceKind::Models);
    Routes::new(state)
        .get("/api/v1/models/{name}/policies", read, list_policies)
        .get("/api/v1/models/{name}/aliases/{alias}/policy", read, get_policy)
        .put("/api/v1/models/{name}/aliases/{alias}/policy", admin, set_policy)
        .delete("/api/v1/models/{name}/aliases/{alias}/policy", admin, delete_policy)
        .put("/api/v1/models/{name}/aliases/{alias}", write, set_alias)
        .delete("/api/v1/models/{name}/aliases/{alias}", write, delete_alias)
        .post("/api/v1/models/{name}/aliases/{alias}/rollback", write, rollback)
        .get("/api/v1/models/{name}/alias-history", read, history)
        .post("/api/v1/models/{name}/versions/{version}/approvals", write, approve)
        .get("/api/v1/models/{name}/versions/{version}/approvals", read, approvals)
        .get("/api/v1/models/{name}/versions/{version}/lineage", read, lineage)
}

async fn lineage(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let lineage = state.registry.lineage(&name, &version).await?;
    Ok(Json(json!(lineage)))
}

async fn list_policies(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "policies": state.registry.list_policies(&name).await? })))
}

async fn get_policy(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    match state.registry.get_policy(&name, &alias).await? {
        Some(policy) => Ok(Json(json!({ "policy": policy }))),
        None => Err(ApiError::from_domain(keelson_store::StoreError::NotFound(format!(
            "alias '{alias}' of model '{name}' has no promotion policy"
        )))),
    }
}

async fn set_policy(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, alias)): Path<(String, String)>,
    ApiJson(policy): ApiJson<PromotionPolicy>,
) -> Result<Json<Value>, ApiError> {
    let view = state.registry.set_policy(&name, &alias, &policy, &actor(&principal)).await?;
    Ok(Json(json!({ "policy": view })))
}

async fn delete_policy(
    State(state): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let deleted = state.registry.delete_policy(&name, &alias).await?;
    Ok(Json(json!({ "deleted": deleted })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetAlias {
    version: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn set_alias(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, alias)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetAlias>,
) -> Result<Json<Value>, ApiError> {
    state.registry.set_alias(&name, &alias, &body.version, &actor(&principal), body.reason.as_deref()).await?;
    let version = state.registry.get_model_version_by_alias(&name, &alias).await?;
    Ok(Json(json!({ "model_version": version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

async fn delete_alias(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, alias)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<Reason>,
) -> Result<Json<Value>, ApiError> {
    state.registry.delete_alias(&name, &alias, &actor(&principal), query.reason.as_deref()).await?;
    Ok(Json(json!({})))
}

async fn rollback(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let event = state.registry.rollback_alias(&name, &alias, &actor(&principal)).await?;
    Ok(Json(json!({ "event": event })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    #[serde(default)]
    alias: Option<String>,
}

async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let events = state.registry.alias_history(&name, query.alias.as_deref()).await?;
    Ok(Json(json!({ "events": events })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approve {
    alias: String,
    #[serde(default)]
    comment: Option<String>,
}

async fn approve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((name, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<Approve>,
) -> Result<Json<Value>, ApiError> {
    let approval =
        state.registry.approve(&name, &version, &body.alias, &actor(&principal), body.comment.as_deref()).await?;
    Ok(Json(json!({ "approval": approval })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsQuery {
    #[serde(default)]
    alias: Option<String>,
}

async fn approvals(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<ApprovalsQuery>,
) -> Result<Json<Value>, ApiError> {
    let approvals = state.registry.approvals(&name, &version, query.alias.as_deref()).await?;
    Ok(Json(json!({ "approvals": approvals })))
}
