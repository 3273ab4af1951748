//! keelson-data's errors. Most are the user's (a bad source, recipe or expectation) and their
//! messages name the file, line, step or rule at fault.

use keelson_core::{ErrorKind, HasErrorKind};
use polars::prelude::PolarsError;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Bad input: a source, recipe, suite or value the caller must fix.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A failing `error` expectation kept a version out of its layer.
    #[error("{message}")]
    Refused { message: String, validation: Box<serde_json::Value> },
    /// The engine refused the data or the plan; `context` says which file or step.
    #[error("{context}: {source}")]
    Engine { context: String, source: PolarsError },
    #[error(transparent)]
    Store(#[from] keelson_store::StoreError),
    #[error(transparent)]
    Artifact(#[from] keelson_artifacts::ArtifactError),
    #[error("data scratch space: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl DataError {
    pub fn invalid(message: impl Into<String>) -> Self {
        DataError::Invalid(message.into())
    }

    pub fn engine(context: impl Into<String>, source: PolarsError) -> Self {
        DataError::Engine { context: context.into(), source }
    }
}

impl From<PolarsError> for DataError {
    fn from(source: PolarsError) -> Self {
        DataError::Engine { context: "data engine".into(), source }
    }
}

impl HasErrorKind for DataError {
    fn kind(&self) -> ErrorKind {
        match self {
            DataError::Invalid(_) | DataError::Refused { .. } => ErrorKind::InvalidArgument,
            DataError::NotFound(_) => ErrorKind::NotFound,
            // The engine only ever sees what users hand it (their files, steps and expressions,
            // after the source was resolved), so what it refuses is theirs to fix.
            DataError::Engine { .. } => ErrorKind::InvalidArgument,
            DataError::Store(error) => error.kind(),
            DataError::Artifact(error) => error.kind(),
            DataError::Io(_) | DataError::Internal(_) => ErrorKind::Internal,
        }
    }
}
