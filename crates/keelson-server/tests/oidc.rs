//! OIDC bearer tokens against a key set on disk: a real ES256 key pair (the monitor's test key),
//! tokens signed by it, and the refusals an attacker would try.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::HeaderMap;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keelson_core::auth::Role;
use keelson_core::config::AuthConfig;
use keelson_server::auth::Authenticator;
use keelson_server::identity::IdentityService;
use keelson_server::oidc::OidcVerifier;
use serde_json::json;

fn testdata(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keelson-monitor/testdata/smtp-tls").join(name),
    )
    .unwrap()
}

/// The JWK of the test certificate's P-256 public key (the point after the SPKI bit string's
/// `03 42 00 04` header).
fn jwk() -> serde_json::Value {
    let cert = testdata("localhost.der");
    let at = cert.windows(4).position(|w| w == [0x03, 0x42, 0x00, 0x04]).unwrap() + 4;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
           "x": b64(&cert[at..at + 32]), "y": b64(&cert[at + 32..at + 64])})
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn sign(claims: serde_json::Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&testdata("localhost.key.der"))).unwrap()
}

fn claims(audience: &str, expires: i64) -> serde_json::Value {
    json!({"iss": "https://idp.test", "aud": audience, "sub": "alice@corp", "exp": expires, "iat": now(),
           "roles": ["editor", "approver"]})
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers
}

#[tokio::test]
async fn tokens_from_the_issuer_verify_and_forgeries_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk()]}).to_string()).unwrap();
    let config = AuthConfig {
        oidc_issuer: "https://idp.test".into(),
        oidc_audience: "keelson".into(),
        oidc_jwks: jwks.display().to_string(),
        ..AuthConfig::default()
    };
    let verifier = OidcVerifier::from_config(&config, &keelson_egress::EgressPolicy::default()).await.unwrap().unwrap();
    let store = keelson_store::Store::open(
        &format!("sqlite://{}/k.db", dir.path().display()),
        &keelson_store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let identities = IdentityService::new(store, None).with_oidc(verifier);

    let principal = identities.authenticate(&bearer(&sign(claims("keelson", now() + 600), "k1"))).await.unwrap();
    assert_eq!(principal.name(), "alice@corp");
    assert_eq!(principal.workspace_role(), Some(Role::Editor));
    assert!(principal.roles().contains(&"approver".to_string()));

    let refused = |token: String| {
        let identities = identities.clone();
        async move { identities.authenticate(&bearer(&token)).await.unwrap_err() }
    };
    for (why, token) in [
        ("another audience", sign(claims("someone-else", now() + 600), "k1")),
        ("expired", sign(claims("keelson", now() - 3600), "k1")),
        ("unknown key", sign(claims("keelson", now() + 600), "k2")),
        (
            "another issuer",
            sign(json!({"iss": "https://evil.test", "aud": "keelson", "sub": "x", "exp": now() + 600}), "k1"),
        ),
    ] {
        let error = refused(token).await;
        assert_eq!(error.code, keelson_server::error::ErrorCode::Unauthenticated, "{why}: {}", error.message);
    }
    // A token signed with a shared secret (alg confusion: HS256 keyed by the public key).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let forged =
        jsonwebtoken::encode(&header, &claims("keelson", now() + 600), &EncodingKey::from_secret(b"public").unwrap())
            .unwrap();
    assert!(refused(forged).await.message.contains("not accepted"));
    // A payload changed after signing.
    let token = sign(claims("keelson", now() + 600), "k1");
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = claims("keelson", now() + 600);
    payload["sub"] = json!("root");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert!(refused(tampered).await.message.contains("does not verify"));
}
