//! Email delivery over TLS against a loopback server holding a certificate from a test CA
//! (testdata/smtp-tls): STARTTLS (credentials only after the upgrade, EHLO asked again) and
//! implicit TLS, the refusal of a certificate the public roots do not vouch for, and of one that
//! names another host. In-crate because the test CA is trusted through [`Relay::trusted_root`],
//! which configuration cannot set.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::email::{deliver, Relay, Security, SmtpStage};

const CA: &[u8] = include_bytes!("../../testdata/smtp-tls/ca.der");
const CERT: &[u8] = include_bytes!("../../testdata/smtp-tls/localhost.der");
const KEY: &[u8] = include_bytes!("../../testdata/smtp-tls/localhost.key.der");
const LIMIT: Duration = Duration::from_secs(5);

fn acceptor() -> TlsAcceptor {
    let key = PrivateKeyDer::try_from(KEY.to_vec()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(CERT.to_vec())], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

async fn line<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> String {
    let mut raw = String::new();
    tokio::time::timeout(LIMIT, stream.read_line(&mut raw)).await.unwrap().unwrap();
    raw.trim_end_matches("\r\n").to_string()
}

/// The secured part of a session: EHLO offering AUTH PLAIN, then a plain transaction.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(stream: S, commands: &mut Vec<String>) {
    let mut stream = BufReader::new(stream);
    for _ in 0..20 {
        let command = line(&mut stream).await;
        commands.push(command.clone());
        let reply: &[u8] = match command.split(' ').next().unwrap_or_default() {
            "EHLO" => b"250-mx.test\r\n250 AUTH PLAIN\r\n",
            "AUTH" => b"235 ok\r\n",
            "MAIL" | "RCPT" => b"250 ok\r\n",
            "DATA" => {
                stream.get_mut().write_all(b"354 go\r\n").await.unwrap();
                while line(&mut stream).await != "." {}
                b"250 queued over TLS\r\n"
            }
            "QUIT" => {
                stream.get_mut().write_all(b"221 bye\r\n").await.unwrap();
                stream.get_mut().shutdown().await.unwrap();
                return;
            }
            _ => b"502 no\r\n",
        };
        stream.get_mut().write_all(reply).await.unwrap();
    }
}

fn envelope() -> Envelope {
    Envelope::new(Some("keelson@example.com".parse().unwrap()), vec!["oncall@example.com".parse().unwrap()]).unwrap()
}

fn credentials() -> Credentials {
    Credentials::new("alerts".to_string(), "pw".to_string())
}

async fn run_client(
    host: &str,
    port: u16,
    security: Security,
    trusted_root: Option<&[u8]>,
) -> Result<(u16, String), (SmtpStage, String)> {
    let addresses = [SocketAddr::from((Ipv4Addr::LOCALHOST, port))];
    let relay = Relay { host, addresses: &addresses, security, connect_timeout: LIMIT, trusted_root };
    let reply = deliver(&relay, Some(&credentials()), &envelope(), b"Subject: t\r\n\r\nbody").await?;
    Ok((u16::from(reply.code()), reply.message().collect::<Vec<_>>().join(" / ")))
}

async fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[tokio::test]
async fn starttls_upgrades_before_credentials() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut plain = BufReader::new(tcp);
        let mut clear = Vec::new();
        plain.get_mut().write_all(b"220 mx.test\r\n").await.unwrap();
        clear.push(line(&mut plain).await);
        // AUTH offered in clear to see that the client waits for TLS anyway.
        plain.get_mut().write_all(b"250-mx.test\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n").await.unwrap();
        clear.push(line(&mut plain).await);
        plain.get_mut().write_all(b"220 ready\r\n").await.unwrap();
        let tls = acceptor().accept(plain.into_inner()).await.unwrap();
        let mut secured = Vec::new();
        converse(tls, &mut secured).await;
        (clear, secured)
    });
    // The address is 127.0.0.1; the certificate is checked against the configured name.
    let accepted = run_client("localhost", port, Security::Starttls, Some(CA)).await.unwrap();
    assert_eq!(accepted, (250, "queued over TLS".to_string()));
    let (clear, secured) = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(clear[0].starts_with("EHLO "));
    assert_eq!(clear[1], "STARTTLS");
    assert!(secured[0].starts_with("EHLO "), "EHLO again after TLS: {secured:?}");
    assert!(secured[1].starts_with("AUTH PLAIN "), "{secured:?}");
    assert_eq!(secured.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn implicit_tls_from_the_first_byte() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor().accept(tcp).await.unwrap();
        tls.write_all(b"220 mx.test\r\n").await.unwrap();
        let mut commands = Vec::new();
        converse(tls, &mut commands).await;
        commands
    });
    let accepted = run_client("localhost", port, Security::Tls, Some(CA)).await.unwrap();
    assert_eq!(accepted.0, 250);
    let commands = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(commands[1].starts_with("AUTH PLAIN "), "{commands:?}");
}

