//! Promotion policies: what must hold before an alias (`production`, say) may point at a model
//! version. Evaluation is pure: the registry gathers the facts (metrics of the candidate and of
//! the current holder, the candidate's tags, approvals) and asks [`PromotionPolicy::check`].

use crate::registry::Approval;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionPolicy {
    /// Metric thresholds the candidate must meet (metrics of its source run and logged model).
    #[serde(default)]
    pub metric_thresholds: Vec<MetricThreshold>,
    /// Champion/challenger: the candidate must do at least as well as the version holding the
    /// alias now, by `min_improvement`. Passes when nobody holds the alias.
    #[serde(default)]
    pub champion_comparisons: Vec<ChampionComparison>,
    /// Evaluation or validation results the candidate must carry, recorded as version tags
    /// (e.g. `validation.smoke = passed`).
    #[serde(default)]
    pub required_tags: Vec<RequiredTag>,
    /// Approvals of this version for this alias by users holding a role.
    #[serde(default)]
    pub required_approvals: Vec<RequiredApproval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricThreshold {
    pub metric: String,
    pub op: ThresholdOp,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdOp {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl ThresholdOp {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            ThresholdOp::Gt => left > right,
            ThresholdOp::Ge => left >= right,
            ThresholdOp::Lt => left < right,
            ThresholdOp::Le => left <= right,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ThresholdOp::Gt => ">",
            ThresholdOp::Ge => ">=",
            ThresholdOp::Lt => "<",
            ThresholdOp::Le => "<=",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChampionComparison {
    pub metric: String,
    /// `true` when a larger value is better (accuracy), `false` when smaller is (loss).
    #[serde(default = "yes")]
    pub higher_is_better: bool,
    /// How much better than the champion the candidate must be; 0 allows a tie.
    #[serde(default)]
    pub min_improvement: f64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredTag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredApproval {
    pub role: String,
    #[serde(default = "one")]
    pub count: usize,
}

fn one() -> usize {
    1
}

/// What the policy is checked against.
#[derive(Debug, Clone, Default)]
pub struct PromotionFacts<'a> {
    pub candidate_version: &'a str,
    pub candidate_metrics: HashMap<String, f64>,
    pub candidate_tags: HashMap<String, String>,
    /// The version holding the alias now and its metrics; none when the alias is unset.
    pub champion: Option<(&'a str, HashMap<String, f64>)>,
    /// Approvals recorded for the candidate and this alias.
    pub approvals: &'a [Approval],
}

/// One unmet condition, phrased for the person whose alias move was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyViolation(pub String);

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PromotionPolicy {
    pub fn is_empty(&self) -> bool {
        self.metric_thresholds.is_empty()
            && self.champion_comparisons.is_empty()
            && self.required_tags.is_empty()
            && self.required_approvals.is_empty()
    }

    /// Checks a policy's own consistency when it is set.
    pub fn validate(&self) -> Result<(), String> {
        for threshold in &self.metric_thresholds {
            if threshold.metric.trim().is_empty() {
                return Err("metric_thresholds: metric must not be empty".into());
            }
            if !threshold.value.is_finite() {
                return Err(format!("metric_thresholds: value for '{}' must be a finite number", threshold.metric));
            }
        }
        for comparison in &self.champion_comparisons {
            if comparison.metric.trim().is_empty() {
                return Err("champion_comparisons: metric must not be empty".into());
            }
            if !comparison.min_improvement.is_finite() || comparison.min_improvement < 0.0 {
                return Err(format!(
                    "champion_comparisons: min_improvement for '{}' must be a finite number >= 0",
                    comparison.metric
                ));
            }
        }
        for tag in &self.required_tags {
            if tag.key.trim().is_empty() {
                return Err("required_tags: key must not be empty".into());
            }
        }
        for approval in &self.required_approvals {
            if approval.role.trim().is_empty() {
                return Err("required_approvals: role must not be empty".into());
            }
            if approval.count == 0 {
                return Err(format!("required_approvals: count for role '{}' must be at least 1", approval.role));
            }
        }
        Ok(())
    }

    /// Every unmet condition; empty when the candidate may take the alias.
    pub fn check(&self, facts: &PromotionFacts<'_>) -> Vec<PolicyViolation> {
        let mut violations = Vec::new();
        let version = facts.candidate_version;
        for threshold in &self.metric_thresholds {
            match facts.candidate_metrics.get(&threshold.metric) {
                None => violations.push(PolicyViolation(format!(
                    "version {version} has no metric '{}' (required {} {})",
                    threshold.metric,
                    threshold.op.as_str(),
                    threshold.value
                ))),
                Some(value) if !threshold.op.holds(*value, threshold.value) => {
                    violations.push(PolicyViolation(format!(
                        "metric '{}' of version {version} is {value}, required {} {}",
                        threshold.metric,
                        threshold.op.as_str(),
                        threshold.value
                    )))
                }
                Some(_) => {}
            }
        }
        if let Some((champion, champion_metrics)) = &facts.champion {
            for comparison in &self.champion_comparisons {
                let name = &comparison.metric;
                let (Some(candidate), Some(current)) = (facts.candidate_metrics.get(name), champion_metrics.get(name))
                else {
                    if !facts.candidate_metrics.contains_key(name) {
                        violations.push(PolicyViolation(format!(
                            "version {version} has no metric '{name}' to compare with version {champion}"
                        )));
                    }
                    // A champion without the metric cannot be beaten or matched: the challenger wins.
                    continue;
                };
                let gain = if comparison.higher_is_better { candidate - current } else { current - candidate };
                if gain.is_nan() || gain < comparison.min_improvement {
                    violations.push(PolicyViolation(format!(
                        "metric '{name}' of version {version} is {candidate}, version {champion} (current holder) has \
                         {current}; the challenger must be {} by at least {}",
                        if comparison.higher_is_better { "higher" } else { "lower" },
                        comparison.min_improvement
                    )));
                }
            }
        }
        for tag in &self.required_tags {
            match facts.candidate_tags.get(&tag.key) {
                Some(value) if *value == tag.value => {}
                Some(value) => violations.push(PolicyViolation(format!(
                    "tag '{}' of version {version} is '{value}', required '{}'",
                    tag.key, tag.value
                ))),
                None => violations
                    .push(PolicyViolation(format!("version {version} lacks tag '{}' = '{}'", tag.key, tag.value))),
            }
        }
        for required in &self.required_approvals {
            let mut approvers: Vec<&str> = facts
                .approvals
                .iter()
                .filter(|a| a.roles.contains(&required.role))
                .map(|a| a.approver.as_str())
                .collect();
            approvers.sort_unstable();
            approvers.dedup();
            if approvers.len() < required.count {
                violations.push(PolicyViolation(format!(
                    "version {version} has {} of {} required approval(s) by role '{}'",
                    approvers.len(),
                    required.count,
                    required.role
                )));
            }
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> HashMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn approval(approver: &str, roles: &[&str]) -> Approval {
        Approval {
            name: "m".into(),
            version: "2".into(),
            alias: "production".into(),
            approver: approver.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            comment: None,
            timestamp: 0,
        }
    }

    fn policy() -> PromotionPolicy {
        serde_json::from_value(serde_json::json!({
            "metric_thresholds": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
            "champion_comparisons": [{"metric": "loss", "higher_is_better": false, "min_improvement": 0.01}],
            "required_tags": [{"key": "validation", "value": "passed"}],
            "required_approvals": [{"role": "approver", "count": 2}]
        }))
        .unwrap()
    }

    #[test]
    fn all_conditions_met() {
        let approvals = [approval("alice", &["approver"]), approval("bob", &["approver", "dev"])];
        let facts = PromotionFacts {
            candidate_version: "2",
            candidate_metrics: metrics(&[("accuracy", 0.95), ("loss", 0.10)]),
            candidate_tags: [("validation".to_string(), "passed".to_string())].into(),
            champion: Some(("1", metrics(&[("loss", 0.2)]))),
            approvals: &approvals,
        };
        assert_eq!(policy().check(&facts), Vec::new());
    }

    #[test]
    fn every_failure_is_reported() {
        let approvals = [approval("alice", &["approver"]), approval("alice", &["approver"]), approval("eve", &["dev"])];
        let facts = PromotionFacts {
            candidate_version: "2",
            candidate_metrics: metrics(&[("accuracy", 0.85), ("loss", 0.195)]),
            candidate_tags: [("validation".to_string(), "failed".to_string())].into(),
            champion: Some(("1", metrics(&[("loss", 0.2)]))),
            approvals: &approvals,
        };
        let violations: Vec<String> = policy().check(&facts).into_iter().map(|v| v.0).collect();
        assert_eq!(violations.len(), 4, "{violations:?}");
        assert!(violations[0].contains("accuracy") && violations[0].contains(">= 0.9"), "{violations:?}");
        assert!(violations[1].contains("lower by at least 0.01"), "{violations:?}");
        assert!(violations[2].contains("'failed'"), "{violations:?}");
        assert!(violations[3].contains("1 of 2"), "the same approver twice counts once: {violations:?}");
    }

    #[test]
    fn champion_rules_pass_without_a_champion_and_missing_metrics_fail() {
        let facts = PromotionFacts { candidate_version: "1", ..Default::default() };
        let only_champion =
            PromotionPolicy { champion_comparisons: policy().champion_comparisons, ..Default::default() };
        assert!(only_champion.check(&facts).is_empty());
        let only_threshold = PromotionPolicy { metric_thresholds: policy().metric_thresholds, ..Default::default() };
        assert!(only_threshold.check(&facts)[0].0.contains("has no metric 'accuracy'"));
    }

    #[test]
    fn invalid_policies_are_refused() {
        let bad = PromotionPolicy {
            required_approvals: vec![RequiredApproval { role: "x".into(), count: 0 }],
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("at least 1"));
        assert!(serde_json::from_str::<PromotionPolicy>(r#"{"metric_threshold": []}"#).is_err(), "unknown fields");
        assert!(serde_json::from_str::<PromotionPolicy>(
            r#"{"metric_thresholds": [{"metric":"a","op":"=~","value":1}]}"#
        )
        .is_err());
    }
}
