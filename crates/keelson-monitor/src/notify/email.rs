//! Email channel: its configuration and the delivery of one alert over SMTP with `lettre`.
//!
//! The SMTP host came through the API, so it is resolved and checked by the egress policy first
//! and lettre connects to the checked addresses only (a name cannot re-resolve elsewhere between
//! the check and the connection), while TLS still verifies the configured host name.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use keelson_core::secrets::SecretLookup;
use keelson_egress::EgressPolicy;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::transport::smtp::response::Response;
use lettre::Address;
use serde::{Deserialize, Serialize};

use super::{check_secret_name, env_field_refused, message, secret, DeliveryStatus, Notification, NotifyError};

/// Greeting and EHLO, the STARTTLS upgrade, or the login: each is a command or two.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// MAIL, RCPT, DATA and the message; the end of DATA is when servers run their filters, which
/// RFC 5321 allows minutes for.
const SEND_TIMEOUT: Duration = Duration::from_secs(40);
/// QUIT after a delivery is a courtesy; the message is already accepted.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of a server's reply or of a failure's description an error or a delivery keeps: the
/// server is whoever the channel's author named, and its words are not ours to repeat at length.
const MAX_REASON_CHARS: usize = 200;
/// In order of preference; both send the password only inside TLS unless `security` is `none`.
const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

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
    /// Name of the secret (in Keelson's secret store) holding the password; required with
    /// `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// Formerly an environment variable holding the password; parsed only so that
    /// [`check`](super::Channel::check) can refuse it with directions instead of serde's bare
    /// "unknown field".
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
        if self.password_env.is_some() {
            return Err(env_field_refused("password_env", "password_secret", "password"));
        }
        match (&self.username, &self.password_secret) {
            (Some(user), Some(name)) => {
                if user.is_empty() || user.contains(|c: char| c.is_control()) {
                    return Err("username must be non-empty and on one line".to_string());
                }
                check_secret_name("password_secret", name)?;
            }
            (Some(_), None) => {
                return Err("username is set but password_secret is not".to_string());
            }
            (None, Some(_)) => {
                return Err("password_secret is set but username is not".to_string());
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

    /// The host without the brackets an IPv6 literal may be written in: what the resolver and
    /// the TLS server name want.
    fn bare_host(&self) -> &str {
        self.smtp_host.trim().trim_start_matches('[').trim_end_matches(']')
    }

    /// `host:port`, `[v6]:port`: the server as errors name it.
    fn server(&self) -> String {
        let host = self.bare_host();
        if host.contains(':') {
            format!("[{host}]:{}", self.port())
        } else {
            format!("{host}:{}", self.port())
        }
    }
}

/// A bare address we can put in both the envelope and the headers: printable ASCII with no
/// characters that would end the address or the header early, and one lettre accepts.
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
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !local.contains('@') => {}
        _ => return bad("expected local@domain"),
    }
    match Address::from_str(address) {
        Ok(_) => Ok(()),
        Err(error) => bad(&error.to_string()),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The step of the delivery an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpStage {
    /// Resolving the host and checking its addresses against the egress policy.
    Egress,
    /// TCP connect, implicit TLS when configured, greeting and EHLO.
    Connect,
    StartTls,
    Auth,
    /// MAIL, RCPT, DATA and the message.
    Send,
}

impl fmt::Display for SmtpStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmtpStage::Egress => "the egress check",
            SmtpStage::Connect => "connect",
            SmtpStage::StartTls => "STARTTLS",
            SmtpStage::Auth => "AUTH",
            SmtpStage::Send => "sending the message",
        })
    }
}

/// Where to deliver once the egress policy has passed the host.
pub(super) struct Relay<'a> {
    /// The configured host: the name TLS verifies.
    pub host: &'a str,
    /// The checked addresses `host` resolved to; lettre tries them in order.
    pub addresses: &'a [SocketAddr],
    pub security: Security,
    pub connect_timeout: Duration,
    /// A DER root certificate trusted instead of the public web PKI: the test CA of the TLS
    /// tests, never set by configuration.
    pub trusted_root: Option<&'a [u8]>,
}

/// A failed step: where, and a short description without anything we sent.
pub(super) type StageError = (SmtpStage, String);

