//! Registered models: create, read, rename, describe, delete, tags, search.

use super::{model_not_found, version_from_row, DELETED_STAGE, VERSION_COLUMNS};
use crate::backend::Store;
use crate::error::StoreError;
use crate::tracking::search_sql::{bind_all, registry_filter_sql, registry_order_sql, RegistryTable};
use crate::tracking::{cut_page, decode_offset_token};
use keelson_core::registry::{ModelVersion, RegisteredModel, RegisteredModelAlias, PROMPT_TAG};
use keelson_core::search::{RegistryFilter, RegistryOrderBy};
use keelson_core::tracking::{Page, Tag};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

const MODEL_COLUMNS: &str = "rm.name, rm.creation_time, rm.last_updated_time, rm.description, rm.user_id";

fn model_from_row(row: &AnyRow) -> Result<RegisteredModel, StoreError> {
    Ok(RegisteredModel {
        name: row.try_get("name")?,
        creation_timestamp: row.try_get("creation_time")?,
        last_updated_timestamp: row.try_get("last_updated_time")?,
        user_id: row.try_get("user_id")?,
        description: row.try_get("description")?,
        latest_versions: Vec::new(),
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

impl Store {
    pub async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
        user_id: Option<&str>,
    ) -> Result<RegisteredModel, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists = sqlx::query("SELECT 1 AS one FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            let existing_is_prompt = sqlx::query(
                "SELECT 1 AS one FROM registered_model_tags WHERE name = $1 AND key = $2 AND LOWER(value) = 'true'",
            )
            .bind(name)
            .bind(PROMPT_TAG)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            let new_is_prompt = tags.iter().any(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"));
            let entity = |prompt: bool| if prompt { "Prompt" } else { "Registered Model" };
            let message = if existing_is_prompt != new_is_prompt {
                format!(
                    "Tried to create a {} with name '{name}', but the name is already taken by a {}. MLflow does not \
                     allow creating a model and a prompt with the same name.",
                    entity(new_is_prompt).to_lowercase(),
                    entity(existing_is_prompt).to_lowercase()
                )
            } else {
                format!("{} (name={name}) already exists.", entity(new_is_prompt))
            };
            return Err(StoreError::AlreadyExists(message));
        }
        sqlx::query(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description, user_id) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(now)
        .bind(now)
        .bind(description)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        upsert_model_tags(&mut tx, name, tags).await?;
        tx.commit().await?;
        self.get_registered_model(name).await
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, StoreError> {
        let row = sqlx::query(&format!("SELECT {MODEL_COLUMNS} FROM registered_models rm WHERE rm.name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| model_not_found(name))?;
        let mut models = vec![model_from_row(&row)?];
        self.attach_model_details(&mut models).await?;
        Ok(models.remove(0))
    }

    pub async fn require_registered_model(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 AS one FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .map(|_| ())
            .ok_or_else(|| model_not_found(name))
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, StoreError> {
        let updated =
            sqlx::query("UPDATE registered_models SET description = $1, last_updated_time = $2 WHERE name = $3")
                .bind(description)
                .bind(self.now())
                .bind(name)
                .execute(&self.writer)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(model_not_found(name));
        }
        self.get_registered_model(name).await
    }

    /// Renames a model; versions, tags, aliases, policies and approvals follow by cascade, the
    /// alias history explicitly.
    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists =
            |n: &str| sqlx::query("SELECT 1 AS one FROM registered_models WHERE name = $1").bind(n.to_string());
        if exists(name).fetch_optional(&mut *tx).await?.is_none() {
            return Err(model_not_found(name));
        }
        if name != new_name && exists(new_name).fetch_optional(&mut *tx).await?.is_some() {
            return Err(StoreError::AlreadyExists(format!("Registered Model (name={new_name}) already exists.")));
        }
        sqlx::query("UPDATE registered_models SET name = $1, last_updated_time = $2 WHERE name = $3")
            .bind(new_name)
            .bind(now)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE model_versions SET last_updated_time = $1 WHERE name = $2")
            .bind(now)
            .bind(new_name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE alias_events SET name = $1 WHERE name = $2")
            .bind(new_name)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Deployments name the model they serve; they keep serving it under its new name.
        sqlx::query("UPDATE serving_deployments SET model_name = $1 WHERE model_name = $2")
            .bind(new_name)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_registered_model(new_name).await
    }

    /// Deletes a model with its versions; refused while a deployment serves one of them.
    pub async fn delete_registered_model(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let serving =
            sqlx::query("SELECT endpoint, name FROM serving_deployments WHERE model_name = $1 ORDER BY endpoint, name")
                .bind(name)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| {
                    Ok(format!("{}/{}", row.try_get::<String, _>("endpoint")?, row.try_get::<String, _>("name")?))
                })
                .collect::<Result<Vec<String>, StoreError>>()?;
        if !serving.is_empty() {
            return Err(StoreError::InvalidArgument(format!(
                "Registered Model (name={name}) cannot be deleted: deployment(s) {} serve its versions. \
                 Delete or redeploy them first.",
                serving.join(", ")
            )));
        }
        let deleted = sqlx::query("DELETE FROM registered_models WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(model_not_found(name));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let touched = sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
            .bind(self.now())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if touched.rows_affected() == 0 {
            return Err(model_not_found(name));
        }
        upsert_model_tags(&mut tx, name, std::slice::from_ref(tag)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deleting an absent tag of an existing model is not an error (MLflow ignores it too).
    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<(), StoreError> {
        self.require_registered_model(name).await?;
        sqlx::query("DELETE FROM registered_model_tags WHERE name = $1 AND key = $2")
            .bind(name)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn search_registered_models(
        &self,
        filter: &RegistryFilter,
        order_by: &[RegistryOrderBy],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>, StoreError> {
        let offset = decode_offset_token(page_token)?;
        let mut next = 1;
        let condition = registry_filter_sql(filter, RegistryTable::Models, &mut next, self.backend)?;
        let order = registry_order_sql(order_by, RegistryTable::Models)?;
        let sql = format!(
            "SELECT {MODEL_COLUMNS} FROM registered_models rm WHERE {} ORDER BY {order} LIMIT ${} OFFSET ${}",
            condition.sql,
            next,
            next + 1
        );
        let rows = bind_all(sqlx::query(&sql), &condition.binds)
            .bind(max_results + 1)
            .bind(offset)
            .fetch_all(&self.reader)
            .await?;
        let mut models = rows.iter().map(model_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = cut_page(&mut models, max_results, offset);
        self.attach_model_details(&mut models).await?;
        Ok(Page { items: models, next_page_token })
    }

    /// The latest version in each stage of a model (MLflow's `latest_versions`), ascending by
    /// version.
    pub async fn latest_versions(&self, name: &str) -> Result<Vec<ModelVersion>, StoreError> {
        let mut versions = self.latest_versions_of(&[name]).await?;
        self.attach_version_details(&mut versions, true).await?;
        Ok(versions)
    }

    /// The latest live version per stage of each model, by name then version.
    async fn latest_versions_of(&self, names: &[&str]) -> Result<Vec<ModelVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE mv.name IN ({{names}}) \
               AND mv.current_stage <> '{DELETED_STAGE}' \
               AND mv.version = (SELECT MAX(m2.version) FROM model_versions m2 \
                                 WHERE m2.name = mv.name AND m2.current_stage = mv.current_stage) \
             ORDER BY mv.name, mv.version"
        );
        self.rows_for_names(&sql, names).await?.iter().map(version_from_row).collect()
    }

    async fn attach_model_details(&self, models: &mut [RegisteredModel]) -> Result<(), StoreError> {
        if models.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        // MLflow lists a model's aliases on the model, not on the versions in latest_versions.
        let mut latest = self.latest_versions_of(&names).await?;
        self.attach_version_details(&mut latest, false).await?;
        let mut by_model: HashMap<String, Vec<ModelVersion>> = HashMap::new();
        for version in latest {
            by_model.entry(version.name.clone()).or_default().push(version);
        }
        let mut tags: HashMap<String, Vec<Tag>> = HashMap::new();
        let sql = "SELECT name, key, value FROM registered_model_tags WHERE name IN ({names}) ORDER BY key";
        for row in self.rows_for_names(sql, &names).await? {
            tags.entry(row.try_get("name")?)
                .or_default()
                .push(Tag::new(row.try_get::<String, _>("key")?, row.try_get::<String, _>("value")?));
        }
        let mut aliases: HashMap<String, Vec<RegisteredModelAlias>> = HashMap::new();
        let sql = "SELECT name, alias, version FROM registered_model_aliases WHERE name IN ({names}) ORDER BY alias";
        for row in self.rows_for_names(sql, &names).await? {
            aliases.entry(row.try_get("name")?).or_default().push(RegisteredModelAlias {
                alias: row.try_get("alias")?,
                version: row.try_get::<i64, _>("version")?.to_string(),
            });
        }
        for model in models.iter_mut() {
            model.latest_versions = by_model.remove(&model.name).unwrap_or_default();
            model.tags = tags.remove(&model.name).unwrap_or_default();
            model.aliases = aliases.remove(&model.name).unwrap_or_default();
        }
        Ok(())
    }
}

async fn upsert_model_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    tags: &[Tag],
) -> Result<(), StoreError> {
    for tag in tags {
        sqlx::query(
            "INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
