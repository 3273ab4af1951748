//! MLflow 3 traces: the client sends a TraceInfoV3 when a trace ends and uploads its spans as
//! `traces.json` under the artifact location this server assigns.

use crate::{TrackingError, TrackingService};
use keelson_core::time::parse_rfc3339_ms;
use keelson_core::tracking::Page;
use keelson_store::tracking::StoredTrace;
use serde_json::{json, Value};

/// The trace tag that tells clients where the trace's spans live.
pub const ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";

impl TrackingService {
    /// Records a finished trace (StartTraceV3) and returns its info with the artifact location.
    pub async fn start_trace(&self, mut info: Value, now: i64) -> Result<Value, TrackingError> {
        let object =
            info.as_object_mut().ok_or_else(|| TrackingError::Invalid("trace_info must be an object".into()))?;
        let trace_id = object
            .get("trace_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                TrackingError::Invalid("Missing value for required parameter 'trace.trace_info.trace_id'.".into())
            })?
            .to_string();
        let experiment_id = object
            .get("trace_location")
            .and_then(|l| l.get("mlflow_experiment"))
            .and_then(|e| e.get("experiment_id"))
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_string();
        let request_time = object.get("request_time").and_then(Value::as_str).and_then(parse_rfc3339_ms).unwrap_or(now);
        let state = object.get("state").and_then(Value::as_str).unwrap_or("STATE_UNSPECIFIED").to_string();
        let experiment = self.store().get_experiment(&experiment_id).await?;
        let tags = object.entry("tags").or_insert_with(|| json!({}));
        if let Some(tags) = tags.as_object_mut() {
            tags.entry(ARTIFACT_LOCATION_TAG).or_insert_with(|| {
                json!(format!("{}/traces/{trace_id}/artifacts", experiment.artifact_location.trim_end_matches('/')))
            });
        }
        let stored = StoredTrace { trace_id, experiment_id, request_time, state, info: info.clone() };
        self.store().upsert_trace(&stored).await?;
        Ok(info)
    }

    pub async fn get_trace_info(&self, trace_id: &str) -> Result<Value, TrackingError> {
        Ok(self.store().get_trace(trace_id).await?.info)
    }

    pub async fn search_traces(
        &self,
        experiment_ids: &[String],
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Value>, TrackingError> {
        let max_results = max_results.unwrap_or(100);
        crate::validation::validate_max_results(max_results, 50_000)?;
        let page = self.store().search_traces(experiment_ids, max_results, page_token).await?;
        Ok(Page { items: page.items.into_iter().map(|t| t.info).collect(), next_page_token: page.next_page_token })
    }

    /// Sets or removes one tag in a stored trace's info.
    pub async fn set_trace_tag(&self, trace_id: &str, key: &str, value: Option<&str>) -> Result<(), TrackingError> {
        let mut stored = self.store().get_trace(trace_id).await?;
        let tags = stored.info.as_object_mut().map(|o| o.entry("tags").or_insert_with(|| json!({})));
        if let Some(Value::Object(tags)) = tags {
            match value {
                Some(value) => {
                    tags.insert(key.to_string(), json!(value));
                }
                None => {
                    if tags.remove(key).is_none() {
                        return Err(TrackingError::Invalid(format!("No trace tag with key '{key}'")));
                    }
                }
            }
        }
        self.store().upsert_trace(&stored).await?;
        Ok(())
    }

    pub async fn delete_traces(&self, experiment_id: &str, trace_ids: &[String]) -> Result<u64, TrackingError> {
        Ok(self.store().delete_traces(experiment_id, trace_ids).await?)
    }
}
