//! The use cases: ingest a source, run a recipe, validate a version, read a version back. Each
//! writes nothing until the data has passed every check: the Parquet file is uploaded under its
//! content digest and the version row is registered last, in one store transaction.

use crate::dtype::schema_json;
use crate::error::DataError;
use crate::expectations::{ReferenceValues, Suite};
use crate::lineage::{LineageRun, RunInput, RunOutcome};
use crate::pass::{exact_medians, run_pass, PassOutput};
use crate::recipe::{apply, Recipe};
use crate::source::{fetch_local, scan, SourceSpec};
use keelson_artifacts::{ArtifactKey, ArtifactStore};
use keelson_core::datasets::{validate_dataset_name, DatasetVersion, Layer, VersionRef};
use keelson_store::datasets::NewDatasetVersion;
use keelson_store::Store;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct DataSettings {
    pub import_root: PathBuf,
    pub scratch_dir: PathBuf,
    /// Where HTTP and PostgreSQL sources may connect.
    pub egress: keelson_egress::EgressPolicy,
}

#[derive(Clone)]
pub struct DataService {
    store: Store,
    artifacts: ArtifactStore,
    settings: Arc<DataSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    pub source: SourceSpec,
    #[serde(default)]
    pub layer: Option<Layer>,
    #[serde(default)]
    pub expectations: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// What a registration answers.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub version: DatasetVersion,
    pub created: bool,
    pub validation: Option<Value>,
}

/// A readable Parquet file, and the scratch copy to delete afterwards when there is one.
struct ParquetFile {
    path: PathBuf,
    _scratch: Option<tempfile::TempPath>,
}

impl std::ops::Deref for ParquetFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Everything a pass produced that registration needs.
struct Materialized {
    output: PassOutput,
    parquet: tempfile::TempPath,
    validation: Option<Value>,
}

/// Milliseconds since the epoch (freshness and event times).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn blocking_error(error: tokio::task::JoinError) -> DataError {
    DataError::Internal(format!("data task failed: {error}"))
}

fn suite_text(suite: &Option<Value>) -> Result<Option<Suite>, DataError> {
    suite
        .as_ref()
        .map(|value| match value {
            Value::String(text) => serde_yaml::from_str::<Value>(text)
                .map_err(|e| DataError::invalid(format!("expectation suite is not valid YAML: {e}")))
                .and_then(|v| Suite::parse(&v)),
            other => Suite::parse(other),
        })
        .transpose()
}

