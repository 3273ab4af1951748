//! The crate's error type. User errors (bad key, bad URL, bad range, missing object, broken upload
//! body) carry messages meant for the caller; backend failures keep the object_store error as
//! their source for the log.

use keelson_core::{ErrorKind, HasErrorKind};

/// Any error that can travel between threads, used as a `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with [`ArtifactError`] as the default error.
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// The key failed validation; `key` is the offending key (shortened when very long).
    #[error("invalid artifact key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },

    /// The store URL or one of its options is not usable; `url` has secrets removed.
    #[error("invalid artifact store url {url:?}: {reason}")]
    InvalidStoreUrl { url: String, reason: String },

    /// The requested byte range does not fit the request or the object.
    #[error("invalid range {start}..{end} for artifact {key:?}: {reason}")]
    InvalidRange { key: String, start: u64, end: u64, reason: String },

    #[error("artifact {key:?} not found")]
    NotFound { key: String },

    /// The caller's body stream failed while uploading; nothing was stored.
    #[error("upload body for artifact {key:?} failed, nothing was stored: {source}")]
    UploadBody {
        key: String,
        #[source]
        source: BoxError,
    },

    /// Readiness failed: the marker object written at open cannot be read (or written).
    #[error("artifact store {store} is not ready: {source}")]
    NotReady {
        store: String,
        #[source]
        source: BoxError,
    },

    /// The backend could not be reached or refused our credentials.
    #[error("artifact store could not {operation} {key:?}: {source}")]
    Unavailable {
        operation: &'static str,
        key: String,
        #[source]
        source: BoxError,
    },

    /// The backend failed in a way that points at a bug or an unsupported operation.
    #[error("artifact store failed to {operation} {key:?}: {source}")]
    Backend {
        operation: &'static str,
        key: String,
        #[source]
        source: BoxError,
    },

    /// Preparing the local store's root directory failed.
    #[error("artifact store directory {path:?} is not usable: {source}")]
    LocalRoot {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasErrorKind for ArtifactError {
    fn kind(&self) -> ErrorKind {
        match self {
            ArtifactError::InvalidKey { .. }
            | ArtifactError::InvalidStoreUrl { .. }
            | ArtifactError::InvalidRange { .. }
            // The caller's body broke (disconnect, truncated upload): their request failed.
            | ArtifactError::UploadBody { .. } => ErrorKind::InvalidArgument,
            ArtifactError::NotFound { .. } => ErrorKind::NotFound,
            ArtifactError::NotReady { .. }
            | ArtifactError::Unavailable { .. }
            | ArtifactError::LocalRoot { .. } => ErrorKind::Unavailable,
            ArtifactError::Backend { .. } => ErrorKind::Internal,
        }
    }
}

impl ArtifactError {
    /// Maps an object_store error raised while doing `operation` on `key`.
    pub(crate) fn from_backend(operation: &'static str, key: &str, error: object_store::Error) -> ArtifactError {
        let key = key.to_owned();
        match error {
            // Only a read or delete names an object that may be missing; a NotFound while
            // uploading or listing means the bucket or root directory itself is gone.
            object_store::Error::NotFound { .. } if matches!(operation, "read" | "delete") => {
                ArtifactError::NotFound { key }
            }
            error @ object_store::Error::NotFound { .. } => {
                ArtifactError::Unavailable { operation, key, source: Box::new(error) }
            }
            // Network failures, I/O errors and credential problems: the store is not usable now.
            error @ (object_store::Error::Generic { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }) => {
                ArtifactError::Unavailable { operation, key, source: Box::new(error) }
            }
            error => ArtifactError::Backend { operation, key, source: Box::new(error) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend_not_found() -> object_store::Error {
        object_store::Error::NotFound { path: "bucket/a".to_owned(), source: "404".into() }
    }

    #[test]
    fn not_found_means_a_missing_object_only_for_reads_and_deletes() {
        for operation in ["read", "delete"] {
            let error = ArtifactError::from_backend(operation, "a", backend_not_found());
            assert_eq!(error.kind(), ErrorKind::NotFound, "{operation}");
        }
        for operation in ["upload", "list"] {
            let error = ArtifactError::from_backend(operation, "a", backend_not_found());
            assert_eq!(error.kind(), ErrorKind::Unavailable, "{operation}");
        }
        let error = ArtifactError::from_backend("read", "a", object_store::Error::NotImplemented);
        assert_eq!(error.kind(), ErrorKind::Internal);
    }
}
