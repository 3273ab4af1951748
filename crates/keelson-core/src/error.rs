//! Error kinds shared by every crate. Each crate has its own `thiserror` enum and says which kind
//! each variant is; the HTTP layer maps kinds to wire codes and statuses in one table.

/// What went wrong, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// The named resource does not exist.
    NotFound,
    /// A resource with that identity already exists.
    AlreadyExists,
    /// The resource is in a state that does not allow the operation.
    Conflict,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The caller could not be identified.
    Unauthenticated,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// A rate or capacity limit was hit; retry later.
    ResourceExhausted,
    /// A dependency (database, object store) is not reachable right now.
    Unavailable,
    /// A bug or an unexpected failure; details go to the log, not the caller.
    Internal,
}

impl ErrorKind {
    /// Whether the caller caused the error (and so should see its message verbatim).
    pub fn is_user_error(self) -> bool {
        !matches!(self, ErrorKind::Internal | ErrorKind::Unavailable)
    }
}

/// Implemented by every crate's error type so the HTTP layer can map it without knowing it.
pub trait HasErrorKind {
    fn kind(&self) -> ErrorKind;
}
