//! `/api/v1/monitors` and `/api/v1/monitoring/*`: monitors (specs as JSON or YAML), their runs,
//! drift reports on any two dataset versions (JSON and self-contained HTML), and alerts.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiQuery};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_monitor::service::CompareRequest;
use keelson_monitor::spec::MonitorSpec;
use keelson_monitor::MonitorError;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Monitors);
    let write = Permission::write(ResourceKind::Monitors);
    Routes::new(state)
        .post("/api/v1/monitors", write, create)
        .get("/api/v1/monitors", read, list)
        .get("/api/v1/monitors/{name}", read, get)
        .put("/api/v1/monitors/{name}", write, replace)
        .delete("/api/v1/monitors/{name}", write, delete)
        .post("/api/v1/monitors/{name}/run", write, run)
        .post("/api/v1/monitoring/reports", write, compare)
        .get("/api/v1/monitoring/reports", read, reports)
        .get("/api/v1/monitoring/reports/{id}", read, report_json)
        .get("/api/v1/monitoring/reports/{id}/html", read, report_html)
        .get("/api/v1/monitoring/alerts", read, alerts)
        .get("/api/v1/monitoring/alerts/{id}", read, alert)
}

impl From<MonitorError> for ApiError {
    fn from(error: MonitorError) -> Self {
        ApiError::from_domain(error)
    }
}

/// A spec from the body: YAML when the content type says so, JSON otherwise.
fn spec_from_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<MonitorSpec, ApiError> {
    let body = body.map_err(|e| ApiError::new(ErrorCode::PayloadTooLarge, e.body_text()))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("the monitor spec is not UTF-8"))?;
    if content_type.contains("yaml") {
        return Ok(MonitorSpec::parse(text)?);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("the body is not JSON: {e}")))?;
    Ok(MonitorSpec::from_json(value)?)
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = spec_from_body(&headers, body)?;
    let monitor = state.monitoring.create_monitor(spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ "monitor": monitor }))))
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "monitors": state.store.list_monitors().await? })))
}

async fn get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "monitor": state.store.get_monitor(&name).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceQuery {
    #[serde(default)]
    enabled: Option<bool>,
}

async fn replace(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<ReplaceQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let spec = spec_from_body(&headers, body)?;
    let monitor = state.monitoring.replace_monitor(&name, spec, query.enabled.unwrap_or(true)).await?;
    Ok(Json(json!({ "monitor": monitor })))
}

async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    state.store.delete_monitor(&name).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    /// The end of the window (RFC 3339); default now.
    #[serde(default)]
    at: Option<String>,
}

async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|e| ApiError::new(ErrorCode::PayloadTooLarge, e.body_text()))?;
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("run request: {e}")))?
    };
    let at = match &request.at {
        Some(text) => Some(
            keelson_core::time::parse_rfc3339_ms(text)
                .ok_or_else(|| ApiError::invalid(format!("`at` must be an RFC 3339 time, not `{text}`")))?,
        ),
        None => None,
    };
    let outcome = state.monitoring.run_monitor(&name, at).await?;
    Ok(Json(json!(outcome)))
}

async fn compare(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CompareRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (report, record) = state.monitoring.compare_datasets(request).await?;
    Ok((StatusCode::CREATED, Json(json!({ "report": report, "record": record }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    monitor: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

fn limit(query: &ListQuery) -> Result<i64, ApiError> {
    match query.limit {
        None => Ok(100),
        Some(limit) if (1..=1000).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::invalid(format!("`limit` must be 1 to 1000, not {limit}"))),
    }
}

async fn reports(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Json<Value>, ApiError> {
    if query.status.is_some() {
        return Err(ApiError::invalid("reports have no `status`; filter by `monitor`"));
    }
    let reports = state.store.list_reports(query.monitor.as_deref(), limit(&query)?).await?;
    Ok(Json(json!({ "reports": reports })))
}

async fn report_json(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let body = state.monitoring.report_document(&id, false).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn report_html(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let body = state.monitoring.report_document(&id, true).await?;
    // The report is a page of ours with inline styles and charts and no external loads.
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; \
                 frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response())
}

async fn alerts(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Json<Value>, ApiError> {
    if let Some(status) = &query.status {
        if status != "firing" && status != "resolved" {
            return Err(ApiError::invalid(format!("`status` is `firing` or `resolved`, not `{status}`")));
        }
    }
    let alerts = state.store.list_alerts(query.monitor.as_deref(), query.status.as_deref(), limit(&query)?).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

async fn alert(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "alert": state.store.get_alert(&id).await? })))
}
