//! The monitor spec (`version: 1`, YAML or JSON): what is watched (an endpoint's collected
//! traffic, or a dataset's newest version), against which reference dataset version, over which
//! window and schedule, which signals are tested, and where alerts go.

use crate::drift::DriftOptions;
use crate::error::MonitorError;
use crate::notify::{Channel, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    pub version: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: SourceSpec,
    pub reference: ReferenceSpec,
    /// Names of the columns of two-dimensional input or output tensors: tensor → columns.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub window: WindowSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Data and prediction drift (output columns count as predictions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualitySignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<PerformanceSignal>,
    /// Bounds on per-row scores and flags in the watched data: evaluation scores and safety
    /// flags of sampled GenAI traffic, or any numeric output. Column → bounds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, ScoreBounds>,
    #[serde(default)]
    pub alerts: AlertSpec,
}

/// What is watched: one of `endpoint` (collected traffic) or `dataset` (its newest version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    pub dataset: String,
    /// Pinned at creation to the newest version when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// The data a run looks at: the `size` before the run time. Tumbling when runs are `size`
/// apart, sliding when they are closer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub size: String,
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec { size: "1h".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub every: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSignal {
    #[serde(default)]
    pub options: DriftOptions,
    /// Alert on each drifted column (default), and on dataset drift.
    #[serde(default = "yes")]
    pub alert_per_column: bool,
    #[serde(default = "yes")]
    pub alert_dataset: bool,
    /// Fixed thresholds (the methods' own or the options'), or learned from reference chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned_thresholds: Option<LearnedThresholds>,
}

fn yes() -> bool {
    true
}

/// Thresholds learned from the reference: the score of each of `chunks` reference chunks against
/// the whole reference, and the threshold at mean + k·σ of those scores (mean − k·σ for
/// p-values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedThresholds {
    #[serde(default = "default_chunks")]
    pub chunks: usize,
    #[serde(default = "default_k")]
    pub k: f64,
}

fn default_chunks() -> usize {
    10
}

fn default_k() -> f64 {
    3.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySignal {
    /// Largest share of missing values (null, NaN, infinite) a column may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_missing_share: Option<f64>,
    /// Largest share of numeric values outside the reference's [min, max].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_out_of_range_share: Option<f64>,
    /// Largest share of categorical values the reference never had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_category_share: Option<f64>,
    /// Largest share of a numeric column's values that are not numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_type_error_share: Option<f64>,
    /// Largest share of requests that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
}

/// Bounds on a score column over a window: its mean, and the share of rows flagged (true, 1, or
/// "yes"; for safety flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreBounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Bound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Classification,
    Regression,
}

/// A bound a metric must stay within.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Model quality once ground truth arrives (labels joined by correlation id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSignal {
    pub task: Task,
    /// The output column holding the prediction.
    pub prediction: String,
    /// For classifiers: the output holding class probabilities — one column per class
    /// (`name[0]`, `name[1]`, … for a two-dimensional output, in the order of `classes`), or one
    /// column with the probability of class `1` of a binary classifier. Enables AUC and the
    /// label-free estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<String>,
    /// The classes in the order of the probability columns (default 0, 1, 2, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<serde_json::Value>>,
    /// Metric name → bound: accuracy, precision, recall, f1, auc; rmse, mae, mape, r2;
    /// estimated_accuracy (no labels needed).
    pub metrics: BTreeMap<String, Bound>,
    /// Labels are looked for until this long after the window (default 1d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_delay: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Least time between two notifications of one firing alert.
    #[serde(default = "default_cooldown")]
    pub cooldown: String,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerSpec>,
}

