//! MLflow's artifact proxy (mlflow_artifacts.proto): `mlflow-artifacts:/…` URIs resolve here.
//! Bodies stream straight to and from the artifact store; nothing is held whole in memory.

use super::wire::{empty, opt_string, Rpc};
use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{FutureExt, StreamExt, TryStreamExt};
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
            .get(&format!("{prefix}/artifacts"), read, list)
            .post(&format!("{prefix}/mpu/create/{{*path}}"), write, mpu_create)
            .streaming(
                Method::PUT,
                &format!("{prefix}/mpu/upload/{{upload_id}}/{{part_number}}"),
                write,
                mpu_upload_part,
            )
            .post(&format!("{prefix}/mpu/complete/{{*path}}"), write, mpu_complete)
            .post(&format!("{prefix}/mpu/abort/{{*path}}"), write, mpu_abort);
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
    let mut response = (
        [(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_LENGTH, size.to_string())],
        Body::from_stream(stream),
    )
        .into_response();
    let headers = response.headers_mut();
    // Anyone who can log to a run can upload a file; served inline on the API's origin, an HTML
    // or SVG file would run its scripts with the reader's session. Only types a browser shows
    // without running anything are inline, and the sandbox stops scripts even in those.
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    if !is_inline_safe(content_type) {
        let name = path.rsplit('/').next().unwrap_or("artifact");
        let ascii: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

/// Types a browser renders without running code.
fn is_inline_safe(content_type: &str) -> bool {
    matches!(content_type, "application/json" | "text/plain" | "image/png" | "image/jpeg")
}

fn guess_content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "json" => "application/json",
        "txt" | "log" | "md" | "yaml" | "yml" | "MLmodel" | "csv" => "text/plain",
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

// ---- multipart upload (mlflow_artifacts.proto: CreateMultipartUpload, Complete…, Abort…) ----
//
// MLflow hands clients presigned cloud URLs for parts; Keelson hands out URLs on itself, stages
// each part as an object, and on completion streams the parts, in order, into the final object.

/// Staging area for parts, outside the proxied tree so listings never show it.
const MPU_STAGING: &str = "mlflow-mpu";
/// Largest number of parts one upload may have (S3's limit).
const MAX_PARTS: i64 = 10_000;

fn staging_key(upload_id: &str, name: &str) -> Result<keelson_artifacts::ArtifactKey, ApiError> {
    if uuid::Uuid::parse_str(upload_id).is_err() {
        return Err(ApiError::invalid(format!("invalid upload_id `{upload_id}`")));
    }
    Ok(keelson_artifacts::ArtifactKey::parse(&format!("{MPU_STAGING}/{upload_id}/{name}"))?)
}

/// Where the file lands: the endpoint's artifact directory plus the local file's name.
fn target_path(artifact_dir: &str, local_file: &str) -> Result<String, ApiError> {
    let name = local_file
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("path `{local_file}` does not name a file")))?;
    Ok(format!("{}/{name}", artifact_dir.trim_end_matches('/')))
}

fn base_url(headers: &axum::http::HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    format!("{scheme}://{host}")
}

#[derive(Deserialize)]
struct MpuCreate {
    #[serde(default, deserialize_with = "opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "super::wire::opt_i64")]
    num_parts: Option<i64>,
}

async fn mpu_create(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: axum::http::HeaderMap,
    Rpc(req): Rpc<MpuCreate>,
) -> Result<Json<Value>, ApiError> {
    let local = req.path.ok_or_else(|| super::experiments::missing("path"))?;
    let num_parts = req.num_parts.unwrap_or(1);
    if !(1..=MAX_PARTS).contains(&num_parts) {
        return Err(ApiError::invalid(format!("num_parts {num_parts} is out of range; expected 1..={MAX_PARTS}")));
    }
    let target = target_path(&path, &local)?;
    state.tracking.artifact_key(&target)?;
    let upload_id = uuid::Uuid::new_v4().to_string();
    state.tracking.artifacts().put_bytes(&staging_key(&upload_id, "target")?, bytes::Bytes::from(target)).await?;
    let base = base_url(&headers);
    let credentials: Vec<Value> = (1..=num_parts)
        .map(|part| {
            json!({
                "url": format!("{base}/api/2.0/mlflow-artifacts/mpu/upload/{upload_id}/{part}"),
                "part_number": part,
                "headers": {},
            })
        })
        .collect();
    Ok(Json(json!({ "upload_id": upload_id, "credentials": credentials })))
}

