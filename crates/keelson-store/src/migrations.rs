//! Versioned schema migrations, one set per backend, embedded in the binary.

use crate::backend::{Backend, Store};
use crate::error::StoreError;
use sqlx::{Executor, Row};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "jobs",
        sqlite: include_str!("../migrations/sqlite/0001_jobs.sql"),
        postgres: include_str!("../migrations/postgres/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        name: "tracking",
        sqlite: include_str!("../migrations/sqlite/0002_tracking.sql"),
        postgres: include_str!("../migrations/postgres/0002_tracking.sql"),
    },
    Migration {
        version: 3,
        name: "metrics_clustered",
        sqlite: include_str!("../migrations/sqlite/0003_metrics_clustered.sql"),
        postgres: include_str!("../migrations/postgres/0003_metrics_clustered.sql"),
    },
    Migration {
        version: 4,
        name: "registry",
        sqlite: include_str!("../migrations/sqlite/0004_registry.sql"),
        postgres: include_str!("../migrations/postgres/0004_registry.sql"),
    },
    Migration {
        version: 5,
        name: "catalog",
        sqlite: include_str!("../migrations/sqlite/0005_catalog.sql"),
        postgres: include_str!("../migrations/postgres/0005_catalog.sql"),
    },
    Migration {
        version: 6,
        name: "serving",
        sqlite: include_str!("../migrations/sqlite/0006_serving.sql"),
        postgres: include_str!("../migrations/postgres/0006_serving.sql"),
    },
    Migration {
        version: 7,
        name: "datasets",
        sqlite: include_str!("../migrations/sqlite/0007_datasets.sql"),
        postgres: include_str!("../migrations/postgres/0007_datasets.sql"),
    },
    Migration {
        version: 8,
        name: "lineage",
        sqlite: include_str!("../migrations/sqlite/0008_lineage.sql"),
        postgres: include_str!("../migrations/postgres/0008_lineage.sql"),
    },
    Migration {
        version: 9,
        name: "monitoring",
        sqlite: include_str!("../migrations/sqlite/0009_monitoring.sql"),
        postgres: include_str!("../migrations/postgres/0009_monitoring.sql"),
    },
    Migration {
        version: 10,
        name: "security",
        sqlite: include_str!("../migrations/sqlite/0010_security.sql"),
        postgres: include_str!("../migrations/postgres/0010_security.sql"),
    },
    Migration {
        version: 11,
        name: "identities",
        sqlite: include_str!("../migrations/sqlite/0011_identities.sql"),
        postgres: include_str!("../migrations/postgres/0011_identities.sql"),
    },
    Migration {
        version: 12,
        name: "workspaces",
        sqlite: include_str!("../migrations/sqlite/0012_workspaces.sql"),
        postgres: include_str!("../migrations/postgres/0012_workspaces.sql"),
    },
    Migration {
        version: 13,
        name: "resource_grants",
        sqlite: include_str!("../migrations/sqlite/0013_resource_grants.sql"),
        postgres: include_str!("../migrations/postgres/0013_resource_grants.sql"),
    },
];

/// The schema version this binary writes and understands.
pub const LATEST_SCHEMA_VERSION: i64 = 13;

/// Arbitrary constant naming Keelson's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x006b_6565_6c73_6f6e;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub from_version: i64,
    pub to_version: i64,
    pub applied: Vec<String>,
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS keelson_schema_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

impl Store {
    /// The highest applied migration, 0 for an empty database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let mut conn = self.writer.acquire().await?;
        conn.execute(CREATE_LEDGER).await?;
        current_version(&mut conn).await
    }

    /// Applies pending migrations, each in its own transaction. Replicas starting together on
    /// PostgreSQL serialise on an advisory lock; SQLite's single writer serialises by itself.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        self.migrate_to(LATEST_SCHEMA_VERSION).await
    }

    /// Applies pending migrations up to `target` only: for upgrade tests that need a database
    /// as an older binary left it.
    #[doc(hidden)]
    pub async fn migrate_to(&self, target: i64) -> Result<MigrationReport, StoreError> {
        let mut conn = self.writer.acquire().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
        }
        let outcome = self.migrate_locked(&mut conn, target).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
        }
        outcome
    }

    async fn migrate_locked(&self, conn: &mut sqlx::AnyConnection, target: i64) -> Result<MigrationReport, StoreError> {
        conn.execute(CREATE_LEDGER).await?;
        let from_version = current_version(conn).await?;
        if from_version > LATEST_SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { database: from_version, binary: LATEST_SCHEMA_VERSION });
        }
        let mut applied = Vec::new();
        for migration in MIGRATIONS.iter().filter(|m| m.version > from_version && m.version <= target) {
            let sql = match self.backend {
                Backend::Sqlite => migration.sqlite,
                Backend::Postgres => migration.postgres,
            };
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            tx.execute(sqlx::raw_sql(sql)).await?;
            sqlx::query("INSERT INTO keelson_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(self.now())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = migration.version, name = migration.name, "applied migration");
            applied.push(format!("{:04}_{}", migration.version, migration.name));
        }
        let to_version = MIGRATIONS.iter().map(|m| m.version).filter(|v| *v <= target).fold(from_version, i64::max);
        Ok(MigrationReport { from_version, to_version, applied })
    }
}

async fn current_version(conn: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    let row = conn.fetch_one("SELECT COALESCE(MAX(version), 0) AS version FROM keelson_schema_migrations").await?;
    Ok(row.try_get::<i64, _>("version")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_latest_matches() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted);
        assert_eq!(versions.last().copied(), Some(LATEST_SCHEMA_VERSION));
    }
}
