//! Workspaces as MLflow 3 serves them (`/api/3.0/mlflow/workspaces`, what `mlflow`'s
//! `create_workspace`, `list_workspaces`, `get_workspace`, `update_workspace` and
//! `delete_workspace` call), and `/api/v1/whoami`. Served in every workspace.
//!
//! Creating and deleting workspaces is for admins of the default workspace (the server's
//! admins); changing one's description also for its own admins. A caller sees the default workspace and those it has a role in; one it cannot see
//! answers as if it did not exist.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{ApiJson, ApiQuery};
use crate::identity::DEFAULT_WORKSPACE;
use crate::serve::ServeError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use keelson_core::auth::{Permission, Principal, ResourceKind, Role};
use keelson_store::workspaces::WorkspaceRecord;
use serde::Deserialize;
use serde_json::{json, Value};

const WORKSPACES: &str = "/api/3.0/mlflow/workspaces";

pub fn routes(state: AppState) -> Routes {
    let read = Permission::read(ResourceKind::Workspaces);
    let admin = Permission::admin(ResourceKind::Workspaces);
    let one = format!("{WORKSPACES}/{{name}}");
    Routes::new(state)
        .get("/api/v1/whoami", read, whoami)
        .get(WORKSPACES, read, list)
        .post(WORKSPACES, admin, create)
        .get(&one, read, get)
        .patch(&one, admin, update)
        .delete(&one, admin, delete)
        .post("/api/3.0/mlflow/users/permissions/grant", read, grant_permission)
        .post("/api/3.0/mlflow/users/permissions/revoke", read, revoke_permission)
        .get("/api/3.0/mlflow/users/permissions/get", read, get_permission)
}

async fn whoami(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "name": principal.name(),
        "roles": principal.roles(),
        "workspace": state.workspace,
        "role": principal.workspace_role().map(|role| role.to_string()),
    }))
}

/// The caller's role in `workspace`, read from the bindings (the request's own principal carries
/// only the role of the workspace the request is for). Anyone is an admin while auth is off.
async fn role_in(state: &AppState, principal: &Principal, workspace: &str) -> Result<Option<Role>, ApiError> {
    let admin = Permission::admin(ResourceKind::Workspaces);
    match principal {
        Principal::Anonymous => {
            Ok(state.auth.policy.authorize(principal, admin, workspace).is_ok().then_some(Role::Admin))
        }
        Principal::User { .. } if workspace == state.workspace => Ok(principal.workspace_role()),
        Principal::User { name, .. } => Ok(state.identities.role_in(workspace, name).await?),
    }
}

async fn require_server_admin(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    match role_in(state, principal, DEFAULT_WORKSPACE).await? {
        Some(Role::Admin) => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "permission denied: creating and deleting workspaces needs an admin of workspace `{DEFAULT_WORKSPACE}`, \
                 which `{}` is not",
                principal.name()
            ),
        )),
    }
}

fn wire(record: &WorkspaceRecord) -> Value {
    json!({ "name": record.name, "description": record.description })
}

fn default_workspace() -> Value {
    json!({ "name": DEFAULT_WORKSPACE, "description": "The workspace that always exists" })
}

fn absent(name: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceDoesNotExist, format!("Workspace '{}' not found.", name.escape_debug()))
}

fn serve_error(error: ServeError) -> ApiError {
    match error {
        ServeError::Store(error) => error.into(),
        other => {
            tracing::error!(error = %other, "workspace operation failed");
            ApiError::new(ErrorCode::InternalError, "the workspace could not be set up; details are in the server log")
        }
    }
}

