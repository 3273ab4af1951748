//! What authentication and authorisation cost per request, in process: the same application
//! (every middleware, SQLite store) with authentication off (anonymous, a loopback developer
//! server) and on (a service token, and a user's password as the `mlflow` client sends it), the
//! same requests, compared by the process's CPU time per request. Without sockets and a client
//! in the way, differences of a microsecond show (the HTTP benchmark, bench/auth_cost, resolves
//! ±60 µs).
//!
//!     cargo bench -p keelson-server --bench auth_cost [-- ROUNDS REQUESTS_PER_ROUND]
//!
//! Requests: `/api/v1/whoami` (no store: the middleware alone), `experiments/get` without an id
//! (an MLflow route refused by its handler: the middleware and per-resource checks, no store),
//! `runs/get` (a read) and
//! `runs/log-batch` (a write: the audit log records it in every mode, so the difference is
//! authentication, roles, workspaces and per-resource grants).
//! Modes take turns, round by round, so drift hits them alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::Engine;
use keelson_core::auth::Role;
use keelson_server::{Platform, PlatformOptions};
use keelson_store::worker::HandlerRegistry;
use keelson_store::{Store, StoreOptions};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

struct Mode {
    name: &'static str,
    router: Router,
    authorization: Option<String>,
    run_id: String,
    _platform: Arc<Platform>,
    _dir: tempfile::TempDir,
}

/// CPU time of every thread of this process (the runtime's and SQLite's connection threads),
/// in microseconds, from each thread's `schedstat` (nanoseconds on a CPU). Threads that ended
/// between two readings drop out of the second; the benchmark's threads live throughout.
fn process_cpu_micros() -> f64 {
    let mut nanos = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            nanos += text.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    nanos as f64 / 1e3
}

async fn send(mode: &Mode, method: &str, uri: &str, body: Option<&Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(authorization) = &mode.authorization {
        request = request.header("authorization", authorization);
    }
    let body = match body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            Body::from(serde_json::to_vec(value).unwrap())
        }
        None => Body::empty(),
    };
    let response = mode.router.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn mode(name: &'static str) -> Mode {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&format!("sqlite://{}/k.db", dir.path().display()), &StoreOptions::default()).await.unwrap();
    let artifacts = keelson_artifacts::ArtifactStore::local(&dir.path().join("artifacts")).await.unwrap();
    let mut config = keelson_core::config::Config { data_dir: dir.path().display().to_string(), ..Default::default() };
    config.auth.disabled = name == "off";
    config.worker.in_process = false;
    config.monitoring.scheduler_interval_seconds = 0;
    config.secrets.key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let platform = Platform::start(
        PlatformOptions { config, job_handlers: HandlerRegistry::with_builtins(), tokens_file: None },
        store,
        artifacts,
    )
    .await
    .unwrap();
    let identities = platform.identities();
    let authorization = match name {
        "token" => {
            identities.bind_role("default", "bench", Role::Editor, "bench").await.unwrap();
            Some(format!("Bearer {}", identities.mint_token("bench", "bench", None, "bench").await.unwrap().token))
        }
        "password" => {
            let password = "bench-password-for-auth-cost";
            identities.create_user("bench", password, Some(Role::Editor), "bench").await.unwrap();
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("bench:{password}"))))
        }
        _ => None,
    };
    let mut mode =
        Mode { name, router: platform.router(), authorization, run_id: String::new(), _platform: platform, _dir: dir };
    let (status, body) =
        send(&mode, "POST", "/api/2.0/mlflow/experiments/create", Some(&json!({"name": "bench"}))).await;
    assert_eq!(status, StatusCode::OK, "{name}: {body}");
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    let (status, body) =
        send(&mode, "POST", "/api/2.0/mlflow/runs/create", Some(&json!({"experiment_id": experiment_id}))).await;
    assert_eq!(status, StatusCode::OK, "{name}: {body}");
    mode.run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    mode
}

/// CPU microseconds per request of `count` requests of one kind.
async fn burst(mode: &Mode, kind: &str, start: usize, count: usize) -> f64 {
    let get = format!("/api/2.0/mlflow/runs/get?run_id={}", mode.run_id);
    let before = process_cpu_micros();
    for i in start..start + count {
        let (status, _) = if kind == "get" {
            send(mode, "GET", &get, None).await
        } else if kind == "whoami" {
            send(mode, "GET", "/api/v1/whoami", None).await
        } else if kind == "mlflow-400" {
            // An MLflow route refused by its handler before any store access: the whole stack,
            // per-resource checks included, without the database's noise.
            let (status, answer) = send(mode, "GET", "/api/2.0/mlflow/experiments/get", None).await;
            (if status == StatusCode::BAD_REQUEST { StatusCode::OK } else { status }, answer)
        } else {
            let body = json!({"run_id": mode.run_id,
                              "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": i}]});
            send(mode, "POST", "/api/2.0/mlflow/runs/log-batch", Some(&body)).await
        };
        assert_eq!(status, StatusCode::OK, "{} {kind}", mode.name);
    }
    (process_cpu_micros() - before) / count as f64
}

/// `whoami` touches no store: the whole middleware stack and the handler, nothing else, so it
/// shows what authentication costs with the least noise around it.
/// `mlflow-400` is an MLflow route answered before the store (per-resource checks included).
const KINDS: [&str; 4] = ["whoami", "mlflow-400", "get", "log-batch"];

fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    // The standard error of the mean: the figure's own uncertainty.
    (mean, (variance / n).sqrt())
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = args.first().copied().unwrap_or(12);
    let per_round = args.get(1).copied().unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let modes = [mode("off").await, mode("token").await, mode("password").await];
        for mode in &modes {
            for kind in KINDS {
                burst(mode, kind, 0, per_round).await;
            }
        }
        println!("auth_cost: {rounds} rounds x {per_round} requests per kind and mode, process CPU per request");
        println!("{:<10} {:>8} {:>12} {:>22}", "request", "mode", "µs/request", "vs off (± std. error)");
        for kind in KINDS {
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
            for round in 0..rounds {
                for (i, mode) in modes.iter().enumerate() {
                    samples[i].push(burst(mode, kind, (round + 1) * per_round, per_round).await);
                }
            }
            for (i, mode) in modes.iter().enumerate() {
                let (mean, _) = mean_and_spread(&samples[i]);
                let differences: Vec<f64> = samples[i].iter().zip(&samples[0]).map(|(m, off)| m - off).collect();
                let (difference, error) = mean_and_spread(&differences);
                let versus = if i == 0 { "-".to_string() } else { format!("{difference:+.2} ± {error:.2}") };
                println!("{kind:<10} {:>8} {mean:>12.2} {versus:>22}", mode.name);
            }
        }
    });
}
