use std::collections::BTreeMap;

use keelson_monitor::notify::{
    send, send_with_secrets, verify_signature, Channel, ChannelKind, DeliveryStatus, NotifyError, WebhookChannel,
};
use serde_json::Value;

use super::notification;
use super::servers::{http_once, LIMIT};

const SECRET: &str = "whsec_test_5f0c";

fn secrets(name: &str) -> Option<String> {
    (name == "KEELSON_TEST_WEBHOOK_SECRET").then(|| SECRET.to_string())
}

fn webhook(url: String, secret_env: Option<&str>) -> Channel {
    Channel::Webhook(WebhookChannel {
        url: format!("{url}/hooks/keelson?token=abc"),
        secret_env: secret_env.map(str::to_string),
        headers: Some(BTreeMap::from([("Authorization".to_string(), "Bearer static-token".to_string())])),
    })
}

#[tokio::test]
async fn signed_webhook_posts_the_notification() {
    let (url, server) = http_once(200, "ok".to_string()).await;
    let channel = webhook(url.clone(), Some("KEELSON_TEST_WEBHOOK_SECRET"));
    let http = crate::loopback_http();
    let delivery = send_with_secrets(&channel, &notification(), &http, &secrets).await.unwrap();
    let request = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();

    assert_eq!(delivery.channel, ChannelKind::Webhook);
    assert_eq!(delivery.status, DeliveryStatus::Http(200));
    // Host and port only: the path and query may be credentials.
    assert_eq!(delivery.target, url.trim_start_matches("http://"));

    assert_eq!(request.request_line, "POST /hooks/keelson?token=abc HTTP/1.1");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["authorization"], "Bearer static-token");
    assert_eq!(request.headers["x-keelson-alert-id"], "alrt-0192");

    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "keelson.alert");
    assert_eq!(body["alert_id"], "alrt-0192");
    assert_eq!(body["monitor"], "churn-model-drift");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["title"], "Drift in 3 of 12 features");
    assert_eq!(body["fired_at"], "2025-03-04T05:06:07Z");
    assert_eq!(body["report"], "https://keelson.example/reports/r-17");
    assert_eq!(body["details"]["age"]["psi"], 0.31);

    let timestamp = &request.headers["x-keelson-timestamp"];
    let signature = &request.headers["x-keelson-signature"];
    assert!(timestamp.parse::<u64>().unwrap() > 1_700_000_000);
    assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
    assert!(verify_signature(SECRET.as_bytes(), timestamp, &request.body, signature));

    let mut tampered = request.body.clone();
    tampered[10] ^= 1;
    assert!(!verify_signature(SECRET.as_bytes(), timestamp, &tampered, signature));
    let other_time = (timestamp.parse::<u64>().unwrap() - 600).to_string();
    assert!(!verify_signature(SECRET.as_bytes(), &other_time, &request.body, signature));
    assert!(!verify_signature(b"wrong secret", timestamp, &request.body, signature));
    assert!(!verify_signature(SECRET.as_bytes(), timestamp, &request.body, "sha256=zz"));
    assert!(!verify_signature(SECRET.as_bytes(), timestamp, &request.body, &signature[7..]));
}

#[tokio::test]
async fn unsigned_webhook_has_no_signature_headers() {
    let (url, server) = http_once(204, String::new()).await;
    let delivery = send(&webhook(url, None), &notification(), &crate::loopback_http()).await.unwrap();
    let request = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Http(204));
    assert!(!request.headers.contains_key("x-keelson-signature"));
    assert!(!request.headers.contains_key("x-keelson-timestamp"));
}

#[tokio::test]
async fn missing_secret_variable_is_named() {
    let channel = webhook("http://127.0.0.1:9".to_string(), Some("KEELSON_TEST_SURELY_UNSET_7C1D"));
    // Through `send`, i.e. the real environment, where this name is not set.
    let err = send(&channel, &notification(), &crate::loopback_http()).await.unwrap_err();
    assert!(matches!(err, NotifyError::MissingSecret { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("KEELSON_TEST_SURELY_UNSET_7C1D"), "{message}");
    assert!(message.contains("secret_env"), "{message}");
}

#[tokio::test]
async fn error_answer_gives_the_status_and_not_the_body() {
    let (url, server) = http_once(500, format!("database on fire {}", "x".repeat(2000))).await;
    let err = send(&webhook(url, None), &notification(), &crate::loopback_http()).await.unwrap_err();
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    let NotifyError::HttpStatus { status, .. } = &err else {
        panic!("expected an HTTP status error, got {err:?}");
    };
    assert_eq!(*status, 500);
    let message = err.to_string();
    assert!(message.contains("HTTP 500"), "{message}");
    // The receiver is whoever the channel's author named; its answer is not repeated.
    assert!(!message.contains("database on fire"), "{message}");
    assert!(!message.contains("token=abc"), "the URL's query leaked: {message}");
}

#[tokio::test]
async fn unreachable_receiver_is_an_error() {
    // A port that was just free: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = send(&webhook(url, None), &notification(), &crate::loopback_http()).await.unwrap_err();
    assert!(matches!(err, NotifyError::Http { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("webhook POST to 127.0.0.1:"), "{message}");
    assert!(!message.contains("token=abc"), "the URL's query leaked: {message}");
}

#[tokio::test]
async fn receivers_on_internal_addresses_are_refused_by_the_default_policy() {
    let (url, _server) = http_once(200, String::new()).await;
    let default = keelson_egress::EgressPolicy::default().client().unwrap();
    for target in [url.clone(), url.replace("127.0.0.1", "localhost"), "http://169.254.169.254/hook".to_string()] {
        let err = send(&webhook(target.clone(), None), &notification(), &default).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, NotifyError::Http { .. }), "{target}: {err:?}");
        assert!(message.contains("egress.allow_cidrs"), "{target}: {message}");
    }
}
