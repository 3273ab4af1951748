//! Minimal loopback servers: each serves one connection, answers from a script and hands back
//! what the client sent. Every read is bounded so a client bug fails the test instead of hanging.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const LIMIT: Duration = Duration::from_secs(5);

pub struct HttpRequest {
    pub request_line: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Serves one HTTP/1.1 request with `status` and `body`; returns the base URL.
pub async fn http_once(status: u16, body: String) -> (String, JoinHandle<HttpRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (socket, _) = tokio::time::timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
        let mut reader = BufReader::new(socket);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).await.unwrap();
        let mut headers = HashMap::new();
        for _ in 0..100 {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
        }
        let length: usize = headers.get("content-length").map_or(0, |v| v.parse().unwrap());
        let mut request_body = vec![0; length];
        reader.read_exact(&mut request_body).await.unwrap();
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        reader.get_mut().write_all(answer.as_bytes()).await.unwrap();
        reader.get_mut().shutdown().await.unwrap();
        HttpRequest { request_line: request_line.trim_end().to_string(), headers, body: request_body }
    });
    (url, handle)
}

/// How the test SMTP server behaves.
pub struct SmtpScript {
    /// The AUTH line of the EHLO reply, e.g. "AUTH PLAIN LOGIN"; none when empty.
    pub auth: &'static str,
    /// A recipient refused with 550.
    pub reject_rcpt: Option<&'static str>,
    /// Refuses every login with a 535 and a long explanation.
    pub reject_auth: bool,
}

impl SmtpScript {
    /// AUTH PLAIN and LOGIN offered, everything accepted.
    pub fn accepting() -> SmtpScript {
        SmtpScript { auth: "AUTH PLAIN LOGIN", reject_rcpt: None, reject_auth: false }
    }
}

/// The explanation of a refused login: longer than an error should repeat.
pub const LONG_AUTH_REFUSAL: &str = "535 5.7.8 Authentication credentials invalid; \
    see https://mx.test/help for the many reasons this can happen, which we list here at length so \
    that the whole reply is far longer than anything a client should echo into its own error \
    messages or logs, because the server is not the client's to quote, and a line this long \
    is what a chatty or hostile server could send";

pub struct SmtpSession {
    /// Every command line the client sent (without CRLF), in order; the message is not in it.
    pub commands: Vec<String>,
    /// The raw DATA bytes up to and including the terminating `.` line.
    pub data: Vec<u8>,
}

/// Serves one SMTP session; returns the port.
pub async fn smtp_once(script: SmtpScript) -> (u16, JoinHandle<SmtpSession>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (socket, _) = tokio::time::timeout(LIMIT, listener.accept()).await.unwrap().unwrap();
        let mut conn = BufReader::new(socket);
        let mut session = SmtpSession { commands: Vec::new(), data: Vec::new() };
        conn.get_mut().write_all(b"220 mx.test ESMTP ready\r\n").await.unwrap();
        for _ in 0..50 {
            let mut raw = Vec::new();
            let n = conn.read_until(b'\n', &mut raw).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(raw.ends_with(b"\r\n"), "command without CRLF: {raw:?}");
            let line = String::from_utf8(raw[..raw.len() - 2].to_vec()).unwrap();
            session.commands.push(line.clone());
            let verb = line.split([' ', ':']).next().unwrap().to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => {
                    let mut r = "250-mx.test greets you\r\n250-PIPELINING\r\n".to_string();
                    if !script.auth.is_empty() {
                        r.push_str(&format!("250-{}\r\n", script.auth));
                    }
                    r.push_str("250 8BITMIME\r\n");
                    r
                }
                "AUTH" if script.reject_auth => format!("{LONG_AUTH_REFUSAL}\r\n"),
                "AUTH" if line.starts_with("AUTH LOGIN") => "334 VXNlcm5hbWU6\r\n".into(),
                "AUTH" => "235 2.7.0 Authentication successful\r\n".into(),
                "MAIL" => "250 2.1.0 Ok\r\n".into(),
                "RCPT" => match script.reject_rcpt {
                    Some(bad) if line.contains(bad) => {
                        format!("550 5.1.1 <{bad}>: Recipient address rejected: User unknown\r\n")
                    }
                    _ => "250 2.1.5 Ok\r\n".into(),
                },
                "DATA" => {
                    conn.get_mut().write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.unwrap();
                    while !session.data.ends_with(b"\r\n.\r\n") {
                        let n = conn.read_until(b'\n', &mut session.data).await.unwrap();
                        assert!(n > 0, "connection closed inside DATA");
                        assert!(session.data.len() < 1 << 20);
                    }
                    "250 2.0.0 Ok: queued as 4F2A\r\n".into()
                }
                "QUIT" => {
                    conn.get_mut().write_all(b"221 2.0.0 Bye\r\n").await.unwrap();
                    break;
                }
                // AUTH LOGIN continuation lines (base64 user, then password).
                _ if session.commands.iter().any(|c| c == "AUTH LOGIN") => {
                    let after = session.commands.iter().rev().take_while(|c| *c != "AUTH LOGIN").count();
                    if after == 1 {
                        "334 UGFzc3dvcmQ6\r\n".into()
                    } else {
                        "235 2.7.0 Authentication successful\r\n".into()
                    }
                }
                _ => "502 5.5.2 Error: command not recognized\r\n".into(),
            };
            conn.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
        session
    });
    (port, handle)
}
