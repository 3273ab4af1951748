//! Email channel: its configuration and the delivery of one alert through our SMTP client.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::smtp::{self, Envelope, Login, Server};
use super::{check_env_name, message, secret, DeliveryStatus, Notification, NotifyError};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connect, then STARTTLS (required: we refuse servers that do not offer it).
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Tls,
    /// No encryption: only for relays on the same host or a trusted network, and never with a
    /// password unless the relay is on loopback.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    pub smtp_host: String,
    /// Defaults to 465 for `security: tls`, else 587 (submission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Environment variable holding the password; required with `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Envelope sender and From header: a bare address, `alerts@example.com`.
    pub from: String,
    /// Recipients: bare addresses.
    pub to: Vec<String>,
}

impl EmailChannel {
    pub fn port(&self) -> u16 {
        match (self.smtp_port, self.security) {
            (Some(port), _) => port,
            (None, Security::Tls) => 465,
            (None, _) => 587,
        }
    }

    pub(super) fn check(&self) -> Result<(), String> {
        let host = self.smtp_host.trim();
        if host.is_empty() || self.smtp_host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!("smtp_host must be a host name or IP address, got {:?}", self.smtp_host));
        }
        if self.smtp_port == Some(0) {
            return Err("smtp_port must be between 1 and 65535".to_string());
        }
        check_address("from", &self.from)?;
        if self.to.is_empty() {
            return Err("to must list at least one recipient".to_string());
        }
        for address in &self.to {
            check_address("to", address)?;
        }
        match (&self.username, &self.password_env) {
            (Some(user), Some(var)) => {
                if user.is_empty() || user.contains(|c: char| c.is_control()) {
                    return Err("username must be non-empty and on one line".to_string());
                }
                check_env_name("password_env", var)?;
            }
            (Some(_), None) => {
                return Err("username is set but password_env is not".to_string());
            }
            (None, Some(_)) => {
                return Err("password_env is set but username is not".to_string());
            }
            (None, None) => {}
        }
        if self.security == Security::None && self.username.is_some() && !is_loopback(host) {
            return Err(format!(
                "security \"none\" would send the password in clear text to {host}; use \
                 \"starttls\" or \"tls\" (or a relay on loopback)"
            ));
        }
        Ok(())
    }
}

/// A bare address we can put in both the envelope and the headers: printable ASCII with no
/// characters that would end the address or the header early.
fn check_address(field: &str, address: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{field}: {address:?} is not an email address ({why})"));
    if address.len() > 254 {
        return bad("longer than 254 characters");
    }
    if address.contains(['<', '>', '(', ')', '[', ']', ',', ';', ':', '"', '\\']) {
        return bad("write the bare address, without a display name or brackets");
    }
    if !address.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("only ASCII without spaces is supported");
    }
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !local.contains('@') => Ok(()),
        _ => bad("expected local@domain"),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) async fn send(
    channel: &EmailChannel,
    notification: &Notification,
    secrets: &(dyn Fn(&str) -> Option<String> + Send + Sync),
) -> Result<(String, DeliveryStatus), NotifyError> {
    let login = match (&channel.username, &channel.password_env) {
        (Some(username), Some(var)) => {
            Some(Login { username: username.clone(), password: secret(secrets, "password_env", var)? })
        }
        _ => None,
    };
    let message = message::build(
        &channel.from,
        &channel.to,
        notification,
        SystemTime::now(),
        &message::message_id(&channel.from),
    );
    let host = channel.smtp_host.trim();
    // IPv6 literals may be written in brackets; the socket and TLS layers want them bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let server = Server { host, port: channel.port(), security: channel.security, tls: None };
    let envelope = Envelope { from: &channel.from, to: &channel.to, message: &message };
    let target = channel.to.join(", ");
    match smtp::deliver(&server, login.as_ref(), &envelope).await {
        Ok(reply) => Ok((target, DeliveryStatus::Smtp { code: reply.code, reply: reply.text() })),
        Err(source) => Err(NotifyError::Smtp {
            server: format!("{}:{}", channel.smtp_host.trim(), channel.port()),
            target,
            source,
        }),
    }
}
