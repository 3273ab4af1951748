//! Who is calling: service tokens (random, stored as SHA-256 digests, shown once, with expiry,
//! revocation and last use), users with argon2id passwords, the operator's tokens file, and each
//! principal's role in the workspace. Implements [`Authenticator`] for the request middleware.
//!
//! Verified credentials are cached for a short time (argon2 is deliberately slow, and a token
//! lookup is a query): a revocation, deletion or role change clears this process's cache at
//! once, other replicas within [`CACHE_TTL`].

use crate::auth::{Authenticator, TokenAuthenticator};
use crate::error::{ApiError, ErrorCode};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::HeaderMap;
use base64::Engine;
use keelson_core::auth::{Principal, Role};
use keelson_store::identities::{RoleBinding, StoredToken};
use keelson_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every service token starts with this, so it can be told from a password and found by scanners.
pub const TOKEN_PREFIX: &str = "kst_";
pub use keelson_core::workspaces::DEFAULT_WORKSPACE;
/// How long a verified credential is trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Last use is written at most this often per token.
const LAST_USE_EVERY_MS: i64 = 60_000;
const MAX_CACHED: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Invalid(message) => ApiError::invalid(message),
            IdentityError::NotFound(message) => ApiError::new(ErrorCode::ResourceDoesNotExist, message),
            IdentityError::Forbidden(message) => ApiError::new(ErrorCode::PermissionDenied, message),
            IdentityError::Store(error) => error.into(),
        }
    }
}

/// A token as made: the secret part is here once and never again.
#[derive(Debug, serde::Serialize)]
pub struct MintedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: StoredToken,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UserInfo {
    pub name: String,
    pub created: i64,
    pub updated: i64,
    pub role: Option<String>,
}

struct Cached {
    principal: Principal,
    at: Instant,
    token_id: Option<String>,
}

/// The identity store's operations and the request authenticator; cheap to clone.
#[derive(Clone)]
pub struct IdentityService {
    store: Store,
    tokens_file: Option<Arc<TokenAuthenticator>>,
    oidc: Option<Arc<crate::oidc::OidcVerifier>>,
    cache: Arc<Mutex<HashMap<[u8; 32], Cached>>>,
    /// Bound roles by (workspace, principal), for requests outside the default workspace.
    roles: Arc<Mutex<HashMap<(String, String), CachedRole>>>,
    last_use: Arc<Mutex<HashMap<String, i64>>>,
}

/// A role binding read at a time: `None` is a cached absence.
type CachedRole = (Option<Role>, Instant);

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hasher() -> Argon2<'static> {
    Argon2::default()
}

pub fn validate_principal_name(name: &str) -> Result<(), IdentityError> {
    let valid = (1..=128).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        && name != "anonymous";
    if valid {
        return Ok(());
    }
    Err(IdentityError::Invalid(format!(
        "name `{}` must be 1–128 letters, digits, '-', '_', '.' or '@', starting with a letter or digit \
         (and not `anonymous`)",
        name.escape_debug()
    )))
}

fn validate_password(password: &str) -> Result<(), IdentityError> {
    if !(12..=1024).contains(&password.chars().count()) {
        return Err(IdentityError::Invalid("a password must be 12 to 1024 characters".to_string()));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, IdentityError> {
    validate_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| IdentityError::Invalid(format!("could not hash the password: {e}")))
}

fn unauthenticated() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, "the credentials in the Authorization header are not valid")
}

