//! Identities and authorisation: tokens and passwords, roles, the tokens file (security hole 5),
//! and the matrix of every route against every kind of caller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::{app_configured, app_with, call, call_as, TestApp};
use keelson_core::auth::{Action, Permission, ResourceKind, Role};
use keelson_server::access::Level;
use serde_json::{json, Value};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A token for `principal` with `role` (none: a principal without a role).
async fn token_for(app: &TestApp, principal: &str, role: Option<Role>) -> String {
    if let Some(role) = role {
        app.identities.bind_role("default", principal, role, "test").await.unwrap();
    }
    app.identities.mint_token(principal, "test", None, "test").await.unwrap().token
}

fn is_auth_denial(status: StatusCode, body: &Value) -> bool {
    let message = body["message"].as_str().unwrap_or_default();
    (status == StatusCode::UNAUTHORIZED && message.starts_with("authentication required"))
        || (status == StatusCode::FORBIDDEN && message.starts_with("permission denied: `"))
}

#[tokio::test]
async fn a_tokens_file_no_longer_leaves_the_server_open() {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(b"carol-token-1234567890"));
    let file = keelson_server::auth::TokenAuthenticator::from_toml(&format!(
        "[[users]]\nname = \"carol\"\ntoken_sha256 = \"{digest}\"\nroles = [\"approver\"]\n"
    ))
    .unwrap();
    let app = app_configured(false, 1 << 20, Some(file)).await;
    // The attack: no token at all, on a read, a write and an admin-only route.
    let policy = "/api/v1/models/fraud/aliases/production/policy";
    for (method, uri) in [(Method::GET, "/api/v1/jobs"), (Method::POST, "/api/v1/jobs"), (Method::PUT, policy)] {
        let (status, body, _) = call(&app, method.clone(), uri, Some(json!({"kind": "system.noop"}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
    }
    // A tokens-file user without a workspace role edits (as before roles existed), but the
    // admin-only promotion policy refuses them.
    let carol = bearer("carol-token-1234567890");
    let (status, body, _) =
        call_as(&app, &carol, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body, _) = call_as(&app, &carol, Method::PUT, policy, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("needs an admin"), "{body}");
    let (status, _, _) = call_as(&app, &bearer("carol-token-1234567899"), Method::GET, "/api/v1/jobs", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Granting carol admin in the workspace opens the policy route to her.
    app.identities.bind_role("default", "carol", Role::Admin, "test").await.unwrap();
    let (status, body, _) = call_as(&app, &carol, Method::PUT, policy, Some(json!({}))).await;
    assert!(!is_auth_denial(status, &body), "{status} {body}");
}

#[tokio::test]
async fn tokens_are_shown_once_expire_and_revoke() {
    let app = app_with(false, 1 << 20).await;
    let admin = bearer(&token_for(&app, "root", Some(Role::Admin)).await);
    let (status, body, _) = call_as(
        &app,
        &admin,
        Method::POST,
        "/api/v1/users",
        Some(json!({
            "name": "bob", "password": "correct horse battery", "role": "viewer"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains("correct horse"), "{body}");

    // Bob with his password (as MLFLOW_TRACKING_USERNAME/PASSWORD send it) reads, cannot write.
    let bob = basic("bob", "correct horse battery");
    let (status, body, _) = call_as(&app, &bob, Method::GET, "/api/v1/whoami", None).await;
    assert_eq!((status, body["name"].as_str(), body["role"].as_str()), (StatusCode::OK, Some("bob"), Some("viewer")));
    let (status, _, _) = call_as(&app, &bob, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call_as(&app, &basic("bob", "wrong horse battery"), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) =
        call_as(&app, &basic("nobody", "correct horse battery"), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bob makes a token for himself (not for others); it is in the answer once.
    let (status, body, _) =
        call_as(&app, &bob, Method::POST, "/api/v1/tokens", Some(json!({"description": "ci", "expires_in_days": 30})))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"]["token"].as_str().unwrap().to_string();
    let id = body["token"]["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("kst_") && token.len() > 40);
    let (status, _, _) = call_as(&app, &bob, Method::POST, "/api/v1/tokens", Some(json!({"principal": "root"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed, _) = call_as(&app, &bob, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1, "bob sees his own: {listed}");
    assert!(!listed.to_string().contains(&token[4..]), "the token is never listed");
    let (_, all, _) = call_as(&app, &admin, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(all["tokens"].as_array().unwrap().len(), 2, "{all}");

    // The token works as a bearer token and as a password (the mlflow client's two ways).
    let (status, _, _) = call_as(&app, &bearer(&token), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call_as(&app, &basic("bob", &token), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call_as(&app, &basic("root", &token), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a token speaks for its own principal only");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let used = app.store.get_token(&id).await.unwrap().unwrap();
    assert!(used.last_used.is_some(), "last use is recorded");

    // Revoked: refused at once (this process forgets its cache).
    let (status, _, _) = call_as(&app, &admin, Method::DELETE, &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = call_as(&app, &bearer(&token), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("revoked"), "{body}");

    // Expired: a token whose expiry has passed is refused.
    let minted = app.identities.mint_token("bob", "short", Some(1), "test").await.unwrap();
    app.store
        .execute_for_tests(&format!("UPDATE service_tokens SET expires = 1 WHERE id = '{}'", minted.info.id))
        .await
        .unwrap();
    let (status, _, _) = call_as(&app, &bearer(&minted.token), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Role changes and deletion take effect at once.
    let (status, _, _) =
        call_as(&app, &admin, Method::PUT, "/api/v1/workspaces/default/roles/bob", Some(json!({"role": "editor"})))
            .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call_as(&app, &bob, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) =
        call_as(&app, &admin, Method::PUT, "/api/v1/workspaces/elsewhere/roles/bob", Some(json!({"role": "editor"})))
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call_as(&app, &admin, Method::DELETE, "/api/v1/users/bob", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call_as(&app, &bob, Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn weak_passwords_and_bad_names_are_refused() {
    let app = app_with(true, 1 << 20).await;
    for (name, password) in [
        ("eve", "short"),
        ("", "long enough password"),
        ("anonymous", "long enough password"),
        ("a b", "long enough password"),
    ] {
        let (status, body, _) =
            call(&app, Method::POST, "/api/v1/users", Some(json!({"name": name, "password": password}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
    }
    let (status, _, _) =
        call(&app, Method::POST, "/api/v1/users", Some(json!({"name": "eve", "password": "long enough password"})))
            .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) =
        call(&app, Method::POST, "/api/v1/users", Some(json!({"name": "eve", "password": "long enough password"})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "RESOURCE_ALREADY_EXISTS");
}

/// A concrete path for a route template: every `{param}` becomes a plausible value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with("{*") {
                "a/b.txt".to_string()
            } else if segment.starts_with('{') {
                "x1".to_string()
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_against_every_kind_of_caller() {
    let app = app_with(false, 1 << 20).await;
    let callers = [
        ("anonymous", None),
        ("no role", Some(token_for(&app, "drifter", None).await)),
        ("viewer", Some(token_for(&app, "vera", Some(Role::Viewer)).await)),
        ("editor", Some(token_for(&app, "eddie", Some(Role::Editor)).await)),
        ("admin", Some(token_for(&app, "ada", Some(Role::Admin)).await)),
    ];
    let mut checked = 0;
    let mut mutating_calls = 0;
    for route in app.routes.clone() {
        let uri = concrete(&route.path);
        let body = (route.method != Method::GET).then(|| json!({}));
        for (who, token) in &callers {
            let role = Role::parse(who);
            // Per-resource permissions: without a grant, a role's level decides (editors do not
            // delete what they did not make).
            let resource_need = keelson_server::access::route_need(&route.method, &route.path);
            let allowed = match route.permission {
                Permission::Public => true,
                Permission::Require(action, _) => role.is_some_and(|role| {
                    role.allows(action) && resource_need.is_none_or(|need| Level::of_role(role).allows(need))
                }),
            };
            let (status, answer, _) = match token {
                Some(token) => call_as(&app, &bearer(token), route.method.clone(), &uri, body.clone()).await,
                None => call(&app, route.method.clone(), &uri, body.clone()).await,
            };
            let denied = is_auth_denial(status, &answer);
            assert_eq!(denied, !allowed, "{who} {} {}: {status} {answer}", route.method, route.path);
            if denied {
                let expected = if token.is_none() { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
                assert_eq!(status, expected, "{who} {} {}", route.method, route.path);
            }
            checked += 1;
            if !matches!(route.method, Method::GET | Method::HEAD) {
                mutating_calls += 1;
            }
        }
    }
    // Every mutating call, allowed or refused, is exactly one audit record.
    let records = app
        .store
        .audit_records(&keelson_store::audit::AuditQuery { limit: 100_000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(records.len(), mutating_calls, "one audit record per mutating call");
    assert_eq!(app.store.verify_audit_chain().await.unwrap().broken_at, None);
    assert!(checked >= 5 * 100, "{checked} checks");
    // Each action is represented, so the matrix covers all three role boundaries.
    for action in [Action::Read, Action::Write, Action::Admin] {
        assert!(app.routes.iter().any(|r| matches!(r.permission, Permission::Require(a, _) if a == action)));
    }
}

#[tokio::test]
async fn each_principal_is_held_to_its_rate_with_retry_after() {
    let app = common::app_limited(false, 1 << 20, None, 3).await;
    let busy = bearer(&token_for(&app, "busy", Some(Role::Viewer)).await);
    let calm = bearer(&token_for(&app, "calm", Some(Role::Viewer)).await);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(call_as(&app, &busy, Method::GET, "/api/v1/whoami", None).await.0);
    }
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(limited >= 5, "{statuses:?}");
    let (status, body, headers) = call_as(&app, &busy, Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error_code"], "REQUEST_LIMIT_EXCEEDED");
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(call_as(&app, &calm, Method::GET, "/api/v1/whoami", None).await.0, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/health/live", None).await.0, StatusCode::OK, "probes are never limited");
}

#[tokio::test]
async fn the_workspace_header_names_default_or_nothing_that_exists() {
    let app = app_with(true, 1 << 20).await;
    let request = |header: &'static str, value: &str| {
        axum::http::Request::builder()
            .method(Method::GET)
            .uri("/api/2.0/mlflow/experiments/search?max_results=1")
            .header(header, value)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    for (header, value, expected) in [
        ("x-mlflow-workspace", "default", StatusCode::OK),
        ("x-keelson-workspace", "default", StatusCode::OK),
        ("x-mlflow-workspace", "team-b", StatusCode::NOT_FOUND),
        ("x-keelson-workspace", "team-b", StatusCode::NOT_FOUND),
    ] {
        let (status, body, _) = common::send(&app, request(header, value)).await;
        assert_eq!(status, expected, "{header}: {value}: {body}");
        if expected == StatusCode::NOT_FOUND {
            assert!(body.contains("RESOURCE_DOES_NOT_EXIST") && body.contains("team-b"), "{body}");
        }
    }
    // A write in the default workspace is audited under it.
    let (status, _, _) = call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let records =
        app.store.audit_records(&keelson_store::audit::AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(records.last().unwrap().event.workspace, "default");
}

#[tokio::test]
async fn a_write_to_a_workspace_that_does_not_exist_is_refused_and_audited() {
    let app = app_with(true, 1 << 20).await;
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/jobs")
        .header("x-mlflow-workspace", "team-b")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"kind": "system.noop"}"#))
        .unwrap();
    let (status, _, _) = common::send(&app, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let records =
        app.store.audit_records(&keelson_store::audit::AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].event.workspace.as_str(), records[0].event.status), ("team-b", 404));
}

/// The workspace dimension of the matrix: in a workspace the caller has no role in, every route
/// that needs a principal answers exactly as for a workspace that does not exist.
#[tokio::test]
async fn every_route_in_a_workspace_the_caller_cannot_see_answers_as_absence() {
    let app = app_with(false, 1 << 20).await;
    let admin = bearer(&token_for(&app, "ada", Some(Role::Admin)).await);
    app.platform.create_workspace("team-b", "", "keelson").await.unwrap();
    let mut checked = 0;
    for route in app.routes.clone() {
        let uri = concrete(&route.path);
        let body = (route.method != Method::GET).then(|| json!({}));
        for caller in [None, Some(admin.as_str())] {
            for workspace in ["team-b", "no-such-team"] {
                let (status, answer, _) =
                    common::call_in(&app, Some(workspace), caller, route.method.clone(), &uri, body.clone()).await;
                let absent = status == StatusCode::NOT_FOUND
                    && answer["message"] == json!(format!("workspace `{workspace}` does not exist"));
                assert_eq!(
                    absent,
                    route.permission != Permission::Public,
                    "{caller:?} in {workspace}: {} {}: {status} {answer}",
                    route.method,
                    route.path
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 100, "{checked} checks");
}

/// Roles bound in a workspace decide there, and only there; the server-wide routes (users,
/// tokens, secrets, audit) are not served in it.
#[tokio::test]
async fn every_route_for_members_of_a_workspace() {
    let app = app_with(false, 1 << 20).await;
    app.platform.create_workspace("team-b", "", "keelson").await.unwrap();
    let mut callers = Vec::new();
    for (who, role) in [("viewer", Role::Viewer), ("editor", Role::Editor), ("admin", Role::Admin)] {
        let name = format!("b-{who}");
        app.identities.bind_role("team-b", &name, role, "test").await.unwrap();
        callers.push((role, bearer(&token_for(&app, &name, None).await)));
    }
    // Role bindings are served in every workspace (its admins manage its own).
    let server_wide = |kind: ResourceKind, path: &str| {
        matches!(kind, ResourceKind::Secrets | ResourceKind::Audit | ResourceKind::Identities)
            && !path.contains("/roles")
    };
    for route in app.routes.clone() {
        let uri = concrete(&route.path);
        let body = (route.method != Method::GET).then(|| json!({}));
        for (role, token) in &callers {
            let (status, answer, _) =
                common::call_in(&app, Some("team-b"), Some(token), route.method.clone(), &uri, body.clone()).await;
            match route.permission {
                Permission::Require(_, kind) if server_wide(kind, &route.path) => {
                    assert_eq!(answer["error_code"], "ENDPOINT_NOT_FOUND", "{role} {} {}", route.method, route.path);
                }
                Permission::Public => assert!(!is_auth_denial(status, &answer)),
                Permission::Require(action, _) => assert_eq!(
                    is_auth_denial(status, &answer),
                    !(role.allows(action)
                        && keelson_server::access::route_need(&route.method, &route.path)
                            .is_none_or(|need| Level::of_role(*role).allows(need))),
                    "{role} {} {}: {status} {answer}",
                    route.method,
                    route.path
                ),
            }
        }
        // In the default workspace they have no role at all.
        let (status, answer, _) = call_as(&app, &callers[2].1, route.method.clone(), &uri, body.clone()).await;
        if route.permission != Permission::Public {
            assert_eq!(status, StatusCode::FORBIDDEN, "{} {}: {answer}", route.method, route.path);
        }
    }
}
