//! Model registry domain types. Field names follow MLflow's `model_registry.proto` so the server
//! serialises them directly; Keelson's additions (promotion policies, alias history, approvals)
//! use the same naming style.

use crate::tracking::Tag;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// MLflow's registry limits (mlflow/utils/validation.py).
pub mod limits {
    pub const MAX_REGISTRY_TAG_KEY_LENGTH: usize = 250;
    pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
    pub const MAX_ALIAS_LENGTH: usize = 255;
    pub const MAX_RESULTS_SEARCH_REGISTERED_MODELS: i64 = 1000;
    pub const DEFAULT_SEARCH_REGISTERED_MODELS_RESULTS: i64 = 100;
    pub const MAX_RESULTS_SEARCH_MODEL_VERSIONS: i64 = 200_000;
    pub const DEFAULT_SEARCH_MODEL_VERSIONS_RESULTS: i64 = 10_000;
}

/// The tag that marks a registered model as a prompt (MLflow 3 prompt registry).
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// Legacy registry stages. `Deleted_Internal` marks a deleted version whose number stays taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::None, Stage::Staging, Stage::Production, Stage::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Stages whose existing holders `archive_existing_versions` may archive.
    pub fn is_active(self) -> bool {
        matches!(self, Stage::Staging | Stage::Production)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stage names are case-insensitive on input, as in MLflow.
impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL.into_iter().find(|stage| stage.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            format!(
                "Invalid Model Version stage: {s}. Value must be one of {}.",
                Stage::ALL.map(|stage| stage.as_str()).join(", ")
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub aliases: Vec<RegisteredModelAlias>,
}

impl RegisteredModel {
    pub fn is_prompt(&self) -> bool {
        self.tags.iter().any(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub current_stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Where the version's files are (a logged model's artifact location when `source` is a
    /// `models:/` URI); not part of MLflow's message, so never serialised.
    #[serde(skip)]
    pub storage_location: Option<String>,
    /// Metrics of the source run and logged model when the version was registered (JSON
    /// object); shown by lineage, not part of MLflow's message.
    #[serde(skip)]
    pub registration_metrics: Option<String>,
}

impl ModelVersion {
    pub fn number(&self) -> i64 {
        self.version.parse().unwrap_or(0)
    }

    /// Where the version's files are: what `GetModelVersionDownloadUri` answers.
    pub fn download_uri(&self) -> &str {
        self.storage_location.as_deref().unwrap_or(&self.source)
    }
}

/// One move of an alias: set, moved, removed or rolled back. The registry's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasEvent {
    pub id: i64,
    pub name: String,
    pub alias: String,
    /// The version the alias pointed at before; none when it was first set.
    pub from_version: Option<String>,
    /// The version it points at after; none when it was deleted.
    pub to_version: Option<String>,
    pub actor: String,
    pub reason: String,
    pub timestamp: i64,
}

/// An approval of a version for an alias, by a user holding a role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub name: String,
    pub version: String,
    pub alias: String,
    pub approver: String,
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub timestamp: i64,
}
