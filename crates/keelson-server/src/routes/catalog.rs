//! `/api/v1/catalog`: the model catalog — list and read models, sync sources, record scores.

use crate::app::AppState;
use crate::auth::Routes;
use crate::catalog_sync::{sync_source, Origin};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use axum::extract::State;
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_genai::CatalogError;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Models);
    let write = Permission::write(ResourceKind::Models);
    Routes::new(state)
        .get("/api/v1/catalog/models", read, list)
        .get("/api/v1/catalog/model", read, get)
        .post("/api/v1/catalog/sync", write, sync)
        .get("/api/v1/catalog/syncs", read, syncs)
        .post("/api/v1/catalog/scores", write, score)
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        ApiError::from_domain(error)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    include_removed: bool,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    task: Option<String>,
}

async fn list(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Json<Value>, ApiError> {
    let models: Vec<_> = state
        .catalog
        .list(query.include_removed)
        .await?
        .into_iter()
        .filter(|m| query.provider.as_deref().is_none_or(|p| m.entry.provider.to_string() == p))
        .filter(|m| query.task.as_deref().is_none_or(|t| m.entry.task == t))
        .collect();
    Ok(Json(json!({ "models": models })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdQuery {
    id: String,
}

async fn get(State(state): State<AppState>, ApiQuery(query): ApiQuery<IdQuery>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "model": state.catalog.get(&query.id).await? })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    location: Option<String>,
}

/// Syncs one source (configured, or given with its location) or, with no source, all
/// configured sources.
async fn sync(State(state): State<AppState>, ApiJson(request): ApiJson<SyncRequest>) -> Result<Json<Value>, ApiError> {
    let targets: Vec<(String, String, Origin)> = match (request.source, request.location) {
        (Some(source), Some(location)) => vec![(source, location, Origin::Requested)],
        (Some(source), None) => match state.catalog_sources.get(&source) {
            Some(location) => vec![(source, location.clone(), Origin::Configured)],
            None => {
                return Err(ApiError::invalid(format!(
                    "catalog source `{source}` is not configured (catalog.sources); pass its location"
                )))
            }
        },
        (None, Some(_)) => return Err(ApiError::invalid("a location needs a source name")),
        (None, None) => state.catalog_sources.iter().map(|(s, l)| (s.clone(), l.clone(), Origin::Configured)).collect(),
    };
    if targets.is_empty() {
        return Err(ApiError::invalid("no catalog sources are configured (catalog.sources) and none was given"));
    }
    let mut reports = Vec::new();
    for (source, location, origin) in targets {
        reports.push(sync_source(&state.catalog, &state.egress, &source, &location, origin).await?);
    }
    Ok(Json(json!({ "reports": reports })))
}

async fn syncs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rows = state.system_store.catalog_syncs(50).await?;
    let syncs: Vec<Value> = rows
        .into_iter()
        .map(|(source, location, time, report)| {
            json!({
                "source": source, "location": location, "timestamp": time,
                "report": serde_json::from_str::<Value>(&report).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({ "syncs": syncs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    model_id: String,
    metric: String,
    value: f64,
    #[serde(default)]
    evaluation: Option<String>,
}

async fn score(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ScoreRequest>,
) -> Result<Json<Value>, ApiError> {
    let score = state
        .catalog
        .record_score(&request.model_id, &request.metric, request.value, request.evaluation.as_deref())
        .await?;
    Ok(Json(json!({ "score": score })))
}
