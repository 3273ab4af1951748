//! Regression tests for the holes of the attack review (security issue), each in the attack's
//! own shape, against the in-process app with the default egress policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use common::{app_with, call, send};
use serde_json::{json, Value};

/// A loopback HTTP server that would hand out a secret to whoever asks: what an internal
/// service or a metadata endpoint looks like to an SSRF.
async fn internal_service() -> std::net::SocketAddr {
    let router = axum::Router::new()
        .route("/catalog.yaml", get(|| async { "models:\n  - id: internal-secret-model\n" }))
        .route("/data.csv", get(|| async { "secret\nINTERNAL-ONLY-VALUE\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

fn message(body: &Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn catalog_sync_reads_no_server_file_and_no_internal_url() {
    let app = app_with(true, 1 << 20).await;
    for location in ["/etc/passwd", "file:///etc/passwd", "../../etc/passwd", "/proc/self/environ"] {
        let (status, body, _) =
            call(&app, Method::POST, "/api/v1/catalog/sync", Some(json!({"source": "attack", "location": location})))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{location}: {body}");
        let text = message(&body);
        assert!(text.contains("must be an http(s) URL"), "{location}: {text}");
        assert!(!text.contains("root:"), "the file must not be echoed: {text}");
    }
    let internal = internal_service().await;
    for location in [
        format!("http://{internal}/catalog.yaml"),
        format!("http://localhost:{}/catalog.yaml", internal.port()),
        format!("http://[::ffff:127.0.0.1]:{}/catalog.yaml", internal.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let (status, body, _) =
            call(&app, Method::POST, "/api/v1/catalog/sync", Some(json!({"source": "attack", "location": location})))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{location}: {body}");
        let text = message(&body);
        assert!(text.contains("egress.allow_cidrs"), "{location}: {text}");
        assert!(!text.contains("internal-secret-model"), "{text}");
    }
    let (_, models, _) = call(&app, Method::GET, "/api/v1/catalog/models", None).await;
    assert!(!models.to_string().contains("internal-secret-model"), "{models}");
}

#[tokio::test]
async fn dataset_sources_reach_no_internal_address() {
    let app = app_with(true, 1 << 20).await;
    let internal = internal_service().await;
    let sources = [
        json!({"kind": "http", "url": format!("http://{internal}/data.csv"), "format": "csv"}),
        json!({"kind": "http", "url": format!("http://localhost:{}/data.csv", internal.port()), "format": "csv"}),
        json!({"kind": "http", "url": format!("http://2130706433:{}/data.csv", internal.port()), "format": "csv"}),
        json!({"kind": "http", "url": "http://[::1]/data.csv", "format": "csv"}),
        json!({"kind": "postgres", "url": "postgres://u:p@127.0.0.1:5432/db", "query": "SELECT 1"}),
        json!({"kind": "postgres", "url": "postgres://u:p@localhost/db", "query": "SELECT 1"}),
        json!({"kind": "postgres", "url": "postgres://u:p@[::ffff:10.0.0.1]/db", "query": "SELECT 1"}),
        json!({"kind": "postgres", "url": "postgres:///db?host=/var/run/postgresql", "query": "SELECT 1"}),
    ];
    for source in sources {
        let (status, body, _) =
            call(&app, Method::POST, "/api/v1/datasets/ssrf/ingest", Some(json!({"source": source}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{source}: {body}");
        let text = message(&body);
        assert!(text.contains("egress") || text.contains("unix socket"), "{source}: {text}");
        assert!(!text.contains("INTERNAL-ONLY-VALUE"), "{text}");
    }
    let (status, _, _) = call(&app, Method::GET, "/api/v1/datasets/ssrf", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a refused ingest registers nothing");
}

#[tokio::test]
async fn recipe_sql_cannot_read_files_or_urls() {
    let app = app_with(true, 1 << 20).await;
    let recipe = json!({
        "version": 1,
        "name": "steal",
        "inputs": {"any": {"dataset": "missing-is-fine", "version": 1}},
        "input": "any",
        "output": {"dataset": "stolen"},
        "steps": [{"sql": "SELECT * FROM read_csv('/etc/passwd')"}],
    });
    let (status, body, _) = call(&app, Method::POST, "/api/v1/recipes/run", Some(json!({"recipe": recipe}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("may not call table function `read_csv`"), "{body}");
    assert!(!body.to_string().contains("root:"), "{body}");
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn dns_rebinding_and_cross_site_writes_are_refused() {
    let app = app_with(true, 1 << 20).await;
    // A page on attacker.example whose name now resolves to 127.0.0.1.
    let (status, body, _) = send(
        &app,
        request(
            Method::GET,
            "/api/2.0/mlflow/experiments/search?max_results=1",
            &[("host", "attacker.example:8080")],
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("PERMISSION_DENIED") && body.contains("server.allowed_hosts"), "{body}");

    let create = "/api/2.0/mlflow/experiments/create";
    let payload = r#"{"name": "csrf"}"#;
    let forged: [&[(&str, &str)]; 4] = [
        // A form post or fetch(…, {mode: 'no-cors'}) with a text/plain body from another site.
        &[("host", "127.0.0.1:8080"), ("origin", "https://attacker.example"), ("content-type", "text/plain")],
        &[("host", "127.0.0.1:8080"), ("origin", "https://attacker.example"), ("content-type", "application/json")],
        &[("host", "127.0.0.1:8080"), ("origin", "null"), ("content-type", "application/json")],
        &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site"), ("content-type", "application/json")],
    ];
    for headers in forged {
        let (status, body, _) = send(&app, request(Method::POST, create, headers, payload)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {body}");
    }
    // A body-less POST from another origin (rolls back, approves, deletes in other routes).
    let (status, _, _) = send(
        &app,
        request(
            Method::POST,
            "/api/v1/endpoints/x/rollback",
            &[("host", "localhost:8080"), ("origin", "http://evil.example")],
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) =
        send(&app, request(Method::GET, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=csrf", &[], "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created: {body}");

    // The same request from the server's own origin, and from a client that sends no Origin.
    let own = [("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080"), ("content-type", "application/json")];
    let (status, body, _) = send(&app, request(Method::POST, create, &own, payload)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cli = [("content-type", "application/json")];
    let (status, body, _) = send(&app, request(Method::POST, create, &cli, r#"{"name": "cli"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn every_answer_carries_the_browser_safety_headers() {
    let app = app_with(true, 1 << 20).await;
    for uri in ["/health/live", "/no/such/route", "/api/2.0/mlflow/experiments/search?max_results=1"] {
        let (_, _, headers) = send(&app, request(Method::GET, uri, &[], "")).await;
        assert_eq!(headers["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(headers["x-frame-options"], "DENY", "{uri}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
        assert!(!headers.contains_key("access-control-allow-origin"), "CORS is off: {uri}");
    }
}

#[tokio::test]
async fn stored_html_and_svg_artifacts_are_downloads_not_pages() {
    let app = app_with(true, 1 << 20).await;
    let base = "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts";
    let cases = [
        ("page.html", "<script>fetch('/api/2.0/mlflow/experiments/search')</script>", true),
        ("image.svg", "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", true),
        ("notes.txt", "plain words", false),
        ("metrics.json", "{\"a\": 1}", false),
    ];
    for (name, content, attachment) in cases {
        let uri = format!("{base}/{name}");
        let (status, body, _) = send(&app, request(Method::PUT, &uri, &[], content)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body, headers) = send(&app, request(Method::GET, &uri, &[], "")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, content);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("sandbox"), "{name}");
        let disposition = headers.get("content-disposition").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            disposition.as_ref().is_some_and(|d| d.starts_with("attachment")),
            attachment,
            "{name}: {disposition:?}"
        );
    }
}

#[tokio::test]
async fn secrets_are_stored_by_name_and_never_answered() {
    let app = app_with(true, 1 << 20).await;
    let value = "sk-live-KEELSON-CANARY-7f3a9c";
    let mut answers = Vec::new();
    let (status, body, _) = call(&app, Method::PUT, "/api/v1/secrets/openai-key", Some(json!({"value": value}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["secret"]["name"], "openai-key");
    answers.push(body);
    let (status, body, _) =
        call(&app, Method::PUT, "/api/v1/secrets/openai-key", Some(json!({"value": "rotated-value-2"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["secret"]["updated"].as_i64() >= body["secret"]["created"].as_i64());
    answers.push(body);
    let (_, body, _) = call(&app, Method::PUT, "/api/v1/secrets/smtp", Some(json!({"value": value}))).await;
    answers.push(body);
    let (status, body, _) = call(&app, Method::GET, "/api/v1/secrets", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["secrets"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["openai-key", "smtp"]);
    answers.push(body);
    for (method, uri, request) in [
        (Method::PUT, "/api/v1/secrets/..%2Fx", Some(json!({"value": value}))),
        (Method::PUT, "/api/v1/secrets/bad%20name", Some(json!({"value": value}))),
        (Method::PUT, "/api/v1/secrets/empty", Some(json!({"value": ""}))),
        (Method::PUT, "/api/v1/secrets/extra", Some(json!({"value": value, "echo": value}))),
        (Method::GET, "/api/v1/secrets/smtp", None),
        (Method::DELETE, "/api/v1/secrets/none-such", None),
    ] {
        let (status, body, _) = call(&app, method.clone(), uri, request).await;
        assert!(status.is_client_error(), "{method} {uri}: {status} {body}");
        answers.push(body);
    }
    let (status, body, _) = call(&app, Method::POST, "/api/v1/secrets/rotate", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rotation"]["current"], 2);
    answers.push(body);
    for answer in &answers {
        let text = answer.to_string();
        assert!(!text.contains("KEELSON-CANARY") && !text.contains("rotated-value-2"), "a value leaked: {text}");
    }
    let (status, _, _) = call(&app, Method::DELETE, "/api/v1/secrets/smtp", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body, _) = call(&app, Method::GET, "/api/v1/secrets", None).await;
    assert_eq!(body["secrets"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_mutating_call_writes_one_chained_audit_record_and_tampering_is_found() {
    let app = app_with(true, 1 << 20).await;
    let calls = [
        (Method::POST, "/api/2.0/mlflow/experiments/create", Some(json!({"name": "audited"}))),
        (Method::PUT, "/api/v1/secrets/hook-key", Some(json!({"value": "v-AUDIT-CANARY"}))),
        (Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop", "payload": {}}))),
        (Method::DELETE, "/api/v1/secrets/none-such", None),
        (Method::POST, "/api/v1/endpoints/missing/rollback", Some(json!({}))),
    ];
    let mut statuses = Vec::new();
    for (method, uri, body) in calls.clone() {
        let (status, _, _) = call(&app, method, uri, body).await;
        statuses.push(i64::from(status.as_u16()));
    }
    // Reads write nothing.
    call(&app, Method::GET, "/api/v1/secrets", None).await;
    call(&app, Method::GET, "/api/2.0/mlflow/experiments/search?max_results=5", None).await;

    let (status, body, _) = call(&app, Method::GET, "/api/v1/audit?limit=100", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), calls.len(), "one record per mutating call: {body}");
    for (record, ((method, uri, _), status)) in records.iter().zip(calls.iter().zip(&statuses)) {
        assert_eq!(record["resource"], *uri);
        assert!(record["action"].as_str().unwrap().starts_with(method.as_str()), "{record}");
        assert_eq!(record["status"], *status);
        assert_eq!(record["principal"], "anonymous");
        assert_eq!(record["workspace"], "default");
        assert_eq!(record["request_digest"].as_str().unwrap().len(), 64);
    }
    assert_eq!(records[1]["action"], "PUT /api/v1/secrets/{name}");
    assert!(!body.to_string().contains("AUDIT-CANARY"), "the log holds digests, not values");

    let (_, body, _) = call(&app, Method::GET, "/api/v1/audit/verify", None).await;
    assert_eq!(body["valid"], true, "{body}");
    assert_eq!(body["check"]["records"], calls.len());
    let (_, export, headers) = call(&app, Method::GET, "/api/v1/audit/export", None).await;
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert_eq!(export.as_str().unwrap().lines().count(), calls.len());

    // An edited row breaks its own hash; a deleted row leaves a gap.
    app.store.execute_for_tests("UPDATE audit_log SET principal = 'someone-else' WHERE seq = 2").await.unwrap();
    let (_, body, _) = call(&app, Method::GET, "/api/v1/audit/verify", None).await;
    assert_eq!(body["valid"], false, "{body}");
    assert_eq!(body["check"]["broken_at"], 2);
    app.store.execute_for_tests("UPDATE audit_log SET principal = 'anonymous' WHERE seq = 2").await.unwrap();
    app.store.execute_for_tests("DELETE FROM audit_log WHERE seq = 3").await.unwrap();
    let (_, body, _) = call(&app, Method::GET, "/api/v1/audit/verify", None).await;
    assert_eq!(body["check"]["broken_at"], 3, "{body}");
    assert!(body["check"]["reason"].as_str().unwrap().contains("missing"), "{body}");
}

#[tokio::test]
async fn concurrent_writes_keep_one_unbroken_chain() {
    let app = std::sync::Arc::new(app_with(true, 1 << 20).await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            call(&app, Method::POST, "/api/v1/jobs", Some(json!({"kind": "system.noop", "payload": {"i": i}}))).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().0.is_success());
    }
    let check = app.store.verify_audit_chain().await.unwrap();
    assert_eq!((check.records, check.broken_at), (40, None));
}
