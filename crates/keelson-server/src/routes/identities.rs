//! `/api/v1/users`, `/api/v1/tokens` (server-wide, served in the default workspace) and
//! `/api/v1/workspaces/{workspace}/roles` (in every workspace): identities and who may do what. Tokens are shown once, when made.

use crate::app::AppState;
use crate::auth::Routes;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::identity::IdentityError;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use keelson_core::auth::{Permission, Principal, ResourceKind, Role};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(state: AppState) -> Routes {
    let member = Permission::read(ResourceKind::Identities);
    let admin = Permission::admin(ResourceKind::Identities);
    Routes::new(state)
        .get("/api/v1/users", admin, list_users)
        .post("/api/v1/users", admin, create_user)
        .put("/api/v1/users/{name}/password", admin, set_password)
        .delete("/api/v1/users/{name}", admin, delete_user)
        .get("/api/v1/tokens", member, list_tokens)
        .post("/api/v1/tokens", member, create_token)
        .delete("/api/v1/tokens/{id}", member, revoke_token)
}

/// Role bindings, served in every workspace: the server's admins (admins of `default`) manage
/// any workspace's from `default`, a workspace's own admins manage its own from inside it.
pub fn role_routes(state: AppState) -> Routes {
    let admin = Permission::admin(ResourceKind::Identities);
    Routes::new(state)
        .get("/api/v1/workspaces/{workspace}/roles", admin, list_roles)
        .put("/api/v1/workspaces/{workspace}/roles/{principal}", admin, bind_role)
        .delete("/api/v1/workspaces/{workspace}/roles/{principal}", admin, unbind_role)
}

/// From a workspace other than `default`, only that workspace's bindings can be named; any other
/// answers as absent, so its admins learn nothing of other workspaces.
fn own_workspace(state: &AppState, workspace: &str) -> Result<(), ApiError> {
    if state.workspace == crate::identity::DEFAULT_WORKSPACE || state.workspace == workspace {
        return Ok(());
    }
    Err(IdentityError::NotFound(format!("workspace `{}` does not exist", workspace.escape_debug())).into())
}

/// Whether the caller may act on others' identities: an admin, or anyone while auth is off.
fn is_admin(state: &AppState, principal: &Principal) -> bool {
    state.auth.policy.authorize(principal, Permission::admin(ResourceKind::Identities), &state.workspace).is_ok()
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| ApiError::invalid(format!("role `{text}` is not one of viewer, editor, admin")))
}

async fn list_users(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "users": state.identities.users().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
}

async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateUser>,
) -> Result<Json<Value>, ApiError> {
    let role = request.role.as_deref().map(parse_role).transpose()?;
    let user = state.identities.create_user(&request.name, &request.password, role, principal.name()).await?;
    Ok(Json(json!({ "user": user })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    password: String,
}

async fn set_password(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<SetPassword>,
) -> Result<Json<Value>, ApiError> {
    state.identities.set_password(&name, &request.password).await?;
    Ok(Json(json!({})))
}

async fn delete_user(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    state.identities.delete_user(&name).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    #[serde(default)]
    principal: Option<String>,
}

/// The caller's tokens; an admin may ask for anyone's, or everyone's.
async fn list_tokens(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<TokenQuery>,
) -> Result<Json<Value>, ApiError> {
    let whose = if is_admin(&state, &principal) { query.principal } else { Some(principal.name().to_string()) };
    Ok(Json(json!({ "tokens": state.identities.tokens(whose.as_deref()).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// Whose token; the caller's own by default. Only admins make tokens for others.
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    expires_in_days: Option<u32>,
}

async fn create_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<Json<Value>, ApiError> {
    let owner = request.principal.unwrap_or_else(|| principal.name().to_string());
    if owner != principal.name() && !is_admin(&state, &principal) {
        return Err(IdentityError::Forbidden(format!(
            "permission denied: only admins make tokens for others (`{}` asked for `{owner}`)",
            principal.name()
        ))
        .into());
    }
    if owner == "anonymous" {
        return Err(ApiError::invalid("name the token's principal: anonymous callers have no tokens"));
    }
    let minted =
        state.identities.mint_token(&owner, &request.description, request.expires_in_days, principal.name()).await?;
    Ok(Json(json!({ "token": minted })))
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let as_admin = is_admin(&state, &principal);
    state.identities.revoke_token(&id, principal.name(), as_admin).await?;
    Ok(Json(json!({})))
}

async fn list_roles(State(state): State<AppState>, Path(workspace): Path<String>) -> Result<Json<Value>, ApiError> {
    own_workspace(&state, &workspace)?;
    Ok(Json(json!({ "roles": state.identities.role_bindings(&workspace).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BindRole {
    role: String,
}

async fn bind_role(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((workspace, who)): Path<(String, String)>,
    ApiJson(request): ApiJson<BindRole>,
) -> Result<Json<Value>, ApiError> {
    own_workspace(&state, &workspace)?;
    let role = parse_role(&request.role)?;
    let binding = state.identities.bind_role(&workspace, &who, role, principal.name()).await?;
    Ok(Json(json!({ "binding": binding })))
}

async fn unbind_role(
    State(state): State<AppState>,
    Path((workspace, who)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    own_workspace(&state, &workspace)?;
    state.identities.unbind_role(&workspace, &who).await?;
    Ok(Json(json!({})))
}
