//! The decision: may a server-side request reach this host and address?

use crate::address::special_range;
use ipnet::IpNet;
use keelson_core::config::EgressConfig;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EgressError {
    /// The policy refuses the destination; the message says which setting would allow it.
    #[error("{0}")]
    Refused(String),
    #[error("invalid destination: {0}")]
    InvalidDestination(String),
    #[error("could not resolve host `{0}`")]
    Unresolved(String),
    #[error("the answer is larger than the limit of {limit} bytes (egress.max_response_bytes)")]
    TooLarge { limit: u64 },
    /// The request failed; the message names the kind of failure, never the remote body.
    #[error("{0}")]
    Failed(String),
}

/// A host name pattern from `egress.allow_hosts`: exact, or `*.` and a suffix.
#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    fn parse(text: &str) -> HostPattern {
        let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
        match text.strip_prefix("*.") {
            Some(suffix) => HostPattern::Subdomains(format!(".{suffix}")),
            None => HostPattern::Exact(text),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()),
        }
    }
}

#[derive(Debug)]
struct Rules {
    allow_hosts: Vec<HostPattern>,
    allow_cidrs: Vec<IpNet>,
    allow_public: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_response_bytes: u64,
}

/// Where server-side requests may go; cheap to clone.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    rules: Arc<Rules>,
}

