//! `GET /api/3.0/mlflow/server-info`: what MLflow 3 clients ask before choosing how to upload.
//! Answered without credentials, as MLflow does; it names capabilities, never configuration.

use crate::app::AppState;
use crate::auth::Routes;
use axum::Json;
use keelson_core::auth::Permission;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let mut routes = Routes::new(state);
    for path in ["/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"] {
        routes = routes.get(path, Permission::Public, server_info);
    }
    routes
}

async fn server_info() -> Json<Value> {
    Json(json!({
        // The client only uses this to label telemetry; Keelson's store is SQL on both backends.
        "store_type": "SqlStore",
        // Every request may name a workspace (`X-MLFLOW-WORKSPACE`); `platform.rs` serves it.
        "workspaces_enabled": true,
        "trace_archival_enabled": false,
        // The proxy's /mpu endpoints: clients upload large files in parts without being told to.
        "multipart_uploads_enabled": true,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": {"gateway": false},
    }))
}
