//! Progressive delivery, Flagger-style: a canary deployment gets `step_weight` percent of
//! traffic, and every interval its error rate and p99 latency over that interval are checked.
//! Passing checks move it up a step until `max_weight`, then it is promoted to all traffic;
//! `threshold` failed checks roll the traffic back to the primary. The decision is a pure
//! function of the spec, the state and the interval's statistics, so it is tested alone.

use crate::stats::{DeploymentStats, LATENCY_BUCKETS};
use serde::{Deserialize, Serialize};

fn default_step_weight() -> u32 {
    10
}
fn default_max_weight() -> u32 {
    50
}
fn default_interval_seconds() -> u64 {
    60
}
fn default_threshold() -> u32 {
    2
}
fn default_min_requests() -> u64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutChecks {
    /// Largest share of failed requests (server-side failures, timeouts, overload; not bad
    /// input) in an interval. 1% unless given; `null` turns the check off.
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: Option<f64>,
    /// Largest p99 latency in an interval, in milliseconds (read from the latency histogram, so
    /// it is the upper bound of the bucket holding the 99th percentile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_latency_ms: Option<f64>,
    /// Requests the canary must get in an interval for it to be judged; fewer, and the interval
    /// neither passes nor fails.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// Signals from elsewhere (a monitor, a test suite, a business metric), asked every interval
    /// as Flagger asks its webhooks: an answer other than 2xx fails the interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookCheck>,
}

fn default_webhook_timeout_ms() -> u64 {
    5_000
}

/// A check answered by another service: Keelson POSTs the interval's figures as JSON
/// (`rollout`, `endpoint`, `canary`, `primary`, `weight`, `window`, `check`) and reads the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookCheck {
    pub name: String,
    pub url: String,
    #[serde(default = "default_webhook_timeout_ms")]
    pub timeout_ms: u64,
}

/// At most this many webhooks per rollout: each interval waits for all of them.
const MAX_WEBHOOKS: usize = 10;

fn default_max_error_rate() -> Option<f64> {
    Some(0.01)
}

impl Default for RolloutChecks {
    fn default() -> Self {
        RolloutChecks {
            max_error_rate: default_max_error_rate(),
            max_p99_latency_ms: None,
            min_requests: default_min_requests(),
            webhooks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// The deployment being rolled out.
    pub canary: String,
    /// The deployment it replaces; by default the one taking the most traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    #[serde(default = "default_step_weight")]
    pub step_weight: u32,
    #[serde(default = "default_max_weight")]
    pub max_weight: u32,
    #[serde(default = "default_interval_seconds")]
    pub interval_seconds: u64,
    /// Failed checks before the rollout is rolled back.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    #[serde(default)]
    pub checks: RolloutChecks,
}

impl RolloutSpec {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.step_weight) {
            return Err(format!("`step_weight` must be 1 to 100, not {}", self.step_weight));
        }
        if self.max_weight < self.step_weight || self.max_weight > 100 {
            return Err(format!("`max_weight` must be between step_weight and 100, not {}", self.max_weight));
        }
        if !(1..=86_400).contains(&self.interval_seconds) {
            return Err(format!("`interval_seconds` must be 1 to 86400, not {}", self.interval_seconds));
        }
        if !(1..=100).contains(&self.threshold) {
            return Err(format!("`threshold` must be 1 to 100, not {}", self.threshold));
        }
        if let Some(rate) = self.checks.max_error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("`checks.max_error_rate` must be 0 to 1, not {rate}"));
            }
        }
        if let Some(ms) = self.checks.max_p99_latency_ms {
            if !(ms >= 0.0 && ms.is_finite()) {
                return Err(format!("`checks.max_p99_latency_ms` must be a non-negative number, not {ms}"));
            }
        }
        let webhooks = &self.checks.webhooks;
        if webhooks.len() > MAX_WEBHOOKS {
            return Err(format!("`checks.webhooks` holds at most {MAX_WEBHOOKS} checks, not {}", webhooks.len()));
        }
        for (index, webhook) in webhooks.iter().enumerate() {
            if webhook.name.trim().is_empty() || webhook.name.len() > 100 {
                return Err(format!("`checks.webhooks[{index}].name` must be 1 to 100 characters"));
            }
            if webhooks[..index].iter().any(|other| other.name == webhook.name) {
                return Err(format!("`checks.webhooks` names `{}` twice", webhook.name));
            }
            let url = url::Url::parse(&webhook.url)
                .map_err(|e| format!("`checks.webhooks[{index}].url` `{}` is not a URL: {e}", webhook.url))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "`checks.webhooks[{index}].url` must be an http:// or https:// URL, not `{}`",
                    webhook.url
                ));
            }
            if !(1..=60_000).contains(&webhook.timeout_ms) {
                return Err(format!(
                    "`checks.webhooks[{index}].timeout_ms` must be 1 to 60000, not {}",
                    webhook.timeout_ms
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Progressing,
    Succeeded,
    RolledBack,
    Aborted,
}

impl RolloutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStatus::Progressing => "progressing",
            RolloutStatus::Succeeded => "succeeded",
            RolloutStatus::RolledBack => "rolled_back",
            RolloutStatus::Aborted => "aborted",
        }
    }
}

