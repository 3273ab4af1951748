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
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError>;
}

/// Decides whether a principal holds a permission.
pub trait AuthPolicy: Send + Sync {
    fn authorize(&self, principal: &Principal, permission: Permission) -> Result<(), ApiError>;
}

/// No credentials exist yet: everyone is anonymous.
pub struct AnonymousAuthenticator;

impl Authenticator for AnonymousAuthenticator {
    fn authenticate(&self, _headers: &HeaderMap) -> Result<Principal, ApiError> {
        Ok(Principal::Anonymous)
    }
}

/// Users identified by API tokens. Only SHA-256 digests of tokens are kept, in a TOML file:
///
/// ```toml
/// [[users]]
/// name = "alice"
/// token_sha256 = "…"       # sha256 of the token, hex
/// roles = ["approver"]
/// ```
pub struct TokenAuthenticator {
    users: Vec<TokenUser>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenUser {
    name: String,
    token_sha256: String,
    #[serde(default)]
    roles: Vec<String>,
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
        for user in &file.users {
            if user.name.trim().is_empty() || user.name == "anonymous" {
                return Err(format!("user name `{}` is not allowed", user.name));
            }
            let digest =
                hex::decode(&user.token_sha256).map_err(|_| format!("token_sha256 of `{}` is not hex", user.name))?;
            if digest.len() != 32 {
                return Err(format!("token_sha256 of `{}` must be 64 hex digits", user.name));
            }
        }
        Ok(Self { users: file.users })
    }

    fn user_for(&self, token: &str) -> Option<&TokenUser> {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        self.users.iter().find(|u| u.token_sha256.eq_ignore_ascii_case(&digest))
    }
}

impl Authenticator for TokenAuthenticator {
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(Principal::Anonymous);
        };
        let unauthenticated =
            || ApiError::new(ErrorCode::Unauthenticated, "the credentials in the Authorization header are not valid");
        let value = value.to_str().map_err(|_| unauthenticated())?;
        let (scheme, credentials) = value.split_once(' ').ok_or_else(unauthenticated)?;
        let (claimed, token) = if scheme.eq_ignore_ascii_case("bearer") {
            (None, credentials.trim().to_string())
        } else if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine;
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(credentials.trim()).map_err(|_| unauthenticated())?;
            let decoded = String::from_utf8(decoded).map_err(|_| unauthenticated())?;
            let (user, password) = decoded.split_once(':').ok_or_else(unauthenticated)?;
            (Some(user.to_string()), password.to_string())
        } else {
            return Err(unauthenticated());
        };
        let user = self.user_for(&token).ok_or_else(unauthenticated)?;
        if claimed.is_some_and(|claimed| claimed != user.name) {
            return Err(unauthenticated());
        }
        Ok(Principal::User { name: user.name.clone(), roles: user.roles.clone() })
    }
}

/// Until authentication exists, the embedded default allows everything when bound to loopback,
/// where only local users can reach it, and refuses everything but public routes otherwise.
pub struct LoopbackOnlyPolicy {
    pub bound_to_loopback: bool,
}

impl AuthPolicy for LoopbackOnlyPolicy {
    fn authorize(&self, principal: &Principal, permission: Permission) -> Result<(), ApiError> {
        if permission == Permission::Public || self.bound_to_loopback {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} may not use {permission}: this server listens on a non-loopback address and no \
                 authentication is configured; bind it to 127.0.0.1",
                principal.name()
            ),
        ))
    }
}

/// What authorisation needs on every request.
#[derive(Clone)]
pub struct AuthContext {
    pub authenticator: Arc<dyn Authenticator>,
    pub policy: Arc<dyn AuthPolicy>,
}

/// Middleware for every request: identifies the caller and leaves the principal for the route.
pub async fn resolve_principal(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    match state.auth.authenticator.authenticate(request.headers()) {
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
    state.auth.policy.authorize(principal, permission)?;
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

    #[test]
    fn loopback_policy_allows_locally_and_refuses_remotely() {
        let read_jobs = Permission::read(ResourceKind::Jobs);
        let local = LoopbackOnlyPolicy { bound_to_loopback: true };
        assert!(local.authorize(&Principal::Anonymous, read_jobs).is_ok());
        let remote = LoopbackOnlyPolicy { bound_to_loopback: false };
        let denied = remote.authorize(&Principal::Anonymous, read_jobs).unwrap_err();
        assert_eq!(denied.code, ErrorCode::PermissionDenied);
        assert!(denied.message.contains("Read:Jobs"), "{}", denied.message);
        assert!(remote.authorize(&Principal::Anonymous, Permission::Public).is_ok());
    }
}
