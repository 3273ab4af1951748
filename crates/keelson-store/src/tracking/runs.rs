use super::{cut_page, decode_offset_token, join_nan, parse_experiment_id, placeholders};
use crate::backend::{Backend, Store};
use crate::error::StoreError;
use keelson_core::search::{RunFilter, RunOrderBy};
use keelson_core::tracking::{
    Dataset, DatasetInput, LifecycleStage, Metric, ModelInput, ModelOutput, Page, Param, Run, RunData, RunInfo,
    RunInputs, RunOutputs, RunStatus, Tag, ViewType,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

const RUN_COLUMNS: &str =
    "r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri";

/// The tag MLflow mirrors the run name into.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// Rows fetched per `IN (…)` when loading run data in bulk.
const IN_CHUNK: usize = 500;

#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: RunFilter,
    pub view: ViewType,
    pub max_results: i64,
    pub order_by: Vec<RunOrderBy>,
    pub page_token: Option<String>,
}

fn info_from_row(row: &AnyRow) -> Result<RunInfo, StoreError> {
    let status: String = row.try_get("status")?;
    let stage: String = row.try_get("lifecycle_stage")?;
    let run_id: String = row.try_get("run_uuid")?;
    Ok(RunInfo {
        run_uuid: run_id.clone(),
        run_id,
        run_name: row.try_get("name")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        user_id: row.try_get("user_id")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        artifact_uri: row.try_get("artifact_uri")?,
        lifecycle_stage: stage.parse().map_err(StoreError::Corrupt)?,
    })
}

