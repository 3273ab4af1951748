//! Per-resource permissions (MLflow's READ / USE / EDIT / MANAGE / NO_PERMISSIONS): creators
//! manage what they make, grants raise or lower a role's level on one resource or on all of a
//! type, lists leave out what cannot be read, and grants follow a renamed model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app_with, call_as, TestApp};
use keelson_core::auth::Role;
use serde_json::{json, Value};

async fn token(app: &TestApp, principal: &str, role: Role) -> String {
    app.identities.bind_role("default", principal, role, "test").await.unwrap();
    format!("Bearer {}", app.identities.mint_token(principal, "test", None, "test").await.unwrap().token)
}

async fn post(app: &TestApp, auth: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let (status, body, _) = call_as(app, auth, Method::POST, &format!("/api/2.0/mlflow{path}"), Some(body)).await;
    (status, body)
}

async fn get(app: &TestApp, auth: &str, path: &str) -> (StatusCode, Value) {
    let (status, body, _) = call_as(app, auth, Method::GET, path, None).await;
    (status, body)
}

async fn grant(app: &TestApp, auth: &str, who: &str, kind: &str, id: &str, permission: &str) -> (StatusCode, Value) {
    let body = json!({"username": who, "resource_type": kind, "resource_id": id, "permission": permission});
    let (status, body, _) =
        call_as(app, auth, Method::POST, "/api/3.0/mlflow/users/permissions/grant", Some(body)).await;
    (status, body)
}

