//! Experiment tracking with MLflow's rules: what may be logged, limits, names, immutability.
//! Persistence is the store's; this crate decides what is valid and composes store calls.

mod error;
mod names;
pub mod registry;
mod service;
pub mod traces;
pub mod uris;
pub mod validation;

pub use error::TrackingError;
pub use registry::{Actor, CreateModelVersion, RegistryService};
pub use service::{CreateRun, TrackingService};