impl IdentityService {
    pub fn new(store: Store, tokens_file: Option<TokenAuthenticator>) -> IdentityService {
        IdentityService {
            store,
            tokens_file: tokens_file.map(Arc::new),
            oidc: None,
            cache: Arc::new(Mutex::new(HashMap::new())),
            roles: Arc::new(Mutex::new(HashMap::new())),
            last_use: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Accepts OIDC bearer tokens checked by `verifier` too.
    pub fn with_oidc(mut self, verifier: crate::oidc::OidcVerifier) -> IdentityService {
        self.oidc = Some(Arc::new(verifier));
        self
    }

    /// Forgets cached role bindings (after workspaces or bindings change).
    pub fn forget_cached_roles(&self) {
        self.roles.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn forget_all(&self) {
        self.roles.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn cached(&self, key: &[u8; 32]) -> Option<(Principal, Option<String>)> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).filter(|c| c.at.elapsed() < CACHE_TTL).map(|c| (c.principal.clone(), c.token_id.clone()))
    }

    fn remember(&self, key: [u8; 32], principal: &Principal, token_id: Option<String>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, Cached { principal: principal.clone(), at: Instant::now(), token_id });
    }

    /// A principal with its role in the default workspace; `fallback` applies when none is bound.
    async fn principal(&self, name: &str, roles: Vec<String>, fallback: Option<Role>) -> Result<Principal, StoreError> {
        let bound = self.store.role_of(DEFAULT_WORKSPACE, name).await?.as_deref().and_then(Role::parse);
        Ok(Principal::User { name: name.to_string(), roles, role: bound.or(fallback) })
    }

    /// Mints a token for `principal`; the token itself is in the answer only.
    pub async fn mint_token(
        &self,
        principal: &str,
        description: &str,
        expires_in_days: Option<u32>,
        created_by: &str,
    ) -> Result<MintedToken, IdentityError> {
        validate_principal_name(principal)?;
        if description.chars().count() > 200 {
            return Err(IdentityError::Invalid("a token description is at most 200 characters".to_string()));
        }
        if expires_in_days.is_some_and(|days| !(1..=3650).contains(&days)) {
            return Err(IdentityError::Invalid("expires_in_days must be 1 to 3650".to_string()));
        }
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let token = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret));
        let created = self.store.now();
        let info = StoredToken {
            id: format!("tok-{}", uuid::Uuid::now_v7().simple()),
            principal: principal.to_string(),
            description: description.to_string(),
            token_sha256: hex::encode(digest(&token)),
            created,
            created_by: created_by.to_string(),
            expires: expires_in_days.map(|days| created + i64::from(days) * 86_400_000),
            revoked: None,
            last_used: None,
        };
        self.store.create_token(&info).await?;
        Ok(MintedToken { token, info })
    }

    pub async fn tokens(&self, principal: Option<&str>) -> Result<Vec<StoredToken>, IdentityError> {
        Ok(self.store.list_tokens(principal).await?)
    }

    /// Revokes a token; `caller` may revoke only their own unless `as_admin`.
    pub async fn revoke_token(&self, id: &str, caller: &str, as_admin: bool) -> Result<(), IdentityError> {
        let token = self.store.get_token(id).await?;
        match token {
            Some(token) if as_admin || token.principal == caller => {
                self.store.revoke_token(id).await?;
                self.forget_all();
                Ok(())
            }
            // Someone else's token looks like no token.
            _ => Err(IdentityError::NotFound(format!("token `{id}` does not exist"))),
        }
    }

    pub async fn create_user(
        &self,
        name: &str,
        password: &str,
        role: Option<Role>,
        by: &str,
    ) -> Result<UserInfo, IdentityError> {
        validate_principal_name(name)?;
        let hash = hash_password(password)?;
        let user = self.store.create_user(name, &hash).await?;
        if let Some(role) = role {
            self.store.bind_role(DEFAULT_WORKSPACE, name, role.as_str(), by).await?;
        }
        Ok(UserInfo {
            name: user.name,
            created: user.created,
            updated: user.updated,
            role: role.map(|r| r.to_string()),
        })
    }

    pub async fn users(&self) -> Result<Vec<UserInfo>, IdentityError> {
        let roles: HashMap<String, String> = self
            .store
            .role_bindings(DEFAULT_WORKSPACE)
            .await?
            .into_iter()
            .map(|binding| (binding.principal, binding.role))
            .collect();
        Ok(self
            .store
            .list_users()
            .await?
            .into_iter()
            .map(|user| UserInfo {
                role: roles.get(&user.name).cloned(),
                name: user.name,
                created: user.created,
                updated: user.updated,
            })
            .collect())
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), IdentityError> {
        let hash = hash_password(password)?;
        if !self.store.set_user_password(name, &hash).await? {
            return Err(IdentityError::NotFound(format!("user `{name}` does not exist")));
        }
        self.forget_all();
        Ok(())
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), IdentityError> {
        if !self.store.delete_user(name).await? {
            return Err(IdentityError::NotFound(format!("user `{name}` does not exist")));
        }
        self.forget_all();
        Ok(())
    }

    pub async fn bind_role(
        &self,
        workspace: &str,
        principal: &str,
        role: Role,
        by: &str,
    ) -> Result<RoleBinding, IdentityError> {
        self.check_workspace(workspace).await?;
        validate_principal_name(principal)?;
        let binding = self.store.bind_role(workspace, principal, role.as_str(), by).await?;
        self.forget_all();
        Ok(binding)
    }

    pub async fn unbind_role(&self, workspace: &str, principal: &str) -> Result<(), IdentityError> {
        self.check_workspace(workspace).await?;
        if !self.store.unbind_role(workspace, principal).await? {
            return Err(IdentityError::NotFound(format!("`{principal}` has no role in workspace `{workspace}`")));
        }
        self.forget_all();
        Ok(())
    }

    pub async fn role_bindings(&self, workspace: &str) -> Result<Vec<RoleBinding>, IdentityError> {
        self.check_workspace(workspace).await?;
        Ok(self.store.role_bindings(workspace).await?)
    }

    /// A bearer token: a service token from the store, else one from the tokens file.
    async fn by_token(&self, token: &str) -> Result<Principal, ApiError> {
        let key = digest(token);
        if let Some((principal, token_id)) = self.cached(&key) {
            if let Some(id) = token_id {
                self.note_use(&id);
            }
            return Ok(principal);
        }
        if token.starts_with(TOKEN_PREFIX) {
            let stored = self.store.token_by_digest(&hex::encode(key)).await?.ok_or_else(unauthenticated)?;
            let now = self.store.now();
            if stored.revoked.is_some() || stored.expires.is_some_and(|expires| expires <= now) {
                return Err(ApiError::new(ErrorCode::Unauthenticated, "the token has expired or was revoked"));
            }
            let principal = self.principal(&stored.principal, Vec::new(), None).await?;
            self.remember(key, &principal, Some(stored.id.clone()));
            self.note_use(&stored.id);
            return Ok(principal);
        }
        if let Some(oidc) = self.oidc.as_ref().filter(|_| crate::oidc::OidcVerifier::looks_like_jwt(token)) {
            let identity = oidc.verify(token).await.map_err(|reason| {
                ApiError::new(ErrorCode::Unauthenticated, format!("the OIDC token was refused: {reason}"))
            })?;
            let principal = self.principal(&identity.principal, identity.roles, None).await?;
            // Trusted no longer than the token itself is valid.
            if identity.expires * 1000 > self.store.now() + CACHE_TTL.as_millis() as i64 {
                self.remember(key, &principal, None);
            }
            return Ok(principal);
        }
        let file = self.tokens_file.as_ref().ok_or_else(unauthenticated)?;
        let user = file.user_for(token).ok_or_else(unauthenticated)?;
        // Users of a tokens file written before workspace roles existed keep editing.
        let principal = self.principal(&user.name, user.roles.clone(), Some(Role::Editor)).await?;
        self.remember(key, &principal, None);
        Ok(principal)
    }

    /// HTTP Basic: a user's password, or a token as the password (what the `mlflow` client sends
    /// from MLFLOW_TRACKING_USERNAME/PASSWORD), whose principal must be the user named.
    async fn by_password(&self, user: &str, password: &str) -> Result<Principal, ApiError> {
        if password.starts_with(TOKEN_PREFIX)
            || self.tokens_file.as_ref().is_some_and(|f| f.user_for(password).is_some())
        {
            let principal = self.by_token(password).await?;
            return if principal.name() == user { Ok(principal) } else { Err(unauthenticated()) };
        }
        let key = digest(&format!("{user}\u{0}{password}"));
        if let Some((principal, _)) = self.cached(&key) {
            return Ok(principal);
        }
        let stored = self.store.get_user(user).await?;
        // A missing user costs a hash too, so timing does not tell which names exist.
        let hash = stored.as_ref().filter(|u| u.disabled_at.is_none()).map(|u| u.password_hash.clone());
        let password = password.to_string();
        let verified = tokio::task::spawn_blocking(move || {
            let Some(hash) = hash else {
                let _ = hash_password("not-a-password-of-anyone");
                return false;
            };
            PasswordHash::new(&hash).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false);
        if !verified {
            return Err(unauthenticated());
        }
        let principal = self.principal(user, Vec::new(), None).await?;
        self.remember(key, &principal, None);
        Ok(principal)
    }

    /// Writes a token's last use, at most once a minute per token, off the request path.
    fn note_use(&self, id: &str) {
        let now = self.store.now();
        {
            let mut last_use = self.last_use.lock().unwrap_or_else(|p| p.into_inner());
            if last_use.get(id).is_some_and(|at| now - at < LAST_USE_EVERY_MS) {
                return;
            }
            if last_use.len() >= MAX_CACHED {
                last_use.clear();
            }
            last_use.insert(id.to_string(), now);
        }
        let store = self.store.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(error) = store.touch_token(&id, now).await {
                tracing::warn!(%error, token = %id, "could not record a token's last use");
            }
        });
    }
}

