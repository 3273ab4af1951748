//! Extractors whose rejections speak our error shape instead of axum's plain text.

use crate::error::{ApiError, ErrorCode};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// JSON body. Malformed JSON is `MALFORMED_REQUEST`; well-formed JSON of the wrong shape is
/// `INVALID_PARAMETER_VALUE`; a body over the limit is `PAYLOAD_TOO_LARGE`.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::invalid(format!("invalid request body: {}", e.body_text())),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(ErrorCode::MalformedRequest, format!("request body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::MalformedRequest,
            "expected a JSON body with the header content-type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "request body is larger than the server's limit (server.max_body_bytes)",
        ),
        other => ApiError::new(
            ErrorCode::MalformedRequest,
            format!("could not read the request body: {}", other.body_text()),
        ),
    }
}

/// Query string parameters.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::invalid(format!("invalid query parameters: {}", e.body_text())))
            }
            Err(other) => Err(ApiError::invalid(other.body_text())),
        }
    }
}
