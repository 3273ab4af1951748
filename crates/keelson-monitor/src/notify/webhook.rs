//! Generic webhook: the notification as JSON, optionally signed so the receiver can tell it came
//! from us and is fresh.
//!
//! Signature scheme (the one Stripe uses, so receivers already know how to check it): with the
//! shared secret as key, `X-Keelson-Signature: sha256=<hex HMAC-SHA256("<t>.<body>")>` where
//! `<t>` is the `X-Keelson-Timestamp` header (unix seconds) and `<body>` the exact request body
//! bytes. Signing the timestamp lets a receiver reject replays of an old, validly signed request
//! by refusing timestamps far from its clock (five minutes is usual).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use keelson_core::secrets::SecretLookup;

use super::{
    check_secret_name, env_field_refused, http, secret, ChannelKind, DeliveryStatus, Notification, NotifyError,
};

/// Unix seconds at which the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-Keelson-Timestamp";
/// `sha256=<hex>`; see the module documentation.
pub const SIGNATURE_HEADER: &str = "X-Keelson-Signature";
/// The notification's `alert_id`, so a receiver can drop a retried duplicate without parsing.
pub const ALERT_ID_HEADER: &str = "X-Keelson-Alert-Id";

/// The `type` field of every webhook body.
const EVENT_TYPE: &str = "keelson.alert";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    pub url: String,
    /// Name of the secret (in Keelson's secret store) that signs the body; no signature headers
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Formerly an environment variable holding the signing key; parsed only so that
    /// [`check`](super::Channel::check) can refuse it with directions instead of serde's bare
    /// "unknown field".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Extra headers, e.g. a receiver's static authorization token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

impl WebhookChannel {
    pub(super) fn check(&self) -> Result<(), String> {
        http::check_url("url", &self.url)?;
        if self.secret_env.is_some() {
            return Err(env_field_refused("secret_env", "secret", "signing key"));
        }
        if let Some(name) = &self.secret {
            check_secret_name("secret", name)?;
        }
        for (name, value) in self.headers.iter().flatten() {
            extra_header(name, value)?;
        }
        Ok(())
    }
}

/// Parses one configured header, refusing those we set ourselves: letting configuration
/// override the signature or the content type would make the signature meaningless.
fn extra_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("headers: {name:?} is not a valid HTTP header name"))?;
    let lower = parsed.as_str();
    if lower.starts_with("x-keelson-")
        || matches!(lower, "content-type" | "content-length" | "host" | "transfer-encoding")
    {
        return Err(format!("headers: {name:?} is set by Keelson and cannot be configured"));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("headers: the value of {name:?} is not a valid HTTP header value"))?;
    Ok((parsed, value))
}

/// The webhook body: `{"type":"keelson.alert", ...the notification's fields}`.
pub fn webhook_body(notification: &Notification) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(flatten)]
        notification: &'a Notification,
    }
    let body = Body { kind: EVENT_TYPE, notification };
    // Serializing strings and a serde_json::Value into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `X-Keelson-Signature` value for a body sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// For receivers: whether `header` (the `X-Keelson-Signature` value) is the signature of `body`
/// sent at `timestamp` (the `X-Keelson-Timestamp` value) under `secret`. The comparison is
/// constant-time. Receivers should also refuse a timestamp far from their clock, which this
/// does not check.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&expected).is_ok()
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this never fails.
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

pub(super) async fn send(
    channel: &WebhookChannel,
    notification: &Notification,
    client: &keelson_egress::EgressClient,
    secrets: &dyn SecretLookup,
) -> Result<(String, DeliveryStatus), NotifyError> {
    let url = http::check_url("url", &channel.url).map_err(NotifyError::InvalidChannel)?;
    let body = webhook_body(notification);

    let mut headers = HeaderMap::new();
    for (name, value) in channel.headers.iter().flatten() {
        let (name, value) = extra_header(name, value).map_err(NotifyError::InvalidChannel)?;
        headers.insert(name, value);
    }
    if let Ok(id) = HeaderValue::from_str(&notification.alert_id) {
        headers.insert(ALERT_ID_HEADER, id);
    }
    if let Some(name) = &channel.secret {
        let key = secret(secrets, "secret", name).await?;
        let timestamp =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default().to_string();
        let signature = sign(key.expose().as_bytes(), &timestamp, &body);
        // Both are ASCII digits / hex, always valid header values.
        if let (Ok(t), Ok(s)) = (HeaderValue::from_str(&timestamp), HeaderValue::from_str(&signature)) {
            headers.insert(TIMESTAMP_HEADER, t);
            headers.insert(SIGNATURE_HEADER, s);
        }
    }
    http::post_json(ChannelKind::Webhook, client, &url, headers, body).await
}
