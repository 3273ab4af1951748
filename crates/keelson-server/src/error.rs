//! The one place where errors become HTTP responses: `{"error_code": "...", "message": "..."}`.
//! Codes follow MLflow's `databricks.proto` names so MLflow clients branch on them correctly.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keelson_core::{ErrorKind, HasErrorKind};
use serde::Serialize;

/// Wire error codes, each with its status. Handlers never choose a status themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    MalformedRequest,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    InvalidState,
    EndpointNotFound,
    MethodNotAllowed,
    PermissionDenied,
    Unauthenticated,
    PayloadTooLarge,
    RequestLimitExceeded,
    TemporarilyUnavailable,
    InternalError,
}

impl ErrorCode {
    /// The table: wire name and HTTP status.
    pub fn wire(self) -> (&'static str, StatusCode) {
        match self {
            ErrorCode::InvalidParameterValue => ("INVALID_PARAMETER_VALUE", StatusCode::BAD_REQUEST),
            ErrorCode::MalformedRequest => ("MALFORMED_REQUEST", StatusCode::BAD_REQUEST),
            ErrorCode::ResourceDoesNotExist => ("RESOURCE_DOES_NOT_EXIST", StatusCode::NOT_FOUND),
            // MLflow answers 400 for duplicates and its client expects it.
            ErrorCode::ResourceAlreadyExists => ("RESOURCE_ALREADY_EXISTS", StatusCode::BAD_REQUEST),
            ErrorCode::InvalidState => ("INVALID_STATE", StatusCode::CONFLICT),
            ErrorCode::EndpointNotFound => ("ENDPOINT_NOT_FOUND", StatusCode::NOT_FOUND),
            ErrorCode::MethodNotAllowed => ("METHOD_NOT_ALLOWED", StatusCode::METHOD_NOT_ALLOWED),
            ErrorCode::PermissionDenied => ("PERMISSION_DENIED", StatusCode::FORBIDDEN),
            ErrorCode::Unauthenticated => ("UNAUTHENTICATED", StatusCode::UNAUTHORIZED),
            ErrorCode::PayloadTooLarge => ("PAYLOAD_TOO_LARGE", StatusCode::PAYLOAD_TOO_LARGE),
            ErrorCode::RequestLimitExceeded => ("REQUEST_LIMIT_EXCEEDED", StatusCode::TOO_MANY_REQUESTS),
            ErrorCode::TemporarilyUnavailable => ("TEMPORARILY_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            ErrorCode::InternalError => ("INTERNAL_ERROR", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn for_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => ErrorCode::InvalidParameterValue,
            ErrorKind::NotFound => ErrorCode::ResourceDoesNotExist,
            ErrorKind::AlreadyExists => ErrorCode::ResourceAlreadyExists,
            ErrorKind::Conflict => ErrorCode::InvalidState,
            ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
            ErrorKind::Unauthenticated => ErrorCode::Unauthenticated,
            ErrorKind::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ErrorKind::ResourceExhausted => ErrorCode::RequestLimitExceeded,
            ErrorKind::Unavailable => ErrorCode::TemporarilyUnavailable,
            ErrorKind::Internal => ErrorCode::InternalError,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Serialize)]
struct WireError<'a> {
    error_code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }

    /// Maps any crate's error by its kind. Internal details are logged, not sent.
    pub fn from_domain<E: HasErrorKind + std::fmt::Display>(error: E) -> Self {
        let kind = error.kind();
        let code = ErrorCode::for_kind(kind);
        if kind.is_user_error() {
            return Self::new(code, error.to_string());
        }
        tracing::error!(error = %error, ?kind, "request failed");
        let message = match kind {
            ErrorKind::Unavailable => "a backing store is unavailable; retry later (details are in the server log)",
            _ => "internal error; details are in the server log under this request's x-request-id",
        };
        Self::new(code, message)
    }
}

impl From<keelson_store::StoreError> for ApiError {
    fn from(error: keelson_store::StoreError) -> Self {
        Self::from_domain(error)
    }
}

impl From<keelson_artifacts::ArtifactError> for ApiError {
    fn from(error: keelson_artifacts::ArtifactError) -> Self {
        Self::from_domain(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (error_code, status) = self.code.wire();
        let body = WireError { error_code, message: &self.message };
        let mut response = (status, axum::Json(body)).into_response();
        if self.code == ErrorCode::Unauthenticated {
            // RFC 9110 §11.6.1: a 401 names the schemes that would be accepted.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"keelson\", Bearer realm=\"keelson\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_code_and_user_errors_keep_their_message() {
        let kinds = [
            ErrorKind::InvalidArgument,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Conflict,
            ErrorKind::PermissionDenied,
            ErrorKind::Unauthenticated,
            ErrorKind::PayloadTooLarge,
            ErrorKind::ResourceExhausted,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        let statuses: Vec<u16> = kinds.iter().map(|k| ErrorCode::for_kind(*k).wire().1.as_u16()).collect();
        assert_eq!(statuses, vec![400, 404, 400, 409, 403, 401, 413, 429, 503, 500]);
        let missing = ApiError::from(keelson_store::StoreError::JobNotFound("j1".into()));
        assert_eq!(missing.code, ErrorCode::ResourceDoesNotExist);
        assert!(missing.message.contains("j1"));
        let corrupt = ApiError::from(keelson_store::StoreError::Corrupt("secret detail".into()));
        assert_eq!(corrupt.code, ErrorCode::InternalError);
        assert!(!corrupt.message.contains("secret detail"));
    }
}
