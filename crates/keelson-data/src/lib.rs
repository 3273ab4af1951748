//! Keelson DataOps: versioned datasets (Parquet in the artifact store, metadata in the store),
//! source connectors, declarative recipes, expectations, mergeable profiles and OpenLineage
//! events. The columnar engine is Polars (ARCHITECTURE.md says why); everything that touches
//! data runs on blocking threads, never on the async runtime.

pub mod dtype;
pub mod error;
pub mod expectations;
pub mod jobs;
pub mod lineage;
pub mod pass;
pub mod profile;
pub mod recipe;
mod recipe_sql;
mod service;
pub mod source;

pub use error::DataError;
pub use service::{DataService, DataSettings, IngestRequest, Registered};

/// Engine settings a process using keelson-data should start with, before any thread exists
/// (Polars reads them from the environment once). `POLARS_FORCE_ASYNC` reads local files with
/// buffered streaming reads instead of memory-mapping them: a mapped 1 GB CSV counts fully in
/// the process's resident memory while it is scanned, a streamed one only by its read buffers.
pub const ENGINE_ENVIRONMENT: &[(&str, &str)] = &[("POLARS_FORCE_ASYNC", "1")];
