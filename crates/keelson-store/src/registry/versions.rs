//! Model versions: create (numbered per model, never reused), read, describe, stage
//! transitions, delete, tags, search.

use super::{model_not_found, version_from_row, version_not_found, DELETED_STAGE, VERSION_COLUMNS};
use crate::backend::Store;
use crate::error::StoreError;
use crate::tracking::search_sql::{bind_all, registry_filter_sql, registry_order_sql, RegistryTable};
use crate::tracking::{cut_page, decode_offset_token};
use keelson_core::registry::{ModelVersion, Stage};
use keelson_core::search::{RegistryFilter, RegistryOrderBy};
use keelson_core::tracking::{Page, Tag};
use sqlx::Row;

#[derive(Debug, Clone, Default)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    /// Where the files are when `source` is indirect (a `models:/` URI of a logged model).
    pub storage_location: Option<String>,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    pub model_id: Option<String>,
    pub user_id: Option<String>,
    /// JSON object of metric values at registration.
    pub registration_metrics: Option<String>,
}

impl Store {
    pub async fn create_model_version(&self, new: &NewModelVersion) -> Result<ModelVersion, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let touched = sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
            .bind(now)
            .bind(&new.name)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(model_not_found(&new.name));
        }
        // Deleted versions keep their rows, so their numbers are never handed out again. The
        // write transaction (SQLite's write lock, PostgreSQL's row lock taken by the UPDATE
        // above) keeps two creators from picking the same number.
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS max_version FROM model_versions WHERE name = $1")
            .bind(&new.name)
            .fetch_one(&mut *tx)
            .await?;
        let version = row.try_get::<i64, _>("max_version")? + 1;
        sqlx::query(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, \
               current_stage, source, storage_location, run_id, run_link, status, model_id, registration_metrics) \
             VALUES ($1, $2, $3, $4, $5, $6, 'None', $7, $8, $9, $10, 'READY', $11, $12)",
        )
        .bind(&new.name)
        .bind(version)
        .bind(now)
        .bind(now)
        .bind(new.description.as_deref())
        .bind(new.user_id.as_deref())
        .bind(&new.source)
        .bind(new.storage_location.as_deref())
        .bind(new.run_id.as_deref())
        .bind(new.run_link.as_deref())
        .bind(new.model_id.as_deref())
        .bind(new.registration_metrics.as_deref())
        .execute(&mut *tx)
        .await?;
        for tag in &new.tags {
            upsert_version_tag(&mut tx, &new.name, version, tag).await?;
        }
        tx.commit().await?;
        self.get_model_version(&new.name, version).await
    }

    pub async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE mv.name = $1 AND mv.version = $2 \
             AND mv.current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| version_not_found(name, version))?;
        let mut versions = vec![version_from_row(&row)?];
        self.attach_version_details(&mut versions, true).await?;
        Ok(versions.remove(0))
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion, StoreError> {
        let updated = sqlx::query(&format!(
            "UPDATE model_versions SET description = $1, last_updated_time = $2 \
             WHERE name = $3 AND version = $4 AND current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(description)
        .bind(self.now())
        .bind(name)
        .bind(version)
        .execute(&self.writer)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        self.get_model_version(name, version).await
    }

    /// Moves a version to a stage; with `archive_existing`, other versions in that stage become
    /// `Archived` in the same transaction.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let updated = sqlx::query(&format!(
            "UPDATE model_versions SET current_stage = $1, last_updated_time = $2 \
             WHERE name = $3 AND version = $4 AND current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(stage.as_str())
        .bind(now)
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        if archive_existing {
            sqlx::query(
                "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = $1 \
                 WHERE name = $2 AND version <> $3 AND current_stage = $4",
            )
            .bind(now)
            .bind(name)
            .bind(version)
            .bind(stage.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
            .bind(now)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_model_version(name, version).await
    }

    /// Deletes a version, keeping its number taken. Refused while an alias points at it: moving
    /// a production alias away must be a deliberate, audited step, never a side effect.
    pub async fn delete_model_version(&self, name: &str, version: i64) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let aliases: Vec<String> =
            sqlx::query("SELECT alias FROM registered_model_aliases WHERE name = $1 AND version = $2 ORDER BY alias")
                .bind(name)
                .bind(version)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("alias"))
                .collect::<Result<_, _>>()?;
        let updated = sqlx::query(&format!(
            "UPDATE model_versions SET current_stage = '{DELETED_STAGE}', last_updated_time = $1, description = NULL, \
               user_id = NULL, source = 'REDACTED-SOURCE-PATH', storage_location = NULL, run_id = 'REDACTED-RUN-ID', \
               run_link = 'REDACTED-RUN-LINK', status_message = NULL \
             WHERE name = $2 AND version = $3 AND current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(now)
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        let deployments: Vec<String> = sqlx::query(
            "SELECT endpoint, name FROM serving_deployments WHERE model_name = $1 AND model_version = $2 \
             ORDER BY endpoint, name",
        )
        .bind(name)
        .bind(version.to_string())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok(format!("{}/{}", row.try_get::<String, _>("endpoint")?, row.try_get::<String, _>("name")?)))
        .collect::<Result<_, StoreError>>()?;
        if !deployments.is_empty() {
            return Err(StoreError::InvalidArgument(format!(
                "Model Version (name={name}, version={version}) cannot be deleted: deployment(s) {} serve it. \
                 Delete or redeploy them first.",
                deployments.join(", ")
            )));
        }
        if !aliases.is_empty() {
            return Err(StoreError::InvalidArgument(format!(
                "Model Version (name={name}, version={version}) cannot be deleted: alias(es) {} point at it. \
                 Move or delete the alias first.",
                aliases.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
            )));
        }
        sqlx::query("DELETE FROM model_version_tags WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
            .bind(now)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let touched = sqlx::query(&format!(
            "UPDATE model_versions SET last_updated_time = $1 WHERE name = $2 AND version = $3 \
             AND current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(self.now())
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if touched.rows_affected() == 0 {
            return Err(version_not_found(name, version));
        }
        upsert_version_tag(&mut tx, name, version, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<(), StoreError> {
        self.get_model_version(name, version).await?;
        sqlx::query("DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3")
            .bind(name)
            .bind(version)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn search_model_versions(
        &self,
        filter: &RegistryFilter,
        order_by: &[RegistryOrderBy],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>, StoreError> {
        let offset = decode_offset_token(page_token)?;
        let mut next = 1;
        let condition = registry_filter_sql(filter, RegistryTable::Versions, &mut next, self.backend)?;
        let order = registry_order_sql(order_by, RegistryTable::Versions)?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE mv.current_stage <> '{DELETED_STAGE}' AND {} \
             ORDER BY {order} LIMIT ${} OFFSET ${}",
            condition.sql,
            next,
            next + 1
        );
        let rows = bind_all(sqlx::query(&sql), &condition.binds)
            .bind(max_results + 1)
            .bind(offset)
            .fetch_all(&self.reader)
            .await?;
        let mut versions = rows.iter().map(version_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = cut_page(&mut versions, max_results, offset);
        // MLflow's search results carry no aliases (get and get-by-alias do).
        self.attach_version_details(&mut versions, false).await?;
        Ok(Page { items: versions, next_page_token })
    }
}

async fn upsert_version_tag(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    version: i64,
    tag: &Tag,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(version)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
