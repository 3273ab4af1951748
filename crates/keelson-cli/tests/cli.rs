//! The command line: configuration layering and errors, migrations, and `keelson worker`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{keelson, ServerProcess};
use serde_json::{json, Value};
use std::time::Duration;

fn output(command: &mut std::process::Command) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = output(keelson().current_dir(dir.path()).args(["server", "--port", "99999"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`server.port`") && err.contains("--port"), "{err}");

    let (code, _, err) =
        output(keelson().current_dir(dir.path()).env("KEELSON_WORKER__CONCURRENCY", "0").args(["config", "show"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`worker.concurrency`") && err.contains("KEELSON_WORKER__CONCURRENCY"), "{err}");

    std::fs::write(dir.path().join("keelson.toml"), "[server]\nhots = \"0.0.0.0\"\n").unwrap();
    let (code, _, err) = output(keelson().current_dir(dir.path()).args(["config", "show"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hots"), "{err}");

    let (code, _, err) = output(keelson().current_dir(dir.path()).args(["--config", "missing.toml", "config", "show"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn config_show_layers_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keelson.toml"),
        "[server]\nport = 7001\n[database]\nurl = \"postgres://keelson:hunter2@db.internal/k\"\n\
         [artifacts]\nurl = \"s3://bucket/prefix\"\n[artifacts.options]\naws_secret_access_key = \"AKIASECRET\"\naws_region = \"eu-west-1\"\n",
    )
    .unwrap();
    let (code, out, err) = output(
        keelson()
            .current_dir(dir.path())
            .env("KEELSON_SERVER__PORT", "7002")
            .env("KEELSON_WORKER__CONCURRENCY", "7")
            .args(["config", "show"]),
    );
    assert_eq!(code, 0, "{err}");
    let shown: toml::Table = out.parse().unwrap();
    assert_eq!(shown["server"]["port"].as_integer(), Some(7002), "env beats file");
    assert_eq!(shown["worker"]["concurrency"].as_integer(), Some(7));
    assert_eq!(shown["database"]["url"].as_str(), Some("postgres://keelson:***@db.internal/k"));
    assert_eq!(shown["artifacts"]["options"]["aws_secret_access_key"].as_str(), Some("***"));
    assert_eq!(shown["artifacts"]["options"]["aws_region"].as_str(), Some("eu-west-1"));
    assert!(!out.contains("hunter2") && !out.contains("AKIASECRET"), "{out}");

    let (_, out, _) = output(keelson().current_dir(dir.path()).env("KEELSON_SERVER__PORT", "7002").args([
        "config",
        "show",
        "--data-dir",
        "/srv/data",
    ]));
    let shown: toml::Table = out.parse().unwrap();
    assert_eq!(shown["data_dir"].as_str(), Some("/srv/data"));
}

#[tokio::test]
async fn db_migrate_is_idempotent_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/k.db", dir.path().display());
    let (code, out, err) = output(keelson().args(["db", "migrate", "--database-url", &url]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("migrated from schema version 0"), "{out}");
    let (code, out, _) = output(keelson().args(["db", "migrate", "--database-url", &url]));
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");

    let store = keelson_store::Store::connect(&url, &keelson_store::StoreOptions::default()).await.unwrap();
    store
        .execute_for_tests(
            "INSERT INTO keelson_schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        )
        .await
        .unwrap();
    store.close().await;
    let (code, _, err) = output(keelson().args(["db", "migrate", "--database-url", &url]));
    assert_eq!(code, 1);
    assert!(err.contains("newer than this keelson supports"), "{err}");
    let (code, _, err) =
        output(keelson().args(["server", "--port", "0", "--database-url", &url, "--data-dir"]).arg(dir.path()));
    assert_eq!(code, 1, "the server must refuse a newer schema too");
    assert!(err.contains("newer than this keelson supports"), "{err}");
}

/// The scale-out shape: an API replica without a worker, and two `keelson worker` processes on
/// other "machines" sharing one PostgreSQL. Every job runs exactly once.
#[tokio::test]
#[ignore = "needs KEELSON_TEST_DATABASE_URL; scripts/test runs it"]
async fn worker_processes_share_a_postgres_queue() {
    let base = std::env::var("KEELSON_TEST_DATABASE_URL").expect("KEELSON_TEST_DATABASE_URL must be set");
    let schema = format!("cli_{}", std::process::id());
    let admin = keelson_store::Store::connect(&base, &keelson_store::StoreOptions::default()).await.unwrap();
    admin.execute_for_tests(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");

    let dir = tempfile::tempdir().unwrap();
    let artifacts = format!("file://{}/shared-artifacts", dir.path().display());
    let server = ServerProcess::start(dir.path(), &["--database-url", &url, "--artifacts", &artifacts, "--no-worker"]);
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..30 {
        let job: Value = http
            .post(format!("{}/api/v1/jobs", server.url))
            .json(&json!({"kind": "system.sleep", "payload": {"ms": 20, "i": i}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let mut workers: Vec<_> = (0..2)
        .map(|i| {
            keelson()
                .args([
                    "worker",
                    "--database-url",
                    &url,
                    "--artifacts",
                    &artifacts,
                    "--worker-id",
                    &format!("remote-{i}"),
                ])
                .env("KEELSON_WORKER__POLL_INTERVAL_MS", "50")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut done = false;
    for _ in 0..200 {
        let page: Value = http
            .get(format!("{}/api/v1/jobs?status=succeeded&limit=100", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["jobs"].as_array().unwrap().len() == ids.len() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for worker in &workers {
        std::process::Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().unwrap();
    }
    for worker in &mut workers {
        assert!(worker.wait().unwrap().success(), "worker exits cleanly on SIGTERM");
    }
    assert!(done, "workers did not finish the queue; server log:\n{}", server.log());
    let mut ran_on = std::collections::BTreeSet::new();
    for id in &ids {
        let attempts: Value =
            http.get(format!("{}/api/v1/jobs/{id}/attempts", server.url)).send().await.unwrap().json().await.unwrap();
        let attempts = attempts["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "job {id} ran more than once: {attempts:?}");
        ran_on.insert(attempts[0]["worker"].as_str().unwrap().to_string());
    }
    assert!(ran_on.iter().all(|w| w.starts_with("remote-")), "{ran_on:?}");
    admin.execute_for_tests(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}

/// A standalone worker runs the jobs of every workspace, each in its own database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_worker_runs_every_workspaces_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &["--no-worker"]);
    let http = reqwest::Client::new();
    let enqueue = |workspace: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/jobs", server.url);
        async move {
            let job: Value = http
                .post(url)
                .header("x-keelson-workspace", workspace)
                .json(&json!({"kind": "system.noop"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            job["id"].as_str().unwrap_or_else(|| panic!("{job}")).to_string()
        }
    };
    let made = http
        .post(format!("{}/api/3.0/mlflow/workspaces", server.url))
        .json(&json!({"name": "team-a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::CREATED);
    let jobs = [("default", enqueue("default").await), ("team-a", enqueue("team-a").await)];
    let mut worker = keelson()
        .args(["worker", "--worker-id", "standalone"])
        .env("KEELSON_DATA_DIR", &data)
        .env("KEELSON_WORKER__POLL_INTERVAL_MS", "50")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut finished = Vec::new();
    for _ in 0..200 {
        finished.clear();
        for (workspace, id) in &jobs {
            let job: Value = http
                .get(format!("{}/api/v1/jobs/{id}", server.url))
                .header("x-keelson-workspace", *workspace)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if job["status"] == "succeeded" {
                finished.push(*workspace);
            }
        }
        if finished.len() == jobs.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::process::Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().unwrap();
    assert!(worker.wait().unwrap().success(), "worker exits cleanly on SIGTERM");
    assert_eq!(finished, ["default", "team-a"], "server log:\n{}", server.log());
}

/// The README's first command: the embedded default starts, prints its URL and runs a job.
#[test]
fn quickstart_serves_the_embedded_default() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = keelson()
        .current_dir(dir.path())
        .args(["quickstart", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let finished = line.contains("worker:");
        lines.push(line);
        if finished {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("URL:       http://127.0.0.1:"), "{text}");
    assert!(text.contains("a system.noop job succeeded"), "{text}");
    // Authentication is on; the first start prints an admin token, once.
    let token = lines.iter().map(|line| line.trim()).find(|line| line.starts_with("kst_"));
    assert!(token.is_some_and(|token| token.len() > 40), "{text}");
    assert!(dir.path().join("keelson-data/keelson.db").is_file());
    assert!(dir.path().join("keelson-data/artifacts").is_dir());
}

#[tokio::test]
async fn audit_verify_and_export_read_the_database_and_catch_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    for i in 0..3 {
        let answer = http
            .post(format!("{}/api/v1/jobs", server.url))
            .json(&json!({"kind": "system.noop", "payload": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }
    drop(server);
    let database = format!("sqlite://{}/keelson.db", dir.path().display());
    let (code, out, err) =
        output(keelson().current_dir(dir.path()).args(["audit", "verify", "--database-url", &database]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 records, chain intact"), "{out}");
    let (code, out, err) =
        output(keelson().current_dir(dir.path()).args(["audit", "export", "--database-url", &database]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["action"], "POST /api/v1/jobs");
    assert_eq!(lines[2]["prev_hash"], lines[1]["hash"]);

    let store = keelson_store::Store::connect(&database, &keelson_store::StoreOptions::default()).await.unwrap();
    store.execute_for_tests("UPDATE audit_log SET resource = '/elsewhere' WHERE seq = 2").await.unwrap();
    store.close().await;
    let (code, _, err) =
        output(keelson().current_dir(dir.path()).args(["audit", "verify", "--database-url", &database]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("broken at record 2"), "{err}");
}

#[tokio::test]
async fn the_first_admin_and_tokens_can_be_made_without_a_server() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = format!("sqlite://{}/keelson.db", data.display());
    let mut add = keelson()
        .current_dir(dir.path())
        .args(["user", "add", "root", "--role", "admin", "--database-url", &database])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"a long admin password\n").unwrap();
    let added = add.wait_with_output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let (code, token, err) = output(keelson().current_dir(dir.path()).args([
        "token",
        "create",
        "ci-bot",
        "--role",
        "editor",
        "--expires-in-days",
        "7",
        "--database-url",
        &database,
    ]));
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("kst_"), "{token}");
    assert!(!err.contains(&token), "the token goes to stdout only");

    // A server on that database with authentication on: identities exist, so no bootstrap token.
    let server = ServerProcess::start_secured(&data, &[]);
    assert!(!server.log().contains("kst_"), "no token is printed or logged once identities exist");
    let http = reqwest::Client::new();
    let whoami = http.get(format!("{}/api/v1/whoami", server.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(whoami.status(), 200);
    let whoami: Value = whoami.json().await.unwrap();
    assert_eq!((whoami["name"].as_str(), whoami["role"].as_str()), (Some("ci-bot"), Some("editor")));
    let root = http
        .get(format!("{}/api/v1/users", server.url))
        .basic_auth("root", Some("a long admin password"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
    let anonymous = http.get(format!("{}/api/v1/jobs", server.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}
