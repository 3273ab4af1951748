//! OIDC bearer tokens: JWTs from an identity provider, checked against the issuer's published
//! keys (a JWKS file or URL from the configuration), its issuer, the audience, and the validity
//! window. Only asymmetric algorithms are accepted: a token signed with a shared secret (`HS*`)
//! would let anyone who knows a public key forge one.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keelson_core::config::AuthConfig;
use keelson_egress::{read_limited, EgressClient, EgressPolicy};
use serde_json::{Map, Value};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// An unknown key id makes us fetch the key set again, at most this often (providers rotate keys
/// by publishing the new one before using it).
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

enum Source {
    File(std::path::PathBuf),
    /// Written by the operator, so trusted (not checked by the egress policy), still bounded.
    Url(url::Url, EgressClient),
}

pub struct OidcVerifier {
    issuer: String,
    audience: String,
    principal_claim: String,
    roles_claim: String,
    source: Source,
    keys: RwLock<(JwkSet, Instant)>,
}

/// Who a verified token speaks for, and until when.
pub struct OidcIdentity {
    pub principal: String,
    pub roles: Vec<String>,
    pub expires: i64,
}

async fn load(source: &Source, limit: u64) -> Result<JwkSet, String> {
    let text = match source {
        Source::File(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("auth.oidc_jwks `{}`: {e}", path.display()))?
        }
        Source::Url(url, client) => {
            let answer = client
                .get(url)
                .map_err(|e| e.to_string())?
                .send()
                .await
                .map_err(|e| format!("fetching auth.oidc_jwks: {}", EgressClient::explain(&e)))?;
            if !answer.status().is_success() {
                return Err(format!("fetching auth.oidc_jwks answered HTTP {}", answer.status().as_u16()));
            }
            let bytes = read_limited(answer, limit).await.map_err(|e| e.to_string())?;
            String::from_utf8(bytes.to_vec()).map_err(|_| "auth.oidc_jwks is not UTF-8".to_string())?
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("auth.oidc_jwks is not a JWK set: {e}"))
}

impl OidcVerifier {
    /// The verifier the `auth.oidc_*` settings describe; `None` when OIDC is not configured.
    pub async fn from_config(auth: &AuthConfig, egress: &EgressPolicy) -> Result<Option<OidcVerifier>, String> {
        if auth.oidc_issuer.is_empty() {
            return Ok(None);
        }
        let source = if auth.oidc_jwks.starts_with("https://") || auth.oidc_jwks.starts_with("http://") {
            let url = url::Url::parse(&auth.oidc_jwks).map_err(|e| format!("auth.oidc_jwks: {e}"))?;
            Source::Url(url, egress.trusted_client().map_err(|e| e.to_string())?)
        } else {
            Source::File(auth.oidc_jwks.clone().into())
        };
        let keys = load(&source, egress.max_response_bytes()).await?;
        Ok(Some(OidcVerifier {
            issuer: auth.oidc_issuer.clone(),
            audience: auth.oidc_audience.clone(),
            principal_claim: auth.oidc_principal_claim.clone(),
            roles_claim: auth.oidc_roles_claim.clone(),
            source,
            keys: RwLock::new((keys, Instant::now())),
        }))
    }

    /// Whether a bearer token looks like a JWT (three base64url parts) rather than a Keelson token.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3 && !token.starts_with(crate::identity::TOKEN_PREFIX)
    }

    fn key_for(&self, kid: Option<&str>) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let jwk = match kid {
            Some(kid) => keys.0.find(kid),
            None if keys.0.keys.len() == 1 => keys.0.keys.first(),
            None => None,
        }?;
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn refresh_if_due(&self) {
        if self.keys.read().unwrap_or_else(|p| p.into_inner()).1.elapsed() < REFRESH_AT_MOST_EVERY {
            return;
        }
        match load(&self.source, 1 << 20).await {
            Ok(keys) => *self.keys.write().unwrap_or_else(|p| p.into_inner()) = (keys, Instant::now()),
            Err(error) => {
                tracing::warn!(%error, "refreshing the OIDC key set failed");
                self.keys.write().unwrap_or_else(|p| p.into_inner()).1 = Instant::now();
            }
        }
    }

    pub async fn verify(&self, token: &str) -> Result<OidcIdentity, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(format!("algorithm {:?} is not accepted; the issuer must sign with a key pair", header.alg));
        }
        let key = match self.key_for(header.kid.as_deref()) {
            Some(key) => key,
            None => {
                self.refresh_if_due().await;
                self.key_for(header.kid.as_deref()).ok_or("the token's key is not in the issuer's key set")?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 60;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| format!("the token does not verify: {e}"))?
            .claims;
        let principal = claims
            .get(&self.principal_claim)
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty() && name.len() <= 256)
            .ok_or_else(|| format!("the token has no `{}` claim naming its principal", self.principal_claim))?
            .to_string();
        let roles = match claims.get(&self.roles_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let expires = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
        Ok(OidcIdentity { principal, roles, expires })
    }
}