impl IdentityService {
    /// Refuses a workspace that is not in the list, as absence.
    async fn check_workspace(&self, workspace: &str) -> Result<(), IdentityError> {
        if workspace == DEFAULT_WORKSPACE {
            return Ok(());
        }
        match self.store.get_workspace(workspace).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound(_)) => {
                Err(IdentityError::NotFound(format!("workspace `{workspace}` does not exist")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The role bound to principal `name` in `workspace` (cached like credentials).
    pub async fn role_in(&self, workspace: &str, name: &str) -> Result<Option<Role>, StoreError> {
        let key = (workspace.to_string(), name.to_string());
        if let Some((role, at)) = self.roles.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            if at.elapsed() < CACHE_TTL {
                return Ok(*role);
            }
        }
        let role = self.store.role_of(workspace, name).await?.as_deref().and_then(Role::parse);
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        if roles.len() >= MAX_CACHED {
            roles.clear();
        }
        roles.insert(key, (role, Instant::now()));
        Ok(role)
    }

    /// The principal as it acts in `workspace`: with the role bound to it there. Roles named in a
    /// tokens file or an OIDC claim are the operator's grants for the default workspace only, so
    /// in any other workspace only a binding counts.
    pub async fn in_workspace(&self, principal: Principal, workspace: &str) -> Result<Principal, StoreError> {
        if workspace == DEFAULT_WORKSPACE {
            return Ok(principal);
        }
        match principal {
            Principal::Anonymous => Ok(Principal::Anonymous),
            Principal::User { name, roles, .. } => {
                let role = self.role_in(workspace, &name).await?;
                let roles = roles.into_iter().filter(|named| Role::parse(named).is_none()).collect();
                Ok(Principal::User { name, roles, role })
            }
        }
    }
}

#[async_trait::async_trait]
impl Authenticator for IdentityService {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(Principal::Anonymous);
        };
        let value = value.to_str().map_err(|_| unauthenticated())?;
        let (scheme, credentials) = value.split_once(' ').ok_or_else(unauthenticated)?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.by_token(credentials.trim()).await;
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(credentials.trim()).map_err(|_| unauthenticated())?;
            let decoded = String::from_utf8(decoded).map_err(|_| unauthenticated())?;
            let (user, password) = decoded.split_once(':').ok_or_else(unauthenticated)?;
            return self.by_password(user, password).await;
        }
        Err(unauthenticated())
    }
}
