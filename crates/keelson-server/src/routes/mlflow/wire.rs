//! MLflow's JSON request conventions: RPC requests arrive as a JSON body (POST) or as query
//! parameters (GET, repeated keys for lists); int64 fields may be numbers or strings; doubles may
//! be protobuf JSON's "NaN"/"Infinity" strings.

use crate::error::{ApiError, ErrorCode};
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// An MLflow RPC request message, from the body or the query string by method.
pub struct Rpc<T>(pub T);

/// Fields that are repeated in MLflow's protos and so become lists in query strings.
const REPEATED_FIELDS: &[&str] =
    &["experiment_ids", "order_by", "run_ids", "tags", "datasets", "models", "trace_ids", "request_ids", "stages"];

impl<T, S> FromRequest<S> for Rpc<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET || req.method() == Method::DELETE && req.uri().query().is_some() {
            let query = req.uri().query().unwrap_or("");
            let mut map = Map::new();
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                let key = key.into_owned();
                let value = Value::String(value.into_owned());
                if REPEATED_FIELDS.contains(&key.as_str()) {
                    match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
                        Value::Array(items) => items.push(value),
                        other => *other = Value::Array(vec![value]),
                    }
                } else {
                    map.insert(key, value);
                }
            }
            let parsed = serde_json::from_value(Value::Object(map))
                .map_err(|e| ApiError::invalid(format!("invalid request parameters: {e}")))?;
            return Ok(Rpc(parsed));
        }
        let has_body = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v != "0");
        if !has_body {
            let parsed = serde_json::from_value(Value::Object(Map::new()))
                .map_err(|e| ApiError::invalid(format!("invalid request: {e}")))?;
            return Ok(Rpc(parsed));
        }
        // MLflow answers INVALID_PARAMETER_VALUE, not a malformed-request code, for a body that is
        // not declared as JSON.
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(ApiError::invalid("request body must be JSON with the header content-type: application/json"));
        }
        // Parse straight into the message type: large batches should not pass through a generic
        // JSON tree first.
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "request body is larger than the server's limit")
            } else {
                ApiError::new(ErrorCode::MalformedRequest, format!("could not read the request body: {rejection}"))
            }
        })?;
        // MLflow reads a body that is not JSON as an empty message and then names the missing
        // required field: INVALID_PARAMETER_VALUE either way.
        let parsed = serde_json::from_slice::<T>(&bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::invalid(format!("invalid request body: {e}")),
            _ => ApiError::invalid(format!("request body is not valid JSON: {e}")),
        })?;
        Ok(Rpc(parsed))
    }
}

/// int64 as a JSON number or a decimal string.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("`{n}` is not a 64-bit integer"))),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a 64-bit integer"))),
        Some(other) => Err(serde::de::Error::custom(format!("`{other}` is not a 64-bit integer"))),
    }
}

/// A string field that GET requests may omit and POST requests may send as null.
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        // MLflow's request schemas refuse a number where a string belongs (`_assert_string`).
        Some(other) => Err(serde::de::Error::custom(format!("expected a string, got {other}"))),
    }
}

/// Lists arrive as JSON arrays, or as single strings from query strings.
pub fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(serde::de::Error::custom(format!("expected a string, got {other}"))),
            })
            .collect(),
        Some(other) => Err(serde::de::Error::custom(format!("expected a list of strings, got {other}"))),
    }
}

/// MLflow's empty response.
pub fn empty() -> axum::Json<Value> {
    axum::Json(Value::Object(Map::new()))
}