/// The workspace record if the caller may see it; absence otherwise.
async fn visible(state: &AppState, principal: &Principal, name: &str) -> Result<Value, ApiError> {
    if name == DEFAULT_WORKSPACE {
        return Ok(default_workspace());
    }
    let record = match state.system_store.get_workspace(name).await {
        Ok(record) => record,
        Err(keelson_store::StoreError::NotFound(_)) => return Err(absent(name)),
        Err(error) => return Err(error.into()),
    };
    let sees = matches!(role_in(state, principal, DEFAULT_WORKSPACE).await?, Some(Role::Admin))
        || role_in(state, principal, name).await?.is_some();
    if sees {
        Ok(wire(&record))
    } else {
        Err(absent(name))
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let server_admin = matches!(role_in(&state, &principal, DEFAULT_WORKSPACE).await?, Some(Role::Admin));
    let mut workspaces = vec![default_workspace()];
    for record in state.system_store.list_workspaces().await? {
        if server_admin || role_in(&state, &principal, &record.name).await?.is_some() {
            workspaces.push(wire(&record));
        }
    }
    Ok(Json(json!({ "workspaces": workspaces })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWorkspace {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default_artifact_root: Option<String>,
    #[serde(default)]
    trace_archival_config: Option<Value>,
}

const MAX_DESCRIPTION_CHARS: usize = 1000;

fn check_description(description: Option<&str>) -> Result<(), ApiError> {
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        return Err(ApiError::invalid(format!(
            "a workspace description is at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(())
}

/// Keelson keeps every workspace's artifacts in the server's artifact store, below a prefix of
/// its own; a root the caller names would be a server-side destination chosen through the API.
fn refuse_locations(default_artifact_root: Option<&str>, archival: Option<&Value>) -> Result<(), ApiError> {
    if default_artifact_root.is_some_and(|root| !root.is_empty()) || archival.is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid(
            "default_artifact_root and trace_archival_config are not accepted: each workspace's artifacts live in \
             the server's artifact store (artifacts.url), below a prefix of their own",
        ));
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateWorkspace>,
) -> Result<impl IntoResponse, ApiError> {
    require_server_admin(&state, &principal).await?;
    let name = request.name.ok_or_else(|| {
        ApiError::invalid("Missing value for required parameter 'name'. See the API docs for more information about request parameters.")
    })?;
    if name == DEFAULT_WORKSPACE {
        return Err(ApiError::invalid(format!(
            "The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be created"
        )));
    }
    keelson_core::workspaces::validate_workspace_name(&name).map_err(ApiError::invalid)?;
    check_description(request.description.as_deref())?;
    refuse_locations(request.default_artifact_root.as_deref(), request.trace_archival_config.as_ref())?;
    let platform = crate::platform::upgrade(&state.platform)?;
    let record = platform
        .create_workspace(&name, request.description.as_deref().unwrap_or(""), principal.name())
        .await
        .map_err(serve_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "workspace": wire(&record) }))))
}

async fn get(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "workspace": visible(&state, &principal, &name).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateWorkspace {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default_artifact_root: Option<String>,
    #[serde(default)]
    trace_archival_config: Option<Value>,
}

async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<UpdateWorkspace>,
) -> Result<Json<Value>, ApiError> {
    visible(&state, &principal, &name).await?;
    refuse_locations(request.default_artifact_root.as_deref(), request.trace_archival_config.as_ref())?;
    let description =
        request.description.ok_or_else(|| ApiError::invalid("Workspace update must have at least one key"))?;
    check_description(Some(&description))?;
    if name == DEFAULT_WORKSPACE {
        return Err(ApiError::invalid(format!("The '{DEFAULT_WORKSPACE}' workspace cannot be changed")));
    }
    let admin_here = matches!(role_in(&state, &principal, &name).await?, Some(Role::Admin));
    if !admin_here {
        require_server_admin(&state, &principal).await?;
    }
    Ok(Json(json!({ "workspace": wire(&state.system_store.update_workspace(&name, &description).await?) })))
}

#[derive(Deserialize)]
struct DeleteMode {
    #[serde(default)]
    mode: Option<String>,
}

async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<DeleteMode>,
) -> Result<impl IntoResponse, ApiError> {
    if name == DEFAULT_WORKSPACE {
        return Err(ApiError::invalid(format!(
            "The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be deleted"
        )));
    }
    visible(&state, &principal, &name).await?;
    require_server_admin(&state, &principal).await?;
    let platform = crate::platform::upgrade(&state.platform)?;
    match query.mode.as_deref().unwrap_or("RESTRICT") {
        "RESTRICT" => {
            let open = platform.workspace(&name).ok_or_else(|| absent(&name))?;
            let held = open.state.store.resource_counts().await?;
            if !held.is_empty() {
                let listed: Vec<String> = held.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
                return Err(ApiError::new(
                    ErrorCode::InvalidState,
                    format!(
                        "Workspace '{name}' still holds {}; delete them first or delete with mode=CASCADE",
                        listed.join(", ")
                    ),
                ));
            }
        }
        "CASCADE" => {}
        "SET_DEFAULT" => {
            return Err(ApiError::invalid(
                "mode=SET_DEFAULT is not supported: each workspace has its own database, and moving its resources \
                 into the default workspace could collide with names there; use RESTRICT or CASCADE",
            ))
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid deletion mode '{}'. Must be one of: SET_DEFAULT, CASCADE, RESTRICT",
                other.escape_debug()
            )))
        }
    }
    platform.delete_workspace(&name).await.map_err(serve_error)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- per-resource permissions (MLflow 3's `AuthServiceClient.grant_user_permission` & co.) ----

#[derive(Deserialize)]
struct PermissionRequest {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    resource_type: Option<String>,
    #[serde(default)]
    resource_id: Option<String>,
    #[serde(default)]
    permission: Option<String>,
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::invalid(format!(
            "Missing value for required parameter '{field}'. See the API docs for more information about request parameters."
        ))
    })
}

