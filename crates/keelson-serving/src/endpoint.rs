//! An endpoint's routing: the traffic split over its deployments, mirrored traffic, and the
//! sticky key. A [`LiveEndpoint`] is immutable; a change builds a new one and swaps it in, so a
//! request keeps the deployments it started with and nothing in flight is dropped.

use crate::deployment::Deployment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The routing configuration, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Percent of live traffic per deployment; sums to 0 or 100.
    #[serde(default)]
    pub traffic: BTreeMap<String, u32>,
    /// Percent of requests also sent to a deployment whose answers are recorded, never returned.
    #[serde(default)]
    pub mirror: BTreeMap<String, u32>,
    /// Header whose value pins a client to one deployment (its hash picks the bucket).
    #[serde(default)]
    pub sticky_header: Option<String>,
}

/// A change to some parts of a configuration; `None` keeps a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigPatch {
    pub traffic: Option<BTreeMap<String, u32>>,
    pub mirror: Option<BTreeMap<String, u32>>,
    /// `Some(None)` removes the sticky key.
    pub sticky_header: Option<Option<String>>,
}

impl ConfigPatch {
    pub fn apply(self, config: &EndpointConfig) -> EndpointConfig {
        EndpointConfig {
            traffic: self.traffic.unwrap_or_else(|| config.traffic.clone()),
            mirror: self.mirror.unwrap_or_else(|| config.mirror.clone()),
            sticky_header: self.sticky_header.unwrap_or_else(|| config.sticky_header.clone()),
        }
    }
}

impl EndpointConfig {
    /// Checks the configuration against the deployments that are ready.
    pub fn check(&self, ready: &[&str]) -> Result<(), String> {
        let mut total = 0u32;
        for (name, percent) in &self.traffic {
            if !ready.contains(&name.as_str()) {
                return Err(format!("traffic names `{name}`, which is not a ready deployment of this endpoint"));
            }
            if *percent > 100 {
                return Err(format!("traffic to `{name}` is {percent}%; each share is 0 to 100"));
            }
            total += percent;
        }
        if total != 0 && total != 100 {
            return Err(format!("traffic shares sum to {total}%; they must sum to 100 (or 0 to stop serving)"));
        }
        for (name, percent) in &self.mirror {
            if !ready.contains(&name.as_str()) {
                return Err(format!("mirror names `{name}`, which is not a ready deployment of this endpoint"));
            }
            if *percent > 100 {
                return Err(format!("mirrored traffic to `{name}` is {percent}%; it is 0 to 100"));
            }
            if self.traffic.get(name).is_some_and(|share| *share > 0) {
                return Err(format!("`{name}` takes live traffic and cannot also be a mirror target"));
            }
        }
        if let Some(header) = &self.sticky_header {
            let valid = !header.is_empty()
                && header.len() <= 128
                && header.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid {
                return Err(format!("sticky_header `{header}` must be a lower-case HTTP header name"));
            }
        }
        Ok(())
    }

    /// Whether the deployment takes live or mirrored traffic.
    pub fn references(&self, deployment: &str) -> bool {
        self.traffic.get(deployment).is_some_and(|p| *p > 0) || self.mirror.get(deployment).is_some_and(|p| *p > 0)
    }
}

/// An endpoint as requests see it.
#[derive(Debug)]
pub struct LiveEndpoint {
    pub name: String,
    pub description: String,
    pub config: EndpointConfig,
    pub deployments: BTreeMap<String, Arc<Deployment>>,
    /// Deployments that failed to load or validate, with the reason; they get no traffic.
    pub failed: BTreeMap<String, String>,
    pub created: i64,
    pub updated: i64,
    /// Cumulative upper bounds (exclusive, out of 100) per deployment taking traffic.
    route: Vec<(u32, Arc<Deployment>)>,
    mirrors: Vec<(u32, Arc<Deployment>)>,
}