impl DataService {
    pub fn new(store: Store, artifacts: ArtifactStore, settings: DataSettings) -> Result<Self, DataError> {
        std::fs::create_dir_all(&settings.import_root)?;
        std::fs::create_dir_all(&settings.scratch_dir)?;
        Ok(Self { store, artifacts, settings: Arc::new(settings) })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn scratch_file(&self, suffix: &str) -> Result<tempfile::TempPath, DataError> {
        Ok(tempfile::Builder::new()
            .prefix("keelson-")
            .suffix(suffix)
            .tempfile_in(&self.settings.scratch_dir)?
            .into_temp_path())
    }

    /// Resolves `version` (a number, or `latest`/None) of a dataset.
    pub async fn version(&self, dataset: &str, version: Option<i64>) -> Result<DatasetVersion, DataError> {
        Ok(match version {
            Some(v) => self.store.get_dataset_version(dataset, v).await?,
            None => self.store.latest_dataset_version(dataset, None).await?,
        })
    }

    /// A version's Parquet file on local disk: read in place from a local artifact store (versions
    /// are immutable), downloaded to scratch space from an object store.
    async fn fetch_parquet(&self, version: &DatasetVersion) -> Result<ParquetFile, DataError> {
        let key = ArtifactKey::parse(&version.artifact_key)?;
        if let Some(path) = self.artifacts.local_path(&key) {
            return Ok(ParquetFile { path, _scratch: None });
        }
        let target = self.scratch_file(".parquet")?;
        crate::source::download_artifact(&self.artifacts, &key, &target).await?;
        Ok(ParquetFile { path: target.to_path_buf(), _scratch: Some(target) })
    }

    /// The values each referential-integrity check of `suite` looks up.
    async fn load_references(&self, suite: &Option<Suite>) -> Result<ReferenceValues, DataError> {
        let mut values = ReferenceValues::new();
        let Some(suite) = suite else { return Ok(values) };
        for (dataset, version, column) in suite.references() {
            let resolved = self.version(&dataset, version).await.map_err(|e| match e {
                DataError::Store(keelson_store::StoreError::NotFound(m)) => {
                    DataError::invalid(format!("referential_integrity: {m}"))
                }
                other => other,
            })?;
            let file = self.fetch_parquet(&resolved).await?;
            let column_name = column.clone();
            let series = tokio::task::spawn_blocking(move || -> Result<Series, DataError> {
                let path = PlRefPath::try_from_path(&file)?;
                let frame = LazyFrame::scan_parquet(path, ScanArgsParquet::default())?
                    .select([col(column_name.as_str()).unique()])
                    .collect()
                    .map_err(|e| DataError::invalid(format!("referential_integrity: column `{column_name}`: {e}")))?;
                drop(file);
                Ok(frame.select_at_idx(0).map(|c| c.as_materialized_series().clone()).unwrap_or_default())
            })
            .await
            .map_err(blocking_error)??;
            values.insert((dataset, version, column), series);
        }
        Ok(values)
    }

    /// Plans the frame (`plan` reads file metadata, so it runs on the blocking thread too) and
    /// streams it to a scratch Parquet file with profile, digest and the suite's checks.
    async fn materialize(
        &self,
        plan: impl FnOnce() -> Result<LazyFrame, DataError> + Send + 'static,
        context: String,
        suite: Option<Suite>,
        references: ReferenceValues,
    ) -> Result<Materialized, DataError> {
        let parquet = self.scratch_file(".parquet")?;
        let target = parquet.to_path_buf();
        let now = now_ms();
        let (output, validation) =
            tokio::task::spawn_blocking(move || -> Result<(PassOutput, Option<Value>), DataError> {
                let frame = plan()?;
                let mut output = run_pass(frame, &context, Some(&target), suite.as_ref().map(|s| (s, &references)))?;
                let validation = match (output.suite.take(), &suite) {
                    (Some(compiled), Some(suite)) => {
                        let medians = exact_medians(&target, &suite.needs_median())?;
                        Some(compiled.finish(&output.profile, &medians, now))
                    }
                    _ => None,
                };
                Ok((output, validation))
            })
            .await
            .map_err(blocking_error)??;
        Ok(Materialized { output, parquet, validation })
    }

    pub async fn ingest(
        &self,
        dataset: &str,
        request: IngestRequest,
        principal: Option<&str>,
    ) -> Result<Registered, DataError> {
        validate_dataset_name(dataset).map_err(|e| DataError::invalid(e.to_string()))?;
        let suite = suite_text(&request.expectations)?;
        let layer = request.layer.unwrap_or(Layer::Bronze);
        let job = format!("ingest.{dataset}");
        let run = LineageRun::start(&self.store, &job, Vec::new(), Some(dataset), BTreeMap::new()).await;
        let result = self.ingest_inner(dataset, &request, layer, suite, principal).await;
        run.finish(&self.store, RunOutcome::from(&result)).await;
        result
    }

    async fn ingest_inner(
        &self,
        dataset: &str,
        request: &IngestRequest,
        layer: Layer,
        suite: Option<Suite>,
        principal: Option<&str>,
    ) -> Result<Registered, DataError> {
        let references = self.load_references(&suite).await?;
        let local = Arc::new(
            fetch_local(
                &request.source,
                &self.settings.import_root,
                &self.artifacts,
                &self.settings.scratch_dir,
                &self.settings.egress,
            )
            .await?,
        );
        let scanned = local.clone();
        let materialized =
            match self.materialize(move || scan(&scanned), local.display.clone(), suite, references).await {
                Ok(materialized) => materialized,
                Err(error) => return Err(crate::source::diagnose(&local, error)),
            };
        drop(local);
        let source = request.source.describe();
        self.register(
            dataset,
            layer,
            materialized,
            source,
            None,
            Vec::new(),
            Vec::new(),
            request.description.clone(),
            principal,
        )
        .await
    }

    /// Uploads and registers a materialised version, unless a failing `error` expectation or
    /// unmasked personal data keeps it out of its layer.
    #[allow(clippy::too_many_arguments)]
    async fn register(
        &self,
        dataset: &str,
        layer: Layer,
        materialized: Materialized,
        source: Value,
        recipe_digest: Option<String>,
        inputs: Vec<VersionRef>,
        masked_columns: Vec<String>,
        description: Option<String>,
        principal: Option<&str>,
    ) -> Result<Registered, DataError> {
        let Materialized { output, parquet, validation } = materialized;
        if let Some(result) = &validation {
            if layer != Layer::Bronze && result.get("success") == Some(&Value::Bool(false)) {
                return Err(refusal(dataset, layer, result));
            }
        }
        let existing = match self.store.get_dataset(dataset).await {
            Ok(found) => Some(found),
            Err(keelson_store::StoreError::NotFound(_)) => None,
            Err(other) => return Err(other.into()),
        };
        // PII tags follow the data: a column tagged on an input stays tagged on the output until
        // a recipe masks it, so the gold rule holds however many layers lie between.
        let own_pii: BTreeSet<String> =
            existing.as_ref().map(|d| d.pii_columns.iter().cloned().collect()).unwrap_or_default();
        let mut pii = own_pii.clone();
        for input in &inputs {
            if let Ok(found) = self.store.get_dataset(&input.dataset).await {
                pii.extend(found.pii_columns);
            }
        }
        let unmasked: Vec<String> = pii
            .into_iter()
            .filter(|c| output.schema.get(c.as_str()).is_some() && !masked_columns.contains(c))
            .collect();
        if layer == Layer::Gold && !unmasked.is_empty() {
            return Err(DataError::invalid(format!(
                "dataset version refused: PII-tagged column(s) {} may not enter gold unmasked; add a `mask` step",
                unmasked.join(", ")
            )));
        }
        if existing.is_none() {
            match self.store.create_dataset(dataset, description.as_deref(), &BTreeMap::new(), &[]).await {
                Ok(_) | Err(keelson_store::StoreError::AlreadyExists(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        if unmasked.iter().any(|c| !own_pii.contains(c)) {
            let tagged: Vec<String> = own_pii.iter().cloned().chain(unmasked.iter().cloned()).collect();
            let tagged = keelson_core::datasets::validate_column_list(&tagged)
                .map_err(|e| DataError::Internal(e.to_string()))?;
            self.store.update_dataset(dataset, None, None, Some(tagged)).await?;
        }
        let hex = output.digest.trim_start_matches("sha256:").to_string();
        let key = ArtifactKey::parse(&format!("datasets/{dataset}/{hex}.parquet"))?;
        let size_bytes = std::fs::metadata(&parquet)?.len() as i64;
        // The key is the content digest: an object already there of this size is this content
        // (a re-ingest, or a rerun after a crash), so it is not sent again.
        let stored = matches!(self.artifacts.head(&key).await, Ok(info) if info.size as i64 == size_bytes);
        if !stored {
            self.artifacts.put_file(&key, &parquet).await?;
        }
        drop(parquet);
        let profile = output.profile.report(&output.schema);
        let score = validation.as_ref().and_then(|v| v.get("score")).and_then(Value::as_f64);
        let new = NewDatasetVersion {
            dataset: dataset.to_string(),
            digest: output.digest.clone(),
            layer,
            artifact_key: key.as_str().to_string(),
            row_count: output.row_count as i64,
            size_bytes,
            schema: schema_json(&output.schema),
            profile,
            source,
            recipe_digest,
            inputs,
            validation: validation.clone(),
            // The validation record below sets it (one path for every backend's score).
            quality_score: None,
            masked_columns,
            created_by: principal.map(str::to_string),
        };
        let (mut version, created) = self.store.register_dataset_version(&new).await?;
        if let (Some(result), true) = (&validation, created) {
            self.record_validation(&version, result).await?;
            version.quality_score = score;
        }
        Ok(Registered { version, created, validation })
    }

    async fn record_validation(&self, version: &DatasetVersion, result: &Value) -> Result<i64, DataError> {
        let score = result.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        let success = result.get("success").and_then(Value::as_bool).unwrap_or(false);
        let digest = result.get("suite_digest").and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(self
            .store
            .record_dataset_validation(&version.dataset, version.version, &digest, result, score, success)
            .await?)
    }

    /// Runs a recipe: loads its inputs, applies its steps and registers the output version.
    pub async fn run_recipe(&self, recipe: &Value, principal: Option<&str>) -> Result<Registered, DataError> {
        let recipe = Recipe::parse(recipe)?;
        validate_dataset_name(&recipe.output.dataset).map_err(|e| DataError::invalid(e.to_string()))?;
        let suite = suite_text(&recipe.expectations)?;
        let mut resolved = BTreeMap::new();
        for (alias, input) in &recipe.inputs {
            let version = self.version(input.dataset(), input.version()).await.map_err(|e| match e {
                DataError::Store(keelson_store::StoreError::NotFound(m)) => {
                    DataError::invalid(format!("recipe input `{alias}`: {m}"))
                }
                other => other,
            })?;
            resolved.insert(alias.clone(), version);
        }
        let inputs = resolved.values().map(RunInput::of).collect();
        let run =
            LineageRun::start(&self.store, &recipe.name, inputs, Some(&recipe.output.dataset), recipe.renames()).await;
        let result = self.run_recipe_inner(&recipe, resolved, suite, principal).await;
        run.finish(&self.store, RunOutcome::from(&result)).await;
        result
    }

    async fn run_recipe_inner(
        &self,
        recipe: &Recipe,
        resolved: BTreeMap<String, DatasetVersion>,
        suite: Option<Suite>,
        principal: Option<&str>,
    ) -> Result<Registered, DataError> {
        let references = self.load_references(&suite).await?;
        let mut files = Vec::new();
        let mut inherited_masks = BTreeSet::new();
        for (alias, version) in &resolved {
            files.push((alias.clone(), self.fetch_parquet(version).await?));
            inherited_masks.extend(version.masked_columns.iter().cloned());
        }
        let paths: Vec<(String, PathBuf)> =
            files.iter().map(|(alias, file)| (alias.clone(), file.to_path_buf())).collect();
        let recipe_for_plan = recipe.clone();
        let plan = move || -> Result<LazyFrame, DataError> {
            let mut frames = BTreeMap::new();
            for (alias, path) in paths {
                let path = PlRefPath::try_from_path(&path)?;
                frames.insert(alias, LazyFrame::scan_parquet(path, ScanArgsParquet::default())?);
            }
            apply(&recipe_for_plan, &frames)
        };
        let materialized = self.materialize(plan, format!("recipe `{}`", recipe.name), suite, references).await?;
        drop(files);
        let mut masked: BTreeSet<String> = inherited_masks;
        for step in &recipe.steps {
            if let Some(columns) = step.get("mask").and_then(|m| m.get("columns")) {
                match columns {
                    Value::String(one) => {
                        masked.insert(one.clone());
                    }
                    Value::Array(many) => masked.extend(many.iter().filter_map(Value::as_str).map(str::to_string)),
                    _ => {}
                }
            }
        }
        let masked: Vec<String> =
            masked.into_iter().filter(|c| materialized.output.schema.get(c.as_str()).is_some()).collect();
        let inputs: Vec<VersionRef> = resolved.values().map(DatasetVersion::version_ref).collect();
        let source = json!({"kind": "recipe", "name": recipe.name, "inputs": inputs});
        self.register(
            &recipe.output.dataset,
            recipe.output.layer,
            materialized,
            source,
            Some(recipe.digest()),
            inputs,
            masked,
            recipe.output.description.clone(),
            principal,
        )
        .await
    }

    /// Validates an existing version against a suite and records the result (the quality trend).
    pub async fn validate(&self, dataset: &str, version: Option<i64>, suite: &Value) -> Result<Value, DataError> {
        let suite =
            suite_text(&Some(suite.clone()))?.ok_or_else(|| DataError::invalid("an expectation suite is needed"))?;
        let version = self.version(dataset, version).await?;
        let job = format!("validate.{dataset}");
        let run = LineageRun::start(&self.store, &job, vec![RunInput::of(&version)], None, BTreeMap::new()).await;
        let result = self.validate_inner(&version, suite).await;
        run.finish_validation(&self.store, &version, &result).await;
        let result = result?;
        self.record_validation(&version, &result).await?;
        Ok(result)
    }

    async fn validate_inner(&self, version: &DatasetVersion, suite: Suite) -> Result<Value, DataError> {
        let references = self.load_references(&Some(suite.clone())).await?;
        let file = self.fetch_parquet(version).await?;
        let now = now_ms();
        let context = format!("{} v{}", version.dataset, version.version);
        tokio::task::spawn_blocking(move || -> Result<Value, DataError> {
            let path = PlRefPath::try_from_path(&file)?;
            let frame = LazyFrame::scan_parquet(path, ScanArgsParquet::default())?;
            let mut output = run_pass(frame, &context, None, Some((&suite, &references)))?;
            let compiled = output.suite.take().ok_or_else(|| DataError::Internal("suite not compiled".into()))?;
            let medians = exact_medians(&file, &suite.needs_median())?;
            Ok(compiled.finish(&output.profile, &medians, now))
        })
        .await
        .map_err(blocking_error)?
    }

    /// Rows of a version as JSON: `{"columns", "rows", "total"}`.
    pub async fn rows(&self, dataset: &str, version: Option<i64>, offset: i64, limit: i64) -> Result<Value, DataError> {
        if !(0..=10_000).contains(&limit) || offset < 0 {
            return Err(DataError::invalid("limit must be 0..=10000 and offset >= 0"));
        }
        let version = self.version(dataset, version).await?;
        let file = self.fetch_parquet(&version).await?;
        tokio::task::spawn_blocking(move || -> Result<Value, DataError> {
            let path = PlRefPath::try_from_path(&file)?;
            let frame =
                LazyFrame::scan_parquet(path, ScanArgsParquet::default())?.slice(offset, limit as IdxSize).collect()?;
            let columns: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
            let mut rows = Vec::with_capacity(frame.height());
            for row in 0..frame.height() {
                let mut values = Vec::with_capacity(columns.len());
                for column in frame.columns() {
                    values.push(crate::expectations::any_to_json(column.get(row)?));
                }
                rows.push(Value::Array(values));
            }
            Ok(json!({"columns": columns, "rows": rows, "total": version.row_count}))
        })
        .await
        .map_err(blocking_error)?
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }
}

fn refusal(dataset: &str, layer: Layer, result: &Value) -> DataError {
    let failures: Vec<String> = result
        .get("results")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|r| r.get("success") == Some(&Value::Bool(false)) && r.get("severity") == Some(&json!("error")))
                .map(|r| {
                    format!(
                        "expectation {} ({} on {}) failed: {}",
                        r.get("index").unwrap_or(&Value::Null),
                        r.get("type").and_then(Value::as_str).unwrap_or_default(),
                        r.get("column").and_then(Value::as_str).unwrap_or("the table"),
                        r.get("message").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    DataError::Refused {
        message: format!("dataset version refused: {} (dataset `{dataset}`, layer {layer})", failures.join("; ")),
        validation: Box::new(result.clone()),
    }
}
