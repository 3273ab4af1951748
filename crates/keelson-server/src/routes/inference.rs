//! Inference: the Open Inference Protocol (KServe V2) under `/v2`, KServe V1 `:predict`, and
//! MLflow's `/endpoints/{name}/invocations`, all routed through an endpoint's traffic rules. The
//! V2 model name is the endpoint's name; errors are `{"error": "…"}` as the protocols expect.
//! Bodies are read here with the server's size limit, because V2 binary requests arrive without
//! a JSON content type.

use crate::app::AppState;
use crate::auth::Routes;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keelson_core::auth::{Permission, ResourceKind};
use keelson_serving::protocol::{mlflow, v1, v2, ProtocolError};
use keelson_serving::service::Routed;
use keelson_serving::{InferError, RouteRequest};
use serde_json::{json, Value};

/// Request header naming the deployment that should answer.
pub const DEPLOYMENT_HEADER: &str = "x-keelson-deployment";
/// Response header naming the registered model version that answered.
pub const MODEL_VERSION_HEADER: &str = "x-keelson-model-version";
/// Correlation id of a prediction: the client's own when it sends one, otherwise a new one.
/// Collected records and ground-truth labels are joined by it.
pub const CORRELATION_HEADER: &str = "x-keelson-correlation-id";

fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| keelson_serving::collector::is_correlation_id(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Endpoints);
    // Predictions change nothing, but they spend compute: callers need more than read access.
    let invoke = Permission::write(ResourceKind::Endpoints);
    Routes::new(state)
        .get("/v2", read, server_metadata)
        .get("/v2/health/live", Permission::Public, live)
        .get("/v2/health/ready", Permission::Public, live)
        .get("/v2/models/{model}", read, model_metadata)
        .get("/v2/models/{model}/ready", read, model_ready)
        .get("/v2/models/{model}/versions/{version}", read, version_metadata)
        .get("/v2/models/{model}/versions/{version}/ready", read, version_ready)
        .streaming(Method::POST, "/v2/models/{model}/infer", invoke, infer)
        .streaming(Method::POST, "/v2/models/{model}/versions/{version}/infer", invoke, infer_version)
        .get("/v1/models/{model}", read, v1_ready)
        .streaming(Method::POST, "/v1/models/{model}", invoke, v1_predict)
        .streaming(Method::POST, "/endpoints/{endpoint}/invocations", invoke, invocations)
}

/// A protocol error response.
fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn infer_error(error: InferError) -> Response {
    let status = match &error {
        InferError::NotFound(_) => StatusCode::NOT_FOUND,
        InferError::Input(_) => StatusCode::BAD_REQUEST,
        InferError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
        InferError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        InferError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        InferError::Failed(message) => {
            tracing::error!(error = %message, "inference failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error_response(status, error.to_string())
}

fn protocol_error(error: ProtocolError) -> Response {
    error_response(StatusCode::BAD_REQUEST, error.0)
}

async fn read_body(state: &AppState, body: Body) -> Result<bytes::Bytes, Response> {
    let limit = state.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the limit of {limit} bytes (server.max_body_bytes), or it broke off"),
        )
    })
}

// The error is the finished answer, returned at once by every caller; boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn route(state: &AppState, endpoint: &str, version: Option<String>, headers: &HeaderMap) -> Result<Routed, Response> {
    let deployment = headers.get(DEPLOYMENT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let request = RouteRequest { deployment, version };
    state
        .serving
        .route(endpoint, &request, |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string))
        .map_err(infer_error)
}

/// Names the deployment and model version that answered, and the correlation id.
fn tag(mut response: Response, routed: &Routed, correlation_id: &str) -> Response {
    let headers = response.headers_mut();
    // Metadata answers have no prediction to correlate.
    if !correlation_id.is_empty() {
        if let Ok(value) = HeaderValue::from_str(correlation_id) {
            headers.insert(CORRELATION_HEADER, value);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&routed.deployment.name) {
        headers.insert(DEPLOYMENT_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&routed.deployment.model_version) {
        headers.insert(MODEL_VERSION_HEADER, value);
    }
    response
}

async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": "keelson",
        "version": env!("CARGO_PKG_VERSION"),
        // Only what is served: there are no model-repository routes (deployments are managed
        // through /api/v1/endpoints).
        "extensions": ["binary_tensor_data"],
    }))
}

async fn live() -> StatusCode {
    StatusCode::OK
}

fn metadata(routed: &Routed, endpoint: &str) -> Value {
    let signature = routed.deployment.signature();
    let mut versions: Vec<&str> = routed
        .endpoint
        .deployments
        .values()
        .map(|d| d.model_version.as_str())
        .filter(|version| !version.is_empty())
        .collect();
    // Registry versions are numbers: "10" comes after "2".
    versions.sort_unstable_by_key(|version| (version.parse::<u64>().unwrap_or(u64::MAX), *version));
    versions.dedup();
    // Open Inference Protocol tensor metadata is name, datatype and shape; the class labels a
    // deployment's JSON also shows are Keelson's own.
    let tensors = |specs: &[keelson_serving::signature::TensorSpec]| -> Vec<Value> {
        specs.iter().map(|spec| json!({"name": spec.name, "datatype": spec.datatype, "shape": spec.shape})).collect()
    };
    let platform = match routed.deployment.spec.runtime {
        keelson_serving::deployment::RuntimeKind::External => "external",
        _ => "onnx",
    };
    json!({
        "name": endpoint,
        "versions": versions,
        "platform": platform,
        "inputs": tensors(&signature.inputs),
        "outputs": tensors(&signature.outputs),
    })
}