pub(super) async fn send(
    channel: &EmailChannel,
    notification: &Notification,
    egress: &EgressPolicy,
    secrets: &dyn SecretLookup,
) -> Result<(String, DeliveryStatus), NotifyError> {
    let target = channel.to.join(", ");
    let failed = |(stage, reason): StageError| NotifyError::Smtp {
        server: channel.server(),
        target: target.clone(),
        stage,
        reason,
    };
    let credentials = match (&channel.username, &channel.password_secret) {
        (Some(username), Some(name)) => {
            let password = secret(secrets, "password_secret", name).await?;
            Some(Credentials::new(username.clone(), password.expose().to_string()))
        }
        _ => None,
    };
    let envelope = envelope(channel).map_err(NotifyError::InvalidChannel)?;
    let message = message::build(
        &channel.from,
        &channel.to,
        notification,
        SystemTime::now(),
        &message::message_id(&channel.from),
    );
    // lettre ends DATA with CRLF.CRLF itself; our final CRLF would add an empty line to the body.
    let message = message.strip_suffix("\r\n").unwrap_or(&message);

    let host = channel.bare_host();
    let addresses =
        egress.resolve(host, channel.port()).await.map_err(|e| failed((SmtpStage::Egress, e.to_string())))?;
    let relay = Relay {
        host,
        addresses: &addresses,
        security: channel.security,
        connect_timeout: egress.connect_timeout(),
        trusted_root: None,
    };
    let accepted = deliver(&relay, credentials.as_ref(), &envelope, message.as_bytes()).await.map_err(failed)?;
    Ok((target, DeliveryStatus::Smtp { code: u16::from(accepted.code()), reply: reply_text(&accepted) }))
}

fn envelope(channel: &EmailChannel) -> Result<Envelope, String> {
    let parse = |field: &str, address: &str| {
        Address::from_str(address).map_err(|e| format!("{field}: {address:?} is not an email address ({e})"))
    };
    let from = parse("from", &channel.from)?;
    let to = channel.to.iter().map(|address| parse("to", address)).collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(from), to).map_err(|e| format!("to: {e}"))
}

/// One SMTP session: connect, secure, log in, send, quit. Returns the server's acceptance of the
/// message (its reply to the end of DATA).
pub(super) async fn deliver(
    relay: &Relay<'_>,
    credentials: Option<&Credentials>,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Response, StageError> {
    let tls = tls_parameters(relay).map_err(|e| (SmtpStage::Connect, format!("TLS setup: {}", describe(&e))))?;
    // Without a host name of our own, RFC 5321 4.1.4 asks for an address literal; lettre's
    // default is `[127.0.0.1]`, which tells the server nothing about us.
    let hello = ClientId::default();
    let implicit_tls = (relay.security == Security::Tls).then(|| tls.clone());
    let connecting =
        AsyncSmtpConnection::connect_tokio1(relay.addresses, Some(relay.connect_timeout), &hello, implicit_tls, None);
    // Each address may take the connect timeout; the handshake, greeting and EHLO come after.
    let connect_limit = relay.connect_timeout * relay.addresses.len().max(1) as u32 + COMMAND_TIMEOUT;
    let mut connection = within(SmtpStage::Connect, connect_limit, connecting).await?;

    let result = session(&mut connection, relay, tls, &hello, credentials, envelope, message).await;
    match &result {
        Ok(_) => {
            // Already delivered: a server that hangs up without answering QUIT changes nothing.
            let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.quit()).await;
        }
        // A server that refused something is still talking and gets a polite QUIT (lettre has
        // sent it already after a refusal inside the transaction). One that timed out, dropped
        // the connection or failed the TLS handshake does not: lettre must not touch a stream
        // whose upgrade failed.
        Err(failure) if failure.server_talking && !connection.has_broken() => {
            let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.abort()).await;
        }
        Err(_) => {}
    }
    result.map_err(|failure| (failure.stage, failure.reason))
}

struct Failure {
    stage: SmtpStage,
    reason: String,
    /// The server answered (with a refusal): the connection is still in step.
    server_talking: bool,
}

impl Failure {
    fn refused_by_us(stage: SmtpStage, reason: &str) -> Failure {
        Failure { stage, reason: reason.to_string(), server_talking: true }
    }
}

