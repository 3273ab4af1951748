//! Alert notification channels against real loopback servers written here: an HTTP receiver for
//! webhooks and Slack, an SMTP server for email.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod email;
mod servers;
mod slack;
mod webhook;

use keelson_core::secrets::{SecretLookup, SecretValue, StaticSecrets};
use keelson_egress::EgressPolicy;
use keelson_monitor::notify::{send, Channel, Delivery, Notification, NotifyError, Severity};
use serde_json::json;

/// An egress policy that allows loopback, where this suite's receivers listen.
fn loopback_policy() -> EgressPolicy {
    EgressPolicy::allowing(&["127.0.0.0/8"]).unwrap()
}

/// A client that enforces [`loopback_policy`].
fn loopback_http() -> keelson_egress::EgressClient {
    loopback_policy().client().unwrap()
}

/// A secret store holding `pairs` (name, value).
fn secrets(pairs: &[(&str, &str)]) -> StaticSecrets {
    StaticSecrets(pairs.iter().map(|(name, value)| (name.to_string(), SecretValue::new(*value))).collect())
}

/// [`send`] under [`loopback_policy`].
async fn send_on_loopback(
    channel: &Channel,
    notification: &Notification,
    secrets: &dyn SecretLookup,
) -> Result<Delivery, NotifyError> {
    send(channel, notification, &loopback_http(), &loopback_policy(), secrets).await
}

fn notification() -> Notification {
    Notification {
        alert_id: "alrt-0192".to_string(),
        monitor: "churn-model-drift".to_string(),
        severity: Severity::Critical,
        title: "Drift in 3 of 12 features".to_string(),
        summary: "PSI above threshold for age, income and tenure.\n.dotted line\n.\nlast".to_string(),
        fired_at: "2025-03-04T05:06:07Z".to_string(),
        report: Some("https://keelson.example/reports/r-17".to_string()),
        details: json!({"age": {"psi": 0.31, "threshold": 0.2}, "drifted": ["age", "income", "tenure"]}),
    }
}
