//! MLflow's REST API (service.proto), served under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`,
//! and its artifact proxy under `/api/2.0/mlflow-artifacts`. Handlers translate wire messages
//! and call `keelson_tracking::TrackingService`.

mod artifacts;
mod experiments;
mod logged_models;
pub(crate) mod registry;
mod runs;
mod server_info;
mod traces;
mod wire;

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use keelson_tracking::TrackingError;

pub fn routes(state: AppState) -> Routes {
    Routes::new(state.clone())
        .merge(experiments::routes(state.clone()))
        .merge(runs::routes(state.clone()))
        .merge(logged_models::routes(state.clone()))
        .merge(registry::routes(state.clone()))
        .merge(traces::routes(state.clone()))
        .merge(server_info::routes(state.clone()))
        .merge(artifacts::routes(state))
}

/// Both prefixes MLflow serves its RPCs under.
pub(crate) fn rpc_paths(suffix: &str) -> [String; 2] {
    [format!("/api/2.0/mlflow{suffix}"), format!("/ajax-api/2.0/mlflow{suffix}")]
}

impl From<TrackingError> for ApiError {
    fn from(error: TrackingError) -> Self {
        ApiError::from_domain(error)
    }
}

/// Registers one handler for a method on both RPC prefixes.
macro_rules! rpc {
    ($routes:expr, $method:ident, $suffix:expr, $permission:expr, $handler:expr) => {{
        let mut routes = $routes;
        for path in crate::routes::mlflow::rpc_paths($suffix) {
            routes = routes.$method(&path, $permission, $handler);
        }
        routes
    }};
}
pub(crate) use rpc;
