//! A small async SMTP client (RFC 5321) for sending one message per connection: greeting, EHLO,
//! STARTTLS (RFC 3207) or implicit TLS (RFC 8314), AUTH PLAIN or LOGIN (RFC 4954), MAIL, RCPT per
//! recipient, DATA with dot-stuffing, QUIT.
//!
//! Every reply code is checked against the codes the RFC allows at that stage, and every failure
//! names the stage and the server's reply. Every read and write is bounded by a timeout. Nothing
//! sent (which includes credentials) is ever put in an error or a log line.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::email::Security;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per command: write it, read the whole reply.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The end of DATA is when servers run their filters; RFC 5321 allows minutes, we allow this.
const DATA_END_TIMEOUT: Duration = Duration::from_secs(30);
/// QUIT after a delivery is a courtesy; the message is already accepted.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds on what we buffer from a server: RFC 5321 reply lines are at most 512 bytes.
const MAX_REPLY_LINE: u64 = 2048;
const MAX_REPLY_LINES: usize = 100;

/// The step of the SMTP conversation an error happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpStage {
    Connect,
    TlsHandshake,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo {
        recipient: String,
    },
    Data,
    /// Sending the message and the server's reply to its end.
    Message,
}

impl fmt::Display for SmtpStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpStage::Connect => f.write_str("connect"),
            SmtpStage::TlsHandshake => f.write_str("TLS handshake"),
            SmtpStage::Greeting => f.write_str("greeting"),
            SmtpStage::Ehlo => f.write_str("EHLO"),
            SmtpStage::StartTls => f.write_str("STARTTLS"),
            SmtpStage::Auth => f.write_str("AUTH"),
            SmtpStage::MailFrom => f.write_str("MAIL FROM"),
            SmtpStage::RcptTo { recipient } => write!(f, "RCPT TO:<{recipient}>"),
            SmtpStage::Data => f.write_str("DATA"),
            SmtpStage::Message => f.write_str("end of DATA"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("SMTP {stage}: {kind}")]
pub struct SmtpError {
    pub stage: SmtpStage,
    pub kind: SmtpErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpErrorKind {
    #[error("server replied {code} {text}")]
    Reply { code: u16, text: String },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Protocol(String),
}

/// A complete (possibly multi-line) reply.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub code: u16,
    /// The text of each line, after the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

pub(super) struct Server<'a> {
    pub host: &'a str,
    pub port: u16,
    pub security: Security,
    /// TLS settings; `None` means the public web PKI roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

pub(super) struct Login {
    pub username: String,
    pub password: String,
}

pub(super) struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    /// The RFC 5322 message, CRLF line endings, not yet dot-stuffed.
    pub message: &'a str,
}

/// Sends one message; returns the server's acceptance of it (the reply to the end of DATA).
pub(super) async fn deliver(
    server: &Server<'_>,
    login: Option<&Login>,
    envelope: &Envelope<'_>,
) -> Result<Reply, SmtpError> {
    let (mut conn, extensions) = open(server).await?;
    let result = transaction(&mut conn, &extensions, login, envelope).await;
    // A server that refused something is still talking and gets a polite QUIT; one that timed
    // out or dropped the connection does not.
    if matches!(&result, Ok(_) | Err(SmtpError { kind: SmtpErrorKind::Reply { .. }, .. })) {
        conn.quit().await;
    }
    result
}

/// Connects, reads the greeting, says EHLO and secures the connection as configured.
async fn open(server: &Server<'_>) -> Result<(Connection, Extensions), SmtpError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((server.host, server.port)))
        .await
        .map_err(|_| fail(SmtpStage::Connect, SmtpErrorKind::Timeout(CONNECT_TIMEOUT)))?
        .map_err(|e| fail(SmtpStage::Connect, e.into()))?;
    let client_name = match tcp.local_addr() {
        Ok(addr) => address_literal(addr.ip()),
        Err(_) => "[127.0.0.1]".to_string(),
    };

    let mut conn = match server.security {
        Security::Tls => Connection::new(Box::new(tls_handshake(server, tcp).await?)),
        Security::Starttls | Security::None => Connection::new(Box::new(tcp)),
    };
    conn.expect(SmtpStage::Greeting, &[220], COMMAND_TIMEOUT).await?;
    let mut extensions = conn.ehlo(&client_name).await?;

    if server.security == Security::Starttls {
        if !extensions.starttls {
            return Err(fail(
                SmtpStage::StartTls,
                SmtpErrorKind::Protocol(
                    "the server does not offer STARTTLS; refusing to continue in clear text".to_string(),
                ),
            ));
        }
        conn.command(SmtpStage::StartTls, "STARTTLS", &[220]).await?;
        conn = conn.upgrade(server).await?;
        // RFC 3207: forget everything learnt before TLS and ask again.
        extensions = conn.ehlo(&client_name).await?;
    }
    Ok((conn, extensions))
}

