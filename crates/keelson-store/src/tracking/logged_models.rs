use super::{cut_page, decode_offset_token, parse_experiment_id, placeholders};
use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::tracking::{LoggedModel, Page, Param, Tag};
use sqlx::any::AnyRow;
use sqlx::Row;

const MODEL_COLUMNS: &str = "model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
     last_updated_timestamp_ms, status, status_message, lifecycle_stage, model_type, source_run_id";

fn model_from_row(row: &AnyRow) -> Result<LoggedModel, StoreError> {
    let stage: String = row.try_get("lifecycle_stage")?;
    Ok(LoggedModel {
        model_id: row.try_get("model_id")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        name: row.try_get("name")?,
        artifact_uri: row.try_get("artifact_location")?,
        creation_timestamp_ms: row.try_get("creation_timestamp_ms")?,
        last_updated_timestamp_ms: row.try_get("last_updated_timestamp_ms")?,
        status: row.try_get("status")?,
        status_message: row.try_get("status_message")?,
        model_type: row.try_get("model_type")?,
        source_run_id: row.try_get("source_run_id")?,
        lifecycle_stage: stage.parse().map_err(StoreError::Corrupt)?,
        params: Vec::new(),
        tags: Vec::new(),
        metrics: Vec::new(),
    })
}

/// What creating a logged model needs.
#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: String,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

impl Store {
    /// Creates a logged model in PENDING state with artifacts under
    /// `<experiment artifact location>/models/<model_id>/artifacts`.
    pub async fn create_logged_model(&self, new: &NewLoggedModel) -> Result<LoggedModel, StoreError> {
        let experiment = self.get_experiment(&new.experiment_id).await?;
        if let Some(run_id) = &new.source_run_id {
            self.get_run_info(run_id).await?;
        }
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let artifact_location =
            format!("{}/models/{model_id}/artifacts", experiment.artifact_location.trim_end_matches('/'));
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
             last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
             VALUES ($1, $2, $3, $4, $5, $5, 'LOGGED_MODEL_PENDING', 'active', $6, $7)",
        )
        .bind(&model_id)
        .bind(parse_experiment_id(&new.experiment_id)?)
        .bind(&new.name)
        .bind(&artifact_location)
        .bind(now)
        .bind(new.model_type.as_deref())
        .bind(new.source_run_id.as_deref())
        .execute(&mut *tx)
        .await?;
        for param in &new.params {
            sqlx::query(
                "INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(&model_id)
            .bind(&param.key)
            .bind(&param.value)
            .execute(&mut *tx)
            .await?;
        }
        for tag in &new.tags {
            sqlx::query(
                "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(&model_id)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get_logged_model(&model_id).await
    }

    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel, StoreError> {
        let sql = format!("SELECT {MODEL_COLUMNS} FROM logged_models WHERE model_id = $1");
        let row = sqlx::query(&sql).bind(model_id).fetch_optional(&self.reader).await?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("Logged model with ID '{model_id}' not found.")))?;
        let mut model = model_from_row(&row)?;
        self.load_model_details(&mut model).await?;
        Ok(model)
    }

    async fn load_model_details(&self, model: &mut LoggedModel) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT key, value FROM logged_model_params WHERE model_id = $1 ORDER BY key")
            .bind(&model.model_id)
            .fetch_all(&self.reader)
            .await?;
        model.params = rows
            .iter()
            .map(|r| Ok(Param { key: r.try_get("key")?, value: r.try_get("value")? }))
            .collect::<Result<_, StoreError>>()?;
        let rows = sqlx::query("SELECT key, value FROM logged_model_tags WHERE model_id = $1 ORDER BY key")
            .bind(&model.model_id)
            .fetch_all(&self.reader)
            .await?;
        model.tags = rows
            .iter()
            .map(|r| Ok(Tag::new(r.try_get::<String, _>("key")?, r.try_get::<String, _>("value")?)))
            .collect::<Result<_, StoreError>>()?;
        let rows = sqlx::query(
            "SELECT run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest \
             FROM metrics WHERE model_id = $1 ORDER BY key, step, timestamp",
        )
        .bind(&model.model_id)
        .fetch_all(&self.reader)
        .await?;
        model.metrics = rows
            .iter()
            .map(|r| {
                Ok(keelson_core::tracking::Metric {
                    key: r.try_get("key")?,
                    value: super::join_nan(r.try_get("value")?, r.try_get("is_nan")?),
                    timestamp: r.try_get("timestamp")?,
                    step: r.try_get("step")?,
                    run_id: Some(r.try_get("run_uuid")?),
                    model_id: r.try_get("model_id")?,
                    dataset_name: r.try_get("dataset_name")?,
                    dataset_digest: r.try_get("dataset_digest")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(())
    }

    pub async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel, StoreError> {
        let updated =
            sqlx::query("UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 WHERE model_id = $3")
                .bind(status)
                .bind(self.now())
                .bind(model_id)
                .execute(&self.writer)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Logged model with ID '{model_id}' not found.")));
        }
        self.get_logged_model(model_id).await
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<(), StoreError> {
        self.get_logged_model(model_id).await?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        for tag in tags {
            sqlx::query(
                "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(model_id)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<(), StoreError> {
        self.get_logged_model(model_id).await?;
        let deleted = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
            .bind(model_id)
            .bind(key)
            .execute(&self.writer)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with key {key} found for model {model_id}.")));
        }
        Ok(())
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<(), StoreError> {
        self.get_logged_model(model_id).await?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        for param in params {
            sqlx::query(
                "INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(model_id)
            .bind(&param.key)
            .bind(&param.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = $1 WHERE model_id = $2",
        )
        .bind(self.now())
        .bind(model_id)
        .execute(&self.writer)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Logged model with ID '{model_id}' not found.")));
        }
        Ok(())
    }

    /// Active logged models of some experiments, newest first.
    pub async fn search_logged_models(
        &self,
        experiment_ids: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<LoggedModel>, StoreError> {
        let offset = decode_offset_token(page_token)?;
        let ids: Vec<i64> = experiment_ids.iter().filter_map(|id| id.trim().parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let sql = format!(
            "SELECT {MODEL_COLUMNS} FROM logged_models WHERE experiment_id IN ({}) AND lifecycle_stage = 'active' \
             ORDER BY creation_timestamp_ms DESC, model_id LIMIT ${} OFFSET ${}",
            placeholders(self.backend, 1, ids.len()),
            ids.len() + 1,
            ids.len() + 2
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query.bind(max_results + 1).bind(offset).fetch_all(&self.reader).await?;
        let mut items = rows.iter().map(model_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = cut_page(&mut items, max_results, offset);
        for model in &mut items {
            self.load_model_details(model).await?;
        }
        Ok(Page { items, next_page_token })
    }
}
