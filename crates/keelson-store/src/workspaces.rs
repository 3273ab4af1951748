//! The list of workspaces (kept in the default workspace's database) and what a workspace's own
//! database holds, for deletion that refuses to drop resources unless told to.

use crate::backend::Store;
use crate::error::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A workspace as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkspaceRecord {
    pub name: String,
    pub description: String,
    pub created_time: i64,
    pub last_update_time: i64,
    pub created_by: String,
}

const COLUMNS: &str = "name, description, created_time, last_update_time, created_by";

fn workspace(row: &AnyRow) -> Result<WorkspaceRecord, StoreError> {
    Ok(WorkspaceRecord {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_time: row.try_get("created_time")?,
        last_update_time: row.try_get("last_update_time")?,
        created_by: row.try_get("created_by")?,
    })
}

/// Tables whose rows are a workspace's top-level resources; everything else hangs off them.
const RESOURCE_TABLES: &[(&str, &str)] = &[
    // Experiment 0 ("Default") is made by the schema in every workspace, so it is not content.
    ("experiments", "SELECT COUNT(*) AS n FROM experiments WHERE experiment_id <> 0"),
    ("registered models", "SELECT COUNT(*) AS n FROM registered_models"),
    ("datasets", "SELECT COUNT(*) AS n FROM versioned_datasets"),
    ("endpoints", "SELECT COUNT(*) AS n FROM serving_endpoints"),
    ("monitors", "SELECT COUNT(*) AS n FROM monitors"),
    ("lineage events", "SELECT COUNT(*) AS n FROM lineage_events"),
    ("jobs", "SELECT COUNT(*) AS n FROM jobs"),
];

impl Store {
    pub async fn create_workspace(
        &self,
        name: &str,
        description: &str,
        by: &str,
    ) -> Result<WorkspaceRecord, StoreError> {
        keelson_core::workspaces::validate_workspace_name(name).map_err(StoreError::InvalidArgument)?;
        if name == keelson_core::workspaces::DEFAULT_WORKSPACE {
            return Err(StoreError::AlreadyExists(format!("Workspace '{name}' already exists.")));
        }
        let now = self.now();
        let row =
            sqlx::query(&format!("INSERT INTO workspaces ({COLUMNS}) VALUES ($1, $2, $3, $3, $4) RETURNING {COLUMNS}"))
                .bind(name)
                .bind(description)
                .bind(now)
                .bind(by)
                .fetch_one(&self.writer)
                .await
                .map_err(|error| match error {
                    sqlx::Error::Database(d) if d.is_unique_violation() => {
                        StoreError::AlreadyExists(format!("Workspace '{name}' already exists."))
                    }
                    other => other.into(),
                })?;
        workspace(&row)
    }

    pub async fn get_workspace(&self, name: &str) -> Result<WorkspaceRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM workspaces WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Workspace '{name}' not found.")))?;
        workspace(&row)
    }

    /// Every workspace but `default`, by name.
    pub async fn list_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM workspaces ORDER BY name")).fetch_all(&self.reader).await?;
        rows.iter().map(workspace).collect()
    }

    pub async fn update_workspace(&self, name: &str, description: &str) -> Result<WorkspaceRecord, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE workspaces SET description = $2, last_update_time = $3 WHERE name = $1 RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(description)
        .bind(self.now())
        .fetch_optional(&self.writer)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("Workspace '{name}' not found.")))?;
        workspace(&row)
    }

    /// Removes the workspace from the list; its database is dropped separately.
    pub async fn delete_workspace_record(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM workspaces WHERE name = $1").bind(name).execute(&self.writer).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("Workspace '{name}' not found.")));
        }
        Ok(())
    }

    /// What this (workspace) database holds, as `(kind, count)` for every kind with rows.
    pub async fn resource_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::new();
        for (kind, sql) in RESOURCE_TABLES {
            let n: i64 = sqlx::query(sql).fetch_one(&self.reader).await?.try_get("n")?;
            if n > 0 {
                counts.push((*kind, n));
            }
        }
        Ok(counts)
    }
}
