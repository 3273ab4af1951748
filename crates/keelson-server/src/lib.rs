//! Keelson's HTTP surface. Handlers parse, authorise (by the permission each route declares),
//! call one domain function and map the result; errors become the wire shape in `error.rs` only.

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod browser;
mod catalog_sync;
pub mod error;
pub mod extract;
pub mod identity;
pub mod metrics;
pub mod model_source;
pub mod oidc;
pub mod openapi;
pub mod platform;
pub mod rate_limit;
mod routes;
pub mod secrets;
pub mod serve;
pub mod tls;
pub mod workspace;

pub use app::AppState;
pub use error::ApiError;
pub use platform::{Platform, PlatformOptions};
pub use serve::{serve, ServeError, ServerOptions};