/// The grant's subject and resource, checked.
fn grant_target(request: &PermissionRequest) -> Result<(&str, &'static str, String), ApiError> {
    let username = required(&request.username, "username")?;
    crate::identity::validate_principal_name(username).map_err(ApiError::from)?;
    let resource_type = required(&request.resource_type, "resource_type")?;
    let Some(kind) = crate::access::RESOURCE_TYPES.into_iter().find(|t| *t == resource_type) else {
        let hint = if resource_type == "workspace" {
            " Workspace-wide access is a role: PUT /api/v1/workspaces/{workspace}/roles/{principal}."
        } else {
            ""
        };
        return Err(ApiError::invalid(format!(
            "Invalid resource type '{}'. Valid resource types are: ('experiment', 'prompt', 'registered_model').{hint}",
            resource_type.escape_debug()
        )));
    };
    let resource_id = required(&request.resource_id, "resource_id")?;
    if resource_id.chars().count() > 500 {
        return Err(ApiError::invalid("resource_id is at most 500 characters"));
    }
    // Experiments are kept by their id as the store reads it (`07` is 7).
    let resource_id = if kind == "experiment" && resource_id != "*" {
        crate::access::canonical_experiment_id(resource_id)
    } else {
        resource_id.to_string()
    };
    Ok((username, kind, resource_id))
}

/// Grants on a resource are changed by the workspace's admins and by whoever has MANAGE on it;
/// grants on every resource of a type (`*`) by the workspace's admins only.
async fn may_manage(state: &AppState, principal: &Principal, kind: &str, resource_id: &str) -> Result<(), ApiError> {
    let role = role_in(state, principal, &state.workspace).await?;
    if role == Some(Role::Admin) {
        return Ok(());
    }
    if resource_id != "*" {
        let level = state.access.effective(principal.name(), role, kind, resource_id).await?;
        if level == crate::access::Level::Manage {
            return Ok(());
        }
    }
    Err(ApiError::new(ErrorCode::PermissionDenied, "Permission denied"))
}

async fn grant_permission(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<PermissionRequest>,
) -> Result<Json<Value>, ApiError> {
    let (username, kind, resource_id) = grant_target(&request)?;
    let permission = required(&request.permission, "permission")?;
    let level = crate::access::Level::parse(permission).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid permission '{}'. Valid permissions are: ('EDIT', 'MANAGE', 'NO_PERMISSIONS', 'READ', 'USE')",
            permission.escape_debug()
        ))
    })?;
    may_manage(&state, &principal, kind, &resource_id).await?;
    let grant = keelson_store::grants::ResourceGrant {
        principal: username.to_string(),
        resource_type: kind.to_string(),
        resource_id: resource_id.clone(),
        permission: level.as_str().to_string(),
        granted: state.store.now(),
        granted_by: principal.name().to_string(),
    };
    state.store.put_resource_grant(&grant, false).await?;
    state.access.forget();
    Ok(Json(json!({})))
}

async fn revoke_permission(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<PermissionRequest>,
) -> Result<Json<Value>, ApiError> {
    let (username, kind, resource_id) = grant_target(&request)?;
    may_manage(&state, &principal, kind, &resource_id).await?;
    if !state.store.delete_resource_grant(username, kind, &resource_id).await? {
        return Err(ApiError::new(
            ErrorCode::ResourceDoesNotExist,
            format!("No permission for user={username} on resource_type={kind}, resource_id={resource_id}."),
        ));
    }
    state.access.forget();
    Ok(Json(json!({})))
}

/// What a request by `username` on the resource would be allowed: `allowed` is MLflow's
/// `can_use`, `permission` the level itself.
async fn get_permission(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(request): ApiQuery<PermissionRequest>,
) -> Result<Json<Value>, ApiError> {
    let (username, kind, resource_id) = grant_target(&request)?;
    if username != principal.name() {
        may_manage(&state, &principal, kind, &resource_id).await?;
    }
    let role = if username == principal.name() {
        principal.workspace_role()
    } else {
        state.identities.role_in(&state.workspace, username).await?
    };
    let level = state.access.effective(username, role, kind, &resource_id).await?;
    Ok(Json(json!({ "allowed": level.allows(crate::access::Need::Use), "permission": level.as_str() })))
}