async fn mpu_upload_part(
    State(state): State<AppState>,
    Path((upload_id, part_number)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    // Parsed here so a bad number gets the error shape, not the extractor's plain text.
    let part_number: i64 = part_number
        .parse()
        .map_err(|_| ApiError::invalid(format!("part_number `{}` is not an integer", part_number.escape_debug())))?;
    if !(1..=MAX_PARTS).contains(&part_number) {
        return Err(ApiError::invalid(format!("part_number {part_number} is out of range")));
    }
    let store = state.tracking.artifacts();
    store.head(&staging_key(&upload_id, "target")?).await.map_err(|_| unknown_upload(&upload_id))?;
    let body = request.into_body().into_data_stream().map_err(std::io::Error::other);
    let outcome =
        store.put_stream(&staging_key(&upload_id, &format!("part-{part_number:05}"))?, Box::pin(body)).await?;
    Ok(([(header::ETAG, format!("\"{}\"", outcome.sha256))], empty()).into_response())
}

fn unknown_upload(upload_id: &str) -> ApiError {
    ApiError::new(crate::error::ErrorCode::ResourceDoesNotExist, format!("no multipart upload with id `{upload_id}`"))
}

#[derive(Deserialize)]
struct MpuPart {
    #[serde(deserialize_with = "super::wire::opt_i64")]
    part_number: Option<i64>,
}

#[derive(Deserialize)]
struct MpuComplete {
    #[serde(default, deserialize_with = "opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    upload_id: Option<String>,
    #[serde(default)]
    parts: Vec<MpuPart>,
}

async fn staged_target(state: &AppState, upload_id: &str, path: &str, local: &str) -> Result<String, ApiError> {
    let stored = state
        .tracking
        .artifacts()
        .get_bytes(&staging_key(upload_id, "target")?)
        .await
        .map_err(|_| unknown_upload(upload_id))?;
    let target = target_path(path, local)?;
    if stored.as_ref() != target.as_bytes() {
        return Err(ApiError::invalid(format!("upload `{upload_id}` was created for another path")));
    }
    Ok(target)
}

async fn mpu_complete(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Rpc(req): Rpc<MpuComplete>,
) -> Result<Json<Value>, ApiError> {
    let local = req.path.ok_or_else(|| super::experiments::missing("path"))?;
    let upload_id = req.upload_id.ok_or_else(|| super::experiments::missing("upload_id"))?;
    let target = staged_target(&state, &upload_id, &path, &local).await?;
    let mut numbers: Vec<i64> = req.parts.iter().filter_map(|p| p.part_number).collect();
    numbers.sort_unstable();
    if numbers.is_empty() || numbers.iter().enumerate().any(|(i, n)| *n != i as i64 + 1) {
        return Err(ApiError::invalid("parts must be numbered 1..N without gaps"));
    }
    let store = state.tracking.artifacts().clone();
    let mut keys = Vec::with_capacity(numbers.len());
    for n in &numbers {
        let key = staging_key(&upload_id, &format!("part-{n:05}"))?;
        store.head(&key).await.map_err(|_| ApiError::invalid(format!("part {n} was never uploaded")))?;
        keys.push(key);
    }
    // Parts are read one after another as the final object is written: memory stays at one chunk.
    let chained = concatenate(store.clone(), keys);
    store.put_stream(&state.tracking.artifact_key(&target)?, chained).await?;
    store.delete_prefix(&keelson_artifacts::ArtifactKey::parse(&format!("{MPU_STAGING}/{upload_id}"))?).await?;
    Ok(empty())
}

#[derive(Deserialize)]
struct MpuAbort {
    #[serde(default, deserialize_with = "opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    upload_id: Option<String>,
}

async fn mpu_abort(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Rpc(req): Rpc<MpuAbort>,
) -> Result<Json<Value>, ApiError> {
    let local = req.path.ok_or_else(|| super::experiments::missing("path"))?;
    let upload_id = req.upload_id.ok_or_else(|| super::experiments::missing("upload_id"))?;
    staged_target(&state, &upload_id, &path, &local).await?;
    let staging = keelson_artifacts::ArtifactKey::parse(&format!("{MPU_STAGING}/{upload_id}"))?;
    state.tracking.artifacts().delete_prefix(&staging).await?;
    Ok(empty())
}

/// The objects under `keys`, read in order as one stream.
fn concatenate(
    store: keelson_artifacts::ArtifactStore,
    keys: Vec<keelson_artifacts::ArtifactKey>,
) -> futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>> {
    futures::stream::iter(keys)
        .then(move |key| {
            let store = store.clone();
            async move { store.get(&key).await.map(|reader| reader.into_stream()) }.boxed()
        })
        .try_flatten()
        .map_err(std::io::Error::other)
        .boxed()
}
