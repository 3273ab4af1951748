//! `/api/v1/lineage`: OpenLineage ingest (spec 2-0-2, any event kind) and the lineage graph in
//! Marquez's shape (`GET /api/v1/lineage?nodeId=…&depth=…`).

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_core::lineage::{parse_lineage_event, validate_depth, LineageDirection, LineageError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Marquez's default walk depth.
const DEFAULT_DEPTH: u32 = 20;

pub fn routes(state: AppState) -> Routes {
    Routes::new(state).post("/api/v1/lineage", Permission::write(ResourceKind::Datasets), ingest).get(
        "/api/v1/lineage",
        Permission::read(ResourceKind::Datasets),
        graph,
    )
}

impl From<LineageError> for ApiError {
    fn from(error: LineageError) -> Self {
        ApiError::from_domain(error)
    }
}

/// Marquez answers 201 with an empty object; the OpenLineage clients only check the status.
async fn ingest(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let event = parse_lineage_event(&body)?;
    state.store.record_lineage_event(&event).await?;
    Ok((StatusCode::CREATED, Json(json!({}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphQuery {
    #[serde(rename = "nodeId")]
    node_id: String,
    #[serde(default)]
    depth: Option<u32>,
    #[serde(default)]
    direction: Option<String>,
}

async fn graph(State(state): State<AppState>, ApiQuery(query): ApiQuery<GraphQuery>) -> Result<Json<Value>, ApiError> {
    let depth = validate_depth(query.depth.unwrap_or(DEFAULT_DEPTH))?;
    let direction = match query.direction.as_deref() {
        Some(text) => text.parse::<LineageDirection>()?,
        None => LineageDirection::Both,
    };
    let graph = state.store.lineage_graph(&query.node_id, depth, direction).await?;
    Ok(Json(json!({ "graph": graph })))
}
