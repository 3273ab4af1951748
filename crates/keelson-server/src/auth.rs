//! The authorisation seam. Every route is added through [`Routes`], which makes its author name
//! the [`Permission`] it needs; [`resolve_principal`] runs on every request; [`AuthPolicy`]
//! decides. The security issue swaps in real authenticators and policies without touching
//! handlers.

use crate::app::AppState;
use crate::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use keelson_core::auth::{Permission, Principal};
use std::sync::Arc;

/// Identifies the caller from request headers.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError>;
}

/// Decides whether a principal holds a permission.
pub trait AuthPolicy: Send + Sync {
    fn authorize(&self, principal: &Principal, permission: Permission, workspace: &str) -> Result<(), ApiError>;
}

/// Users identified by API tokens in the operator's tokens file. Only SHA-256 digests of tokens
/// are kept:
///
/// ```toml
/// [[users]]
/// name = "alice"
/// token_sha256 = "…"       # sha256 of the token, hex
/// roles = ["approver"]
/// ```
pub struct TokenAuthenticator {
    users: Vec<(TokenUser, [u8; 32])>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenUser {
    pub(crate) name: String,
    token_sha256: String,
    #[serde(default)]
    pub(crate) roles: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    users: Vec<TokenUser>,
}

impl TokenAuthenticator {
    /// Parses a tokens file; errors name the problem for the operator.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut users = Vec::with_capacity(file.users.len());
        for user in file.users {
            if user.name.trim().is_empty() || user.name == "anonymous" {
                return Err(format!("user name `{}` is not allowed", user.name));
            }
            let digest: [u8; 32] = hex::decode(&user.token_sha256)
                .map_err(|_| format!("token_sha256 of `{}` is not hex", user.name))?
                .try_into()
                .map_err(|_| format!("token_sha256 of `{}` must be 64 hex digits", user.name))?;
            users.push((user, digest));
        }
        Ok(Self { users })
    }

    /// The user whose token this is. Every digest is compared in constant time, so the time taken
    /// says nothing about how much of a guess matched.
    pub(crate) fn user_for(&self, token: &str) -> Option<&TokenUser> {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (user, expected) in &self.users {
            if bool::from(expected.ct_eq(&digest)) {
                found = Some(user);
            }
        }
        found
    }
}

/// Workspace roles decide: viewers read, editors write, admins administer. Anonymous callers
/// are refused (401) unless authentication is off, which configuration allows only on loopback.
pub struct RolePolicy {
    pub auth_disabled: bool,
}

impl AuthPolicy for RolePolicy {
    fn authorize(&self, principal: &Principal, permission: Permission, workspace: &str) -> Result<(), ApiError> {
        let Permission::Require(action, _) = permission else { return Ok(()) };
        match principal {
            Principal::Anonymous if self.auth_disabled => Ok(()),
            Principal::Anonymous => Err(ApiError::new(
                ErrorCode::Unauthenticated,
                format!(
                    "authentication required for {permission}: send a token (Authorization: Bearer …, or \
                     MLFLOW_TRACKING_TOKEN) or a user's name and password (HTTP Basic)"
                ),
            )),
            user => match user.workspace_role() {
                Some(role) if role.allows(action) => Ok(()),
                Some(role) => Err(ApiError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "permission denied: `{}` is a {role} in workspace `{}`, and {permission} needs {}",
                        user.name(),
                        workspace,
                        match action {
                            keelson_core::auth::Action::Admin => "an admin",
                            _ => "an editor or admin",
                        }
                    ),
                )),
                None => Err(ApiError::new(
                    ErrorCode::PermissionDenied,
                    format!("permission denied: `{}` has no role in workspace `{}`", user.name(), workspace),
                )),
            },
        }
    }
}

/// What authorisation needs on every request.
#[derive(Clone)]
pub struct AuthContext {
    pub authenticator: Arc<dyn Authenticator>,
    pub policy: Arc<dyn AuthPolicy>,
}

/// Middleware for every request: identifies the caller and leaves the principal for the route.
pub async fn resolve_principal(State(auth): State<AuthContext>, mut request: Request, next: Next) -> Response {
    match auth.authenticator.authenticate(request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

async fn authorize(
    State((state, permission)): State<(AppState, Permission)>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "no principal was resolved for this request"))?;
    if permission != Permission::Public {
        // First, so a caller learns nothing more of a workspace it cannot see than of one that
        // does not exist.
        crate::workspace::check(&request)?;
    }
    let workspace = request
        .extensions()
        .get::<crate::workspace::Workspace>()
        .map_or(crate::identity::DEFAULT_WORKSPACE, |workspace| workspace.0.as_str());
    // A per-resource grant (checked by `access::enforce`) may allow what the role does not.
    if request.extensions().get::<crate::access::GrantedByResource>().is_none() {
        state.auth.policy.authorize(principal, permission, workspace)?;
    }
    Ok(next.run(request).await)
}

