//! SQL for the model catalog: entries per source, evaluation scores, and the sync log.

use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::catalog::{CatalogEntry, CatalogModel, EvaluationScore};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

/// An entry as a sync writes it.
#[derive(Debug, Clone)]
pub struct CatalogUpsert {
    pub id: String,
    pub entry_json: String,
    pub digest: String,
}

/// What the store holds for one id: its source, content digest and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCatalogEntry {
    pub id: String,
    pub source: String,
    pub digest: String,
    pub status: String,
}

fn model_from_row(row: &AnyRow) -> Result<CatalogModel, StoreError> {
    let entry: String = row.try_get("entry")?;
    let entry: CatalogEntry =
        serde_json::from_str(&entry).map_err(|e| StoreError::Corrupt(format!("catalog entry: {e}")))?;
    Ok(CatalogModel {
        entry,
        source: row.try_get("source")?,
        status: row.try_get("status")?,
        first_seen: row.try_get("first_seen")?,
        updated: row.try_get("updated")?,
        scores: Vec::new(),
    })
}

impl Store {
    /// Every id the catalog knows, with its source, digest and status.
    pub async fn catalog_index(&self) -> Result<Vec<StoredCatalogEntry>, StoreError> {
        let rows = sqlx::query("SELECT id, source, digest, status FROM catalog_models ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredCatalogEntry {
                    id: row.try_get("id")?,
                    source: row.try_get("source")?,
                    digest: row.try_get("digest")?,
                    status: row.try_get("status")?,
                })
            })
            .collect()
    }

    /// Applies one sync in one transaction: inserts and updates entries, marks the removed ones,
    /// and logs the report.
    pub async fn apply_catalog_sync(
        &self,
        source: &str,
        location: &str,
        upserts: &[CatalogUpsert],
        removed: &[String],
        report_json: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        for upsert in upserts {
            let owner = sqlx::query("SELECT source FROM catalog_models WHERE id = $1")
                .bind(&upsert.id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = owner {
                let owner: String = row.try_get("source")?;
                if owner != source {
                    return Err(StoreError::Conflict(format!(
                        "model id `{}` is already listed by catalog source `{owner}`",
                        upsert.id
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO catalog_models (id, source, entry, digest, status, first_seen, updated) \
                 VALUES ($1, $2, $3, $4, 'active', $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET entry = excluded.entry, digest = excluded.digest, status = 'active', \
                   updated = excluded.updated",
            )
            .bind(&upsert.id)
            .bind(source)
            .bind(&upsert.entry_json)
            .bind(&upsert.digest)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for id in removed {
            sqlx::query("UPDATE catalog_models SET status = 'removed', updated = $1 WHERE id = $2 AND source = $3")
                .bind(now)
                .bind(id)
                .bind(source)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO catalog_syncs (source, location, sync_time, report) VALUES ($1, $2, $3, $4)")
            .bind(source)
            .bind(location)
            .bind(now)
            .bind(report_json)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Catalog models, active ones only unless `include_removed`, with their latest score per
    /// metric.
    pub async fn catalog_models(&self, include_removed: bool) -> Result<Vec<CatalogModel>, StoreError> {
        let sql = if include_removed {
            "SELECT * FROM catalog_models ORDER BY id"
        } else {
            "SELECT * FROM catalog_models WHERE status = 'active' ORDER BY id"
        };
        let rows = sqlx::query(sql).fetch_all(&self.reader).await?;
        let mut models = rows.iter().map(model_from_row).collect::<Result<Vec<_>, _>>()?;
        let mut scores = self.latest_catalog_scores().await?;
        for model in &mut models {
            model.scores = scores.remove(&model.entry.id).unwrap_or_default();
        }
        Ok(models)
    }

    pub async fn catalog_model(&self, id: &str) -> Result<CatalogModel, StoreError> {
        let row = sqlx::query("SELECT * FROM catalog_models WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("catalog model `{id}` does not exist")))?;
        let mut model = model_from_row(&row)?;
        model.scores = self.latest_catalog_scores().await?.remove(id).unwrap_or_default();
        Ok(model)
    }

    pub async fn record_catalog_score(
        &self,
        id: &str,
        metric: &str,
        value: f64,
        evaluation: Option<&str>,
    ) -> Result<EvaluationScore, StoreError> {
        let now = self.now();
        sqlx::query(
            "INSERT INTO catalog_scores (model_id, metric, value, evaluation, score_time) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(metric)
        .bind(value)
        .bind(evaluation)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Database(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
                StoreError::NotFound(format!("catalog model `{id}` does not exist"))
            }
            other => other,
        })?;
        Ok(EvaluationScore {
            metric: metric.to_string(),
            value,
            evaluation: evaluation.map(str::to_string),
            timestamp: now,
        })
    }

    /// The latest score per (model, metric).
    async fn latest_catalog_scores(&self) -> Result<HashMap<String, Vec<EvaluationScore>>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.model_id, s.metric, s.value, s.evaluation, s.score_time FROM catalog_scores s \
             WHERE s.id = (SELECT MAX(s2.id) FROM catalog_scores s2 WHERE s2.model_id = s.model_id AND s2.metric = s.metric) \
             ORDER BY s.model_id, s.metric",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut out: HashMap<String, Vec<EvaluationScore>> = HashMap::new();
        for row in rows {
            out.entry(row.try_get("model_id")?).or_default().push(EvaluationScore {
                metric: row.try_get("metric")?,
                value: row.try_get("value")?,
                evaluation: row.try_get("evaluation")?,
                timestamp: row.try_get("score_time")?,
            });
        }
        Ok(out)
    }

    /// Sync reports, newest first (JSON as written by the catalog service).
    pub async fn catalog_syncs(&self, limit: i64) -> Result<Vec<(String, String, i64, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT source, location, sync_time, report FROM catalog_syncs ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.reader)
                .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("source")?,
                    row.try_get("location")?,
                    row.try_get("sync_time")?,
                    row.try_get("report")?,
                ))
            })
            .collect()
    }
}
