//! Keelson's foundation: ids, domain types, validation, error kinds and configuration.
//! Nothing here performs I/O; callers hand in what they read.

pub mod auth;
pub mod catalog;
pub mod clock;
pub mod collected;
pub mod config;
pub mod datasets;
pub mod error;
pub mod jobs;
pub mod lineage;
pub mod promotion;
pub mod registry;
pub mod search;
pub mod secrets;
pub mod time;
pub mod tracking;
pub mod workspaces;

pub use error::{ErrorKind, HasErrorKind};
