use keelson_core::{ErrorKind, HasErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("job `{0}` does not exist")]
    JobNotFound(String),
    /// A named resource is missing; the message names it.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the lease on job `{0}` was lost: the job was reclaimed or finished elsewhere")]
    LeaseLost(String),
    #[error("unsupported database url `{0}`; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB")]
    UnsupportedUrl(String),
    #[error(
        "the database schema is at version {database}, newer than this keelson supports ({binary}); \
         upgrade keelson before using this database"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not prepare the database location: {0}")]
    Io(#[from] std::io::Error),
}

impl HasErrorKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::InvalidArgument(_) | StoreError::UnsupportedUrl(_) => ErrorKind::InvalidArgument,
            StoreError::JobNotFound(_) | StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            StoreError::Conflict(_) | StoreError::LeaseLost(_) => ErrorKind::Conflict,
            StoreError::SchemaTooNew { .. } | StoreError::Corrupt(_) => ErrorKind::Internal,
            StoreError::Database(error) => match error {
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                    ErrorKind::Unavailable
                }
                _ => ErrorKind::Internal,
            },
            StoreError::Io(_) => ErrorKind::Unavailable,
        }
    }
}

impl StoreError {
    /// Whether a database error is a unique-constraint violation (a concurrent duplicate insert).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}
