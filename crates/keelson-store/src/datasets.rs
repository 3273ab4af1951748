//! SQL for versioned datasets: datasets, their numbered versions with the inputs each was
//! derived from, and the validations recorded against versions (the quality trend). JSON fields
//! (schema, profile, source, validation results) are kept whole as text.

use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::datasets::{
    validate_column_list, validate_dataset_name, Dataset, DatasetValidation, DatasetVersion, Layer, QualityPoint,
    VersionRef,
};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, HashMap};

/// A version as a registration writes it; the store assigns `version` and `created`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDatasetVersion {
    pub dataset: String,
    /// `sha256:<hex>` of the content; registering the same digest again returns the existing
    /// version.
    pub digest: String,
    pub layer: Layer,
    pub artifact_key: String,
    pub row_count: i64,
    pub size_bytes: i64,
    pub schema: serde_json::Value,
    pub profile: serde_json::Value,
    pub source: serde_json::Value,
    pub recipe_digest: Option<String>,
    /// Must all exist; duplicates are dropped, the first occurrence keeps its place.
    pub inputs: Vec<VersionRef>,
    pub validation: Option<serde_json::Value>,
    pub quality_score: Option<f64>,
    pub masked_columns: Vec<String>,
    pub created_by: Option<String>,
}

const DATASET_SELECT: &str = "SELECT d.name, d.description, d.tags, d.pii_columns, d.created, d.updated, \
     (SELECT MAX(v.version) FROM dataset_versions v WHERE v.dataset = d.name) AS latest_version \
     FROM versioned_datasets d";

const VERSION_COLUMNS: &str = "dataset, version, digest, layer, artifact_key, row_count, size_bytes, schema_json, \
     profile_json, source_json, recipe_digest, validation_json, quality_score, masked_columns, created, created_by";

fn dataset_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("dataset `{name}` does not exist"))
}

fn version_not_found(name: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!("version {version} of dataset `{name}` does not exist"))
}

fn to_json_text<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidArgument(format!("{what} cannot be written as JSON: {e}")))
}

fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("dataset column {column}: {e}")))
}

fn optional_json_column(row: &AnyRow, column: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("dataset column {column}: {e}")))
    })
    .transpose()
}

