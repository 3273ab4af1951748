//! Liveness, readiness and metrics.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::{ApiError, ErrorCode};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use serde_json::{json, Value};
use std::fmt::Write;

pub fn routes(state: AppState) -> Routes {
    Routes::new(state)
        // Load balancers and orchestrators probe these without credentials.
        .get("/health/live", Permission::Public, live)
        .get("/health/ready", Permission::Public, ready)
        .get("/metrics", Permission::read(ResourceKind::System), metrics)
}

async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when both stores answer.
async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (metadata, artifacts) = tokio::join!(state.store.ping(), state.artifacts.check());
    let mut failures = Vec::new();
    if let Err(error) = &metadata {
        tracing::warn!(%error, "readiness: metadata store check failed");
        failures.push("metadata store");
    }
    if let Err(error) = &artifacts {
        tracing::warn!(%error, "readiness: artifact store check failed");
        failures.push("artifact store");
    }
    if !failures.is_empty() {
        return Err(ApiError::new(
            ErrorCode::TemporarilyUnavailable,
            format!("not ready: the {} did not answer", failures.join(" and the ")),
        ));
    }
    Ok(Json(json!({"status": "ok", "checks": {"metadata": "ok", "artifacts": "ok"}})))
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::with_capacity(4096);
    state.metrics.render(&mut out);
    keelson_serving::metrics::render(&state.serving.live_endpoints(), state.serving.collector(), &mut out);
    state.monitoring.render_metrics(&mut out).await?;
    let counts = state.store.count_jobs_by_status().await?;
    out.push_str("# HELP keelson_jobs Jobs in the queue, by status.\n# TYPE keelson_jobs gauge\n");
    for status in keelson_core::jobs::JobStatus::ALL {
        let n = counts.iter().find(|(s, _)| *s == status).map(|(_, n)| *n).unwrap_or(0);
        let _ = writeln!(out, "keelson_jobs{{status=\"{status}\"}} {n}");
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out))
}
