//! Alert notifications: what a fired alert says ([`Notification`]), where it goes ([`Channel`]:
//! a signed webhook, a Slack incoming webhook or email over SMTP) and one entry point, [`send`],
//! that delivers it once.
//!
//! Retries are deliberately absent: the caller's job queue owns them, so a failed [`send`] is
//! reported as a [`NotifyError`] and nothing here sleeps or loops on failure. Every network step
//! is bounded by a timeout so a dead receiver cannot hold a worker.
//!
//! Secrets (the webhook signing key, the SMTP password) are never part of a channel's
//! configuration: the configuration names a secret in Keelson's secret store, looked up at send
//! time through [`SecretLookup`], so that channel definitions can be stored, logged and shown
//! without leaking anything. They are never read from the server's environment: a channel's
//! author is an API caller, and naming a server variable would hand them its value.

mod email;
#[cfg(test)]
mod email_tls_tests;
mod http;
mod message;
mod slack;
mod webhook;

use std::fmt;
use std::time::{Duration, Instant};

use keelson_core::secrets::{validate_secret_name, SecretLookup, SecretValue};
use serde::{Deserialize, Serialize};

pub use email::{EmailChannel, Security, SmtpStage};
pub use slack::{slack_payload, SlackChannel};
pub use webhook::{
    sign, verify_signature, webhook_body, WebhookChannel, ALERT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every channel sends about one fired alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable id of the alert; receivers use it to drop duplicates of a retried delivery.
    pub alert_id: String,
    /// Name of the monitor that fired.
    pub monitor: String,
    pub severity: Severity,
    pub title: String,
    /// Plain text, possibly several lines.
    pub summary: String,
    /// RFC 3339 timestamp.
    pub fired_at: String,
    /// URL or artifact path of the report that fired the alert.
    #[serde(default)]
    pub report: Option<String>,
    /// The signals that fired (drift scores, thresholds, columns).
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Where a notification goes. Parsed from configuration; call [`Channel::check`] before storing
/// one so that a mistake is reported when it is written, not when an alert fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Channel {
    Webhook(WebhookChannel),
    Slack(SlackChannel),
    Email(EmailChannel),
}

impl Channel {
    pub fn kind(&self) -> ChannelKind {
        match self {
            Channel::Webhook(_) => ChannelKind::Webhook,
            Channel::Slack(_) => ChannelKind::Slack,
            Channel::Email(_) => ChannelKind::Email,
        }
    }

    /// Validates the configuration; the message says which field is wrong and why.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Channel::Webhook(c) => c.check(),
            Channel::Slack(c) => c.check(),
            Channel::Email(c) => c.check(),
        }
        .map_err(|e| format!("{} channel: {e}", self.kind()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Email,
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
        })
    }
}

/// The receiver's answer to a successful delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// HTTP status code (2xx).
    Http(u16),
    /// The SMTP server's reply to the end of DATA, i.e. its acceptance of the message.
    Smtp { code: u16, reply: String },
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryStatus::Http(code) => write!(f, "HTTP {code}"),
            DeliveryStatus::Smtp { code, reply } => write!(f, "SMTP {code} {reply}"),
        }
    }
}

/// Record of one successful delivery. `target` is safe to log: a URL's host (never its path,
/// which for Slack is the secret) or the email recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub channel: ChannelKind,
    pub target: String,
    pub status: DeliveryStatus,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("invalid channel: {0}")]
    InvalidChannel(String),
    #[error(
        "the secret `{name}` named by `{field}` does not exist or is empty; store it with \
         `PUT /api/v1/secrets/{name}`"
    )]
    MissingSecret { field: &'static str, name: String },
    /// The secret store failed; the message is the store's, which never holds a value.
    #[error("could not read the secret `{name}` named by `{field}`: {reason}")]
    SecretStore { field: &'static str, name: String, reason: String },
    #[error("{channel} POST to {target} failed: {reason}")]
    Http { channel: ChannelKind, target: String, reason: String },
    #[error("{channel} POST to {target} answered HTTP {status}")]
    HttpStatus { channel: ChannelKind, target: String, status: u16 },
    /// `reason` is the egress refusal, the network or TLS failure, or the server's reply cut
    /// short: never anything we sent.
    #[error("email to {target} via {server} failed at {stage}: {reason}")]
    Smtp { server: String, target: String, stage: SmtpStage, reason: String },
}

/// Delivers `notification` once through `channel`.
///
/// `http` is the caller's shared client (for its connection pool and TLS roots); each request
/// still gets its own timeout here. Email does not use it but resolves and checks its SMTP host
/// through `egress`, the policy `http` enforces. `secrets` finds the secrets a channel names.
pub async fn send(
    channel: &Channel,
    notification: &Notification,
    http: &keelson_egress::EgressClient,
    egress: &keelson_egress::EgressPolicy,
    secrets: &dyn SecretLookup,
) -> Result<Delivery, NotifyError> {
    channel.check().map_err(NotifyError::InvalidChannel)?;
    let started = Instant::now();
    let (target, status) = match channel {
        Channel::Webhook(c) => webhook::send(c, notification, http, secrets).await?,
        Channel::Slack(c) => slack::send(c, notification, http).await?,
        Channel::Email(c) => email::send(c, notification, egress, secrets).await?,
    };
    let delivery = Delivery { channel: channel.kind(), target, status, duration: started.elapsed() };
    tracing::debug!(
        channel = %delivery.channel,
        target = %delivery.target,
        status = %delivery.status,
        alert_id = %notification.alert_id,
        "alert notification delivered"
    );
    Ok(delivery)
}

/// Looks up the secret a channel field names, or says which one is missing. Neither the value
/// nor anything derived from it ever reaches an error.
async fn secret(secrets: &dyn SecretLookup, field: &'static str, name: &str) -> Result<SecretValue, NotifyError> {
    let found = secrets.lookup(name).await.map_err(|reason| NotifyError::SecretStore {
        field,
        name: name.to_string(),
        reason,
    })?;
    // An empty key would sign with nothing and an empty password cannot authenticate.
    found
        .filter(|value| !value.expose().is_empty())
        .ok_or_else(|| NotifyError::MissingSecret { field, name: name.to_string() })
}

/// A field that names a secret: a valid secret name.
fn check_secret_name(field: &str, name: &str) -> Result<(), String> {
    validate_secret_name(name).map_err(|e| format!("{field}: {e}"))
}

/// The refusal of a field that named an environment variable before secrets moved to the store.
fn env_field_refused(old: &str, new: &str, what: &str) -> String {
    format!(
        "`{old}` is no longer supported: store the {what} with `PUT /api/v1/secrets/{{name}}` and name it in \
         `{new}`"
    )
}
