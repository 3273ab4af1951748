use keelson_core::{ErrorKind, HasErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// Invalid input, phrased as MLflow phrases it (clients show it to users).
    #[error("{0}")]
    Invalid(String),
    /// A promotion policy refuses an alias move; the message lists every unmet condition.
    #[error("{0}")]
    PolicyViolation(String),
    #[error(transparent)]
    Store(#[from] keelson_store::StoreError),
    #[error(transparent)]
    Artifacts(#[from] keelson_artifacts::ArtifactError),
}

impl From<keelson_core::search::SearchSyntaxError> for TrackingError {
    fn from(error: keelson_core::search::SearchSyntaxError) -> Self {
        TrackingError::Invalid(error.to_string())
    }
}

impl HasErrorKind for TrackingError {
    fn kind(&self) -> ErrorKind {
        match self {
            TrackingError::Invalid(_) => ErrorKind::InvalidArgument,
            TrackingError::PolicyViolation(_) => ErrorKind::PermissionDenied,
            TrackingError::Store(e) => e.kind(),
            TrackingError::Artifacts(e) => e.kind(),
        }
    }
}
