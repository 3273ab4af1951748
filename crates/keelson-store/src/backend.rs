use crate::error::StoreError;
use keelson_core::clock::{Clock, SystemClock};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use std::sync::Arc;
use std::time::Duration;

/// Which SQL engine is behind the store; the only place dialects differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(keelson_core::config::mask_url_password(url)))
        }
    }

    /// Row locking clause for claim queries: PostgreSQL workers skip rows another worker holds;
    /// SQLite has one writer at a time, so there is nothing to skip.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Write transactions take SQLite's write lock up front so that two processes never deadlock
    /// upgrading read locks; PostgreSQL's row locks need no such care.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
    /// SQLite `synchronous` pragma: `full`, `normal` or `extra`.
    pub sqlite_synchronous: String,
    pub acquire_timeout: Duration,
    /// PostgreSQL schema that holds the tables (a workspace's); `None` for the server's default
    /// search path.
    pub pg_schema: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            busy_timeout_ms: 5_000,
            sqlite_synchronous: "full".into(),
            acquire_timeout: Duration::from_secs(10),
            pg_schema: None,
        }
    }
}

impl StoreOptions {
    pub fn from_config(config: &keelson_core::config::DatabaseConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            busy_timeout_ms: config.busy_timeout_ms,
            sqlite_synchronous: config.sqlite_synchronous.clone(),
            ..Self::default()
        }
    }
}

/// The metadata store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) backend: Backend,
    /// SQLite allows one writer: writes go through a one-connection pool so they queue here
    /// instead of failing with SQLITE_BUSY. On PostgreSQL both pools are the same.
    pub(crate) writer: AnyPool,
    pub(crate) reader: AnyPool,
    pub(crate) clock: Arc<dyn Clock>,
    /// Run-logging batches waiting for a group commit.
    pub(crate) batches: Arc<crate::tracking::BatchQueue>,
    url_for_display: String,
    /// How it was opened, so a workspace's store can be opened beside it.
    origin: Origin,
}

/// The URL and options a store was opened with. Not `Debug`-printed: the URL may hold a password.
#[derive(Clone)]
struct Origin {
    url: String,
    options: StoreOptions,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Origin(..)")
    }
}

impl Store {
    /// Connects and applies pending migrations; refuses a database newer than this binary.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut url_for_display = keelson_core::config::mask_url_password(url);
        let origin = Origin { url: url.to_string(), options: options.clone() };
        match backend {
            Backend::Sqlite => {
                let url = prepare_sqlite_url(url)?;
                let writer = sqlite_pool(&url, options, 1, false).await?;
                let reader = sqlite_pool(&url, options, options.max_connections.max(1), true).await?;
                Ok(Self {
                    backend,
                    writer,
                    reader,
                    clock: Arc::new(SystemClock),
                    batches: Default::default(),
                    url_for_display,
                    origin,
                })
            }
            Backend::Postgres => {
                let mut pool_options = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout);
                if let Some(schema) = &options.pg_schema {
                    let set = format!("SET search_path TO {}", quote_identifier(schema)?);
                    pool_options = pool_options.after_connect(move |conn, _meta| {
                        let set = set.clone();
                        Box::pin(async move {
                            conn.execute(sqlx::raw_sql(&set)).await?;
                            Ok(())
                        })
                    });
                    url_for_display.push_str(&format!(" (schema {schema})"));
                }
                let pool = pool_options.connect(url).await?;
                if let Some(schema) = &options.pg_schema {
                    pool.execute(sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(schema)?)))
                        .await?;
                }
                Ok(Self {
                    backend,
                    writer: pool.clone(),
                    reader: pool,
                    clock: Arc::new(SystemClock),
                    batches: Default::default(),
                    url_for_display,
                    origin,
                })
            }
        }
    }

    /// Replaces the clock, for tests that move time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with any password masked.
    pub fn display_url(&self) -> &str {
        &self.url_for_display
    }

    /// Now, by the store's clock (tests set it), in Unix milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Readiness probe: a round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: Option<AnyRow> = self.reader.fetch_optional("SELECT 1").await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Opens (creating and migrating when new) the store of workspace `name`, beside this one: a
    /// SQLite file under `workspaces/<name>/` next to this store's file, or a PostgreSQL schema
    /// `keelson_ws_<name>` in the same database. Separate databases make isolation structural:
    /// no query of one workspace can name another's rows, and names are unique per workspace.
    pub async fn open_workspace(&self, name: &str) -> Result<Store, StoreError> {
        keelson_core::workspaces::validate_workspace_name(name).map_err(StoreError::InvalidArgument)?;
        let store = match self.backend {
            Backend::Sqlite => Store::open(&self.sqlite_workspace_url(name)?, &self.origin.options).await?,
            Backend::Postgres => {
                let options = StoreOptions { pg_schema: Some(workspace_schema(name)), ..self.origin.options.clone() };
                Store::open(&self.origin.url, &options).await?
            }
        };
        Ok(store.with_clock(self.clock.clone()))
    }

    /// Removes everything workspace `name` stored (its file or schema). Its store must be closed.
    pub async fn drop_workspace_storage(&self, name: &str) -> Result<(), StoreError> {
        keelson_core::workspaces::validate_workspace_name(name).map_err(StoreError::InvalidArgument)?;
        match self.backend {
            Backend::Sqlite => {
                let (path, _) = split_sqlite_url(&self.sqlite_workspace_url(name)?)?;
                if let Some(dir) = std::path::Path::new(&path).parent() {
                    match std::fs::remove_dir_all(dir) {
                        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
                        _ => {}
                    }
                }
            }
            Backend::Postgres => {
                let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(&workspace_schema(name))?);
                self.writer.execute(sqlx::raw_sql(&sql)).await?;
            }
        }
        Ok(())
    }

    fn sqlite_workspace_url(&self, name: &str) -> Result<String, StoreError> {
        let (path, query) = split_sqlite_url(&self.origin.url)?;
        if path == ":memory:" {
            return Err(StoreError::InvalidArgument(
                "workspaces need a database file or PostgreSQL; this store is in memory".into(),
            ));
        }
        let dir = std::path::Path::new(&path).parent().unwrap_or(std::path::Path::new("."));
        let file = std::path::Path::new(&path).file_name().and_then(|f| f.to_str()).unwrap_or("keelson.db");
        let workspace_path = dir.join("workspaces").join(name).join(file);
        Ok(match query {
            Some(query) => format!("sqlite://{}?{query}", workspace_path.display()),
            None => format!("sqlite://{}", workspace_path.display()),
        })
    }
}