fn dataset_from_row(row: &AnyRow) -> Result<Dataset, StoreError> {
    Ok(Dataset {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        tags: json_column(row, "tags")?,
        pii_columns: json_column(row, "pii_columns")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
        latest_version: row.try_get("latest_version")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<DatasetVersion, StoreError> {
    let layer: String = row.try_get("layer")?;
    Ok(DatasetVersion {
        dataset: row.try_get("dataset")?,
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        layer: layer.parse().map_err(|e| StoreError::Corrupt(format!("dataset version layer: {e}")))?,
        artifact_key: row.try_get("artifact_key")?,
        row_count: row.try_get("row_count")?,
        size_bytes: row.try_get("size_bytes")?,
        schema: json_column(row, "schema_json")?,
        profile: json_column(row, "profile_json")?,
        source: json_column(row, "source_json")?,
        recipe_digest: row.try_get("recipe_digest")?,
        inputs: Vec::new(),
        validation: optional_json_column(row, "validation_json")?,
        quality_score: row.try_get("quality_score")?,
        masked_columns: json_column(row, "masked_columns")?,
        created: row.try_get("created")?,
        created_by: row.try_get("created_by")?,
    })
}

fn validation_from_row(row: &AnyRow) -> Result<DatasetValidation, StoreError> {
    Ok(DatasetValidation {
        id: row.try_get("id")?,
        dataset: row.try_get("dataset")?,
        version: row.try_get("version")?,
        suite_digest: row.try_get("suite_digest")?,
        result: json_column(row, "result")?,
        score: row.try_get("score")?,
        success: row.try_get::<i64, _>("success")? != 0,
        validated_at: row.try_get("validated_at")?,
    })
}

/// SQLite stores NaN as NULL, and neither backend orders non-finite scores usefully.
fn check_score(score: f64, what: &str) -> Result<(), StoreError> {
    if score.is_finite() {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!("{what} {score} is not a finite number")))
    }
}

fn dedup_inputs(inputs: &[VersionRef]) -> Vec<VersionRef> {
    let mut unique: Vec<VersionRef> = Vec::with_capacity(inputs.len());
    for input in inputs {
        if !unique.contains(input) {
            unique.push(input.clone());
        }
    }
    unique
}

impl Store {
    pub async fn create_dataset(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
        pii_columns: &[String],
    ) -> Result<Dataset, StoreError> {
        validate_dataset_name(name).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let pii_columns = validate_column_list(pii_columns)
            .map_err(|e| StoreError::InvalidArgument(format!("pii_columns of dataset `{name}`: {e}")))?;
        let tags_json = to_json_text(tags, "dataset tags")?;
        let pii_json = to_json_text(&pii_columns, "dataset pii_columns")?;
        let already_exists = || StoreError::AlreadyExists(format!("dataset `{name}` already exists"));
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists = sqlx::query("SELECT 1 AS one FROM versioned_datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(already_exists());
        }
        sqlx::query(
            "INSERT INTO versioned_datasets (name, description, tags, pii_columns, next_version, created, updated) \
             VALUES ($1, $2, $3, $4, 1, $5, $6)",
        )
        .bind(name)
        .bind(description)
        .bind(&tags_json)
        .bind(&pii_json)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)
        .map_err(|e| if e.is_unique_violation() { already_exists() } else { e })?;
        tx.commit().await?;
        Ok(Dataset {
            name: name.to_string(),
            description: description.map(str::to_string),
            tags: tags.clone(),
            pii_columns,
            created: now,
            updated: now,
            latest_version: None,
        })
    }

    /// The dataset, created without description, tags or PII columns if it does not exist yet.
    pub async fn ensure_dataset(&self, name: &str) -> Result<Dataset, StoreError> {
        match self.get_dataset(name).await {
            Err(StoreError::NotFound(_)) => {}
            found => return found,
        }
        match self.create_dataset(name, None, &BTreeMap::new(), &[]).await {
            // Another caller created it between the read and the write.
            Err(StoreError::AlreadyExists(_)) => self.get_dataset(name).await,
            created => created,
        }
    }

    pub async fn get_dataset(&self, name: &str) -> Result<Dataset, StoreError> {
        let row = sqlx::query(&format!("{DATASET_SELECT} WHERE d.name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| dataset_not_found(name))?;
        dataset_from_row(&row)
    }

    /// Every dataset, by name.
    pub async fn list_datasets(&self) -> Result<Vec<Dataset>, StoreError> {
        let rows = sqlx::query(&format!("{DATASET_SELECT} ORDER BY d.name")).fetch_all(&self.reader).await?;
        rows.iter().map(dataset_from_row).collect()
    }

    /// Changes the fields given (`Some`); `description: Some(None)` clears the description.
    pub async fn update_dataset(
        &self,
        name: &str,
        description: Option<Option<String>>,
        tags: Option<BTreeMap<String, String>>,
        pii_columns: Option<Vec<String>>,
    ) -> Result<Dataset, StoreError> {
        let pii_json = match pii_columns {
            Some(columns) => {
                let columns = validate_column_list(&columns)
                    .map_err(|e| StoreError::InvalidArgument(format!("pii_columns of dataset `{name}`: {e}")))?;
                Some(to_json_text(&columns, "dataset pii_columns")?)
            }
            None => None,
        };
        let tags_json = tags.map(|tags| to_json_text(&tags, "dataset tags")).transpose()?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let current = sqlx::query("SELECT description, tags, pii_columns FROM versioned_datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| dataset_not_found(name))?;
        let description = match description {
            Some(description) => description,
            None => current.try_get("description")?,
        };
        let tags_json = match tags_json {
            Some(tags) => tags,
            None => current.try_get("tags")?,
        };
        let pii_json = match pii_json {
            Some(pii) => pii,
            None => current.try_get("pii_columns")?,
        };
        sqlx::query(
            "UPDATE versioned_datasets SET description = $1, tags = $2, pii_columns = $3, updated = $4 WHERE name = $5",
        )
        .bind(description)
        .bind(tags_json)
        .bind(pii_json)
        .bind(self.now())
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.get_dataset(name).await
    }

    /// Registers a version in one write transaction and answers it with `true`, or answers the
    /// version that already holds `digest` with `false` and writes nothing. Numbers come from the
    /// dataset's counter, so they are never reused; every input must exist.
    pub async fn register_dataset_version(
        &self,
        new: &NewDatasetVersion,
    ) -> Result<(DatasetVersion, bool), StoreError> {
        let name = new.dataset.as_str();
        if let Some(score) = new.quality_score {
            check_score(score, "quality_score")?;
        }
        let inputs = dedup_inputs(&new.inputs);
        let schema_json = to_json_text(&new.schema, "dataset version schema")?;
        let profile_json = to_json_text(&new.profile, "dataset version profile")?;
        let source_json = to_json_text(&new.source, "dataset version source")?;
        let validation_json =
            new.validation.as_ref().map(|v| to_json_text(v, "dataset version validation")).transpose()?;
        let masked_json = to_json_text(&new.masked_columns, "dataset version masked_columns")?;
        let now = self.now();

        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        // Locks the dataset row on PostgreSQL (SQLite's write lock is already held), so that
        // concurrent registrations of one dataset run one after the other from here on.
        let locked = sqlx::query("UPDATE versioned_datasets SET next_version = next_version WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(dataset_not_found(name));
        }
        if let Some(existing) = version_with_digest(&mut tx, name, &new.digest).await? {
            tx.rollback().await?;
            return Ok((self.get_dataset_version(name, existing).await?, false));
        }
        for input in &inputs {
            let found = sqlx::query("SELECT 1 AS one FROM dataset_versions WHERE dataset = $1 AND version = $2")
                .bind(&input.dataset)
                .bind(input.version)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!(
                    "input version {} of dataset `{}` does not exist",
                    input.version, input.dataset
                )));
            }
        }
        let row = sqlx::query("SELECT next_version FROM versioned_datasets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let version: i64 = row.try_get("next_version")?;
        sqlx::query("UPDATE versioned_datasets SET next_version = $1, updated = $2 WHERE name = $3")
            .bind(version + 1)
            .bind(now)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO dataset_versions ({VERSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(name)
        .bind(version)
        .bind(&new.digest)
        .bind(new.layer.as_str())
        .bind(&new.artifact_key)
        .bind(new.row_count)
        .bind(new.size_bytes)
        .bind(&schema_json)
        .bind(&profile_json)
        .bind(&source_json)
        .bind(new.recipe_digest.as_deref())
        .bind(validation_json.as_deref())
        .bind(new.quality_score)
        .bind(&masked_json)
        .bind(now)
        .bind(new.created_by.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from);
        match inserted {
            // The row lock above makes this unreachable; should it happen anyway, the version
            // that won is the answer.
            Err(e) if e.is_unique_violation() => {
                tx.rollback().await?;
                let existing = sqlx::query("SELECT version FROM dataset_versions WHERE dataset = $1 AND digest = $2")
                    .bind(name)
                    .bind(&new.digest)
                    .fetch_optional(&self.reader)
                    .await?;
                let Some(existing) = existing else { return Err(e) };
                let existing: i64 = existing.try_get("version")?;
                return Ok((self.get_dataset_version(name, existing).await?, false));
            }
            other => other?,
        };
        for (position, input) in inputs.iter().enumerate() {
            sqlx::query(
                "INSERT INTO dataset_version_inputs (dataset, version, position, input_dataset, input_version) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(version)
            .bind(position as i64)
            .bind(&input.dataset)
            .bind(input.version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((
            DatasetVersion {
                dataset: name.to_string(),
                version,
                digest: new.digest.clone(),
                layer: new.layer,
                artifact_key: new.artifact_key.clone(),
                row_count: new.row_count,
                size_bytes: new.size_bytes,
                schema: new.schema.clone(),
                profile: new.profile.clone(),
                source: new.source.clone(),
                recipe_digest: new.recipe_digest.clone(),
                inputs,
                validation: new.validation.clone(),
                quality_score: new.quality_score,
                masked_columns: new.masked_columns.clone(),
                created: now,
                created_by: new.created_by.clone(),
            },
            true,
        ))
    }

    pub async fn get_dataset_version(&self, name: &str, version: i64) -> Result<DatasetVersion, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset = $1 AND version = $2"))
                .bind(name)
                .bind(version)
                .fetch_optional(&self.reader)
                .await?;
        let Some(row) = row else {
            self.get_dataset(name).await?;
            return Err(version_not_found(name, version));
        };
        let mut found = version_from_row(&row)?;
        found.inputs = self.version_inputs(name, Some(version)).await?.remove(&version).unwrap_or_default();
        Ok(found)
    }

    /// The newest version, or the newest of one layer.
    pub async fn latest_dataset_version(&self, name: &str, layer: Option<Layer>) -> Result<DatasetVersion, StoreError> {
        let query = match layer {
            None => sqlx::query_scalar::<_, i64>(
                "SELECT version FROM dataset_versions WHERE dataset = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(name),
            Some(layer) => sqlx::query_scalar::<_, i64>(
                "SELECT version FROM dataset_versions WHERE dataset = $1 AND layer = $2 ORDER BY version DESC LIMIT 1",
            )
            .bind(name)
            .bind(layer.as_str()),
        };
        match query.fetch_optional(&self.reader).await? {
            Some(version) => self.get_dataset_version(name, version).await,
            None => {
                self.get_dataset(name).await?;
                Err(StoreError::NotFound(match layer {
                    None => format!("dataset `{name}` has no versions yet"),
                    Some(layer) => format!("dataset `{name}` has no {layer} versions yet"),
                }))
            }
        }
    }

    /// Every version of a dataset, newest first.
    pub async fn list_dataset_versions(&self, name: &str) -> Result<Vec<DatasetVersion>, StoreError> {
        self.get_dataset(name).await?;
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset = $1 ORDER BY version DESC"
        ))
        .bind(name)
        .fetch_all(&self.reader)
        .await?;
        let mut inputs = self.version_inputs(name, None).await?;
        rows.iter()
            .map(|row| {
                let mut version = version_from_row(row)?;
                version.inputs = inputs.remove(&version.version).unwrap_or_default();
                Ok(version)
            })
            .collect()
    }

    /// The versions that list this one among their inputs (one step downstream).
    pub async fn dataset_version_consumers(&self, name: &str, version: i64) -> Result<Vec<VersionRef>, StoreError> {
        self.require_dataset_version(name, version).await?;
        let rows = sqlx::query(
            "SELECT dataset, version FROM dataset_version_inputs WHERE input_dataset = $1 AND input_version = $2 \
             ORDER BY dataset, version",
        )
        .bind(name)
        .bind(version)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok(VersionRef { dataset: row.try_get("dataset")?, version: row.try_get("version")? }))
            .collect()
    }

    /// Records a validation of a version and makes its score the version's quality score.
    pub async fn record_dataset_validation(
        &self,
        name: &str,
        version: i64,
        suite_digest: &str,
        result_json: &serde_json::Value,
        score: f64,
        success: bool,
    ) -> Result<i64, StoreError> {
        check_score(score, "validation score")?;
        let result_text = to_json_text(result_json, "validation result")?;
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let updated = sqlx::query("UPDATE dataset_versions SET quality_score = $1 WHERE dataset = $2 AND version = $3")
            .bind(score)
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            self.get_dataset(name).await?;
            return Err(version_not_found(name, version));
        }
        let row = sqlx::query(
            "INSERT INTO dataset_validations (dataset, version, suite_digest, result, score, success, validated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(name)
        .bind(version)
        .bind(suite_digest)
        .bind(&result_text)
        .bind(score)
        .bind(i64::from(success))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every validation of the dataset's versions, oldest first.
    pub async fn dataset_quality(&self, name: &str) -> Result<Vec<QualityPoint>, StoreError> {
        self.get_dataset(name).await?;
        let rows = sqlx::query(
            "SELECT id, version, score, success, validated_at FROM dataset_validations WHERE dataset = $1 ORDER BY id",
        )
        .bind(name)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QualityPoint {
                    version: row.try_get("version")?,
                    validation_id: row.try_get("id")?,
                    score: row.try_get("score")?,
                    success: row.try_get::<i64, _>("success")? != 0,
                    validated_at: row.try_get("validated_at")?,
                })
            })
            .collect()
    }

    pub async fn get_dataset_validation(&self, id: i64) -> Result<DatasetValidation, StoreError> {
        let row = sqlx::query(
            "SELECT id, dataset, version, suite_digest, result, score, success, validated_at \
             FROM dataset_validations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("dataset validation {id} does not exist")))?;
        validation_from_row(&row)
    }

    async fn require_dataset_version(&self, name: &str, version: i64) -> Result<(), StoreError> {
        let found = sqlx::query("SELECT 1 AS one FROM dataset_versions WHERE dataset = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.reader)
            .await?;
        if found.is_none() {
            self.get_dataset(name).await?;
            return Err(version_not_found(name, version));
        }
        Ok(())
    }

    /// Inputs per version of one dataset (all versions when `version` is `None`), in the order
    /// they were registered.
    async fn version_inputs(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<HashMap<i64, Vec<VersionRef>>, StoreError> {
        let query = match version {
            Some(version) => sqlx::query(
                "SELECT version, input_dataset, input_version FROM dataset_version_inputs \
                 WHERE dataset = $1 AND version = $2 ORDER BY version, position",
            )
            .bind(name)
            .bind(version),
            None => sqlx::query(
                "SELECT version, input_dataset, input_version FROM dataset_version_inputs \
                 WHERE dataset = $1 ORDER BY version, position",
            )
            .bind(name),
        };
        let mut inputs: HashMap<i64, Vec<VersionRef>> = HashMap::new();
        for row in query.fetch_all(&self.reader).await? {
            inputs
                .entry(row.try_get("version")?)
                .or_default()
                .push(VersionRef { dataset: row.try_get("input_dataset")?, version: row.try_get("input_version")? });
        }
        Ok(inputs)
    }
}

async fn version_with_digest(
    tx: &mut Transaction<'_, Any>,
    name: &str,
    digest: &str,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT version FROM dataset_versions WHERE dataset = $1 AND digest = $2")
        .bind(name)
        .bind(digest)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|row| row.try_get::<i64, _>("version")).transpose().map_err(StoreError::from)
}
