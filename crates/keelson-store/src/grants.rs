//! Per-resource grants (MLflow's READ / USE / EDIT / MANAGE / NO_PERMISSIONS) and the lookups
//! that find which experiment a run, trace or logged model belongs to, so a grant on the
//! experiment can be applied to them.

use crate::backend::Store;
use crate::error::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One grant as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceGrant {
    pub principal: String,
    pub resource_type: String,
    /// An experiment id, a registered model or prompt name, or `*` for every one of the type.
    pub resource_id: String,
    pub permission: String,
    pub granted: i64,
    pub granted_by: String,
}

const COLUMNS: &str = "principal, resource_type, resource_id, permission, granted, granted_by";

fn grant(row: &AnyRow) -> Result<ResourceGrant, StoreError> {
    Ok(ResourceGrant {
        principal: row.try_get("principal")?,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        permission: row.try_get("permission")?,
        granted: row.try_get("granted")?,
        granted_by: row.try_get("granted_by")?,
    })
}

impl Store {
    /// Adds a grant; a grant for the same principal and resource already there is refused
    /// (`AlreadyExists`), as MLflow refuses it, unless `replace` is set.
    pub async fn put_resource_grant(&self, new: &ResourceGrant, replace: bool) -> Result<ResourceGrant, StoreError> {
        let conflict = if replace {
            "ON CONFLICT (principal, resource_type, resource_id) DO UPDATE SET permission = excluded.permission, \
             granted = excluded.granted, granted_by = excluded.granted_by"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "INSERT INTO resource_grants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) {conflict} RETURNING {COLUMNS}"
        ))
        .bind(&new.principal)
        .bind(&new.resource_type)
        .bind(&new.resource_id)
        .bind(&new.permission)
        .bind(new.granted)
        .bind(&new.granted_by)
        .fetch_one(&self.writer)
        .await
        .map_err(|error| match error {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists(format!(
                "Permission for user={} on resource_type={}, resource_id={} already exists.",
                new.principal, new.resource_type, new.resource_id
            )),
            other => other.into(),
        })?;
        grant(&row)
    }

    /// Removes a grant; `false` when there was none.
    pub async fn delete_resource_grant(
        &self,
        principal: &str,
        resource_type: &str,
        resource_id: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM resource_grants WHERE principal = $1 AND resource_type = $2 AND resource_id = $3")
                .bind(principal)
                .bind(resource_type)
                .bind(resource_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every grant of one principal.
    pub async fn resource_grants_of(&self, principal: &str) -> Result<Vec<ResourceGrant>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM resource_grants WHERE principal = $1 ORDER BY resource_type, resource_id"
        ))
        .bind(principal)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(grant).collect()
    }

    /// Removes every grant on a resource (when it is deleted for good or renamed).
    pub async fn delete_resource_grants_on(&self, resource_type: &str, resource_id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM resource_grants WHERE resource_type = $1 AND resource_id = $2")
            .bind(resource_type)
            .bind(resource_id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    /// Moves a resource's grants to its new name (a registered model renamed).
    pub async fn rename_resource_grants(&self, resource_type: &str, from: &str, to: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE resource_grants SET resource_id = $3 WHERE resource_type = $1 AND resource_id = $2")
                .bind(resource_type)
                .bind(from)
                .bind(to)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected())
    }

    /// The experiment a run, trace or logged model belongs to; `None` when it does not exist.
    pub async fn experiment_of(&self, kind: ExperimentChild, id: &str) -> Result<Option<String>, StoreError> {
        let sql = match kind {
            ExperimentChild::Run => "SELECT CAST(experiment_id AS TEXT) AS e FROM runs WHERE run_uuid = $1",
            ExperimentChild::Trace => "SELECT CAST(experiment_id AS TEXT) AS e FROM traces WHERE trace_id = $1",
            ExperimentChild::LoggedModel => {
                "SELECT CAST(experiment_id AS TEXT) AS e FROM logged_models WHERE model_id = $1"
            }
            ExperimentChild::ByName => "SELECT CAST(experiment_id AS TEXT) AS e FROM experiments WHERE name = $1",
        };
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.reader).await?;
        row.map(|row| row.try_get::<String, _>("e")).transpose().map_err(Into::into)
    }
}

/// What [`Store::experiment_of`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentChild {
    Run,
    Trace,
    LoggedModel,
    /// An experiment by its name.
    ByName,
}