impl Store {
    /// Creates a run in an active experiment.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        user_id: &str,
        start_time: i64,
        run_name: &str,
        tags: &[Tag],
    ) -> Result<Run, StoreError> {
        let experiment = self.get_experiment(experiment_id).await?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidArgument(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let artifact_uri = format!("{}/{run_id}/artifacts", experiment.artifact_location.trim_end_matches('/'));
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        sqlx::query(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, lifecycle_stage, artifact_uri) \
             VALUES ($1, $2, $3, $4, 'RUNNING', $5, 'active', $6)",
        )
        .bind(&run_id)
        .bind(parse_experiment_id(experiment_id)?)
        .bind(run_name)
        .bind(user_id)
        .bind(start_time)
        .bind(&artifact_uri)
        .execute(&mut *tx)
        .await?;
        let mut all_tags: Vec<Tag> = tags.iter().filter(|t| t.key != RUN_NAME_TAG).cloned().collect();
        all_tags.push(Tag::new(RUN_NAME_TAG, run_name));
        upsert_run_tags(&mut tx, self.backend, &run_id, &all_tags).await?;
        tx.commit().await?;
        self.get_run(&run_id).await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run, StoreError> {
        let info = self.get_run_info(run_id).await?;
        let mut runs = self.load_run_details(vec![info]).await?;
        runs.pop().ok_or_else(|| StoreError::NotFound(format!("Run with id={run_id} not found")))
    }

    pub async fn get_run_info(&self, run_id: &str) -> Result<RunInfo, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1");
        let row = sqlx::query(&sql).bind(run_id).fetch_optional(&self.reader).await?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("Run with id={run_id} not found")))?;
        info_from_row(&row)
    }

    /// The run, which must be active to be written to.
    pub(crate) async fn active_run(&self, run_id: &str) -> Result<RunInfo, StoreError> {
        let info = self.get_run_info(run_id).await?;
        if info.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidArgument(format!(
                "The run {run_id} must be in the 'active' state. Current state is deleted."
            )));
        }
        Ok(info)
    }

    pub async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo, StoreError> {
        self.active_run(run_id).await?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        if let Some(status) = update.status {
            sqlx::query("UPDATE runs SET status = $1 WHERE run_uuid = $2")
                .bind(status.as_str())
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(end_time) = update.end_time {
            sqlx::query("UPDATE runs SET end_time = $1 WHERE run_uuid = $2")
                .bind(end_time)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(name) = update.run_name.as_deref().filter(|n| !n.is_empty()) {
            upsert_run_tags(&mut tx, self.backend, run_id, &[Tag::new(RUN_NAME_TAG, name)]).await?;
        }
        tx.commit().await?;
        self.get_run_info(run_id).await
    }

    pub async fn set_run_lifecycle(&self, run_id: &str, deleted: bool) -> Result<(), StoreError> {
        self.get_run_info(run_id).await?;
        sqlx::query("UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_uuid = $3")
            .bind(if deleted { "deleted" } else { "active" })
            .bind(if deleted { Some(self.now()) } else { None })
            .bind(run_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<(), StoreError> {
        self.active_run(run_id).await?;
        let deleted = sqlx::query("DELETE FROM tags WHERE run_uuid = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&self.writer)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with name: {key} in run with id {run_id}")));
        }
        Ok(())
    }

    /// Writes metrics, params and tags in one transaction: all of it or none of it. Concurrent
    /// calls share transactions (group commit); each returns once its batch is committed.
    /// Params are immutable: a different value for a logged key is refused.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), StoreError> {
        self.active_run(run_id).await?;
        self.write_batch_grouped(run_id, metrics, params, tags).await
    }

    /// Records dataset and model inputs of a run.
    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<(), StoreError> {
        let info = self.active_run(run_id).await?;
        let experiment_id = parse_experiment_id(&info.experiment_id)?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        for input in datasets {
            let dataset = &input.dataset;
            let existing =
                sqlx::query("SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3")
                    .bind(experiment_id)
                    .bind(&dataset.name)
                    .bind(&dataset.digest)
                    .fetch_optional(&mut *tx)
                    .await?;
            let dataset_uuid = match existing {
                Some(row) => row.try_get::<String, _>("dataset_uuid")?,
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    sqlx::query(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&id)
                    .bind(experiment_id)
                    .bind(&dataset.name)
                    .bind(&dataset.digest)
                    .bind(&dataset.source_type)
                    .bind(&dataset.source)
                    .bind(dataset.schema.as_deref())
                    .bind(dataset.profile.as_deref())
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            let tags = serde_json::to_string(&input.tags).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
            let context = input.tags.iter().find(|t| t.key == "mlflow.data.context").map(|t| t.value.clone());
            sqlx::query(
                "INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, tags, context) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_uuid, dataset_uuid) DO NOTHING",
            )
            .bind(run_id)
            .bind(&dataset_uuid)
            .bind(tags)
            .bind(context)
            .execute(&mut *tx)
            .await?;
        }
        for model in models {
            insert_model_io(&mut tx, run_id, "input", &model.model_id, 0).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<(), StoreError> {
        self.active_run(run_id).await?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        for model in models {
            insert_model_io(&mut tx, run_id, "output", &model.model_id, model.step).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn search_runs(&self, search: &RunSearch) -> Result<Page<Run>, StoreError> {
        let offset = decode_offset_token(search.page_token.as_deref())?;
        let mut experiment_ids = Vec::with_capacity(search.experiment_ids.len());
        for id in &search.experiment_ids {
            // Unknown or malformed ids match nothing, as in MLflow.
            if let Ok(id) = id.trim().parse::<i64>() {
                experiment_ids.push(id);
            }
        }
        if experiment_ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let stages = search.view.stages();
        let mut next = experiment_ids.len() + stages.len() + 1;
        let filter_sql = super::search_sql::run_filter_sql(&search.filter, &mut next, self.backend)?;
        let order_sql = super::search_sql::run_order_sql(&search.order_by, &mut next)?;
        // Numbered placeholders throughout: the ordering's joins come before the WHERE clause in
        // the text, and SQLite's anonymous `?` would be numbered after them.
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs r {} WHERE r.experiment_id IN ({}) AND r.lifecycle_stage IN ({}) AND ({}) \
             ORDER BY {} LIMIT ${} OFFSET ${}",
            order_sql.joins,
            super::numbered_placeholders(1, experiment_ids.len()),
            super::numbered_placeholders(experiment_ids.len() + 1, stages.len()),
            filter_sql.sql,
            order_sql.order_by,
            next,
            next + 1
        );
        let mut query = sqlx::query(&sql);
        for id in &experiment_ids {
            query = query.bind(*id);
        }
        for stage in stages {
            query = query.bind(*stage);
        }
        query = super::search_sql::bind_all(query, &filter_sql.binds);
        query = super::search_sql::bind_all(query, &order_sql.binds);
        let rows = query.bind(search.max_results + 1).bind(offset).fetch_all(&self.reader).await?;
        let mut infos = rows.iter().map(info_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = cut_page(&mut infos, search.max_results, offset);
        let items = self.load_run_details(infos).await?;
        Ok(Page { items, next_page_token })
    }

    /// Loads data, inputs and outputs for many runs with a few bulk queries.
    async fn load_run_details(&self, infos: Vec<RunInfo>) -> Result<Vec<Run>, StoreError> {
        let ids: Vec<String> = infos.iter().map(|i| i.run_id.clone()).collect();
        let mut data: HashMap<String, RunData> = HashMap::new();
        let mut inputs: HashMap<String, RunInputs> = HashMap::new();
        let mut outputs: HashMap<String, RunOutputs> = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let list = placeholders(self.backend, 1, chunk.len());
            let rows = bind_ids(
                &format!("SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({list}) ORDER BY key"),
                chunk,
            )
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                data.entry(row.try_get("run_uuid")?)
                    .or_default()
                    .params
                    .push(Param { key: row.try_get("key")?, value: row.try_get("value")? });
            }
            let rows = bind_ids(
                &format!("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({list}) ORDER BY key"),
                chunk,
            )
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                data.entry(row.try_get("run_uuid")?)
                    .or_default()
                    .tags
                    .push(Tag::new(row.try_get::<String, _>("key")?, row.try_get::<String, _>("value")?));
            }
            let rows = bind_ids(
                &format!(
                    "SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN ({list}) ORDER BY key"
                ),
                chunk,
            )
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                data.entry(row.try_get("run_uuid")?).or_default().metrics.push(Metric {
                    key: row.try_get("key")?,
                    value: join_nan(row.try_get("value")?, row.try_get("is_nan")?),
                    timestamp: row.try_get("timestamp")?,
                    step: row.try_get("step")?,
                    run_id: None,
                    model_id: None,
                    dataset_name: None,
                    dataset_digest: None,
                });
            }
            let rows = bind_ids(
                &format!(
                    "SELECT i.run_uuid, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile \
                     FROM run_dataset_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid \
                     WHERE i.run_uuid IN ({list}) ORDER BY d.name, d.digest"
                ),
                chunk,
            )
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                let tags: String = row.try_get("tags")?;
                inputs.entry(row.try_get("run_uuid")?).or_default().dataset_inputs.push(DatasetInput {
                    tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(format!("input tags: {e}")))?,
                    dataset: Dataset {
                        name: row.try_get("name")?,
                        digest: row.try_get("digest")?,
                        source_type: row.try_get("source_type")?,
                        source: row.try_get("source")?,
                        schema: row.try_get("schema")?,
                        profile: row.try_get("profile")?,
                    },
                });
            }
            let rows = bind_ids(
                &format!("SELECT run_uuid, direction, model_id, step FROM run_model_io WHERE run_uuid IN ({list}) ORDER BY model_id"),
                chunk,
            )
            .fetch_all(&self.reader)
            .await?;
            for row in rows {
                let run: String = row.try_get("run_uuid")?;
                let model_id: String = row.try_get("model_id")?;
                if row.try_get::<String, _>("direction")? == "input" {
                    inputs.entry(run).or_default().model_inputs.push(ModelInput { model_id });
                } else {
                    outputs
                        .entry(run)
                        .or_default()
                        .model_outputs
                        .push(ModelOutput { model_id, step: row.try_get("step")? });
                }
            }
        }
        Ok(infos
            .into_iter()
            .map(|info| {
                let id = info.run_id.clone();
                Run {
                    info,
                    data: data.remove(&id).unwrap_or_default(),
                    inputs: inputs.remove(&id).unwrap_or_default(),
                    outputs: outputs.remove(&id).unwrap_or_default(),
                }
            })
            .collect())
    }
}

