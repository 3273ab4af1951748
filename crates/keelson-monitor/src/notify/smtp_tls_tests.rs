//! The SMTP client over TLS against a loopback server holding a certificate from a test CA:
//! STARTTLS (credentials only after the upgrade, EHLO asked again) and implicit TLS, plus the
//! refusal of a certificate the public roots do not vouch for.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::email::Security;
use super::smtp::{deliver, Envelope, Login, Server, SmtpErrorKind, SmtpStage};

const CA: &[u8] = include_bytes!("../../testdata/smtp-tls/ca.der");
const CERT: &[u8] = include_bytes!("../../testdata/smtp-tls/localhost.der");
const KEY: &[u8] = include_bytes!("../../testdata/smtp-tls/localhost.key.der");
const LIMIT: Duration = Duration::from_secs(5);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn acceptor() -> TlsAcceptor {
    let key = PrivateKeyDer::try_from(KEY.to_vec()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(CERT.to_vec())], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn trusting_test_ca() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(CA.to_vec())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
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

async fn run_client(port: u16, security: Security, tls: Option<Arc<rustls::ClientConfig>>) {
    let server = Server { host: "localhost", port, security, tls };
    let login = Login { username: "alerts".to_string(), password: "pw".to_string() };
    let to = vec!["oncall@example.com".to_string()];
    let envelope = Envelope { from: "keelson@example.com", to: &to, message: "Subject: t\r\n\r\nbody\r\n" };
    let reply = deliver(&server, Some(&login), &envelope).await.unwrap();
    assert_eq!((reply.code, reply.text()), (250, "queued over TLS".to_string()));
}

/// Listens on IPv4 loopback; "localhost" may resolve to ::1 first, which the client then skips.
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
        // No AUTH before TLS, as careful servers do.
        plain.get_mut().write_all(b"250-mx.test\r\n250 STARTTLS\r\n").await.unwrap();
        clear.push(line(&mut plain).await);
        plain.get_mut().write_all(b"220 ready\r\n").await.unwrap();
        let tls = acceptor().accept(plain.into_inner()).await.unwrap();
        let mut secured = Vec::new();
        converse(tls, &mut secured).await;
        (clear, secured)
    });
    run_client(port, Security::Starttls, Some(trusting_test_ca())).await;
    let (clear, secured) = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(clear[0].starts_with("EHLO "));
    assert_eq!(clear[1], "STARTTLS");
    assert!(secured[0].starts_with("EHLO "), "EHLO again after TLS");
    assert!(secured[1].starts_with("AUTH PLAIN "));
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
    run_client(port, Security::Tls, Some(trusting_test_ca())).await;
    let commands = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(commands[1].starts_with("AUTH PLAIN "));
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // The handshake fails on the client's side; the server only sees it end.
        let _ = acceptor().accept(tcp).await;
    });
    let server_config = Server {
        host: "localhost",
        port,
        security: Security::Tls,
        // The public web PKI roots: the test CA is not among them.
        tls: None,
    };
    let to = vec!["oncall@example.com".to_string()];
    let envelope = Envelope { from: "keelson@example.com", to: &to, message: "x\r\n" };
    let err = deliver(&server_config, None, &envelope).await.unwrap_err();
    assert_eq!(err.stage, SmtpStage::TlsHandshake);
    assert!(matches!(err.kind, SmtpErrorKind::Io(_)), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn data_sent_in_clear_after_starttls_reply_is_refused() {
    let (listener, port) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut plain = BufReader::new(tcp);
        plain.get_mut().write_all(b"220 mx.test\r\n").await.unwrap();
        line(&mut plain).await;
        plain.get_mut().write_all(b"250-mx.test\r\n250 STARTTLS\r\n").await.unwrap();
        line(&mut plain).await;
        // A man in the middle appends a reply meant to be read as if it came over TLS.
        plain.get_mut().write_all(b"220 ready\r\n250 injected\r\n").await.unwrap();
    });
    let server_config = Server { host: "localhost", port, security: Security::Starttls, tls: Some(trusting_test_ca()) };
    let to = vec!["oncall@example.com".to_string()];
    let envelope = Envelope { from: "keelson@example.com", to: &to, message: "x\r\n" };
    let err = deliver(&server_config, None, &envelope).await.unwrap_err();
    assert_eq!(err.stage, SmtpStage::StartTls);
    assert!(err.to_string().contains("sent data after its STARTTLS reply"), "{err}");
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
}