impl Default for EgressPolicy {
    /// The default configuration: public addresses only.
    fn default() -> Self {
        EgressPolicy::from_config(&EgressConfig::default()).unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

impl EgressPolicy {
    /// The policy an `egress` configuration section describes; errors name the bad entry.
    pub fn from_config(config: &EgressConfig) -> Result<EgressPolicy, String> {
        let allow_cidrs = config
            .allow_cidrs
            .iter()
            .map(|cidr| cidr.parse::<IpNet>().map_err(|e| format!("egress.allow_cidrs: `{cidr}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy {
            rules: Arc::new(Rules {
                allow_hosts: config.allow_hosts.iter().map(|h| HostPattern::parse(h)).collect(),
                allow_cidrs,
                allow_public: config.allow_public,
                connect_timeout: Duration::from_millis(config.connect_timeout_ms),
                request_timeout: Duration::from_millis(config.request_timeout_ms),
                max_response_bytes: config.max_response_bytes,
            }),
        })
    }

    /// The default policy with `cidrs` allowed as well: for tests whose receivers listen on
    /// loopback, and for callers that vouch for one destination.
    pub fn allowing(cidrs: &[&str]) -> Result<EgressPolicy, String> {
        let config =
            EgressConfig { allow_cidrs: cidrs.iter().map(|c| c.to_string()).collect(), ..EgressConfig::default() };
        EgressPolicy::from_config(&config)
    }

    pub fn connect_timeout(&self) -> Duration {
        self.rules.connect_timeout
    }

    pub fn request_timeout(&self) -> Duration {
        self.rules.request_timeout
    }

    pub fn max_response_bytes(&self) -> u64 {
        self.rules.max_response_bytes
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.allow_hosts.iter().any(|pattern| pattern.matches(&host))
    }

    fn cidr_allowed(&self, ip: IpAddr) -> bool {
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        self.rules.allow_cidrs.iter().any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// May a request for `host` connect to `ip` (one of the addresses `host` resolved to, or
    /// `host` itself when it is an address)?
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        if self.host_allowed(host) || self.cidr_allowed(ip) {
            return Ok(());
        }
        let shown = if host.trim_matches(['[', ']']) == ip.to_string() {
            format!("{ip}")
        } else {
            format!("`{host}` (resolved to {ip})")
        };
        if let Some(range) = special_range(ip) {
            return Err(EgressError::Refused(format!(
                "server-side requests may not reach {shown}: it is a {range} address; an operator can allow \
                 it with egress.allow_cidrs or egress.allow_hosts"
            )));
        }
        if !self.rules.allow_public {
            return Err(EgressError::Refused(format!(
                "server-side requests may not reach {shown}: egress.allow_public is false and neither \
                 egress.allow_hosts nor egress.allow_cidrs lists it"
            )));
        }
        Ok(())
    }

    /// Checks what can be checked of a URL before resolving it: an http(s) scheme, a host, and
    /// the address when the host is one.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::InvalidDestination(format!(
                "scheme `{}` is not allowed; use http or https",
                url.scheme()
            )));
        }
        match url.host() {
            None => Err(EgressError::InvalidDestination("the URL has no host".to_string())),
            Some(url::Host::Ipv4(ip)) => self.check_address(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_address(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
        }
    }

    /// Resolves `host` and checks every address it resolves to; one refused address refuses
    /// the host (a name that resolves to a public and a private address is an attack shape).
    /// Connect to the returned addresses, not to the name, so the name cannot re-resolve.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_address(bare, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if bare.is_empty() || bare.contains(['/', '\\', '\0', '@', ' ']) {
            return Err(EgressError::InvalidDestination(format!("`{host}` is not a host name")));
        }
        let lookup = tokio::net::lookup_host((bare, port));
        let addresses: Vec<SocketAddr> = tokio::time::timeout(self.rules.connect_timeout, lookup)
            .await
            .map_err(|_| EgressError::Unresolved(bare.to_string()))?
            .map_err(|_| EgressError::Unresolved(bare.to_string()))?
            .collect();
        if addresses.is_empty() {
            return Err(EgressError::Unresolved(bare.to_string()));
        }
        for address in &addresses {
            self.check_address(bare, address.ip())?;
        }
        Ok(addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], cidrs: &[&str], allow_public: bool) -> EgressPolicy {
        EgressPolicy::from_config(&EgressConfig {
            allow_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            allow_cidrs: cidrs.iter().map(|c| c.to_string()).collect(),
            allow_public,
            ..EgressConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn check(policy: &EgressPolicy, url: &str) -> Result<(), EgressError> {
        policy.check_url(&Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}")))
    }

    #[test]
    fn every_spelling_of_loopback_and_metadata_is_refused_by_default() {
        let default = EgressPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://0.0.0.0:8080/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://10.0.0.1/",
            "http://192.168.0.1/",
        ] {
            let refused = check(&default, url).expect_err(url);
            assert!(matches!(refused, EgressError::Refused(_)), "{url}: {refused}");
            assert!(refused.to_string().contains("egress.allow_cidrs"), "{url}: {refused}");
        }
        check(&default, "http://8.8.8.8/").unwrap();
        for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://127.0.0.1/"] {
            assert!(matches!(check(&default, url), Err(EgressError::InvalidDestination(_))), "{url}");
        }
    }

    #[test]
    fn allow_lists_open_exactly_what_they_name() {
        let open = policy(&["*.corp.example", "db.internal"], &["10.20.0.0/16", "127.0.0.1/32"], true);
        check(&open, "http://10.20.3.4/").unwrap();
        check(&open, "http://127.0.0.1:9000/").unwrap();
        check(&open, "http://[::ffff:127.0.0.1]/").unwrap();
        assert!(check(&open, "http://10.21.0.1/").is_err());
        assert!(check(&open, "http://127.0.0.2/").is_err());
        let private = "10.9.9.9".parse().unwrap_or_else(|_| unreachable!());
        open.check_address("DB.internal.", private).unwrap();
        open.check_address("a.b.corp.example", private).unwrap();
        assert!(open.check_address("corp.example", private).is_err());
        assert!(open.check_address("db.internal.evil", private).is_err());

        let closed = policy(&["api.example.com"], &["203.0.113.0/24"], false);
        let public = "8.8.8.8".parse().unwrap_or_else(|_| unreachable!());
        let refused = closed.check_address("dns.google", public).unwrap_err();
        assert!(refused.to_string().contains("allow_public"), "{refused}");
        closed.check_address("api.example.com", public).unwrap();
        check(&closed, "http://203.0.113.9/").unwrap();
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let default = EgressPolicy::default();
        let refused = default.resolve("localhost", 80).await.unwrap_err();
        assert!(refused.to_string().contains("`localhost` (resolved to"), "{refused}");
        assert!(default.resolve("[::1]", 80).await.is_err());
        assert!(matches!(default.resolve("/var/run/postgresql", 5432).await, Err(EgressError::InvalidDestination(_))));
        let allowed = policy(&["localhost"], &[], true);
        assert!(!allowed.resolve("localhost", 80).await.unwrap().is_empty());
    }
}