impl Default for AlertSpec {
    fn default() -> Self {
        AlertSpec { severity: default_severity(), cooldown: default_cooldown(), channels: Vec::new(), trigger: None }
    }
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn default_cooldown() -> String {
    "1h".into()
}

/// A job enqueued when a run fires a new alert (a retraining pipeline): its kind, and a payload
/// the alert is added to under `alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub job: String,
    #[serde(default)]
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// A duration such as `90s`, `15m`, `1h`, `7d` in milliseconds.
pub fn parse_duration(text: &str, field: &str) -> Result<i64, MonitorError> {
    let bad =
        || MonitorError::invalid(format!("`{field}` must be a duration such as 30s, 15m, 1h or 7d, not `{text}`"));
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    match number.checked_mul(unit_ms) {
        Some(ms) if ms > 0 && ms <= 366 * 86_400_000 => Ok(ms),
        _ => Err(MonitorError::invalid(format!("`{field}` must be more than 0 and at most 366d, not `{text}`"))),
    }
}

fn check_share(value: Option<f64>, field: &str) -> Result<(), MonitorError> {
    match value {
        Some(v) if !(0.0..=1.0).contains(&v) => {
            Err(MonitorError::invalid(format!("`{field}` must be between 0 and 1, not {v}")))
        }
        _ => Ok(()),
    }
}

const CLASSIFICATION_METRICS: &[&str] = &["accuracy", "precision", "recall", "f1", "auc", "estimated_accuracy"];
const REGRESSION_METRICS: &[&str] = &["rmse", "mae", "mape", "r2"];

impl MonitorSpec {
    /// Parses YAML or JSON text, naming the field at fault.
    pub fn parse(text: &str) -> Result<MonitorSpec, MonitorError> {
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| MonitorError::invalid(format!("monitor spec: {e}")))?;
        let spec: MonitorSpec =
            serde_yaml::from_value(value).map_err(|e| MonitorError::invalid(format!("monitor spec: {e}")))?;
        spec.check()?;
        Ok(spec)
    }

    pub fn from_json(value: serde_json::Value) -> Result<MonitorSpec, MonitorError> {
        let spec: MonitorSpec =
            serde_json::from_value(value).map_err(|e| MonitorError::invalid(format!("monitor spec: {e}")))?;
        spec.check()?;
        Ok(spec)
    }