async fn experiment(app: &TestApp, auth: &str, name: &str) -> String {
    let (status, body) = post(app, auth, "/experiments/create", json!({"name": name})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["experiment_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn creators_manage_what_they_make_and_grants_raise_or_lower_a_role() {
    let app = app_with(false, 1 << 20).await;
    let ada = token(&app, "ada", Role::Admin).await;
    let eddie = token(&app, "eddie", Role::Editor).await;
    let vera = token(&app, "vera", Role::Viewer).await;
    let mine = experiment(&app, &eddie, "eddies").await;
    let theirs = experiment(&app, &ada, "adas").await;

    // EDIT does not delete: eddie deletes what he made and not what ada made.
    let (status, body) = post(&app, &eddie, "/experiments/delete", json!({"experiment_id": theirs})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("needs MANAGE"), "{body}");
    let (status, _) = post(&app, &eddie, "/experiments/delete", json!({"experiment_id": mine})).await;
    assert_eq!(status, StatusCode::OK);
    post(&app, &eddie, "/experiments/restore", json!({"experiment_id": mine})).await;

    // A viewer with EDIT on one experiment logs runs there, and only there.
    let (status, body) = grant(&app, &ada, "vera", "experiment", &theirs, "EDIT").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, run) = post(&app, &vera, "/runs/create", json!({"experiment_id": theirs})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (status, body) =
        post(&app, &vera, "/runs/log-metric", json!({"run_id": run_id, "key": "auc", "value": 0.9, "timestamp": 1}))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = post(&app, &vera, "/runs/create", json!({"experiment_id": mine})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&app, &vera, "/runs/delete", json!({"run_id": run_id})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "EDIT does not delete");

    // NO_PERMISSIONS hides one experiment from an editor: reads, writes, runs, artifacts, lists.
    let (status, _) = grant(&app, &ada, "eddie", "experiment", &theirs, "NO_PERMISSIONS").await;
    assert_eq!(status, StatusCode::OK);
    let hidden_reads = [
        format!("/api/2.0/mlflow/experiments/get?experiment_id={theirs}"),
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=adas".to_string(),
        format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
        format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=auc"),
        format!("/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key=auc"),
        format!("/api/2.0/mlflow-artifacts/artifacts/{theirs}/{run_id}/artifacts/model.pkl"),
        format!("/api/2.0/mlflow-artifacts/artifacts?path={theirs}/{run_id}/artifacts"),
    ];
    for uri in &hidden_reads {
        let (status, body) = get(&app, &eddie, uri).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
    }
    let (status, _) = post(&app, &eddie, "/runs/set-tag", json!({"run_id": run_id, "key": "k", "value": "v"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // However the id is spelt: the store reads `07` and ` 7` as experiment 7.
    for spelling in [theirs.clone(), format!("0{theirs}"), format!(" {theirs}")] {
        let (status, body) = post(&app, &eddie, "/runs/search", json!({"experiment_ids": [spelling]})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{spelling:?}: {body}");
    }
    let (status, _) = get(&app, &eddie, &format!("/api/2.0/mlflow/experiments/get?experiment_id=0{theirs}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = post(&app, &eddie, "/experiments/search", json!({"max_results": 100})).await;
    let names: Vec<&str> =
        listed["experiments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"adas"), "{names:?}");
    assert!(names.contains(&"eddies"), "{names:?}");
    // The admin is not restricted by grants, and still sees it.
    let (_, listed) = post(&app, &ada, "/experiments/search", json!({"max_results": 100})).await;
    assert!(listed["experiments"].as_array().unwrap().iter().any(|e| e["name"] == "adas"));

    // A wildcard raises a viewer on every experiment.
    grant(&app, &ada, "vera", "experiment", "*", "EDIT").await;
    let (status, _) = post(&app, &vera, "/runs/create", json!({"experiment_id": mine})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn registered_models_follow_their_grants_through_renames() {
    let app = app_with(false, 1 << 20).await;
    let ada = token(&app, "ada", Role::Admin).await;
    let eddie = token(&app, "eddie", Role::Editor).await;
    for (who, name) in [(&eddie, "eddies-model"), (&ada, "fraud")] {
        let (status, body) = post(&app, who, "/registered-models/create", json!({"name": name})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let delete = |name: &str| {
        let app = &app;
        let name = name.to_string();
        let auth = eddie.clone();
        async move {
            call_as(app, &auth, Method::DELETE, "/api/2.0/mlflow/registered-models/delete", Some(json!({"name": name})))
                .await
                .0
        }
    };
    assert_eq!(delete("fraud").await, StatusCode::FORBIDDEN);
    grant(&app, &ada, "eddie", "registered_model", "fraud", "NO_PERMISSIONS").await;
    let (status, _) = get(&app, &eddie, "/api/2.0/mlflow/registered-models/get?name=fraud").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = get(&app, &eddie, "/api/2.0/mlflow/registered-models/search?max_results=100").await;
    let names: Vec<&str> =
        listed["registered_models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["eddies-model"]);

    // Renamed, the model keeps its grants; the old name keeps none for a newcomer to inherit.
    let (status, body) =
        post(&app, &ada, "/registered-models/rename", json!({"name": "fraud", "new_name": "fraud-v2"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = get(&app, &eddie, "/api/2.0/mlflow/registered-models/get?name=fraud-v2").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    post(&app, &ada, "/registered-models/create", json!({"name": "fraud"})).await;
    let (status, _) = get(&app, &eddie, "/api/2.0/mlflow/registered-models/get?name=fraud").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(delete("eddies-model").await, StatusCode::OK);
}

#[tokio::test]
async fn who_may_grant_and_what_a_grant_check_answers() {
    let app = app_with(false, 1 << 20).await;
    let ada = token(&app, "ada", Role::Admin).await;
    let eddie = token(&app, "eddie", Role::Editor).await;
    let vera = token(&app, "vera", Role::Viewer).await;
    let mine = experiment(&app, &eddie, "eddies").await;
    let theirs = experiment(&app, &ada, "adas").await;

    // The creator manages grants on what he made, nothing else, and no wildcards.
    assert_eq!(grant(&app, &eddie, "vera", "experiment", &mine, "READ").await.0, StatusCode::OK);
    assert_eq!(grant(&app, &eddie, "vera", "experiment", &theirs, "EDIT").await.0, StatusCode::FORBIDDEN);
    assert_eq!(grant(&app, &eddie, "vera", "experiment", "*", "EDIT").await.0, StatusCode::FORBIDDEN);
    assert_eq!(grant(&app, &vera, "vera", "experiment", &mine, "MANAGE").await.0, StatusCode::FORBIDDEN);
    let (status, body) = grant(&app, &eddie, "vera", "experiment", &mine, "EDIT").await;
    assert_eq!((status, body["error_code"].as_str()), (StatusCode::BAD_REQUEST, Some("RESOURCE_ALREADY_EXISTS")));
    for (kind, permission, expected) in [
        ("dataset", "READ", "Invalid resource type"),
        ("workspace", "USE", "roles"),
        ("experiment", "OWNER", "Invalid permission"),
    ] {
        let (status, body) = grant(&app, &ada, "vera", kind, &mine, permission).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(expected), "{body}");
    }

    let check = |who: &'static str, id: String, auth: String| {
        let app = &app;
        async move {
            get(
                app,
                &auth,
                &format!(
                    "/api/3.0/mlflow/users/permissions/get?username={who}&resource_type=experiment&resource_id={id}"
                ),
            )
            .await
        }
    };
    assert_eq!(check("vera", mine.clone(), vera.clone()).await.1, json!({"allowed": false, "permission": "READ"}));
    assert_eq!(check("eddie", mine.clone(), eddie.clone()).await.1, json!({"allowed": true, "permission": "MANAGE"}));
    assert_eq!(check("eddie", theirs.clone(), eddie.clone()).await.1, json!({"allowed": true, "permission": "EDIT"}));
    assert_eq!(check("ada", mine.clone(), ada.clone()).await.1, json!({"allowed": true, "permission": "MANAGE"}));
    assert_eq!(
        check("eddie", theirs.clone(), vera.clone()).await.0,
        StatusCode::FORBIDDEN,
        "others' grants are private"
    );

    let revoke = json!({"username": "vera", "resource_type": "experiment", "resource_id": mine});
    let (status, _, _) =
        call_as(&app, &eddie, Method::POST, "/api/3.0/mlflow/users/permissions/revoke", Some(revoke.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) =
        call_as(&app, &eddie, Method::POST, "/api/3.0/mlflow/users/permissions/revoke", Some(revoke)).await;
    assert_eq!((status, body["error_code"].as_str()), (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST")));
}

#[tokio::test]
async fn traces_are_held_to_the_experiment_they_name_however_it_is_named() {
    let app = app_with(false, 1 << 20).await;
    let ada = token(&app, "ada", Role::Admin).await;
    let eddie = token(&app, "eddie", Role::Editor).await;
    let vera = token(&app, "vera", Role::Viewer).await;
    let open = experiment(&app, &ada, "open").await;
    let closed = experiment(&app, &ada, "closed").await;
    grant(&app, &ada, "vera", "experiment", &open, "EDIT").await;
    grant(&app, &ada, "eddie", "experiment", &closed, "NO_PERMISSIONS").await;
    let start = |experiment_id: &str, trace_id: &str| {
        json!({"trace": {"trace_info": {
            "trace_id": trace_id,
            "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
            "request_time": "2026-12-08T00:00:00Z", "state": "OK"}}})
    };
    let traces = "/api/3.0/mlflow/traces";
    // Vera's grant raises her on `open` only: the experiment inside the trace decides.
    let (status, body, _) = call_as(&app, &vera, Method::POST, traces, Some(start(&open, "tr-1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = call_as(&app, &vera, Method::POST, traces, Some(start(&closed, "tr-2"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A request whose experiment cannot be found is held to her role.
    let (status, _, _) = call_as(&app, &vera, Method::POST, traces, Some(json!({"trace": {}}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Eddie cannot write to or search `closed`, by id or by location.
    let (status, _, _) = call_as(&app, &eddie, Method::POST, traces, Some(start(&closed, "tr-3"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for search in [
        json!({"experiment_ids": [closed]}),
        json!({"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": closed}}]}),
    ] {
        let (status, body, _) =
            call_as(&app, &eddie, Method::POST, &format!("{traces}/search"), Some(search.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{search}: {body}");
    }
    let (status, _, _) = call_as(&app, &eddie, Method::GET, &format!("{traces}/tr-1"), None).await;
    assert_eq!(status, StatusCode::OK, "`open` is readable to him");
}

/// Every route of MLflow's tracking and registry surfaces names the resource it acts on, so a
/// route added later cannot skip per-resource permissions by being forgotten.
#[tokio::test]
async fn every_mlflow_resource_route_has_a_resource_rule() {
    let app = app_with(true, 1 << 20).await;
    // Routes that act on no experiment or model: capabilities, workspaces, grants themselves.
    let exempt = ["/server-info", "/workspaces", "/users/permissions"];
    let mut missing = Vec::new();
    let mut checked = 0;
    for route in &app.routes {
        let mlflow = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/3.0/mlflow"]
            .iter()
            .any(|prefix| route.path.starts_with(prefix));
        if !mlflow || exempt.iter().any(|e| route.path.contains(e)) {
            continue;
        }
        let has_rule = keelson_server::access::route_need(&route.method, &route.path).is_some()
            || keelson_server::access::route_filters_or_creates(&route.method, &route.path);
        if !has_rule {
            missing.push(format!("{} {}", route.method, route.path));
        }
        checked += 1;
    }
    assert!(missing.is_empty(), "routes without a per-resource rule: {missing:#?}");
    assert!(checked >= 100, "only {checked} MLflow routes were checked");
}