/// A declared route: method, path template and the permission it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: String,
    pub permission: Permission,
}

/// A router where adding a route requires naming its permission.
pub struct Routes {
    state: AppState,
    router: Router<AppState>,
    /// Routes whose bodies stream (artifact uploads): no JSON body limit applies to them.
    streaming: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl Routes {
    pub fn new(state: AppState) -> Self {
        Self { state, router: Router::new(), streaming: Router::new(), specs: Vec::new() }
    }

    fn add<H, T>(mut self, method: Method, filter: MethodFilter, path: &str, permission: Permission, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let method_router = self.guarded(filter, permission, handler);
        self.router = self.router.route(path, method_router);
        self.specs.push(RouteSpec { method, path: path.to_string(), permission });
        self
    }

    fn guarded<H, T>(&self, filter: MethodFilter, permission: Permission, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let guard = axum::middleware::from_fn_with_state((self.state.clone(), permission), authorize);
        axum::routing::on(filter, handler).layer(guard)
    }

    /// A route whose handler streams the request body itself (no body-size limit).
    pub fn streaming<H, T>(mut self, method: Method, path: &str, permission: Permission, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::PUT);
        let method_router = self.guarded(filter, permission, handler).layer(axum::extract::DefaultBodyLimit::disable());
        self.streaming = self.streaming.route(path, method_router);
        self.specs.push(RouteSpec { method, path: path.to_string(), permission });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &str, permission: Permission, handler: H) -> Self {
        self.add(Method::GET, MethodFilter::GET, path, permission, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &str, permission: Permission, handler: H) -> Self {
        self.add(Method::POST, MethodFilter::POST, path, permission, handler)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &str, permission: Permission, handler: H) -> Self {
        self.add(Method::PUT, MethodFilter::PUT, path, permission, handler)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &str, permission: Permission, handler: H) -> Self {
        self.add(Method::PATCH, MethodFilter::PATCH, path, permission, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &str, permission: Permission, handler: H) -> Self {
        self.add(Method::DELETE, MethodFilter::DELETE, path, permission, handler)
    }

    /// Adds another module's routes.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.streaming = self.streaming.merge(other.streaming);
        self.specs.extend(other.specs);
        self
    }

    /// The routes declared so far.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// (routes with the JSON body limit, streaming routes, declared specs).
    pub fn into_parts(self) -> (Router<AppState>, Router<AppState>, Vec<RouteSpec>) {
        (self.router, self.streaming, self.specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_core::auth::ResourceKind;

    fn user(roles: &[&str]) -> Principal {
        Principal::User { name: "u".into(), roles: roles.iter().map(|r| r.to_string()).collect(), role: None }
    }

    #[test]
    fn roles_decide_and_anonymous_needs_auth_off() {
        let (read, write, admin) = (
            Permission::read(ResourceKind::Jobs),
            Permission::write(ResourceKind::Jobs),
            Permission::admin(ResourceKind::Models),
        );
        let on = RolePolicy { auth_disabled: false };
        let denied = on.authorize(&Principal::Anonymous, read, "default").unwrap_err();
        assert_eq!(denied.code, ErrorCode::Unauthenticated);
        assert!(on.authorize(&Principal::Anonymous, Permission::Public, "default").is_ok());
        assert!(on.authorize(&user(&["viewer"]), read, "default").is_ok());
        assert_eq!(on.authorize(&user(&["viewer"]), write, "default").unwrap_err().code, ErrorCode::PermissionDenied);
        assert!(on.authorize(&user(&["editor"]), write, "default").is_ok());
        let refused = on.authorize(&user(&["editor", "approver"]), admin, "default").unwrap_err();
        assert!(refused.message.contains("an admin"), "{}", refused.message);
        assert!(on.authorize(&user(&["admin"]), admin, "default").is_ok());
        assert!(on.authorize(&user(&["approver"]), read, "default").unwrap_err().message.contains("no role"));
        let off = RolePolicy { auth_disabled: true };
        assert!(off.authorize(&Principal::Anonymous, admin, "default").is_ok());
        assert_eq!(off.authorize(&user(&["viewer"]), write, "default").unwrap_err().code, ErrorCode::PermissionDenied);
    }

    #[test]
    fn tokens_file_digests_are_checked() {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(b"s3cret-token"));
        let file = TokenAuthenticator::from_toml(&format!(
            "[[users]]\nname = \"alice\"\ntoken_sha256 = \"{digest}\"\nroles = [\"approver\"]\n"
        ))
        .unwrap();
        assert_eq!(file.user_for("s3cret-token").map(|u| u.name.as_str()), Some("alice"));
        assert!(file.user_for("s3cret-tokeN").is_none());
        assert!(TokenAuthenticator::from_toml("[[users]]\nname = \"a\"\ntoken_sha256 = \"ab\"\n").is_err());
    }
}
