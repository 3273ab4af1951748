use super::{decode_offset_token, encode_offset_token, join_nan, placeholders, row_placeholders, split_nan};
use crate::backend::{Backend, Store};
use crate::error::StoreError;
use keelson_core::tracking::{Metric, Page};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Rows per multi-row INSERT for queries elsewhere in this module.
const INSERT_CHUNK: usize = 500;

/// Values bound by one multi-row INSERT: below SQLite's 32,766 and PostgreSQL's 65,535, and
/// large enough that a 1,000-point batch is one statement.
const VALUES_PER_INSERT: usize = 24_000;

/// Appends to the history (exact duplicates are ignored, as in MLflow) and keeps
/// `latest_metrics` at the greatest (step, timestamp, value) per key.
pub(crate) async fn insert_metrics(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    run_id: &str,
    metrics: &[Metric],
) -> Result<(), StoreError> {
    // Most points link no model or dataset: those rows leave the three link columns out, a third
    // fewer values to bind.
    let linked = |m: &Metric| m.model_id.is_some() || m.dataset_name.is_some() || m.dataset_digest.is_some();
    let (with_links, plain): (Vec<&Metric>, Vec<&Metric>) = metrics.iter().partition(|m| linked(m));
    insert_history_rows(tx, backend, run_id, &plain, false).await?;
    insert_history_rows(tx, backend, run_id, &with_links, true).await?;
    // One candidate per key: PostgreSQL refuses to update a row twice in one statement.
    let mut latest: HashMap<&str, &Metric> = HashMap::new();
    for metric in metrics {
        match latest.get(metric.key.as_str()) {
            Some(current) if !is_later(metric, current) => {}
            _ => {
                latest.insert(metric.key.as_str(), metric);
            }
        }
    }
    let candidates: Vec<&Metric> = latest.into_values().collect();
    for chunk in candidates.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES {} \
             ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, \
               timestamp = excluded.timestamp, step = excluded.step \
             WHERE excluded.step > latest_metrics.step \
               OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp) \
               OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp \
                   AND excluded.value > latest_metrics.value)",
            row_placeholders(backend, chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for metric in chunk {
            let (value, is_nan) = split_nan(metric.value);
            query = query
                .bind(run_id)
                .bind(metric.key.as_str())
                .bind(value)
                .bind(is_nan)
                .bind(metric.timestamp)
                .bind(metric.step);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// History rows, one multi-row INSERT per chunk; with `links`, the model and dataset columns too.
async fn insert_history_rows(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    run_id: &str,
    metrics: &[&Metric],
    links: bool,
) -> Result<(), StoreError> {
    let (columns, width) = if links {
        ("run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest", 9)
    } else {
        ("run_uuid, key, value, is_nan, timestamp, step", 6)
    };
    for chunk in metrics.chunks(VALUES_PER_INSERT / width) {
        let sql = format!(
            "INSERT INTO metrics ({columns}) VALUES {} ON CONFLICT DO NOTHING",
            row_placeholders(backend, chunk.len(), width)
        );
        let mut query = sqlx::query(&sql);
        for metric in chunk {
            let (value, is_nan) = split_nan(metric.value);
            query = query
                .bind(run_id)
                .bind(metric.key.as_str())
                .bind(value)
                .bind(is_nan)
                .bind(metric.timestamp)
                .bind(metric.step);
            if links {
                query = query
                    .bind(metric.model_id.as_deref())
                    .bind(metric.dataset_name.as_deref())
                    .bind(metric.dataset_digest.as_deref());
            }
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn is_later(candidate: &Metric, current: &Metric) -> bool {
    (candidate.step, candidate.timestamp) > (current.step, current.timestamp)
        || ((candidate.step, candidate.timestamp) == (current.step, current.timestamp)
            && candidate.value > current.value)
}

fn metric_from_row(row: &AnyRow) -> Result<Metric, StoreError> {
    Ok(Metric {
        key: row.try_get("key")?,
        value: join_nan(row.try_get("value")?, row.try_get("is_nan")?),
        timestamp: row.try_get("timestamp")?,
        step: row.try_get("step")?,
        run_id: Some(row.try_get("run_uuid")?),
        model_id: row.try_get("model_id")?,
        dataset_name: row.try_get("dataset_name")?,
        dataset_digest: row.try_get("dataset_digest")?,
    })
}

impl Store {
    /// A metric's full history, ordered by step then timestamp; paginated when `max_results` is set.
    pub async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>, StoreError> {
        self.get_run_info(run_id).await?;
        let offset = decode_offset_token(page_token)?;
        let limit = max_results.map(|n| n + 1).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics \
             WHERE run_uuid = $1 AND key = $2 ORDER BY timestamp, step, value LIMIT $3 OFFSET $4",
        )
        .bind(run_id)
        .bind(key)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        let mut items = rows.iter().map(metric_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = match max_results {
            Some(n) if items.len() as i64 > n => {
                items.truncate(n as usize);
                Some(encode_offset_token(offset + n))
            }
            _ => None,
        };
        Ok(Page { items, next_page_token })
    }

    /// Values of one metric for several runs between two steps, at most `max_results` per run,
    /// sampled evenly across the steps present (MLflow's GetMetricHistoryBulkInterval).
    pub async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: i64,
    ) -> Result<Vec<Metric>, StoreError> {
        let mut out = Vec::new();
        for run_id in run_ids {
            self.get_run_info(run_id).await?;
            let rows = sqlx::query(
                "SELECT run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics \
                 WHERE run_uuid = $1 AND key = $2 AND step >= $3 AND step <= $4 ORDER BY step, timestamp, value",
            )
            .bind(run_id.as_str())
            .bind(key)
            .bind(start_step.unwrap_or(i64::MIN))
            .bind(end_step.unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await?;
            let metrics = rows.iter().map(metric_from_row).collect::<Result<Vec<_>, _>>()?;
            out.extend(sample_steps(metrics, max_results));
        }
        Ok(out)
    }

    /// Latest values of many runs' metrics by key, for search and comparisons.
    pub async fn latest_metric_values(
        &self,
        run_ids: &[String],
        key: &str,
    ) -> Result<HashMap<String, f64>, StoreError> {
        let mut values = HashMap::new();
        for chunk in run_ids.chunks(INSERT_CHUNK) {
            let sql = format!(
                "SELECT run_uuid, value, is_nan FROM latest_metrics WHERE key = $1 AND run_uuid IN ({})",
                placeholders(self.backend, 2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(key);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.reader).await? {
                values.insert(row.try_get("run_uuid")?, join_nan(row.try_get("value")?, row.try_get("is_nan")?));
            }
        }
        Ok(values)
    }
}

/// Keeps every point of at most `max_results` distinct steps, chosen evenly and always including
/// the first and last step.
fn sample_steps(metrics: Vec<Metric>, max_results: i64) -> Vec<Metric> {
    let mut steps: Vec<i64> = metrics.iter().map(|m| m.step).collect();
    steps.dedup();
    let max = max_results.max(1) as usize;
    if steps.len() <= max {
        return metrics;
    }
    let mut chosen = std::collections::BTreeSet::new();
    if max == 1 {
        chosen.insert(steps[0]);
    } else {
        for i in 0..max {
            chosen.insert(steps[i * (steps.len() - 1) / (max - 1)]);
        }
    }
    metrics.into_iter().filter(|m| chosen.contains(&m.step)).collect()
}

impl Store {
    /// A page of a metric's history rendered by the database as a JSON array of MLflow Metric
    /// messages (`key`, `value`, `timestamp`, `step`, and the model/dataset links when set).
    /// Long histories are the common case in training; letting the database build the JSON
    /// avoids decoding every point as a row.
    pub async fn metric_history_json(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<(String, Option<String>), StoreError> {
        self.get_run_info(run_id).await?;
        let offset = decode_offset_token(page_token)?;
        let limit = max_results.unwrap_or(i64::MAX);
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT json_group_array(CASE \
                   WHEN model_id IS NULL AND dataset_name IS NULL AND dataset_digest IS NULL THEN \
                     json_object('key', key, 'value', v, 'timestamp', timestamp, 'step', step) \
                   ELSE json_object('key', key, 'value', v, 'timestamp', timestamp, 'step', step, \
                     'model_id', model_id, 'dataset_name', dataset_name, 'dataset_digest', dataset_digest) END \
                   ORDER BY timestamp, step, value) AS body \
                 FROM (SELECT key, value, timestamp, step, model_id, dataset_name, dataset_digest, \
                         CASE WHEN is_nan = 1 THEN 'NaN' WHEN value > 1.7976931348623157e308 THEN 'Infinity' \
                              WHEN value < -1.7976931348623157e308 THEN '-Infinity' ELSE value END AS v \
                       FROM metrics WHERE run_uuid = $1 AND key = $2 \
                       ORDER BY timestamp, step, value LIMIT $3 OFFSET $4)"
            }
            Backend::Postgres => {
                "SELECT COALESCE(json_agg(json_strip_nulls(json_build_object('key', key, 'value', \
                   CASE WHEN is_nan = 1 THEN to_json('NaN'::text) \
                        WHEN value = 'Infinity'::float8 THEN to_json('Infinity'::text) \
                        WHEN value = '-Infinity'::float8 THEN to_json('-Infinity'::text) ELSE to_json(value) END, \
                   'timestamp', timestamp, 'step', step, 'model_id', model_id, 'dataset_name', dataset_name, \
                   'dataset_digest', dataset_digest)) ORDER BY timestamp, step, value), '[]'::json)::text AS body \
                 FROM (SELECT * FROM metrics WHERE run_uuid = $1 AND key = $2 \
                       ORDER BY timestamp, step, value LIMIT $3 OFFSET $4) m"
            }
        };
        let row = sqlx::query(sql).bind(run_id).bind(key).bind(limit).bind(offset).fetch_one(&self.reader).await?;
        let body: String = row.try_get("body")?;
        let next_page_token = match max_results {
            Some(n) => {
                let more =
                    sqlx::query("SELECT 1 AS one FROM metrics WHERE run_uuid = $1 AND key = $2 LIMIT 1 OFFSET $3")
                        .bind(run_id)
                        .bind(key)
                        .bind(offset + n)
                        .fetch_optional(&self.reader)
                        .await?;
                more.map(|_| encode_offset_token(offset + n))
            }
            None => None,
        };
        Ok((body, next_page_token))
    }
}
