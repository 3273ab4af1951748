//! The model catalog: which models a team may use, from which provider, at what price and
//! context length, under which license, and how Keelson's own evaluations scored them. Entries
//! come from catalog files (`version: 1`, YAML or JSON) that a sync reads on a schedule.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// An ONNX file Keelson runs itself.
    LocalOnnx,
    /// A GGUF file (llama.cpp-family runtimes).
    LocalGguf,
    Openai,
    AzureOpenai,
    Anthropic,
    /// Any server speaking OpenAI's API (vLLM, Ollama, LM Studio…); needs an `endpoint`.
    OpenaiCompatible,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        f.write_str(&text)
    }
}

/// Price per 1,000 tokens (or per 1,000 rows for classic models), in `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input_per_1k: f64,
    #[serde(default)]
    pub output_per_1k: f64,
    #[serde(default = "usd")]
    pub currency: String,
}

fn usd() -> String {
    "USD".into()
}

/// One model as a catalog file describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Unique within the catalog, e.g. `openai/gpt-4o-mini` or `local/fraud-onnx`.
    pub id: String,
    pub provider: Provider,
    /// The provider's own model name (`gpt-4o-mini`, a deployment name on Azure).
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// What it does: `chat`, `completion`, `embeddings`, `classification`, `regression`…
    pub task: String,
    #[serde(default = "text_only")]
    pub modalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Base URL for `openai-compatible` and `azure-openai` providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Location of the weights for local providers (an artifact key or a `models:/` URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn text_only() -> Vec<String> {
    vec!["text".into()]
}

/// A catalog file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub version: u32,
    #[serde(default)]
    pub models: Vec<CatalogEntry>,
}

const MODALITIES: &[&str] = &["text", "image", "audio", "video", "tabular", "embedding"];

impl CatalogEntry {
    /// What a file may not say; every problem is named with the entry's id.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.id;
        if id.trim().is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("model id `{id}` must be 1–200 characters without spaces"));
        }
        if self.model.trim().is_empty() {
            return Err(format!("model `{id}`: `model` must not be empty"));
        }
        if self.task.trim().is_empty() {
            return Err(format!("model `{id}`: `task` must not be empty"));
        }
        if let Some(unknown) = self.modalities.iter().find(|m| !MODALITIES.contains(&m.as_str())) {
            return Err(format!("model `{id}`: unknown modality `{unknown}` (known: {})", MODALITIES.join(", ")));
        }
        if self.context_length == Some(0) {
            return Err(format!("model `{id}`: context_length must be positive"));
        }
        if let Some(price) = &self.price {
            let valid = |value: f64| value.is_finite() && value >= 0.0;
            if !valid(price.input_per_1k) || !valid(price.output_per_1k) {
                return Err(format!("model `{id}`: prices must be finite and not negative"));
            }
        }
        match self.provider {
            Provider::OpenaiCompatible | Provider::AzureOpenai
                if self.endpoint.as_deref().is_none_or(str::is_empty) =>
            {
                Err(format!("model `{id}`: provider `{}` needs an `endpoint`", self.provider))
            }
            Provider::LocalOnnx | Provider::LocalGguf if self.uri.as_deref().is_none_or(str::is_empty) => {
                Err(format!("model `{id}`: provider `{}` needs a `uri` for its weights", self.provider))
            }
            _ => Ok(()),
        }
    }
}

impl CatalogFile {
    /// Checks the version, every entry, and that ids are unique.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("unsupported catalog version {}; this Keelson reads version 1", self.version));
        }
        let mut seen = std::collections::HashSet::new();
        for entry in &self.models {
            entry.validate()?;
            if !seen.insert(entry.id.as_str()) {
                return Err(format!("model id `{}` appears twice", entry.id));
            }
        }
        Ok(())
    }
}

/// An evaluation score a Keelson evaluation recorded for a catalog model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationScore {
    pub metric: String,
    pub value: f64,
    /// What produced it: an evaluation run id, a pipeline run…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<String>,
    pub timestamp: i64,
}

/// A catalog model as stored: the entry, where it came from, and what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogModel {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub source: String,
    /// `active`, or `removed` once the source no longer lists it.
    pub status: String,
    pub first_seen: i64,
    pub updated: i64,
    pub scores: Vec<EvaluationScore>,
}

/// What one sync of a source changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub source: String,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Jobs started for added models (the evaluation hook), by model id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: serde_json::Value) -> Result<CatalogEntry, String> {
        let entry: CatalogEntry = serde_json::from_value(json).map_err(|e| e.to_string())?;
        entry.validate().map(|_| entry)
    }

    #[test]
    fn entries_are_validated() {
        let ok = entry(serde_json::json!({
            "id": "openai/gpt-4o-mini", "provider": "openai", "model": "gpt-4o-mini", "task": "chat",
            "modalities": ["text", "image"], "context_length": 128000,
            "price": {"input_per_1k": 0.00015, "output_per_1k": 0.0006}, "license": "proprietary"
        }))
        .unwrap();
        assert_eq!(ok.price.unwrap().currency, "USD");
        assert!(entry(serde_json::json!({"id": "x", "provider": "openai-compatible", "model": "m", "task": "chat"}))
            .unwrap_err()
            .contains("needs an `endpoint`"));
        assert!(entry(
            serde_json::json!({"id": "x", "provider": "local-onnx", "model": "m", "task": "classification"})
        )
        .unwrap_err()
        .contains("needs a `uri`"));
        assert!(entry(
            serde_json::json!({"id": "x", "provider": "openai", "model": "m", "task": "chat", "modalities": ["smell"]})
        )
        .unwrap_err()
        .contains("unknown modality"));
        assert!(entry(serde_json::json!({"id": "x", "provider": "nope", "model": "m", "task": "chat"})).is_err());
        assert!(entry(serde_json::json!({"id": "x", "provider": "openai", "model": "m", "task": "chat", "colour": 1}))
            .is_err());
        assert!(entry(serde_json::json!({"id": "a b", "provider": "openai", "model": "m", "task": "chat"})).is_err());
    }

    #[test]
    fn files_need_version_one_and_unique_ids() {
        let model = serde_json::json!({"id": "x", "provider": "anthropic", "model": "claude", "task": "chat"});
        let file: CatalogFile =
            serde_json::from_value(serde_json::json!({"version": 1, "models": [model.clone(), model]})).unwrap();
        assert!(file.validate().unwrap_err().contains("appears twice"));
        let file: CatalogFile = serde_json::from_value(serde_json::json!({"version": 2, "models": []})).unwrap();
        assert!(file.validate().unwrap_err().contains("version 2"));
    }
}
