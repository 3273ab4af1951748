use std::collections::BTreeMap;

use keelson_core::secrets::StaticSecrets;
use keelson_monitor::notify::{
    send, verify_signature, Channel, ChannelKind, DeliveryStatus, NotifyError, WebhookChannel,
};
use serde_json::Value;

use super::servers::{http_once, LIMIT};
use super::{notification, send_on_loopback};

const SECRET: &str = "whsec_test_5f0c";

fn secrets() -> StaticSecrets {
    crate::secrets(&[("webhook-signing-key", SECRET)])
}

fn webhook(url: String, secret: Option<&str>) -> Channel {
    Channel::Webhook(WebhookChannel {
        url: format!("{url}/hooks/keelson?token=abc"),
        secret: secret.map(str::to_string),
        secret_env: None,
        headers: Some(BTreeMap::from([("Authorization".to_string(), "Bearer static-token".to_string())])),
    })
}

#[tokio::test]
async fn signed_webhook_posts_the_notification() {
    let (url, server) = http_once(200, "ok".to_string()).await;
    let channel = webhook(url.clone(), Some("webhook-signing-key"));
    let delivery = send_on_loopback(&channel, &notification(), &secrets()).await.unwrap();
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
    let delivery = send_on_loopback(&webhook(url, None), &notification(), &secrets()).await.unwrap();
    let request = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Http(204));
    assert!(!request.headers.contains_key("x-keelson-signature"));
    assert!(!request.headers.contains_key("x-keelson-timestamp"));
}

#[tokio::test]
async fn missing_secret_is_named_and_nothing_is_sent() {
    // Nothing listens on port 9: reaching the network would be a different error.
    let channel = webhook("http://127.0.0.1:9".to_string(), Some("other-key"));
    let err = send_on_loopback(&channel, &notification(), &secrets()).await.unwrap_err();
    assert!(matches!(err, NotifyError::MissingSecret { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("`other-key`"), "{message}");
    assert!(message.contains("`secret`"), "{message}");
    assert!(message.contains("PUT /api/v1/secrets/other-key"), "{message}");
    for shown in [message, format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
}

#[tokio::test]
async fn environment_variables_are_not_secrets() {
    // A name that is set in every environment: it must not be read as a secret's value.
    std::env::var("PATH").unwrap();
    let channel = webhook("http://127.0.0.1:9".to_string(), Some("PATH"));
    let err = send_on_loopback(&channel, &notification(), &secrets()).await.unwrap_err();
    assert!(matches!(err, NotifyError::MissingSecret { .. }), "{err:?}");

    // The old field that named a variable is refused with directions, before any lookup.
    let Channel::Webhook(mut old) = webhook("http://127.0.0.1:9".to_string(), None) else { unreachable!() };
    old.secret_env = Some("PATH".to_string());
    let err = send_on_loopback(&Channel::Webhook(old), &notification(), &secrets()).await.unwrap_err();
    assert!(matches!(err, NotifyError::InvalidChannel(_)), "{err:?}");
    assert!(err.to_string().contains("`secret_env` is no longer supported"), "{err}");
}

#[tokio::test]
async fn error_answer_gives_the_status_and_not_the_body() {
    let (url, server) = http_once(500, format!("database on fire {}", "x".repeat(2000))).await;
    let err = send_on_loopback(&webhook(url, None), &notification(), &secrets()).await.unwrap_err();
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
    let err = send_on_loopback(&webhook(url, None), &notification(), &secrets()).await.unwrap_err();
    assert!(matches!(err, NotifyError::Http { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("webhook POST to 127.0.0.1:"), "{message}");
    assert!(!message.contains("token=abc"), "the URL's query leaked: {message}");
}

#[tokio::test]
async fn receivers_on_internal_addresses_are_refused_by_the_default_policy() {
    let (url, _server) = http_once(200, String::new()).await;
    let policy = keelson_egress::EgressPolicy::default();
    let default = policy.client().unwrap();
    for target in [url.clone(), url.replace("127.0.0.1", "localhost"), "http://169.254.169.254/hook".to_string()] {
        let err =
            send(&webhook(target.clone(), None), &notification(), &default, &policy, &secrets()).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, NotifyError::Http { .. }), "{target}: {err:?}");
        assert!(message.contains("egress.allow_cidrs"), "{target}: {message}");
    }
}
