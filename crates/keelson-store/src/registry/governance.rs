//! Promotion policies per (model, alias) and approvals of versions for an alias. Policies are
//! stored as JSON documents; the registry service parses and evaluates them.

use super::{model_not_found, version_not_found, DELETED_STAGE};
use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::registry::Approval;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A stored policy: its JSON and who set it when.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    pub name: String,
    pub alias: String,
    pub policy_json: String,
    pub updated_by: String,
    pub updated_timestamp: i64,
}

fn policy_from_row(row: &AnyRow) -> Result<StoredPolicy, StoreError> {
    Ok(StoredPolicy {
        name: row.try_get("name")?,
        alias: row.try_get("alias")?,
        policy_json: row.try_get("policy")?,
        updated_by: row.try_get("updated_by")?,
        updated_timestamp: row.try_get("updated_time")?,
    })
}

fn approval_from_row(row: &AnyRow) -> Result<Approval, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(Approval {
        name: row.try_get("name")?,
        version: row.try_get::<i64, _>("version")?.to_string(),
        alias: row.try_get("alias")?,
        approver: row.try_get("approver")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("approval roles: {e}")))?,
        comment: row.try_get("comment")?,
        timestamp: row.try_get("approval_time")?,
    })
}

impl Store {
    pub async fn set_promotion_policy(
        &self,
        name: &str,
        alias: &str,
        policy_json: &str,
        actor: &str,
    ) -> Result<StoredPolicy, StoreError> {
        self.require_registered_model(name).await?;
        sqlx::query(
            "INSERT INTO promotion_policies (name, alias, policy, updated_by, updated_time) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name, alias) DO UPDATE SET policy = excluded.policy, updated_by = excluded.updated_by, \
               updated_time = excluded.updated_time",
        )
        .bind(name)
        .bind(alias)
        .bind(policy_json)
        .bind(actor)
        .bind(self.now())
        .execute(&self.writer)
        .await
        .map_err(|e| {
            let e = StoreError::from(e);
            if matches!(&e, StoreError::Database(sqlx::Error::Database(d)) if d.is_foreign_key_violation()) {
                model_not_found(name)
            } else {
                e
            }
        })?;
        self.promotion_policy(name, alias).await?.ok_or_else(|| model_not_found(name))
    }

    pub async fn promotion_policy(&self, name: &str, alias: &str) -> Result<Option<StoredPolicy>, StoreError> {
        let row = sqlx::query("SELECT * FROM promotion_policies WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    pub async fn promotion_policies(&self, name: &str) -> Result<Vec<StoredPolicy>, StoreError> {
        self.require_registered_model(name).await?;
        let rows = sqlx::query("SELECT * FROM promotion_policies WHERE name = $1 ORDER BY alias")
            .bind(name)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Returns whether a policy was there to delete.
    pub async fn delete_promotion_policy(&self, name: &str, alias: &str) -> Result<bool, StoreError> {
        self.require_registered_model(name).await?;
        let deleted = sqlx::query("DELETE FROM promotion_policies WHERE name = $1 AND alias = $2")
            .bind(name)
            .bind(alias)
            .execute(&self.writer)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Records (or replaces) one approver's approval of a version for an alias.
    pub async fn approve_model_version(&self, approval: &Approval) -> Result<Approval, StoreError> {
        let version: i64 = approval.version.parse().map_err(|_| {
            StoreError::InvalidArgument(format!("Parameter 'version' must be an integer, got '{}'.", approval.version))
        })?;
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists = sqlx::query(&format!(
            "SELECT 1 AS one FROM model_versions WHERE name = $1 AND version = $2 AND current_stage <> '{DELETED_STAGE}'"
        ))
        .bind(&approval.name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(version_not_found(&approval.name, version));
        }
        let roles = serde_json::to_string(&approval.roles).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        sqlx::query(
            "INSERT INTO model_version_approvals (name, version, alias, approver, roles, comment, approval_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (name, version, alias, approver) DO UPDATE SET roles = excluded.roles, \
               comment = excluded.comment, approval_time = excluded.approval_time",
        )
        .bind(&approval.name)
        .bind(version)
        .bind(&approval.alias)
        .bind(&approval.approver)
        .bind(roles)
        .bind(approval.comment.as_deref())
        .bind(self.now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let approvals = self.approvals(&approval.name, version, Some(&approval.alias)).await?;
        approvals
            .into_iter()
            .find(|a| a.approver == approval.approver)
            .ok_or_else(|| StoreError::Corrupt("approval vanished after commit".into()))
    }

    /// Approvals of a version (for one alias, or all), oldest first.
    pub async fn approvals(&self, name: &str, version: i64, alias: Option<&str>) -> Result<Vec<Approval>, StoreError> {
        let rows = match alias {
            Some(alias) => sqlx::query(
                "SELECT * FROM model_version_approvals WHERE name = $1 AND version = $2 AND alias = $3 \
                 ORDER BY approval_time, approver",
            )
            .bind(name)
            .bind(version)
            .bind(alias)
            .fetch_all(&self.reader)
            .await?,
            None => sqlx::query(
                "SELECT * FROM model_version_approvals WHERE name = $1 AND version = $2 ORDER BY approval_time, approver",
            )
            .bind(name)
            .bind(version)
            .fetch_all(&self.reader)
            .await?,
        };
        rows.iter().map(approval_from_row).collect()
    }
}
