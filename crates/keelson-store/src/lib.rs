//! Keelson's metadata store: one interface over SQLite (the embedded default) and PostgreSQL
//! (scale-out), chosen by URL. This is the only crate that speaks SQL.
//!
//! Queries are written once with `$N` placeholders, which both SQLite and PostgreSQL accept, and
//! run through sqlx's `Any` driver; dialect differences stay in [`Backend`] and the per-backend
//! migration files.

pub mod audit;
mod backend;
pub mod catalog;
pub mod datasets;
mod error;
pub mod grants;
pub mod identities;
pub mod jobs;
pub mod lineage;
mod migrations;
pub mod monitoring;
pub mod registry;
pub mod secrets;
pub mod serving;
pub mod tracking;
pub mod worker;
pub mod workspaces;

pub use backend::{Backend, Store, StoreOptions};
pub use error::StoreError;
pub use migrations::{MigrationReport, LATEST_SCHEMA_VERSION};