    pub fn check(&self) -> Result<(), MonitorError> {
        if self.version != 1 {
            return Err(MonitorError::invalid(format!("monitor spec: `version` must be 1, not {}", self.version)));
        }
        keelson_core::datasets::validate_dataset_name(&self.name)
            .map_err(|e| MonitorError::invalid(format!("monitor `name`: {e}")))?;
        match (&self.source.endpoint, &self.source.dataset) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(MonitorError::invalid("`source` names exactly one of `endpoint` or `dataset`")),
        }
        if self.source.deployment.is_some() && self.source.endpoint.is_none() {
            return Err(MonitorError::invalid("`source.deployment` needs `source.endpoint`"));
        }
        parse_duration(&self.window.size, "window.size")?;
        if let Some(schedule) = &self.schedule {
            parse_duration(&schedule.every, "schedule.every")?;
        }
        parse_duration(&self.alerts.cooldown, "alerts.cooldown")?;
        if self.drift.is_none() && self.quality.is_none() && self.performance.is_none() && self.scores.is_empty() {
            return Err(MonitorError::invalid(
                "a monitor tests at least one of `drift`, `quality`, `performance` or `scores`",
            ));
        }
        for (column, bounds) in &self.scores {
            for (name, bound) in [("mean", &bounds.mean), ("rate", &bounds.rate)] {
                if let Some(bound) = bound {
                    if bound.min.is_none() && bound.max.is_none() {
                        return Err(MonitorError::invalid(format!("`scores.{column}.{name}` needs `min` or `max`")));
                    }
                }
            }
            if bounds.mean.is_none() && bounds.rate.is_none() {
                return Err(MonitorError::invalid(format!("`scores.{column}` needs `mean` or `rate`")));
            }
        }
        if let Some(drift) = &self.drift {
            drift.options.check()?;
            if let Some(learned) = &drift.learned_thresholds {
                if !((2..=100).contains(&learned.chunks) && learned.k.is_finite() && learned.k > 0.0) {
                    return Err(MonitorError::invalid(
                        "`drift.learned_thresholds`: `chunks` must be 2 to 100 and `k` a positive number",
                    ));
                }
            }
        }
        if let Some(quality) = &self.quality {
            check_share(quality.max_missing_share, "quality.max_missing_share")?;
            check_share(quality.max_out_of_range_share, "quality.max_out_of_range_share")?;
            check_share(quality.max_new_category_share, "quality.max_new_category_share")?;
            check_share(quality.max_error_rate, "quality.max_error_rate")?;
            check_share(quality.max_type_error_share, "quality.max_type_error_share")?;
        }
        if let Some(performance) = &self.performance {
            if self.source.endpoint.is_none() {
                return Err(MonitorError::invalid("`performance` needs an endpoint source (labels join its traffic)"));
            }
            let known = match performance.task {
                Task::Classification => CLASSIFICATION_METRICS,
                Task::Regression => REGRESSION_METRICS,
            };
            if performance.metrics.is_empty() {
                return Err(MonitorError::invalid("`performance.metrics` names at least one metric"));
            }
            for (name, bound) in &performance.metrics {
                if !known.contains(&name.as_str()) {
                    return Err(MonitorError::invalid(format!(
                        "`performance.metrics.{name}`: unknown for this task; use one of {}",
                        known.join(", ")
                    )));
                }
                if bound.min.is_none() && bound.max.is_none() {
                    return Err(MonitorError::invalid(format!("`performance.metrics.{name}` needs `min` or `max`")));
                }
            }
            if let Some(delay) = &performance.label_delay {
                parse_duration(delay, "performance.label_delay")?;
            }
        }
        for (index, channel) in self.alerts.channels.iter().enumerate() {
            channel.check().map_err(|e| MonitorError::invalid(format!("`alerts.channels[{index}]`: {e}")))?;
        }
        Ok(())
    }

    pub fn window_ms(&self) -> i64 {
        parse_duration(&self.window.size, "window.size").unwrap_or(3_600_000)
    }

    pub fn schedule_ms(&self) -> Option<i64> {
        self.schedule.as_ref().and_then(|s| parse_duration(&s.every, "schedule.every").ok())
    }

    pub fn cooldown_ms(&self) -> i64 {
        parse_duration(&self.alerts.cooldown, "alerts.cooldown").unwrap_or(3_600_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "
version: 1
name: iris-drift
source: {endpoint: iris}
reference: {dataset: iris-train}
features: {input: [a, b]}
window: {size: 1h}
schedule: {every: 15m}
drift: {options: {drift_share: 0.5}}
quality: {max_missing_share: 0.1}
alerts:
  cooldown: 30m
  channels: [{type: webhook, url: 'http://127.0.0.1:9/hook'}]
  trigger: {job: data.recipe, payload: {recipe: {}}}
";

    #[test]
    fn a_full_spec_parses_and_durations_read() {
        let spec = MonitorSpec::parse(SPEC).unwrap();
        assert_eq!(spec.window_ms(), 3_600_000);
        assert_eq!(spec.schedule_ms(), Some(900_000));
        assert_eq!(spec.cooldown_ms(), 1_800_000);
        assert_eq!(spec.features["input"], ["a", "b"]);
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            (SPEC.replace("version: 1", "version: 2"), "`version` must be 1"),
            (SPEC.replace("size: 1h", "size: 1y"), "`window.size`"),
            (SPEC.replace("source: {endpoint: iris}", "source: {}"), "exactly one of"),
            (SPEC.replace("max_missing_share: 0.1", "max_missing_share: 2"), "quality.max_missing_share"),
            (SPEC.replace("window: {size: 1h}", "window: {size: 1h, colour: red}"), "unknown field `colour`"),
            (SPEC.replace("drift_share: 0.5", "drift_share: 0"), "drift_share"),
        ];
        for (text, expected) in cases {
            let error = MonitorSpec::parse(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} lacks {expected}");
        }
        assert_eq!(parse_duration("90s", "x").unwrap(), 90_000);
        assert!(parse_duration("0s", "x").is_err());
        assert!(parse_duration("h", "x").is_err());
    }
}
