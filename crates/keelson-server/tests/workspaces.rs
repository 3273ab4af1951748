//! Workspaces: made and deleted through MLflow 3's routes, isolated from one another, invisible
//! to callers without a role in them (the same answer as a workspace that does not exist), and
//! back after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app_with, call_in, TestApp};
use keelson_core::auth::Role;
use serde_json::{json, Value};

const WORKSPACES: &str = "/api/3.0/mlflow/workspaces";

async fn token(app: &TestApp, principal: &str, default_role: Option<Role>) -> String {
    if let Some(role) = default_role {
        app.identities.bind_role("default", principal, role, "test").await.unwrap();
    }
    format!("Bearer {}", app.identities.mint_token(principal, "test", None, "test").await.unwrap().token)
}

async fn create_experiment(app: &TestApp, workspace: Option<&str>, auth: &str, name: &str) -> (StatusCode, Value) {
    let (status, body, _) = call_in(
        app,
        workspace,
        Some(auth),
        Method::POST,
        "/api/2.0/mlflow/experiments/create",
        Some(json!({ "name": name })),
    )
    .await;
    (status, body)
}

async fn experiment_names(app: &TestApp, workspace: Option<&str>, auth: &str) -> Vec<String> {
    let (status, body, _) = call_in(
        app,
        workspace,
        Some(auth),
        Method::POST,
        "/api/2.0/mlflow/experiments/search",
        Some(json!({ "max_results": 100 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut names: Vec<String> =
        body["experiments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_workspace_has_its_own_resources_and_names() {
    let app = app_with(false, 1 << 20).await;
    let admin = token(&app, "ada", Some(Role::Admin)).await;
    let (status, body, _) = call_in(
        &app,
        None,
        Some(&admin),
        Method::POST,
        WORKSPACES,
        Some(json!({"name": "team-a", "description": "A"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["workspace"], json!({"name": "team-a", "description": "A"}));

    // The same names in both workspaces, each seeing only its own.
    assert_eq!(create_experiment(&app, None, &admin, "shared").await.0, StatusCode::OK);
    assert_eq!(create_experiment(&app, Some("team-a"), &admin, "shared").await.0, StatusCode::OK);
    assert_eq!(create_experiment(&app, Some("team-a"), &admin, "only-a").await.0, StatusCode::OK);
    assert_eq!(experiment_names(&app, None, &admin).await, ["Default", "shared"]);
    assert_eq!(experiment_names(&app, Some("team-a"), &admin).await, ["Default", "only-a", "shared"]);
    let (status, _, _) = call_in(
        &app,
        None,
        Some(&admin),
        Method::GET,
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=only-a",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Native resources too.
    for workspace in [None, Some("team-a")] {
        let (status, body, _) =
            call_in(&app, workspace, Some(&admin), Method::POST, "/api/v1/datasets", Some(json!({"name": "sales"})))
                .await;
        assert_eq!(status, StatusCode::CREATED, "{workspace:?}: {body}");
    }
    let (_, body, _) = call_in(&app, Some("team-a"), Some(&admin), Method::GET, "/api/v1/datasets", None).await;
    assert_eq!(body["datasets"].as_array().unwrap().len(), 1);

    // A restart opens every listed workspace again, with what it held.
    let again = app.second_platform(false).await;
    assert_eq!(again.workspace_names(), ["default", "team-a"]);
    let held = again.workspace("team-a").unwrap().state.store.resource_counts().await.unwrap();
    assert_eq!(held, vec![("experiments", 2), ("datasets", 1)]);
    again.shut_down().await;
}

#[tokio::test]
async fn a_workspace_without_a_role_looks_like_one_that_does_not_exist() {
    let app = app_with(false, 1 << 20).await;
    let admin = token(&app, "ada", Some(Role::Admin)).await;
    // Alice edits the default workspace and has no role in team-a.
    let alice = token(&app, "alice", Some(Role::Editor)).await;
    call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(json!({"name": "team-a"}))).await;
    let (status, _) = create_experiment(&app, Some("team-a"), &admin, "secret-project").await;
    assert_eq!(status, StatusCode::OK);

    let probes: [(Method, String, Option<Value>); 4] = [
        (Method::POST, "/api/2.0/mlflow/experiments/search".to_string(), Some(json!({}))),
        (Method::GET, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=secret-project".to_string(), None),
        (Method::POST, "/api/2.0/mlflow/experiments/create".to_string(), Some(json!({"name": "mine"}))),
        (Method::GET, format!("{WORKSPACES}/team-a"), None),
    ];
    for (method, uri, body) in probes {
        for caller in [Some(alice.as_str()), None] {
            let (hidden_status, hidden, _) =
                call_in(&app, Some("team-a"), caller, method.clone(), &uri, body.clone()).await;
            let missing_uri = uri.replace("team-a", "team-z");
            let (missing_status, missing, _) =
                call_in(&app, Some("team-z"), caller, method.clone(), &missing_uri, body.clone()).await;
            assert_eq!(hidden_status, StatusCode::NOT_FOUND, "{method} {uri} {caller:?}: {hidden}");
            assert_eq!(missing_status, hidden_status, "{method} {uri}");
            assert_eq!(hidden["error_code"], missing["error_code"], "{method} {uri}");
            assert_eq!(
                hidden["message"].as_str().unwrap().replace("team-a", "team-z"),
                missing["message"].as_str().unwrap(),
                "{method} {uri}"
            );
        }
    }
    // Nor does the list show it, nor can she read it from her own workspace.
    let (_, listed, _) = call_in(&app, None, Some(&alice), Method::GET, WORKSPACES, None).await;
    assert_eq!(listed["workspaces"], json!([{"name": "default", "description": "The workspace that always exists"}]));
    let (status, _, _) = call_in(&app, None, Some(&alice), Method::GET, &format!("{WORKSPACES}/team-a"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Given a viewer role there, she reads and cannot write; her default role does not carry over.
    app.identities.bind_role("team-a", "alice", Role::Viewer, "ada").await.unwrap();
    assert_eq!(experiment_names(&app, Some("team-a"), &alice).await, ["Default", "secret-project"]);
    let (status, body) = create_experiment(&app, Some("team-a"), &alice, "mine").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("is a viewer in workspace `team-a`"), "{body}");
    let (_, listed, _) = call_in(&app, None, Some(&alice), Method::GET, WORKSPACES, None).await;
    assert_eq!(listed["workspaces"].as_array().unwrap().len(), 2);
    let (_, me, _) = call_in(&app, Some("team-a"), Some(&alice), Method::GET, "/api/v1/whoami", None).await;
    assert_eq!((me["workspace"].as_str(), me["role"].as_str()), (Some("team-a"), Some("viewer")));
}

#[tokio::test]
async fn only_server_admins_make_and_delete_workspaces_and_deletion_is_complete() {
    let app = app_with(false, 1 << 20).await;
    let admin = token(&app, "ada", Some(Role::Admin)).await;
    let editor = token(&app, "eddie", Some(Role::Editor)).await;
    let (status, _, _) =
        call_in(&app, None, Some(&editor), Method::POST, WORKSPACES, Some(json!({"name": "team-e"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, expected) in [
        (json!({"name": "default"}), "reserved"),
        (json!({"name": "Team_A"}), "must match the pattern"),
        (json!({"name": "api"}), "reserved"),
        (json!({"name": "team-a", "default_artifact_root": "file:///etc"}), "not accepted"),
        (json!({}), "'name'"),
    ] {
        let (status, answer, _) = call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(expected), "{answer}");
    }
    call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(json!({"name": "team-a"}))).await;
    let (status, answer, _) =
        call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(json!({"name": "team-a"}))).await;
    assert_eq!((status, answer["error_code"].as_str()), (StatusCode::BAD_REQUEST, Some("RESOURCE_ALREADY_EXISTS")));
    app.identities.bind_role("team-a", "eddie", Role::Admin, "ada").await.unwrap();
    create_experiment(&app, Some("team-a"), &admin, "kept").await;

    // Its own admin may describe it but not delete it.
    let one = format!("{WORKSPACES}/team-a");
    let (status, answer, _) =
        call_in(&app, Some("team-a"), Some(&editor), Method::PATCH, &one, Some(json!({"description": "ours"}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["workspace"]["description"], "ours");
    let (status, _, _) = call_in(&app, Some("team-a"), Some(&editor), Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // RESTRICT refuses while it holds resources; CASCADE drops everything it had.
    let (status, answer, _) = call_in(&app, None, Some(&admin), Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("1 experiments"), "{answer}");
    let (status, _, _) =
        call_in(&app, None, Some(&admin), Method::DELETE, &format!("{one}?mode=SET_DEFAULT"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call_in(&app, None, Some(&admin), Method::DELETE, &format!("{one}?mode=CASCADE"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = create_experiment(&app, Some("team-a"), &admin, "after").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a deleted workspace takes no requests");
    assert!(!app.dir().join("workspaces").join("team-a").exists(), "its database is gone");

    // Made again, it starts empty and with no one in it but its maker: old grants do not return.
    call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(json!({"name": "team-a"}))).await;
    assert_eq!(experiment_names(&app, Some("team-a"), &admin).await, ["Default"]);
    let (status, _) = create_experiment(&app, Some("team-a"), &editor, "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "eddie's old admin role went with the old workspace");
    let (status, _, _) =
        call_in(&app, None, Some(&admin), Method::DELETE, &format!("{WORKSPACES}/default"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refused_write_in_a_hidden_workspace_is_audited_under_that_workspace() {
    let app = app_with(false, 1 << 20).await;
    let admin = token(&app, "ada", Some(Role::Admin)).await;
    let alice = token(&app, "alice", Some(Role::Editor)).await;
    call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(json!({"name": "team-a"}))).await;
    let before =
        app.store.audit_records(&keelson_store::audit::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    let (status, _) = create_experiment(&app, Some("team-a"), &alice, "sneaky").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let after =
        app.store.audit_records(&keelson_store::audit::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(after.len(), before.len() + 1);
    let record = &after.last().unwrap().event;
    assert_eq!((record.principal.as_str(), record.workspace.as_str(), record.status), ("alice", "team-a", 404));
    assert_eq!(app.store.verify_audit_chain().await.unwrap().broken_at, None);
}

#[tokio::test]
async fn a_workspace_admin_manages_its_own_roles_and_no_others() {
    let app = app_with(false, 1 << 20).await;
    let admin = token(&app, "ada", Some(Role::Admin)).await;
    for name in ["team-a", "team-c"] {
        call_in(&app, None, Some(&admin), Method::POST, WORKSPACES, Some(json!({"name": name}))).await;
    }
    app.identities.bind_role("team-a", "tina", Role::Admin, "ada").await.unwrap();
    let tina = token(&app, "tina", None).await;
    let bind = |workspace: &str, who: &str| format!("/api/v1/workspaces/{workspace}/roles/{who}");

    let (status, body, _) = call_in(
        &app,
        Some("team-a"),
        Some(&tina),
        Method::PUT,
        &bind("team-a", "vic"),
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed, _) =
        call_in(&app, Some("team-a"), Some(&tina), Method::GET, "/api/v1/workspaces/team-a/roles", None).await;
    let bound: Vec<&str> =
        listed["roles"].as_array().unwrap().iter().map(|b| b["principal"].as_str().unwrap()).collect();
    assert!(bound.contains(&"vic") && bound.contains(&"tina"), "{listed}");
    // Another workspace's bindings answer as absent from inside team-a, and default's refuse her.
    let (status, body, _) = call_in(
        &app,
        Some("team-a"),
        Some(&tina),
        Method::PUT,
        &bind("team-c", "tina"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::NOT_FOUND, Some("workspace `team-c` does not exist")));
    let (status, _, _) =
        call_in(&app, None, Some(&tina), Method::PUT, &bind("default", "tina"), Some(json!({"role": "admin"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The server's admins manage any workspace's from default.
    let (status, _, _) = call_in(&app, None, Some(&admin), Method::DELETE, &bind("team-a", "vic"), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_workspace_reaches_what_its_egress_settings_allow() {
    // A loopback service stands for team-a's internal warehouse.
    let router = axum::Router::new().route("/data.csv", axum::routing::get(|| async { "x\n1\n2\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = common::app_tweaked(true, 1 << 20, None, 0, |config| {
        config.egress.workspaces.insert(
            "team-a".into(),
            keelson_core::config::WorkspaceEgressConfig {
                allow_cidrs: vec!["127.0.0.0/8".into()],
                ..Default::default()
            },
        );
    })
    .await;
    app.platform.create_workspace("team-a", "", "keelson").await.unwrap();
    app.platform.create_workspace("team-b", "", "keelson").await.unwrap();
    let source = json!({"source": {"kind": "http", "url": format!("http://{internal}/data.csv"), "format": "csv"}});
    for (workspace, allowed) in [(None, false), (Some("team-b"), false), (Some("team-a"), true)] {
        let (status, body, _) =
            call_in(&app, workspace, None, Method::POST, "/api/v1/datasets/warehouse/ingest", Some(source.clone()))
                .await;
        let refused = status == StatusCode::BAD_REQUEST && body["message"].as_str().unwrap_or("").contains("egress");
        assert_eq!(refused, !allowed, "{workspace:?}: {status} {body}");
        if allowed {
            assert!(status.is_success(), "{workspace:?}: {status} {body}");
        }
    }
}

/// Replicas share the database: a workspace made through one is served by another at once, and
/// one deleted through one is closed by the other when it follows the list.
#[tokio::test]
async fn replicas_follow_workspaces_made_and_deleted_elsewhere() {
    let app = app_with(true, 1 << 20).await;
    let other = app.second_platform(true).await;
    let other_router = other.router();
    let search = |router: axum::Router| async move {
        let request = axum::http::Request::builder()
            .method(Method::GET)
            .uri("/api/2.0/mlflow/experiments/search?max_results=10")
            .header("x-mlflow-workspace", "team-r")
            .body(axum::body::Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(router, request).await.unwrap().status()
    };
    // Asked before it exists, then made through the first replica: the second serves it at once.
    assert_eq!(search(other_router.clone()).await, StatusCode::NOT_FOUND);
    let (status, _, _) = call_in(&app, None, None, Method::POST, WORKSPACES, Some(json!({"name": "team-r"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(search(other_router.clone()).await, StatusCode::OK);
    // Deleted through the first: the second closes it when it follows the list.
    let (status, _, _) =
        call_in(&app, None, None, Method::DELETE, &format!("{WORKSPACES}/team-r?mode=CASCADE"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    other.sync_workspaces().await.unwrap();
    assert_eq!(other.workspace_names(), ["default"]);
    assert_eq!(search(other_router).await, StatusCode::NOT_FOUND);
    other.shut_down().await;
}
