//! SQL for online endpoints: endpoints with their routing configuration, deployments, and the
//! log of configuration changes that rollback reads. Specs and configurations are JSON owned by
//! the serving domain; the store keeps them whole.

use crate::backend::Store;
use crate::error::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEndpoint {
    pub name: String,
    pub description: String,
    pub config: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeployment {
    pub endpoint: String,
    pub name: String,
    pub spec: String,
    pub model_name: String,
    pub model_version: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEvent {
    pub id: i64,
    pub endpoint: String,
    pub before_config: String,
    pub after_config: String,
    pub actor: String,
    pub reason: String,
    pub event_time: i64,
}

fn endpoint_from_row(row: &AnyRow) -> Result<StoredEndpoint, StoreError> {
    Ok(StoredEndpoint {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        config: row.try_get("config")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}

fn deployment_from_row(row: &AnyRow) -> Result<StoredDeployment, StoreError> {
    Ok(StoredDeployment {
        endpoint: row.try_get("endpoint")?,
        name: row.try_get("name")?,
        spec: row.try_get("spec")?,
        model_name: row.try_get("model_name")?,
        model_version: row.try_get("model_version")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}

fn endpoint_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("endpoint `{name}` does not exist"))
}

impl Store {
    pub async fn create_endpoint(
        &self,
        name: &str,
        description: &str,
        config: &str,
    ) -> Result<StoredEndpoint, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let existing = sqlx::query("SELECT 1 AS one FROM serving_endpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Err(StoreError::AlreadyExists(format!("endpoint `{name}` already exists")));
        }
        sqlx::query(
            "INSERT INTO serving_endpoints (name, description, config, created, updated) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(description)
        .bind(config)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StoredEndpoint {
            name: name.to_string(),
            description: description.to_string(),
            config: config.to_string(),
            created: now,
            updated: now,
        })
    }

    pub async fn endpoint(&self, name: &str) -> Result<StoredEndpoint, StoreError> {
        let row = sqlx::query("SELECT * FROM serving_endpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| endpoint_not_found(name))?;
        endpoint_from_row(&row)
    }

    pub async fn endpoints(&self) -> Result<Vec<StoredEndpoint>, StoreError> {
        let rows = sqlx::query("SELECT * FROM serving_endpoints ORDER BY name").fetch_all(&self.reader).await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// Deletes an endpoint with its deployments and configuration log.
    pub async fn delete_endpoint(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        // Children first: SQLite enforces the foreign keys only when asked to.
        sqlx::query("DELETE FROM serving_config_events WHERE endpoint = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM serving_rollouts WHERE endpoint = $1").bind(name).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM serving_deployments WHERE endpoint = $1").bind(name).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM serving_endpoints WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(endpoint_not_found(name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the endpoint's configuration if it is still `expected` (compare-and-set, so two
    /// concurrent changes cannot both win), and logs the change.
    pub async fn update_endpoint_config(
        &self,
        name: &str,
        expected: &str,
        config: &str,
        actor: &str,
        reason: &str,
    ) -> Result<ConfigEvent, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let updated =
            sqlx::query("UPDATE serving_endpoints SET config = $1, updated = $2 WHERE name = $3 AND config = $4")
                .bind(config)
                .bind(now)
                .bind(name)
                .bind(expected)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 AS one FROM serving_endpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                None => endpoint_not_found(name),
                Some(_) => StoreError::Conflict(format!(
                    "the configuration of endpoint `{name}` changed meanwhile; read it again and retry"
                )),
            });
        }
        let row = sqlx::query(
            "INSERT INTO serving_config_events (endpoint, before_config, after_config, actor, reason, event_time) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(name)
        .bind(expected)
        .bind(config)
        .bind(actor)
        .bind(reason)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        tx.commit().await?;
        Ok(ConfigEvent {
            id,
            endpoint: name.to_string(),
            before_config: expected.to_string(),
            after_config: config.to_string(),
            actor: actor.to_string(),
            reason: reason.to_string(),
            event_time: now,
        })
    }

    /// Configuration changes of an endpoint, newest first.
    pub async fn endpoint_config_events(&self, name: &str, limit: i64) -> Result<Vec<ConfigEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM serving_config_events WHERE endpoint = $1 ORDER BY id DESC LIMIT $2")
            .bind(name)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ConfigEvent {
                    id: row.try_get("id")?,
                    endpoint: row.try_get("endpoint")?,
                    before_config: row.try_get("before_config")?,
                    after_config: row.try_get("after_config")?,
                    actor: row.try_get("actor")?,
                    reason: row.try_get("reason")?,
                    event_time: row.try_get("event_time")?,
                })
            })
            .collect()
    }

    /// Creates or replaces a deployment of an existing endpoint.
    pub async fn put_deployment(
        &self,
        endpoint: &str,
        name: &str,
        spec: &str,
        model_name: &str,
        model_version: &str,
    ) -> Result<StoredDeployment, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let exists = sqlx::query("SELECT 1 AS one FROM serving_endpoints WHERE name = $1")
            .bind(endpoint)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(endpoint_not_found(endpoint));
        }
        let created = sqlx::query("SELECT created FROM serving_deployments WHERE endpoint = $1 AND name = $2")
            .bind(endpoint)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>("created"))
            .transpose()?
            .unwrap_or(now);
        sqlx::query(
            "INSERT INTO serving_deployments (endpoint, name, spec, model_name, model_version, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (endpoint, name) DO UPDATE SET spec = excluded.spec, model_name = excluded.model_name, \
               model_version = excluded.model_version, updated = excluded.updated",
        )
        .bind(endpoint)
        .bind(name)
        .bind(spec)
        .bind(model_name)
        .bind(model_version)
        .bind(created)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(StoredDeployment {
            endpoint: endpoint.to_string(),
            name: name.to_string(),
            spec: spec.to_string(),
            model_name: model_name.to_string(),
            model_version: model_version.to_string(),
            created,
            updated: now,
        })
    }

    pub async fn deployments(&self, endpoint: Option<&str>) -> Result<Vec<StoredDeployment>, StoreError> {
        let rows = match endpoint {
            Some(endpoint) => {
                sqlx::query("SELECT * FROM serving_deployments WHERE endpoint = $1 ORDER BY name")
                    .bind(endpoint)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM serving_deployments ORDER BY endpoint, name").fetch_all(&self.reader).await?
            }
        };
        rows.iter().map(deployment_from_row).collect()
    }

    pub async fn delete_deployment(&self, endpoint: &str, name: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM serving_deployments WHERE endpoint = $1 AND name = $2")
            .bind(endpoint)
            .bind(name)
            .execute(&self.writer)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("endpoint `{endpoint}` has no deployment `{name}`")));
        }
        Ok(())
    }

    /// Deployments serving a model version, as `endpoint/deployment`; a version in use must not
    /// be deleted from the registry.
    pub async fn deployments_of_model_version(&self, model: &str, version: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT endpoint, name FROM serving_deployments WHERE model_name = $1 AND model_version = $2 \
             ORDER BY endpoint, name",
        )
        .bind(model)
        .bind(version)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok(format!("{}/{}", row.try_get::<String, _>("endpoint")?, row.try_get::<String, _>("name")?)))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRollout {
    pub id: i64,
    pub endpoint: String,
    pub spec: String,
    pub state: String,
    pub status: String,
    pub created: i64,
    pub updated: i64,
}

