//! Versioned dataset domain types (the DataOps contract, `data-api-spec.md`: "Domain types") and
//! the validation of the names users give them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The longest dataset name accepted.
pub const MAX_DATASET_NAME_LENGTH: usize = 128;

/// The medallion layer a version belongs to: raw ingests are bronze, cleaned data silver,
/// aggregated or feature-ready data gold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Bronze,
    Silver,
    Gold,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Bronze, Layer::Silver, Layer::Gold];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown layer `{0}`; expected one of bronze, silver, gold")]
pub struct LayerParseError(pub String);

/// Layer names are case-insensitive on input; they are always written in lowercase.
impl FromStr for Layer {
    type Err = LayerParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|layer| layer.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| LayerParseError(s.into()))
    }
}

/// One version of one dataset, as the inputs of a transform name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionRef {
    pub dataset: String,
    pub version: i64,
}

impl VersionRef {
    pub fn new(dataset: impl Into<String>, version: i64) -> Self {
        Self { dataset: dataset.into(), version }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Columns tagged as personal data, sorted and unique.
    pub pii_columns: Vec<String>,
    /// Milliseconds since the epoch.
    pub created: i64,
    pub updated: i64,
    pub latest_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVersion {
    pub dataset: String,
    /// 1, 2, 3 … per dataset, never reused.
    pub version: i64,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    pub layer: Layer,
    /// The Parquet file in the artifact store.
    pub artifact_key: String,
    pub row_count: i64,
    pub size_bytes: i64,
    /// `[{"name": …, "dtype": …, "nullable": …}, …]`
    pub schema: serde_json::Value,
    pub profile: serde_json::Value,
    /// The source spec or recipe summary the version came from.
    pub source: serde_json::Value,
    pub recipe_digest: Option<String>,
    /// The versions a transform read.
    pub inputs: Vec<VersionRef>,
    /// The validation result at registration, if any.
    pub validation: Option<serde_json::Value>,
    pub quality_score: Option<f64>,
    pub masked_columns: Vec<String>,
    pub created: i64,
    pub created_by: Option<String>,
}

impl DatasetVersion {
    pub fn version_ref(&self) -> VersionRef {
        VersionRef::new(self.dataset.clone(), self.version)
    }
}

/// One recorded validation of a version: a point of the dataset's quality trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityPoint {
    pub version: i64,
    pub validation_id: i64,
    pub score: f64,
    pub success: bool,
    pub validated_at: i64,
}

/// A recorded validation with its full result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetValidation {
    pub id: i64,
    pub dataset: String,
    pub version: i64,
    pub suite_digest: String,
    pub result: serde_json::Value,
    pub score: f64,
    pub success: bool,
    pub validated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "dataset name `{0}` is invalid: use 1-128 characters of A-Z, a-z, 0-9, '_', '.' or '-', \
     starting with a letter or digit"
)]
pub struct DatasetNameError(pub String);

pub fn validate_dataset_name(name: &str) -> Result<(), DatasetNameError> {
    let starts_alphanumeric = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let allowed = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !starts_alphanumeric || !allowed || name.len() > MAX_DATASET_NAME_LENGTH {
        return Err(DatasetNameError(name.into()));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnListError {
    #[error("column name at position {0} is empty; every listed column needs a name")]
    Empty(usize),
    #[error("column name `{0}` is longer than 1024 bytes")]
    TooLong(String),
}

/// Checks a list of column names (PII columns, masked columns) and returns it sorted and
/// without duplicates, the form the store keeps.
pub fn validate_column_list(columns: &[String]) -> Result<Vec<String>, ColumnListError> {
    for (position, column) in columns.iter().enumerate() {
        if column.is_empty() {
            return Err(ColumnListError::Empty(position));
        }
        if column.len() > 1024 {
            return Err(ColumnListError::TooLong(column.clone()));
        }
    }
    let mut sorted = columns.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_parse_display_and_serialise_in_lowercase() {
        for layer in Layer::ALL {
            assert_eq!(layer.to_string().parse::<Layer>(), Ok(layer));
            assert_eq!(serde_json::to_value(layer).ok(), Some(serde_json::json!(layer.as_str())));
        }
        assert_eq!("Gold".parse::<Layer>(), Ok(Layer::Gold));
        let err = "platinum".parse::<Layer>().err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, "unknown layer `platinum`; expected one of bronze, silver, gold");
        assert!(serde_json::from_str::<Layer>("\"platinum\"").is_err());
        assert_eq!(serde_json::from_str::<Layer>("\"silver\"").ok(), Some(Layer::Silver));
    }

    #[test]
    fn dataset_names() {
        for good in ["orders", "a", "0x", "orders_raw.v2-eu", &"a".repeat(128)] {
            assert_eq!(validate_dataset_name(good), Ok(()), "{good}");
        }
        for bad in ["", "_orders", ".hidden", "-x", "a b", "a/b", "../x", "ordérs", &"a".repeat(129)] {
            assert!(validate_dataset_name(bad).is_err(), "{bad}");
        }
        let message = validate_dataset_name("a b").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("`a b`") && message.contains("1-128 characters"), "{message}");
    }

    #[test]
    fn column_lists_are_sorted_and_unique() {
        let columns: Vec<String> = ["email", "name", "email"].map(String::from).to_vec();
        assert_eq!(validate_column_list(&columns), Ok(vec!["email".to_string(), "name".to_string()]));
        assert_eq!(validate_column_list(&["a".into(), String::new()]), Err(ColumnListError::Empty(1)));
    }

    #[test]
    fn version_round_trips_through_json() {
        let version = DatasetVersion {
            dataset: "orders".into(),
            version: 2,
            digest: "sha256:ab".into(),
            layer: Layer::Silver,
            artifact_key: "datasets/orders/2.parquet".into(),
            row_count: 10,
            size_bytes: 2048,
            schema: serde_json::json!([{"name": "id", "dtype": "Int64", "nullable": false}]),
            profile: serde_json::json!({"row_count": 10}),
            source: serde_json::json!({"kind": "file"}),
            recipe_digest: None,
            inputs: vec![VersionRef::new("orders_raw", 1)],
            validation: None,
            quality_score: Some(0.5),
            masked_columns: vec![],
            created: 1,
            created_by: Some("alice".into()),
        };
        let json = serde_json::to_string(&version).unwrap_or_default();
        assert!(json.contains("\"layer\":\"silver\""), "{json}");
        assert_eq!(serde_json::from_str::<DatasetVersion>(&json).ok(), Some(version));
    }
}
