//! Aliases and their history. Every move is recorded in the same transaction as the move, so
//! the audit trail and the alias never disagree.

use super::{model_not_found, version_not_found, DELETED_STAGE};
use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::registry::{AliasEvent, ModelVersion};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Who moved an alias and why, for the history.
#[derive(Debug, Clone)]
pub struct AliasChange<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
    /// The holder the caller's checks were made against; if another writer moved the alias in
    /// the meantime the move is refused rather than applied on stale checks.
    pub expected_current: Option<Option<i64>>,
}

fn event_from_row(row: &AnyRow) -> Result<AliasEvent, StoreError> {
    Ok(AliasEvent {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        alias: row.try_get("alias")?,
        from_version: row.try_get::<Option<i64>, _>("from_version")?.map(|v| v.to_string()),
        to_version: row.try_get::<Option<i64>, _>("to_version")?.map(|v| v.to_string()),
        actor: row.try_get("actor")?,
        reason: row.try_get("reason")?,
        timestamp: row.try_get("event_time")?,
    })
}

impl Store {
    /// The version an alias points at now, if any.
    pub async fn alias_holder(&self, name: &str, alias: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .fetch_optional(&self.reader)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("version")?),
            None => None,
        })
    }

    /// Points an alias at a version and records the move. Setting it to the version it already
    /// holds changes nothing and records nothing.
    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
        change: &AliasChange<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists = sqlx::query(&format!(
            "SELECT 1 AS one FROM model_versions WHERE name = $1 AND version = $2 AND current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(version_not_found(name, version));
        }
        let current = current_holder(&mut tx, name, alias).await?;
        check_expected(name, alias, current, change)?;
        if current == Some(version) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3) \
             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(name)
        .bind(alias)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        self.record_alias_event(&mut tx, name, alias, current, Some(version), change).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an alias and records it; removing an absent alias of an existing model is a
    /// no-op, as in MLflow.
    pub async fn delete_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        change: &AliasChange<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let model = sqlx::query("SELECT 1 AS one FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if model.is_none() {
            return Err(model_not_found(name));
        }
        let current = current_holder(&mut tx, name, alias).await?;
        check_expected(name, alias, current, change)?;
        if current.is_none() {
            return Ok(());
        }
        sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .execute(&mut *tx)
            .await?;
        self.record_alias_event(&mut tx, name, alias, current, None, change).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, StoreError> {
        self.require_registered_model(name).await?;
        match self.alias_holder(name, alias).await? {
            Some(version) => self.get_model_version(name, version).await,
            None => Err(StoreError::InvalidArgument(format!("Registered model alias {alias} not found."))),
        }
    }

    /// Alias moves of a model (one alias, or all), oldest first.
    pub async fn alias_history(&self, name: &str, alias: Option<&str>) -> Result<Vec<AliasEvent>, StoreError> {
        let rows = match alias {
            Some(alias) => {
                sqlx::query("SELECT * FROM alias_events WHERE name = $1 AND alias = $2 ORDER BY id")
                    .bind(name)
                    .bind(alias)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM alias_events WHERE name = $1 ORDER BY id")
                    .bind(name)
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(event_from_row).collect()
    }

    async fn record_alias_event(
        &self,
        tx: &mut Transaction<'_, Any>,
        name: &str,
        alias: &str,
        from: Option<i64>,
        to: Option<i64>,
        change: &AliasChange<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alias_events (name, alias, from_version, to_version, actor, reason, event_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(name)
        .bind(alias)
        .bind(from)
        .bind(to)
        .bind(change.actor)
        .bind(change.reason)
        .bind(self.now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

async fn current_holder(tx: &mut Transaction<'_, Any>, name: &str, alias: &str) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
        .bind(name)
        .bind(alias)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("version")?),
        None => None,
    })
}

fn check_expected(name: &str, alias: &str, current: Option<i64>, change: &AliasChange<'_>) -> Result<(), StoreError> {
    match change.expected_current {
        Some(expected) if expected != current => Err(StoreError::Conflict(format!(
            "alias '{alias}' of model '{name}' moved while this change was being checked (now {}); retry",
            current.map(|v| format!("version {v}")).unwrap_or_else(|| "unset".into())
        ))),
        _ => Ok(()),
    }
}