/// Accepts one connection and lets the handshake fail on the client's side.
async fn failing_handshake(listener: TcpListener) {
    let (tcp, _) = listener.accept().await.unwrap();
    let _ = acceptor().accept(tcp).await;
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(failing_handshake(listener));
    // The public web PKI roots: the test CA is not among them.
    let (stage, reason) = run_client("localhost", port, Security::Tls, None).await.unwrap_err();
    assert_eq!(stage, SmtpStage::Connect);
    assert!(reason.contains("certificate"), "{reason}");
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(failing_handshake(listener));
    // A trusted certificate, but for `localhost`, not for the name the channel gave.
    let (stage, reason) = run_client("mail.example.com", port, Security::Tls, Some(CA)).await.unwrap_err();
    assert_eq!(stage, SmtpStage::Connect);
    assert!(reason.contains("certificate"), "{reason}");
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn untrusted_certificate_after_starttls_is_refused() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut plain = BufReader::new(tcp);
        plain.get_mut().write_all(b"220 mx.test\r\n").await.unwrap();
        line(&mut plain).await;
        plain.get_mut().write_all(b"250-mx.test\r\n250 STARTTLS\r\n").await.unwrap();
        line(&mut plain).await;
        plain.get_mut().write_all(b"220 ready\r\n").await.unwrap();
        let _ = acceptor().accept(plain.into_inner()).await;
    });
    let (stage, reason) = run_client("localhost", port, Security::Starttls, None).await.unwrap_err();
    assert_eq!(stage, SmtpStage::StartTls);
    assert!(reason.contains("certificate"), "{reason}");
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
}

/// An on-path attacker appends replies to the server's `220` to STARTTLS. lettre (0.11.23)
/// keeps such bytes buffered across the upgrade and reads them as the first replies over TLS,
/// the client-side twin of CVE-2011-0411; our own client refused them. What still holds: the
/// credentials go only inside TLS, to the verified server, and the out-of-step conversation is
/// not reported as a delivery.
#[tokio::test]
async fn replies_injected_before_starttls_neither_expose_credentials_nor_fake_a_delivery() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut plain = BufReader::new(tcp);
        let mut clear = Vec::new();
        plain.get_mut().write_all(b"220 mx.test\r\n").await.unwrap();
        clear.push(line(&mut plain).await);
        plain.get_mut().write_all(b"250-mx.test\r\n250 STARTTLS\r\n").await.unwrap();
        clear.push(line(&mut plain).await);
        plain.get_mut().write_all(b"220 ready\r\n250-injected\r\n250 AUTH LOGIN\r\n").await.unwrap();
        let tls = acceptor().accept(plain.into_inner()).await.unwrap();
        let mut secured = Vec::new();
        // The client may hang up mid-conversation; what it sent so far is what counts.
        let _ = tokio::spawn(async move {
            converse(tls, &mut secured).await;
        })
        .await;
        clear
    });
    let outcome = run_client("localhost", port, Security::Starttls, Some(CA)).await;
    let (stage, reason) = outcome.unwrap_err();
    assert_eq!(stage, SmtpStage::Send, "{reason}");
    assert!(reason.contains("not 250"), "{reason}");
    let clear = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(clear.len(), 2, "{clear:?}");
    assert_eq!(clear[1], "STARTTLS");
}