async fn session(
    connection: &mut AsyncSmtpConnection,
    relay: &Relay<'_>,
    tls: TlsParameters,
    hello: &ClientId,
    credentials: Option<&Credentials>,
    envelope: &Envelope,
    message: &[u8],
) -> Result<Response, Failure> {
    if relay.security == Security::Starttls {
        if !connection.server_info().supports_feature(Extension::StartTls) {
            return Err(Failure::refused_by_us(
                SmtpStage::StartTls,
                "the server does not offer STARTTLS; refusing to continue in clear text",
            ));
        }
        // lettre says EHLO again after the upgrade and forgets what the server offered before it
        // (RFC 3207 4.2), so the AUTH choice below is made on what came over TLS.
        step(SmtpStage::StartTls, COMMAND_TIMEOUT, connection.starttls(tls, hello)).await?;
    }
    if let Some(credentials) = credentials {
        if connection.server_info().get_auth_mechanism(&MECHANISMS).is_none() {
            return Err(Failure::refused_by_us(
                SmtpStage::Auth,
                "a username is configured but the server offers neither AUTH PLAIN nor AUTH LOGIN",
            ));
        }
        step(SmtpStage::Auth, COMMAND_TIMEOUT, connection.auth(&MECHANISMS, credentials)).await?;
    }
    let accepted = step(SmtpStage::Send, SEND_TIMEOUT, connection.send(envelope, message)).await?;
    // lettre takes any positive reply as success; only 250 accepts a message (RFC 5321
    // 4.1.1.4). Anything else means the conversation is out of step, e.g. replies injected in
    // clear before STARTTLS that lettre keeps buffered across the upgrade.
    let code = u16::from(accepted.code());
    if code != 250 {
        return Err(Failure {
            stage: SmtpStage::Send,
            reason: format!("the server answered the message with {code}, not 250: {}", reply_text(&accepted)),
            server_talking: false,
        });
    }
    Ok(accepted)
}

/// Runs one step of a session under its time limit, naming the step when it fails and noting
/// whether the server is still in step.
async fn step<T>(
    stage: SmtpStage,
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure {
            stage,
            reason: describe(&error),
            server_talking: error.is_transient() || error.is_permanent(),
        }),
        Err(_) => Err(Failure { stage, reason: timed_out(limit), server_talking: false }),
    }
}

/// Verifies the configured host name against the public web PKI roots (or the tests' CA).
fn tls_parameters(relay: &Relay<'_>) -> Result<TlsParameters, lettre::transport::smtp::Error> {
    let builder = TlsParameters::builder(relay.host.to_string());
    let builder = match relay.trusted_root {
        Some(der) => {
            builder.certificate_store(CertificateStore::None).add_root_certificate(Certificate::from_der(der.to_vec())?)
        }
        None => builder.certificate_store(CertificateStore::WebpkiRoots),
    };
    builder.build_rustls()
}

/// Runs one step under its time limit, naming the step when it fails.
async fn within<T>(
    stage: SmtpStage,
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, StageError> {
    step(stage, limit, work).await.map_err(|failure| (failure.stage, failure.reason))
}

fn timed_out(limit: Duration) -> String {
    format!("timed out after {limit:?}")
}

/// lettre's description of a failure (kind, reply code, the server's reply or the I/O or TLS
/// error), on one line and cut short. lettre's errors hold nothing we sent: credentials print
/// as `Credentials`, commands are not kept.
fn describe(error: &lettre::transport::smtp::Error) -> String {
    // A failed TLS upgrade is a connection error wrapping a connection error.
    let text = error.to_string();
    shorten(
        text.strip_prefix("Connection error: ").filter(|rest| rest.starts_with("Connection error: ")).unwrap_or(&text),
    )
}

/// The server's reply lines joined on one line, cut short.
fn reply_text(reply: &Response) -> String {
    shorten(&reply.message().collect::<Vec<_>>().join(" / "))
}

fn shorten(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= MAX_REASON_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_REASON_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_or_multiline_reasons_are_cut_to_one_short_line() {
        assert_eq!(shorten("550 no\r\nsuch user"), "550 no  such user");
        let long = shorten(&"é".repeat(500));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
