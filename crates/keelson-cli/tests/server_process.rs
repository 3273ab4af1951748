//! `keelson server` as a process: health, metrics, errors, graceful shutdown, crash safety, logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ServerProcess;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

#[tokio::test]
async fn health_metrics_and_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let http = client();
    let live = http.get(format!("{}/health/live", server.url)).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.headers().contains_key("x-request-id"));
    let ready: Value = http.get(format!("{}/health/ready", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({"status": "ok", "checks": {"metadata": "ok", "artifacts": "ok"}}));

    let missing = http.get(format!("{}/nowhere", server.url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
    assert_eq!(body.as_object().unwrap().len(), 2);

    let metrics = http.get(format!("{}/metrics", server.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("keelson_"), "{line}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("bad sample value in {line}"));
    }
    assert!(
        text.contains("keelson_http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("keelson_http_request_duration_seconds_bucket{method=\"GET\",route=\"unmatched\",status=\"404\",le=\"+Inf\"} 1"), "{text}");
}

/// Sends only the headers of a request that claims a body over the limit and reads the answer:
/// the server must refuse on the declared length without waiting for the bytes.
#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let declared = 64 * 1024 * 1024;
    write!(
        stream,
        "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{\"kind\":"
    )
    .unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error_code"], "PAYLOAD_TOO_LARGE");
}

fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    if length.is_some_and(|length| body.len() >= length) {
                        return text;
                    }
                }
            }
            Err(error) => {
                panic!("reading the response failed: {error}; got so far: {}", String::from_utf8_lossy(&buffer))
            }
        }
    }
    String::from_utf8_lossy(&buffer).to_string()
}

/// SIGTERM while a request is half-sent: the server finishes it, answers, then exits cleanly.
#[tokio::test]
async fn sigterm_completes_the_in_flight_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let body = br#"{"kind": "system.noop", "payload": {"in_flight": true}}"#;
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.child.try_wait().unwrap().is_none(), "server exited with a request in flight");
    // New connections are no longer accepted while draining.
    let refused =
        TcpStream::connect_timeout(&server.addr().parse().unwrap(), Duration::from_secs(2)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")?;
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf)?;
            Ok(n)
        });
    assert!(!matches!(refused, Ok(n) if n > 0), "a new request was served during shutdown");
    stream.write_all(&body[10..]).unwrap();
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}\nlog:\n{}", server.log());
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}; log:\n{}", server.log());
    assert!(server.log().contains("keelson server stopped"), "{}", server.log());

    // The acknowledged job is there after a restart.
    let id = serde_json::from_str::<Value>(response.split("\r\n\r\n").nth(1).unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let restarted = ServerProcess::start(dir.path(), &[]);
    let job = client().get(format!("{}/api/v1/jobs/{id}", restarted.url)).send().await.unwrap();
    assert_eq!(job.status(), 200);
}

/// kill -9 right after the last acknowledgement loses nothing that was acknowledged.
#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let http = client();
    let mut ids = Vec::new();
    for i in 0..40 {
        let response = http
            .post(format!("{}/api/v1/jobs", server.url))
            .json(&json!({"kind": "system.sleep", "payload": {"ms": 10, "i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let job: Value = response.json().await.unwrap();
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    server.signal("KILL");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    drop(server);

    let restarted = ServerProcess::start(dir.path(), &[]);
    for id in &ids {
        let response = http.get(format!("{}/api/v1/jobs/{id}", restarted.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "acknowledged job {id} was lost");
    }
    // Jobs that were running when the process died are recovered once their lease expires; the
    // rest run to completion.
    let page: Value =
        http.get(format!("{}/api/v1/jobs?limit=100", restarted.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), ids.len());
}

#[tokio::test]
async fn json_logs_carry_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &["--log-format", "json"]);
    let response =
        client().get(format!("{}/health/live", server.url)).header("x-request-id", "req-test-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-test-42");
    let mut found = false;
    for _ in 0..50 {
        let log = server.log();
        let lines: Vec<Value> =
            log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
        assert!(!lines.is_empty());
        found = lines.iter().any(|l| l["span"]["request_id"] == "req-test-42" && l["status"] == 200);
        if found {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(found, "no JSON log line with the request id:\n{}", server.log());
}

/// PEM text of DER bytes.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[tokio::test]
async fn https_serves_with_the_configured_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keelson-monitor/testdata/smtp-tls");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, pem("CERTIFICATE", &std::fs::read(testdata.join("localhost.der")).unwrap())).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", &std::fs::read(testdata.join("localhost.key.der")).unwrap())).unwrap();
    let config = dir.path().join("keelson.toml");
    std::fs::write(
        &config,
        format!("[server]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n", cert.display(), key.display()),
    )
    .unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let address = server.addr();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(std::fs::read(testdata.join("ca.der")).unwrap())).unwrap();
    let client =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Plain HTTP on the TLS port gets no answer, and the server keeps serving.
    let mut plain = tokio::net::TcpStream::connect(&address).await.unwrap();
    plain.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), plain.read_to_end(&mut buffer)).await;
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    assert!(connector.connect(name, tcp).await.is_ok(), "still serving after a bad client");
}