fn bind_ids<'q>(sql: &'q str, ids: &'q [String]) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql);
    for id in ids {
        query = query.bind(id.as_str());
    }
    query
}

/// Tags are upserted; `mlflow.runName` also renames the run.
pub(crate) async fn upsert_run_tags(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    run_id: &str,
    tags: &[Tag],
) -> Result<(), StoreError> {
    // The last value of a key in one batch wins, as if applied in order.
    let mut latest: Vec<&Tag> = Vec::with_capacity(tags.len());
    for tag in tags {
        latest.retain(|t| t.key != tag.key);
        latest.push(tag);
    }
    for chunk in latest.chunks(200) {
        let sql = format!(
            "INSERT INTO tags (run_uuid, key, value) VALUES {} ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
            super::row_placeholders(backend, chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for tag in chunk {
            query = query.bind(run_id).bind(tag.key.as_str()).bind(tag.value.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    if let Some(name) = latest.iter().find(|t| t.key == RUN_NAME_TAG) {
        sqlx::query("UPDATE runs SET name = $1 WHERE run_uuid = $2")
            .bind(&name.value)
            .bind(run_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Inserts params, refusing changes to logged values (MLflow: params are immutable).
pub(crate) async fn insert_params(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    run_id: &str,
    params: &[Param],
) -> Result<(), StoreError> {
    if params.is_empty() {
        return Ok(());
    }
    let mut unique: Vec<&Param> = Vec::with_capacity(params.len());
    for param in params {
        match unique.iter().find(|p| p.key == param.key) {
            Some(previous) if previous.value != param.value => {
                return Err(StoreError::InvalidArgument(format!(
                    "Duplicate parameter keys have been submitted: key='{}' with values '{}' and '{}'",
                    param.key, previous.value, param.value
                )))
            }
            Some(_) => {}
            None => unique.push(param),
        }
    }
    let keys: Vec<String> = unique.iter().map(|p| p.key.clone()).collect();
    let mut existing: HashMap<String, String> = HashMap::new();
    for chunk in keys.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT key, value FROM params WHERE run_uuid = $1 AND key IN ({})",
            placeholders(backend, 2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(run_id);
        for key in chunk {
            query = query.bind(key.as_str());
        }
        for row in query.fetch_all(&mut **tx).await? {
            existing.insert(row.try_get("key")?, row.try_get("value")?);
        }
    }
    let mut new_params = Vec::new();
    for param in unique {
        match existing.get(&param.key) {
            Some(old) if *old != param.value => {
                return Err(StoreError::InvalidArgument(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged with value='{}' \
                     for run ID='{run_id}'. Attempted logging new value '{}'.",
                    param.key, old, param.value
                )))
            }
            Some(_) => {}
            None => new_params.push(param),
        }
    }
    for chunk in new_params.chunks(200) {
        let sql = format!(
            "INSERT INTO params (run_uuid, key, value) VALUES {}",
            super::row_placeholders(backend, chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for param in chunk {
            query = query.bind(run_id).bind(param.key.as_str()).bind(param.value.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_model_io(
    tx: &mut Transaction<'_, Any>,
    run_id: &str,
    direction: &str,
    model_id: &str,
    step: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO run_model_io (run_uuid, direction, model_id, step) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (run_uuid, direction, model_id) DO UPDATE SET step = excluded.step",
    )
    .bind(run_id)
    .bind(direction)
    .bind(model_id)
    .bind(step)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
