//! A small HTTP client for the commands that act on a running server (`keelson model …`), so
//! they work the same against a local quickstart and a remote deployment.

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use serde_json::Value;

pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!("--server must be an http:// or https:// URL, got `{base}`"));
        }
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build()?;
        Ok(Self { base, token: token.filter(|t| !t.is_empty()), http })
    }

    /// Sends a request and returns the JSON answer; an error answer becomes an error carrying
    /// the server's code and message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !status.is_success() {
            let code = json.get("error_code").and_then(Value::as_str).unwrap_or("ERROR");
            let message = json.get("message").and_then(Value::as_str).unwrap_or(&text);
            return Err(anyhow!("{method} {path} failed ({status}, {code}): {message}"));
        }
        Ok(json)
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.call(Method::GET, path, query, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }

    /// Raw bytes of a GET (artifact downloads).
    pub async fn download(&self, path: &str) -> Result<bytes::Bytes> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(anyhow!("GET {path} failed ({status}): {}", response.text().await.unwrap_or_default()));
        }
        Ok(response.bytes().await?)
    }

    /// Uploads bytes with PUT (artifact uploads).
    pub async fn upload(&self, path: &str, data: Vec<u8>) -> Result<()> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.put(&url).body(data);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(anyhow!("PUT {path} failed ({status}): {}", response.text().await.unwrap_or_default()));
        }
        Ok(())
    }
}

/// The exit status of a client command: its error on standard error and 1, or success.
pub fn exit_code(outcome: Result<()>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// A JSON file named on the command line (`-` for standard input); `what` names it in errors.
pub fn read_json_file(file: &std::path::Path, what: &str) -> Result<Value> {
    use std::io::Read;
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("the {what} is not valid JSON"))
}

/// Percent-encodes one path segment (model names may hold spaces and other characters).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