async fn transaction(
    conn: &mut Connection,
    extensions: &Extensions,
    login: Option<&Login>,
    envelope: &Envelope<'_>,
) -> Result<Reply, SmtpError> {
    if let Some(login) = login {
        conn.authenticate(extensions, login).await?;
    }
    conn.command(SmtpStage::MailFrom, &format!("MAIL FROM:<{}>", envelope.from), &[250]).await?;
    for recipient in envelope.to {
        let stage = SmtpStage::RcptTo { recipient: recipient.clone() };
        conn.command(stage, &format!("RCPT TO:<{recipient}>"), &[250, 251]).await?;
    }
    conn.command(SmtpStage::Data, "DATA", &[354]).await?;
    let mut data = dot_stuff(envelope.message);
    data.push_str(".\r\n");
    conn.write(SmtpStage::Message, data.as_bytes()).await?;
    conn.expect(SmtpStage::Message, &[250], DATA_END_TIMEOUT).await
}

async fn tls_handshake<S>(server: &Server<'_>, stream: S) -> Result<tokio_rustls::client::TlsStream<S>, SmtpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls_fail = |message: String| fail(SmtpStage::TlsHandshake, SmtpErrorKind::Protocol(message));
    let config = match &server.tls {
        Some(config) => config.clone(),
        None => web_pki_config().map_err(|e| tls_fail(format!("TLS setup: {e}")))?,
    };
    let name = ServerName::try_from(server.host.to_string())
        .map_err(|e| tls_fail(format!("{:?} is not a valid TLS server name: {e}", server.host)))?;
    tokio::time::timeout(COMMAND_TIMEOUT, TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| fail(SmtpStage::TlsHandshake, SmtpErrorKind::Timeout(COMMAND_TIMEOUT)))?
        .map_err(|e| fail(SmtpStage::TlsHandshake, e.into()))
}

