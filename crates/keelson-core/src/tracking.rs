//! Experiment tracking domain types. Field names follow MLflow's `service.proto`, which is the
//! vocabulary our users already know; the server serialises these directly.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// MLflow's limits (mlflow/utils/validation.py).
pub mod limits {
    pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
    pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
    pub const MAX_TAG_VAL_LENGTH: usize = 8000;
    pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
    pub const MAX_METRICS_PER_BATCH: usize = 1000;
    pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
    pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
    pub const MAX_DATASET_NAME_SIZE: usize = 500;
    pub const MAX_DATASET_DIGEST_SIZE: usize = 36;
    pub const MAX_DATASET_SOURCE_SIZE: usize = 65535;
    pub const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
    pub const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
    pub const MAX_RESULTS_SEARCH_RUNS: i64 = 50_000;
    pub const MAX_RESULTS_SEARCH_EXPERIMENTS: i64 = 50_000;
    pub const DEFAULT_SEARCH_RUNS_RESULTS: i64 = 1000;
    pub const DEFAULT_SEARCH_EXPERIMENTS_RESULTS: i64 = 1000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }
}

impl FromStr for LifecycleStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(LifecycleStage::Active),
            "deleted" => Ok(LifecycleStage::Deleted),
            other => Err(format!("unknown lifecycle stage `{other}`")),
        }
    }
}

/// Which lifecycle stages a search returns (MLflow `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    pub fn stages(self) -> &'static [&'static str] {
        match self {
            ViewType::ActiveOnly => &["active"],
            ViewType::DeletedOnly => &["deleted"],
            ViewType::All => &["active", "deleted"],
        }
    }
}

impl FromStr for ViewType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ACTIVE_ONLY" | "1" => Ok(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Ok(ViewType::DeletedOnly),
            "ALL" | "3" => Ok(ViewType::All),
            _ => Err(format!("invalid view type `{s}`; expected ACTIVE_ONLY, DELETED_ONLY or ALL")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    pub fn is_terminated(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Failed | RunStatus::Killed)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RUNNING" | "1" => Ok(RunStatus::Running),
            "SCHEDULED" | "2" => Ok(RunStatus::Scheduled),
            "FINISHED" | "3" => Ok(RunStatus::Finished),
            "FAILED" | "4" => Ok(RunStatus::Failed),
            "KILLED" | "5" => Ok(RunStatus::Killed),
            other => {
                Err(format!("invalid run status `{other}`; expected RUNNING, SCHEDULED, FINISHED, FAILED or KILLED"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: value.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: LifecycleStage,
    pub last_update_time: i64,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// A metric value. NaN and ±infinity are legal MLflow values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    #[serde(serialize_with = "serialize_double")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    /// Deprecated alias of `run_id` that older clients still read.
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: LifecycleStage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInput {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    pub dataset: Dataset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInput {
    pub model_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

/// An MLflow 3 logged model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_uri: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    pub metrics: Vec<Metric>,
}

/// A page of results with MLflow's opaque continuation token.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Protobuf JSON writes non-finite doubles as the strings "NaN", "Infinity" and "-Infinity";
/// MLflow clients read them back that way.
pub fn serialize_double<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if value.is_infinite() {
        serializer.serialize_str(if *value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Reads a double written as a number or as one of protobuf JSON's non-finite strings.
pub fn parse_double(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse::<f64>().ok(),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_doubles_use_protobuf_json_strings() {
        let metric = |value| Metric {
            key: "m".into(),
            value,
            timestamp: 1,
            step: 0,
            run_id: None,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        };
        assert_eq!(serde_json::to_value(metric(f64::NAN)).unwrap()["value"], "NaN");
        assert_eq!(serde_json::to_value(metric(f64::NEG_INFINITY)).unwrap()["value"], "-Infinity");
        assert_eq!(serde_json::to_value(metric(1.5)).unwrap()["value"], 1.5);
        assert!(parse_double(&serde_json::json!("NaN")).unwrap().is_nan());
        assert_eq!(parse_double(&serde_json::json!("Infinity")), Some(f64::INFINITY));
        assert_eq!(parse_double(&serde_json::json!(3)), Some(3.0));
        assert_eq!(parse_double(&serde_json::json!("abc")), None);
        assert_eq!(parse_double(&serde_json::json!(true)), None);
    }
}
