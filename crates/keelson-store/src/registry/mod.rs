//! SQL for the model registry: registered models, versions, tags, aliases, and Keelson's
//! governance tables (alias history, promotion policies, approvals).

mod aliases;
mod governance;
mod models;
mod versions;

pub use aliases::AliasChange;
pub use governance::StoredPolicy;
pub use versions::NewModelVersion;

use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::registry::ModelVersion;
use keelson_core::tracking::Tag;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

/// MLflow's stage for a deleted version whose number stays taken.
pub(crate) const DELETED_STAGE: &str = "Deleted_Internal";

const VERSION_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, \
     mv.user_id, mv.current_stage, mv.source, mv.storage_location, mv.run_id, mv.run_link, mv.status, \
     mv.status_message, mv.model_id, mv.registration_metrics";

pub(crate) fn model_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Registered Model with name={name} not found"))
}

pub(crate) fn version_not_found(name: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!("Model Version (name={name}, version={version}) not found"))
}

fn version_from_row(row: &AnyRow) -> Result<ModelVersion, StoreError> {
    let version: i64 = row.try_get("version")?;
    Ok(ModelVersion {
        name: row.try_get("name")?,
        version: version.to_string(),
        creation_timestamp: row.try_get("creation_time")?,
        last_updated_timestamp: row.try_get("last_updated_time")?,
        user_id: row.try_get("user_id")?,
        current_stage: row.try_get("current_stage")?,
        description: row.try_get("description")?,
        source: row.try_get("source")?,
        run_id: row.try_get("run_id")?,
        status: row.try_get("status")?,
        status_message: row.try_get("status_message")?,
        tags: Vec::new(),
        run_link: row.try_get("run_link")?,
        aliases: Vec::new(),
        model_id: row.try_get("model_id")?,
        storage_location: row.try_get("storage_location")?,
        registration_metrics: row.try_get("registration_metrics")?,
    })
}

impl Store {
    /// Rows of a query over many models: `sql` has `{names}` where the `IN (…)` list goes; the
    /// names are bound in chunks that stay below both backends' parameter limits.
    pub(crate) async fn rows_for_names(&self, sql: &str, names: &[&str]) -> Result<Vec<AnyRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in names.chunks(500) {
            let sql = sql.replace("{names}", &crate::tracking::placeholders(self.backend, 1, chunk.len()));
            let mut query = sqlx::query(&sql);
            for name in chunk {
                query = query.bind(*name);
            }
            rows.extend(query.fetch_all(&self.reader).await?);
        }
        Ok(rows)
    }

    /// Fills in the tags of versions (of any models), and their aliases when `with_aliases`.
    pub(crate) async fn attach_version_details(
        &self,
        versions: &mut [ModelVersion],
        with_aliases: bool,
    ) -> Result<(), StoreError> {
        if versions.is_empty() {
            return Ok(());
        }
        let mut names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut tags: HashMap<(String, i64), Vec<Tag>> = HashMap::new();
        let sql = "SELECT name, version, key, value FROM model_version_tags WHERE name IN ({names}) ORDER BY key";
        for row in self.rows_for_names(sql, &names).await? {
            tags.entry((row.try_get("name")?, row.try_get("version")?))
                .or_default()
                .push(Tag::new(row.try_get::<String, _>("key")?, row.try_get::<String, _>("value")?));
        }
        let mut aliases: HashMap<(String, i64), Vec<String>> = HashMap::new();
        if with_aliases {
            let sql =
                "SELECT name, version, alias FROM registered_model_aliases WHERE name IN ({names}) ORDER BY alias";
            for row in self.rows_for_names(sql, &names).await? {
                aliases.entry((row.try_get("name")?, row.try_get("version")?)).or_default().push(row.try_get("alias")?);
            }
        }
        for version in versions.iter_mut() {
            let key = (version.name.clone(), version.number());
            version.tags = tags.remove(&key).unwrap_or_default();
            version.aliases = aliases.remove(&key).unwrap_or_default();
        }
        Ok(())
    }
}