async fn model_metadata(State(state): State<AppState>, Path(model): Path<String>, headers: HeaderMap) -> Response {
    match route(&state, &model, None, &headers) {
        Ok(routed) => tag(Json(metadata(&routed, &model)).into_response(), &routed, ""),
        Err(response) => response,
    }
}

async fn version_metadata(
    State(state): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match route(&state, &model, Some(version), &headers) {
        Ok(routed) => tag(Json(metadata(&routed, &model)).into_response(), &routed, ""),
        Err(response) => response,
    }
}

fn readiness(state: &AppState, model: &str, version: Option<String>, headers: &HeaderMap) -> Response {
    match route(state, model, version, headers) {
        Ok(_) => Json(json!({"name": model, "ready": true})).into_response(),
        Err(response) => response,
    }
}

async fn model_ready(State(state): State<AppState>, Path(model): Path<String>, headers: HeaderMap) -> Response {
    readiness(&state, &model, None, &headers)
}

async fn version_ready(
    State(state): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    readiness(&state, &model, Some(version), &headers)
}

async fn infer(State(state): State<AppState>, Path(model): Path<String>, request: Request) -> Response {
    infer_v2(state, model, None, request).await
}

async fn infer_version(
    State(state): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    request: Request,
) -> Response {
    infer_v2(state, model, Some(version), request).await
}

async fn infer_v2(state: AppState, model: String, version: Option<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let routed = match route(&state, &model, version, &parts.headers) {
        Ok(routed) => routed,
        Err(response) => return response,
    };
    let body = match read_body(&state, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let header_length = parts.headers.get(v2::HEADER_LENGTH).map(|v| v.to_str().unwrap_or("not text").to_string());
    let parsed = match v2::parse_infer_request(&body, header_length.as_deref()) {
        Ok(parsed) => parsed,
        Err(e) => return protocol_error(e),
    };
    let correlation = correlation_id(&parts.headers);
    let outputs = match state.serving.serve(&routed, parsed.inputs, &correlation).await {
        Ok(outputs) => outputs,
        Err(e) => return infer_error(e),
    };
    let encoded = match v2::encode_infer_response(
        &model,
        Some(&routed.deployment.model_version),
        parsed.id.as_deref(),
        outputs,
        &parsed.outputs,
    ) {
        Ok(encoded) => encoded,
        Err(e) => return protocol_error(e),
    };
    let mut response = Response::new(Body::from(encoded.body));
    let headers = response.headers_mut();
    match encoded.header_length {
        Some(length) => {
            headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            headers.insert(v2::HEADER_LENGTH, HeaderValue::from(length));
        }
        None => {
            headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    tag(response, &routed, &correlation)
}

/// `GET /v1/models/{name}`: V1 readiness.
async fn v1_ready(State(state): State<AppState>, Path(model): Path<String>, headers: HeaderMap) -> Response {
    readiness(&state, &model, None, &headers)
}

/// `POST /v1/models/{name}:predict` (the colon is part of the path segment).
async fn v1_predict(State(state): State<AppState>, Path(spec): Path<String>, request: Request) -> Response {
    let Some(model) = spec.strip_suffix(":predict") else {
        return error_response(StatusCode::NOT_FOUND, format!("unknown V1 verb in `{spec}`; use `{spec}:predict`"));
    };
    let (parts, body) = request.into_parts();
    let routed = match route(&state, model, None, &parts.headers) {
        Ok(routed) => routed,
        Err(response) => return response,
    };
    let body = match read_body(&state, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let inputs = match v1::parse_predict_request(&body, routed.deployment.signature()) {
        Ok(inputs) => inputs,
        Err(e) => return protocol_error(e),
    };
    let correlation = correlation_id(&parts.headers);
    match state.serving.serve(&routed, inputs, &correlation).await {
        Ok(outputs) => tag(Json(v1::encode_predict_response(&outputs)).into_response(), &routed, &correlation),
        Err(e) => infer_error(e),
    }
}

async fn invocations(State(state): State<AppState>, Path(endpoint): Path<String>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let routed = match route(&state, &endpoint, None, &parts.headers) {
        Ok(routed) => routed,
        Err(response) => return response,
    };
    let body = match read_body(&state, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // MLflow's scoring server takes JSON (and CSV, which Keelson does not) and answers 415 to
    // anything else.
    let content_type = parts.headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type `{content_type}` is not supported; send application/json"),
        );
    }
    let (inputs, form) = match mlflow::parse_invocation(&body, routed.deployment.signature()) {
        Ok(parsed) => parsed,
        Err(e) => return protocol_error(e),
    };
    let correlation = correlation_id(&parts.headers);
    match state.serving.serve(&routed, inputs, &correlation).await {
        Ok(outputs) => {
            let answer = mlflow::encode_invocation_response(&outputs, routed.deployment.signature(), form);
            tag(Json(answer).into_response(), &routed, &correlation)
        }
        Err(e) => infer_error(e),
    }
}