/// Cumulative counters of the canary at one moment; intervals are differences of two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub ok: u64,
    pub bad_input: u64,
    pub failed: u64,
    pub buckets: Vec<u64>,
}

impl StatsSnapshot {
    pub fn of(stats: &DeploymentStats) -> StatsSnapshot {
        let outcomes = stats.outcome_counts();
        let (buckets, _) = stats.latency();
        StatsSnapshot {
            ok: outcomes[0],
            bad_input: outcomes[1],
            failed: outcomes[2..].iter().sum(),
            buckets: buckets.to_vec(),
        }
    }

    /// What happened between `earlier` and `self`; a restart (counters went down) starts over.
    pub fn since(&self, earlier: &StatsSnapshot) -> WindowStats {
        let restarted =
            self.ok < earlier.ok || self.failed < earlier.failed || self.buckets.len() != earlier.buckets.len();
        let base = if restarted { StatsSnapshot::default() } else { earlier.clone() };
        let ok = self.ok - base.ok;
        let failed = self.failed - base.failed;
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| count.saturating_sub(base.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        WindowStats { requests: ok + failed, failed, p99_ms: p99_ms(&buckets) }
    }
}

/// The 99th percentile's bucket bound in milliseconds; none without requests.
fn p99_ms(buckets: &[u64]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (total as f64 * 0.99).ceil() as u64;
    let mut cumulative = 0;
    for (index, count) in buckets.iter().enumerate() {
        cumulative += count;
        if cumulative >= rank {
            return Some(LATENCY_BUCKETS.get(index).map_or(f64::INFINITY, |bound| bound * 1000.0));
        }
    }
    Some(f64::INFINITY)
}

/// The canary's requests in one interval (bad input excluded: it is the client's doing).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub requests: u64,
    pub failed: u64,
    pub p99_ms: Option<f64>,
}

/// One recorded step of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStep {
    pub timestamp: i64,
    /// Canary weight after the step.
    pub weight: u32,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    pub status: RolloutStatus,
    pub primary: String,
    pub weight: u32,
    pub failed_checks: u32,
    pub next_check_ms: i64,
    pub baseline: StatsSnapshot,
    pub steps: Vec<RolloutStep>,
}

/// What to do after an interval.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Too few requests to judge: keep the weight, look again next interval.
    Wait,
    /// Move the canary to this weight.
    Advance { weight: u32 },
    /// The canary takes all traffic.
    Promote,
    /// Checks failed but the threshold is not reached: keep the weight.
    Hold { failures: Vec<String> },
    /// Back to the primary.
    RollBack { failures: Vec<String> },
}

/// Failed checks of one interval, as messages; empty when all passed.
pub fn failed_checks(checks: &RolloutChecks, window: &WindowStats) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(max) = checks.max_error_rate {
        let rate = window.failed as f64 / window.requests.max(1) as f64;
        if rate > max {
            failures.push(format!("error rate {rate:.4} is over {max}"));
        }
    }
    if let (Some(max), Some(p99)) = (checks.max_p99_latency_ms, window.p99_ms) {
        if p99 > max {
            failures.push(format!("p99 latency {p99} ms is over {max} ms"));
        }
    }
    failures
}

/// Whether an interval has enough requests to be judged at all.
pub fn judgeable(spec: &RolloutSpec, window: &WindowStats) -> bool {
    window.requests >= spec.checks.min_requests.max(1)
}

