//! Slack incoming webhook (also accepted by Slack-compatible receivers such as Mattermost).
//!
//! The payload carries the whole message twice, on purpose: `blocks` (a header block and mrkdwn
//! sections) is what Slack renders, and `text` is what Slack shows in notifications and what
//! receivers that ignore blocks (Mattermost) render, so it is a complete message on its own.

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{http, ChannelKind, DeliveryStatus, Notification, NotifyError, Severity};

/// Slack's limits: header text 150 characters, section text 3000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackChannel {
    /// The incoming-webhook URL; its path is the credential, so it is never logged.
    pub url: String,
}

impl SlackChannel {
    pub(super) fn check(&self) -> Result<(), String> {
        http::check_url("url", &self.url).map(|_| ())
    }
}

/// The incoming-webhook payload for a notification.
pub fn slack_payload(n: &Notification) -> serde_json::Value {
    let emoji = match n.severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    };
    let severity = n.severity.as_str().to_uppercase();
    let header = truncate(&format!("{emoji} [{severity}] {}", one_line(&n.title)), HEADER_MAX);

    let mut facts = format!(
        "*Monitor:* {}\n*Severity:* {}\n*Fired at:* {}\n*Alert:* {}",
        escape(&n.monitor),
        n.severity,
        escape(&n.fired_at),
        escape(&n.alert_id)
    );
    if let Some(report) = &n.report {
        facts.push_str("\n*Report:* ");
        facts.push_str(&report_link(report));
    }
    let summary = escape(&n.summary);

    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}})];
    // Slack refuses a section with empty text.
    if !summary.trim().is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&summary, SECTION_MAX)}}));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&facts, SECTION_MAX)}}));
    if !n.details.is_null() {
        let pretty = serde_json::to_string_pretty(&n.details).unwrap_or_default();
        // Room for the fences; a cut code block still renders as code.
        let code = truncate(&escape(&pretty), SECTION_MAX - 8);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{code}```")}}));
    }

    let text = format!("{emoji} *[{severity}] {}*\n{summary}\n{facts}", escape(&one_line(&n.title)));
    json!({ "text": text, "blocks": blocks })
}

pub(super) async fn send(
    channel: &SlackChannel,
    notification: &Notification,
    client: &keelson_egress::EgressClient,
) -> Result<(String, DeliveryStatus), NotifyError> {
    let url = http::check_url("url", &channel.url).map_err(NotifyError::InvalidChannel)?;
    let body = serde_json::to_vec(&slack_payload(notification)).unwrap_or_default();
    http::post_json(ChannelKind::Slack, client, &url, HeaderMap::new(), body).await
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters; everything else is literal
/// enough for an alert.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A link for http(s) reports; other reports (artifact paths) as inline code.
fn report_link(report: &str) -> String {
    let linkable = url::Url::parse(report).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        && !report.contains(['|', '<', '>', ' ']);
    if linkable {
        format!("<{report}|open report>")
    } else {
        format!("`{}`", escape(report).replace('`', "'"))
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts to at most `max` characters, marking the cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
