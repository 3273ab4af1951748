//! The HTTP POST shared by the webhook and Slack channels: bounded time, a safe-to-log target and
//! a short excerpt of the receiver's answer when it refuses.

use std::time::Duration;

use reqwest::header::HeaderMap;
use url::Url;

use super::{ChannelKind, DeliveryStatus, NotifyError};

/// Whole-request bound (connect, send, answer); receivers should answer fast and queue work.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusal's body goes into the error.
const EXCERPT_BYTES: usize = 500;

/// Checks a configured receiver URL: absolute http(s) with a host.
pub(super) fn check_url(field: &str, raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{field} {raw:?} is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{field} must be an http or https URL, got scheme {:?}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field} {raw:?} has no host"));
    }
    Ok(url)
}

/// `host[:port]` of a URL: enough to tell receivers apart in logs without the path or query,
/// which for Slack and many webhook services is itself the credential.
pub(super) fn target(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// POSTs a JSON body; a non-2xx answer is an error carrying the status and a body excerpt.
pub(super) async fn post_json(
    channel: ChannelKind,
    http: &reqwest::Client,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<(String, DeliveryStatus), NotifyError> {
    let target = target(url);
    let response = http
        .post(url.clone())
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        // reqwest's message would include the full URL; the target is the safe part of it.
        .map_err(|source| NotifyError::Http { channel, target: target.clone(), source: source.without_url() })?;
    let status = response.status();
    if status.is_success() {
        return Ok((target, DeliveryStatus::Http(status.as_u16())));
    }
    let body = excerpt(response).await;
    Err(NotifyError::HttpStatus { channel, target, status: status.as_u16(), body })
}

/// The first bytes of an answer's body, read chunk by chunk so a large error page is not
/// downloaded; an unreadable body gives what was read so far.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(EXCERPT_BYTES);
    // A cut through a multi-byte character becomes one replacement character.
    String::from_utf8_lossy(&bytes).trim().to_string()
}
