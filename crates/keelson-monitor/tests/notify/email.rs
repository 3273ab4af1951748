use base64::Engine as _;
use keelson_monitor::notify::{
    send_with_secrets, Channel, ChannelKind, DeliveryStatus, EmailChannel, NotifyError, Security,
};

use super::notification;
use super::servers::{smtp_once, SmtpScript, LIMIT};

fn secrets(name: &str) -> Option<String> {
    (name == "KEELSON_TEST_SMTP_PASSWORD").then(|| "s3cret pass".to_string())
}

fn email(port: u16) -> Channel {
    Channel::Email(EmailChannel {
        smtp_host: "127.0.0.1".to_string(),
        smtp_port: Some(port),
        security: Security::None,
        username: Some("alerts".to_string()),
        password_env: Some("KEELSON_TEST_SMTP_PASSWORD".to_string()),
        from: "keelson@example.com".to_string(),
        to: vec!["oncall@example.com".to_string(), "ml-team@example.org".to_string()],
    })
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn email_goes_through_a_full_smtp_session() {
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH PLAIN LOGIN", reject_rcpt: None }).await;
    let http = crate::loopback_http();
    let delivery = send_with_secrets(&email(port), &notification(), &http, &secrets).await.unwrap();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();

    assert_eq!(delivery.channel, ChannelKind::Email);
    assert_eq!(delivery.target, "oncall@example.com, ml-team@example.org");
    assert_eq!(delivery.status, DeliveryStatus::Smtp { code: 250, reply: "2.0.0 Ok: queued as 4F2A".to_string() });

    let commands = &session.commands;
    assert!(commands[0].starts_with("EHLO [127.0.0.1]"), "{commands:?}");
    assert_eq!(
        commands[1..],
        [
            format!("AUTH PLAIN {}", b64("\0alerts\0s3cret pass")),
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
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH LOGIN", reject_rcpt: None }).await;
    send_with_secrets(&email(port), &notification(), &crate::loopback_http(), &secrets).await.unwrap();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(session.commands[1..4], ["AUTH LOGIN".to_string(), b64("alerts"), b64("s3cret pass")]);
    assert_eq!(session.commands[4], "MAIL FROM:<keelson@example.com>");
}

#[tokio::test]
async fn refused_recipient_names_rcpt_and_the_reply() {
    let (port, server) =
        smtp_once(SmtpScript { auth: "AUTH PLAIN LOGIN", reject_rcpt: Some("ml-team@example.org") }).await;
    let err = send_with_secrets(&email(port), &notification(), &crate::loopback_http(), &secrets).await.unwrap_err();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(err, NotifyError::Smtp { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("RCPT TO:<ml-team@example.org>"), "{message}");
    assert!(message.contains("550 5.1.1 <ml-team@example.org>: Recipient address rejected"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    // No message after a refusal, but a polite goodbye.
    assert!(!session.commands.iter().any(|c| c == "DATA"));
    assert_eq!(session.commands.last().unwrap(), "QUIT");
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH PLAIN LOGIN", reject_rcpt: None }).await;
    let Channel::Email(mut config) = email(port) else { unreachable!() };
    config.security = Security::Starttls;
    let err = send_with_secrets(&Channel::Email(config), &notification(), &crate::loopback_http(), &secrets)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("STARTTLS"), "{message}");
    assert!(message.contains("does not offer STARTTLS"), "{message}");
    // The server's task ends when the client hangs up; no credentials were sent.
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert_eq!(session.commands.len(), 1, "{:?}", session.commands);
}

#[tokio::test]
async fn missing_password_variable_is_named() {
    let err = send_with_secrets(&email(9), &notification(), &crate::loopback_http(), &|_| None).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("KEELSON_TEST_SMTP_PASSWORD"), "{message}");
    assert!(message.contains("password_env"), "{message}");
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = send_with_secrets(&email(port), &notification(), &crate::loopback_http(), &secrets).await.unwrap_err();
    assert!(err.to_string().contains("SMTP connect"), "{err}");
}

#[tokio::test]
async fn non_ascii_alerts_are_encoded() {
    let (port, server) = smtp_once(SmtpScript { auth: "AUTH PLAIN", reject_rcpt: None }).await;
    let mut n = notification();
    n.title = "Dérive détectée — âge".to_string();
    n.summary = "Écart de 31 % sur « âge ».".to_string();
    send_with_secrets(&email(port), &n, &crate::loopback_http(), &secrets).await.unwrap();
    let session = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    // Everything on the wire is ASCII: RFC 2047 subject, quoted-printable body.
    assert!(session.data.is_ascii());
    let data = String::from_utf8(session.data).unwrap();
    assert!(data.contains("\r\nSubject: =?UTF-8?B?"), "{data}");
    assert!(data.contains("Content-Transfer-Encoding: quoted-printable"));
    assert!(data.contains("=C3=89cart de 31 % sur =C2=AB =C3=A2ge =C2=BB."), "{data}");
}