/// Public web PKI roots with ring, the provider the workspace builds.
fn web_pki_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// RFC 5321 4.1.3: without a host name of our own, EHLO takes our address as a literal.
fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// RFC 5321 4.5.2: a line that starts with a dot gets another, so it cannot end the data.
pub(super) fn dot_stuff(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    if message.starts_with('.') {
        out.push('.');
    }
    out.push_str(&message.replace("\r\n.", "\r\n.."));
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

fn fail(stage: SmtpStage, kind: SmtpErrorKind) -> SmtpError {
    SmtpError { stage, kind }
}

/// What the server's EHLO reply offers that we use.
#[derive(Debug, Default)]
struct Extensions {
    starttls: bool,
    auth_plain: bool,
    auth_login: bool,
}

impl Extensions {
    fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the server's greeting name, the others one extension each.
        for line in reply.lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split([' ', '=']);
            match words.next() {
                Some("STARTTLS") => ext.starttls = true,
                Some("AUTH") => {
                    for mechanism in words {
                        ext.auth_plain |= mechanism == "PLAIN";
                        ext.auth_login |= mechanism == "LOGIN";
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Connection {
    stream: BufReader<Box<dyn Stream>>,
}

impl Connection {
    fn new(stream: Box<dyn Stream>) -> Connection {
        Connection { stream: BufReader::new(stream) }
    }

    /// Switches to TLS after the server's 220 to STARTTLS.
    async fn upgrade(self, server: &Server<'_>) -> Result<Connection, SmtpError> {
        // Anything already buffered was sent in clear before the handshake and would be read as
        // if it came over TLS: the STARTTLS command-injection attack (CVE-2011-0411 and kin).
        if !self.stream.buffer().is_empty() {
            return Err(fail(
                SmtpStage::StartTls,
                SmtpErrorKind::Protocol(
                    "the server sent data after its STARTTLS reply; refusing to continue".to_string(),
                ),
            ));
        }
        let tls = tls_handshake(server, self.stream.into_inner()).await?;
        Ok(Connection::new(Box::new(tls)))
    }

    async fn ehlo(&mut self, client_name: &str) -> Result<Extensions, SmtpError> {
        let reply = self.command(SmtpStage::Ehlo, &format!("EHLO {client_name}"), &[250]).await?;
        Ok(Extensions::parse(&reply))
    }

    async fn authenticate(&mut self, ext: &Extensions, login: &Login) -> Result<(), SmtpError> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        if ext.auth_plain {
            // RFC 4616: authorization identity (empty: same as authentication), user, password.
            let token = b64(&format!("\0{}\0{}", login.username, login.password));
            self.command(SmtpStage::Auth, &format!("AUTH PLAIN {token}"), &[235]).await?;
        } else if ext.auth_login {
            self.command(SmtpStage::Auth, "AUTH LOGIN", &[334]).await?;
            self.command(SmtpStage::Auth, &b64(&login.username), &[334]).await?;
            self.command(SmtpStage::Auth, &b64(&login.password), &[235]).await?;
        } else {
            return Err(fail(
                SmtpStage::Auth,
                SmtpErrorKind::Protocol(
                    "a username is configured but the server offers neither AUTH PLAIN nor AUTH LOGIN".to_string(),
                ),
            ));
        }
        Ok(())
    }

    /// Sends one command line and checks the reply's code.
    async fn command(&mut self, stage: SmtpStage, line: &str, accept: &[u16]) -> Result<Reply, SmtpError> {
        self.write(stage.clone(), format!("{line}\r\n").as_bytes()).await?;
        self.expect(stage, accept, COMMAND_TIMEOUT).await
    }

    async fn write(&mut self, stage: SmtpStage, bytes: &[u8]) -> Result<(), SmtpError> {
        let stream = self.stream.get_mut();
        let written = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(fail(stage, e.into())),
            Err(_) => Err(fail(stage, SmtpErrorKind::Timeout(COMMAND_TIMEOUT))),
        }
    }

    /// Reads a reply and checks its code is one of `accept`.
    async fn expect(&mut self, stage: SmtpStage, accept: &[u16], limit: Duration) -> Result<Reply, SmtpError> {
        let reply = match tokio::time::timeout(limit, self.read_reply()).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(kind)) => return Err(fail(stage, kind)),
            Err(_) => return Err(fail(stage, SmtpErrorKind::Timeout(limit))),
        };
        if !accept.contains(&reply.code) {
            let kind = SmtpErrorKind::Reply { code: reply.code, text: reply.text() };
            return Err(fail(stage, kind));
        }
        Ok(reply)
    }

    /// One reply: lines `NNN-text` continue it, `NNN text` (or bare `NNN`) ends it.
    async fn read_reply(&mut self) -> Result<Reply, SmtpErrorKind> {
        let mut code = None;
        let mut lines = Vec::new();
        loop {
            if lines.len() == MAX_REPLY_LINES {
                return Err(SmtpErrorKind::Protocol(format!("reply longer than {MAX_REPLY_LINES} lines")));
            }
            let mut raw = Vec::new();
            (&mut self.stream).take(MAX_REPLY_LINE).read_until(b'\n', &mut raw).await?;
            if raw.is_empty() {
                return Err(SmtpErrorKind::Protocol("the server closed the connection".to_string()));
            }
            if !raw.ends_with(b"\n") {
                return Err(SmtpErrorKind::Protocol("reply line too long or cut off".to_string()));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let (this_code, last, text) = parse_line(line)?;
            if *code.get_or_insert(this_code) != this_code {
                return Err(SmtpErrorKind::Protocol(format!("reply codes differ within one reply: {line:?}")));
            }
            lines.push(text.to_string());
            if last {
                return Ok(Reply { code: this_code, lines });
            }
        }
    }

    async fn quit(&mut self) {
        let bye = async {
            self.stream.get_mut().write_all(b"QUIT\r\n").await?;
            self.stream.get_mut().flush().await?;
            self.read_reply().await.map(|_| ())
        };
        if let Ok(Err(e)) = tokio::time::timeout(QUIT_TIMEOUT, bye).await {
            tracing::debug!(error = %e, "SMTP QUIT failed after the transaction; ignored");
        }
    }
}

/// `250-text` → (250, false, "text"); `250 text` or `250` → (250, true, ...).
fn parse_line(line: &str) -> Result<(u16, bool, &str), SmtpErrorKind> {
    let bad = || SmtpErrorKind::Protocol(format!("malformed reply line {line:?}"));
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let code: u16 = digits.parse().map_err(|_| bad())?;
    match line.as_bytes().get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_only() {
        assert_eq!(dot_stuff(".a\r\nb.c\r\n.\r\n..d"), "..a\r\nb.c\r\n..\r\n...d\r\n");
    }

    #[test]
    fn reply_lines_parse() {
        assert_eq!(parse_line("250-mx.example").unwrap(), (250, false, "mx.example"));
        assert_eq!(parse_line("250 OK").unwrap(), (250, true, "OK"));
        assert_eq!(parse_line("354").unwrap(), (354, true, ""));
        assert!(parse_line("25").is_err());
        assert!(parse_line("abc def").is_err());
        assert!(parse_line("250+x").is_err());
    }

    #[test]
    fn extensions_are_read_from_ehlo() {
        let reply = Reply {
            code: 250,
            lines: vec!["mx.example greets you".into(), "PIPELINING".into(), "AUTH=LOGIN".into(), "STARTTLS".into()],
        };
        let ext = Extensions::parse(&reply);
        assert!(ext.starttls && ext.auth_login && !ext.auth_plain);
    }
}
