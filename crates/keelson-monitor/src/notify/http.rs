//! The HTTP POST shared by the webhook and Slack channels: through the egress policy, bounded in
//! time, with a safe-to-log target. A refusal's body is never read into errors or logs: the
//! receiver is whoever the channel's author named, and its answer is not ours to echo.

use std::time::Duration;

use keelson_egress::{EgressClient, EgressError};
use reqwest::header::HeaderMap;
use url::Url;

use super::{ChannelKind, DeliveryStatus, NotifyError};

/// Whole-request bound (connect, send, answer); receivers should answer fast and queue work.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// POSTs a JSON body; a non-2xx answer is an error carrying the status.
pub(super) async fn post_json(
    channel: ChannelKind,
    http: &EgressClient,
    url: &Url,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<(String, DeliveryStatus), NotifyError> {
    let target = target(url);
    let failed =
        |reason: EgressError| NotifyError::Http { channel, target: target.clone(), reason: reason.to_string() };
    let response = http
        .post(url)
        .map_err(failed)?
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|error| failed(EgressClient::explain(&error)))?;
    let status = response.status();
    if status.is_success() {
        return Ok((target, DeliveryStatus::Http(status.as_u16())));
    }
    Err(NotifyError::HttpStatus { channel, target, status: status.as_u16() })
}
