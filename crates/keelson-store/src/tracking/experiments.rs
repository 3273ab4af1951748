use super::{cut_page, decode_offset_token, parse_experiment_id, placeholders};
use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::search::{ExperimentFilter, ExperimentOrderBy};
use keelson_core::tracking::{Experiment, Page, Tag, ViewType};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

const EXPERIMENT_COLUMNS: &str =
    "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

fn experiment_from_row(row: &AnyRow) -> Result<Experiment, StoreError> {
    let stage: String = row.try_get("lifecycle_stage")?;
    Ok(Experiment {
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        name: row.try_get("name")?,
        artifact_location: row.try_get("artifact_location")?,
        lifecycle_stage: stage.parse().map_err(StoreError::Corrupt)?,
        creation_time: row.try_get("creation_time")?,
        last_update_time: row.try_get("last_update_time")?,
        tags: Vec::new(),
    })
}

impl Store {
    /// Creates an experiment. Without an artifact location it gets `mlflow-artifacts:/<id>`, which
    /// clients resolve through this server's artifact proxy.
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists = sqlx::query("SELECT experiment_id FROM experiments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::AlreadyExists(format!("Experiment(name={name}) already exists.")));
        }
        let row = sqlx::query(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, 'active', $3, $3) RETURNING experiment_id",
        )
        .bind(name)
        .bind(artifact_location.unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::from)
        .map_err(|e| {
            if e.is_unique_violation() {
                StoreError::AlreadyExists(format!("Experiment(name={name}) already exists."))
            } else {
                e
            }
        })?;
        let id: i64 = row.try_get("experiment_id")?;
        if artifact_location.is_none_or(str::is_empty) {
            sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
                .bind(format!("mlflow-artifacts:/{id}"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for tag in tags {
            upsert_experiment_tag(&mut tx, id, tag).await?;
        }
        tx.commit().await?;
        Ok(id.to_string())
    }

    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, StoreError> {
        let id = parse_experiment_id(experiment_id)?;
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.experiment_id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.reader).await?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("No Experiment with id={experiment_id} exists")))?;
        let mut experiment = experiment_from_row(&row)?;
        experiment.tags = self.experiment_tags(id).await?;
        Ok(experiment)
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, StoreError> {
        let sql = format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.name = $1");
        let row = sqlx::query(&sql).bind(name).fetch_optional(&self.reader).await?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("Could not find experiment with name '{name}'")))?;
        let mut experiment = experiment_from_row(&row)?;
        experiment.tags = self.experiment_tags(experiment.experiment_id.parse().unwrap_or_default()).await?;
        Ok(experiment)
    }

    async fn experiment_tags(&self, id: i64) -> Result<Vec<Tag>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key")
            .bind(id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| Ok(Tag::new(row.try_get::<String, _>("key")?, row.try_get::<String, _>("value")?)))
            .collect()
    }

    pub async fn search_experiments(
        &self,
        view: ViewType,
        filter: &ExperimentFilter,
        order_by: &[ExperimentOrderBy],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>, StoreError> {
        let offset = decode_offset_token(page_token)?;
        let stages = view.stages();
        let mut next = stages.len() + 1;
        let filter_sql = super::search_sql::experiment_filter_sql(filter, &mut next, self.backend)?;
        let order_sql = super::search_sql::experiment_order_sql(order_by, &mut next)?;
        let sql = format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments e WHERE e.lifecycle_stage IN ({}) AND ({}) \
             ORDER BY {} LIMIT ${} OFFSET ${}",
            placeholders(self.backend, 1, stages.len()),
            filter_sql.sql,
            order_sql.sql,
            next,
            next + 1
        );
        let mut query = sqlx::query(&sql);
        for stage in stages {
            query = query.bind(*stage);
        }
        query = super::search_sql::bind_all(query, &filter_sql.binds);
        query = super::search_sql::bind_all(query, &order_sql.binds);
        let rows = query.bind(max_results + 1).bind(offset).fetch_all(&self.reader).await?;
        let mut items = rows.iter().map(experiment_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = cut_page(&mut items, max_results, offset);
        for experiment in &mut items {
            experiment.tags = self.experiment_tags(experiment.experiment_id.parse().unwrap_or_default()).await?;
        }
        Ok(Page { items, next_page_token })
    }

    pub async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), StoreError> {
        let experiment = self.get_experiment(experiment_id).await?;
        if experiment.lifecycle_stage != keelson_core::tracking::LifecycleStage::Active {
            return Err(StoreError::Conflict("Cannot rename a non-active experiment.".into()));
        }
        let id = parse_experiment_id(experiment_id)?;
        let result = sqlx::query("UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(new_name)
            .bind(self.now())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(StoreError::from);
        match result {
            Err(e) if e.is_unique_violation() => {
                Err(StoreError::AlreadyExists(format!("Experiment(name={new_name}) already exists.")))
            }
            other => other.map(|_| ()),
        }
    }

    /// Deleting an experiment also marks its runs deleted, as MLflow does; restoring brings
    /// them back.
    pub async fn set_experiment_lifecycle(&self, experiment_id: &str, deleted: bool) -> Result<(), StoreError> {
        let experiment = self.get_experiment(experiment_id).await?;
        let id = parse_experiment_id(experiment_id)?;
        let (from, to) = if deleted { ("active", "deleted") } else { ("deleted", "active") };
        if experiment.lifecycle_stage.as_str() != from {
            return Err(StoreError::InvalidArgument(format!(
                "Cannot {} experiment {experiment_id}: it is {}.",
                if deleted { "delete" } else { "restore" },
                experiment.lifecycle_stage.as_str()
            )));
        }
        if id == 0 && deleted {
            return Err(StoreError::InvalidArgument(
                "Cannot delete the default experiment '0'. This is an internally reserved experiment.".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        sqlx::query("UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(to)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE experiment_id = $3 AND lifecycle_stage = $4",
        )
        .bind(to)
        .bind(if deleted { Some(now) } else { None })
        .bind(id)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<(), StoreError> {
        let experiment = self.get_experiment(experiment_id).await?;
        if experiment.lifecycle_stage != keelson_core::tracking::LifecycleStage::Active {
            return Err(StoreError::InvalidArgument(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
            )));
        }
        let id = parse_experiment_id(experiment_id)?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        upsert_experiment_tag(&mut tx, id, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<(), StoreError> {
        self.get_experiment(experiment_id).await?;
        let id = parse_experiment_id(experiment_id)?;
        let deleted = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
            .bind(id)
            .bind(key)
            .execute(&self.writer)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with name: {key} in experiment with id {experiment_id}")));
        }
        Ok(())
    }
}

async fn upsert_experiment_tag(tx: &mut Transaction<'_, Any>, id: i64, tag: &Tag) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
