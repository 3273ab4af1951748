use super::{cut_page, decode_offset_token, parse_experiment_id, placeholders};
use crate::backend::Store;
use crate::error::StoreError;
use keelson_core::tracking::Page;
use sqlx::Row;

/// A trace's stored info: the client's TraceInfoV3 JSON plus the columns used to find it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    pub trace_id: String,
    pub experiment_id: String,
    pub request_time: i64,
    pub state: String,
    pub info: serde_json::Value,
}

impl Store {
    /// Inserts or replaces a trace's info (clients send it once the trace ends).
    pub async fn upsert_trace(&self, trace: &StoredTrace) -> Result<(), StoreError> {
        let experiment_id = parse_experiment_id(&trace.experiment_id)?;
        self.get_experiment(&trace.experiment_id).await?;
        sqlx::query(
            "INSERT INTO traces (trace_id, experiment_id, request_time, state, info) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (trace_id) DO UPDATE SET experiment_id = excluded.experiment_id, \
               request_time = excluded.request_time, state = excluded.state, info = excluded.info",
        )
        .bind(&trace.trace_id)
        .bind(experiment_id)
        .bind(trace.request_time)
        .bind(&trace.state)
        .bind(trace.info.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn get_trace(&self, trace_id: &str) -> Result<StoredTrace, StoreError> {
        let row =
            sqlx::query("SELECT trace_id, experiment_id, request_time, state, info FROM traces WHERE trace_id = $1")
                .bind(trace_id)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("Trace with ID {trace_id} is not found.")))?;
        trace_from_row(&row)
    }

    /// Traces of some experiments, newest first.
    pub async fn search_traces(
        &self,
        experiment_ids: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<StoredTrace>, StoreError> {
        let offset = decode_offset_token(page_token)?;
        let ids: Vec<i64> = experiment_ids.iter().filter_map(|id| id.trim().parse().ok()).collect();
        if ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let sql = format!(
            "SELECT trace_id, experiment_id, request_time, state, info FROM traces WHERE experiment_id IN ({}) \
             ORDER BY request_time DESC, trace_id LIMIT ${} OFFSET ${}",
            placeholders(self.backend, 1, ids.len()),
            ids.len() + 1,
            ids.len() + 2
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(*id);
        }
        let rows = query.bind(max_results + 1).bind(offset).fetch_all(&self.reader).await?;
        let mut items = rows.iter().map(trace_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = cut_page(&mut items, max_results, offset);
        Ok(Page { items, next_page_token })
    }

    pub async fn delete_traces(&self, experiment_id: &str, trace_ids: &[String]) -> Result<u64, StoreError> {
        let id = parse_experiment_id(experiment_id)?;
        if trace_ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "DELETE FROM traces WHERE experiment_id = $1 AND trace_id IN ({})",
            placeholders(self.backend, 2, trace_ids.len())
        );
        let mut query = sqlx::query(&sql).bind(id);
        for trace_id in trace_ids {
            query = query.bind(trace_id.as_str());
        }
        Ok(query.execute(&self.writer).await?.rows_affected())
    }
}

fn trace_from_row(row: &sqlx::any::AnyRow) -> Result<StoredTrace, StoreError> {
    let info: String = row.try_get("info")?;
    Ok(StoredTrace {
        trace_id: row.try_get("trace_id")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        request_time: row.try_get("request_time")?,
        state: row.try_get("state")?,
        info: serde_json::from_str(&info).map_err(|e| StoreError::Corrupt(format!("trace info: {e}")))?,
    })
}
