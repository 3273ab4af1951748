//! The client against real servers on loopback: refusals before connecting, after resolution
//! and on redirects, and the size limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::response::Redirect;
use axum::routing::get;
use keelson_egress::{read_limited, EgressError, EgressPolicy};
use url::Url;

async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

#[tokio::test]
async fn loopback_targets_are_refused_by_address_and_by_name() {
    let address = serve(axum::Router::new().route("/", get(|| async { "secret internal data" }))).await;
    let client = EgressPolicy::default().client().unwrap();
    let refused = client.get(&url(&format!("http://{address}/"))).unwrap_err();
    assert!(matches!(refused, EgressError::Refused(_)), "{refused}");

    // A name is checked on the addresses it resolves to, when the connection is made.
    let by_name = client.get(&url(&format!("http://localhost:{}/", address.port()))).unwrap();
    let error = by_name.send().await.unwrap_err();
    let explained = keelson_egress::EgressClient::explain(&error);
    assert!(matches!(explained, EgressError::Refused(_)), "{explained}");
    assert!(!explained.to_string().contains("secret internal data"));
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_refused() {
    let internal = serve(axum::Router::new().route("/", get(|| async { "metadata" }))).await;
    let target = format!("http://{internal}/");
    let redirecting = serve(
        axum::Router::new()
            .route("/meta", get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }))
            .route("/internal", get(move || async move { Redirect::temporary(&target) }))
            .route("/ok", get(|| async { "fine" })),
    )
    .await;

    // The first hop is allowed by address; the redirect to the metadata address is not.
    let client = EgressPolicy::allowing(&["127.0.0.1/32"]).unwrap().client().unwrap();
    let ok = client.get(&url(&format!("http://{redirecting}/ok"))).unwrap().send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "fine");
    let error = client.get(&url(&format!("http://{redirecting}/meta"))).unwrap().send().await.unwrap_err();
    let explained = keelson_egress::EgressClient::explain(&error);
    assert!(matches!(explained, EgressError::Refused(_)), "{explained}");
    assert!(explained.to_string().contains("169.254.169.254"), "{explained}");

    // The first hop is allowed by name only; the redirect to a loopback address is refused.
    let by_name = EgressPolicy::from_config(&keelson_core::config::EgressConfig {
        allow_hosts: vec!["localhost".to_string()],
        ..Default::default()
    })
    .unwrap()
    .client()
    .unwrap();
    let first_hop = format!("http://localhost:{}/", redirecting.port());
    let ok = by_name.get(&url(&format!("{first_hop}ok"))).unwrap().send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "fine");
    let error = by_name.get(&url(&format!("{first_hop}internal"))).unwrap().send().await.unwrap_err();
    let explained = keelson_egress::EgressClient::explain(&error);
    assert!(matches!(explained, EgressError::Refused(_)), "{explained}");
    assert!(!explained.to_string().contains("metadata"));
}

#[tokio::test]
async fn answers_over_the_limit_are_refused() {
    let address = serve(axum::Router::new().route("/big", get(|| async { "x".repeat(4096) }))).await;
    let policy = EgressPolicy::allowing(&["127.0.0.0/8"]).unwrap();
    let client = policy.client().unwrap();
    let response = client.get(&url(&format!("http://{address}/big"))).unwrap().send().await.unwrap();
    assert!(matches!(read_limited(response, 1000).await, Err(EgressError::TooLarge { limit: 1000 })));
    let response = client.get(&url(&format!("http://{address}/big"))).unwrap().send().await.unwrap();
    assert_eq!(read_limited(response, 4096).await.unwrap().len(), 4096);
}
