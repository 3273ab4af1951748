//! Email against the loopback SMTP server of servers.rs, in clear (`security: none`, which the
//! configuration allows with a password only on loopback). STARTTLS and implicit TLS need a
//! trusted certificate and are covered in-crate (src/notify/email_tls_tests.rs).

use base64::Engine as _;
use keelson_core::secrets::StaticSecrets;
use keelson_egress::EgressPolicy;
use keelson_monitor::notify::{
    send, Channel, ChannelKind, DeliveryStatus, EmailChannel, NotifyError, Security, SmtpStage,
};

use super::servers::{smtp_once, SmtpScript, LIMIT, LONG_AUTH_REFUSAL};
use super::{notification, send_on_loopback};

const PASSWORD: &str = "s3cret pass";

fn secrets() -> StaticSecrets {
    crate::secrets(&[("smtp-password", PASSWORD)])
}

fn email_to(host: &str, port: u16) -> Channel {
    Channel::Email(EmailChannel {
        smtp_host: host.to_string(),
        smtp_port: Some(port),
        security: Security::None,
        username: Some("alerts".to_string()),
        password_secret: Some("smtp-password".to_string()),
        password_env: None,
        from: "keelson@example.com".to_string(),
        to: vec!["oncall@example.com".to_string(), "ml-team@example.org".to_string()],
    })
}

fn email(port: u16) -> Channel {
    email_to("127.0.0.1", port)
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Neither the message nor the Debug form of an error holds the password.
fn assert_no_password(err: &NotifyError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(PASSWORD) && !shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains(&b64(&format!("\0alerts\0{PASSWORD}"))), "{shown}");
    }
}

#[tokio::test]
async fn email_goes_through_a_full_smtp_session() {
    let (port, server) = smtp_once(SmtpScript::accepting()).await;
    let delivery = send_on_loopback(&email(port), &notification(), &secrets()).await.unwrap();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();

    assert_eq!(delivery.channel, ChannelKind::Email);
    assert_eq!(delivery.target, "oncall@example.com, ml-team@example.org");
    assert_eq!(delivery.status, DeliveryStatus::Smtp { code: 250, reply: "2.0.0 Ok: queued as 4F2A".to_string() });

    let commands = &session.commands;
    assert!(commands[0].starts_with("EHLO [127.0.0.1]"), "{commands:?}");
    assert_eq!(
        commands[1..],
        [
            format!("AUTH PLAIN {}", b64(&format!("\0alerts\0{PASSWORD}"))),
            "MAIL FROM:<keelson@example.com>".to_string(),
            "RCPT TO:<oncall@example.com>".to_string(),
            "RCPT TO:<ml-team@example.org>".to_string(),
            "DATA".to_string(),
            "QUIT".to_string(),
        ]
    );

    let data = String::from_utf8(session.data).unwrap();
    // CRLF everywhere: no bare LF or CR.
    assert!(!data.replace("\r\n", "").contains(['\r', '\n']), "{data:?}");
    assert!(data.ends_with("\r\n.\r\n"));
    // The body's last line ends the data: no empty line added before the final dot.
    assert!(!data.ends_with("\r\n\r\n.\r\n"), "{data:?}");
    let (headers, body) = data.split_once("\r\n\r\n").unwrap();
    for name in [
        "Date: ",
        "From: keelson@example.com",
        "To: oncall@example.com, ml-team@example.org",
        "Subject: [Keelson critical] churn-model-drift: Drift in 3 of 12 features",
        "Message-ID: <",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "X-Keelson-Alert-Id: alrt-0192",
    ] {
        assert!(headers.lines().any(|l| l.starts_with(name)), "missing {name:?} in {headers}");
    }
    // Dot-stuffing: ".dotted line" and the lone "." of the summary gained a dot on the wire.
    assert!(body.contains("\r\n..dotted line\r\n..\r\nlast\r\n"), "{body}");
    assert!(body.contains("https://keelson.example/reports/r-17"));
    assert!(body.contains("\"psi\": 0.31"));
}

#[tokio::test]
async fn auth_login_is_used_when_plain_is_not_offered() {
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH LOGIN", ..SmtpScript::accepting() }).await;
    send_on_loopback(&email(port), &notification(), &secrets()).await.unwrap();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(session.commands[1..4], ["AUTH LOGIN".to_string(), b64("alerts"), b64(PASSWORD)]);
    assert_eq!(session.commands[4], "MAIL FROM:<keelson@example.com>");
}