fn rollout_from_row(row: &AnyRow) -> Result<StoredRollout, StoreError> {
    Ok(StoredRollout {
        id: row.try_get("id")?,
        endpoint: row.try_get("endpoint")?,
        spec: row.try_get("spec")?,
        state: row.try_get("state")?,
        status: row.try_get("status")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}

/// The status of a rollout the controller still drives.
pub const ROLLOUT_PROGRESSING: &str = "progressing";

impl Store {
    /// Starts a rollout; refused while another one of the endpoint progresses.
    pub async fn create_rollout(&self, endpoint: &str, spec: &str, state: &str) -> Result<StoredRollout, StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let active = sqlx::query("SELECT id FROM serving_rollouts WHERE endpoint = $1 AND status = $2")
            .bind(endpoint)
            .bind(ROLLOUT_PROGRESSING)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = active {
            let id: i64 = row.try_get("id")?;
            return Err(StoreError::Conflict(format!(
                "rollout {id} of endpoint `{endpoint}` is still progressing; wait for it or abort it"
            )));
        }
        let row = sqlx::query(
            "INSERT INTO serving_rollouts (endpoint, spec, state, status, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(endpoint)
        .bind(spec)
        .bind(state)
        .bind(ROLLOUT_PROGRESSING)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        tx.commit().await?;
        Ok(StoredRollout {
            id,
            endpoint: endpoint.to_string(),
            spec: spec.to_string(),
            state: state.to_string(),
            status: ROLLOUT_PROGRESSING.to_string(),
            created: now,
            updated: now,
        })
    }

    /// Saves a rollout's state if it still progresses and nobody saved it since `expected_state`.
    pub async fn update_rollout(
        &self,
        id: i64,
        expected_state: &str,
        state: &str,
        status: &str,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE serving_rollouts SET state = $1, status = $2, updated = $3 \
             WHERE id = $4 AND state = $5 AND status = $6",
        )
        .bind(state)
        .bind(status)
        .bind(self.now())
        .bind(id)
        .bind(expected_state)
        .bind(ROLLOUT_PROGRESSING)
        .execute(&self.writer)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    pub async fn progressing_rollouts(&self) -> Result<Vec<StoredRollout>, StoreError> {
        let rows = sqlx::query("SELECT * FROM serving_rollouts WHERE status = $1 ORDER BY id")
            .bind(ROLLOUT_PROGRESSING)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rollout_from_row).collect()
    }

    /// An endpoint's rollouts, newest first.
    pub async fn rollouts(&self, endpoint: &str, limit: i64) -> Result<Vec<StoredRollout>, StoreError> {
        let rows = sqlx::query("SELECT * FROM serving_rollouts WHERE endpoint = $1 ORDER BY id DESC LIMIT $2")
            .bind(endpoint)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rollout_from_row).collect()
    }
}
