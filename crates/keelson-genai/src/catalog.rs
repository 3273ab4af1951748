//! Catalog sync: parse a catalog file (YAML or JSON, `version: 1`), compare it with what the
//! source listed last time, write the difference in one transaction, and start the new-model
//! hook. Fetching the file (a path, an artifact, a URL) is the caller's job: this crate sees
//! only its text.

use keelson_core::catalog::{CatalogFile, CatalogModel, EvaluationScore, SyncReport};
use keelson_core::jobs::{NewJob, RetryPolicy};
use keelson_core::{ErrorKind, HasErrorKind};
use keelson_store::catalog::CatalogUpsert;
use keelson_store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasErrorKind for CatalogError {
    fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::Invalid(_) => ErrorKind::InvalidArgument,
            CatalogError::Store(e) => e.kind(),
        }
    }
}

/// The job started for each model a sync adds, when configured: its kind, and the payload
/// carries the model and the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewModelHook {
    pub job_kind: String,
}

#[derive(Clone)]
pub struct CatalogService {
    store: Store,
    retry: RetryPolicy,
    hook: Option<NewModelHook>,
}

/// Parses a catalog file; JSON when it starts with `{`, YAML otherwise (YAML is a superset of
/// JSON, but JSON errors read better from the JSON parser).
pub fn parse_catalog(text: &str) -> Result<CatalogFile, CatalogError> {
    let file: CatalogFile = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| not_a_catalog("JSON", &e.to_string(), Some((e.line(), e.column()))))?
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| not_a_catalog("YAML", &e.to_string(), e.location().map(|at| (at.line(), at.column()))))?
    };
    file.validate().map_err(CatalogError::Invalid)?;
    Ok(file)
}

/// A parse error that says where and, for a missing or unknown field, which — but never quotes
/// the file's values: the file may come from a URL an API caller named, and an error that echoes
/// it would turn catalog sync into a reader of whatever that URL serves.
fn not_a_catalog(format: &str, message: &str, at: Option<(usize, usize)>) -> CatalogError {
    let at = at.map(|(line, column)| format!(" at line {line}, column {column}")).unwrap_or_default();
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.split_once(prefix).map(|(_, rest)| (prefix, rest)))
        .and_then(|(prefix, rest)| rest.split_once('`').map(|(name, _)| (prefix, name)))
        .filter(|(_, name)| name.len() <= 64)
        .map(|(prefix, name)| format!(": {prefix}{name}`"))
        .unwrap_or_default();
    CatalogError::Invalid(format!("catalog file is not valid {format} in the catalog format{at}{field}"))
}

pub fn validate_source_name(source: &str) -> Result<(), CatalogError> {
    if source.is_empty()
        || source.len() > 100
        || !source.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(CatalogError::Invalid(format!(
            "catalog source name `{source}` must be 1–100 letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

impl CatalogService {
    pub fn new(store: Store, retry: RetryPolicy, hook: Option<NewModelHook>) -> Self {
        Self { store, retry, hook }
    }

    /// Syncs one source from its file's text. Entries the file no longer lists are marked
    /// removed (their scores are kept); a model listed again comes back. An id that another
    /// source already lists is refused, and nothing of the file is written.
    pub async fn sync(&self, source: &str, location: &str, text: &str) -> Result<SyncReport, CatalogError> {
        validate_source_name(source)?;
        let file = parse_catalog(text)?;
        let index = self.store.catalog_index().await?;
        let known: HashMap<&str, _> = index.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut report = SyncReport { source: source.to_string(), ..Default::default() };
        let mut upserts = Vec::new();
        let listed: HashSet<&str> = file.models.iter().map(|m| m.id.as_str()).collect();
        for entry in &file.models {
            let entry_json = serde_json::to_string(entry).map_err(|e| CatalogError::Invalid(e.to_string()))?;
            let digest = hex::encode(Sha256::digest(entry_json.as_bytes()));
            match known.get(entry.id.as_str()) {
                Some(stored) if stored.source != source => {
                    return Err(CatalogError::Invalid(format!(
                        "model id `{}` is already listed by catalog source `{}`",
                        entry.id, stored.source
                    )))
                }
                Some(stored) if stored.digest == digest && stored.status == "active" => report.unchanged += 1,
                Some(stored) if stored.status == "removed" => {
                    report.added.push(entry.id.clone());
                    upserts.push(CatalogUpsert { id: entry.id.clone(), entry_json, digest });
                }
                Some(_) => {
                    report.changed.push(entry.id.clone());
                    upserts.push(CatalogUpsert { id: entry.id.clone(), entry_json, digest });
                }
                None => {
                    report.added.push(entry.id.clone());
                    upserts.push(CatalogUpsert { id: entry.id.clone(), entry_json, digest });
                }
            }
        }
        report.removed = index
            .iter()
            .filter(|e| e.source == source && e.status == "active" && !listed.contains(e.id.as_str()))
            .map(|e| e.id.clone())
            .collect();
        let report_json = serde_json::to_string(&report).map_err(|e| CatalogError::Invalid(e.to_string()))?;
        self.store.apply_catalog_sync(source, location, &upserts, &report.removed, &report_json).await?;
        if let Some(hook) = &self.hook {
            for id in &report.added {
                let Some(entry) = file.models.iter().find(|m| &m.id == id) else { continue };
                let payload = serde_json::json!({ "event": "catalog.model_added", "source": source, "model": entry });
                let job = self.store.enqueue_job(&NewJob::new(hook.job_kind.clone(), payload), &self.retry).await?;
                report.hooks.push(format!("{id}: job {}", job.id));
            }
        }
        Ok(report)
    }

    pub async fn list(&self, include_removed: bool) -> Result<Vec<CatalogModel>, CatalogError> {
        Ok(self.store.catalog_models(include_removed).await?)
    }

    pub async fn get(&self, id: &str) -> Result<CatalogModel, CatalogError> {
        Ok(self.store.catalog_model(id).await?)
    }

    /// Records a score an evaluation produced for a catalog model.
    pub async fn record_score(
        &self,
        id: &str,
        metric: &str,
        value: f64,
        evaluation: Option<&str>,
    ) -> Result<EvaluationScore, CatalogError> {
        if metric.trim().is_empty() || metric.len() > 250 {
            return Err(CatalogError::Invalid("metric must be 1–250 characters".into()));
        }
        if !value.is_finite() {
            return Err(CatalogError::Invalid(format!("score value for `{metric}` must be a finite number")));
        }
        Ok(self.store.record_catalog_score(id, metric, value, evaluation).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_files_parse_the_same() {
        let yaml = "version: 1\nmodels:\n  - id: openai/gpt-4o-mini\n    provider: openai\n    model: gpt-4o-mini\n    task: chat\n    context_length: 128000\n    price: {input_per_1k: 0.00015, output_per_1k: 0.0006}\n";
        let json = r#"{"version": 1, "models": [{"id": "openai/gpt-4o-mini", "provider": "openai", "model": "gpt-4o-mini",
            "task": "chat", "context_length": 128000, "price": {"input_per_1k": 0.00015, "output_per_1k": 0.0006}}]}"#;
        assert_eq!(parse_catalog(yaml).unwrap(), parse_catalog(json).unwrap());
        assert!(parse_catalog("version: 1\nmodels:\n  - id: x\n").unwrap_err().to_string().contains("missing field"));
        assert!(parse_catalog("{\"version\": 1, ").is_err());
        assert!(validate_source_name("team-a.models").is_ok());
        assert!(validate_source_name("../etc").is_err());
    }
}