/// The step after an interval; `signal_failures` are the failed webhook checks of it.
pub fn decide(
    spec: &RolloutSpec,
    state: &RolloutState,
    window: &WindowStats,
    signal_failures: Vec<String>,
) -> Decision {
    if !judgeable(spec, window) {
        return Decision::Wait;
    }
    let mut failures = failed_checks(&spec.checks, window);
    failures.extend(signal_failures);
    if !failures.is_empty() {
        return if state.failed_checks + 1 >= spec.threshold {
            Decision::RollBack { failures }
        } else {
            Decision::Hold { failures }
        };
    }
    if state.weight >= spec.max_weight {
        return Decision::Promote;
    }
    Decision::Advance { weight: (state.weight + spec.step_weight).min(spec.max_weight) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RolloutSpec {
        RolloutSpec {
            canary: "green".into(),
            primary: None,
            step_weight: 20,
            max_weight: 50,
            interval_seconds: 1,
            threshold: 2,
            checks: RolloutChecks {
                max_error_rate: Some(0.05),
                max_p99_latency_ms: Some(10.0),
                min_requests: 10,
                webhooks: Vec::new(),
            },
        }
    }

    fn state(weight: u32, failed_checks: u32) -> RolloutState {
        RolloutState {
            status: RolloutStatus::Progressing,
            primary: "blue".into(),
            weight,
            failed_checks,
            next_check_ms: 0,
            baseline: StatsSnapshot::default(),
            steps: vec![],
        }
    }

    fn window(requests: u64, failed: u64, p99_ms: f64) -> WindowStats {
        WindowStats { requests, failed, p99_ms: Some(p99_ms) }
    }

    #[test]
    fn checks_keep_the_error_rate_default_unless_it_is_turned_off() {
        let partial: RolloutChecks = serde_json::from_str(r#"{"max_p99_latency_ms": 50}"#).unwrap();
        assert_eq!(partial.max_error_rate, Some(0.01));
        assert_eq!(partial.max_p99_latency_ms, Some(50.0));
        let off: RolloutChecks = serde_json::from_str(r#"{"max_error_rate": null}"#).unwrap();
        assert_eq!(off.max_error_rate, None);
    }

    #[test]
    fn a_failing_signal_fails_the_interval_like_a_metric() {
        let healthy = window(100, 0, 1.0);
        let signal = vec!["check `drift` answered 503 Service Unavailable: drifted".to_string()];
        let Decision::Hold { failures } = decide(&spec(), &state(20, 0), &healthy, signal.clone()) else {
            panic!("expected hold")
        };
        assert_eq!(failures, signal);
        assert!(matches!(decide(&spec(), &state(20, 1), &healthy, signal), Decision::RollBack { .. }));
        // Signals are not asked, nor judged, in an interval without enough requests.
        assert_eq!(decide(&spec(), &state(20, 1), &window(0, 0, 1.0), vec!["x".into()]), Decision::Wait);
    }

    #[test]
    fn webhook_checks_are_validated() {
        let with = |webhooks: serde_json::Value| {
            let mut spec = spec();
            spec.checks.webhooks = serde_json::from_value(webhooks).unwrap();
            spec.check()
        };
        assert_eq!(with(serde_json::json!([{"name": "drift", "url": "http://127.0.0.1:9/check"}])), Ok(()));
        let errors = [
            (serde_json::json!([{"name": "", "url": "http://h/"}]), "name"),
            (serde_json::json!([{"name": "a", "url": "file:///etc/passwd"}]), "http"),
            (serde_json::json!([{"name": "a", "url": "http://h/", "timeout_ms": 0}]), "timeout_ms"),
            (serde_json::json!([{"name": "a", "url": "http://h/"}, {"name": "a", "url": "http://h/"}]), "twice"),
        ];
        for (webhooks, words) in errors {
            let error = with(webhooks.clone()).unwrap_err();
            assert!(error.contains(words), "{webhooks}: {error}");
        }
    }

    #[test]
    fn healthy_canaries_step_up_then_promote() {
        assert_eq!(decide(&spec(), &state(20, 0), &window(100, 0, 1.0), Vec::new()), Decision::Advance { weight: 40 });
        assert_eq!(decide(&spec(), &state(40, 0), &window(100, 0, 1.0), Vec::new()), Decision::Advance { weight: 50 });
        assert_eq!(decide(&spec(), &state(50, 0), &window(100, 0, 1.0), Vec::new()), Decision::Promote);
    }

    #[test]
    fn failing_checks_hold_then_roll_back() {
        let slow = window(100, 0, 25.0);
        let Decision::Hold { failures } = decide(&spec(), &state(20, 0), &slow, Vec::new()) else {
            panic!("expected hold")
        };
        assert_eq!(failures, vec!["p99 latency 25 ms is over 10 ms".to_string()]);
        let erroring = window(100, 6, 1.0);
        let Decision::RollBack { failures } = decide(&spec(), &state(20, 1), &erroring, Vec::new()) else {
            panic!("expected rollback")
        };
        assert_eq!(failures, vec!["error rate 0.0600 is over 0.05".to_string()]);
    }

    #[test]
    fn too_few_requests_wait() {
        assert_eq!(decide(&spec(), &state(20, 1), &window(9, 9, 100.0), Vec::new()), Decision::Wait);
    }

    #[test]
    fn windows_are_differences_and_p99_reads_the_histogram() {
        let mut buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        let earlier = StatsSnapshot { ok: 10, bad_input: 0, failed: 1, buckets: buckets.clone() };
        buckets[3] = 98; // ≤ 1 ms
        buckets[6] = 2; // ≤ 10 ms
        let later = StatsSnapshot { ok: 109, bad_input: 5, failed: 2, buckets };
        let window = later.since(&earlier);
        assert_eq!(window.requests, 100);
        assert_eq!(window.failed, 1);
        assert_eq!(window.p99_ms, Some(10.0));
        // Counters that went down mean a restart: the later snapshot is the whole window.
        let restarted = earlier.since(&later);
        assert_eq!(restarted.requests, 11);
    }

    #[test]
    fn specs_are_checked() {
        assert_eq!(spec().check(), Ok(()));
        let mut bad = spec();
        bad.max_weight = 10;
        assert!(bad.check().unwrap_err().contains("max_weight"));
        let mut bad = spec();
        bad.checks.max_error_rate = Some(2.0);
        assert!(bad.check().is_err());
    }
}
