//! What keeps a browser from being turned against the server: DNS rebinding (a page on an
//! attacker's name that resolves to this server) is refused by the `Host` check; cross-site
//! requests that change state (forms, `text/plain` and body-less POSTs a page can send without a
//! preflight) are refused by the `Origin`/`Sec-Fetch-Site` check; and every answer carries
//! `nosniff`, a restrictive CSP and no framing, so a stored file cannot run as a page of the API's
//! origin. CORS is off: no answer grants another origin access.

use crate::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The API answers JSON; nothing in it should load, run or be framed. Answers that are pages
/// (the drift report) set their own policy.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[derive(Debug, Clone, Default)]
pub struct BrowserGuard {
    /// Lower-case names from `server.allowed_hosts`; `*.x` entries match subdomains of x.
    allowed_hosts: Vec<String>,
    /// Lower-case `scheme://host[:port]` from `server.allowed_origins`.
    allowed_origins: Vec<String>,
}

impl BrowserGuard {
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> BrowserGuard {
        let lower = |items: &[String]| {
            items.iter().map(|item| item.trim().trim_end_matches('/').to_ascii_lowercase()).collect::<Vec<_>>()
        };
        BrowserGuard { allowed_hosts: lower(allowed_hosts), allowed_origins: lower(allowed_origins) }
    }

    /// A name is allowed when it is an address (typing an address is no rebinding), `localhost`
    /// or below it, or listed.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
        {
            return true;
        }
        self.allowed_hosts.iter().any(|allowed| {
            if allowed == "*" {
                return true;
            }
            match allowed.strip_prefix("*.") {
                Some(suffix) => name.ends_with(&format!(".{suffix}")),
                None => *allowed == name,
            }
        })
    }

    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        // HTTP/1.0 clients may omit Host; browsers never do, so rebinding needs one.
        let host = headers.get(header::HOST).map(|value| value.to_str().unwrap_or("\u{0}"));
        if let Some(authority) = host {
            if !self.host_allowed(host_name(authority)) {
                return Err(ApiError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "the Host header `{}` is not a name of this server; an operator can add it to \
                         server.allowed_hosts",
                        authority.escape_debug()
                    ),
                ));
            }
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
            return Ok(());
        }
        let origin = headers.get(header::ORIGIN).and_then(|value| value.to_str().ok());
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|site| site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"));
        let allowed = match origin {
            Some(origin) => self.origin_allowed(origin, host),
            None => !cross_site,
        };
        if allowed {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!(
                "cross-origin {method} refused: origin `{}` is not this server's; an operator can add it to \
                 server.allowed_origins",
                origin.unwrap_or("(sent by another site)").escape_debug()
            ),
        ))
    }

    /// Same origin (its authority is the request's `Host`) or listed. `null` (sandboxed pages,
    /// some redirects) is never allowed.
    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        match (authority, host) {
            (Some(authority), Some(host)) => authority == host.to_ascii_lowercase(),
            _ => false,
        }
    }
}

/// The name part of a `Host` value: `[::1]:8080` → `[::1]`, `example.com:80` → `example.com`.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.rsplit_once(':').map_or(authority, |(name, _)| name)
}

/// Middleware for every request: the checks above, then the safety headers on the answer.
pub async fn guard(State(guard): State<Arc<BrowserGuard>>, request: Request, next: Next) -> Response {
    if let Err(refused) = guard.check(request.method(), request.headers()) {
        let mut response = refused.into_response();
        add_safety_headers(response.headers_mut());
        return response;
    }
    let mut response = next.run(request).await;
    add_safety_headers(response.headers_mut());
    response
}

fn add_safety_headers(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn hosts_are_addresses_localhost_or_listed() {
        let guard = BrowserGuard::new(&["keelson.corp.example".into(), "*.ml.example".into()], &[]);
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.0.0.5",
            "localhost:8080",
            "app.localhost",
            "keelson.corp.example",
            "a.ml.example:443",
        ] {
            assert!(guard.check(&Method::GET, &headers(&[("host", host)])).is_ok(), "{host}");
        }
        for host in ["attacker.example:8080", "ml.example", "evilml.example", "keelson.corp.example.evil"] {
            let refused = guard.check(&Method::GET, &headers(&[("host", host)])).unwrap_err();
            assert_eq!(refused.code, ErrorCode::PermissionDenied, "{host}");
            assert!(refused.message.contains("server.allowed_hosts"), "{}", refused.message);
        }
        let any = BrowserGuard::new(&["*".into()], &[]);
        assert!(any.check(&Method::GET, &headers(&[("host", "whatever.example")])).is_ok());
    }

    #[test]
    fn state_changes_need_the_same_origin_or_a_listed_one() {
        let guard = BrowserGuard::new(&[], &["https://ui.corp.example".into()]);
        let host = ("host", "127.0.0.1:8080");
        assert!(guard.check(&Method::POST, &headers(&[host])).is_ok(), "no Origin: not a browser");
        assert!(guard.check(&Method::POST, &headers(&[host, ("origin", "http://127.0.0.1:8080")])).is_ok());
        assert!(guard.check(&Method::DELETE, &headers(&[host, ("origin", "https://ui.corp.example")])).is_ok());
        assert!(guard.check(&Method::GET, &headers(&[host, ("origin", "https://evil.example")])).is_ok());
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("origin", "http://127.0.0.1:9999"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let refused = guard.check(&Method::POST, &headers(&[host, (name, value)])).unwrap_err();
            assert_eq!(refused.code, ErrorCode::PermissionDenied, "{name}: {value}");
        }
    }
}