/// The PostgreSQL schema of workspace `name` (validated: lowercase letters, digits and `-`, so
/// reading `-` as `_` cannot make two names meet).
fn workspace_schema(name: &str) -> String {
    format!("keelson_ws_{}", name.replace('-', "_"))
}

/// A schema name as a quoted identifier; only names Keelson makes are ever passed.
fn quote_identifier(name: &str) -> Result<String, StoreError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(StoreError::InvalidArgument(format!("`{}` is not a usable schema name", name.escape_debug())));
    }
    Ok(format!("\"{name}\""))
}

fn split_sqlite_url(url: &str) -> Result<(String, Option<String>), StoreError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    Ok((path.to_string(), query))
}

/// Accepts `sqlite://PATH`, `sqlite:PATH` and `sqlite::memory:`; creates the parent directory and
/// asks sqlx to create the file.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    if path != ":memory:" {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
    }
    let mut query = query.map(str::to_string).unwrap_or_default();
    if !query.split('&').any(|pair| pair.starts_with("mode=")) {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{query}"))
}

async fn sqlite_pool(
    url: &str,
    options: &StoreOptions,
    max_connections: u32,
    read_only: bool,
) -> Result<AnyPool, StoreError> {
    let synchronous = match options.sqlite_synchronous.as_str() {
        "normal" => "NORMAL",
        "extra" => "EXTRA",
        _ => "FULL",
    };
    // WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; \
         PRAGMA synchronous = {synchronous};{}",
        options.busy_timeout_ms,
        if read_only { " PRAGMA query_only = ON;" } else { "" }
    );
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(options.acquire_timeout)
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            let pragmas = pragmas.clone();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(&pragmas)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

impl Store {
    /// Runs raw SQL; for tests that must set up states no API produces (a future schema).
    #[doc(hidden)]
    pub async fn execute_for_tests(&self, sql: &str) -> Result<(), StoreError> {
        self.writer.execute(sqlx::raw_sql(sql)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_url() {
        assert_eq!(Backend::from_url("sqlite:///tmp/k.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgres://u:p@h/db").ok(), Some(Backend::Postgres));
        assert_eq!(Backend::from_url("postgresql://h/db").ok(), Some(Backend::Postgres));
        let err = Backend::from_url("mysql://u:secret@h/db").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("mysql://u:***@h/db"), "{err}");
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir();
        let path = dir.join("keelson-url-test").join("k.db");
        let url = format!("sqlite://{}", path.display());
        assert_eq!(prepare_sqlite_url(&url).ok(), Some(format!("sqlite://{}?mode=rwc", path.display())));
        assert_eq!(prepare_sqlite_url("sqlite::memory:").ok(), Some("sqlite://:memory:?mode=rwc".to_string()));
        assert_eq!(
            prepare_sqlite_url("sqlite://:memory:?mode=memory").ok(),
            Some("sqlite://:memory:?mode=memory".to_string())
        );
    }
}
