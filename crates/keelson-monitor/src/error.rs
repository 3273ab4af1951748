//! keelson-monitor's errors. Most are the user's (a bad monitor spec, an unknown column or
//! method) and their messages name the field at fault.

use keelson_core::{ErrorKind, HasErrorKind};
use polars::prelude::PolarsError;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// Bad input: a spec, request or value the caller must fix.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The engine could not read a reference or current data set.
    #[error("reading data: {0}")]
    Engine(PolarsError),
    #[error(transparent)]
    Store(#[from] keelson_store::StoreError),
    #[error(transparent)]
    Artifact(#[from] keelson_artifacts::ArtifactError),
    #[error("monitor scratch space: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl MonitorError {
    pub fn invalid(message: impl Into<String>) -> Self {
        MonitorError::Invalid(message.into())
    }

    pub fn engine(source: PolarsError) -> Self {
        MonitorError::Engine(source)
    }
}

impl HasErrorKind for MonitorError {
    fn kind(&self) -> ErrorKind {
        match self {
            MonitorError::Invalid(_) => ErrorKind::InvalidArgument,
            MonitorError::NotFound(_) => ErrorKind::NotFound,
            // Versions are Parquet files Keelson wrote; failing to read one is ours.
            MonitorError::Engine(_) | MonitorError::Io(_) | MonitorError::Internal(_) => ErrorKind::Internal,
            MonitorError::Store(error) => error.kind(),
            MonitorError::Artifact(error) => error.kind(),
        }
    }
}
