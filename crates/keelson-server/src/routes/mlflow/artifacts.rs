//! MLflow's artifact proxy (mlflow_artifacts.proto): `mlflow-artifacts:/…` URIs resolve here.
//! Bodies stream straight to and from the artifact store; nothing is held whole in memory.

use super::wire::{empty, opt_string, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use keelson_core::auth::{Permission, ResourceKind};
use serde::Deserialize;
use serde_json::{json, Value};

const PREFIXES: [&str; 2] = ["/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"];

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Artifacts);
    let write = Permission::write(ResourceKind::Artifacts);
    let mut routes = Routes::new(state);
    for prefix in PREFIXES {
        routes = routes
            .streaming(Method::PUT, &format!("{prefix}/artifacts/{{*path}}"), write, upload)
            .get(&format!("{prefix}/artifacts/{{*path}}"), read, download)
            .delete(&format!("{prefix}/artifacts/{{*path}}"), write, delete)
            .get(&format!("{prefix}/artifacts"), read, list);
    }
    routes
}

async fn upload(
    State(state): State<AppState>,
    Path(path): Path<String>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let key = state.tracking.artifact_key(&path)?;
    let body = request.into_body().into_data_stream().map_err(std::io::Error::other);
    state.tracking.artifacts().put_stream(&key, Box::pin(body)).await?;
    Ok(empty())
}

async fn download(State(state): State<AppState>, Path(path): Path<String>) -> Result<Response, ApiError> {
    let key = state.tracking.artifact_key(&path)?;
    let reader = state.tracking.artifacts().get(&key).await?;
    let size = reader.size();
    let stream = reader.into_stream().map_err(std::io::Error::other);
    let content_type = guess_content_type(&path);
    Ok((
        [(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_LENGTH, size.to_string())],
        Body::from_stream(stream),
    )
        .into_response())
}

fn guess_content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "json" => "application/json",
        "txt" | "log" | "md" | "yaml" | "yml" | "MLmodel" => "text/plain",
        "html" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

async fn delete(State(state): State<AppState>, Path(path): Path<String>) -> Result<Json<Value>, ApiError> {
    let key = state.tracking.artifact_key(&path)?;
    let store = state.tracking.artifacts();
    // A path names a file or a directory; MLflow deletes either.
    let removed = store.delete_prefix(&key).await?;
    if removed == 0 {
        match store.delete(&key).await {
            Ok(()) => {}
            Err(e) if keelson_core::HasErrorKind::kind(&e) == keelson_core::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(empty())
}

#[derive(Deserialize)]
struct ListRequest {
    #[serde(default, deserialize_with = "opt_string")]
    path: Option<String>,
}

async fn list(State(state): State<AppState>, Rpc(req): Rpc<ListRequest>) -> Result<Json<Value>, ApiError> {
    let path = req.path.unwrap_or_default();
    let key = state.tracking.artifact_key(&path)?;
    let listing = state.tracking.artifacts().list(Some(&key)).await?;
    let mut files = Vec::new();
    for dir in &listing.dirs {
        files.push(json!({ "path": basename(dir), "is_dir": true }));
    }
    for file in &listing.files {
        files.push(json!({ "path": basename(&file.key), "is_dir": false, "file_size": file.size }));
    }
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    if files.is_empty() {
        return Ok(empty());
    }
    Ok(Json(json!({ "files": files })))
}

fn basename(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or(key)
}