impl LiveEndpoint {
    pub fn new(
        name: String,
        description: String,
        config: EndpointConfig,
        deployments: BTreeMap<String, Arc<Deployment>>,
        failed: BTreeMap<String, String>,
        created: i64,
        updated: i64,
    ) -> LiveEndpoint {
        // Shares of deployments that are not running (failed at start-up) go to the others in
        // proportion, so the endpoint keeps answering.
        let shares: Vec<(u32, Arc<Deployment>)> = config
            .traffic
            .iter()
            .filter(|(_, percent)| **percent > 0)
            .filter_map(|(name, percent)| deployments.get(name).map(|d| (*percent, d.clone())))
            .collect();
        let total: u32 = shares.iter().map(|(p, _)| p).sum();
        let mut route = Vec::with_capacity(shares.len());
        let mut cumulative = 0u32;
        for (index, (percent, deployment)) in shares.iter().enumerate() {
            cumulative = if index + 1 == shares.len() { 100 } else { cumulative + percent * 100 / total.max(1) };
            route.push((cumulative, deployment.clone()));
        }
        let mirrors = config
            .mirror
            .iter()
            .filter(|(_, percent)| **percent > 0)
            .filter_map(|(name, percent)| deployments.get(name).map(|d| (*percent, d.clone())))
            .collect();
        LiveEndpoint { name, description, config, deployments, failed, created, updated, route, mirrors }
    }

    /// Whether any deployment takes traffic.
    pub fn is_serving(&self) -> bool {
        !self.route.is_empty()
    }

    /// The deployment for a bucket in 0..100.
    pub fn pick(&self, bucket: u32) -> Option<&Arc<Deployment>> {
        self.route.iter().find(|(bound, _)| bucket < *bound).map(|(_, deployment)| deployment)
    }

    /// The bucket for a request: the sticky key's hash when the header is configured and sent,
    /// otherwise a random one.
    pub fn bucket(&self, sticky_value: Option<&str>) -> u32 {
        match sticky_value {
            Some(value) => (stable_hash(value.as_bytes()) % 100) as u32,
            None => fastrand::u32(0..100),
        }
    }

    /// Mirror targets drawn for one request.
    pub fn mirrors_for_request(&self) -> Vec<Arc<Deployment>> {
        self.mirrors
            .iter()
            .filter(|(percent, _)| fastrand::u32(0..100) < *percent)
            .map(|(_, deployment)| deployment.clone())
            .collect()
    }

    /// A deployment serving this registered model version, for version-addressed requests.
    pub fn deployment_for_version(&self, version: &str) -> Option<&Arc<Deployment>> {
        // Prefer one that takes traffic, so a version pinned by two deployments goes live.
        self.deployments
            .values()
            .filter(|d| d.model_version == version)
            .max_by_key(|d| self.config.traffic.get(&d.name).copied().unwrap_or(0))
    }
}

/// FNV-1a: stable across processes and versions, so every replica maps a sticky key alike.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(traffic: &[(&str, u32)], mirror: &[(&str, u32)]) -> EndpointConfig {
        EndpointConfig {
            traffic: traffic.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            mirror: mirror.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            sticky_header: None,
        }
    }

    #[test]
    fn configurations_are_checked() {
        let ready = ["blue", "green"];
        assert_eq!(config(&[("blue", 90), ("green", 10)], &[]).check(&ready), Ok(()));
        assert_eq!(config(&[], &[]).check(&ready), Ok(()));
        assert!(config(&[("blue", 90)], &[]).check(&ready).unwrap_err().contains("sum to 90%"));
        assert!(config(&[("red", 100)], &[]).check(&ready).unwrap_err().contains("`red`"));
        assert!(config(&[("blue", 100)], &[("blue", 10)]).check(&ready).unwrap_err().contains("cannot also be"));
        assert!(config(&[("blue", 100)], &[("green", 101)]).check(&ready).is_err());
        let mut sticky = config(&[("blue", 100)], &[]);
        sticky.sticky_header = Some("X-User".into());
        assert!(sticky.check(&ready).is_err());
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