#[tokio::test]
async fn refused_recipient_names_the_step_and_the_reply() {
    let (port, server) =
        smtp_once(SmtpScript { reject_rcpt: Some("ml-team@example.org"), ..SmtpScript::accepting() }).await;
    let err = send_on_loopback(&email(port), &notification(), &secrets()).await.unwrap_err();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    let NotifyError::Smtp { stage, server, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*stage, SmtpStage::Send);
    assert_eq!(server, &format!("127.0.0.1:{port}"));
    let message = err.to_string();
    assert!(message.starts_with("email to oncall@example.com, ml-team@example.org via 127.0.0.1:"), "{message}");
    assert!(message.contains("failed at sending the message"), "{message}");
    assert!(message.contains("(550)"), "{message}");
    assert!(message.contains("5.1.1 <ml-team@example.org>: Recipient address rejected"), "{message}");
    assert_no_password(&err);
    // No message after a refusal, but a polite goodbye.
    assert!(!session.commands.iter().any(|c| c == "DATA"));
    assert_eq!(session.commands.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn refused_login_is_short_and_keeps_the_password_out() {
    let (port, server) = smtp_once(SmtpScript { reject_auth: true, ..SmtpScript::accepting() }).await;
    let err = send_on_loopback(&email(port), &notification(), &secrets()).await.unwrap_err();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    let NotifyError::Smtp { stage, reason, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*stage, SmtpStage::Auth);
    assert!(reason.contains("(535)") && reason.contains("Authentication credentials invalid"), "{reason}");
    // The server's long explanation is cut, not repeated.
    assert!(reason.chars().count() <= 201, "{} chars: {reason}", reason.chars().count());
    assert!(LONG_AUTH_REFUSAL.len() > 300);
    assert_no_password(&err);
    assert!(!session.commands.iter().any(|c| c.starts_with("MAIL")), "{:?}", session.commands);
    assert_eq!(session.commands.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn login_is_refused_without_a_mechanism_we_speak() {
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH CRAM-MD5", ..SmtpScript::accepting() }).await;
    let err = send_on_loopback(&email(port), &notification(), &secrets()).await.unwrap_err();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(err.to_string().contains("failed at AUTH: a username is configured but the server offers neither"));
    assert_eq!(session.commands[1..], ["QUIT".to_string()]);
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    let (port, server) = smtp_once(SmtpScript::accepting()).await;
    let Channel::Email(mut config) = email(port) else { unreachable!() };
    config.security = Security::Starttls;
    let err = send_on_loopback(&Channel::Email(config), &notification(), &secrets()).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("failed at STARTTLS"), "{message}");
    assert!(message.contains("does not offer STARTTLS; refusing to continue in clear text"), "{message}");
    // No credentials were sent: EHLO, then goodbye.
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(session.commands.len(), 2, "{:?}", session.commands);
    assert!(session.commands[0].starts_with("EHLO "));
    assert_eq!(session.commands[1], "QUIT");
}

#[tokio::test]
async fn missing_password_secret_is_named_without_any_value() {
    // A store with other secrets, one of them the value the password would have had.
    let store = crate::secrets(&[("other-secret", PASSWORD)]);
    // Nothing listens on port 9: the lookup fails first, before any connection.
    let err = send_on_loopback(&email(9), &notification(), &store).await.unwrap_err();
    let NotifyError::MissingSecret { field, name } = &err else { panic!("{err:?}") };
    assert_eq!((*field, name.as_str()), ("password_secret", "smtp-password"));
    let message = err.to_string();
    assert!(message.contains("`smtp-password`"), "{message}");
    assert!(message.contains("`password_secret`"), "{message}");
    assert!(message.contains("PUT /api/v1/secrets/smtp-password"), "{message}");
    assert_no_password(&err);
}

#[tokio::test]
async fn password_env_is_refused_before_anything_is_read() {
    let Channel::Email(mut config) = email(9) else { unreachable!() };
    config.password_secret = None;
    config.password_env = Some("PATH".to_string());
    let err = send_on_loopback(&Channel::Email(config), &notification(), &secrets()).await.unwrap_err();
    assert!(matches!(err, NotifyError::InvalidChannel(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("`password_env` is no longer supported"), "{message}");
    assert!(message.contains("PUT /api/v1/secrets/{name}"), "{message}");
    assert!(message.contains("`password_secret`"), "{message}");
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = send_on_loopback(&email(port), &notification(), &secrets()).await.unwrap_err();
    assert!(err.to_string().contains(&format!("via 127.0.0.1:{port} failed at connect")), "{err}");
}

#[tokio::test]
async fn default_policy_refuses_smtp_hosts_on_loopback_before_connecting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let policy = EgressPolicy::default();
    let http = policy.client().unwrap();
    for host in ["127.0.0.1", "localhost", "[::1]"] {
        let err = send(&email_to(host, port), &notification(), &http, &policy, &secrets()).await.unwrap_err();
        let NotifyError::Smtp { stage, .. } = &err else { panic!("{host}: {err:?}") };
        assert_eq!(*stage, SmtpStage::Egress, "{host}");
        let message = err.to_string();
        assert!(message.contains("failed at the egress check"), "{host}: {message}");
        assert!(message.contains("egress.allow_cidrs"), "{host}: {message}");
    }
    // Nobody knocked.
    let knocked = tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
    assert!(knocked.is_err(), "the refused host was connected to");
}

#[tokio::test]
async fn non_ascii_alerts_are_encoded() {
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH PLAIN", ..SmtpScript::accepting() }).await;
    let mut n = notification();
    n.title = "Dérive détectée — âge".to_string();
    n.summary = "Écart de 31 % sur « âge ».".to_string();
    send_on_loopback(&email(port), &n, &secrets()).await.unwrap();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    // Everything on the wire is ASCII: RFC 2047 subject, quoted-printable body.
    assert!(session.data.is_ascii());
    let data = String::from_utf8(session.data).unwrap();
    assert!(data.contains("\r\nSubject: =?UTF-8?B?"), "{data}");
    assert!(data.contains("Content-Transfer-Encoding: quoted-printable"));
    assert!(data.contains("=C3=89cart de 31 % sur =C2=AB =C3=A2ge =C2=BB."), "{data}");
}
