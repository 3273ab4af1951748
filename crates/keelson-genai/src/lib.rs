//! GenAIOps. For now the model catalog: entries synced from catalog files, a report of what
//! each sync added, changed and removed, evaluation scores, and a hook that starts a job (an
//! evaluation pipeline) for every newly added model.

pub mod catalog;

pub use catalog::{CatalogError, CatalogService};
